// At start: the bounds memory as the last run left it. Latched trips, released setpoints and operator modes come from
// the identity store; rate windows are rebuilt from the audit log's recent decisions. It never starts on less than
// that: what cannot be known fails closed (restoreBoundsMemory, rebuildRateWindows).

import type { SqliteAuditSurface } from '../audit/sqlite-audit-surface.js';
import { recentDecisions } from '../audit/recent-decisions.js';
import type { BoundsMemory } from '../bounds/bounds.js';
import { longestRateWindowMs, rebuildRateWindows, type RecentDecisions } from '../bounds/rate-limits.js';
import { restoreBoundsMemory } from '../bounds/safety-memory.js';
import type { Declarations } from '../core/declarations.js';
import type { Logger } from '../core/log.js';
import type { SqliteIdentityStore } from '../identity/sqlite-identity-store.js';

export interface SafetyMemorySources {
  readonly declarations: Declarations;
  readonly identity: SqliteIdentityStore;
  /** Opened, and not yet written by this run (its newest records are the last run's). */
  readonly audit: SqliteAuditSurface;
  readonly nowMs: number;
  readonly log: Logger;
}

/** Throws (naming the file) when the stored memory cannot be read or the restored memory cannot be written back. */
export function restoreSafetyMemory(sources: SafetyMemorySources): BoundsMemory {
  const { declarations, identity, audit, nowMs, log } = sources;
  const store = identity.safetyMemory;
  const saved = store.load();
  const recorded = audit.head().seq;
  // SAFETY: a new identity store beside an audit log that holds earlier runs means the file that held their memory
  // is gone (deleted, replaced): that is unknown memory, not empty memory.
  const lost =
    saved.lost ?? (identity.created && recorded > 0 ? `${store.path} was created at this start, but the audit log already holds ${recorded} records of earlier runs` : undefined);
  const bounds = restoreBoundsMemory(store, { ...saved, lost }, declarations, nowMs, log);

  const windowMs = longestRateWindowMs(declarations);
  const recent: RecentDecisions =
    recorded === 0 && !identity.created
      ? { complete: false, why: 'the audit log is empty, but the identity store is from an earlier run' }
      : windowMs > 0
        ? recentDecisions(audit, nowMs - windowMs)
        : { complete: true, decisions: [] };
  for (const note of rebuildRateWindows(bounds.rates, recent, declarations, nowMs)) {
    if (recent.complete) log.info(note);
    else log.warn(note);
  }
  return bounds;
}
