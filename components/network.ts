/**
 * Security-group rules as separate resources (one rule, one resource), so components can open a
 * port to a peer that is created later — the clusters exist before the proxy and the ALB that
 * reach them, yet only those security groups may reach the nodes — and so a change of one rule
 * never rewrites the others. Every rule is a single TCP port: nothing here opens a range.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';

/** HTTPS out: package repositories, release downloads and the AWS APIs (SSM) a host boots from. */
export const HTTPS_PORT = 443;

export interface CidrLists {
  readonly ipv4: readonly string[];
  readonly ipv6: readonly string[];
}

interface RuleCommon {
  readonly securityGroupId: pulumi.Input<string>;
  readonly port: number;
  readonly description: string;
  readonly tags?: Readonly<Record<string, string>>;
}

/** What every rule here shares: its group, one TCP port, its description and tags. */
function singleTcpPort(rule: RuleCommon) {
  return {
    securityGroupId: rule.securityGroupId,
    ipProtocol: 'tcp',
    fromPort: rule.port,
    toPort: rule.port,
    description: rule.description,
    tags: rule.tags,
  };
}

/** Ingress on `port` from members of another security group (never a CIDR). */
export function allowIngressFromSecurityGroup(
  name: string,
  rule: RuleCommon & { readonly sourceSecurityGroupId: pulumi.Input<string> },
  opts: pulumi.CustomResourceOptions,
): aws.vpc.SecurityGroupIngressRule {
  return new aws.vpc.SecurityGroupIngressRule(
    name,
    { ...singleTcpPort(rule), referencedSecurityGroupId: rule.sourceSecurityGroupId },
    opts,
  );
}

/**
 * Ingress on `port` from client networks; one rule per CIDR, as AWS stores them. Each rule is
 * named after its CIDR, not its place in the list: with positional names, [A] -> [A, B] renamed
 * A's rule, and Pulumi's create-before-delete of the renamed rule hit InvalidPermission.Duplicate.
 */
export function allowIngressFromCidrs(
  name: string,
  rule: RuleCommon & { readonly cidrs: CidrLists },
  opts: pulumi.CustomResourceOptions,
): aws.vpc.SecurityGroupIngressRule[] {
  const entries = [
    ...rule.cidrs.ipv4.map((cidr) => ({ cidr, address: { cidrIpv4: cidr, cidrIpv6: undefined } })),
    ...rule.cidrs.ipv6.map((cidr) => ({ cidr, address: { cidrIpv4: undefined, cidrIpv6: cidr } })),
  ];
  const seen = new Set<string>();
  return entries.map(({ cidr, address }, index) => {
    const resourceName = `${name}-${cidrSlug(cidr)}`;
    if (seen.has(resourceName)) throw new Error(`${name}: CIDR ${cidr} is listed twice; AWS stores one rule per CIDR`);
    seen.add(resourceName);
    // The name the rule had before names followed the CIDR; for a list deployed unchanged, the
    // alias lets the existing rule be adopted instead of replaced.
    const positionalName = entries.length === 1 ? name : `${name}-${index}`;
    return new aws.vpc.SecurityGroupIngressRule(
      resourceName,
      { ...singleTcpPort(rule), ...address },
      { ...opts, aliases: [...(opts.aliases ?? []), { name: positionalName }] },
    );
  });
}

/** A CIDR as a resource-name part: `203.0.113.0/24` -> `203-0-113-0-24`, `2001:db8::/32` ->
 * `2001-db8---32`. Each separator becomes one hyphen (no collapsing), so distinct CIDRs never
 * share a name. */
export function cidrSlug(cidr: string): string {
  return cidr.toLowerCase().replace(/[^a-z0-9]/g, '-');
}

/** Egress on `port` to members of another security group, or to anywhere (IPv4) when the peer
 * has no security group we know (an existing Redis endpoint, package mirrors, AWS APIs). */
export function allowEgress(
  name: string,
  rule: RuleCommon & { readonly destinationSecurityGroupId?: pulumi.Input<string> },
  opts: pulumi.CustomResourceOptions,
): aws.vpc.SecurityGroupEgressRule {
  return new aws.vpc.SecurityGroupEgressRule(
    name,
    {
      ...singleTcpPort(rule),
      ...(rule.destinationSecurityGroupId !== undefined
        ? { referencedSecurityGroupId: rule.destinationSecurityGroupId }
        : { cidrIpv4: '0.0.0.0/0' }),
    },
    opts,
  );
}

/** A backend cluster a front (nginx or the ALB) forwards to. */
export interface FrontTarget {
  readonly name: string;
  readonly port: number;
  readonly securityGroupId: pulumi.Input<string>;
  readonly description: string;
}

/**
 * The security group of a client-facing front (nginx hosts, the ALB): its listener ports open to
 * the allowed client networks, and egress only to the node ports of the clusters behind it.
 */
export function clientFacingSecurityGroup(
  name: string,
  front: {
    readonly vpcId: pulumi.Input<string>;
    readonly description: string;
    readonly nameTag: string;
    readonly cidrs: CidrLists;
    readonly listeners: readonly { readonly port: number; readonly purpose: string }[];
    readonly targets: readonly FrontTarget[];
    readonly tags: Readonly<Record<string, string>>;
  },
  opts: pulumi.CustomResourceOptions,
): aws.ec2.SecurityGroup {
  const { tags } = front;
  const securityGroup = new aws.ec2.SecurityGroup(
    `${name}-sg`,
    { vpcId: front.vpcId, description: front.description, tags: { ...tags, Name: front.nameTag } },
    opts,
  );
  for (const { port, purpose } of front.listeners) {
    allowIngressFromCidrs(
      `${name}-in-${port}`,
      { securityGroupId: securityGroup.id, cidrs: front.cidrs, port, description: purpose, tags },
      opts,
    );
  }
  for (const target of front.targets) {
    allowEgress(
      `${name}-to-${target.name}`,
      { securityGroupId: securityGroup.id, destinationSecurityGroupId: target.securityGroupId, port: target.port, description: target.description, tags },
      opts,
    );
  }
  return securityGroup;
}
