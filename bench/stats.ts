/**
 * The statistics every benchmark figure is made of. Pure functions, no I/O: unit-tested in
 * test/bench-harness.test.ts.
 */

/**
 * The q-quantile (0..1) of `samples` with the nearest-rank method: the smallest sample such that at
 * least q of all samples are at or below it. Nearest rank never invents a value between two samples,
 * so a p99 is always a round trip that happened. Throws on an empty sample set or q outside 0..1.
 */
export function quantile(samples: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile: q ${q}; allowed: a number from 0 to 1`);
  if (samples.length === 0) throw new Error('quantile: no samples');
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number): number => sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    min: sorted[0]!,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1]!,
    mean: sum / sorted.length,
  };
}

/** The median (lower median for an even count, so it is always an observed value). */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** `value / baseline`, rounded to two decimals as every ratio in the report. */
export function ratio(value: number, baseline: number): number {
  if (!(baseline > 0)) throw new Error(`ratio: baseline ${baseline}; allowed: a positive number`);
  return Math.round((value / baseline) * 100) / 100;
}

/**
 * The order in which round `round` visits `paths`: rotated by one path per round, so no path always
 * runs first (after an idle gap) or last, and a burst of machine noise spreads over every path.
 */
export function interleavedOrder<T>(paths: readonly T[], round: number): T[] {
  if (paths.length === 0) return [];
  const shift = ((round % paths.length) + paths.length) % paths.length;
  return [...paths.slice(shift), ...paths.slice(0, shift)];
}

/**
 * Spreads `total` items over `parts` as evenly as possible (the first ones get one more), e.g. the
 * connections of a capacity step over the client processes.
 */
export function spread(total: number, parts: number): number[] {
  if (!Number.isInteger(total) || total < 0) throw new Error(`spread: total ${total}; allowed: an integer >= 0`);
  if (!Number.isInteger(parts) || parts < 1) throw new Error(`spread: parts ${parts}; allowed: an integer >= 1`);
  const base = Math.floor(total / parts);
  const extra = total % parts;
  return Array.from({ length: parts }, (_, index) => base + (index < extra ? 1 : 0));
}

/** Sequence numbers in `from..to` (inclusive) that `received` lacks: the events a client lost. */
export function missingInRange(received: Iterable<number>, from: number, to: number): number {
  if (to < from) return 0;
  const seen = new Set<number>();
  for (const seq of received) if (seq >= from && seq <= to) seen.add(seq);
  return to - from + 1 - seen.size;
}
