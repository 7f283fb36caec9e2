import fc from 'fast-check';
import { assertShellIdentifier, shellQuote, shellQuoteAll } from '../servers/shell';
import { runBash } from './servers-helpers';

/** Characters that mean something to bash, mixed with ordinary text. */
const shellish = fc.string({
  unit: fc.constantFrom("'", '"', '$', '`', '\\', '\n', '\r', '\t', ' ', '!', '*', '?', '[', ']', '#', ';', '&', '|', '(', ')', '{', '}', '<', '>', '~', '%', '=', 'a', 'Z', '0', 'é', '💥'),
  maxLength: 40,
});
const anyText = fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0'));

describe('shellQuote', () => {
  it('makes bash print back exactly the quoted string, for arbitrary strings', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(shellish, anyText), { minLength: 1, maxLength: 30 }), (values) => {
        // One bash run per sample: print every quoted word NUL-terminated, then compare bytes.
        const script = `printf '%s\\0' ${values.map(shellQuote).join(' ')}`;
        const r = runBash(['-c', script]);
        expect(r.status).toBe(0);
        const printed = r.stdout.split('\0').slice(0, -1);
        expect(printed).toEqual(values.map((v) => Buffer.from(v, 'utf8').toString('utf8')));
      }),
      { numRuns: 40 },
    );
  });

  it('keeps a quoted argv intact as separate words', () => {
    const words = ['a b', "it's", '$(touch /tmp/x)', '', '--flag=1'];
    const r = runBash(['-c', `for w in ${shellQuoteAll(words)}; do printf '[%s]' "$w"; done`]);
    expect(r.stdout).toBe(words.map((w) => `[${w}]`).join(''));
  });

  it('leaves plain words bare but never lets a word in command position become an assignment', () => {
    expect(shellQuoteAll(['/opt/deepstream', 'eu-west-1', '--prefix=/opt'])).toBe('/opt/deepstream eu-west-1 --prefix=/opt');
    const r = runBash(['-c', `${shellQuote('REALTIME_EDGE_X=1')}; printf 'X=%s' "\${REALTIME_EDGE_X-unset}"`]);
    expect(r.stderr).toContain('REALTIME_EDGE_X=1: command not found');
    expect(r.stdout).toBe('X=unset');
  });

  it('refuses NUL, which no bash string can hold', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('assertShellIdentifier', () => {
  it('accepts variable names and names the field of a bad one', () => {
    expect(assertShellIdentifier('envVar', 'CENTRIFUGO_HTTP_API_KEY')).toBe('CENTRIFUGO_HTTP_API_KEY');
    expect(() => assertShellIdentifier('secrets.0.envVar', '1BAD')).toThrow(/secrets\.0\.envVar: "1BAD" is not a valid shell variable name/);
    expect(() => assertShellIdentifier('x', 'A-B')).toThrow(/allowed: letters, digits and '_'/);
  });
});
