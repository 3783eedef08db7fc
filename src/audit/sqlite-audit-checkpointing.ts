// When the SQLite audit log writes a signed checkpoint: inside the write transaction of a batch (so a checkpoint
// never names records that are not stored), once enough records or time have passed since the last one, or when
// forced (idle timer, close). It never signs a head that was not read in the same transaction.

import { signCheckpoint, type CheckpointSettings } from './audit-checkpoint.js';
import type { AuditHead, AuditStatements } from './sqlite-audit-schema.js';

/**
 * Inside an open write transaction: inserts a signed checkpoint for `head` when enough records or time have passed
 * since the last one (or whenever `force` and records are uncovered). `openedAtMs` is the time base until the first
 * checkpoint. Throws on failure, like the insert.
 */
export function checkpointIfDue(statements: AuditStatements, settings: CheckpointSettings, head: AuditHead, force: boolean, openedAtMs: number): void {
  const last = statements.selectLastCheckpoint.get() as { seq: number; size: number; time_ms: number } | undefined;
  const lastSize = last?.size ?? 0;
  if (head.seq <= lastSize) return;
  const nowMs = settings.nowMs();
  const due = force || head.seq - lastSize >= settings.everyRecords || nowMs - (last?.time_ms ?? openedAtMs) >= settings.everyMs;
  if (!due) return;
  const checkpoint = signCheckpoint({ seq: (last?.seq ?? 0) + 1, size: head.seq, head: head.hash, origin: settings.origin, timeMs: nowMs }, settings.privateKey);
  const { seq, size, origin, timeMs, signature } = checkpoint;
  statements.insertCheckpoint.run(seq, size, checkpoint.head, origin, timeMs, signature);
}

/**
 * A checkpoint of whatever is uncovered, in a transaction of its own (idle timer, close). Says what failed: 'begin'
 * (nothing started, nothing in doubt) or 'write' (rolled back; a failed COMMIT leaves the file in doubt).
 */
export function checkpointNow(
  statements: AuditStatements,
  settings: CheckpointSettings,
  head: () => AuditHead,
  openedAtMs: number,
): { readonly failed: 'begin' | 'write'; readonly error: unknown } | undefined {
  try {
    statements.begin.run();
  } catch (error) {
    return { failed: 'begin', error };
  }
  try {
    checkpointIfDue(statements, settings, head(), true, openedAtMs);
    statements.commit.run();
    return undefined;
  } catch (error) {
    try {
      if (statements.rollback.database.inTransaction) statements.rollback.run();
    } catch {
      // The original error is the one worth reporting.
    }
    return { failed: 'write', error };
  }
}

/** The idle checkpoint timer: armed after a commit, at most one at a time. */
export class IdleCheckpointTimer {
  #cancel: (() => void) | undefined;

  /** Arms `fire` in `settings.everyMs` unless armed already. Throws if the timer cannot be started. */
  arm(settings: CheckpointSettings, fire: () => void): void {
    if (this.#cancel !== undefined) return;
    this.#cancel = settings.setTimer(() => {
      this.#cancel = undefined;
      fire();
    }, settings.everyMs);
  }

  cancel(): void {
    this.#cancel?.();
    this.#cancel = undefined;
  }
}
