// Did the device move on since a human looked at it? Compares the state snapshot taken when a command was held
// with the state at approval: every numeric field with a declared tolerance may move that much, every other field
// (numbers without a tolerance, booleans, trips, permissives) must be exactly the same. Pure.

import type { DriftTolerance } from '../core/declarations.js';
import type { DeviceState } from '../core/kinds/index.js';
import { VOLATILE_STATE_FIELDS } from '../core/state-fields.js';

/** One field that moved too far, in words, with numbers where there are numbers. */
export interface DriftProblem {
  readonly field: string;
  readonly message: string;
  readonly limit?: number;
  readonly actual?: number;
}

/** Flattens a state to leaf paths: "pose.xM", "positionsRad[2]", "measurements.tank_level". */
function leaves(value: unknown, path: string, out: Map<string, unknown>): void {
  if (Array.isArray(value)) {
    out.set(`${path}.length`, value.length);
    value.forEach((item, index) => leaves(item, `${path}[${index}]`, out));
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value).sort()) leaves((value as Record<string, unknown>)[key], path === '' ? key : `${path}.${key}`, out);
  } else out.set(path, value);
}

/** The declared field a leaf path belongs to: "positionsRad[2]" -> "positionsRad". */
function fieldOf(leaf: string): string {
  return leaf.replace(/\[\d+\]/g, '');
}

export function stateDrift(snapshot: DeviceState, current: DeviceState, tolerances: readonly DriftTolerance[]): DriftProblem[] {
  const before = new Map<string, unknown>();
  const now = new Map<string, unknown>();
  const strip = (state: DeviceState): Record<string, unknown> => {
    const copy: Record<string, unknown> = { ...state };
    for (const field of VOLATILE_STATE_FIELDS) delete copy[field];
    return copy;
  };
  leaves(strip(snapshot), '', before);
  leaves(strip(current), '', now);
  const within = new Map(tolerances.map((t) => [t.field, t.within]));
  const problems: DriftProblem[] = [];
  for (const leaf of new Set([...before.keys(), ...now.keys()])) {
    const a = before.get(leaf);
    const b = now.get(leaf);
    const field = fieldOf(leaf);
    const tolerance = leaf.endsWith('.length') ? undefined : within.get(field);
    if (typeof a === 'number' && typeof b === 'number' && tolerance !== undefined) {
      const moved = Math.abs(b - a);
      // SAFETY: written as "not within" so that NaN or Infinity is drift.
      if (!(moved <= tolerance)) problems.push({ field: leaf, message: `${leaf} moved ${moved} (from ${a} to ${b}), tolerance ${tolerance}`, limit: tolerance, actual: moved });
      continue;
    }
    // SAFETY: a non-finite number is never "unchanged": NaN equal to NaN would otherwise hide a broken sensor.
    if ((typeof a === 'number' && !Number.isFinite(a)) || (typeof b === 'number' && !Number.isFinite(b))) {
      problems.push({ field: leaf, message: `${leaf} is not a finite number (${String(a)} then ${String(b)})` });
      continue;
    }
    if (!Object.is(a, b) && !(a === 0 && b === 0)) {
      problems.push({ field: leaf, message: `${leaf} changed from ${JSON.stringify(a) ?? 'absent'} to ${JSON.stringify(b) ?? 'absent'} (no tolerance: it must not change)` });
    }
  }
  return problems;
}
