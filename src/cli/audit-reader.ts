// Reads the audit database for the `interlock audit` commands through a read-only connection, a page at a time,
// from `records.body` only. It must never write to the database, and never hold a read transaction between pages.

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AUDIT_SCHEMA_VERSION } from '../audit/sqlite-audit-log.js';

/** Versions 1 to 3 have the same records table (2 adds signed checkpoints, 3 the meta table; the interlock migrates on open). */
const READABLE_VERSIONS: readonly number[] = [1, 2, AUDIT_SCHEMA_VERSION];

/** Records per read: enough to be quick, few enough that a large log never sits in memory. */
export const AUDIT_PAGE_SIZE = 1000;

/** One stored record as read back: the parsed body plus the stored hash, or why the body is not a record. */
export type AuditRow =
  | { readonly seq: number; readonly ok: true; readonly record: Readonly<Record<string, unknown>> }
  | { readonly seq: number; readonly ok: false; readonly problem: string };

export type OpenAuditReaderResult = { readonly ok: true; readonly reader: AuditReader } | { readonly ok: false; readonly problem: string };

/** Opens `path` read-only; a missing file, a foreign database or an unknown schema version is a problem, not a throw. */
export function openAuditReader(path: string): OpenAuditReaderResult {
  if (!existsSync(path)) return { ok: false, problem: `no audit database at ${path} (the interlock creates it in its --state-dir)` };
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    return { ok: false, problem: `cannot open the audit database ${path}: ${messageOf(error)}` };
  }
  try {
    const version = Number(db.pragma('user_version', { simple: true }));
    const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'records'").get();
    if (!READABLE_VERSIONS.includes(version) || table === undefined) {
      db.close();
      return {
        ok: false,
        problem: `${path} is not an audit log this build reads (schema version ${version}, records table ${table === undefined ? 'missing' : 'present'}; expected version ${AUDIT_SCHEMA_VERSION})`,
      };
    }
    return { ok: true, reader: new AuditReader(db, path) };
  } catch (error) {
    db.close();
    return { ok: false, problem: `cannot read the audit database ${path}: ${messageOf(error)}` };
  }
}

export class AuditReader {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #page: Database.Statement;
  readonly #one: Database.Statement;
  readonly #head: Database.Statement;
  readonly #nthFromEnd: Database.Statement;

  /** Use `openAuditReader`. */
  constructor(db: Database.Database, path: string) {
    this.#db = db;
    this.path = path;
    // Each statement runs to completion (`all`/`get`) in its own implicit read transaction, so a follower that
    // polls for hours never pins the WAL and the writer's checkpoints keep up.
    this.#page = db.prepare('SELECT seq, body, hash FROM records WHERE seq > ? ORDER BY seq LIMIT ?');
    this.#one = db.prepare('SELECT seq, body, hash FROM records WHERE seq = ?');
    this.#head = db.prepare('SELECT seq FROM records ORDER BY seq DESC LIMIT 1');
    this.#nthFromEnd = db.prepare('SELECT seq FROM records ORDER BY seq DESC LIMIT 1 OFFSET ?');
  }

  /** Records with seq > afterSeq, in seq order, at most `limit`. */
  page(afterSeq: number, limit = AUDIT_PAGE_SIZE): AuditRow[] {
    return (this.#page.all(afterSeq, limit) as StoredRow[]).map(toAuditRow);
  }

  /** Every record with afterSeq < seq <= untilSeq (to the end when omitted), read a page at a time. */
  *scan(afterSeq = 0, untilSeq = Number.MAX_SAFE_INTEGER): Generator<AuditRow> {
    let last = afterSeq;
    for (;;) {
      const rows = this.page(last);
      for (const row of rows) {
        if (row.seq > untilSeq) return;
        yield row;
        last = row.seq;
      }
      if (rows.length < AUDIT_PAGE_SIZE) return;
    }
  }

  get(seq: number): AuditRow | undefined {
    const row = this.#one.get(seq) as StoredRow | undefined;
    return row === undefined ? undefined : toAuditRow(row);
  }

  /** The seq of the newest record, 0 when the log is empty. */
  headSeq(): number {
    const row = this.#head.get() as { seq: number } | undefined;
    return row?.seq ?? 0;
  }

  /** The seq after which the newest `count` records begin (0 when the log holds no more than that). */
  beforeLast(count: number): number {
    if (count <= 0) return this.headSeq();
    const row = this.#nthFromEnd.get(count - 1) as { seq: number } | undefined;
    return row === undefined ? 0 : row.seq - 1;
  }

  /** A page-exact copy of the database at `destination`, taken as one consistent snapshot. */
  async backup(destination: string): Promise<void> {
    // After the first step, copy everything that remains in one step: stepping page by page would restart
    // whenever the running interlock commits, and might never finish on a busy log.
    await this.#db.backup(destination, { progress: ({ remainingPages }) => Math.max(remainingPages, 1) });
  }

  close(): void {
    this.#db.close();
  }
}

interface StoredRow {
  readonly seq: number;
  readonly body: unknown;
  readonly hash: unknown;
}

function toAuditRow(row: StoredRow): AuditRow {
  const fail = (problem: string): AuditRow => ({ seq: row.seq, ok: false, problem });
  if (typeof row.body !== 'string') return fail('body is not text');
  let parsed: unknown;
  try {
    parsed = JSON.parse(row.body);
  } catch (error) {
    return fail(`body is not JSON (${messageOf(error)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('body is not a JSON object');
  const body = parsed as Record<string, unknown>;
  if (body['seq'] !== row.seq) return fail(`body says seq ${JSON.stringify(body['seq'])} (run interlock audit verify)`);
  if (typeof row.hash !== 'string') return fail('hash is not text');
  return { seq: row.seq, ok: true, record: { ...body, hash: row.hash } };
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
