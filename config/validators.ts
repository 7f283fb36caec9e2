/** Small value checks shared by the config schema: CIDRs and "did you mean" suggestions. */
import { isIPv4, isIPv6 } from 'node:net';

export type CidrCheck =
  | { readonly ok: true; readonly family: 4 | 6 }
  | { readonly ok: false; readonly reason: string };

function ipv4ToBigInt(address: string): bigint {
  return address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function bigIntToIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

function ipv6ToBigInt(address: string): bigint {
  let text = address;
  // An embedded IPv4 tail (::ffff:192.0.2.1) stands for the last two groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4ToBigInt(tail);
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - restGroups.length;
  const groups = rest === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...restGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

function bigIntToIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt((7 - i) * 16)) & 0xffffn));
  // Compress the longest run of two or more zero groups, as RFC 5952 prints addresses.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** An IPv4 or IPv6 CIDR whose host bits are zero (AWS security groups reject others). */
export function checkCidr(text: string): CidrCheck {
  const match = /^([^/\s]+)\/(\d{1,3})$/.exec(text);
  if (!match) return { ok: false, reason: `"${text}" is not ADDRESS/PREFIX` };
  const [, address, prefixText] = match as unknown as [string, string, string];
  const prefix = Number(prefixText);
  const family = isIPv4(address) ? 4 : isIPv6(address) && !address.includes('%') ? 6 : undefined;
  if (family === undefined) return { ok: false, reason: `"${address}" is not an IPv4 or IPv6 address` };
  const bits = family === 4 ? 32 : 128;
  if (prefix > bits) return { ok: false, reason: `prefix /${prefix} is longer than /${bits}` };
  const value = family === 4 ? ipv4ToBigInt(address) : ipv6ToBigInt(address);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value & hostMask) !== 0n) {
    const network = value & ~hostMask & ((1n << BigInt(bits)) - 1n);
    const shown = family === 4 ? bigIntToIpv4(network) : bigIntToIpv6(network);
    return { ok: false, reason: `"${text}" has host bits set; did you mean ${shown}/${prefix}?` };
  }
  return { ok: true, family };
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The closest known name to a mistyped one, if it is close enough to be a plausible typo. */
export function closestName(typed: string, known: readonly string[]): string | undefined {
  const lowered = typed.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(lowered, name.toLowerCase());
    if (!best || distance < best.distance) best = { name, distance };
  }
  if (!best) return undefined;
  const tolerance = Math.max(2, Math.floor(typed.length / 4));
  return best.distance <= tolerance ? best.name : undefined;
}
