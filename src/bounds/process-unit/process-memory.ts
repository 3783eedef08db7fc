// What the interlock remembers about one process unit between commands: latched trips and the last released
// value of each setpoint. Latches are only ever cleared by a released, authorised reset_trip, never by a state.

import type { ProcessUnitDeclaration, ProcessUnitState } from '../../core/kinds/process-unit.js';
import type { DeviceMemory, KindCommand } from '../kind-bounds.js';
import { evaluateCondition } from './conditions.js';

export interface LatchedTrip {
  readonly trip: string;
  /** `condition`: a declared trip seen to hold; `device`: the device reported it in its state. */
  readonly source: 'condition' | 'device';
  readonly latchedAtMs: number;
  /** The measured value that latched a condition trip (undefined when it was unknown, or for a device trip). */
  readonly actual?: number | boolean;
}

export interface ReleasedSetpoint {
  readonly value: number;
  readonly releasedAtMs: number;
}

export class ProcessUnitMemory {
  /** Trip id -> why it is latched. Cleared only by `released` for reset_trip. */
  readonly latched = new Map<string, LatchedTrip>();
  /** Setpoint name -> the value last released to the device, and when. */
  readonly releasedSetpoints = new Map<string, ReleasedSetpoint>();
  /**
   * Device-reported trips whose reset has been released but which the device may still report until it has
   * processed the reset. While pending, a report does not re-latch (it still denies, as a reported trip).
   */
  readonly resetPending = new Set<string>();
}

const MEMORY_KEY = 'process_unit';

export function processMemory(memory: DeviceMemory): ProcessUnitMemory {
  const existing = memory.get(MEMORY_KEY);
  if (existing instanceof ProcessUnitMemory) return existing;
  // SAFETY: replacing something else with a fresh memory would forget latched trips; a bug must fail loudly
  // (the pipeline turns the exception into a deny).
  if (existing !== undefined) throw new Error('process unit memory holds something else');
  const created = new ProcessUnitMemory();
  memory.set(MEMORY_KEY, created);
  return created;
}

/** Latches every declared trip whose condition holds (or cannot be evaluated) and every trip the device reports. */
export function observeProcessState(device: ProcessUnitDeclaration, state: ProcessUnitState, memory: DeviceMemory, nowMs: number): void {
  const mem = processMemory(memory);
  for (const trip of device.trips) {
    const outcome = evaluateCondition(trip, state);
    // SAFETY: a trip whose measurement cannot be read latches: not knowing is not "clear".
    if (outcome.holds !== false && !mem.latched.has(trip.id)) {
      mem.latched.set(trip.id, { trip: trip.id, source: 'condition', latchedAtMs: nowMs, ...(outcome.holds === true ? { actual: outcome.actual } : {}) });
    }
  }
  // The device has processed a reset once it stops reporting the trip.
  for (const trip of mem.resetPending) if (!state.trips.includes(trip)) mem.resetPending.delete(trip);
  for (const trip of state.trips) {
    if (!mem.resetPending.has(trip) && !mem.latched.has(trip)) mem.latched.set(trip, { trip, source: 'device', latchedAtMs: nowMs });
  }
}

/** Updates memory once a command has been released to the device (recorded and published). */
export function recordProcessRelease(device: ProcessUnitDeclaration, command: KindCommand, memory: DeviceMemory, nowMs: number): void {
  const mem = processMemory(memory);
  const params = command.params;
  switch (command.action) {
    case 'set_setpoint': {
      const name = params['name'];
      const value = params['value'];
      if (typeof name === 'string' && typeof value === 'number') mem.releasedSetpoints.set(name, { value, releasedAtMs: nowMs });
      break;
    }
    case 'go_safe':
      // The device is told to drive every setpoint to its safe value: those are now the last released values.
      for (const [name, value] of Object.entries(device.safeState.setpoints)) mem.releasedSetpoints.set(name, { value, releasedAtMs: nowMs });
      break;
    case 'reset_trip': {
      const trip = params['trip'];
      if (typeof trip === 'string') {
        mem.latched.delete(trip);
        mem.resetPending.add(trip);
      }
      break;
    }
    default:
      break;
  }
}
