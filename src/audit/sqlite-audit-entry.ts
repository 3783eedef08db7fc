// How an audit entry becomes a stored record: the shape checks, the canonical snapshot taken at record() time, the
// exact body text (canonical JSON with seq and prevHash) and its hash, and the indexed column values. Pure: no I/O.
// It must never serialise a value twice (the body is fixed when the caller hands the entry in).

import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import type { AuditEntry, AuditKind, AuditReceipt } from './audit-log.js';
import { insertRecord, type AuditHead, type AuditStatements, type IndexedColumns } from './sqlite-audit-schema.js';

const KINDS: readonly AuditKind[] = ['decision', 'outcome', 'event'];

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

// Minimal shape checks: enough that the indexed columns always mirror the body exactly (a mismatch would later
// read as tampering). The types already say this; these catch untyped callers.
export function validateEntry(entry: AuditEntry): void {
  if (typeof entry !== 'object' || entry === null) throw new TypeError('audit entry must be an object');
  for (const reserved of ['seq', 'prevHash', 'hash']) {
    // The log assigns these; an entry carrying them is a caller bug (e.g. re-recording a record).
    if (Object.hasOwn(entry, reserved)) throw new TypeError(`audit entry must not carry '${reserved}'`);
  }
  if (!KINDS.includes(entry.kind)) throw new TypeError(`audit entry kind must be one of ${KINDS.join(', ')}`);
  // SAFETY: a NaN or fractional time would make the record unorderable by time; refuse it rather than store it.
  if (!Number.isSafeInteger(entry.timeMs) || entry.timeMs < 0) {
    throw new TypeError(`audit entry timeMs must be a non-negative integer, got ${String(entry.timeMs)}`);
  }
  if (entry.parentSeq !== undefined && (!Number.isSafeInteger(entry.parentSeq) || entry.parentSeq < 1)) {
    throw new TypeError(`audit entry parentSeq must be a positive integer, got ${String(entry.parentSeq)}`);
  }
  for (const field of ['commandId', 'agentId', 'deviceId', 'action', 'verdict'] as const) {
    const value = entry[field];
    if (value !== undefined && typeof value !== 'string') throw new TypeError(`audit entry ${field} must be a string`);
  }
}

/** One top-level member of a canonical JSON object: its key, and `"key":value` as canonicalJson writes it. */
export type CanonicalField = readonly [key: string, text: string];

/**
 * The entry's members as canonicalJson would write them (undefined members omitted). Taken at record() time so a
 * value JSON cannot carry rejects that call alone, and the text is fixed before the caller can change the entry.
 */
export function canonicalFields(entry: AuditEntry): CanonicalField[] {
  const fields: CanonicalField[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (value !== undefined) fields.push([key, `${JSON.stringify(key)}:${canonicalJson(value)}`]);
  }
  return fields;
}

/**
 * The stored body: exactly canonicalJson({...entry, seq, prevHash}) (keys sorted as Array.prototype.sort does,
 * by UTF-16 code units), built from the snapshot so no value is serialized twice. A test holds it to that.
 */
export function bodyText(fields: readonly CanonicalField[], seq: number, prevHash: string): string {
  const all: CanonicalField[] = [...fields, ['prevHash', `"prevHash":${JSON.stringify(prevHash)}`], ['seq', `"seq":${seq}`]];
  all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${all.map(([, text]) => text).join(',')}}`;
}

export function columnsOf(entry: AuditEntry): Omit<IndexedColumns, 'prev_hash'> {
  return {
    time_ms: entry.timeMs,
    kind: entry.kind,
    command_id: entry.commandId ?? null,
    parent_seq: entry.parentSeq ?? null,
    agent_id: entry.agentId ?? null,
    device_id: entry.deviceId ?? null,
    action: entry.action ?? null,
    verdict: entry.verdict ?? null,
  };
}

/** An entry as it will be stored: its canonical fields (the body without seq and prevHash) and its column values. */
export interface EncodedEntry {
  /** The canonical `"key":value` text of each field of the entry, taken when it was handed in. */
  readonly fields: readonly CanonicalField[];
  /** The indexed column values, taken from the same entry at the same time (prev_hash comes at append). */
  readonly columns: Omit<IndexedColumns, 'prev_hash'>;
}

/** Checks and snapshots an entry; throws TypeError (or canonicalJson's error) for an entry that cannot be stored. */
export function encodeEntry(entry: AuditEntry): EncodedEntry {
  validateEntry(entry);
  return { fields: canonicalFields(entry), columns: columnsOf(entry) };
}

/**
 * Inside an open write transaction: appends the entries after `head` (as read in that same transaction), chained.
 * Throws on the first failed insert; the caller rolls back.
 */
export function appendEntries(statements: AuditStatements, head: AuditHead, entries: readonly EncodedEntry[]): AuditReceipt[] {
  const receipts: AuditReceipt[] = [];
  let prevHash = head.hash;
  for (const entry of entries) {
    const seq = head.seq + receipts.length + 1;
    const body = bodyText(entry.fields, seq, prevHash);
    const hash = sha256Hex(body);
    insertRecord(statements, seq, entry.columns, body, prevHash, hash);
    receipts.push({ seq, hash });
    prevHash = hash;
  }
  return receipts;
}
