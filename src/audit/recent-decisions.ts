// Reads the audit log's newest decision records back to a time, newest first, through the log's own reading API
// (head, read), for what is rebuilt at start (rate windows). It never writes, and it says when the records it
// needs are not all there rather than hand back fewer.

import type { AuditHead } from './sqlite-audit-log.js';
import type { AuditRecord } from './audit-log.js';
import type { RecentDecisions, RecordedDecision } from '../bounds/rate-limits.js';

export interface AuditReading {
  head(): AuditHead;
  read(fromSeq: number, limit: number): AuditRecord[];
}

const PAGE = 1000;
/** Beyond this many records inside the window the scan stops and calls the history incomplete (fails closed). */
const MAX_RECORDS = 200_000;

/**
 * Every decision recorded at `sinceMs` or later (or at a time that is not provably earlier). Reads back from the
 * newest record and stops at the first page whose records are all older. Incomplete when the window reaches past
 * the oldest record kept (retention) or into a new segment (the records before it are in a file moved aside), when
 * a record cannot be read, or beyond MAX_RECORDS.
 */
export function recentDecisions(log: AuditReading, sinceMs: number): RecentDecisions {
  const decisions: RecordedDecision[] = [];
  let upper: number;
  try {
    upper = log.head().seq;
  } catch (error) {
    return { complete: false, why: `the audit log's head cannot be read: ${messageOf(error)}` };
  }
  let scanned = 0;
  while (upper >= 1) {
    const from = Math.max(1, upper - PAGE + 1);
    let page: AuditRecord[];
    try {
      page = log.read(from, upper - from + 1);
    } catch (error) {
      return { complete: false, why: `audit records ${from}..${upper} cannot be read: ${messageOf(error)}` };
    }
    let allOlder = true;
    for (let i = page.length - 1; i >= 0; i--) {
      const record = page[i] as AuditRecord;
      // SAFETY: "not provably older" is inside the window, so a NaN or future time is counted.
      const inside = !(record.timeMs < sinceMs);
      if (!inside) continue;
      allOlder = false;
      if (record.kind === 'event' && record.detail?.['event'] === 'audit-segment-started') {
        return { complete: false, why: `a new audit segment started at record ${record.seq} inside the window; the decisions before it are in a file moved aside` };
      }
      if (record.kind !== 'decision') continue;
      decisions.push({
        timeMs: record.timeMs,
        ...(record.agentId === undefined ? {} : { agentId: record.agentId }),
        ...(record.deviceId === undefined ? {} : { deviceId: record.deviceId }),
        reasonCodes: (record.reasons ?? []).map((r) => r.code),
      });
    }
    if (allOlder && page.length > 0) return { complete: true, decisions };
    const oldest = page[0]?.seq;
    // Nothing older is stored (retention deleted it, or the chain in this file starts later).
    if (oldest !== from) return { complete: false, why: `the audit log keeps no records before ${oldest ?? upper + 1}, inside the window` };
    scanned += page.length;
    if (scanned >= MAX_RECORDS) return { complete: false, why: `more than ${MAX_RECORDS} records inside the window` };
    upper = from - 1;
  }
  return { complete: true, decisions };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
