import fc from 'fast-check';
import { architectureOfInstanceType } from '../config/instance-types';
import { StackConfigError, parseStackConfig } from '../config/stack';

describe('EC2 instance types', () => {
  test.each([
    ['t3.small', 'x86_64'],
    ['c7i.large', 'x86_64'],
    ['c7i.metal-24xl', 'x86_64'],
    ['u-6tb1.metal', 'x86_64'],
    ['g5.xlarge', 'x86_64'],
    ['t4g.small', 'arm64'],
    ['c7g.metal', 'arm64'],
    ['c6gn.large', 'arm64'],
    ['a1.large', 'arm64'],
  ])('%s is accepted by stack config and runs %s', (instanceType, architecture) => {
    expect(parseStackConfig({ deepstreamInstanceType: instanceType, proxyInstanceType: instanceType }).nginx?.instanceType).toBe(instanceType);
    expect(architectureOfInstanceType(instanceType)).toBe(architecture);
  });

  // A type that passes validation but has no architecture would throw a plain Error in the middle
  // of the Pulumi program, after validation said the config was fine.
  it('every instance type stack config accepts has an architecture, and every other one is a config error', () => {
    const word = fc.string({ unit: fc.constantFrom(...'abcgmt0179-.'.split('')), minLength: 1, maxLength: 14 });
    fc.assert(
      fc.property(word, (instanceType) => {
        let accepted = true;
        try {
          parseStackConfig({ proxyInstanceType: instanceType });
        } catch (error) {
          if (!(error instanceof StackConfigError)) throw error;
          accepted = false;
        }
        if (accepted) expect(() => architectureOfInstanceType(instanceType)).not.toThrow();
        else expect(() => architectureOfInstanceType(instanceType)).toThrow(/FAMILY\.SIZE/);
      }),
      { numRuns: 2000 },
    );
  });
});
