// The public surface of the SQLite audit log, named apart from either way of running it: in this thread
// (SqliteAuditLog) or on a writer thread (WorkerAuditLog). Callers that only use the log name this type, so the
// composition root alone chooses where the writes and their fsyncs run.

import type { KeyObject } from 'node:crypto';
import type { AuditCheckpoint } from './audit-checkpoint.js';
import type { AuditLog, AuditRecord, VerifyResult } from './audit-log.js';
import type { AuditHealth, RetentionResult } from './sqlite-audit-retention.js';
import type { AuditHead, SqliteAuditPragmas } from './sqlite-audit-schema.js';
import type { SqliteAuditStats } from './sqlite-audit-log.js';

export interface SqliteAuditSurface extends AuditLog {
  /** The database file. */
  readonly path: string;
  /** What happened at open that an operator must hear of (a moved-aside file, a reconciliation). */
  readonly notices: readonly string[];
  /** Checks the stored chain and checkpoints; with `publicKey`, checkpoint signatures too. */
  verify(publicKey?: KeyObject): VerifyResult;
  /** Every record up to `uptoSeq` is acknowledged; never moves back. Returns the watermark in force. */
  acknowledge(uptoSeq: number): number;
  /** The acknowledgement watermark, as stored. */
  acknowledgedSeq(): number;
  /** The oldest records not acknowledged yet (the outbox), at most `limit`. */
  unacknowledged(limit: number): AuditRecord[];
  /** Deletes acknowledged records older than the declared retention (with a retention record in the chain). */
  applyRetention(): RetentionResult;
  /** How the log is doing now. */
  health(): AuditHealth;
  /** Commit counters since open. */
  stats(): SqliteAuditStats;
  /** The newest signed checkpoint as stored, undefined before the first. */
  latestCheckpoint(): AuditCheckpoint | undefined;
  /** The last record's seq and hash, as stored. */
  head(): AuditHead;
  /** The pragmas in force on the writing connection. */
  pragmas(): SqliteAuditPragmas;
}
