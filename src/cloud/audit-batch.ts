// The audit forwarding wire format, shared by the device (forwarder) and the cloud (receiver): the topics, a batch of
// stored records with the latest signed checkpoint, its idempotency key, and the acknowledgement watermark. Parsing
// here checks shape only (every bad field named); what the records prove is the receiver's job (receive-batch.ts).

import type { AuditCheckpoint } from '../audit/audit-checkpoint.js';

/** AWS IoT Core's largest message (publish payload), in bytes: a batch is never larger, the whole JSON counted. */
export const IOT_CORE_MAX_MESSAGE_BYTES = 128 * 1024;
export const AUDIT_BATCH_VERSION = 1;

const HASH = /^[0-9a-f]{64}$/;
const THING = /^[a-zA-Z0-9:_-]{1,128}$/;

export function auditTopic(thing: string): string {
  return `interlock/${thing}/audit`;
}

export function auditAckTopic(thing: string): string {
  return `interlock/${thing}/audit/ack`;
}

/** The filter a receiver subscribes to, and how it reads the thing back out of a topic it matched. */
export const AUDIT_TOPIC_FILTER = 'interlock/+/audit';
export function thingOfAuditTopic(topic: string): string | undefined {
  const parts = topic.split('/');
  return parts.length === 3 && parts[0] === 'interlock' && parts[2] === 'audit' && THING.test(parts[1] ?? '') ? parts[1] : undefined;
}

/** One record as stored: its exact body text (the bytes its hash covers) and the hash. */
export interface WireRecord {
  readonly seq: number;
  readonly body: string;
  readonly hash: string;
}

export interface AuditBatch {
  readonly v: typeof AUDIT_BATCH_VERSION;
  readonly thing: string;
  /** Idempotency key: the same records always make the same key (batchKey). */
  readonly key: string;
  readonly records: readonly WireRecord[];
  /** The newest signed checkpoint the device held when it sent the batch; null before its first. */
  readonly checkpoint: AuditCheckpoint | null;
}

/** What the receiver holds for a thing: the highest seq of its gapless chain, and that record's hash. */
export interface AuditWatermark {
  readonly seq: number;
  readonly hash: string;
}

/** Why a batch was not (wholly) taken; the device logs it and sends again from its cursor after the ack timeout. */
export type ReceiveProblemCode = 'malformed' | 'unknown-thing' | 'hash-mismatch' | 'broken-chain' | 'gap' | 'bad-checkpoint' | 'conflict' | 'unavailable';

export interface AuditAck extends AuditWatermark {
  readonly v: typeof AUDIT_BATCH_VERSION;
  readonly thing: string;
  /** The key of the batch this answers, when it answers one. */
  readonly key?: string;
  readonly problem?: { readonly code: ReceiveProblemCode; readonly message: string };
}

/** (thing, first seq, last seq, last hash): a resend of the same records has the same key. */
export function batchKey(thing: string, records: readonly WireRecord[]): string {
  const first = records[0];
  const last = records[records.length - 1];
  if (first === undefined || last === undefined) throw new RangeError('batchKey: a batch has at least one record');
  return `${thing}:${first.seq}:${last.seq}:${last.hash}`;
}

export function makeBatch(thing: string, records: readonly WireRecord[], checkpoint: AuditCheckpoint | undefined): AuditBatch {
  return { v: AUDIT_BATCH_VERSION, thing, key: batchKey(thing, records), records, checkpoint: checkpoint ?? null };
}

/** The batch's exact size on the wire (UTF-8 bytes of its JSON). */
export function batchBytes(batch: AuditBatch): number {
  return Buffer.byteLength(JSON.stringify(batch), 'utf8');
}

/**
 * Bytes a batch holding `records` and `checkpoint` takes: the envelope's and every record's JSON, commas included.
 * Equal to batchBytes(makeBatch(...)) (a test holds it to that), but additive, so a batch grows record by record.
 */
export class BatchSizer {
  readonly #envelopeBytes: number;
  #bytes: number;
  #count = 0;

  constructor(thing: string, checkpoint: AuditCheckpoint | undefined) {
    // The key's longest form: two 16-digit seqs; the real key is never longer, so the estimate never undercounts.
    const envelope: AuditBatch = { v: AUDIT_BATCH_VERSION, thing, key: `${thing}:${'9'.repeat(16)}:${'9'.repeat(16)}:${'0'.repeat(64)}`, records: [], checkpoint: checkpoint ?? null };
    this.#envelopeBytes = batchBytes(envelope);
    this.#bytes = this.#envelopeBytes;
  }

  /** The size with `record` added. */
  with(record: WireRecord): number {
    return this.#bytes + recordBytes(record) + (this.#count > 0 ? 1 : 0);
  }

  add(record: WireRecord): void {
    this.#bytes = this.with(record);
    this.#count += 1;
  }

  get bytes(): number {
    return this.#bytes;
  }
}

function recordBytes(record: WireRecord): number {
  return Buffer.byteLength(JSON.stringify(record), 'utf8');
}

// ---- parsing (shape only) ----

type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

