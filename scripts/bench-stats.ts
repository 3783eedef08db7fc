// Shared by the benchmark sections: percentiles of timed samples and how they are printed.

export interface Stats {
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
}

/** The p-th percentile of samples already sorted ascending (nearest rank). */
export function percentile(sortedMs: readonly number[], p: number): number {
  return sortedMs[Math.min(sortedMs.length - 1, Math.floor((p / 100) * sortedMs.length))] ?? NaN;
}

export function stats(samplesMs: readonly number[]): Stats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

/** Milliseconds as whole microseconds. */
export const us = (ms: number): string => `${(ms * 1000).toFixed(0)} µs`;
