/**
 * Quoting for the bash that realtime-edge renders (EC2 user data, install steps). Every value that
 * comes from configuration reaches bash through `shellQuote`, so no input is ever parsed as code.
 */

/** Quotes `value` as one bash word that expands to exactly `value`.
 *
 * Single quotes stop every kind of expansion in bash; the only character they cannot contain is
 * the single quote itself, which is closed, emitted escaped and reopened (`'\''`). NUL cannot be
 * part of a bash string at all, so it is refused instead of being silently truncated. */
export function shellQuote(value: string): string {
  if (value.includes('\0')) {
    throw new Error(`shellQuote: value ${JSON.stringify(value)} contains a NUL byte, which bash cannot hold; allowed: any string without NUL`);
  }
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Quotes each word and joins them with spaces: a command line that runs exactly these argv. */
export function shellQuoteAll(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

/** A bash variable or function name (`[A-Za-z_][A-Za-z0-9_]*`), or a clear error naming `field`. */
export function assertShellIdentifier(field: string, name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new Error(`${field}: ${JSON.stringify(name)} is not a valid shell variable name; allowed: letters, digits and '_', not starting with a digit`);
  }
  return name;
}
