// Evaluates a permissive or trip condition against a process unit's state, three-valued: a missing or
// non-finite measurement is "unknown", never true or false. Callers decide what unknown means (always the safe side).

import type { ProcessCondition } from '../../core/kinds/process-unit.js';

export type ConditionOutcome =
  | { readonly holds: true; readonly actual: number | boolean }
  | { readonly holds: false; readonly actual: number | boolean }
  | { readonly holds: 'unknown'; readonly why: string };

/** The measurement's value, or undefined when the state (or refused message) does not carry it as an own property. */
export function measurementOf<T>(source: { readonly measurements: Readonly<Record<string, T>> }, name: string): T | undefined {
  return Object.hasOwn(source.measurements, name) ? source.measurements[name] : undefined;
}

/**
 * What a condition reads: measurements by name, as own properties, of any type. A parsed state is one; so is what
 * can still be read from a refused state message, where a value may be anything at all.
 */
export interface MeasurementSource {
  readonly measurements: Readonly<Record<string, unknown>>;
}

export function evaluateCondition(condition: ProcessCondition, source: MeasurementSource): ConditionOutcome {
  const actual = measurementOf(source, condition.measurement);
  if (actual === undefined) return { holds: 'unknown', why: `measurement ${condition.measurement} is missing from the state` };
  if (condition.test === 'equals') {
    if (typeof actual !== 'boolean') return { holds: 'unknown', why: `measurement ${condition.measurement} is not true or false` };
    return actual === condition.expected ? { holds: true, actual } : { holds: false, actual };
  }
  // SAFETY: NaN and ±Infinity are not measurements; they make the condition unknown, not false.
  if (typeof actual !== 'number' || !Number.isFinite(actual)) return { holds: 'unknown', why: `measurement ${condition.measurement} is not a finite number` };
  const holds = condition.test === 'atLeast' ? actual >= condition.limit : actual <= condition.limit;
  return holds ? { holds: true, actual } : { holds: false, actual };
}

/** How a condition reads in a message: "discharge_pressure >= 800000 Pa". */
export function describeCondition(condition: ProcessCondition): string {
  if (condition.test === 'equals') return `${condition.measurement} == ${condition.expected}`;
  return `${condition.measurement} ${condition.test === 'atLeast' ? '>=' : '<='} ${condition.limit} ${condition.unit}`;
}
