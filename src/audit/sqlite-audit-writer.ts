// The SQLite audit log's writer: records arriving together share one transaction (group commit), the next seq and
// prevHash always read inside that transaction, signed checkpoints written with the records they cover. It must
// never resolve `record` for a row that is not committed: a failure before COMMIT rolls back and stops the log, a
// failed COMMIT leaves the outcome unknown (remembered for the next open to reconcile). Opened by sqlite-audit-log.ts.

import type { KeyObject } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { AuditCheckpoint, CheckpointSettings } from './audit-checkpoint.js';
import { AuditWriteError, type AuditEntry, type AuditFailureCode, type AuditReceipt, type AuditRecord, type RecordOptions, type VerifyResult } from './audit-log.js';
import { clearUnknownOutcome, loadUnknownOutcome, reconcile, reconciledEntry, saveUnknownOutcome, segmentStartedEntry, type MovedAside, type UnknownOutcome } from './audit-recovery.js';
import { checkpointIfDue, checkpointNow, IdleCheckpointTimer } from './sqlite-audit-checkpointing.js';
import { appendEntries, encodeEntry, type EncodedEntry } from './sqlite-audit-entry.js';
import { AuditSpace, deleteRetained, type AuditHealth, type RetentionResult, type SpaceRuntime } from './sqlite-audit-retention.js';
import { type SqliteAuditStats } from './sqlite-audit-log.js';
import { firstStoredSeq, readPragmas, type SqliteAuditPragmas, isFull, messageOf, prepareStatements, readBase, readHead, type AuditHead, type AuditStatements, type CheckpointRow } from './sqlite-audit-schema.js';
import type { SqliteAuditSurface } from './sqlite-audit-surface.js';
import { readRecords, verifyStored } from './sqlite-audit-verify.js';

/** An accepted entry waiting for its batch: a snapshot of what will be stored, and the caller's promise. */
interface PendingRecord extends EncodedEntry {
  /** A safe-state command's record: may use the reserve under the cap and the ballast's room on a full disk. */
  readonly safeState: boolean;
  readonly resolve: (receipt: AuditReceipt) => void;
  readonly reject: (error: Error) => void;
}

export class SqliteAuditLog implements SqliteAuditSurface {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #sql: AuditStatements;
  readonly #log: (msg: string) => void;
  readonly #warn: (msg: string) => void;
  readonly #maxBatch: number;
  #closed = false;
  /** Set when a batch failed after BEGIN: rows may or may not be on disk, so nothing more is written until reopen. */
  #poisoned: string | undefined;
  /** Accepted entries in arrival order; the next flush takes them from the front. */
  #pending: PendingRecord[] = [];
  #flushTimer: NodeJS.Immediate | undefined;
  #commits = 0;
  #committedRecords = 0;
  #largestBatch = 0;
  #retriedSafe = false;
  readonly #checkpoints: CheckpointSettings | undefined;
  /** When this log was opened: the time base for `everyMs` until the first checkpoint. */
  readonly #openedAtMs: number;
  readonly #idleTimer = new IdleCheckpointTimer();
  readonly #space: AuditSpace;
  /** Where the chain in this file starts: the seq and hash of the record before the first one stored. */
  #base: AuditHead;
  #retentionTimer: NodeJS.Timeout | undefined;
  /** What happened at open that an operator must hear of (a moved-aside file, a reconciliation). */
  readonly notices: string[] = [];

  /** Use `openSqliteAuditLog`; the constructor expects a configured database with the schema in place. */
  constructor(db: Database.Database, path: string, log: (msg: string) => void, maxBatch: number, checkpoints: CheckpointSettings | undefined, space: SpaceRuntime, warn = log) {
    this.#db = db;
    this.path = path;
    this.#log = log;
    this.#warn = warn;
    this.#maxBatch = maxBatch;
    this.#sql = prepareStatements(db);
    this.#checkpoints = checkpoints;
    this.#openedAtMs = checkpoints?.nowMs() ?? 0;
    this.#space = new AuditSpace(space, path, (msg) => this.#note(msg));
    this.#base = readBase(this.#sql);
    this.#space.syncAck(this.#sql);
    this.#space.measure(db);
  }

