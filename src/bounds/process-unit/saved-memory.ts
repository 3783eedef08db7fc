// A process unit's memory as the safety memory store keeps it across restarts: latched trips and released setpoints,
// as plain JSON, read back strictly. It must never read back a latch as cleared: an unreadable value throws (the
// caller then latches every declared trip), and only what the declarations no longer name is dropped.

import type { ProcessUnitDeclaration } from '../../core/kinds/process-unit.js';
import type { DeviceMemory, KindCommand, KindMemoryPersistence } from '../kind-bounds.js';
import { processMemory, recordProcessRelease, type LatchedTrip, type ProcessUnitMemory, type ReleasedSetpoint } from './process-memory.js';

/** The stored form. Times are numbers; a NaN time (a broken clock) is stored as null and read back as NaN. */
interface SavedProcessMemory {
  readonly latched: readonly LatchedTrip[];
  readonly releasedSetpoints: readonly ({ readonly name: string } & ReleasedSetpoint)[];
}

function saveOf(mem: ProcessUnitMemory): SavedProcessMemory {
  return {
    latched: [...mem.latched.values()],
    releasedSetpoints: [...mem.releasedSetpoints].map(([name, setpoint]) => ({ name, ...setpoint })),
  };
}

const SOURCES: readonly LatchedTrip['source'][] = ['condition', 'device', 'memory-lost'];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new Error(`${where}: unknown field(s) ${extra.join(', ')}`);
}

/** A stored time: a number, or null for a NaN that JSON could not carry. Anything else is unreadable. */
function timeOf(value: unknown, where: string): number {
  if (value === null) return NaN;
  if (typeof value !== 'number') throw new Error(`${where} is not a time`);
  return value;
}

function readLatch(value: unknown, where: string): LatchedTrip {
  if (!isObject(value)) throw new Error(`${where} is not an object`);
  onlyKeys(value, ['trip', 'source', 'latchedAtMs', 'actual', 'fromRefusedMessage'], where);
  const { trip, source, actual, fromRefusedMessage } = value;
  if (typeof trip !== 'string' || trip.length === 0) throw new Error(`${where}/trip is not a trip id`);
  if (!SOURCES.includes(source as LatchedTrip['source'])) throw new Error(`${where}/source ${JSON.stringify(source)} is not one of ${SOURCES.join(', ')}`);
  if (actual !== undefined && actual !== null && typeof actual !== 'number' && typeof actual !== 'boolean') throw new Error(`${where}/actual is not a measured value`);
  if (fromRefusedMessage !== undefined && fromRefusedMessage !== true) throw new Error(`${where}/fromRefusedMessage is not true`);
  return {
    trip,
    source: source as LatchedTrip['source'],
    latchedAtMs: timeOf(value['latchedAtMs'], `${where}/latchedAtMs`),
    ...(typeof actual === 'number' || typeof actual === 'boolean' ? { actual } : {}),
    ...(fromRefusedMessage === true ? { fromRefusedMessage } : {}),
  };
}

export const PROCESS_MEMORY_PERSISTENCE: KindMemoryPersistence<ProcessUnitDeclaration> = {
  revision: (memory) => processMemory(memory).revision,
  save: (memory) => saveOf(processMemory(memory)),

  savedAfterRelease(device: ProcessUnitDeclaration, command: KindCommand, memory: DeviceMemory, nowMs: number): unknown {
    // Only releases that add a setpoint to remember are written ahead; a trip reset is written after it is published.
    if (command.action !== 'set_setpoint' && command.action !== 'go_safe') return undefined;
    const copy: DeviceMemory = new Map();
    const mem = processMemory(copy);
    const current = processMemory(memory);
    for (const [id, latch] of current.latched) mem.latched.set(id, latch);
    for (const [name, setpoint] of current.releasedSetpoints) mem.releasedSetpoints.set(name, setpoint);
    recordProcessRelease(device, command, copy, nowMs);
    return saveOf(mem);
  },

  restore(device: ProcessUnitDeclaration, saved: unknown, memory: DeviceMemory): string[] {
    if (!isObject(saved)) throw new Error('not an object');
    onlyKeys(saved, ['latched', 'releasedSetpoints'], 'memory');
    const { latched, releasedSetpoints } = saved;
    if (!Array.isArray(latched) || !Array.isArray(releasedSetpoints)) throw new Error('latched and releasedSetpoints must be lists');
    // Everything is read before anything is applied: a value that fails half way leaves the memory untouched.
    const latches = latched.map((value, i) => readLatch(value, `latched/${i}`));
    const setpoints = releasedSetpoints.map((value, i) => {
      const where = `releasedSetpoints/${i}`;
      if (!isObject(value)) throw new Error(`${where} is not an object`);
      onlyKeys(value, ['name', 'value', 'releasedAtMs'], where);
      if (typeof value['name'] !== 'string') throw new Error(`${where}/name is not a setpoint name`);
      // SAFETY: a released value is a number a command carried; anything else cannot be a step or rate reference.
      if (typeof value['value'] !== 'number' || !Number.isFinite(value['value'])) throw new Error(`${where}/value is not a finite number`);
      return { name: value['name'], setpoint: { value: value['value'], releasedAtMs: timeOf(value['releasedAtMs'], `${where}/releasedAtMs`) } };
    });
    const mem = processMemory(memory);
    const notes: string[] = [];
    for (const latch of latches) {
      // A trip the device reported is the device's own id, declared or not; a declared trip no longer declared is gone.
      if (latch.source !== 'device' && !device.trips.some((t) => t.id === latch.trip)) {
        notes.push(`dropped the latch of trip ${latch.trip} on ${device.id}: the trip is no longer declared`);
        continue;
      }
      mem.latched.set(latch.trip, latch);
    }
    for (const { name, setpoint } of setpoints) {
      if (!device.setpoints.some((s) => s.name === name)) {
        notes.push(`dropped the last released value of setpoint ${name} on ${device.id}: the setpoint is no longer declared`);
        continue;
      }
      mem.releasedSetpoints.set(name, setpoint);
    }
    mem.revision += 1;
    return notes;
  },

  failClosed(device: ProcessUnitDeclaration, memory: DeviceMemory, nowMs: number): void {
    const mem = processMemory(memory);
    for (const trip of device.trips) {
      if (!mem.latched.has(trip.id)) mem.latched.set(trip.id, { trip: trip.id, source: 'memory-lost', latchedAtMs: nowMs });
    }
    mem.revision += 1;
  },
};
