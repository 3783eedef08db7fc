// Retention and space accounting of the SQLite audit log: the cap and its reserve (max_page_count), the disk-full
// state and the ballast, the acknowledgement cursor (the cloud's, or an archive's), health, and the deletion of
// acknowledged old records with a retention record in the chain. It never deletes a record that is not both
// acknowledged and older than the retention, and never lets an ordinary record use the safe-state reserve.

import type Database from 'better-sqlite3';
import { AuditWriteError, type AuditEntry } from './audit-log.js';
import { ballastPresent, createBallast, DEFAULT_BALLAST_BYTES, freeBytes, releaseBallast } from './audit-space.js';
import { appendEntries, encodeEntry } from './sqlite-audit-entry.js';
import { countUsedPages, readAckSeq, readHead, type AuditHead, type AuditStatements } from './sqlite-audit-schema.js';

export const PAGE_SIZE = 4096;
/** The space alarm goes on when the used bytes reach this fraction of the cap... */
export const SPACE_ALARM_ON_FRACTION = 0.8;
/** ...and is re-armed only once they fall below this one (hysteresis: one alarm per crossing, not per record). */
export const SPACE_ALARM_OFF_FRACTION = 0.7;

/** The space options of SqliteAuditLogOptions (documented there). */
export interface SpaceOptions {
  readonly maxBytes?: number;
  readonly reserveBytes?: number;
  readonly ballastBytes?: number;
  readonly retentionMs?: number;
  readonly retentionIntervalMs?: number;
}

export interface SpaceSettings {
  readonly maxPages: number | undefined;
  readonly reservePages: number;
  readonly pageSize: number;
  readonly ballastBytes: number;
}

/** SpaceSettings plus the clock and the retention, as the log runs with them. */
export type SpaceRuntime = SpaceSettings & { readonly nowMs: () => number; readonly retentionMs: number | undefined };

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
  /** usedBytes / maxBytes; undefined without a cap. */
  readonly usedFraction: number | undefined;
  /** On from 80% of the cap until the use falls below 70% (an `audit-space-high` event marks each rise). */
  readonly spaceAlarm: boolean;
  readonly problem: string | undefined;
}

/** What retention did. */
export interface RetentionResult {
  readonly deleted: number;
  /** The first record still stored after the run (the chain's base is the one before it). */
  readonly firstSeq: number;
}

