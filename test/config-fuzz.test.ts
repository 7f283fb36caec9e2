import fc from 'fast-check';
import { CONFIG_KEY_NAMES, CONFIG_KEYS, keys } from '../config/schema';
import { StackConfigError, parseStackConfig } from '../config/stack';

/** Values a stack file, the CLI or a careless edit can produce. */
const garbage = fc.oneof(
  fc.string(),
  fc.constantFrom('', ' ', 'true', '3', '-1', '[', '[1,2]', '{"a":1}', 'null', '1e309', 'NaN', '0.0.0.0/0', 'nginx,alb'),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 4 }),
  fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer(), fc.object()), { maxKeys: 3 }),
  fc.object(),
);

const configKey = fc.oneof(fc.constantFrom(...CONFIG_KEY_NAMES), fc.string({ minLength: 1, maxLength: 20 }));

describe('parseStackConfig with arbitrary input', () => {
  it('either returns a config or throws a StackConfigError whose lines name a key', () => {
    fc.assert(
      fc.property(fc.dictionary(configKey, garbage, { maxKeys: 8 }), fc.option(garbage, { nil: undefined }), (raw, region) => {
        try {
          parseStackConfig(raw, { region });
        } catch (error) {
          if (!(error instanceof StackConfigError)) throw error;
          expect(error.issues.length).toBeGreaterThan(0);
          for (const issue of error.issues) {
            expect(issue.message.startsWith(`${issue.key}: got `)).toBe(true);
            expect(issue.message).toContain('; allowed: ');
          }
        }
      }),
      { numRuns: 250 },
    );
  });

  it('reads an integer the same from a number and from its string', () => {
    const integerKeys = CONFIG_KEYS.filter((spec) => spec.kind === 'integer').map((spec) => spec.key);
    fc.assert(
      fc.property(fc.constantFrom(...integerKeys), fc.integer({ min: -10, max: 70000 }), (key, value) => {
        const outcome = (raw: Record<string, unknown>) => {
          try {
            return parseStackConfig(raw);
          } catch (error) {
            if (!(error instanceof StackConfigError)) throw error;
            return error.issues.map((issue) => issue.key);
          }
        };
        expect(outcome({ [key]: String(value) })).toEqual(outcome({ [key]: value }));
      }),
      { numRuns: 200 },
    );
  });

  it('accepts any in-range proxy count and rejects any other', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), (count) => {
        const valid = count >= 1 && count <= 10;
        if (valid) expect(parseStackConfig({ proxyCount: count }).nginx?.count).toBe(count);
        else expect(() => parseStackConfig({ proxyCount: count })).toThrow(`realtime-edge:proxyCount: got ${count}; allowed: ${keys.proxyCount.allowed}`);
      }),
    );
  });

  it('accepts every well-formed IPv4 CIDR and splits it into the IPv4 list', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (address, prefix) => {
        const value = address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
        const network = prefix === 0 ? 0 : Math.floor(value / 2 ** (32 - prefix)) * 2 ** (32 - prefix);
        const text = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256).join('.');
        const cidr = `${text}/${prefix}`;
        expect(parseStackConfig({ allowedCidrs: [cidr] }).allowedCidrs).toEqual({ ipv4: [cidr], ipv6: [] });
        if (network !== value) expect(() => parseStackConfig({ allowedCidrs: [`${address}/${prefix}`] })).toThrow(`did you mean ${cidr}?`);
      }),
    );
  });
});
