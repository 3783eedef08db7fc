// `interlock audit verify --against SEQ:HASH|FILE`: the off-device witness. The cloud receiver's acknowledged head
// (seq and hash) must still be in the device's log with that hash. It catches the one tampering the device cannot see
// alone: the newest records deleted together with the checkpoints that cover them (the rest still verifies).

import { readFileSync } from 'node:fs';
import { parseWatermark, type AuditWatermark } from '../cloud/audit-batch.js';
import type { AuditRecord } from '../audit/audit-log.js';

/** Reads `SEQ:HASH`, or a file holding the receiver's watermark JSON (`{"seq": N, "hash": "..."}`, an ack works). */
export function parseAgainst(text: string): AuditWatermark | string {
  const inline = /^(\d{1,16}):([0-9a-f]{64})$/.exec(text);
  if (inline !== null) return { seq: Number(inline[1]), hash: inline[2] as string };
  if (/^\d+:/.test(text)) return `--against ${text}: expected SEQ:HASH with a 64-digit lowercase hex hash`;
  let content: string;
  try {
    content = readFileSync(text, 'utf8');
  } catch (error) {
    return `--against: ${text} is neither SEQ:HASH nor a readable file (${error instanceof Error ? error.message : String(error)})`;
  }
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch {
    return `--against: ${text} is not JSON (expected the receiver's watermark, {"seq": N, "hash": "<64 hex>"})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `--against: ${text} is not a JSON object`;
  const mark = parseWatermark(value as Record<string, unknown>);
  return mark.ok ? mark.value : `--against: ${text}: ${mark.problem}`;
}

/** What the check needs of an open (snapshot) audit log. */
export interface WitnessedLog {
  head(): { readonly seq: number; readonly hash: string };
  read(fromSeq: number, limit: number): AuditRecord[];
  acknowledgedSeq(): number;
}

export type AgainstOutcome = { readonly ok: true; readonly note: string } | { readonly ok: false; readonly seq: number; readonly problem: string };

/** Whether the log still holds the cloud's acknowledged head with the cloud's hash. */
export function checkAgainst(log: WitnessedLog, mark: AuditWatermark): AgainstOutcome {
  const head = log.head();
  // SAFETY: the cloud holds records this log no longer has: the newest were deleted (checkpoints with them, or verify
  // would have said so). Name exactly which.
  if (mark.seq > head.seq) {
    const missing = mark.seq === head.seq + 1 ? `record ${mark.seq} missing` : `records ${head.seq + 1}..${mark.seq} missing`;
    return { ok: false, seq: head.seq + 1, problem: `${missing}: the cloud acknowledged seq ${mark.seq} (hash ${mark.hash}), this log ends at seq ${head.seq} (newest records deleted?)` };
  }
  if (mark.seq === 0) return { ok: true, note: 'the cloud holds no record yet' };
  const record = log.read(mark.seq, 1)[0];
  if (record?.seq === mark.seq) {
    if (record.hash !== mark.hash) return { ok: false, seq: mark.seq, problem: `record ${mark.seq} has hash ${record.hash}, the cloud holds ${mark.hash} (records replaced?)` };
    return { ok: true, note: `the cloud's acknowledged head, seq ${mark.seq}, is here with the same hash` };
  }
  // Retention may delete acknowledged records only: the log's own cursor must cover the seq.
  if (log.acknowledgedSeq() >= mark.seq) return { ok: true, note: `seq ${mark.seq} was deleted by retention after the cloud acknowledged it` };
  return { ok: false, seq: mark.seq, problem: `record ${mark.seq} is missing and was never acknowledged here (deleted?)` };
}
