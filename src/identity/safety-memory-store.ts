// The bounds stage's safety memory on disk, in the identity store's database (identity.db): each device's kind
// memory (latched trips, released setpoints), operator reduced modes, and a mark when what is stored may be less
// than what was in force. Every write is committed with a full sync before it returns; it never writes unasked.

import type Database from 'better-sqlite3';
import type { SafetyJournal, SavedOperatorMode, SavedSafetyMemory } from '../bounds/safety-memory.js';

/** The tables, created with the identity store's schema (version 2) or added to a version 1 store. */
export const SAFETY_MEMORY_SCHEMA = `
  CREATE TABLE safety_device_memory (device TEXT PRIMARY KEY, kind TEXT NOT NULL, memory TEXT NOT NULL) STRICT;
  CREATE TABLE safety_operator_modes (device TEXT PRIMARY KEY, mode TEXT NOT NULL CHECK (mode = 'reduced'), why TEXT NOT NULL, since_ms REAL NOT NULL) STRICT;
`;
export const SAFETY_MEMORY_TABLES: readonly string[] = ['safety_device_memory', 'safety_operator_modes'];
/** The meta key whose presence says what is stored may be incomplete, and why. */
export const SAFETY_MEMORY_LOST_KEY = 'safety_memory_lost';

export class SqliteSafetyMemoryStore implements SafetyJournal {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #durably: (write: () => void) => void;

  /** Use `SqliteIdentityStore.safetyMemory`: it shares the identity store's connection and durable writes. */
  constructor(db: Database.Database, path: string, durably: (write: () => void) => void) {
    this.#db = db;
    this.path = path;
    this.#durably = durably;
  }

  /** Everything stored. Throws (naming the file) when the tables cannot be read. */
  load(): SavedSafetyMemory {
    try {
      const devices = this.#db.prepare('SELECT device, kind, memory FROM safety_device_memory ORDER BY device').all() as { device: string; kind: string; memory: string }[];
      const modes = this.#db.prepare('SELECT device, mode, why, since_ms FROM safety_operator_modes ORDER BY device').all() as { device: string; mode: 'reduced'; why: string; since_ms: number }[];
      const lost = this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(SAFETY_MEMORY_LOST_KEY) as { value: string } | undefined;
      return {
        origin: this.path,
        devices: new Map(devices.map((r) => [r.device, { kind: r.kind, memory: r.memory }])),
        operatorModes: new Map(modes.map((r) => [r.device, { mode: r.mode, why: r.why, sinceMs: r.since_ms }])),
        lost: lost?.value,
      };
    } catch (error) {
      throw new Error(`safety memory in ${this.path} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  saveDevice(deviceId: string, kind: string, memoryJson: string): void {
    this.#durably(() => {
      this.#db
        .prepare('INSERT INTO safety_device_memory (device, kind, memory) VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET kind = excluded.kind, memory = excluded.memory')
        .run(deviceId, kind, memoryJson);
    });
  }

  removeDevice(deviceId: string): void {
    this.#durably(() => this.#db.prepare('DELETE FROM safety_device_memory WHERE device = ?').run(deviceId));
  }

  saveOperatorMode(deviceId: string, mode: SavedOperatorMode | undefined): void {
    this.#durably(() => {
      if (mode === undefined) this.#db.prepare('DELETE FROM safety_operator_modes WHERE device = ?').run(deviceId);
      else {
        this.#db
          .prepare('INSERT INTO safety_operator_modes (device, mode, why, since_ms) VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET mode = excluded.mode, why = excluded.why, since_ms = excluded.since_ms')
          .run(deviceId, mode.mode, mode.why, mode.sinceMs);
      }
    });
  }

  markLost(why: string): void {
    // The first reason is kept: it is the one that made the memory incomplete.
    this.#durably(() => this.#db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING').run(SAFETY_MEMORY_LOST_KEY, why));
  }

  markComplete(): void {
    this.#durably(() => this.#db.prepare('DELETE FROM meta WHERE key = ?').run(SAFETY_MEMORY_LOST_KEY));
  }
}