  /** Called once by openSqliteAuditLog: reconcile a failed commit, make the ballast, run retention, arm its timer. */
  afterOpen(retentionIntervalMs: number): void {
    const left = loadUnknownOutcome(this.path);
    if (left.problem !== undefined) this.#notice(`unknown-outcome record unreadable: ${left.problem}`);
    if (left.outcome !== undefined) {
      const done = reconcile(left.outcome, (seq) => (this.#sql.selectHashAt.get(seq) as { hash: string } | undefined)?.hash);
      this.#writeNow(reconciledEntry(left.outcome, done.present, done.absent, this.#nowMs()));
      clearUnknownOutcome(this.path);
      this.#notice(done.notice);
    }
    this.#measure();
    const noBallast = this.#space.makeBallast();
    if (noBallast !== undefined) this.#notice(noBallast);
    const retentionMs = this.#space.settings.retentionMs;
    if (retentionMs !== undefined) {
      this.applyRetention();
      this.#retentionTimer = setInterval(() => {
        if (!this.#closed) this.#retentionQuietly();
      }, retentionIntervalMs);
      this.#retentionTimer.unref();
    }
  }

  #notice(text: string): void {
    this.notices.push(text);
    this.#note(`sqlite-audit-log: ${this.path}: ${text}`);
  }

  #nowMs(): number {
    return Math.trunc(this.#space.settings.nowMs());
  }

