// What the audit log does after things went wrong: a database that fails its integrity check is moved aside (never
// deleted) with the last checkpoint that can still be read from it, and a batch whose COMMIT failed is remembered in
// a sidecar file so that the next open can say which of its records made it to disk. Nothing here edits a record.

import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { AuditEntry } from './audit-log.js';

/** The last checkpoint read from a damaged file: the records it covers are the ones a new segment links to. */
export interface SalvagedCheckpoint {
  readonly seq: number;
  readonly size: number;
  readonly head: string;
  readonly origin: string;
  readonly timeMs: number;
  readonly signature: string;
}

export interface MovedAside {
  /** Where the damaged database went (its -wal and -shm beside it, same suffix). */
  readonly movedTo: string;
  readonly lastCheckpoint: SalvagedCheckpoint | undefined;
  /** Why the checkpoint could not be read, when it could not. */
  readonly checkpointProblem: string | undefined;
}

/** SQLite error codes that mean the file itself is damaged (as opposed to missing, locked or foreign). */
export function isCorruption(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT_INDEX' || code === 'SQLITE_CORRUPT_SEQUENCE') return true;
  return error instanceof Error && error.message.startsWith('quick_check failed');
}

function readLastCheckpoint(path: string): { checkpoint?: SalvagedCheckpoint; problem?: string } {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const row = db.prepare('SELECT seq, size, head, origin, time_ms, signature FROM checkpoints ORDER BY seq DESC LIMIT 1').get() as
      | { seq: number; size: number; head: string; origin: string; time_ms: number; signature: string }
      | undefined;
    if (row === undefined) return { problem: 'the damaged file holds no checkpoint' };
    return { checkpoint: { seq: row.seq, size: row.size, head: row.head, origin: row.origin, timeMs: row.time_ms, signature: row.signature } };
  } catch (error) {
    return { problem: `no checkpoint could be read from the damaged file (${error instanceof Error ? error.message : String(error)})` };
  } finally {
    try {
      db?.close();
    } catch {
      // A damaged file may not even close cleanly; it is moved aside either way.
    }
  }
}

/** Renames the database and its -wal/-shm to `<path>.corrupt-<time>`; refuses to overwrite anything. */
export function moveAside(path: string, nowMs: number): MovedAside {
  const salvaged = readLastCheckpoint(path);
  const stamp = new Date(nowMs).toISOString().replace(/[:.]/g, '-');
  let movedTo = `${path}.corrupt-${stamp}`;
  for (let n = 2; existsSync(movedTo); n += 1) movedTo = `${path}.corrupt-${stamp}-${n}`;
  for (const suffix of ['-wal', '-shm']) {
    if (existsSync(`${path}${suffix}`)) renameSync(`${path}${suffix}`, `${movedTo}${suffix}`);
  }
  renameSync(path, movedTo);
  return { movedTo, lastCheckpoint: salvaged.checkpoint, checkpointProblem: salvaged.problem };
}

/** A batch whose COMMIT failed: which seqs it tried to write, with the hash each would have had. */
export interface UnknownOutcome {
  readonly atMs: number;
  readonly error: string;
  readonly attempted: readonly { readonly seq: number; readonly hash: string }[];
}

export function unknownOutcomePathOf(dbPath: string): string {
  return `${dbPath}.unknown-outcome.json`;
}

/** Best effort: the disk that just failed a commit may fail this too; the in-memory copy is then all there is. */
export function saveUnknownOutcome(dbPath: string, outcome: UnknownOutcome): string | undefined {
  try {
    writeFileSync(unknownOutcomePathOf(dbPath), `${JSON.stringify(outcome)}\n`, { mode: 0o600, flush: true });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** The sidecar left by a failed COMMIT, if any; an unreadable one is reported, never ignored. */
export function loadUnknownOutcome(dbPath: string): { outcome?: UnknownOutcome; problem?: string } {
  const path = unknownOutcomePathOf(dbPath);
  if (!existsSync(path)) return {};
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as UnknownOutcome;
    const valid =
      typeof value === 'object' &&
      value !== null &&
      Array.isArray(value.attempted) &&
      value.attempted.every((a) => Number.isSafeInteger(a?.seq) && typeof a?.hash === 'string');
    return valid ? { outcome: value } : { problem: `${path} is not an unknown-outcome record` };
  } catch (error) {
    return { problem: `${path} could not be read (${error instanceof Error ? error.message : String(error)})` };
  }
}

export function clearUnknownOutcome(dbPath: string): void {
  rmSync(unknownOutcomePathOf(dbPath), { force: true });
}

/** The first record of a new segment after a damaged file: names the file and the checkpoint it links to. */
export function segmentStartedEntry(moved: MovedAside, why: string, base: { seq: number; hash: string }, timeMs: number): AuditEntry {
  const checkpoint = moved.lastCheckpoint;
  return {
    kind: 'event',
    timeMs,
    detail: {
      event: 'audit-segment-started',
      previousFile: moved.movedTo,
      why,
      baseSeq: base.seq,
      baseHash: base.hash,
      lastCheckpoint: checkpoint === undefined ? null : { ...checkpoint },
      ...(moved.checkpointProblem === undefined ? {} : { checkpointProblem: moved.checkpointProblem }),
    },
  };
}

/** The record saying which of a failed COMMIT's records are on disk (`present`) and which are not. */
export function reconciledEntry(outcome: UnknownOutcome, present: readonly number[], absent: readonly number[], timeMs: number): AuditEntry {
  return {
    kind: 'event',
    timeMs,
    detail: {
      event: 'audit-reconciled',
      failedAtMs: outcome.atMs,
      error: outcome.error,
      present: [...present],
      absent: [...absent],
      // The interlock releases nothing whose record did not resolve, so none of these reached a device.
      note: 'the commit of these records failed with an I/O error; none of them was released',
    },
  };
}

/** Which of the records a failed COMMIT tried to write are on disk (`storedHash` gives the stored hash of a seq). */
export function reconcile(
  outcome: UnknownOutcome,
  storedHash: (seq: number) => string | undefined,
): { readonly present: number[]; readonly absent: number[]; readonly notice: string } {
  const present: number[] = [];
  const absent: number[] = [];
  for (const { seq, hash } of outcome.attempted) {
    if (storedHash(seq) === hash) present.push(seq);
    else absent.push(seq);
  }
  const notice = `reconciled a failed commit: records ${present.join(', ') || 'none'} on disk, ${absent.join(', ') || 'none'} absent; none was released`;
  return { present, absent, notice };
}
