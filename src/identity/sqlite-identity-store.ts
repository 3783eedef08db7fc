// The interlock's identity memory on disk (SQLite, its own file beside the audit log): the replay memory (every
// jti until its token expired, the last seq per agent and device) and agents' demotions. It survives restarts,
// so a captured command cannot be replayed and a quarantined agent is not freed by restarting the component.
// The same file holds the bounds stage's safety memory (safety-memory-store.ts: latched trips, released setpoints,
// operator modes), so one file, one integrity check and one run marker cover both.
//
// Durability: WAL with synchronous=NORMAL for the per-command replay rows (a process crash loses nothing written; a
// power cut may lose the last commits). Accepted commands are written together once per turn of the event loop, and
// the interlock calls persist() before it releases anything, so nothing moves on a memory that is only in RAM. A run marker, written with a full sync, tells an unclean stop from a clean
// one: after an unclean stop the replay memory starts a new epoch, and every command issued before this start is
// refused, which covers whatever the power cut lost. Demotions are written with a full sync.

import Database from 'better-sqlite3';
import type { ReplayGuard, ReplayVerdict } from '../envelope/replay-guard.js';
import { SAFETY_MEMORY_LOST_KEY, SAFETY_MEMORY_SCHEMA, SAFETY_MEMORY_TABLES, SqliteSafetyMemoryStore } from './safety-memory-store.js';

/** 2 adds the safety memory tables. */
const SCHEMA_VERSION = 2;
/** Stamped into the file header (PRAGMA application_id) so a foreign SQLite file is never mistaken for ours. */
const APPLICATION_ID = 0x49444e54; // "IDNT"

const SCHEMA = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
  CREATE TABLE replay_jti (agent TEXT NOT NULL, jti TEXT NOT NULL, forget_after_ms REAL NOT NULL, PRIMARY KEY (agent, jti)) STRICT;
  CREATE TABLE replay_seq (agent TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (agent, device)) STRICT;
  CREATE TABLE demotions (agent TEXT PRIMARY KEY, demoted_to TEXT NOT NULL CHECK (demoted_to IN ('reduced', 'quarantine')), reason TEXT NOT NULL, since_ms REAL NOT NULL) STRICT;