  /** Writes `entry` now, in its own transaction, outside the batch queue (open-time events). Throws on failure. */
  #writeNow(entry: AuditEntry): AuditReceipt {
    let receipt: AuditReceipt | undefined;
    let failure: Error | undefined;
    this.#pending.unshift({ ...encodeEntry(entry), safeState: true, resolve: (r) => (receipt = r), reject: (e) => (failure = e) });
    this.#flushBatch(1);
    if (failure !== undefined) throw failure;
    if (receipt === undefined) throw new Error('open-time event was not written');
    return receipt;
  }

  /** The first record of a new segment after a damaged file: names the file and the checkpoint it links to. */
  startSegment(moved: MovedAside, why: string): void {
    const checkpoint = moved.lastCheckpoint;
    this.#writeNow(segmentStartedEntry(moved, why, this.#base, this.#nowMs()));
    this.#notice(
      `damaged log moved to ${moved.movedTo}; new segment starts after ${checkpoint === undefined ? 'nothing (no readable checkpoint)' : `checkpoint ${checkpoint.seq} (record ${checkpoint.size})`}`,
    );
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
        const refusal = this.#space.refusal(this.#pending.length, () => this.#readHead().seq, () => this.#retentionQuietly(), () => this.#space.syncAck(this.#sql));
        if (refusal !== undefined) throw refusal;
      }
      // SAFETY: snapshot now, through the same canonical JSON the body uses: a refused value (NaN, Infinity,
      // a function) rejects this call alone, and a caller mutating the entry later cannot change what is stored.
      this.#pending.push({ ...encodeEntry(entry), safeState, resolve, reject });
      this.#scheduleFlush();
    });
  }

  /** Re-reads the pages in use; on crossing 80% of the cap, one `audit-space-high` event and a warning. */
  #measure(): void {
    this.#space.measure(this.#db);
    const change = this.#space.alarmChange(() => this.#readHead().seq, this.#nowMs());
    if (change === undefined) return;
    this.#note(change.message, change.entry !== undefined);
    if (change.entry === undefined) return;
    // Safe-state: this record is about the log itself and must not be refused by the cap it warns of.
    this.record(change.entry, { safeState: true }).catch((error: unknown) => this.#note(`sqlite-audit-log: ${this.path}: audit-space-high not recorded: ${messageOf(error)}`));
  }

  #retentionQuietly(): void {
    try {
      this.applyRetention();
    } catch (error) {
      this.#note(`sqlite-audit-log: ${this.path}: retention failed: ${messageOf(error)}`);
    }
  }

  /**
   * Every record up to `uptoSeq` is acknowledged (by the cloud, or an archive). Kept in the database; never moves
   * back (a lower value changes nothing). Returns the watermark in force. Throws beyond the head.
   */
  acknowledge(uptoSeq: number): number {
    this.#assertOpen();
    return this.#space.acknowledge(this.#sql, this.#db, uptoSeq, this.#readHead().seq);
  }

  /** The acknowledgement watermark, as stored (an archive taken by another process moves it). */
  acknowledgedSeq(): number {
    if (!this.#closed) this.#space.syncAck(this.#sql);
    return this.#space.ackSeq;
  }

  /** The oldest records not acknowledged yet (the outbox), at most `limit`. */
  unacknowledged(limit: number): AuditRecord[] {
    return this.read(this.acknowledgedSeq() + 1, limit);
  }

  /**
   * Deletes the oldest records that are both acknowledged and older than the declared retention, with a retention
   * record in the chain naming the new base. Runs on open, every retention interval and when the cap is reached.
   */
  applyRetention(): RetentionResult {
    this.#assertOpen();
    const retentionMs = this.#space.settings.retentionMs;
    const firstStored = (): number => firstStoredSeq(this.#sql) ?? this.#base.seq + 1;
    if (retentionMs === undefined || this.#poisoned !== undefined) return { deleted: 0, firstSeq: firstStored() };
    // Whatever is queued goes first, so the retention record takes the next seq after it.
    while (this.#pending.length > 0) this.#flushBatch();
    const ackSeq = this.#space.syncAck(this.#sql);
    const done = deleteRetained(this.#sql, this.#base, ackSeq, this.#nowMs(), retentionMs);
    if (done === undefined) return { deleted: 0, firstSeq: firstStored() };
    this.#base = done.base;
    this.#measure();
    this.#note(`sqlite-audit-log: ${this.path}: retention deleted records ${done.from}..${done.base.seq} (acknowledged and older than ${retentionMs} ms)`);
    return { deleted: done.deleted, firstSeq: done.base.seq + 1 };
  }

  /** How the log is doing now. */
  health(): AuditHealth {
    if (!this.#closed) this.#space.syncAck(this.#sql);
    const headSeq = this.#closed ? 0 : this.#readHead().seq;
    return this.#space.health(headSeq, this.#closed ? 'closed' : this.#poisoned);
  }

  /** Commit counters since open (how many records shared each transaction). */
  stats(): SqliteAuditStats {
    return { commits: this.#commits, records: this.#committedRecords, largestBatch: this.#largestBatch, pending: this.#pending.length };
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
      this.#sql.begin.run();
    } catch (error) {
      // Nothing was started, so nothing is stored and no seq is taken; the next batch may try again.
      this.#rejectAll(batch, new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path}: could not begin a write: ${messageOf(error)}`, { cause: error }));
      return;
    }
    let receipts: AuditReceipt[] = [];
    let first = Number.NaN;
    try {
      // The next seq and prevHash come from the database inside the write transaction, never from a cache,
      // so the chain cannot fork from what is actually stored (another connection may have appended).
      const head = this.#readHead();
      first = head.seq + 1;
      receipts = appendEntries(this.#sql, head, batch);
      // In the same transaction as the records it covers, so a checkpoint never names records that are not stored.
      const last = receipts[receipts.length - 1] ?? head;
      if (this.#checkpoints !== undefined) checkpointIfDue(this.#sql, this.#checkpoints, { seq: last.seq, hash: last.hash }, false, this.#openedAtMs);
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
      this.#sql.commit.run();
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
      const attempted: UnknownOutcome = { atMs: Date.now(), error: messageOf(error), attempted: receipts.map((r) => ({ seq: r.seq, hash: r.hash })) };
      const unsaved = saveUnknownOutcome(this.path, attempted);
      if (unsaved !== undefined) this.#note(`sqlite-audit-log: ${this.path}: could not save the unknown-outcome record (${unsaved}); seqs ${first}..${last}`);
      this.#poison(batch, 'AUDIT_OUTCOME_UNKNOWN', `commit of seqs ${first}..${last} failed, outcome unknown (${messageOf(error)}); reconciled when the log reopens`, error);
      return;
    }
    this.#commits += 1;
    this.#committedRecords += batch.length;
    this.#largestBatch = Math.max(this.#largestBatch, batch.length);
    this.#measure();
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
    const { atCap, pages } = this.#space.fullAtCap(this.#db);
    const code: AuditFailureCode = atCap ? 'AUDIT_LOG_FULL' : 'AUDIT_DISK_FULL';
    if (!atCap) this.#space.onDiskFull(messageOf(error));
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

  /** After a commit: makes sure records still uncovered everyMs from now get a checkpoint even if no write comes. */
  #armCheckpointTimer(): void {
    const settings = this.#checkpoints;
    if (settings === undefined) return;
    try {
      this.#idleTimer.arm(settings, () => this.#idleCheckpoint(settings));
    } catch (error) {
      // Only the idle checkpoint is lost; the next write or close still writes one.
      this.#note(`sqlite-audit-log: ${this.path}: idle checkpoint timer not started: ${messageOf(error)}`);
    }
  }

  /** The idle timer fired: checkpoint whatever is uncovered, unless a flush is about to (it checks on its own). */
  #idleCheckpoint(settings: CheckpointSettings): void {
    if (this.#closed || this.#poisoned !== undefined || this.#pending.length > 0) return;
    const failure = checkpointNow(this.#sql, settings, () => this.#readHead(), this.#openedAtMs);
    // Nothing started: the next write or close checks again.
    if (failure?.failed === 'begin') this.#note(`sqlite-audit-log: ${this.path}: idle checkpoint not started: ${messageOf(failure.error)}`);
    // SAFETY: as with records, a failed write or COMMIT leaves the file in doubt: stop writing until reopen.
    else if (failure !== undefined) this.#poison([], 'AUDIT_OUTCOME_UNKNOWN', `checkpoint write failed, outcome unknown (${messageOf(failure.error)}); restart to reopen the log`, failure.error);
  }

  /** Marks the log unwritable and rejects the failed batch and everything still waiting. */
  #poison(batch: readonly PendingRecord[], code: AuditFailureCode, why: string, cause: unknown): void {
    this.#poisoned = why;
    this.#note(`sqlite-audit-log: ${this.path}: ${why}`);
    this.#rejectAll(batch, new AuditWriteError(code, `audit log ${this.path}: ${why}`, { cause }));
    const waiting = this.#pending.splice(0);
    this.#rejectAll(waiting, new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path} refuses writes: ${why}`, { cause }));
  }

  /** Logs (or warns) without letting a throwing logger escape a flush (which would leave promises unsettled). */
  #note(msg: string, warn = false): void {
    try {
      (warn ? this.#warn : this.#log)(msg);
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
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`read: limit must be a non-negative integer, got ${limit}`);
    return limit === 0 ? [] : readRecords(this.#sql, this.path, fromSeq, limit);
  }

  /** Checks the stored chain and checkpoints (sqlite-audit-verify.ts); with `publicKey`, checkpoint signatures too. */
  verify(publicKey?: KeyObject): VerifyResult {
    this.#assertOpen();
    return verifyStored(this.#sql, publicKey);
  }

  /** The newest signed checkpoint as stored (undefined before the first), for the audit forwarder to send along. */
  latestCheckpoint(): AuditCheckpoint | undefined {
    this.#assertOpen();
    const row = this.#sql.selectLastCheckpoint.get() as CheckpointRow | undefined;
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
    return readPragmas(this.#db);
  }

  /** Commits every entry still waiting (or rejects it, if its batch fails), then closes; nothing is dropped. */
  close(): void {
    if (this.#closed) return;
    if (this.#flushTimer !== undefined) clearImmediate(this.#flushTimer);
    this.#idleTimer.cancel();
    this.#flushTimer = undefined;
    if (this.#retentionTimer !== undefined) clearInterval(this.#retentionTimer);
    this.#retentionTimer = undefined;
    while (this.#pending.length > 0) this.#flushBatch();
    // One more checkpoint covering every record. A failure is logged only: the records are already committed;
    // only truncation detection for the newest ones waits for the next run.
    const failure = this.#poisoned === undefined && this.#checkpoints !== undefined ? checkpointNow(this.#sql, this.#checkpoints, () => this.#readHead(), this.#openedAtMs) : undefined;
    if (failure !== undefined) this.#note(`sqlite-audit-log: ${this.path}: final checkpoint not written: ${messageOf(failure.error)}`);
    this.#closed = true;
    this.#db.close();
  }

  #readHead(): AuditHead {
    return readHead(this.#sql, this.#base);
  }

  #readHeadQuietly(): AuditHead | undefined {
    try {
      return this.#readHead();
    } catch {
      return undefined;
    }
  }

  #rollbackQuietly(): void {
    try {
      if (this.#db.inTransaction) this.#sql.rollback.run();
    } catch (error) {
      // The caller is already failing with the original error, which is the one worth reporting.
      this.#note(`sqlite-audit-log: ${this.path}: rollback failed: ${messageOf(error)}`);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`audit log ${this.path} is closed`);
  }
}
