// `interlock audit archive`: for sites without cloud, writes the unacknowledged records up to the newest signed
// checkpoint into one self-describing file (audit-archive-format.ts), makes it durable, and only then advances the
// acknowledgement cursor (meta ack_seq, the same watermark the cloud's acknowledgement moves), so retention may
// delete those records. The cursor never moves back and never beyond what is durably archived.
//
// Design: the archive is recorded in the chain by this process, not by the running interlock. It opens its own
// connection (WAL, synchronous=FULL) and, in ONE `BEGIN IMMEDIATE` transaction, reads the head, appends an
// `audit-archived` event as head+1 and moves ack_seq. BEGIN IMMEDIATE serialises writers across connections, and
// the running log reads its next seq and prevHash inside its own IMMEDIATE transaction, never from a cache, so the
// chain stays single and gapless; the event and the cursor move commit together or not at all, and it works whether
// or not the interlock runs. The running log re-reads ack_seq before retention and health, so its retention acts
// on the archive. (Letting the running interlock notice the moved cursor and write the event would leave a window
// where the cursor moved with no record of why, and would need the interlock running.)

import { closeSync, existsSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { createHash, type KeyObject } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { GENESIS_HASH } from './audit-log.js';
import { unknownOutcomePathOf } from './audit-recovery.js';
import { ARCHIVE_FORMAT, ARCHIVE_VERSION, archiveFileName, verifyArchiveText, type ArchiveHeader, type ArchiveLine } from './audit-archive-format.js';
import { appendEntries, encodeEntry } from './sqlite-audit-entry.js';
import {
  AUDIT_SCHEMA_VERSION,
  configure,
  messageOf,
  prepareStatements,
  readAckSeq,
  readBase,
  readHead,
  type AuditStatements,
  type CheckpointRow,
} from './sqlite-audit-schema.js';
import { checkChainLink, checkpointOfRow } from './sqlite-audit-verify.js';
import { checkpointSignatureValid } from './audit-checkpoint.js';

export interface ArchiveOptions {
  /** Archive no record beyond this seq (the segment then ends at the newest checkpoint at or before it). */
  readonly uptoSeq?: number;
  /** The interlock's public key: the archive is verified with it before the cursor moves. */
  readonly publicKey?: KeyObject;
  readonly nowMs?: () => number;
}

export type ArchiveOutcome =
  | {
      readonly ok: true;
      readonly file: string;
      readonly firstSeq: number;
      readonly lastSeq: number;
      readonly checkpointSeq: number;
      /** The seq of the `audit-archived` event appended to the chain. */
      readonly eventSeq: number;
      readonly acknowledgedSeq: number;
    }
  | { readonly ok: false; readonly problem: string };

/** Where the archive goes: `out` itself (must not exist), or a file named by the range inside an existing folder. */
function targetPath(out: string, firstSeq: number, lastSeq: number): string | { problem: string } {
  const isFolder = existsSync(out) && statSync(out).isDirectory();
  const target = isFolder ? join(out, archiveFileName(firstSeq, lastSeq)) : out;
  // SAFETY: an archive is evidence; never overwrite a file, whoever made it.
  if (existsSync(target)) return { problem: `${target} already exists; an archive never overwrites a file` };
  if (!existsSync(dirname(target))) return { problem: `the folder ${dirname(target)} does not exist` };
  return target;
}

/** Writes `lines` to a temp file, fsyncs it, links it to `target` (fails if it exists), fsyncs the folder. */
function writeDurably(target: string, lines: Iterable<string>): string {
  const temp = `${target}.tmp-${process.pid}`;
  const fd = openSync(temp, 'wx', 0o600);
  const hash = createHash('sha256');
  try {
    for (const line of lines) {
      const text = `${line}\n`;
      hash.update(text, 'utf8');
      writeSync(fd, text);
    }
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    // link, not rename: rename would silently replace a file that appeared meanwhile.
    linkSync(temp, target);
  } finally {
    rmSync(temp, { force: true });
  }
  const folder = openSync(dirname(target), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
  return hash.digest('hex');
}

/** Opens the audit database for the archive: its own connection, WAL + FULL, waiting briefly for the writer. */
function openForArchive(dbPath: string): Database.Database {
  if (!existsSync(dbPath)) throw new Error(`no audit database at ${dbPath}`);
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    configure(db);
    // The running interlock holds the write lock for one batch at a time; wait for it rather than fail.
    db.pragma('busy_timeout = 10000');
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version !== AUDIT_SCHEMA_VERSION) throw new Error(`schema version ${version}, not ${AUDIT_SCHEMA_VERSION} (start the interlock once to migrate it)`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

interface Segment {
  readonly firstSeq: number;
  readonly checkpoint: CheckpointRow;
  readonly baseHash: string;
}

/** The records to archive: from the cursor + 1 to the newest checkpoint (at or before `uptoSeq`). */
function chooseSegment(sql: AuditStatements, uptoSeq: number | undefined): Segment | string {
  const ackSeq = readAckSeq(sql);
  const firstSeq = ackSeq + 1;
  const head = readHead(sql, readBase(sql));
  if (head.seq < firstSeq) return `nothing to archive: every record (up to ${head.seq}) is already acknowledged`;
  if (uptoSeq !== undefined && uptoSeq < firstSeq) return `nothing to archive up to ${uptoSeq}: records up to ${ackSeq} are already acknowledged`;
  const checkpoint = sql.selectLastCheckpointUpTo.get(uptoSeq ?? Number.MAX_SAFE_INTEGER) as CheckpointRow | undefined;
  if (checkpoint === undefined || checkpoint.size < firstSeq) {
    return `no signed checkpoint covers any unacknowledged record (first unacknowledged: ${firstSeq}${uptoSeq === undefined ? '' : `, up to ${uptoSeq}`}; newest checkpoint covers ${checkpoint?.size ?? 0}); an archive must end at a checkpoint to be verifiable on its own. The running interlock writes one every checkpoint interval`;
  }
  const base = readBase(sql);
  const baseHash =
    firstSeq - 1 === base.seq ? base.hash : firstSeq === 1 ? GENESIS_HASH : ((sql.selectHashAt.get(firstSeq - 1) as { hash: string } | undefined)?.hash ?? '');
  if (baseHash === '') return `record ${firstSeq - 1} (the one before the first to archive) is not stored`;
  return { firstSeq, checkpoint, baseHash };
}

/** A record to archive does not link: nothing is written. */
class ChainProblem extends Error {}

/** The header line, then each record's line, checking the chain from baseHash to the checkpoint's head on the way. */
function* archiveLines(sql: AuditStatements, header: ArchiveHeader): Generator<string> {
  yield JSON.stringify(header);
  let expectedSeq = header.firstSeq;
  let prevHash = header.baseHash;
  for (const row of sql.selectRange.iterate(header.firstSeq, header.lastSeq) as IterableIterator<ArchiveLine>) {
    if (row.seq !== expectedSeq) throw new ChainProblem(`record ${expectedSeq} missing`);
    const link = checkChainLink(row, expectedSeq, prevHash, header.firstSeq - 1);
    if ('problem' in link) throw new ChainProblem(link.problem.text);
    yield JSON.stringify({ seq: row.seq, hash: row.hash, body: row.body });
    prevHash = row.hash;
    expectedSeq += 1;
  }
  if (expectedSeq !== header.lastSeq + 1) throw new ChainProblem(`records ${expectedSeq}..${header.lastSeq} missing`);
  if (prevHash !== header.checkpoint.head) throw new ChainProblem(`record ${header.lastSeq} has hash ${prevHash}, not the checkpoint head ${header.checkpoint.head}`);
}

/** Archives the unacknowledged records of the log at `dbPath` into `out` (a file, or an existing folder). */
export function archiveAuditLog(dbPath: string, out: string, options: ArchiveOptions = {}): ArchiveOutcome {
  const nowMs = options.nowMs ?? Date.now;
  if (options.uptoSeq !== undefined && (!Number.isSafeInteger(options.uptoSeq) || options.uptoSeq < 1)) return { ok: false, problem: `--upto must be a positive whole number, got ${options.uptoSeq}` };
  // SAFETY: a failed commit of the running log is reconciled by its next open; appending now could hide the doubt.
  if (existsSync(unknownOutcomePathOf(dbPath))) return { ok: false, problem: `${unknownOutcomePathOf(dbPath)} exists: a failed commit is waiting to be reconciled; restart the interlock first` };
  let db: Database.Database;
  try {
    db = openForArchive(dbPath);
  } catch (error) {
    return { ok: false, problem: `cannot open the audit database ${dbPath}: ${messageOf(error)}` };
  }
  try {
    const sql = prepareStatements(db);
    // One read transaction: the segment and its records as of one moment (the writer may append meanwhile). The
    // records stream from the database through the chain check into the file, so a large log is never held in memory.
    const written = db.transaction((): { header: ArchiveHeader; target: string; fileSha256: string } | string => {
      const segment = chooseSegment(sql, options.uptoSeq);
      if (typeof segment === 'string') return segment;
      const checkpoint = checkpointOfRow(segment.checkpoint);
      // SAFETY: check what would be archived before anything moves: a forged checkpoint or a broken chain is never
      // archived as if sound, since the cursor it advances lets retention delete the originals.
      if (options.publicKey !== undefined && !checkpointSignatureValid(checkpoint, options.publicKey)) {
        return `the records to archive do not verify, nothing written: checkpoint ${checkpoint.seq}: signature does not verify`;
      }
      const header: ArchiveHeader = {
        format: ARCHIVE_FORMAT,
        version: ARCHIVE_VERSION,
        origin: checkpoint.origin,
        firstSeq: segment.firstSeq,
        lastSeq: checkpoint.size,
        baseHash: segment.baseHash,
        checkpoint,
        createdMs: Math.trunc(nowMs()),
      };
      const target = targetPath(out, header.firstSeq, header.lastSeq);
      if (typeof target !== 'string') return target.problem;
      try {
        return { header, target, fileSha256: writeDurably(target, archiveLines(sql, header)) };
      } catch (error) {
        return error instanceof ChainProblem ? `the records to archive do not verify, nothing written: ${error.message}` : `cannot write the archive ${target}: ${messageOf(error)}`;
      }
    }).deferred();
    if (typeof written === 'string') return { ok: false, problem: written };
    const { header, target, fileSha256 } = written;
    // Only now, with the file durable: the event and the cursor, in one IMMEDIATE transaction.
    const record = db.transaction(() => {
      const head = readHead(sql, readBase(sql));
      const entry = encodeEntry({
        kind: 'event',
        timeMs: Math.trunc(nowMs()),
        detail: { event: 'audit-archived', file: basename(target), fileSha256, firstSeq: header.firstSeq, lastSeq: header.lastSeq, checkpointSeq: header.checkpoint.seq, lastHash: header.checkpoint.head },
      });
      const [receipt] = appendEntries(sql, head, [entry]);
      // SAFETY: never backwards (the cloud may have acknowledged further meanwhile), never beyond the archive.
      const acknowledgedSeq = Math.max(readAckSeq(sql), header.lastSeq);
      sql.upsertMeta.run('ack_seq', String(acknowledgedSeq));
      return { eventSeq: receipt?.seq ?? head.seq + 1, acknowledgedSeq };
    });
    let recorded: { eventSeq: number; acknowledgedSeq: number };
    try {
      recorded = record.immediate();
    } catch (error) {
      // The file is durable but nothing acknowledges it: retention keeps the records. Say what to do with the file.
      return { ok: false, problem: `the archive ${target} was written, but the acknowledgement cursor was not moved (${messageOf(error)}); records stay in the log. Remove ${target} and run the archive again` };
    }
    return { ok: true, file: target, firstSeq: header.firstSeq, lastSeq: header.lastSeq, checkpointSeq: header.checkpoint.seq, ...recorded };
  } catch (error) {
    return { ok: false, problem: `audit archive of ${dbPath} failed: ${messageOf(error)}` };
  } finally {
    db.close();
  }
}

/** Verifies an archive file on its own with the interlock's public key. */
export function verifyAuditArchive(file: string, publicKey: KeyObject): ReturnType<typeof verifyArchiveText> | { ok: false; seq: 0; problem: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return { ok: false, seq: 0, problem: `cannot read ${file}: ${messageOf(error)}` };
  }
  return verifyArchiveText(text, publicKey);
}
