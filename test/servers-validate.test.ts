import { hostSchema } from '../servers/validate';

describe('hostSchema', () => {
  test.each(['redis.internal', 'master.rt-cache.abc123.euw1.cache.amazonaws.com', 'redis', 'Redis-1.example.COM', '10.0.0.5', '0.0.0.0', '::', '::1', 'fd00::5', '2001:db8::1:2', '::ffff:192.0.2.1'])(
    'accepts %s',
    (host) => {
      expect(hostSchema.safeParse(host).success).toBe(true);
    },
  );

  test.each([
    ':',
    ':::::',
    '1:2',
    '::1::2',
    'fe80::1%eth0',
    '999.999.999.999',
    '10.0.0',
    '10.0.0.256',
    '12345',
    'redis.',
    '.redis',
    'redis..internal',
    '-redis.internal',
    'redis-.internal',
    `${'a'.repeat(64)}.internal`,
    `${'a.'.repeat(127)}aa`,
    'redis;rm -rf',
    'redis internal',
    '[::1]',
    '',
  ])('rejects %j', (host) => {
    expect(hostSchema.safeParse(host).success).toBe(false);
  });
});
