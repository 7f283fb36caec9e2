import { hostSchema, originSchema, parseOrThrow } from '../servers/validate';

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

describe('originSchema', () => {
  test.each(['https://app.example.com', 'http://localhost:3000', 'https://*.example.com', 'https://app.example.com:1', 'https://app.example.com:65535', 'http://app.example.com:443', 'https://app.example.com:80', `https://${'a'.repeat(108)}.example.com`])('accepts %s', (origin) => {
    expect(originSchema.safeParse(origin).success).toBe(true);
  });

  test.each(['https://app.example.com:99999', 'https://app.example.com:65536', 'https://app.example.com:0', 'https://app.example.com:', 'https://app.example.com/', 'ftp://app.example.com', 'https://app.example.com:443', 'http://app.example.com:80', `https://${'a'.repeat(109)}.example.com`])(
    'rejects %s',
    (origin) => {
      expect(originSchema.safeParse(origin).success).toBe(false);
    },
  );

  it('says why a port is refused', () => {
    expect(() => parseOrThrow(originSchema, 'https://app.example.com:99999', 'origins')).toThrow(
      'origins: invalid input\n  (input) = "https://app.example.com:99999": expected a port 1-65535',
    );
  });
});
