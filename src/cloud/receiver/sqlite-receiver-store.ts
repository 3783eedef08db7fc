// The audit receiver's storage in one SQLite file (WAL, synchronous=FULL): every thing's records keyed by
// (thing, seq), its watermark and its newest checkpoint. Used as the cloud peer in tests and the bench, and fit for a
// small self-hosted fleet. A record is inserted only if its (thing, seq) is free; a held record is never replaced.

import Database from 'better-sqlite3';
import type { AuditCheckpoint } from '../../audit/audit-checkpoint.js';
import type { AuditWatermark } from '../audit-batch.js';
import type { PutOutcome, ReceiverStore, StoredRecord } from './receive-batch.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS records (
    thing       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    body        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (thing, seq)
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS things (
    thing     TEXT PRIMARY KEY,
    head_seq  INTEGER NOT NULL,
    head_hash TEXT NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS checkpoints (
    thing      TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL
  ) STRICT;
`;

export class SqliteReceiverStore implements ReceiverStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #hashAt: Database.Statement;
  readonly #watermark: Database.Statement;
  readonly #raise: Database.Statement;
  readonly #putRecords: (thing: string, records: readonly StoredRecord[]) => PutOutcome[];

  constructor(path: string, readonly nowMs: () => number = Date.now) {
    this.path = path;
    this.#db = new Database(path);
    try {
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      this.#db.exec(SCHEMA);
    } catch (error) {
      this.#db.close();
      throw new Error(`cannot open the audit receiver's store at ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    this.#insert = this.#db.prepare('INSERT INTO records (thing, seq, body, hash, prev_hash, received_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thing, seq) DO NOTHING');
    this.#hashAt = this.#db.prepare('SELECT hash FROM records WHERE thing = ? AND seq = ?').pluck();
    this.#watermark = this.#db.prepare('SELECT head_seq AS seq, head_hash AS hash FROM things WHERE thing = ?');
    this.#raise = this.#db.prepare(
      'INSERT INTO things (thing, head_seq, head_hash) VALUES (?, ?, ?) ON CONFLICT (thing) DO UPDATE SET head_seq = excluded.head_seq, head_hash = excluded.head_hash WHERE excluded.head_seq > head_seq',
    );
    this.#putRecords = this.#db.transaction((thing: string, records: readonly StoredRecord[]): PutOutcome[] => {
      const outcomes: PutOutcome[] = [];
      for (const r of records) {
        if (this.#insert.run(thing, r.seq, r.body, r.hash, r.prevHash, this.nowMs()).changes === 1) {
          outcomes.push({ kind: 'stored' });
          continue;
        }
        const held = this.#hashAt.get(thing, r.seq) as string;
        if (held === r.hash) outcomes.push({ kind: 'duplicate' });
        else {
          // Stop at the first conflict, as a conditional-write store does: the records after it are not the thing's.
          outcomes.push({ kind: 'conflict', heldHash: held });
          break;
        }
      }
      return outcomes;
    });
  }

  async watermark(thing: string): Promise<AuditWatermark | undefined> {
    return this.#watermark.get(thing) as AuditWatermark | undefined;
  }

  async hashAt(thing: string, seq: number): Promise<string | undefined> {
    return this.#hashAt.get(thing, seq) as string | undefined;
  }

  async putRecords(thing: string, records: readonly StoredRecord[]): Promise<PutOutcome[]> {
    return this.#putRecords(thing, records);
  }

  async raiseWatermark(thing: string, mark: AuditWatermark): Promise<void> {
    this.#raise.run(thing, mark.seq, mark.hash);
  }

  async putCheckpoint(thing: string, checkpoint: AuditCheckpoint): Promise<void> {
    this.#db
      .prepare(
        "INSERT INTO checkpoints (thing, checkpoint) VALUES (?, ?) ON CONFLICT (thing) DO UPDATE SET checkpoint = excluded.checkpoint WHERE json_extract(excluded.checkpoint, '$.seq') > json_extract(checkpoint, '$.seq')",
      )
      .run(thing, JSON.stringify(checkpoint));
  }

  /** The thing's newest checkpoint held. */
  latestCheckpoint(thing: string): AuditCheckpoint | undefined {
    const text = this.#db.prepare('SELECT checkpoint FROM checkpoints WHERE thing = ?').pluck().get(thing) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as AuditCheckpoint);
  }

  /** Every record held for the thing from `fromSeq`, in order (tests, and an export). */
  records(thing: string, fromSeq = 0): StoredRecord[] {
    return (this.#db.prepare('SELECT seq, body, hash, prev_hash AS prevHash FROM records WHERE thing = ? AND seq >= ? ORDER BY seq').all(thing, fromSeq) as StoredRecord[]).map((r) => ({ ...r }));
  }

  /** How many records are held for the thing. */
  count(thing: string): number {
    return this.#db.prepare('SELECT count(*) FROM records WHERE thing = ?').pluck().get(thing) as number;
  }

  close(): void {
    this.#db.close();
  }
}
