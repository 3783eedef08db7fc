// The cloud receiver's one decision: is this batch of a thing's audit records what the thing's chain says, and if so,
// store what is new and answer with the watermark (the highest gapless seq held and its hash). Storage is behind
// ReceiverStore (SQLite for tests and small fleets, DynamoDB behind a Lambda). It never stores a record whose body
// does not hash to its hash or that does not chain onto what is held, and never overwrites a held record.

import { createHash, type KeyObject } from 'node:crypto';
import { checkpointSignatureValid, type AuditCheckpoint } from '../../audit/audit-checkpoint.js';
import { GENESIS_HASH } from '../../audit/audit-log.js';
import { AUDIT_BATCH_VERSION, parseAuditBatch, type AuditAck, type AuditBatch, type AuditWatermark, type ReceiveProblemCode, type WireRecord } from '../audit-batch.js';

/** A record as the receiver stores it. */
export interface StoredRecord extends WireRecord {
  readonly prevHash: string;
}

/** What putting one record did: it was new, the same record was held already, or another record holds its seq. */
export type PutOutcome = { readonly kind: 'stored' } | { readonly kind: 'duplicate' } | { readonly kind: 'conflict'; readonly heldHash: string };

/**
 * Where a receiver keeps each thing's records. Every record it holds chains onto the one before it (the receiver only
 * puts records whose predecessor is held or is the thing's base), so what it holds is gapless from the base.
 */
export interface ReceiverStore {
  /** The thing's watermark: its highest seq held and that record's hash; undefined when nothing is held. */
  watermark(thing: string): Promise<AuditWatermark | undefined>;
  /** The hash of the thing's record at `seq`, when held. */
  hashAt(thing: string, seq: number): Promise<string | undefined>;
  /** Stores the records in order, each only if its (thing, seq) is free: never overwrites. */
  putRecords(thing: string, records: readonly StoredRecord[]): Promise<PutOutcome[]>;
  /** Raises the thing's watermark to `mark` (never lowers it). */
  raiseWatermark(thing: string, mark: AuditWatermark): Promise<void>;
  /** Keeps the thing's newest checkpoint (by its seq). */
  putCheckpoint(thing: string, checkpoint: AuditCheckpoint): Promise<void>;
}

export interface ThingDirectory {
  /** The interlock public key of the thing (its checkpoints are signed with it); undefined for an unknown thing. */
  publicKey(thing: string): KeyObject | undefined;
  /** Where the thing's chain starts when the receiver holds nothing of it. Default seq 0 and GENESIS_HASH. */
  base?(thing: string): AuditWatermark | undefined;
}

export interface ReceiveOptions {
  readonly store: ReceiverStore;
  readonly things: ThingDirectory;
  /** Most records one batch may hold (bounds the work one message may ask for). Default 10,000. */
  readonly maxRecords?: number;
}

export interface ReceiveResult {
  readonly ack: AuditAck;
  readonly stored: number;
  readonly duplicates: number;
}

class Refusal extends Error {
  constructor(
    readonly code: ReceiveProblemCode,
    message: string,
  ) {
    super(message);
  }
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Verifies and stores one batch message that arrived for `topicThing` (the thing its topic names, which is who IoT
 * Core let publish it). Returns the ack to publish: the watermark, with a problem when the batch was refused.
 * Throws only when the store fails (the caller answers `unavailable` or lets the Lambda retry).
 */
export async function receiveBatch(payload: Buffer | string, topicThing: string, options: ReceiveOptions): Promise<ReceiveResult> {
  const { store } = options;
  const parsed = parseAuditBatch(payload, options.maxRecords ?? 10_000);
  const answer = async (problem?: { code: ReceiveProblemCode; message: string }, key?: string, counts = { stored: 0, duplicates: 0 }): Promise<ReceiveResult> => {
    const mark = (await store.watermark(topicThing)) ?? baseOf(options.things, topicThing);
    const ack: AuditAck = { v: AUDIT_BATCH_VERSION, thing: topicThing, seq: mark.seq, hash: mark.hash, ...(key === undefined ? {} : { key }), ...(problem === undefined ? {} : { problem }) };
    return { ack, ...counts };
  };
  if (!parsed.ok) return answer({ code: 'malformed', message: parsed.problem });
  const batch = parsed.value;
  // SAFETY: the topic is what IoT Core authorised; a batch naming another thing is never filed under that thing.
  if (batch.thing !== topicThing) return answer({ code: 'malformed', message: `batch names thing ${batch.thing} but arrived on ${topicThing}'s topic` }, batch.key);
  const publicKey = options.things.publicKey(topicThing);
  if (publicKey === undefined) return answer({ code: 'unknown-thing', message: `no interlock public key is registered for thing ${topicThing}` }, batch.key);
  try {
    const records = checkRecords(batch);
    await checkContinuity(batch.thing, records, options);
    await checkCheckpoint(batch, records, publicKey, store);
    const outcomes = await store.putRecords(batch.thing, records);
    let stored = 0;
    let duplicates = 0;
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.kind === 'stored') stored += 1;
      else if (outcome.kind === 'duplicate') duplicates += 1;
      else {
        // Held by a concurrent writer between our check and our put: the earlier records are stored and chain.
        const record = records[i] as StoredRecord;
        if (i > 0) await store.raiseWatermark(batch.thing, { seq: (records[i - 1] as StoredRecord).seq, hash: (records[i - 1] as StoredRecord).hash });
        throw new Refusal('conflict', `seq ${record.seq}: held with hash ${outcome.heldHash}, this batch has ${record.hash} (two histories for one thing)`);
      }
    }
    const last = records[records.length - 1] as StoredRecord;
    await store.raiseWatermark(batch.thing, { seq: last.seq, hash: last.hash });
    if (batch.checkpoint !== null) await store.putCheckpoint(batch.thing, batch.checkpoint);
    return answer(undefined, batch.key, { stored, duplicates });
  } catch (error) {
    if (error instanceof Refusal) return answer({ code: error.code, message: error.message }, batch.key);
    throw error;
  }
}

