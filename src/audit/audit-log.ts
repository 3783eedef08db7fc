// The audit log seam: every decision is recorded here, durably, before anything moves. Implementations must
// resolve `record` only once the record is committed to stable storage, and reject if that is not certain.

import type { Reason } from '../core/reasons.js';
import type { Verdict } from '../core/verdict.js';

export type AuditKind = 'decision' | 'outcome' | 'event';

/** What the caller hands in; the log adds `seq`, `prevHash` and `hash`. */
export interface AuditEntry {
  readonly kind: AuditKind;
  readonly timeMs: number;
  readonly commandId?: string;
  /** The seq of the record this one follows up (an outcome links to its decision). */
  readonly parentSeq?: number;
  readonly agentId?: string;
  readonly deviceId?: string;
  readonly action?: string;
  /** sha256 (hex) of the exact command bytes received. */
  readonly commandDigest?: string;
  /** Content digest of the declaration set in force. */
  readonly declarationsDigest?: string;
  readonly verdict?: Verdict;
  readonly reasons?: readonly Reason[];
  /** Agent session and plan/prompt hash, when the command carried them. */
  readonly trace?: { readonly session?: string; readonly plan?: string };
  /**
   * The command as received (decision records of commands that authenticated): the compact JWS, whose sha256 is
   * `commandDigest`, so the record says exactly what the machine was told and anyone can re-check the signature.
   */
  readonly commandToken?: string;
  /**
   * The device state the bounds were checked against: each state field used, its value and its age (ms) at the
   * decision. Absent when the decision used no state.
   */
  readonly state?: Readonly<Record<string, { readonly value: unknown; readonly ageMs: number }>>;
  /** Microseconds from the command's arrival to its verdict (for the decision-latency metric). */
  readonly decisionUs?: number;
  /** Free-form structured detail (event name, outcome data). Must be canonical-JSON serializable. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface AuditRecord extends AuditEntry {
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

export interface AuditReceipt {
  readonly seq: number;
  readonly hash: string;
}

export type VerifyResult =
  | { readonly ok: true; readonly records: number; readonly headHash: string }
  | { readonly ok: false; readonly seq: number; readonly problem: string };

export interface RecordOptions {
  /** The record is of a safe-state command (stop, e-stop, close to the safe position): it may use a reserve. */
  readonly safeState?: boolean;
}

export interface AuditLog {
  /** Commits the entry durably, then resolves with its place in the chain. Rejects if durability is not certain. */
  record(entry: AuditEntry, options?: RecordOptions): Promise<AuditReceipt>;
  /** Re-reads every stored record and checks sequence and hash chain. */
  verify(): VerifyResult;
  /** Records with seq >= fromSeq, in order, at most `limit`. */
  read(fromSeq: number, limit: number): AuditRecord[];
  close(): void;
}

/** The hash of the record before the first one. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * Why a record was refused, for the interlock to turn into the matching reason code. AUDIT_OUTCOME_UNKNOWN: an I/O
 * error during commit, the record may or may not be on disk (reconciled when the log reopens). AUDIT_LOG_FULL: at
 * the size cap with records the cloud has not acknowledged. AUDIT_DISK_FULL: the file system is out of space.
 * AUDIT_UNAVAILABLE: closed, or refusing writes since an earlier unknown outcome.
 */
export type AuditFailureCode = 'AUDIT_LOG_FULL' | 'AUDIT_DISK_FULL' | 'AUDIT_OUTCOME_UNKNOWN' | 'AUDIT_UNAVAILABLE';

export class AuditWriteError extends Error {
  constructor(
    readonly code: AuditFailureCode,
    message: string,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AuditWriteError';
  }
}
