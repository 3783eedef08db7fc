// What `interlock replay` decides recorded commands against: the device state, releases, standings and replay
// memory as the audit log recorded them, in the shapes the real pipeline reads. It rebuilds; it never decides.
// Anything the record does not hold stays unknown, and the pipeline treats unknown as it always does (deny).

import type { Declarations } from '../core/declarations.js';
import type { LastRelease, ReleaseView } from '../core/device-state.js';
import type { ReplayGuard, ReplayVerdict } from '../envelope/replay-guard.js';
import { parseDeviceState, StateStore } from '../interlock/state-store.js';
import type { AgentStanding, TrustView } from './pipeline.js';

/** A decision record's `state` (`<device>/<field>` -> value and age), as another declaration set reads it. */
export type RecordedStateResult = { readonly ok: true; readonly states: StateStore; readonly notes: readonly string[] } | { readonly ok: false; readonly problem: string };

/**
 * The states a decision read, rebuilt for `declarations`: each device's fields are parsed again as a state message
 * of that device as now declared (a device that now declares other joints or setpoints may refuse them: then it has
 * no state, and the notes say why), received at `timeMs - ageMs` on the recorded clock.
 */
export function recordedStates(state: unknown, timeMs: number, declarations: Declarations): RecordedStateResult {
  const byDevice = new Map<string, { fields: Record<string, unknown>; ageMs: number }>();
  if (state !== undefined) {
    if (typeof state !== 'object' || state === null || Array.isArray(state)) return { ok: false, problem: 'state is not an object' };
    for (const [key, entry] of Object.entries(state)) {
      const slash = key.lastIndexOf('/');
      if (slash <= 0 || slash === key.length - 1) return { ok: false, problem: `state key "${key}" is not <device>/<field>` };
      if (typeof entry !== 'object' || entry === null || !Object.hasOwn(entry, 'value') || typeof (entry as { ageMs?: unknown }).ageMs !== 'number') {
        return { ok: false, problem: `state ${key} is not { value, ageMs }` };
      }
      const { value, ageMs } = entry as { value: unknown; ageMs: number };
      const deviceId = key.slice(0, slash);
      const device = byDevice.get(deviceId) ?? { fields: {}, ageMs };
      device.fields[key.slice(slash + 1)] = value;
      byDevice.set(deviceId, device);
    }
  }
  const states = new StateStore();
  const notes: string[] = [];
  for (const [deviceId, { fields, ageMs }] of byDevice) {
    const device = declarations.devices.get(deviceId);
    if (device === undefined) {
      notes.push(`${deviceId} is not a device of the replayed declarations: its recorded state is unused`);
      continue;
    }
    // The people a device's sensors saw are recorded as [x, y, z], which a state message may carry as they are.
    const parsed = parseDeviceState(device, JSON.stringify(fields));
    if (!parsed.ok) {
      notes.push(`the recorded state of ${deviceId} is not a valid state under the replayed declarations (${parsed.problem}): it has no state`);
      continue;
    }
    states.update(deviceId, parsed.observed, timeMs - ageMs);
  }
  return { ok: true, states, notes };
}

/** Replay protection as in the record: a recorded command was fresh when it was decided, so it is fresh here. */
export const AS_RECORDED_REPLAY: ReplayGuard = {
  epochMs: Number.NEGATIVE_INFINITY,
  check: (): ReplayVerdict => 'fresh',
  accept: () => undefined,
  lastSeq: () => undefined,
};

/** The last release per device, from the recorded allows (not from the replayed verdicts). */
export class RecordedReleases implements ReleaseView {
  readonly #last = new Map<string, LastRelease>();

  last(deviceId: string): LastRelease | undefined {
    return this.#last.get(deviceId);
  }

  released(deviceId: string, release: LastRelease): void {
    this.#last.set(deviceId, release);
  }
}

/** Agents' standings from the recorded agent-demoted and agent-restored events. */
export class RecordedStandings implements TrustView {
  readonly #standing = new Map<string, AgentStanding>();

  standing(agentId: string): AgentStanding {
    return this.#standing.get(agentId) ?? {};
  }

  /** Takes one recorded event's detail. */
  observe(detail: Readonly<Record<string, unknown>>): void {
    const agentId = detail['agentId'];
    if (typeof agentId !== 'string') return;
    if (detail['event'] === 'agent-restored') this.#standing.delete(agentId);
    if (detail['event'] === 'agent-demoted') {
      const why = typeof detail['reason'] === 'string' ? detail['reason'] : 'demoted (recorded)';
      this.#standing.set(agentId, detail['demotedTo'] === 'quarantine' ? { quarantined: why } : { reduced: why });
    }
  }
}
