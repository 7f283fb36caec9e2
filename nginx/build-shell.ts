/**
 * Bash text helpers for the rendered scripts in `build.ts`. Every option value reaches a script
 * only through these functions, so no value can break out of its quoting.
 */

/** Characters that never need quoting in bash (kept unquoted so rendered scripts stay readable). */
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** One bash word that expands to exactly `value`. Throws on NUL, which no bash string can hold. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) {
    throw new Error(`shellQuote: value ${JSON.stringify(value)} contains a NUL byte, which bash strings cannot hold`);
  }
  if (SHELL_SAFE.test(value)) return value;
  // Values that look like expansions go in double quotes with $ ` " \ escaped (the only
  // characters special there; history expansion is off in scripts), so linters do not take a
  // literal `$HOME` for a forgotten expansion.
  if (/[$`]/.test(value)) return `"${value.replace(/[$`"\\]/g, '\\$&')}"`;
  // Inside single quotes nothing is special except the closing quote itself: end the quoted
  // run, emit an escaped quote, and reopen.
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A bash array literal, e.g. `(a 'b c')`. */
export function shellArray(values: readonly string[]): string {
  return `(${values.map(shellQuote).join(' ')})`;
}

/**
 * A quoted here-document (`<<'TAG'` ... `TAG`) carrying `content` verbatim: no expansion happens
 * inside, and the tag is chosen so that no line of the content can end the document early.
 * Returns the opening operator (to append to a command) and the body (to put after that line).
 */
export function quotedHeredoc(content: string, baseTag: string): { operator: string; body: string } {
  const lines = new Set(content.split('\n'));
  let tag = baseTag;
  for (let n = 1; lines.has(tag); n += 1) tag = `${baseTag}_${n}`;
  const text = content.endsWith('\n') ? content : `${content}\n`;
  return { operator: `<<'${tag}'`, body: `${text}${tag}` };
}
