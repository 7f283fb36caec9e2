/**
 * Quoting for every bash script realtime-edge renders (EC2 user data, install steps, the nginx
 * build and apply scripts). Every value that comes from configuration reaches bash through these
 * functions, so no input is ever parsed as code.
 */

/** Words bash never splits, globs or expands: left bare so rendered scripts stay readable. */
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** A bare `NAME=value` in command position would be an assignment, not a word: always quoted. */
const LOOKS_LIKE_ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/** Quotes `value` as one bash word that expands to exactly `value`, in any position (argument,
 * assignment value, array element, command name).
 *
 * NUL cannot be part of a bash string at all, so it is refused instead of being silently
 * truncated. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) {
    throw new Error(`shellQuote: value ${JSON.stringify(value)} contains a NUL byte, which bash cannot hold; allowed: any string without NUL`);
  }
  if (SHELL_SAFE.test(value) && !LOOKS_LIKE_ASSIGNMENT.test(value)) return value;
  // Values that look like expansions go in double quotes with $ ` " \ escaped (the only
  // characters special there; history expansion is off in scripts), so shellcheck does not take
  // a literal `$HOME` for a forgotten expansion (SC2016).
  if (/[$`]/.test(value)) return `"${value.replace(/[$`"\\]/g, '\\$&')}"`;
  // Inside single quotes nothing is special except the closing quote itself: end the quoted run,
  // emit an escaped quote, and reopen.
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each word and joins them with spaces: a command line that runs exactly these argv. */
export function shellQuoteAll(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/** A bash array literal, e.g. `(a 'b c')`. */
export function shellArray(values: readonly string[]): string {
  return `(${shellQuoteAll(values)})`;
}

/**
 * A quoted here-document (`<<'TAG'` ... `TAG`) carrying `content` verbatim: no expansion happens
 * inside, and the tag is chosen so that no line of the content can end the document early.
 * A here-document always ends with a newline, so one is added to content without it (the caller
 * decides whether to strip it again). Returns the opening operator (to append to a command) and
 * the body (to put on the lines after that command).
 */
export function quotedHeredoc(content: string, baseTag: string): { operator: string; body: string } {
  assertShellIdentifier('quotedHeredoc: baseTag', baseTag);
  const lines = new Set(content.split('\n'));
  let tag = baseTag;
  for (let n = 1; lines.has(tag); n += 1) tag = `${baseTag}_${n}`;
  const text = content.endsWith('\n') ? content : `${content}\n`;
  return { operator: `<<'${tag}'`, body: `${text}${tag}` };
}

/** A bash variable or function name (`[A-Za-z_][A-Za-z0-9_]*`), or a clear error naming `field`. */
export function assertShellIdentifier(field: string, name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new Error(`${field}: ${JSON.stringify(name)} is not a valid shell variable name; allowed: letters, digits and '_', not starting with a digit`);
  }
  return name;
}