`;
const IDENTITY_TABLES: readonly string[] = ['meta', 'replay_jti', 'replay_seq', 'demotions'];

/** A demotion as stored: the agent, what it was demoted to, why, when and by what. */
export interface StoredDemotion {
  readonly agentId: string;
  readonly demotedTo: 'reduced' | 'quarantine';
  readonly reason: string;
  readonly sinceMs: number;
}

export interface IdentityStoreOptions {
  readonly nowMs: () => number;
}

export class SqliteIdentityStore implements ReplayGuard {
  readonly epochMs: number;
  /** True when the previous run did not close the store (crash, power cut, kill -9) or the store is new. */
  readonly startedAfterUncleanStop: boolean;
  /** True when this open created the file's schema: nothing was stored before (by this or an earlier version). */
  readonly created: boolean;
  /** Latched trips, released setpoints and operator modes, in this file (see restoreBoundsMemory). */
  readonly safetyMemory: SqliteSafetyMemoryStore;
  readonly #db: Database.Database;
  readonly #nowMs: () => number;
  readonly #statements: {
    readonly jti: Database.Statement<[string, string], { forget_after_ms: number }>;
    readonly seq: Database.Statement<[string, string], { seq: number }>;
    readonly insertJti: Database.Statement<[string, string, number]>;
    readonly upsertSeq: Database.Statement<[string, string, number]>;
    readonly prune: Database.Statement<[number]>;
    readonly setMeta: Database.Statement<[string, string]>;
  };
  #lastPruneMs = -Infinity;
  #open = true;
  /** Accepted commands not yet written (accept batches them per turn of the event loop; see persist). */
  readonly #pendingJtis = new Map<string, { readonly agentId: string; readonly jti: string; readonly forgetAfterMs: number }>();
  readonly #pendingSeqs = new Map<string, { readonly agentId: string; readonly deviceId: string; readonly seq: number }>();
  #persistTimer: NodeJS.Immediate | undefined;

  private constructor(db: Database.Database, path: string, created: boolean, options: IdentityStoreOptions) {
    this.#db = db;
    this.#nowMs = options.nowMs;
    this.created = created;
    this.safetyMemory = new SqliteSafetyMemoryStore(db, path, (write) => this.#durably(write));
    this.#statements = {
      jti: db.prepare('SELECT forget_after_ms FROM replay_jti WHERE agent = ? AND jti = ?'),
      seq: db.prepare('SELECT seq FROM replay_seq WHERE agent = ? AND device = ?'),
      insertJti: db.prepare('INSERT OR REPLACE INTO replay_jti (agent, jti, forget_after_ms) VALUES (?, ?, ?)'),
      upsertSeq: db.prepare('INSERT INTO replay_seq (agent, device, seq) VALUES (?, ?, ?) ON CONFLICT (agent, device) DO UPDATE SET seq = max(seq, excluded.seq)'),
      prune: db.prepare('DELETE FROM replay_jti WHERE forget_after_ms < ?'),
      setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
    const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    const storedEpoch = Number(meta.get('epoch_ms'));
    this.startedAfterUncleanStop = meta.get('running') !== '0' || !Number.isFinite(storedEpoch);
    const nowMs = options.nowMs();
    this.epochMs = this.startedAfterUncleanStop ? nowMs : storedEpoch;
    if (!Number.isFinite(this.epochMs)) throw new Error(`identity store: the clock gave ${nowMs}, not a time`);
    this.#durably(() => {
      this.#statements.setMeta.run('epoch_ms', String(this.epochMs));
      this.#statements.setMeta.run('running', '1');
    });
  }

  /** Opens (creating if needed) the store at `path`. Throws with the path and the cause if it cannot. */
  static open(path: string, options: IdentityStoreOptions): SqliteIdentityStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      const journal = String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase();
      if (journal !== 'wal') throw new Error(`journal_mode is ${journal}, not wal`);
      db.pragma('synchronous = NORMAL');
      const rows = db.pragma('quick_check') as { quick_check: string }[];
      if (rows.length !== 1 || rows[0]?.quick_check !== 'ok') throw new Error(`integrity check failed: ${rows.map((r) => r.quick_check).join('; ')}`);
      const database = db;
      // IMMEDIATE: two processes opening a fresh file cannot both create the schema.
      const created = database
        .transaction((): boolean => {
          const applicationId = Number(database.pragma('application_id', { simple: true }));
          const version = Number(database.pragma('user_version', { simple: true }));
          const tables = (database.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
          if (applicationId === 0 && version === 0) {
            // SAFETY: a database with tables but without our stamp is someone else's (the audit log, another
            // application): never add our tables to it.
            if (tables.length > 0) throw new Error(`not an identity store (it already holds tables: ${tables.slice(0, 5).join(', ')})`);
            database.exec(SCHEMA);
            database.exec(SAFETY_MEMORY_SCHEMA);
            database.pragma(`application_id = ${APPLICATION_ID}`);
            database.pragma(`user_version = ${SCHEMA_VERSION}`);
            return true;
          }
          if (applicationId !== APPLICATION_ID) throw new Error(`not an identity store (application_id ${applicationId})`);
          if (version !== 1 && version !== SCHEMA_VERSION) throw new Error(`schema version ${version} is not ${SCHEMA_VERSION}`);
          const missing = IDENTITY_TABLES.filter((name) => !tables.includes(name));
          if (missing.length > 0) throw new Error(`identity store without its tables: ${missing.join(', ')}`);
          if (version === 1) {
            database.exec(SAFETY_MEMORY_SCHEMA);
            // SAFETY: version 1 kept no safety memory (it lived in the interlock's memory only): what was in force
            // before is unknown, so this start fails closed.
            database
              .prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING')
              .run(SAFETY_MEMORY_LOST_KEY, 'the identity store was of schema version 1, which kept no safety memory');
            database.pragma(`user_version = ${SCHEMA_VERSION}`);
            return false;
          }
          const missingSafety = SAFETY_MEMORY_TABLES.filter((name) => !tables.includes(name));
          if (missingSafety.length > 0) throw new Error(`identity store without its tables: ${missingSafety.join(', ')}`);
          return false;
        })
        .immediate();
      return new SqliteIdentityStore(db, path, created, options);
    } catch (error) {
      db?.close();
      throw new Error(`identity store ${path}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  check(agentId: string, deviceId: string, jti: string, seq: number): ReplayVerdict {
    this.#prune();
    if (this.#pendingJtis.has(pairKey(agentId, jti))) return 'replayed';
    const known = this.#statements.jti.get(agentId, jti);
    if (known !== undefined) return 'replayed';
    const last = this.lastSeq(agentId, deviceId);
    if (last !== undefined && !(seq > last)) return 'seq-not-increasing';
    return 'fresh';
  }

  /**
   * Remembers the command at once (check sees it from now on) and writes it with the others accepted in the same
   * turn of the event loop, in one transaction; `persist` writes whatever is still waiting, and the interlock calls
   * it before it releases anything.
   */
  accept(agentId: string, deviceId: string, jti: string, seq: number, forgetAfterMs: number): void {
    this.#pendingJtis.set(pairKey(agentId, jti), { agentId, jti, forgetAfterMs });
    const key = pairKey(agentId, deviceId);
    const before = this.#pendingSeqs.get(key)?.seq;
    if (before === undefined || seq > before) this.#pendingSeqs.set(key, { agentId, deviceId, seq });
    if (this.#persistTimer === undefined) {
      this.#persistTimer = setImmediate(() => {
        this.#persistTimer = undefined;
        try {
          this.persist();
        } catch {
          // Kept waiting in memory: the next persist (before any release, or the next turn) tries again and throws.
        }
      });
      this.#persistTimer.unref();
    }
  }

  /**
   * Writes the accepted commands still waiting (one transaction, synchronous=NORMAL: a process crash loses nothing
   * once this returns). Throws if they cannot be written; they stay waiting.
   */
  persist(): void {
    if (this.#pendingJtis.size === 0 && this.#pendingSeqs.size === 0) return;
    if (!this.#open) throw new Error('identity store is closed: the replay memory of accepted commands was not written');
    this.#db.transaction(() => {
      for (const j of this.#pendingJtis.values()) this.#statements.insertJti.run(j.agentId, j.jti, j.forgetAfterMs);
      for (const q of this.#pendingSeqs.values()) this.#statements.upsertSeq.run(q.agentId, q.deviceId, q.seq);
    })();
    this.#pendingJtis.clear();
    this.#pendingSeqs.clear();
  }

  lastSeq(agentId: string, deviceId: string): number | undefined {
    const stored = this.#statements.seq.get(agentId, deviceId)?.seq;
    const pending = this.#pendingSeqs.get(pairKey(agentId, deviceId))?.seq;
    if (pending === undefined) return stored;
    return stored === undefined ? pending : Math.max(stored, pending);
  }

  /** How many command ids are remembered now (expired ones are pruned at most once a second). */
  rememberedJtis(): number {
    this.persist();
    return (this.#db.prepare('SELECT count(*) AS n FROM replay_jti').get() as { n: number }).n;
  }

  demotions(): StoredDemotion[] {
    const rows = this.#db.prepare('SELECT agent, demoted_to, reason, since_ms FROM demotions ORDER BY agent').all() as {
      agent: string;
      demoted_to: 'reduced' | 'quarantine';
      reason: string;
      since_ms: number;
    }[];
    return rows.map((r) => ({ agentId: r.agent, demotedTo: r.demoted_to, reason: r.reason, sinceMs: r.since_ms }));
  }

  saveDemotion(demotion: StoredDemotion): void {
    this.#durably(() => {
      this.#db
        .prepare('INSERT INTO demotions (agent, demoted_to, reason, since_ms) VALUES (?, ?, ?, ?) ON CONFLICT (agent) DO UPDATE SET demoted_to = excluded.demoted_to, reason = excluded.reason, since_ms = excluded.since_ms')
        .run(demotion.agentId, demotion.demotedTo, demotion.reason, demotion.sinceMs);
    });
  }

  removeDemotion(agentId: string): void {
    this.#durably(() => this.#db.prepare('DELETE FROM demotions WHERE agent = ?').run(agentId));
  }

  /** Marks a clean stop: the next open keeps this epoch. */
  close(): void {
    if (!this.#open) return;
    if (this.#persistTimer !== undefined) clearImmediate(this.#persistTimer);
    this.#persistTimer = undefined;
    this.persist();
    this.#open = false;
    this.#durably(() => this.#statements.setMeta.run('running', '0'));
    this.#db.close();
  }

  /** Runs `write` in a transaction committed with a full sync (fsync of the WAL), whatever the default is. */
  #durably(write: () => void): void {
    this.#db.pragma('synchronous = FULL');
    try {
      this.#db.transaction(write)();
    } finally {
      this.#db.pragma('synchronous = NORMAL');
    }
  }

  #prune(): void {
    const nowMs = this.#nowMs();
    if (nowMs - this.#lastPruneMs < 1000) return;
    this.#lastPruneMs = nowMs;
    // What is still waiting is written first, so that expiry treats it as it treats every other row.
    this.persist();
    this.#statements.prune.run(nowMs);
  }
}

/** One map key for two identifiers (agent ids, jtis and device ids never contain NUL). */
function pairKey(a: string, b: string): string {
  return `${a}\u0000${b}`;
}
