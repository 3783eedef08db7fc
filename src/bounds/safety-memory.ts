// What the bounds stage must not forget across a restart (latched trips, released setpoints, operator modes), as a
// seam to durable storage, and how it is read back at start. It must never start with less memory than it had:
// what cannot be read back fails closed (trips latched, reduced mode), and only what is no longer declared is dropped.

import type { Declarations, Mode } from '../core/declarations.js';
import type { Logger } from '../core/log.js';
import { BoundsMemory, kindPersistence } from './bounds.js';

/** A reduced mode an operator set (or a start that failed closed set), as stored. */
export interface SavedOperatorMode {
  readonly mode: Extract<Mode, 'reduced'>;
  /** What decisions say while it holds. */
  readonly why: string;
  readonly sinceMs: number;
}

/** Everything stored, as read at start. */
export interface SavedSafetyMemory {
  /** Where it was read from (the file), for messages. */
  readonly origin: string;
  /** Device id -> the device's kind and its kind memory as JSON text. */
  readonly devices: ReadonlyMap<string, { readonly kind: string; readonly memory: string }>;
  readonly operatorModes: ReadonlyMap<string, SavedOperatorMode>;
  /** Why what is stored may be less than what was in force (a write failed, an older store kept none). */
  readonly lost: string | undefined;
}

/**
 * Durable storage of the safety memory (SqliteSafetyMemoryStore). Every write is durable when it returns and
 * throws when that is not certain.
 */
export interface SafetyJournal {
  saveDevice(deviceId: string, kind: string, memoryJson: string): void;
  removeDevice(deviceId: string): void;
  /** `undefined` removes the device's operator mode (auto). */
  saveOperatorMode(deviceId: string, mode: SavedOperatorMode | undefined): void;
  /** Marks what is stored as possibly incomplete: the next start fails closed. */
  markLost(why: string): void;
  /** What is stored is complete again (a start that failed closed has written everything it holds). */
  markComplete(): void;
}

/**
 * Builds the bounds memory of a start from what was stored: each device's kind memory read back (what the
 * declarations no longer name dropped, with a log line), operator modes kept. When the stored memory may be
 * incomplete, or a device's cannot be read, the start fails closed: every declared trip latched until an
 * authorised reset_trip, and (when the whole store is in doubt) every device in reduced mode until an operator
 * sets auto. What it then holds is written back before it returns; a write that fails throws (no start).
 */
export function restoreBoundsMemory(journal: SafetyJournal, saved: SavedSafetyMemory, declarations: Declarations, nowMs: number, log: Logger): BoundsMemory {
  const bounds = new BoundsMemory({ journal, log });
  const { origin } = saved;
  for (const [deviceId, stored] of saved.devices) {
    const device = declarations.devices.get(deviceId);
    if (device === undefined || device.kind !== stored.kind) {
      log.warn(`${origin}: dropped the saved memory of ${deviceId} (a ${stored.kind}): ${device === undefined ? 'no longer declared' : `now declared a ${device.kind}`}`);
      journal.removeDevice(deviceId);
      continue;
    }
    const persistence = kindPersistence(device.kind);
    if (persistence === undefined) continue;
    try {
      for (const note of persistence.restore(device, JSON.parse(stored.memory) as unknown, bounds.device(deviceId))) log.warn(`${origin}: ${note}`);
    } catch (error) {
      // SAFETY: unreadable is not empty: the device's every declared trip latches until an authorised reset.
      log.error(`${origin}: the saved memory of ${deviceId} is unreadable (${error instanceof Error ? error.message : String(error)}): every declared trip of ${deviceId} is latched`);
      persistence.failClosed(device, bounds.device(deviceId), nowMs);
    }
  }
  for (const [deviceId, mode] of saved.operatorModes) {
    if (!declarations.devices.has(deviceId)) {
      log.warn(`${origin}: dropped the operator's reduced mode of ${deviceId}: no longer declared`);
      journal.saveOperatorMode(deviceId, undefined);
      continue;
    }
    bounds.modes.setOperatorMode(deviceId, 'reduced', mode.why);
    log.info(`${origin}: ${deviceId} stays in reduced mode (${mode.why}) until an operator sets auto`);
  }
  if (saved.lost !== undefined) {
    // SAFETY: what was in force before may be more than what is stored: assume the strictest of everything.
    log.error(
      `${origin}: the safety memory from before this start may be incomplete (${saved.lost}): every declared trip is latched until an authorised reset_trip, every device is in reduced mode until an operator sets auto`,
    );
    const why = `reduced since the interlock started: its safety memory from before was incomplete (${saved.lost}); an operator sets auto`;
    for (const device of declarations.devices.values()) {
      kindPersistence(device.kind)?.failClosed(device, bounds.device(device.id), nowMs);
      if (bounds.modes.operatorMode(device.id) === 'reduced') continue;
      journal.saveOperatorMode(device.id, { mode: 'reduced', why, sinceMs: nowMs });
      bounds.modes.setOperatorMode(device.id, 'reduced', why);
    }
  }
  // Written back now (it throws when it cannot): the store then holds exactly what is in force.
  for (const device of declarations.devices.values()) bounds.write(device);
  if (saved.lost !== undefined) journal.markComplete();
  return bounds;
}
