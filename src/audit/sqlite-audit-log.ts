// The SQLite audit log: a gapless, sha256-chained record of every decision, in WAL mode with synchronous=FULL.
// Records arriving together share one transaction (group commit); optional signed checkpoints make truncation
// detectable. It must never resolve `record` for a row that is not committed, and never rewrite or delete a record.

import { createHash, type KeyObject } from 'node:crypto';
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
} from './audit-log.js';

/** The schema this build writes and reads, kept in `PRAGMA user_version`. */
export const AUDIT_SCHEMA_VERSION = 2;

export interface SqliteAuditLogOptions {
  /** Receives one-line operational messages (open, schema creation, write failures). */
  readonly log?: (msg: string) => void;
  /** The most records one transaction commits; more waiting records go to the next one. Default 1,000. */
  readonly maxBatch?: number;
  /** Signed checkpoints (size, head) so that truncation is detectable; none are written without this. */
  readonly checkpoints?: AuditCheckpointOptions;
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
 * opened, is not an audit log of a known schema version, fails the integrity check, or cannot run in WAL mode.
 */
export function openSqliteAuditLog(path: string, options: SqliteAuditLogOptions = {}): SqliteAuditLog {
  const log = options.log ?? (() => {});
  let db: Database.Database | undefined;
  try {
    db = new Database(path);
    configure(db);
    // SAFETY: check integrity before writing anything, so a damaged log is never extended.
    quickCheck(db);
    const maxBatch = maxBatchOf(options.maxBatch);
    const checkpoints = options.checkpoints === undefined ? undefined : checkpointSettings(options.checkpoints);
    const verb = ensureSchema(db);
    const instance = new SqliteAuditLog(db, path, log, maxBatch, checkpoints);
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
 * Creates the schema in an empty database, or migrates a version 1 log (adds the checkpoints table; records are
 * untouched). Says which it did. Refuses unknown versions and foreign files.
 */
function ensureSchema(db: Database.Database): 'created' | 'migrated' | 'opened' {
  const hasTable = (name: string): boolean =>
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(name) !== undefined;
  // IMMEDIATE takes the write lock first, so two processes opening a fresh file cannot both create the schema.
  return db
    .transaction((): 'created' | 'migrated' | 'opened' => {
      const version = Number(db.pragma('user_version', { simple: true }));
      if (version === AUDIT_SCHEMA_VERSION) {
        if (!hasTable('records')) throw new Error(`schema version ${version} but no records table`);
        if (!hasTable('checkpoints')) throw new Error(`schema version ${version} but no checkpoints table`);
        return 'opened';
      }
      if (version === 1) {
        if (!hasTable('records')) throw new Error('schema version 1 but no records table');
        db.exec(SCHEMA_V2_CHECKPOINTS);
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

  /** Use `openSqliteAuditLog`; the constructor expects a configured database with the schema in place. */
  constructor(
    db: Database.Database,
    path: string,
    log: (msg: string) => void,
    maxBatch = DEFAULT_MAX_BATCH,
    checkpoints?: CheckpointSettings,
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
  }

  /**
   * Queues the entry for the next group commit and resolves once the transaction holding it is committed. Entries
   * get seqs in call order. An entry that cannot be stored faithfully rejects at once and takes no seq.
   */
  record(entry: AuditEntry, _options: RecordOptions = {}): Promise<AuditReceipt> {
    return new Promise<AuditReceipt>((resolve, reject) => {
      if (this.#closed) throw new Error(`audit log ${this.path} is closed`);
      if (this.#poisoned !== undefined) throw new Error(`audit log ${this.path} refuses writes: ${this.#poisoned}`);
      validateEntry(entry);
      // SAFETY: snapshot now, through the same canonical JSON the body uses: a refused value (NaN, Infinity,
      // a function) rejects this call alone, and a caller mutating the entry later cannot change what is stored.
      const fields = canonicalFields(entry);
      this.#pending.push({ fields, columns: columnsOf(entry), resolve, reject });
      this.#scheduleFlush();
    });
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
  #flushBatch(): void {
    const batch = this.#pending.splice(0, this.#maxBatch);
    if (batch.length === 0) return;
    if (this.#poisoned !== undefined) {
      this.#rejectAll(batch, new Error(`audit log ${this.path} refuses writes: ${this.#poisoned}`));
      return;
    }
    try {
      this.#begin.run();
    } catch (error) {
      // Nothing was started, so nothing is stored and no seq is taken; the next batch may try again.
      this.#rejectAll(batch, new Error(`audit log ${this.path}: could not begin a write: ${messageOf(error)}`, { cause: error }));
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
      // SAFETY: a write failing inside the transaction rolls back the whole batch; the log then stops writing,
      // because a storage error here means the infrastructure is broken, and later seqs must not skip this batch.
      this.#rollbackQuietly();
      const seqs = Number.isNaN(first) ? `a batch of ${batch.length}` : `seqs ${first}..${first + batch.length - 1}`;
      this.#poison(batch, `write of ${seqs} failed before commit (${messageOf(error)}); reopen to reconcile`, error);
      return;
    }
    try {
      this.#commit.run();
    } catch (error) {
      // SAFETY: a failed COMMIT (e.g. SQLITE_IOERR_FSYNC) leaves the outcome unknown: the rows may be on disk
      // after a restart. Reject every record of the batch, and refuse further writes until a reopen reconciles.
      const last = first + batch.length - 1;
      this.#rollbackQuietly();
      this.#poison(batch, `commit of seqs ${first}..${last} failed, outcome unknown (${messageOf(error)}); reopen to reconcile`, error);
      return;
    }
    this.#commits += 1;
    this.#committedRecords += batch.length;
    this.#largestBatch = Math.max(this.#largestBatch, batch.length);
    batch.forEach((pending, index) => {
      const receipt = receipts[index];
      // Unreachable: one receipt was pushed per entry before the COMMIT.
      if (receipt === undefined) pending.reject(new Error(`audit log ${this.path}: no receipt for a committed entry`));
      else pending.resolve(receipt);
    });
    this.#armCheckpointTimer();
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
      this.#poison([], `checkpoint write failed, outcome unknown (${messageOf(error)}); reopen to reconcile`, error);
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
  #poison(batch: readonly PendingRecord[], why: string, cause: unknown): void {
    this.#poisoned = why;
    this.#note(`sqlite-audit-log: ${this.path}: ${why}`);
    this.#rejectAll(batch, new Error(`audit log ${this.path}: ${why}`, { cause }));
    const waiting = this.#pending.splice(0);
    this.#rejectAll(waiting, new Error(`audit log ${this.path} refuses writes: ${why}`, { cause }));
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
    let expectedSeq = 1;
    let prevHash = GENESIS_HASH;
    try {
      for (const row of this.#selectAll.iterate() as IterableIterator<RecordRow>) {
        const problem = checkRow(row, expectedSeq, prevHash);
        if (problem !== undefined) return { ok: false, seq: problem.seq, problem: problem.text };
        expectedSeq += 1;
        prevHash = row.hash;
      }
    } catch (error) {
      // SAFETY: a log that cannot be read back is not verified.
      return { ok: false, seq: expectedSeq, problem: `record ${expectedSeq}: could not be read (${messageOf(error)})` };
    }
    const records = expectedSeq - 1;
    const problem = this.#checkCheckpoints(records, publicKey);
    if (problem !== undefined) return { ok: false, seq: problem.seq, problem: problem.text };
    return { ok: true, records, headHash: prevHash };
  }

  #checkCheckpoints(records: number, publicKey: KeyObject | undefined): RowProblem | undefined {
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
        const stored = this.#selectHashAt.get(row.size) as { hash: string } | undefined;
        if (row.size > 0 && stored?.hash !== row.head) {
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
    while (this.#pending.length > 0) this.#flushBatch();
    if (this.#poisoned === undefined) this.#finalCheckpoint();
    this.#closed = true;
    this.#db.close();
  }

  #readHead(): AuditHead {
    const row = this.#selectHead.get() as { seq: number; hash: string } | undefined;
    return row === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: row.seq, hash: row.hash };
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
function checkRow(row: RecordRow, expectedSeq: number, prevHash: string): RowProblem | undefined {
  const at = (text: string): RowProblem => ({ seq: expectedSeq, text: `record ${expectedSeq}: ${text}` });
  if (row.seq < expectedSeq) return at(`unexpected record with seq ${row.seq} before it`);
  if (row.seq !== expectedSeq) {
    const last = row.seq - 1;
    const missing = last === expectedSeq ? `record ${expectedSeq} missing` : `records ${expectedSeq}..${last} missing`;
    const where = expectedSeq === 1 ? `log starts at ${row.seq}` : `gap between ${expectedSeq - 1} and ${row.seq}`;
    return { seq: expectedSeq, text: `${missing} (${where})` };
  }
  if (typeof row.body !== 'string') return at('body is not text');
  const body = parseBody(row.body);
  if (typeof body === 'string') return at(body);
  if (body['seq'] !== row.seq) return at(`body says seq ${JSON.stringify(body['seq'])} (reordered or moved?)`);
  if (typeof row.hash !== 'string' || !HASH_PATTERN.test(row.hash)) return at('hash column is not a sha256 hex digest');
  if (sha256Hex(row.body) !== row.hash) return at('hash does not match its body (edited?)');
  if (body['prevHash'] !== prevHash) {
    return expectedSeq === 1
      ? at('prevHash is not the genesis hash (chain replaced?)')
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
