// The audit log's SQLite schema and the statements it runs: the SQL text of each version, the migrations, the
// pragmas every connection must have (WAL, synchronous=FULL), the integrity check, and the prepared statements.
// This file says what SQL runs; the writer (sqlite-audit-log.ts) decides when. It never decides what to write.

import Database from 'better-sqlite3';
import { GENESIS_HASH } from './audit-log.js';

/** The schema this build writes and reads, kept in `PRAGMA user_version`. */
export const AUDIT_SCHEMA_VERSION = 3;

const SYNCHRONOUS_FULL = 2;

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
export interface RecordRow {
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

export type IndexedColumns = Pick<
  RecordRow,
  'time_ms' | 'kind' | 'command_id' | 'parent_seq' | 'agent_id' | 'device_id' | 'action' | 'verdict' | 'prev_hash'
>;

export interface CheckpointRow {
  readonly seq: number;
  readonly size: number;
  readonly head: string;
  readonly origin: string;
  readonly time_ms: number;
  readonly signature: string;
}

export interface AuditHead {
  /** The seq of the last record, 0 when the log is empty. */
  readonly seq: number;
  /** The hash of the last record, GENESIS_HASH when the log is empty. */
  readonly hash: string;
}

/** The last stored record's seq and hash, or `base` (where the chain in this file starts) when none is stored. */
export function readHead(statements: AuditStatements, base: AuditHead): AuditHead {
  const row = statements.selectHead.get() as { seq: number; hash: string } | undefined;
  return row === undefined ? base : { seq: row.seq, hash: row.hash };
}

/** Where the chain in this file starts (meta base_seq/base_hash), genesis when the meta does not say. */
export function readBase(statements: AuditStatements): AuditHead {
  const seq = readMeta(statements, 'base_seq');
  const hash = readMeta(statements, 'base_hash');
  return seq !== undefined && hash !== undefined ? { seq: Number(seq), hash } : { seq: 0, hash: GENESIS_HASH };
}

/** The acknowledgement cursor (meta ack_seq): records up to it are acknowledged (by the cloud or an archive). */
export function readAckSeq(statements: AuditStatements): number {
  return Number(readMeta(statements, 'ack_seq') ?? '0');
}

/** Sets and checks the pragmas every connection to an audit log needs. Throws naming the one that did not hold. */
export function configure(db: Database.Database): void {
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

/** The pragmas in force on the log's own connection, for diagnostics and tests. */
export interface SqliteAuditPragmas {
  readonly journalMode: string;
  /** 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
  readonly synchronous: number;
  readonly foreignKeys: boolean;
}

/** The pragmas in force on `db` (synchronous is per connection, so only that connection can tell). */
export function readPragmas(db: Database.Database): SqliteAuditPragmas {
  return {
    journalMode: String(db.pragma('journal_mode', { simple: true })),
    synchronous: Number(db.pragma('synchronous', { simple: true })),
    foreignKeys: Number(db.pragma('foreign_keys', { simple: true })) === 1,
  };
}

/** Throws (message starting 'quick_check failed') when SQLite's quick integrity check finds the file damaged. */
export function quickCheck(db: Database.Database): void {
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
export function ensureSchema(db: Database.Database): 'created' | 'migrated' | 'opened' {
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

/** Sets meta keys in one IMMEDIATE transaction of its own. */
export function writeMeta(db: Database.Database, values: Readonly<Record<string, string>>): void {
  const upsert = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  db.transaction(() => {
    for (const [key, value] of Object.entries(values)) upsert.run(key, value);
  }).immediate();
}

/** Every statement the log runs, prepared once per connection. */
export interface AuditStatements {
  readonly begin: Database.Statement;
  readonly commit: Database.Statement;
  readonly rollback: Database.Statement;
  readonly selectHead: Database.Statement;
  readonly insert: Database.Statement;
  readonly selectFrom: Database.Statement;
  readonly selectRange: Database.Statement;
  readonly selectAll: Database.Statement;
  readonly selectHashAt: Database.Statement;
  readonly selectFirstSeq: Database.Statement;
  readonly selectFirstYoungSeq: Database.Statement;
  readonly deleteUpTo: Database.Statement;
  readonly selectLastCheckpoint: Database.Statement;
  readonly selectLastCheckpointUpTo: Database.Statement;
  readonly insertCheckpoint: Database.Statement;
  readonly selectCheckpoints: Database.Statement;
  readonly selectMeta: Database.Statement;
  readonly upsertMeta: Database.Statement;
}

export function prepareStatements(db: Database.Database): AuditStatements {
  return {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    selectHead: db.prepare('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1'),
    insert: db.prepare(
      `INSERT INTO records (seq, time_ms, kind, command_id, parent_seq, agent_id, device_id, action, verdict,
                            body, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    selectFrom: db.prepare('SELECT seq, body, hash FROM records WHERE seq >= ? ORDER BY seq LIMIT ?'),
    selectRange: db.prepare('SELECT seq, body, hash FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq'),
    selectAll: db.prepare('SELECT * FROM records ORDER BY seq'),
    selectHashAt: db.prepare('SELECT hash FROM records WHERE seq = ?'),
    selectFirstSeq: db.prepare('SELECT MIN(seq) AS s FROM records'),
    selectFirstYoungSeq: db.prepare('SELECT MIN(seq) AS s FROM records WHERE seq > ? AND time_ms >= ?'),
    deleteUpTo: db.prepare('DELETE FROM records WHERE seq <= ?'),
    selectLastCheckpoint: db.prepare('SELECT seq, size, head, origin, time_ms, signature FROM checkpoints ORDER BY seq DESC LIMIT 1'),
    selectLastCheckpointUpTo: db.prepare(
      'SELECT seq, size, head, origin, time_ms, signature FROM checkpoints WHERE size <= ? ORDER BY seq DESC LIMIT 1',
    ),
    insertCheckpoint: db.prepare('INSERT INTO checkpoints (seq, size, head, origin, time_ms, signature) VALUES (?, ?, ?, ?, ?, ?)'),
    selectCheckpoints: db.prepare('SELECT seq, size, head, origin, time_ms, signature FROM checkpoints ORDER BY seq'),
    selectMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    upsertMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  };
}

/** One meta value, or undefined when the key is not set. */
export function readMeta(statements: AuditStatements, key: string): string | undefined {
  return (statements.selectMeta.get(key) as { value: string } | undefined)?.value;
}

/** Pages in use (page_count - freelist_count). */
export function countUsedPages(db: Database.Database): number {
  return Number(db.pragma('page_count', { simple: true })) - Number(db.pragma('freelist_count', { simple: true }));
}

/** Inserts one record row; the columns mirror the body (verify holds them to it). */
export function insertRecord(
  statements: AuditStatements,
  seq: number,
  c: Omit<IndexedColumns, 'prev_hash'>,
  body: string,
  prevHash: string,
  hash: string,
): void {
  statements.insert.run(seq, c.time_ms, c.kind, c.command_id, c.parent_seq, c.agent_id, c.device_id, c.action, c.verdict, body, prevHash, hash);
}

/** The seq of the first record stored, or undefined when none is. */
export function firstStoredSeq(statements: AuditStatements): number | undefined {
  return (statements.selectFirstSeq.get() as { s: number | null }).s ?? undefined;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** SQLITE_FULL: the cap (max_page_count) or the file system is out of room; SQLite rolled the statement back. */
export function isFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'SQLITE_FULL';
}