function parseJsonObject(payload: Buffer | string, what: string): Parsed<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (error) {
    return { ok: false, problem: `${what} is not JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, problem: `${what} is not a JSON object` };
  return { ok: true, value: value as Record<string, unknown> };
}

const isSeq = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function checkpointProblem(value: unknown): string | undefined {
  if (value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) return 'checkpoint: must be an object or null';
  const c = value as Record<string, unknown>;
  if (!isSeq(c['seq']) || (c['seq'] as number) < 1) return 'checkpoint.seq: must be a positive integer';
  if (!isSeq(c['size'])) return 'checkpoint.size: must be a non-negative integer';
  if (typeof c['head'] !== 'string' || !HASH.test(c['head'])) return 'checkpoint.head: must be 64 lowercase hex digits';
  if (typeof c['origin'] !== 'string' || c['origin'] === '') return 'checkpoint.origin: must be a non-empty string';
  if (!isSeq(c['timeMs'])) return 'checkpoint.timeMs: must be a non-negative integer';
  if (typeof c['signature'] !== 'string' || c['signature'] === '') return 'checkpoint.signature: must be a non-empty string';
  return undefined;
}

/** Reads a batch message; `maxRecords` bounds the work one message can ask for. */
export function parseAuditBatch(payload: Buffer | string, maxRecords: number): Parsed<AuditBatch> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload, 'utf8') : payload.length;
  if (size > IOT_CORE_MAX_MESSAGE_BYTES) return { ok: false, problem: `batch of ${size} bytes is over the ${IOT_CORE_MAX_MESSAGE_BYTES}-byte message limit` };
  const parsed = parseJsonObject(payload, 'batch');
  if (!parsed.ok) return parsed;
  const b = parsed.value;
  if (b['v'] !== AUDIT_BATCH_VERSION) return { ok: false, problem: `v: expected ${AUDIT_BATCH_VERSION}, got ${JSON.stringify(b['v'])}` };
  if (typeof b['thing'] !== 'string' || !THING.test(b['thing'])) return { ok: false, problem: 'thing: must be a thing name (1-128 of a-z A-Z 0-9 : _ -)' };
  if (typeof b['key'] !== 'string') return { ok: false, problem: 'key: must be a string' };
  const records = b['records'];
  if (!Array.isArray(records) || records.length === 0) return { ok: false, problem: 'records: must be a non-empty array' };
  if (records.length > maxRecords) return { ok: false, problem: `records: ${records.length} records, more than the ${maxRecords} one batch may hold` };
  for (const [i, r] of records.entries()) {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return { ok: false, problem: `records[${i}]: must be an object` };
    const rec = r as Record<string, unknown>;
    if (!isSeq(rec['seq']) || (rec['seq'] as number) < 1) return { ok: false, problem: `records[${i}].seq: must be a positive integer` };
    if (typeof rec['body'] !== 'string') return { ok: false, problem: `records[${i}].body: must be a string (the stored body text)` };
    if (typeof rec['hash'] !== 'string' || !HASH.test(rec['hash'])) return { ok: false, problem: `records[${i}].hash: must be 64 lowercase hex digits` };
  }
  const problem = checkpointProblem(b['checkpoint'] ?? null);
  if (problem !== undefined) return { ok: false, problem };
  const batch: AuditBatch = {
    v: AUDIT_BATCH_VERSION,
    thing: b['thing'],
    key: b['key'],
    records: (records as Record<string, unknown>[]).map((r) => ({ seq: r['seq'] as number, body: r['body'] as string, hash: r['hash'] as string })),
    checkpoint: (b['checkpoint'] ?? null) as AuditCheckpoint | null,
  };
  const expected = batchKey(batch.thing, batch.records);
  if (batch.key !== expected) return { ok: false, problem: `key: ${JSON.stringify(batch.key)} does not name these records (expected ${expected})` };
  return { ok: true, value: batch };
}

/** Reads a watermark: `{"seq": N, "hash": "<64 hex>"}` (an ack message, or the file `audit verify --against` takes). */
export function parseWatermark(value: Record<string, unknown>): Parsed<AuditWatermark> {
  if (!isSeq(value['seq'])) return { ok: false, problem: 'seq: must be a non-negative integer' };
  if (typeof value['hash'] !== 'string' || !HASH.test(value['hash'])) return { ok: false, problem: 'hash: must be 64 lowercase hex digits' };
  return { ok: true, value: { seq: value['seq'], hash: value['hash'] } };
}

export function parseAuditAck(payload: Buffer | string): Parsed<AuditAck> {
  const parsed = parseJsonObject(payload, 'ack');
  if (!parsed.ok) return parsed;
  const a = parsed.value;
  if (a['v'] !== AUDIT_BATCH_VERSION) return { ok: false, problem: `v: expected ${AUDIT_BATCH_VERSION}, got ${JSON.stringify(a['v'])}` };
  if (typeof a['thing'] !== 'string') return { ok: false, problem: 'thing: must be a string' };
  const mark = parseWatermark(a);
  if (!mark.ok) return mark;
  if (a['key'] !== undefined && typeof a['key'] !== 'string') return { ok: false, problem: 'key: must be a string' };
  let problem: AuditAck['problem'];
  if (a['problem'] !== undefined) {
    const p = a['problem'] as Record<string, unknown> | null;
    if (typeof p !== 'object' || p === null || typeof p['code'] !== 'string' || typeof p['message'] !== 'string') return { ok: false, problem: 'problem: must be {code, message}' };
    problem = { code: p['code'] as ReceiveProblemCode, message: p['message'] };
  }
  return {
    ok: true,
    value: { v: AUDIT_BATCH_VERSION, thing: a['thing'], ...mark.value, ...(a['key'] === undefined ? {} : { key: a['key'] as string }), ...(problem === undefined ? {} : { problem }) },
  };
}