/** Checks the space options at open time. Throws RangeError naming the option. */
export function spaceSettings(options: SpaceOptions): SpaceSettings {
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

/**
 * The space state of one open log: pages in use, the disk-full state, the acknowledgement cursor. The writer asks it
 * whether an ordinary record may be queued and tells it about commits and SQLITE_FULL.
 */
export class AuditSpace {
  readonly settings: SpaceRuntime;
  readonly #path: string;
  readonly #note: (msg: string) => void;
  /** Pages in use after the last commit (page_count - freelist_count). */
  usedPages = 0;
  /** Set when the file system ran out of space; cleared when a free-space check finds room again. */
  diskFull: string | undefined;
  /** The acknowledgement cursor as last read or set; re-read from meta, since another connection may move it. */
  ackSeq = 0;
  /** The 80% alarm: on from SPACE_ALARM_ON_FRACTION of the cap until the use falls below SPACE_ALARM_OFF_FRACTION. */
  spaceAlarm = false;
  #lastSpaceCheckMs = 0;
  #lastRetentionAttemptMs = 0;

  constructor(settings: SpaceRuntime, path: string, note: (msg: string) => void) {
    this.settings = settings;
    this.#path = path;
    this.#note = note;
  }

  /** Makes the ballast file when one is configured; says why not when there is no room for it. */
  makeBallast(): string | undefined {
    const bytes = this.settings.ballastBytes;
    if (bytes === 0) return undefined;
    const problem = createBallast(this.#path, bytes);
    return problem === undefined ? undefined : `no room for the ${bytes}-byte ballast file: ${problem}`;
  }

  /** Re-reads pages in use (after a commit or a deletion). */
  measure(db: Database.Database): void {
    this.usedPages = countUsedPages(db);
  }

  /** usedBytes / maxBytes, or undefined without a cap. */
  usedFraction(): number | undefined {
    const { maxPages } = this.settings;
    return maxPages === undefined || maxPages === 0 ? undefined : this.usedPages / maxPages;
  }

  /**
   * After a measure: 'raised' when the use crossed the alarm fraction since the alarm was last off (the caller records
   * one event and warns), 'cleared' when it fell below the re-arm fraction, undefined when nothing changed.
   */
  checkAlarm(): 'raised' | 'cleared' | undefined {
    const fraction = this.usedFraction();
    if (fraction === undefined) return undefined;
    if (!this.spaceAlarm && fraction >= SPACE_ALARM_ON_FRACTION) {
      this.spaceAlarm = true;
      return 'raised';
    }
    if (this.spaceAlarm && fraction < SPACE_ALARM_OFF_FRACTION) {
      this.spaceAlarm = false;
      return 'cleared';
    }
    return undefined;
  }

  /**
   * After a measure, what a change of the alarm calls for: on a rise, the warning and the `audit-space-high` event to
   * record; on a fall below the re-arm fraction, a line to log. Undefined when nothing changed.
   */
  alarmChange(headSeq: () => number, timeMs: number): { readonly message: string; readonly entry?: AuditEntry } | undefined {
    const change = this.checkAlarm();
    if (change === undefined) return undefined;
    const { usedBytes, maxBytes = 0, unacknowledged } = this.health(headSeq(), undefined);
    if (change === 'cleared') return { message: `sqlite-audit-log: ${this.#path}: space alarm off: ${usedBytes} of ${maxBytes} bytes used` };
    return {
      message: `sqlite-audit-log: ${this.#path}: ${usedBytes} of ${maxBytes} bytes used (${Math.round((usedBytes / maxBytes) * 100)}% of the cap), ${unacknowledged} records unacknowledged; archive (interlock audit archive) or restore the cloud link before ordinary records are refused`,
      entry: { kind: 'event', timeMs, detail: { event: 'audit-space-high', usedBytes, maxBytes, unacknowledged } },
    };
  }

  /**
   * Re-reads the acknowledgement cursor from meta: `interlock audit archive` moves it from its own connection.
   * SAFETY: taken only forwards, so a stale or lower value can never make retention keep less than it did.
   */
  syncAck(statements: AuditStatements): number {
    const stored = readAckSeq(statements);
    if (Number.isSafeInteger(stored) && stored > this.ackSeq) {
      this.ackSeq = stored;
      // A moved cursor may be what a full log waits for: let the next refusal try retention at once.
      this.#lastRetentionAttemptMs = 0;
    }
    return this.ackSeq;
  }

  /** Moves the cursor to `uptoSeq` (never back; never beyond `headSeq`). Returns the cursor in force. */
  acknowledge(statements: AuditStatements, db: Database.Database, uptoSeq: number, headSeq: number): number {
    if (!Number.isSafeInteger(uptoSeq) || uptoSeq < 0) throw new RangeError(`acknowledge: seq must be a non-negative integer, got ${uptoSeq}`);
    if (uptoSeq > headSeq) throw new RangeError(`acknowledge: seq ${uptoSeq} is beyond the last record (${headSeq})`);
    this.syncAck(statements);
    if (uptoSeq <= this.ackSeq) return this.ackSeq;
    db.transaction(() => statements.upsertMeta.run('ack_seq', String(uptoSeq))).immediate();
    this.ackSeq = uptoSeq;
    this.#lastRetentionAttemptMs = 0;
    return uptoSeq;
  }

  /** At the cap less the reserve, counting `pendingCount` queued records. */
  atCap(pendingCount: number): boolean {
    const { maxPages, reservePages } = this.settings;
    return maxPages !== undefined && this.usedPages + this.#pendingPages(pendingCount) >= maxPages - reservePages;
  }

  /**
   * Why an ordinary record would be refused now, if it would. Retries room at most once a second: the disk (free
   * space for the ballast), then the cap (through `retention`; at once when `refreshAck` finds the cursor moved).
   */
  refusal(pendingCount: number, headSeq: () => number, retention: () => void, refreshAck: () => void): AuditWriteError | undefined {
    const nowMs = this.settings.nowMs();
    if (this.diskFull !== undefined) {
      if (nowMs - this.#lastSpaceCheckMs >= 1_000) {
        this.#lastSpaceCheckMs = nowMs;
        this.#checkSpaceReturned();
      }
      if (this.diskFull !== undefined) return new AuditWriteError('AUDIT_DISK_FULL', `audit log ${this.#path}: the disk is full (${this.diskFull}); only safe-state records are written`);
    }
    if (!this.atCap(pendingCount)) return undefined;
    // A cursor moved by another connection (an archive) lets retention try again at once.
    refreshAck();
    if (this.settings.retentionMs !== undefined && nowMs - this.#lastRetentionAttemptMs >= 1_000) {
      this.#lastRetentionAttemptMs = nowMs;
      retention();
    }
    if (!this.atCap(pendingCount)) return undefined;
    const { maxPages = 0, reservePages, pageSize } = this.settings;
    return new AuditWriteError(
      'AUDIT_LOG_FULL',
      `audit log ${this.#path} is at its cap (${maxPages * pageSize} bytes less a ${reservePages * pageSize}-byte reserve for safe-state records) with ${headSeq() - this.ackSeq} records the cloud has not acknowledged`,
    );
  }

  /** A pessimistic page estimate for what is queued but not committed (a record is well under 1 KiB). */
  #pendingPages(pendingCount: number): number {
    return Math.ceil((pendingCount * 1024) / this.settings.pageSize);
  }

  /** The disk was full: if there is room again for the ballast and as much again, make the ballast and go on. */
  #checkSpaceReturned(): void {
    const free = freeBytes(this.#path);
    const wanted = Math.max(2 * this.settings.ballastBytes, 1024 * 1024);
    if (free === undefined || free < wanted) return;
    const problem = this.settings.ballastBytes > 0 ? createBallast(this.#path, this.settings.ballastBytes) : undefined;
    if (problem !== undefined) return;
    this.#note(`sqlite-audit-log: ${this.#path}: space returned (${free} bytes free); ballast restored, ordinary records accepted again`);
    this.diskFull = undefined;
  }

  /** SQLITE_FULL that is not the cap: the disk is out of space. Gives the ballast's room to the log. */
  onDiskFull(why: string): void {
    const first = this.diskFull === undefined;
    this.diskFull = why;
    this.#lastSpaceCheckMs = this.settings.nowMs();
    const released = releaseBallast(this.#path);
    if (first) this.#note(`sqlite-audit-log: ${this.#path}: disk full (${why}); ${released ? 'ballast deleted to make room; ' : ''}only safe-state records are written until space returns`);
  }

  /** SQLITE_FULL after a rollback: at the cap (true), or the disk is full. */
  fullAtCap(db: Database.Database): { atCap: boolean; pages: number } {
    const pages = Number(db.pragma('page_count', { simple: true }));
    return { atCap: this.settings.maxPages !== undefined && pages >= this.settings.maxPages - 1, pages };
  }

  health(headSeq: number, refusing: string | undefined): AuditHealth {
    const { maxPages, reservePages, pageSize } = this.settings;
    const full = maxPages !== undefined && this.usedPages >= maxPages - reservePages;
    const state = refusing !== undefined ? 'refusing' : this.diskFull !== undefined ? 'disk-full' : full ? 'full' : 'ok';
    return {
      state,
      headSeq,
      acknowledgedSeq: this.ackSeq,
      unacknowledged: Math.max(0, headSeq - this.ackSeq),
      usedBytes: this.usedPages * pageSize,
      maxBytes: maxPages === undefined ? undefined : maxPages * pageSize,
      ballastPresent: this.settings.ballastBytes > 0 && ballastPresent(this.#path, this.settings.ballastBytes),
      usedFraction: this.usedFraction(),
      spaceAlarm: this.spaceAlarm,
      problem: refusing ?? this.diskFull,
    };
  }
}

/**
 * Deletes the oldest records that are both acknowledged and older than `retentionMs`, in one transaction with a
 * retention record appended to the chain that names the new base (the last deleted record's seq and hash), so verify
 * can start there. Returns the new base and what went, or undefined when nothing may go. Throws (rolled back) on
 * failure. The caller must have flushed its queue (the retention record takes the next seq).
 */
export function deleteRetained(
  statements: AuditStatements,
  base: AuditHead,
  ackSeq: number,
  nowMs: number,
  retentionMs: number,
): { readonly base: AuditHead; readonly from: number; readonly deleted: number } | undefined {
  const cutoff = nowMs - retentionMs;
  // The first record too young to go; everything before it (and acknowledged) may be deleted.
  const young = statements.selectFirstYoungSeq.get(base.seq, cutoff) as { s: number | null };
  const limit = Math.min(ackSeq, (young.s ?? Number.MAX_SAFE_INTEGER) - 1);
  if (limit <= base.seq) return undefined;
  const newBase = statements.selectHashAt.get(limit) as { hash: string } | undefined;
  if (newBase === undefined) throw new Error(`retention: record ${limit} is missing`);
  const from = base.seq + 1;
  statements.begin.run();
  try {
    const entry = encodeEntry({
      kind: 'event',
      timeMs: nowMs,
      detail: { event: 'audit-retention', deletedFrom: from, deletedTo: limit, baseSeq: limit, baseHash: newBase.hash, acknowledgedSeq: ackSeq, retentionMs },
    });
    appendEntries(statements, readHead(statements, base), [entry]);
    const deleted = statements.deleteUpTo.run(limit).changes;
    statements.upsertMeta.run('base_seq', String(limit));
    statements.upsertMeta.run('base_hash', newBase.hash);
    statements.commit.run();
    return { base: { seq: limit, hash: newBase.hash }, from, deleted };
  } catch (error) {
    try {
      if (statements.rollback.database.inTransaction) statements.rollback.run();
    } catch {
      // The original error is the one worth reporting.
    }
    throw error;
  }
}
