/**
 * Security-group rules of components/network.ts as the engine receives them (mocked providers):
 * names that stay put when the allowed client networks change.
 */
import type * as aws from '@pulumi/aws';
import { allowIngressFromCidrs, type CidrLists } from '../components/network';
import { Registry, TYPES, runWithMocks, valueOf } from './helpers/pulumi-mocks';

async function ingressFor(cidrs: CidrLists) {
  const { result, mocks } = await runWithMocks(() =>
    allowIngressFromCidrs('front-in-443', { securityGroupId: 'sg-0123456789abcdef0', port: 443, description: 'HTTPS clients', cidrs }, {}),
  );
  const byCidr = Object.fromEntries(
    new Registry(mocks).ofType(TYPES.ingress).map((r) => [(r.inputs.cidrIpv4 ?? r.inputs.cidrIpv6) as string, r.name]),
  );
  return { byCidr, rules: result };
}

/** The URNs a rule is aliased to (the SDK keeps them on the resource, already collapsed). */
async function aliasNames(rule: aws.vpc.SecurityGroupIngressRule): Promise<string[]> {
  const aliases = (rule as unknown as { __aliases: unknown[] }).__aliases;
  const urns = await Promise.all(aliases.map((alias) => valueOf(alias as string)));
  return urns.map((urn) => urn.split('::').pop()!);
}

describe('ingress from client networks', () => {
  test("adding a CIDR leaves the existing rule's name unchanged", async () => {
    const before = await ingressFor({ ipv4: ['203.0.113.0/24'], ipv6: [] });
    const after = await ingressFor({ ipv4: ['198.51.100.0/24', '203.0.113.0/24'], ipv6: ['2001:db8::/32'] });
    expect(before.byCidr).toEqual({ '203.0.113.0/24': 'front-in-443-203-0-113-0-24' });
    expect(after.byCidr).toEqual({
      '198.51.100.0/24': 'front-in-443-198-51-100-0-24',
      '203.0.113.0/24': 'front-in-443-203-0-113-0-24',
      '2001:db8::/32': 'front-in-443-2001-db8---32',
    });
  });

  test('each rule is aliased to the positional name it had before, so existing stacks adopt it', async () => {
    const single = await ingressFor({ ipv4: ['203.0.113.0/24'], ipv6: [] });
    expect(await aliasNames(single.rules[0])).toEqual(['front-in-443']);
    const two = await ingressFor({ ipv4: ['203.0.113.0/24'], ipv6: ['2001:db8::/32'] });
    expect(await Promise.all(two.rules.map(aliasNames))).toEqual([['front-in-443-0'], ['front-in-443-1']]);
  });

  test('a CIDR listed twice is refused by name', async () => {
    await expect(ingressFor({ ipv4: [], ipv6: ['2001:DB8::/32', '2001:db8::/32'] })).rejects.toThrow(/CIDR 2001:db8::\/32 is listed twice/);
  });
});
