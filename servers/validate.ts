/**
 * Input validation shared by the server renderers: zod schemas for the values that end up in
 * config files and bash, and one error format (context, field, bad value, what is allowed).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';

/** Parses `value` with `schema` or throws one Error listing every problem as
 * `context: field = <value>: <what is allowed>`. */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, context: string): T {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(input)';
    if (issue.code === 'unrecognized_keys') {
      return `${field}: unknown key(s) ${issue.keys.join(', ')}`;
    }
    const input = 'input' in issue ? issue.input : undefined;
    const shown = input === undefined ? 'missing' : JSON.stringify(input);
    return `${field} = ${shown}: ${issue.message}`;
  });
  throw new Error(`${context}: invalid input\n  ${lines.join('\n  ')}`);
}

const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/** Dot-separated labels of 1-63 letters, digits and inner hyphens, 253 characters at most. */
export const DNS_NAME = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

/** A DNS name, or an IP address as node parses one. A name whose last label is all digits
 * (`999.999.999.999`, `10.0.0`) is no DNS name but a mistyped IPv4 address; IPv6 zone ids (`%eth0`)
 * have no place in a URL or config file. */
export function isHost(text: string): boolean {
  if (isIPv4(text)) return true;
  if (isIPv6(text)) return !text.includes('%');
  return DNS_NAME.test(text) && !/(?:^|\.)\d+$/.test(text);
}

/** A DNS name or IPv4/IPv6 address; no characters that could escape a config file or URL. */
export const hostSchema = z.string().refine(isHost, 'expected a DNS name, an IPv4 address or an IPv6 address');

export const portSchema = z.number().int('expected an integer port').min(1, 'expected a port 1-65535').max(65535, 'expected a port 1-65535');

/** Unique node name: it becomes deepstream's serverName, Centrifugo's node.name and part of
 * systemd descriptions, so it stays in a conservative alphabet. */
export const nodeNameSchema = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'expected 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit');

export const versionSchema = z.string().regex(/^\d+\.\d+\.\d+$/, 'expected an exact version MAJOR.MINOR.PATCH, e.g. 7.0.2');

/** SSM Parameter Store names: letters, digits and `_.-/` (AWS's own alphabet). */
export const ssmParameterNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.\-/]{1,2048}$/, 'expected an SSM parameter name (letters, digits and _ . - /)');

export const awsRegionSchema = z.string().regex(/^[a-z]{2}(?:-[a-z]+)+-\d+$/, 'expected an AWS region such as eu-west-1');

/** A browser origin (`https://app.example.com`, optionally with a port); `*` wildcards are allowed
 * in the host for servers that support patterns. No `#`, quotes or whitespace: origins end up in
 * YAML/JSON that servers pre-process as text. At most 128 characters, the most an ALB header
 * condition compares. No default port: browsers never send `:443` for https or `:80` for http, so
 * such an entry could never match. */
const ORIGIN = /^(https?):\/\/[A-Za-z0-9*](?:[A-Za-z0-9*.-]*[A-Za-z0-9])?(?::([1-9]\d{0,4}))?$/;
const DEFAULT_PORTS: Readonly<Record<string, string>> = { https: '443', http: '80' };
export const ORIGIN_MAX_LENGTH = 128;
export const originSchema = z
  .string()
  .max(ORIGIN_MAX_LENGTH, `expected at most ${ORIGIN_MAX_LENGTH} characters`)
  .regex(ORIGIN, 'expected an origin like https://app.example.com[:port] (no path)')
  .refine((origin) => Number(ORIGIN.exec(origin)?.[2] ?? 1) <= 65535, 'expected a port 1-65535')
  .refine((origin) => {
    const [, scheme, port] = ORIGIN.exec(origin) ?? [];
    return port === undefined || DEFAULT_PORTS[scheme!] !== port;
  }, 'expected no default port (:443 for https, :80 for http): browsers never send it');

export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits');

export const maxConnectionsSchema = z
  .number()
  .int('expected an integer')
  .min(1, 'expected at least 1')
  .max(1_000_000, 'expected at most 1000000 (the kernel limit for open files per process is 1048576)');

export const redisEndpointSchema = z.object({
  host: hostSchema,
  port: portSchema,
  tls: z.boolean(),
  authTokenParameter: ssmParameterNameSchema.optional(),
});

/** What every server's config renderer needs of a node: its name, where it listens, its Redis. */
export const nodeConfigBaseSchema = z.object({
  nodeName: nodeNameSchema,
  listenHost: hostSchema.optional(),
  listenPort: portSchema.optional(),
  redis: redisEndpointSchema,
});
