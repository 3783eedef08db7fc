// The bounds tests' one check of a stage result: the verdict, the exact codes in order, and every detail field the
// expectation lists, compared exactly (a NaN expected matches only NaN). Not a test file.

import type { Test } from 'tap';
import type { Reason } from '../../src/core/reasons.js';
import type { StageResult } from '../../src/core/verdict.js';

/** One expected reason: its code and any of its detail fields (a field listed is compared; one left out is not). */
export type Expected = { code: Reason['code'] } & Partial<Pick<Reason, 'path' | 'limit' | 'actual' | 'unit' | 'ruleId'>>;

const DETAIL_FIELDS = ['path', 'limit', 'actual', 'unit', 'ruleId'] as const;

/** Asserts allow when `expected` is empty, else deny, with exactly the reasons `expected` lists, in order. */
export function assertReasons(t: Test, result: StageResult, expected: readonly Expected[], name: string): void {
  t.equal(result.verdict, expected.length === 0 ? 'allow' : 'deny', `${name}: verdict`);
  t.same(
    result.reasons.map((r) => r.code),
    expected.map((e) => e.code),
    `${name}: codes (${result.reasons.map((r) => r.message).join(' | ')})`,
  );
  expected.forEach((e, i) => {
    const r = result.reasons[i];
    for (const field of DETAIL_FIELDS) {
      if (!(field in e)) continue;
      const want = e[field];
      const got = r?.[field];
      if (typeof want === 'number' && Number.isNaN(want)) t.ok(typeof got === 'number' && Number.isNaN(got), `${name}: ${field} is NaN`);
      else t.equal(got, want, `${name}: ${field}`);
    }
  });
}