function baseOf(things: ThingDirectory, thing: string): AuditWatermark {
  return things.base?.(thing) ?? { seq: 0, hash: GENESIS_HASH };
}

/** Each body hashes to its hash, carries its seq, and the bodies chain by prevHash; returns them with prevHash. */
function checkRecords(batch: AuditBatch): StoredRecord[] {
  const out: StoredRecord[] = [];
  for (const [i, record] of batch.records.entries()) {
    // SAFETY: the hash is recomputed from the exact body bytes; a record is never taken on its stated hash.
    const actual = sha256Hex(record.body);
    if (actual !== record.hash) throw new Refusal('hash-mismatch', `seq ${record.seq}: sha256 of the body is ${actual}, not the stated ${record.hash}`);
    let body: unknown;
    try {
      body = JSON.parse(record.body);
    } catch {
      throw new Refusal('malformed', `seq ${record.seq}: body is not JSON`);
    }
    const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (fields['seq'] !== record.seq) throw new Refusal('broken-chain', `records[${i}]: body says seq ${String(fields['seq'])}, the batch says ${record.seq}`);
    const prevHash = fields['prevHash'];
    if (typeof prevHash !== 'string') throw new Refusal('malformed', `seq ${record.seq}: body has no prevHash`);
    const before = out[i - 1];
    if (before !== undefined) {
      if (record.seq !== before.seq + 1) throw new Refusal('broken-chain', `seq ${record.seq} follows seq ${before.seq} in the batch (not consecutive)`);
      if (prevHash !== before.hash) throw new Refusal('broken-chain', `seq ${record.seq}: prevHash ${prevHash} is not the hash of seq ${before.seq} (${before.hash})`);
    }
    out.push({ ...record, prevHash });
  }
  return out;
}

/**
 * The first record chains onto what is held: its prevHash is the held hash at seq-1, or it is the first after the
 * thing's base. Held seqs in the batch must carry the held hash (a duplicate); another hash is a conflict.
 */
async function checkContinuity(thing: string, records: readonly StoredRecord[], options: ReceiveOptions): Promise<void> {
  const { store } = options;
  const first = records[0] as StoredRecord;
  const base = baseOf(options.things, thing);
  const mark = (await store.watermark(thing)) ?? base;
  if (first.seq - 1 > mark.seq) throw new Refusal('gap', `batch starts at seq ${first.seq}, but the receiver holds up to ${mark.seq}: send from ${mark.seq + 1}`);
  if (first.seq - 1 < base.seq) throw new Refusal('broken-chain', `batch starts at seq ${first.seq}, before the thing's base ${base.seq}`);
  const before = first.seq - 1 === base.seq ? base.hash : await store.hashAt(thing, first.seq - 1);
  if (before === undefined) throw new Refusal('gap', `seq ${first.seq - 1} is not held`);
  if (first.prevHash !== before) throw new Refusal('conflict', `seq ${first.seq}: prevHash ${first.prevHash} does not chain onto the held seq ${first.seq - 1} (${before})`);
  for (const record of records) {
    if (record.seq > mark.seq) break;
    const held = await store.hashAt(thing, record.seq);
    if (held !== undefined && held !== record.hash) throw new Refusal('conflict', `seq ${record.seq}: held with hash ${held}, this batch has ${record.hash} (two histories for one thing)`);
  }
}

/** The checkpoint is signed by the thing's key, and its head is the record at its size wherever that is known. */
async function checkCheckpoint(batch: AuditBatch, records: readonly StoredRecord[], publicKey: KeyObject, store: ReceiverStore): Promise<void> {
  const checkpoint = batch.checkpoint;
  if (checkpoint === null) return;
  // SAFETY: a checkpoint that does not verify under the thing's key is refused with its batch; nothing it claims is used.
  if (!checkpointSignatureValid(checkpoint, publicKey)) throw new Refusal('bad-checkpoint', `checkpoint ${checkpoint.seq} does not verify under thing ${batch.thing}'s key`);
  if (checkpoint.size === 0) return;
  const inBatch = records.find((r) => r.seq === checkpoint.size)?.hash;
  const held = inBatch ?? (await store.hashAt(batch.thing, checkpoint.size));
  if (held !== undefined && held !== checkpoint.head) {
    throw new Refusal('bad-checkpoint', `checkpoint ${checkpoint.seq} says record ${checkpoint.size} has hash ${checkpoint.head}, the record is ${held}`);
  }
}
