// The SQLite audit log: a gapless, sha256-chained record of every decision, in WAL mode with synchronous=FULL.
// It must never resolve `record` for a row that is not committed, and never rewrite or delete a stored record.

import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { canonicalJson } from '../core/canonical-json.js';
import {
  GENESIS_HASH,
  type AuditEntry,
  type AuditKind,
  type AuditLog,
  type AuditReceipt,
  type AuditRecord,
  type VerifyResult,
} from './audit-log.js';

/** The schema this build writes and reads, kept in `PRAGMA user_version`. */
export const AUDIT_SCHEMA_VERSION = 1;

export interface SqliteAuditLogOptions {
  /** Receives one-line operational messages (open, schema creation, write failures). */
  readonly log?: (msg: string) => void;
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
    const created = ensureSchema(db);
    const instance = new SqliteAuditLog(db, path, log);
    const head = instance.head();
    const verb = created ? 'created' : 'opened';
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

/** Creates the schema in an empty database; returns whether it did. Refuses unknown versions and foreign files. */
function ensureSchema(db: Database.Database): boolean {
  // IMMEDIATE takes the write lock first, so two processes opening a fresh file cannot both create the schema.
  return db
    .transaction((): boolean => {
      const version = Number(db.pragma('user_version', { simple: true }));
      if (version === AUDIT_SCHEMA_VERSION) {
        const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'records'").get();
        if (table === undefined) throw new Error(`schema version ${version} but no records table`);
        return false;
      }
      if (version !== 0) {
        throw new Error(`unknown audit schema version ${version} (this build knows ${AUDIT_SCHEMA_VERSION})`);
      }
      const objects = db.prepare('SELECT count(*) AS n FROM sqlite_schema').get() as { n: number };
      // SAFETY: version 0 with existing tables is some other database; never add our table to it.
      if (objects.n !== 0) throw new Error('not an audit log (schema version 0 but the database has tables)');
      db.exec(SCHEMA_V1);
      db.pragma(`user_version = ${AUDIT_SCHEMA_VERSION}`);
      return true;
    })
    .immediate();
}

export class SqliteAuditLog implements AuditLog {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #log: (msg: string) => void;
  readonly #begin: Database.Statement;
  readonly #commit: Database.Statement;
  readonly #rollback: Database.Statement;
  readonly #selectHead: Database.Statement;
  readonly #insert: Database.Statement;
  readonly #selectFrom: Database.Statement;
  readonly #selectAll: Database.Statement;
  #closed = false;
  /** Set when a COMMIT failed: the row may or may not be on disk, so nothing more is written until reopen. */
  #poisoned: string | undefined;

  /** Use `openSqliteAuditLog`; the constructor expects a configured database with the schema in place. */
  constructor(db: Database.Database, path: string, log: (msg: string) => void) {
    this.#db = db;
    this.path = path;
    this.#log = log;
    this.#begin = db.prepare('BEGIN IMMEDIATE');
    this.#commit = db.prepare('COMMIT');
    this.#rollback = db.prepare('ROLLBACK');
    this.#selectHead = db.prepare('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1');
    this.#insert = db.prepare(
      `INSERT INTO records (seq, time_ms, kind, command_id, parent_seq, agent_id, device_id, action, verdict,
                            body, prev_hash, hash)
       VALUES (@seq, @time_ms, @kind, @command_id, @parent_seq, @agent_id, @device_id, @action, @verdict,
               @body, @prev_hash, @hash)`,
    );
    this.#selectFrom = db.prepare('SELECT seq, body, hash FROM records WHERE seq >= ? ORDER BY seq LIMIT ?');
    this.#selectAll = db.prepare('SELECT * FROM records ORDER BY seq');
  }

  // `async` so that every failure, including a synchronous throw, reaches the caller as a rejection; the work
  // itself runs synchronously at call time, so concurrent callers get seqs in call order.
  async record(entry: AuditEntry): Promise<AuditReceipt> {
    if (this.#closed) throw new Error(`audit log ${this.path} is closed`);
    if (this.#poisoned !== undefined) throw new Error(`audit log ${this.path} refuses writes: ${this.#poisoned}`);
    validateEntry(entry);

    this.#begin.run();
    let receipt: AuditReceipt;
    try {
      // The next seq and prevHash come from the database inside the write transaction, never from a cache,
      // so the chain cannot fork from what is actually stored.
      const head = this.#readHead();
      const seq = head.seq + 1;
      const stored = { ...entry, seq, prevHash: head.hash };
      const body = canonicalJson(stored);
      const hash = sha256Hex(body);
      this.#insert.run({ ...columnsOf(stored), seq, body, hash });
      receipt = { seq, hash };
    } catch (error) {
      // SAFETY: an entry that cannot be stored faithfully (canonicalJson refuses NaN, Infinity, functions) or
      // any SQLite error before COMMIT rolls back: nothing is stored and the seq is not consumed.
      this.#rollbackQuietly();
      throw error;
    }
    try {
      this.#commit.run();
    } catch (error) {
      // SAFETY: a failed COMMIT (e.g. SQLITE_IOERR_FSYNC) leaves the outcome unknown: the row may be on disk
      // after a restart. Reject, and refuse further writes until a reopen reconciles by seq.
      const cause = messageOf(error);
      this.#poisoned = `commit of seq ${receipt.seq} failed, outcome unknown (${cause}); reopen to reconcile`;
      this.#log(`sqlite-audit-log: ${this.path}: ${this.#poisoned}`);
      this.#rollbackQuietly();
      throw new Error(`audit log ${this.path}: ${this.#poisoned}`, { cause: error });
    }
    return receipt;
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

  verify(): VerifyResult {
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
    return { ok: true, records: expectedSeq - 1, headHash: prevHash };
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

  close(): void {
    if (this.#closed) return;
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
      this.#log(`sqlite-audit-log: ${this.path}: rollback failed: ${messageOf(error)}`);
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

function columnsOf(stored: AuditEntry & { readonly prevHash: string }): IndexedColumns {
  return {
    time_ms: stored.timeMs,
    kind: stored.kind,
    command_id: stored.commandId ?? null,
    parent_seq: stored.parentSeq ?? null,
    agent_id: stored.agentId ?? null,
    device_id: stored.deviceId ?? null,
    action: stored.action ?? null,
    verdict: stored.verdict ?? null,
    prev_hash: stored.prevHash,
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
