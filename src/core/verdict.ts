// Verdicts and decisions, and the one rule that combines stage results: the most restrictive verdict wins.
// Nothing here may ever turn a deny into anything else.

import type { Reason } from './reasons.js';

export type Verdict = 'allow' | 'hold' | 'deny';

const RESTRICTIVENESS: Record<Verdict, number> = { allow: 0, hold: 1, deny: 2 };

/** What one stage concluded. `reasons` is empty for a plain allow; a deny always carries at least one reason. */
export interface StageResult {
  readonly verdict: Verdict;
  readonly reasons: readonly Reason[];
}

export const PASS: StageResult = Object.freeze({ verdict: 'allow', reasons: Object.freeze([]) as readonly Reason[] });

export function denyWith(...reasons: Reason[]): StageResult {
  return { verdict: 'deny', reasons };
}

/** Combines stage results: deny > hold > allow, with every stage's reasons kept in stage order. */
export function decide(results: readonly StageResult[]): StageResult {
  let verdict: Verdict = 'allow';
  const reasons: Reason[] = [];
  for (const result of results) {
    if (RESTRICTIVENESS[result.verdict] > RESTRICTIVENESS[verdict]) verdict = result.verdict;
    reasons.push(...result.reasons);
  }
  // SAFETY: a deny must always say why; a reasonless deny would be a bug in a stage, but it stays a deny.
  return { verdict, reasons };
}
