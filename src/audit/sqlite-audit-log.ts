// The SQLite audit log: a gapless, sha256-chained record of every decision, in WAL mode with synchronous=FULL.
// Records arriving together share one transaction (group commit); optional signed checkpoints make truncation
// detectable. It must never resolve `record` for a row that is not committed, never rewrite a record, and delete
// only records the cloud acknowledged and retention let go of, attesting each deletion in the chain itself.

import { createHash, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { canonicalJson } from '../core/canonical-json.js';
import {
  checkpointSettings,
  checkpointSignatureValid,
  signCheckpoint,
  type AuditCheckpoint,
  type AuditCheckpointOptions,
  type CheckpointSettings,
} from './audit-checkpoint.js';
import {
  GENESIS_HASH,
  type AuditEntry,
  type AuditKind,
  type AuditLog,
  type AuditReceipt,
  type RecordOptions,
  type AuditRecord,
  type VerifyResult,
  AuditWriteError,
  type AuditFailureCode,
} from './audit-log.js';
import {
  clearUnknownOutcome,
  isCorruption,
  loadUnknownOutcome,
  moveAside,
  saveUnknownOutcome,
  type MovedAside,
  type UnknownOutcome,
} from './audit-recovery.js';
import { ballastPresent, createBallast, DEFAULT_BALLAST_BYTES, freeBytes, releaseBallast } from './audit-space.js';

/** The schema this build writes and reads, kept in `PRAGMA user_version`. */
export const AUDIT_SCHEMA_VERSION = 3;

export interface SqliteAuditLogOptions {
  /** Receives one-line operational messages (open, schema creation, write failures). */
  readonly log?: (msg: string) => void;
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
  /** Records acknowledged by the cloud and older than this are deleted by retention. Default: never deleted. */
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

/** How the log is doing, for metrics and the component's health report. */
export interface AuditHealth {
  /** ok; full (at the cap, unacknowledged records); disk-full; refusing (closed, or since an unknown outcome). */
  readonly state: 'ok' | 'full' | 'disk-full' | 'refusing';
  readonly headSeq: number;
  /** The cloud's watermark: records up to here are acknowledged. */
  readonly acknowledgedSeq: number;
  readonly unacknowledged: number;
  /** Pages in use (page_count - freelist_count) times the page size. */
  readonly usedBytes: number;
  readonly maxBytes: number | undefined;
  readonly ballastPresent: boolean;
  readonly problem: string | undefined;
}

/** What retention did. */
export interface RetentionResult {
  readonly deleted: number;
  /** The first record still stored after the run (the chain's base is the one before it). */
  readonly firstSeq: number;
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

/** The pragmas in force on the log's own connection, for diagnostics and tests. */
export interface SqliteAuditPragmas {
  readonly journalMode: string;
  /** 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
  readonly synchronous: number;
  readonly foreignKeys: boolean;
}

export interface AuditHead {
  /** The seq of the last record, 0 when the log is empty. */
  readonly seq: number;
  /** The hash of the last record, GENESIS_HASH when the log is empty. */
  readonly hash: string;
}

const KINDS: readonly AuditKind[] = ['decision', 'outcome', 'event'];
const SYNCHRONOUS_FULL = 2;
const HASH_PATTERN = /^[0-9a-f]{64}$/;
const DEFAULT_MAX_BATCH = 1_000;
const DEFAULT_RETENTION_INTERVAL_MS = 3_600_000;
/** Events whose detail attests where the chain in this file starts (retention, or a new segment after corruption). */
const BASE_EVENTS: readonly string[] = ['audit-retention', 'audit-segment-started'];

// The indexed columns exist for queries only; records are always read back from `body`, and verify() checks
// that every column still equals the value in the body so a query can never be fooled by an edited column.
const SCHEMA_V1 = `
  CREATE TABLE records (
    seq        INTEGER PRIMARY KEY,
    time_ms    INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    command_id TEXT,
    parent_seq INTEGER,
    agent_id   TEXT,
    device_id  TEXT,
    action     TEXT,
    verdict    TEXT,
    body       TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
  ) STRICT;
  CREATE INDEX records_time_ms    ON records (time_ms);
  CREATE INDEX records_kind       ON records (kind);
  CREATE INDEX records_command_id ON records (command_id);
  CREATE INDEX records_parent_seq ON records (parent_seq);
  CREATE INDEX records_agent_id   ON records (agent_id);
  CREATE INDEX records_device_id  ON records (device_id);
  CREATE INDEX records_action     ON records (action);
  CREATE INDEX records_verdict    ON records (verdict);
`;

// Version 2 adds signed checkpoints; `seq` numbers the checkpoints, `size` is the number of records covered.
const SCHEMA_V2_CHECKPOINTS = `
  CREATE TABLE checkpoints (
    seq       INTEGER PRIMARY KEY,
    size      INTEGER NOT NULL,
    head      TEXT NOT NULL,
    origin    TEXT NOT NULL,
    time_ms   INTEGER NOT NULL,
    signature TEXT NOT NULL
  ) STRICT;
`;

// Version 3 adds a key/value table for the cloud's acknowledgement watermark and the chain's base (where the chain
// in this file starts after retention or a new segment), and drops three indexes on columns with a handful of
// values (kind, action, verdict), which cost every insert more than they save any query.
const SCHEMA_V3_META = `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;
  DROP INDEX IF EXISTS records_kind;
  DROP INDEX IF EXISTS records_action;
  DROP INDEX IF EXISTS records_verdict;
`;

/** Column values as SQLite hands them back; a column is null when the entry omitted the field. */
interface RecordRow {
  readonly seq: number;
  readonly time_ms: number;
  readonly kind: string;
  readonly command_id: string | null;
  readonly parent_seq: number | null;
  readonly agent_id: string | null;
  readonly device_id: string | null;
  readonly action: string | null;
  readonly verdict: string | null;
  readonly body: string;
  readonly prev_hash: string;
  readonly hash: string;
}

type IndexedColumns = Pick<
  RecordRow,
  'time_ms' | 'kind' | 'command_id' | 'parent_seq' | 'agent_id' | 'device_id' | 'action' | 'verdict' | 'prev_hash'
>;

// Which body field each indexed column mirrors, in the order verify() reports mismatches.
const COLUMN_FIELDS: readonly (readonly [keyof IndexedColumns, string])[] = [
  ['time_ms', 'timeMs'],
  ['kind', 'kind'],
  ['command_id', 'commandId'],
  ['parent_seq', 'parentSeq'],
  ['agent_id', 'agentId'],
  ['device_id', 'deviceId'],
  ['action', 'action'],
  ['verdict', 'verdict'],
  ['prev_hash', 'prevHash'],
];

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

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
    const instance = new SqliteAuditLog(db, path, log, maxBatch, checkpoints, { ...space, nowMs: options.nowMs ?? Date.now, retentionMs: options.retentionMs });
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

interface SpaceSettings {
  readonly maxPages: number | undefined;
  readonly reservePages: number;
  readonly pageSize: number;
  readonly ballastBytes: number;
}

const PAGE_SIZE = 4096;

function spaceSettings(options: SqliteAuditLogOptions): SpaceSettings {
  const { maxBytes, reserveBytes, ballastBytes } = options;
  const positive = (value: number | undefined, name: string, min: number): void => {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  };
  positive(maxBytes, 'maxBytes', 64 * PAGE_SIZE);
  positive(reserveBytes, 'reserveBytes', 0);
  positive(ballastBytes, 'ballastBytes', 0);
  positive(options.retentionMs, 'retentionMs', 1);
  positive(options.retentionIntervalMs, 'retentionIntervalMs', 1);
  const maxPages = maxBytes === undefined ? undefined : Math.floor(maxBytes / PAGE_SIZE);
  const reserve = reserveBytes ?? (maxBytes === undefined ? 0 : Math.max(64 * 1024, Math.floor(maxBytes * 0.05)));
  const reservePages = Math.ceil(reserve / PAGE_SIZE);
  if (maxPages !== undefined && reservePages >= maxPages / 2) throw new RangeError(`reserveBytes (${reserve}) must be under half of maxBytes (${maxBytes})`);
  return { maxPages, reservePages, pageSize: PAGE_SIZE, ballastBytes: ballastBytes ?? DEFAULT_BALLAST_BYTES };
}

function writeMeta(db: Database.Database, values: Readonly<Record<string, string>>): void {
  const upsert = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  db.transaction(() => {
    for (const [key, value] of Object.entries(values)) upsert.run(key, value);
  }).immediate();
}

function maxBatchOf(maxBatch: number | undefined): number {
  if (maxBatch === undefined) return DEFAULT_MAX_BATCH;
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  return maxBatch;
}

function configure(db: Database.Database): void {
  // SAFETY: WAL + synchronous=FULL is what makes a committed record survive power loss; refuse anything less
  // (an in-memory or read-only path silently stays in another journal mode).
  const journalMode = String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase();
  if (journalMode !== 'wal') throw new Error(`journal_mode is '${journalMode}', not 'wal'`);
  db.pragma('synchronous = FULL');
  const synchronous = Number(db.pragma('synchronous', { simple: true }));
  if (synchronous !== SYNCHRONOUS_FULL) throw new Error(`synchronous is ${synchronous}, not FULL (2)`);
  db.pragma('foreign_keys = ON');
  if (Number(db.pragma('foreign_keys', { simple: true })) !== 1) throw new Error('foreign_keys could not be enabled');
}

function quickCheck(db: Database.Database): void {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  const problems = rows.map((row) => row.quick_check);
  if (problems.length !== 1 || problems[0] !== 'ok') {
    // SQLite may report up to 100 problems, several to a row; the first few are enough to say what broke.
    const lines = problems.join('\n').split('\n').filter((line) => line.trim() !== '');
    const more = lines.length > 5 ? ` (and ${lines.length - 5} more)` : '';
    throw new Error(`quick_check failed: ${lines.slice(0, 5).join('; ')}${more}`);
  }
}

/**
 * Creates the schema in an empty database, or migrates a version 1 or 2 log (adds the checkpoints and meta tables,
 * drops three indexes; records are untouched). Says which it did. Refuses unknown versions and foreign files.
 */
function ensureSchema(db: Database.Database): 'created' | 'migrated' | 'opened' {
  const hasTable = (name: string): boolean =>
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name) !== undefined;
  // IMMEDIATE takes the write lock first, so two processes opening a fresh file cannot both create the schema.
  return db
    .transaction((): 'created' | 'migrated' | 'opened' => {
      const version = Number(db.pragma('user_version', { simple: true }));
      if (version === AUDIT_SCHEMA_VERSION) {
        for (const table of ['records', 'checkpoints', 'meta']) {
          if (!hasTable(table)) throw new Error(`schema version ${version} but no ${table} table`);
        }
        return 'opened';
      }
      if (version === 1 || version === 2) {
        if (!hasTable('records')) throw new Error(`schema version ${version} but no records table`);
        if (version === 1) db.exec(SCHEMA_V2_CHECKPOINTS);
        db.exec(SCHEMA_V3_META);
        db.pragma(`user_version = ${AUDIT_SCHEMA_VERSION}`);
        return 'migrated';
      }
      if (version !== 0) {
        throw new Error(`unknown audit schema version ${version} (this build knows ${AUDIT_SCHEMA_VERSION})`);
      }
      const objects = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number };
      // SAFETY: version 0 with existing tables is some other database; never add our table to it.
      if (objects.n !== 0) throw new Error('not an audit log (schema version 0 but the database has tables)');
      db.exec(SCHEMA_V1);
      db.exec(SCHEMA_V2_CHECKPOINTS);
      db.exec(SCHEMA_V3_META);
      db.pragma(`user_version = ${AUDIT_SCHEMA_VERSION}`);
      return 'created';
    })
    .immediate();
}

/** An accepted entry waiting for its batch: a snapshot of what will be stored, and the caller's promise. */
interface PendingRecord {
  /** The canonical `"key":value` text of each field of the entry, taken when record() was called. */
  readonly fields: readonly CanonicalField[];
  /** The indexed column values, taken from the same entry at the same time (prev_hash comes at flush). */
  readonly columns: Omit<IndexedColumns, 'prev_hash'>;
  /** A safe-state command's record: may use the reserve under the cap and the ballast's room on a full disk. */
  readonly safeState: boolean;
  readonly resolve: (receipt: AuditReceipt) => void;
  readonly reject: (error: Error) => void;
}

export class SqliteAuditLog implements AuditLog {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #log: (msg: string) => void;
  readonly #maxBatch: number;
  readonly #begin: Database.Statement;
  readonly #commit: Database.Statement;
  readonly #rollback: Database.Statement;
  readonly #selectHead: Database.Statement;
  readonly #insert: Database.Statement;
  readonly #selectFrom: Database.Statement;
  readonly #selectAll: Database.Statement;
  #closed = false;
  /** Set when a batch failed after BEGIN: rows may or may not be on disk, so nothing more is written until reopen. */
  #poisoned: string | undefined;
  /** Accepted entries in arrival order; the next flush takes them from the front. */
  #pending: PendingRecord[] = [];
  #flushTimer: NodeJS.Immediate | undefined;
  #commits = 0;
  #committedRecords = 0;
  #largestBatch = 0;
  readonly #checkpoints: CheckpointSettings | undefined;
  /** When this log was opened: the time base for `everyMs` until the first checkpoint. */
  readonly #openedAtMs: number;
  readonly #selectLastCheckpoint: Database.Statement;
  readonly #insertCheckpoint: Database.Statement;
  readonly #selectCheckpoints: Database.Statement;
  readonly #selectHashAt: Database.Statement;
  /** Cancels the idle checkpoint timer, when one is armed. */
  #cancelCheckpointTimer: (() => void) | undefined;
  readonly #space: SpaceSettings & { readonly nowMs: () => number; readonly retentionMs: number | undefined };
  /** Where the chain in this file starts: the seq and hash of the record before the first one stored. */
  #base: AuditHead = { seq: 0, hash: GENESIS_HASH };
  /** The cloud's acknowledgement watermark. */
  #ackSeq = 0;
  /** Pages in use after the last commit (page_count - freelist_count). */
  #usedPages = 0;
  /** Set when the file system ran out of space; cleared when a free-space check finds room again. */
  #diskFull: string | undefined;
  #lastSpaceCheckMs = 0;
  #lastRetentionAttemptMs = 0;
  #retentionTimer: NodeJS.Timeout | undefined;
  /** Set when the last COMMIT failed: which records it tried to write (reconciled by the next open). */
  #unknownOutcome: UnknownOutcome | undefined;
  /** What happened at open that an operator must hear of (a moved-aside file, a reconciliation). */
  readonly notices: string[] = [];
  readonly #selectMeta: Database.Statement;
  readonly #upsertMeta: Database.Statement;

  /** Use `openSqliteAuditLog`; the constructor expects a configured database with the schema in place. */
  constructor(
    db: Database.Database,
    path: string,
    log: (msg: string) => void,
    maxBatch = DEFAULT_MAX_BATCH,
    checkpoints?: CheckpointSettings,
    space: SpaceSettings & { readonly nowMs: () => number; readonly retentionMs: number | undefined } = {
      maxPages: undefined,
      reservePages: 0,
      pageSize: PAGE_SIZE,
      ballastBytes: 0,
      nowMs: Date.now,
      retentionMs: undefined,
    },
  ) {
    this.#db = db;
    this.path = path;
    this.#log = log;
    this.#maxBatch = maxBatchOf(maxBatch);
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#selectHead = db.prepare('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1');
    this.#insert = db.prepare(
      `INSERT INTO records (seq, time_ms, kind, command_id, parent_seq, agent_id, device_id, action, verdict,
                            body, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#selectFrom = db.prepare('SELECT seq, body, hash FROM records WHERE seq >= ? ORDER BY seq LIMIT ?');
    this.#selectAll = db.prepare('SELECT * FROM records ORDER BY seq');
    this.#checkpoints = checkpoints;
    this.#openedAtMs = checkpoints?.nowMs() ?? 0;
    this.#selectLastCheckpoint = db.prepare('SELECT seq, size, time_ms FROM checkpoints ORDER BY seq DESC LIMIT 1');
    this.#insertCheckpoint = db.prepare(
      'INSERT INTO checkpoints (seq, size, head, origin, time_ms, signature) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.#selectCheckpoints = db.prepare('SELECT seq, size, head, origin, time_ms, signature FROM checkpoints ORDER BY seq');
    this.#selectHashAt = db.prepare('SELECT hash FROM records WHERE seq = ?');
    this.#space = space;
    this.#selectMeta = db.prepare('SELECT value FROM meta WHERE key = ?');
    this.#upsertMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    const baseSeq = this.#meta('base_seq');
    const baseHash = this.#meta('base_hash');
    if (baseSeq !== undefined && baseHash !== undefined) this.#base = { seq: Number(baseSeq), hash: baseHash };
    this.#ackSeq = Number(this.#meta('ack_seq') ?? '0');
    this.#usedPages = this.#countUsedPages();
  }

  #meta(key: string): string | undefined {
    return (this.#selectMeta.get(key) as { value: string } | undefined)?.value;
  }

  #countUsedPages(): number {
    return Number(this.#db.pragma('page_count', { simple: true })) - Number(this.#db.pragma('freelist_count', { simple: true }));
  }

  /** Called once by openSqliteAuditLog: reconcile a failed commit, make the ballast, run retention, arm its timer. */
  afterOpen(retentionIntervalMs: number): void {
    const left = loadUnknownOutcome(this.path);
    if (left.problem !== undefined) this.#notice(`unknown-outcome record unreadable: ${left.problem}`);
    if (left.outcome !== undefined) this.#reconcile(left.outcome);
    if (this.#space.ballastBytes > 0) {
      const problem = createBallast(this.path, this.#space.ballastBytes);
      if (problem !== undefined) this.#notice(`no room for the ${this.#space.ballastBytes}-byte ballast file: ${problem}`);
    }
    if (this.#space.retentionMs !== undefined) {
      this.applyRetention();
      this.#retentionTimer = setInterval(() => {
        if (this.#closed) return;
        try {
          this.applyRetention();
        } catch (error) {
          this.#note(`sqlite-audit-log: ${this.path}: retention failed: ${messageOf(error)}`);
        }
      }, retentionIntervalMs);
      this.#retentionTimer.unref();
    }
  }

  #notice(text: string): void {
    this.notices.push(text);
    this.#note(`sqlite-audit-log: ${this.path}: ${text}`);
  }

  /** Writes `entry` now, in its own transaction, outside the batch queue (open-time events). Throws on failure. */
  #writeNow(entry: AuditEntry): AuditReceipt {
    let receipt: AuditReceipt | undefined;
    let failure: Error | undefined;
    this.#pending.unshift({ fields: canonicalFields(entry), columns: columnsOf(entry), safeState: true, resolve: (r) => (receipt = r), reject: (e) => (failure = e) });
    this.#flushBatch(1);
    if (failure !== undefined) throw failure;
    if (receipt === undefined) throw new Error('open-time event was not written');
    return receipt;
  }

  /** The first record of a new segment after a damaged file: names the file and the checkpoint it links to. */
  startSegment(moved: MovedAside, why: string): void {
    const checkpoint = moved.lastCheckpoint;
    this.#writeNow({
      kind: 'event',
      timeMs: Math.trunc(this.#space.nowMs()),
      detail: {
        event: 'audit-segment-started',
        previousFile: moved.movedTo,
        why,
        baseSeq: this.#base.seq,
        baseHash: this.#base.hash,
        lastCheckpoint: checkpoint === undefined ? null : { ...checkpoint },
        ...(moved.checkpointProblem === undefined ? {} : { checkpointProblem: moved.checkpointProblem }),
      },
    });
    this.#notice(
      `damaged log moved to ${moved.movedTo}; new segment starts after ${checkpoint === undefined ? 'nothing (no readable checkpoint)' : `checkpoint ${checkpoint.seq} (record ${checkpoint.size})`}`,
    );
  }

  /** Which of the records a failed COMMIT tried to write are on disk; says so in the chain, then forgets it. */
  #reconcile(outcome: UnknownOutcome): void {
    const present: number[] = [];
    const absent: number[] = [];
    for (const { seq, hash } of outcome.attempted) {
      const stored = this.#selectHashAt.get(seq) as { hash: string } | undefined;
      if (stored?.hash === hash) present.push(seq);
      else absent.push(seq);
    }
    this.#writeNow({
      kind: 'event',
      timeMs: Math.trunc(this.#space.nowMs()),
      detail: {
        event: 'audit-reconciled',
        failedAtMs: outcome.atMs,
        error: outcome.error,
        present,
        absent,
        // The interlock releases nothing whose record did not resolve, so none of these reached a device.
        note: 'the commit of these records failed with an I/O error; none of them was released',
      },
    });
    clearUnknownOutcome(this.path);
    this.#notice(`reconciled a failed commit: records ${present.join(', ') || 'none'} on disk, ${absent.join(', ') || 'none'} absent; none was released`);
  }

  /**
   * Queues the entry for the next group commit and resolves once the transaction holding it is committed. Entries
   * get seqs in call order. An entry that cannot be stored faithfully rejects at once and takes no seq.
   */
  record(entry: AuditEntry, options: RecordOptions = {}): Promise<AuditReceipt> {
    return new Promise<AuditReceipt>((resolve, reject) => {
      if (this.#closed) throw new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path} is closed`);
      if (this.#poisoned !== undefined) throw new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path} refuses writes: ${this.#poisoned}`);
      const safeState = options.safeState === true;
      // SAFETY: ordinary records are refused while the disk is full or the log is at its cap; a safe-state record
      // is still attempted (the ballast's room and the reserve are for it), because stopping is always safe.
      if (!safeState) {
        const refusal = this.#refusal();
        if (refusal !== undefined) throw refusal;
      }
      validateEntry(entry);
      // SAFETY: snapshot now, through the same canonical JSON the body uses: a refused value (NaN, Infinity,
      // a function) rejects this call alone, and a caller mutating the entry later cannot change what is stored.
      const fields = canonicalFields(entry);
      this.#pending.push({ fields, columns: columnsOf(entry), safeState, resolve, reject });
      this.#scheduleFlush();
    });
  }

  /** Why an ordinary record would be refused now, if it would. Retries room at most once a second. */
  #refusal(): AuditWriteError | undefined {
    const nowMs = this.#space.nowMs();
    if (this.#diskFull !== undefined) {
      if (nowMs - this.#lastSpaceCheckMs >= 1_000) {
        this.#lastSpaceCheckMs = nowMs;
        this.#checkSpaceReturned();
      }
      if (this.#diskFull !== undefined) return new AuditWriteError('AUDIT_DISK_FULL', `audit log ${this.path}: the disk is full (${this.#diskFull}); only safe-state records are written`);
    }
    const { maxPages, reservePages } = this.#space;
    if (maxPages !== undefined && this.#usedPages + this.#pendingPages() >= maxPages - reservePages) {
      if (this.#space.retentionMs !== undefined && nowMs - this.#lastRetentionAttemptMs >= 1_000) {
        this.#lastRetentionAttemptMs = nowMs;
        try {
          this.applyRetention();
        } catch (error) {
          this.#note(`sqlite-audit-log: ${this.path}: retention failed: ${messageOf(error)}`);
        }
      }
      if (this.#usedPages + this.#pendingPages() >= maxPages - reservePages) {
        const head = this.#readHead();
        return new AuditWriteError(
          'AUDIT_LOG_FULL',
          `audit log ${this.path} is at its cap (${maxPages * this.#space.pageSize} bytes less a ${reservePages * this.#space.pageSize}-byte reserve for safe-state records) with ${head.seq - this.#ackSeq} records the cloud has not acknowledged`,
        );
      }
    }
    return undefined;
  }

  /** A pessimistic page estimate for what is queued but not committed (a record is well under 1 KiB). */
  #pendingPages(): number {
    return Math.ceil((this.#pending.length * 1024) / this.#space.pageSize);
  }

  /** The disk was full: if there is room again for the ballast and as much again, make the ballast and go on. */
  #checkSpaceReturned(): void {
    const free = freeBytes(this.path);
    const wanted = Math.max(2 * this.#space.ballastBytes, 1024 * 1024);
    if (free === undefined || free < wanted) return;
    const problem = this.#space.ballastBytes > 0 ? createBallast(this.path, this.#space.ballastBytes) : undefined;
    if (problem !== undefined) return;
    this.#note(`sqlite-audit-log: ${this.path}: space returned (${free} bytes free); ballast restored, ordinary records accepted again`);
    this.#diskFull = undefined;
  }

  /** SQLITE_FULL that is not the cap: the disk is out of space. Gives the ballast's room to the log. */
  #onDiskFull(why: string): void {
    const first = this.#diskFull === undefined;
    this.#diskFull = why;
    this.#lastSpaceCheckMs = this.#space.nowMs();
    const released = releaseBallast(this.path);
    if (first) this.#note(`sqlite-audit-log: ${this.path}: disk full (${why}); ${released ? 'ballast deleted to make room; ' : ''}only safe-state records are written until space returns`);
  }

  /**
   * The cloud acknowledged every record up to `uptoSeq` (its application-level watermark). Kept in the database;
   * never moves back (a lower value changes nothing). Returns the watermark in force. Throws beyond the head.
   */
  acknowledge(uptoSeq: number): number {
    this.#assertOpen();
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq < 0) throw new RangeError(`acknowledge: seq must be a non-negative integer, got ${uptoSeq}`);
    const head = this.#readHead();
    if (uptoSeq > head.seq) throw new RangeError(`acknowledge: seq ${uptoSeq} is beyond the last record (${head.seq})`);
    if (uptoSeq <= this.#ackSeq) return this.#ackSeq;
    this.#db.transaction(() => this.#upsertMeta.run('ack_seq', String(uptoSeq))).immediate();
    this.#ackSeq = uptoSeq;
    // A new watermark may be what a full log waits for: let the next refusal try retention at once.
    this.#lastRetentionAttemptMs = 0;
    return uptoSeq;
  }

  /** The cloud's acknowledgement watermark. */
  acknowledgedSeq(): number {
    return this.#ackSeq;
  }

  /** The oldest records the cloud has not acknowledged yet (the outbox), at most `limit`. */
  unacknowledged(limit: number): AuditRecord[] {
    return this.read(this.#ackSeq + 1, limit);
  }

  /**
   * Deletes the oldest records that are both acknowledged by the cloud and older than the declared retention, in one
   * transaction with a retention record appended to the chain that names the new base (the last deleted record's seq
   * and hash), so verify can start there. Runs on open, every retention interval and when the cap is reached.
   */
  applyRetention(): RetentionResult {
    this.#assertOpen();
    const retentionMs = this.#space.retentionMs;
    const firstStored = (): number => ((this.#db.prepare('SELECT MIN(seq) AS s FROM records').get() as { s: number | null }).s ?? this.#base.seq + 1);
    if (retentionMs === undefined || this.#poisoned !== undefined) return { deleted: 0, firstSeq: firstStored() };
    // Whatever is queued goes first, so the retention record takes the next seq after it.
    while (this.#pending.length > 0) this.#flushBatch();
    const nowMs = Math.trunc(this.#space.nowMs());
    const cutoff = nowMs - retentionMs;
    // The first record too young to go; everything before it (and acknowledged) may be deleted.
    const young = this.#db.prepare('SELECT MIN(seq) AS s FROM records WHERE seq > ? AND time_ms >= ?').get(this.#base.seq, cutoff) as { s: number | null };
    const limit = Math.min(this.#ackSeq, (young.s ?? Number.MAX_SAFE_INTEGER) - 1);
    if (limit <= this.#base.seq) return { deleted: 0, firstSeq: firstStored() };
    const newBase = this.#selectHashAt.get(limit) as { hash: string } | undefined;
    if (newBase === undefined) throw new Error(`retention: record ${limit} is missing`);
    const from = this.#base.seq + 1;
    let deleted = 0;
    this.#begin.run();
    try {
      const head = this.#readHead();
      const entry: AuditEntry = {
        kind: 'event',
        timeMs: nowMs,
        detail: { event: 'audit-retention', deletedFrom: from, deletedTo: limit, baseSeq: limit, baseHash: newBase.hash, acknowledgedSeq: this.#ackSeq, retentionMs },
      };
      const seq = head.seq + 1;
      const body = bodyText(canonicalFields(entry), seq, head.hash);
      const c = columnsOf(entry);
      this.#insert.run(seq, c.time_ms, c.kind, c.command_id, c.parent_seq, c.agent_id, c.device_id, c.action, c.verdict, body, head.hash, sha256Hex(body));
      deleted = this.#db.prepare('DELETE FROM records WHERE seq <= ?').run(limit).changes;
      this.#upsertMeta.run('base_seq', String(limit));
      this.#upsertMeta.run('base_hash', newBase.hash);
      this.#commit.run();
    } catch (error) {
      this.#rollbackQuietly();
      throw error;
    }
    this.#base = { seq: limit, hash: newBase.hash };
    this.#usedPages = this.#countUsedPages();
    this.#note(`sqlite-audit-log: ${this.path}: retention deleted records ${from}..${limit} (acknowledged and older than ${retentionMs} ms)`);
    return { deleted, firstSeq: limit + 1 };
  }

  /** How the log is doing now. */
  health(): AuditHealth {
    const head = this.#closed ? { seq: 0 } : this.#readHead();
    const { maxPages, reservePages, pageSize } = this.#space;
    const full = maxPages !== undefined && this.#usedPages >= maxPages - reservePages;
    const state = this.#closed || this.#poisoned !== undefined ? 'refusing' : this.#diskFull !== undefined ? 'disk-full' : full ? 'full' : 'ok';
    return {
      state,
      headSeq: head.seq,
      acknowledgedSeq: this.#ackSeq,
      unacknowledged: Math.max(0, head.seq - this.#ackSeq),
      usedBytes: this.#usedPages * pageSize,
      maxBytes: maxPages === undefined ? undefined : maxPages * pageSize,
      ballastPresent: this.#space.ballastBytes > 0 && ballastPresent(this.path, this.#space.ballastBytes),
      problem: this.#closed ? 'closed' : (this.#poisoned ?? this.#diskFull),
    };
  }

  /** Commit counters since open (how many records shared each transaction). */
  stats(): SqliteAuditStats {
    return {
      commits: this.#commits,
      records: this.#committedRecords,
      largestBatch: this.#largestBatch,
      pending: this.#pending.length,
    };
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined) return;
    // setImmediate runs after the I/O callbacks of this turn, so records issued together land in one batch.
    this.#flushTimer = setImmediate(() => {
      this.#flushTimer = undefined;
      this.#flushBatch();
      if (this.#pending.length > 0) this.#scheduleFlush();
    });
  }

  /** Commits the oldest waiting entries (at most maxBatch) in one transaction, then settles their promises. */
  #flushBatch(count = this.#maxBatch): void {
    const batch = this.#pending.splice(0, count);
    if (batch.length === 0) return;
    if (this.#poisoned !== undefined) {
      this.#rejectAll(batch, new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path} refuses writes: ${this.#poisoned}`));
      return;
    }
    try {
      this.#begin.run();
    } catch (error) {
      // Nothing was started, so nothing is stored and no seq is taken; the next batch may try again.
      this.#rejectAll(batch, new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path}: could not begin a write: ${messageOf(error)}`, { cause: error }));
      return;
    }
    const receipts: AuditReceipt[] = [];
    let first = Number.NaN;
    try {
      // The next seq and prevHash come from the database inside the write transaction, never from a cache,
      // so the chain cannot fork from what is actually stored.
      const head = this.#readHead();
      first = head.seq + 1;
      let prevHash = head.hash;
      for (const pending of batch) {
        const seq = head.seq + receipts.length + 1;
        const body = bodyText(pending.fields, seq, prevHash);
        const hash = sha256Hex(body);
        const c = pending.columns;
        this.#insert.run(seq, c.time_ms, c.kind, c.command_id, c.parent_seq, c.agent_id, c.device_id, c.action, c.verdict, body, prevHash, hash);
        receipts.push({ seq, hash });
        prevHash = hash;
      }
      // In the same transaction as the records it covers, so a checkpoint never names records that are not stored.
      this.#checkpointIfDue({ seq: head.seq + batch.length, hash: prevHash }, false);
    } catch (error) {
      this.#rollbackQuietly();
      if (isFull(error) && this.#readHead().seq === first - 1) {
        this.#onFull(batch, error);
        return;
      }
      // SAFETY: any other write failure inside the transaction rolls back the whole batch; the log then stops
      // writing, because a storage error here means the infrastructure is broken.
      const seqs = Number.isNaN(first) ? `a batch of ${batch.length}` : `seqs ${first}..${first + batch.length - 1}`;
      this.#poison(batch, 'AUDIT_UNAVAILABLE', `write of ${seqs} failed before commit (${messageOf(error)}); restart to reopen the log`, error);
      return;
    }
    try {
      this.#commit.run();
    } catch (error) {
      this.#rollbackQuietly();
      // A full disk or cap at COMMIT is rolled back cleanly in WAL mode; the head says whether that is so.
      if (isFull(error) && this.#readHeadQuietly()?.seq === first - 1) {
        this.#onFull(batch, error);
        return;
      }
      // SAFETY: a failed COMMIT (e.g. SQLITE_IOERR_FSYNC) leaves the outcome unknown: the rows may be on disk
      // after a restart. Reject every record of the batch, remember what was attempted for the next open to
      // reconcile, and refuse further writes until then.
      const last = first + batch.length - 1;
      this.#unknownOutcome = { atMs: Date.now(), error: messageOf(error), attempted: receipts.map((r) => ({ seq: r.seq, hash: r.hash })) };
      const unsaved = saveUnknownOutcome(this.path, this.#unknownOutcome);
      if (unsaved !== undefined) this.#note(`sqlite-audit-log: ${this.path}: could not save the unknown-outcome record (${unsaved}); seqs ${first}..${last}`);
      this.#poison(batch, 'AUDIT_OUTCOME_UNKNOWN', `commit of seqs ${first}..${last} failed, outcome unknown (${messageOf(error)}); reconciled when the log reopens`, error);
      return;
    }
    this.#commits += 1;
    this.#committedRecords += batch.length;
    this.#largestBatch = Math.max(this.#largestBatch, batch.length);
    this.#usedPages = this.#countUsedPages();
    batch.forEach((pending, index) => {
      const receipt = receipts[index];
      // Unreachable: one receipt was pushed per entry before the COMMIT.
      if (receipt === undefined) pending.reject(new Error(`audit log ${this.path}: no receipt for a committed entry`));
      else pending.resolve(receipt);
    });
    this.#armCheckpointTimer();
  }

  /**
   * SQLITE_FULL, rolled back: nothing of the batch is stored. At the cap it is AUDIT_LOG_FULL, otherwise the disk is
   * full (the ballast goes). Ordinary records are rejected; the batch's safe-state records are tried again alone.
   */
  #onFull(batch: readonly PendingRecord[], error: unknown): void {
    const maxPages = this.#space.maxPages;
    const pages = Number(this.#db.pragma('page_count', { simple: true }));
    const atCap = maxPages !== undefined && pages >= maxPages - 1;
    const code: AuditFailureCode = atCap ? 'AUDIT_LOG_FULL' : 'AUDIT_DISK_FULL';
    if (!atCap) this.#onDiskFull(messageOf(error));
    const safe = batch.filter((p) => p.safeState);
    const ordinary = batch.filter((p) => !p.safeState);
    const why = atCap ? `at its cap of ${pages} pages` : 'the disk is full';
    this.#rejectAll(ordinary, new AuditWriteError(code, `audit log ${this.path}: not recorded, ${why} (${messageOf(error)})`, { cause: error }));
    if (safe.length === 0) return;
    if (safe.length === batch.length && this.#retriedSafe) {
      // Already retried alone and still no room: nothing more this log can do for them.
      this.#retriedSafe = false;
      this.#rejectAll(safe, new AuditWriteError(code, `audit log ${this.path}: safe-state record not recorded, ${why} (${messageOf(error)})`, { cause: error }));
      return;
    }
    this.#retriedSafe = true;
    this.#pending.unshift(...safe);
    this.#flushBatch(safe.length);
    this.#retriedSafe = false;
  }

  #retriedSafe = false;

  #readHeadQuietly(): AuditHead | undefined {
    try {
      return this.#readHead();
    } catch {
      return undefined;
    }
  }

  /**
   * Inside an open write transaction: inserts a signed checkpoint for `head` when enough records or time have
   * passed since the last one (or whenever `force` and records are uncovered). Throws on failure, like the insert.
   */
  #checkpointIfDue(head: AuditHead, force: boolean): void {
    const settings = this.#checkpoints;
    if (settings === undefined) return;
    const last = this.#selectLastCheckpoint.get() as { seq: number; size: number; time_ms: number } | undefined;
    const lastSize = last?.size ?? 0;
    if (head.seq <= lastSize) return;
    const nowMs = settings.nowMs();
    const due =
      force || head.seq - lastSize >= settings.everyRecords || nowMs - (last?.time_ms ?? this.#openedAtMs) >= settings.everyMs;
    if (!due) return;
    const checkpoint = signCheckpoint(
      { seq: (last?.seq ?? 0) + 1, size: head.seq, head: head.hash, origin: settings.origin, timeMs: nowMs },
      settings.privateKey,
    );
    const { seq, size, origin, timeMs, signature } = checkpoint;
    this.#insertCheckpoint.run(seq, size, checkpoint.head, origin, timeMs, signature);
  }

  /** After a commit: makes sure records still uncovered everyMs from now get a checkpoint even if no write comes. */
  #armCheckpointTimer(): void {
    const settings = this.#checkpoints;
    if (settings === undefined || this.#cancelCheckpointTimer !== undefined) return;
    try {
      this.#cancelCheckpointTimer = settings.setTimer(() => {
        this.#cancelCheckpointTimer = undefined;
        this.#idleCheckpoint();
      }, settings.everyMs);
    } catch (error) {
      // Only the idle checkpoint is lost; the next write or close still writes one.
      this.#note(`sqlite-audit-log: ${this.path}: idle checkpoint timer not started: ${messageOf(error)}`);
    }
  }

  /** The idle timer fired: checkpoint whatever is uncovered, unless a flush is about to (it checks on its own). */
  #idleCheckpoint(): void {
    if (this.#closed || this.#poisoned !== undefined || this.#pending.length > 0) return;
    try {
      this.#begin.run();
    } catch (error) {
      // Nothing started; the next write or close checks again.
      this.#note(`sqlite-audit-log: ${this.path}: idle checkpoint not started: ${messageOf(error)}`);
      return;
    }
    try {
      this.#checkpointIfDue(this.#readHead(), true);
      this.#commit.run();
    } catch (error) {
      // SAFETY: as with records, a failed write or COMMIT leaves the file in doubt: stop writing until reopen.
      this.#rollbackQuietly();
      this.#poison([], 'AUDIT_OUTCOME_UNKNOWN', `checkpoint write failed, outcome unknown (${messageOf(error)}); restart to reopen the log`, error);
    }
  }

  /** On close: one more checkpoint covering every record, in its own transaction. A failure is logged only. */
  #finalCheckpoint(): void {
    if (this.#checkpoints === undefined) return;
    try {
      this.#begin.run();
      this.#checkpointIfDue(this.#readHead(), true);
      this.#commit.run();
    } catch (error) {
      // The records are already committed; only truncation detection for the newest ones waits for the next run.
      this.#rollbackQuietly();
      this.#note(`sqlite-audit-log: ${this.path}: final checkpoint not written: ${messageOf(error)}`);
    }
  }

  /** Marks the log unwritable and rejects the failed batch and everything still waiting. */
  #poison(batch: readonly PendingRecord[], code: AuditFailureCode, why: string, cause: unknown): void {
    this.#poisoned = why;
    this.#note(`sqlite-audit-log: ${this.path}: ${why}`);
    this.#rejectAll(batch, new AuditWriteError(code, `audit log ${this.path}: ${why}`, { cause }));
    const waiting = this.#pending.splice(0);
    this.#rejectAll(waiting, new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path} refuses writes: ${why}`, { cause }));
  }

  /** Logs without letting a throwing logger escape a flush (which would leave promises unsettled). */
  #note(msg: string): void {
    try {
      this.#log(msg);
    } catch {
      // The log line is lost; the rejection the caller gets still says what happened.
    }
  }

  #rejectAll(batch: readonly PendingRecord[], error: Error): void {
    for (const pending of batch) pending.reject(error);
  }

  read(fromSeq: number, limit: number): AuditRecord[] {
    this.#assertOpen();
    if (!Number.isSafeInteger(fromSeq)) throw new RangeError(`read: fromSeq must be an integer, got ${fromSeq}`);
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`read: limit must be a non-negative integer, got ${limit}`);
    }
    if (limit === 0) return [];
    const rows = this.#selectFrom.all(fromSeq, limit) as Pick<RecordRow, 'seq' | 'body' | 'hash'>[];
    return rows.map((row) => {
      const body = parseBody(row.body);
      if (typeof body === 'string') throw new Error(`audit log ${this.path}: record ${row.seq}: ${body}`);
      return { ...(body as unknown as Omit<AuditRecord, 'hash'>), hash: row.hash };
    });
  }

  /**
   * Checks sequence and hash chain, then every checkpoint: numbered from 1, sizes never shrinking, each size
   * reached by the records with the signed head hash there (so dropped newest records show). With `publicKey`,
   * a checkpoint whose signature does not verify is a problem; without it signatures are not checked.
   */
  verify(publicKey?: KeyObject): VerifyResult {
    this.#assertOpen();
    // Where the chain in this file starts, as stored: after retention or a new segment, some record must attest it.
    let base: AuditHead;
    try {
      const seq = this.#meta('base_seq');
      const hash = this.#meta('base_hash');
      base = seq === undefined && hash === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: Number(seq), hash: String(hash) };
    } catch (error) {
      return { ok: false, seq: 1, problem: `the chain's base could not be read (${messageOf(error)})` };
    }
    if (!Number.isSafeInteger(base.seq) || base.seq < 0 || !HASH_PATTERN.test(base.hash)) {
      return { ok: false, seq: 1, problem: `the chain's base (seq ${base.seq}, hash ${base.hash}) is malformed (edited?)` };
    }
    let attested = base.seq === 0 && base.hash === GENESIS_HASH;
    let expectedSeq = base.seq + 1;
    let prevHash = base.hash;
    try {
      for (const row of this.#selectAll.iterate() as IterableIterator<RecordRow>) {
        const problem = checkRow(row, expectedSeq, prevHash, base.seq);
        if (problem !== undefined) return { ok: false, seq: problem.seq, problem: problem.text };
        if (!attested && row.kind === 'event') {
          const detail = (JSON.parse(row.body) as { detail?: Record<string, unknown> }).detail;
          attested = BASE_EVENTS.includes(String(detail?.['event'])) && detail?.['baseSeq'] === base.seq && detail?.['baseHash'] === base.hash;
        }
        expectedSeq += 1;
        prevHash = row.hash;
      }
    } catch (error) {
      // SAFETY: a log that cannot be read back is not verified.
      return { ok: false, seq: expectedSeq, problem: `record ${expectedSeq}: could not be read (${messageOf(error)})` };
    }
    // SAFETY: a base moved without a retention (or segment) record in the chain means records were deleted.
    if (!attested) {
      return { ok: false, seq: base.seq + 1, problem: `the chain starts after record ${base.seq}, but no retention or segment record attests that (records deleted?)` };
    }
    const records = expectedSeq - 1;
    const problem = this.#checkCheckpoints(records, publicKey, base);
    if (problem !== undefined) return { ok: false, seq: problem.seq, problem: problem.text };
    return { ok: true, records, headHash: prevHash };
  }

  #checkCheckpoints(records: number, publicKey: KeyObject | undefined, base: AuditHead): RowProblem | undefined {
    let expectedSeq = 1;
    let lastSize = 0;
    try {
      for (const row of this.#selectCheckpoints.iterate() as IterableIterator<CheckpointRow>) {
        const checkpoint: AuditCheckpoint = {
          seq: row.seq,
          size: row.size,
          head: row.head,
          origin: row.origin,
          timeMs: row.time_ms,
          signature: row.signature,
        };
        const at = (text: string): RowProblem => ({ seq: Math.min(row.size, records + 1), text: `checkpoint ${row.seq}: ${text}` });
        if (row.seq !== expectedSeq) return at(`expected checkpoint ${expectedSeq} here (checkpoints deleted or reordered?)`);
        // SAFETY: the signature first, so a forged checkpoint is reported as forged and nothing it claims is used.
        if (publicKey !== undefined && !checkpointSignatureValid(checkpoint, publicKey)) {
          return at('signature does not verify (forged or edited?)');
        }
        if (!Number.isSafeInteger(row.size) || row.size < lastSize) return at(`size ${row.size} is below the previous ${lastSize}`);
        if (row.size > records) {
          const missing = row.size === records + 1 ? `record ${row.size} missing` : `records ${records + 1}..${row.size} missing`;
          return { seq: records + 1, text: `${missing}: checkpoint ${row.seq} covers ${row.size} records (truncated?)` };
        }
        // A checkpoint of records retention has deleted can only be checked at the base itself.
        const stored = row.size === base.seq ? { hash: base.hash } : (this.#selectHashAt.get(row.size) as { hash: string } | undefined);
        if (row.size > 0 && row.size >= base.seq && stored?.hash !== row.head) {
          return at(`record ${row.size} has hash ${stored?.hash ?? 'none'}, not the checkpoint head ${row.head} (records replaced?)`);
        }
        expectedSeq += 1;
        lastSize = row.size;
      }
    } catch (error) {
      // SAFETY: checkpoints that cannot be read back are not verified.
      return { seq: records + 1, text: `checkpoint ${expectedSeq}: could not be read (${messageOf(error)})` };
    }
    return undefined;
  }

  /** The newest signed checkpoint as stored (undefined before the first), for the audit forwarder to send along. */
  latestCheckpoint(): AuditCheckpoint | undefined {
    this.#assertOpen();
    const row = this.#db.prepare('SELECT seq, size, head, origin, time_ms, signature FROM checkpoints ORDER BY seq DESC LIMIT 1').get() as CheckpointRow | undefined;
    return row === undefined ? undefined : { seq: row.seq, size: row.size, head: row.head, origin: row.origin, timeMs: row.time_ms, signature: row.signature };
  }

  /** The last record's seq and hash (seq 0 and GENESIS_HASH when empty), as stored. */
  head(): AuditHead {
    this.#assertOpen();
    return this.#readHead();
  }

  /** The pragmas in force on this connection (synchronous is per connection, so only this one can tell). */
  pragmas(): SqliteAuditPragmas {
    this.#assertOpen();
    return {
      journalMode: String(this.#db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.#db.pragma('synchronous', { simple: true })),
      foreignKeys: Number(this.#db.pragma('foreign_keys', { simple: true })) === 1,
    };
  }

  /** Commits every entry still waiting (or rejects it, if its batch fails), then closes; nothing is dropped. */
  close(): void {
    if (this.#closed) return;
    if (this.#flushTimer !== undefined) clearImmediate(this.#flushTimer);
    this.#cancelCheckpointTimer?.();
    this.#cancelCheckpointTimer = undefined;
    this.#flushTimer = undefined;
    if (this.#retentionTimer !== undefined) clearInterval(this.#retentionTimer);
    this.#retentionTimer = undefined;
    while (this.#pending.length > 0) this.#flushBatch();
    if (this.#poisoned === undefined) this.#finalCheckpoint();
    this.#closed = true;
    this.#db.close();
  }

  #readHead(): AuditHead {
    const row = this.#selectHead.get() as { seq: number; hash: string } | undefined;
    return row === undefined ? this.#base : { seq: row.seq, hash: row.hash };
  }

  #rollbackQuietly(): void {
    try {
      if (this.#db.inTransaction) this.#rollback.run();
    } catch (error) {
      // The caller is already failing with the original error, which is the one worth reporting.
      this.#note(`sqlite-audit-log: ${this.path}: rollback failed: ${messageOf(error)}`);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`audit log ${this.path} is closed`);
  }
}

// Minimal shape checks: enough that the indexed columns always mirror the body exactly (a mismatch would later
// read as tampering). The types already say this; these catch untyped callers.
function validateEntry(entry: AuditEntry): void {
  if (typeof entry !== 'object' || entry === null) throw new TypeError('audit entry must be an object');
  for (const reserved of ['seq', 'prevHash', 'hash']) {
    // The log assigns these; an entry carrying them is a caller bug (e.g. re-recording a record).
    if (Object.hasOwn(entry, reserved)) throw new TypeError(`audit entry must not carry '${reserved}'`);
  }
  if (!KINDS.includes(entry.kind)) throw new TypeError(`audit entry kind must be one of ${KINDS.join(', ')}`);
  // SAFETY: a NaN or fractional time would make the record unorderable by time; refuse it rather than store it.
  if (!Number.isSafeInteger(entry.timeMs) || entry.timeMs < 0) {
    throw new TypeError(`audit entry timeMs must be a non-negative integer, got ${String(entry.timeMs)}`);
  }
  if (entry.parentSeq !== undefined && (!Number.isSafeInteger(entry.parentSeq) || entry.parentSeq < 1)) {
    throw new TypeError(`audit entry parentSeq must be a positive integer, got ${String(entry.parentSeq)}`);
  }
  for (const field of ['commandId', 'agentId', 'deviceId', 'action', 'verdict'] as const) {
    const value = entry[field];
    if (value !== undefined && typeof value !== 'string') throw new TypeError(`audit entry ${field} must be a string`);
  }
}

/** One top-level member of a canonical JSON object: its key, and `"key":value` as canonicalJson writes it. */
type CanonicalField = readonly [key: string, text: string];

/**
 * The entry's members as canonicalJson would write them (undefined members omitted). Taken at record() time so a
 * value JSON cannot carry rejects that call alone, and the text is fixed before the caller can change the entry.
 */
function canonicalFields(entry: AuditEntry): CanonicalField[] {
  const fields: CanonicalField[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (value !== undefined) fields.push([key, `${JSON.stringify(key)}:${canonicalJson(value)}`]);
  }
  return fields;
}

/**
 * The stored body: exactly canonicalJson({...entry, seq, prevHash}) (keys sorted as Array.prototype.sort does,
 * by UTF-16 code units), built from the snapshot so no value is serialized twice. A test holds it to that.
 */
function bodyText(fields: readonly CanonicalField[], seq: number, prevHash: string): string {
  const all: CanonicalField[] = [...fields, ['prevHash', `"prevHash":${JSON.stringify(prevHash)}`], ['seq', `"seq":${seq}`]];
  all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${all.map(([, text]) => text).join(',')}}`;
}

function columnsOf(entry: AuditEntry): Omit<IndexedColumns, 'prev_hash'> {
  return {
    time_ms: entry.timeMs,
    kind: entry.kind,
    command_id: entry.commandId ?? null,
    parent_seq: entry.parentSeq ?? null,
    agent_id: entry.agentId ?? null,
    device_id: entry.deviceId ?? null,
    action: entry.action ?? null,
    verdict: entry.verdict ?? null,
  };
}

/** The parsed body, or a description of why it is not a record body. */
function parseBody(text: string): Record<string, unknown> | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return `body is not JSON (${messageOf(error)})`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'body is not a JSON object';
  return parsed as Record<string, unknown>;
}

interface CheckpointRow {
  readonly seq: number;
  readonly size: number;
  readonly head: string;
  readonly origin: string;
  readonly time_ms: number;
  readonly signature: string;
}

interface RowProblem {
  readonly seq: number;
  readonly text: string;
}

/** The first problem with one row, given the seq and prevHash the chain expects there. */
function checkRow(row: RecordRow, expectedSeq: number, prevHash: string, baseSeq = 0): RowProblem | undefined {
  const at = (text: string): RowProblem => ({ seq: expectedSeq, text: `record ${expectedSeq}: ${text}` });
  if (row.seq < expectedSeq) return at(`unexpected record with seq ${row.seq} before it`);
  if (row.seq !== expectedSeq) {
    const last = row.seq - 1;
    const missing = last === expectedSeq ? `record ${expectedSeq} missing` : `records ${expectedSeq}..${last} missing`;
    const where = expectedSeq === baseSeq + 1 ? `log starts at ${row.seq}` : `gap between ${expectedSeq - 1} and ${row.seq}`;
    return { seq: expectedSeq, text: `${missing} (${where})` };
  }
  if (typeof row.body !== 'string') return at('body is not text');
  const body = parseBody(row.body);
  if (typeof body === 'string') return at(body);
  if (body['seq'] !== row.seq) return at(`body says seq ${JSON.stringify(body['seq'])} (reordered or moved?)`);
  if (typeof row.hash !== 'string' || !HASH_PATTERN.test(row.hash)) return at('hash column is not a sha256 hex digest');
  if (sha256Hex(row.body) !== row.hash) return at('hash does not match its body (edited?)');
  if (body['prevHash'] !== prevHash) {
    return expectedSeq === baseSeq + 1
      ? at(baseSeq === 0 ? 'prevHash is not the genesis hash (chain replaced?)' : `prevHash is not the base hash after record ${baseSeq} (chain replaced?)`)
      : at(`prevHash does not match the hash of record ${expectedSeq - 1} (record ${expectedSeq - 1} rewritten?)`);
  }
  // Only now is the body trusted; the columns must mirror it so that queries on them tell the truth.
  for (const [column, field] of COLUMN_FIELDS) {
    const expected = body[field] ?? null;
    if (row[column] !== expected) {
      const says = `${JSON.stringify(row[column])} but the body says ${JSON.stringify(expected)}`;
      return at(`column ${column} is ${says} (column edited?)`);
    }
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** SQLITE_FULL: the cap (max_page_count) or the file system is out of room; SQLite rolled the statement back. */
function isFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'SQLITE_FULL';
}
