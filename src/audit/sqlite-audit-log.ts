// The SQLite audit log: a gapless, sha256-chained record of every decision, in WAL mode with synchronous=FULL. This
// file is its public surface and its open (integrity check, schema, cap, a new segment after a damaged file); the
// writer with group commit is sqlite-audit-writer.ts, the schema and every statement sqlite-audit-schema.ts, entry
// encoding sqlite-audit-entry.ts, verification sqlite-audit-verify.ts, retention and space
// sqlite-audit-retention.ts, checkpoint timing sqlite-audit-checkpointing.ts. A damaged file is never extended or
// deleted.

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { checkpointSettings, type AuditCheckpointOptions } from './audit-checkpoint.js';
import { GENESIS_HASH } from './audit-log.js';
import { isCorruption, moveAside, type MovedAside } from './audit-recovery.js';
import { spaceSettings, type SpaceOptions } from './sqlite-audit-retention.js';
import { AUDIT_SCHEMA_VERSION, configure, ensureSchema, messageOf, quickCheck, writeMeta } from './sqlite-audit-schema.js';
import { SqliteAuditLog } from './sqlite-audit-writer.js';

// The public surface stays here, so callers import the audit log from one place.
export { AUDIT_SCHEMA_VERSION, type AuditHead } from './sqlite-audit-schema.js';
export type { AuditHealth, RetentionResult } from './sqlite-audit-retention.js';
export { SqliteAuditLog } from './sqlite-audit-writer.js';
export type { SqliteAuditPragmas } from './sqlite-audit-schema.js';
export type { SqliteAuditSurface } from './sqlite-audit-surface.js';

export interface SqliteAuditLogOptions extends SpaceOptions {
  /** Receives one-line operational messages (open, schema creation, write failures). */
  readonly log?: (msg: string) => void;
  /** Receives the warnings an operator must act on (the 80% space alarm). Default: `log`. */
  readonly warn?: (msg: string) => void;
  /** The most records one transaction commits; more waiting records go to the next one. Default 1,000. */
  readonly maxBatch?: number;
  /** Signed checkpoints (size, head) so that truncation is detectable; none are written without this. */
  readonly checkpoints?: AuditCheckpointOptions;
  /**
   * Size cap of the database file (PRAGMA max_page_count, set on every open). When the records fill it to the cap
   * minus the reserve, ordinary records are refused (AUDIT_LOG_FULL) and safe-state records use the reserve.
   * Default: no cap.
   */
  readonly maxBytes?: number;
  /** Room kept for safe-state records under the cap. Default 5% of maxBytes, at least 64 KiB. */
  readonly reserveBytes?: number;
  /** A file of this size kept beside the database, deleted when the disk fills up to make room. Default 4 MiB; 0: none. */
  readonly ballastBytes?: number;
  /** Records acknowledged (by the cloud or an archive) and older than this are deleted by retention. Default: never. */
  readonly retentionMs?: number;
  /** How often retention runs (also on open, and when the cap is reached). Default 1 h. */
  readonly retentionIntervalMs?: number;
  /** The clock for retention and for the open-time events. Default Date.now. */
  readonly nowMs?: () => number;
  /**
   * A damaged file: moved aside and a new segment started (default, for the running interlock), or refused with
   * the error (for readers and verify, which must report the damage, not paper over it).
   */
  readonly onCorruption?: 'move-aside' | 'refuse';
}

/** Write counters since open, for tests and benchmarks. */
export interface SqliteAuditStats {
  /** Transactions committed. */
  readonly commits: number;
  /** Records committed. */
  readonly records: number;
  /** The most records one committed transaction held. */
  readonly largestBatch: number;
  /** Records accepted by `record` and not yet committed or rejected. */
  readonly pending: number;
}

const DEFAULT_MAX_BATCH = 1_000;
const DEFAULT_RETENTION_INTERVAL_MS = 3_600_000;

/**
 * Opens (creating if missing) the audit log at `path`. Throws an Error naming the path if the file cannot be
 * opened, is not an audit log of a known schema version, or cannot run in WAL mode. A file that fails the integrity
 * check (or is not a database at all) is moved aside, never deleted, and a new chain segment is started in a new
 * file, linked to the last checkpoint that could be read from the damaged one; `notices` says so.
 */
export function openSqliteAuditLog(path: string, options: SqliteAuditLogOptions = {}): SqliteAuditLog {
  const log = options.log ?? (() => {});
  try {
    return openOnce(path, options, undefined);
  } catch (error) {
    const cause = (error as Error).cause;
    if (options.onCorruption === 'refuse' || !isCorruption(cause) || !existsSync(path)) throw error;
    // SAFETY: a damaged log is never extended and never deleted: it goes aside for the investigation.
    const moved = moveAside(path, (options.nowMs ?? Date.now)());
    log(`sqlite-audit-log: ${path} is damaged (${messageOf(cause)}); moved to ${moved.movedTo}; starting a new segment`);
    return openOnce(path, options, { moved, why: messageOf(cause) });
  }
}

function openOnce(path: string, options: SqliteAuditLogOptions, segment: { moved: MovedAside; why: string } | undefined): SqliteAuditLog {
  const log = options.log ?? (() => {});
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    configure(db);
    // SAFETY: check integrity before writing anything, so a damaged log is never extended.
    quickCheck(db);
    const maxBatch = maxBatchOf(options.maxBatch);
    const checkpoints = options.checkpoints === undefined ? undefined : checkpointSettings(options.checkpoints);
    let space = spaceSettings(options);
    if (space.maxPages !== undefined) {
      // Per connection: set on every open, or the cap is not in force.
      const set = Number(db.pragma(`max_page_count = ${space.maxPages}`, { simple: true }));
      // SQLite never sets the cap below the file's size: a file already larger is capped where it is (and full).
      if (set !== space.maxPages) log(`sqlite-audit-log: ${path} is already ${set} pages, over the cap of ${space.maxPages}: capped at its size`);
      space = { ...space, maxPages: set };
    }
    const verb = ensureSchema(db);
    if (segment !== undefined) {
      const checkpoint = segment.moved.lastCheckpoint;
      writeMeta(db, { base_seq: String(checkpoint?.size ?? 0), base_hash: checkpoint?.head ?? GENESIS_HASH, ack_seq: String(checkpoint?.size ?? 0) });
    }
    const instance = new SqliteAuditLog(db, path, log, maxBatch, checkpoints, { ...space, nowMs: options.nowMs ?? Date.now, retentionMs: options.retentionMs }, options.warn ?? log);
    if (segment !== undefined) instance.startSegment(segment.moved, segment.why);
    instance.afterOpen(options.retentionIntervalMs ?? DEFAULT_RETENTION_INTERVAL_MS);
    const head = instance.head();
    log(`sqlite-audit-log: ${verb} ${path} (schema ${AUDIT_SCHEMA_VERSION}, head seq ${head.seq})`);
    return instance;
  } catch (error) {
    try {
      db?.close();
    } catch {
      // The open already failed; the original error is the one worth reporting.
    }
    throw new Error(`cannot open audit log at ${path}: ${messageOf(error)}`, { cause: error });
  }
}

function maxBatchOf(maxBatch: number | undefined): number {
  if (maxBatch === undefined) return DEFAULT_MAX_BATCH;
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  return maxBatch;
}
