// Verifies the audit chain of a database without ever writing to it: a page-exact snapshot is taken through a
// read-only connection and the log's own verify() runs on the snapshot. openSqliteAuditLog itself writes on open
// (it sets journal_mode, takes the write lock and may create the schema), so it must never see the original.

import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteAuditLog } from '../audit/sqlite-audit-log.js';
import { messageOf, openAuditReader } from './audit-reader.js';
import { checkAgainst } from './audit-against.js';
import type { AuditWatermark } from '../cloud/audit-batch.js';

export type AuditVerifyOutcome =
  | { readonly status: 'ok'; readonly records: number; readonly headHash: string; readonly against?: string }
  /** The chain is broken at `seq`: a record was edited, deleted, reordered or had a column changed. */
  | { readonly status: 'broken'; readonly seq: number; readonly problem: string }
  /** The database could not be checked at all (missing, not an audit log, damaged pages); never "ok". */
  | { readonly status: 'unreadable'; readonly problem: string };

/**
 * `publicKey`: the interlock's public key (`<state-dir>/keys/interlock.pub.pem`); with it, signed checkpoints are
 * checked too, so dropped newest records and forged checkpoints are found. `against`: the cloud receiver's watermark,
 * which must still be held with its hash (so the newest records deleted with their checkpoints are found too).
 */
export async function verifyAuditDatabase(path: string, publicKey?: KeyObject, against?: AuditWatermark): Promise<AuditVerifyOutcome> {
  const opened = openAuditReader(path);
  if (!opened.ok) return { status: 'unreadable', problem: opened.problem };
  const scratch = mkdtempSync(join(tmpdir(), 'interlock-audit-verify-'));
  try {
    const snapshot = join(scratch, 'audit.db');
    try {
      await opened.reader.backup(snapshot);
    } catch (error) {
      return { status: 'unreadable', problem: `cannot take a snapshot of ${path} to verify: ${messageOf(error)}` };
    } finally {
      opened.reader.close();
    }
    let log;
    try {
      // SAFETY: verify reports damage; it never moves the file aside and verifies an empty new segment instead.
      log = openSqliteAuditLog(snapshot, { onCorruption: 'refuse', ballastBytes: 0 });
    } catch (error) {
      // The error names the snapshot's path; its cause says what is wrong with the (page-identical) original.
      const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
      return { status: 'unreadable', problem: `cannot verify ${path}: ${messageOf(cause)}` };
    }
    try {
      const result = log.verify(publicKey);
      if (!result.ok) return { status: 'broken', seq: result.seq, problem: result.problem };
      if (against === undefined) return { status: 'ok', records: result.records, headHash: result.headHash };
      const witnessed = checkAgainst(log, against);
      return witnessed.ok ? { status: 'ok', records: result.records, headHash: result.headHash, against: witnessed.note } : { status: 'broken', seq: witnessed.seq, problem: witnessed.problem };
    } finally {
      log.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
