// Everything one state message changes in what the pipeline remembers, the same live (the interlock's state
// topic) and offline (`interlock check` history): the device's latest state, its kind's memory (trip latches,
// also from a refused message), and every device's mode hysteresis when the message comes from a people source.

import type { Declarations } from '../core/declarations.js';
import { BoundsMemory, observeDeviceState, observeRefusedState } from '../bounds/bounds.js';
import { stateTriggers } from '../bounds/modes.js';
import { peopleInCell } from '../bounds/people.js';
import { parseDeviceState, type StateParse, type StateStore } from '../interlock/state-store.js';

export interface StateMemory {
  readonly states: StateStore;
  readonly bounds: BoundsMemory;
}

export interface ObserveOptions {
  /**
   * Offline only: the device's previous message arrived within its freshness limits, so the time since it is no
   * silence (a `steadyMs` run in `interlock check`). Live, every gap is judged as it was.
   */
  readonly continuous?: boolean;
}

/**
 * Takes one state message of a declared device as received at `nowMs`. A people source's message is judged
 * twice for the modes: as the cell stood just before it (a silence that ends now was "people unknown" until now,
 * and a refused message before it left people unknown since) and as it stands with it. So the hold after a
 * trigger runs from the end of the trigger, whether or not a command was checked while it held.
 */
export function observeStateMessage(
  declarations: Declarations,
  deviceId: string,
  payload: Buffer | string,
  nowMs: number,
  memory: StateMemory,
  options: ObserveOptions = {},
): StateParse {
  const device = declarations.devices.get(deviceId);
  if (device === undefined) return { ok: false, problem: `${deviceId} is not a device of this cell` };
  const peopleSource = declarations.people.devices.includes(deviceId);
  if (peopleSource && options.continuous !== true) observeModes(declarations, memory, nowMs);
  const parsed = parseDeviceState(device, payload);
  if (parsed.ok) {
    memory.states.update(deviceId, parsed.observed, nowMs);
    observeDeviceState(device, parsed.observed.state, memory.bounds, nowMs);
  } else {
    // SAFETY: a garbled state message also voids the previous state; stateful checks then deny.
    memory.states.discard(deviceId);
    // SAFETY: and what it still shows may latch (a process unit's trips).
    observeRefusedState(device, parsed.message, memory.bounds, nowMs);
  }
  if (peopleSource) observeModes(declarations, memory, nowMs);
  return parsed;
}

/** Lets every device's mode hysteresis see the people in the cell as they stand at `nowMs`. */
export function observeModes(declarations: Declarations, memory: StateMemory, nowMs: number): void {
  const people = peopleInCell(declarations.people, memory.states, nowMs);
  for (const device of declarations.devices.values()) {
    memory.bounds.modes.observe(device, stateTriggers(device, people, declarations.zones), nowMs);
  }
}
