// What the interlock remembers about one process unit between commands: latched trips and the last released
// value of each setpoint. Latches are only ever cleared by a released, authorised reset_trip, never by a state.

import { readRefusedProcessState, type ProcessUnitDeclaration, type ProcessUnitState } from '../../core/kinds/process-unit.js';
import type { DeviceMemory, KindCommand } from '../kind-bounds.js';
import { evaluateCondition, type MeasurementSource } from './conditions.js';

export interface LatchedTrip {
  readonly trip: string;
  /**
   * `condition`: a declared trip seen to hold; `device`: the device reported it in its state; `memory-lost`: latched at
   * start because what the interlock remembered from before could not be read back.
   */
  readonly source: 'condition' | 'device' | 'memory-lost';
  readonly latchedAtMs: number;
  /** The measured value that latched a condition trip (undefined when it was unknown, or for a device trip). */
  readonly actual?: number | boolean;
  /** Latched from a state message the parser refused (so it never became the device's state). */
  readonly fromRefusedMessage?: true;
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
  /** Counts changes to the two maps above, so the safety memory store writes only when something changed. */
  revision = 0;
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

/** What trip latching reads from a state message: a parsed state, or what a refused message still shows. */
interface TripEvidence extends MeasurementSource {
  readonly trips: readonly string[];
}

function latchTrips(device: ProcessUnitDeclaration, evidence: TripEvidence, mem: ProcessUnitMemory, nowMs: number, refused: boolean): void {
  const from = refused ? { fromRefusedMessage: true as const } : {};
  for (const trip of device.trips) {
    const outcome = evaluateCondition(trip, evidence);
    // SAFETY: a trip whose measurement cannot be read latches: not knowing is not "clear".
    if (outcome.holds !== false && !mem.latched.has(trip.id)) {
      mem.latched.set(trip.id, { trip: trip.id, source: 'condition', latchedAtMs: nowMs, ...(outcome.holds === true ? { actual: outcome.actual } : {}), ...from });
      mem.revision += 1;
    }
  }
  // A report after a released reset is a new trip: it latches again (a reset passes only while the device does not report it).
  for (const trip of evidence.trips) {
    if (!mem.latched.has(trip)) {
      mem.latched.set(trip, { trip, source: 'device', latchedAtMs: nowMs, ...from });
      mem.revision += 1;
    }
  }
}

/** Latches every declared trip whose condition holds (or cannot be evaluated) and every trip the device reports. */
export function observeProcessState(device: ProcessUnitDeclaration, state: ProcessUnitState, memory: DeviceMemory, nowMs: number): void {
  latchTrips(device, state, processMemory(memory), nowMs, false);
}

/**
 * The same for a state message the parser refused (`message` is its JSON value, undefined when it was not JSON): it is
 * no state, but a trip condition it shows, a trip measurement it does not give in readable form, and a trip it
 * reports all latch, as they would from a valid message.
 */
export function observeRefusedProcessState(device: ProcessUnitDeclaration, message: unknown, memory: DeviceMemory, nowMs: number): void {
  latchTrips(device, readRefusedProcessState(message), processMemory(memory), nowMs, true);
}

/** Updates memory once a command has been released to the device (recorded and published). */
export function recordProcessRelease(device: ProcessUnitDeclaration, command: KindCommand, memory: DeviceMemory, nowMs: number): void {
  const mem = processMemory(memory);
  const params = command.params;
  switch (command.action) {
    case 'set_setpoint': {
      const name = params['name'];
      const value = params['value'];
      if (typeof name === 'string' && typeof value === 'number') {
        mem.releasedSetpoints.set(name, { value, releasedAtMs: nowMs });
        mem.revision += 1;
      }
      break;
    }
    case 'go_safe':
      // The device is told to drive every setpoint to its safe value: those are now the last released values.
      for (const [name, value] of Object.entries(device.safeState.setpoints)) mem.releasedSetpoints.set(name, { value, releasedAtMs: nowMs });
      mem.revision += 1;
      break;
    case 'reset_trip': {
      const trip = params['trip'];
      if (typeof trip === 'string' && mem.latched.delete(trip)) mem.revision += 1;
      break;
    }
    default:
      break;
  }
}
