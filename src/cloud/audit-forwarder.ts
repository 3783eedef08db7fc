// Sends the audit log to the cloud and moves the log's acknowledgement cursor, so retention may delete what the cloud
// holds. Records leave in size-bounded batches with the latest signed checkpoint; the cursor moves ONLY on the
// receiver's application-level watermark ({seq, hash} of the head it holds), and only after the local record at that
// seq is found to have that hash. A transport acknowledgement (PUBACK) never moves it. It never writes a record, never
// skips one, and never runs ahead of the rate it is given, so decisions are not delayed by a drain.

import { createHash } from 'node:crypto';
import type { AuditCheckpoint } from '../audit/audit-checkpoint.js';
import type { AuditRecord } from '../audit/audit-log.js';
import { canonicalJson } from '../core/canonical-json.js';
import type { Logger } from '../core/log.js';
import type { Subscription, Transport } from '../transport/transport.js';
import { auditAckTopic, auditTopic, BatchSizer, IOT_CORE_MAX_MESSAGE_BYTES, makeBatch, parseAuditAck, type AuditAck, type WireRecord } from './audit-batch.js';

/** The public methods of the SQLite audit log the forwarder uses (nothing else). */
export interface ForwardableAuditLog {
  read(fromSeq: number, limit: number): AuditRecord[];
  head(): { readonly seq: number; readonly hash: string };
  acknowledgedSeq(): number;
  acknowledge(uptoSeq: number): number;
  latestCheckpoint(): AuditCheckpoint | undefined;
}

/** How audit forwarding runs; every field has a default. The lead wires these to `interlock run` flags. */
export interface AuditForwardingOptions {
  /** Off: nothing is sent and nothing is acknowledged (retention then never deletes). Default on, with a cloud link. */
  readonly enabled?: boolean;
  /** Records sent per second at most (the drain's rate limit). Default 1,000: an hour at 10 decisions/s in 36 s. */
  readonly recordsPerSecond?: number;
  /** Largest batch message, the whole JSON counted. Default and maximum IOT_CORE_MAX_MESSAGE_BYTES (128 KiB). */
  readonly maxBatchBytes?: number;
  /** Most records in one batch. Default 256. */
  readonly maxBatchRecords?: number;
  /** Batches sent and not yet acknowledged at most. Default 4. */
  readonly maxInFlightBatches?: number;
  /** A batch not covered by a watermark this long after it was sent is sent again (from the cursor). Default 15,000. */
  readonly ackTimeoutMs?: number;
  /** When caught up, how often to look for new records. Default 1,000. */
  readonly idlePollMs?: number;
}

export const DEFAULT_FORWARDING = {
  enabled: true,
  recordsPerSecond: 1_000,
  maxBatchBytes: IOT_CORE_MAX_MESSAGE_BYTES,
  maxBatchRecords: 256,
  maxInFlightBatches: 4,
  ackTimeoutMs: 15_000,
  idlePollMs: 1_000,
} as const;

type Settings = { readonly [K in keyof typeof DEFAULT_FORWARDING]: (typeof DEFAULT_FORWARDING)[K] extends boolean ? boolean : number };

/** Checks the options (a clear RangeError naming the field) and fills in the defaults. */
export function forwardingSettings(options: AuditForwardingOptions = {}): Settings {
  const s = { ...DEFAULT_FORWARDING, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as Settings;
  const positive = (name: keyof Settings, max = Number.MAX_SAFE_INTEGER): void => {
    const v = s[name] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) throw new RangeError(`audit forwarding: ${name} must be a number > 0${max === Number.MAX_SAFE_INTEGER ? '' : ` and <= ${max}`}, got ${String(v)}`);
  };
  if (typeof s.enabled !== 'boolean') throw new RangeError(`audit forwarding: enabled must be true or false, got ${String(s.enabled)}`);
  positive('recordsPerSecond');
  positive('maxBatchBytes', IOT_CORE_MAX_MESSAGE_BYTES);
  positive('maxBatchRecords', 10_000);
  positive('maxInFlightBatches', 1_000);
  positive('ackTimeoutMs');
  positive('idlePollMs');
  for (const name of ['maxBatchBytes', 'maxBatchRecords', 'maxInFlightBatches'] as const) {
    if (!Number.isSafeInteger(s[name])) throw new RangeError(`audit forwarding: ${name} must be an integer, got ${s[name]}`);
  }
  return s;
}

export interface AuditForwarderStatus {
  /** The next seq to send. */
  readonly nextSeq: number;
  /** The log's acknowledgement cursor (the receiver's last watermark that matched our records). */
  readonly acknowledgedSeq: number;
  readonly inFlight: number;
  /** Batches published, including resends. */
  readonly batchesSent: number;
  readonly recordsSent: number;
  /** Times the forwarder went back to the cursor (ack timeout, refused or failed publish, a receiver's gap). */
  readonly resends: number;
  /** Watermarks refused because our record at that seq has another hash (or none). */
  readonly mismatches: number;
  /** Why forwarding cannot go on by itself (an oversized record, a record whose body does not match its hash). */
  readonly stuck: string | undefined;
}

interface InFlight {
  readonly first: number;
  readonly last: number;
  readonly sentAtMs: number;
}

export interface AuditForwarderDeps {
  readonly log: ForwardableAuditLog;
  readonly transport: Transport;
  readonly thingName: string;
  readonly logger: Logger;
  readonly options?: AuditForwardingOptions;
  readonly nowMs?: () => number;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export class AuditForwarder {
  readonly #deps: AuditForwarderDeps;
  readonly #s: Settings;
  readonly #now: () => number;
  readonly #logger: Logger;
  #nextSeq: number;
  #inFlight: InFlight[] = [];
  #nextSendMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #subscription: Subscription | undefined;
  #offConnection: (() => void) | undefined;
  #running = false;
  #sending = false;
  #stuck: string | undefined;
  #counts = { batchesSent: 0, recordsSent: 0, resends: 0, mismatches: 0 };
  #lastWarnMs = 0;
  readonly #ackListeners = new Set<(ack: AuditAck) => void>();

  constructor(deps: AuditForwarderDeps) {
    this.#deps = deps;
    this.#s = forwardingSettings(deps.options);
    this.#now = deps.nowMs ?? Date.now;
    this.#logger = deps.logger;
    this.#nextSeq = deps.log.acknowledgedSeq() + 1;
  }

  /** Subscribes to the ack topic and begins sending from the log's cursor (after a restart too). */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const { transport, thingName } = this.#deps;
    const subscription = await transport.subscribe(auditAckTopic(thingName), (_topic, payload) => this.#onAck(payload));
    if (!this.#running) {
      // Stopped while subscribing (the runtime stopped as the link came up): leave nothing behind.
      await subscription.unsubscribe().catch(() => undefined);
      return;
    }
    this.#subscription = subscription;
    // After an outage nothing in flight can be trusted to arrive: start again from the cursor.
    this.#offConnection = transport.onConnectionChange((connected) => {
      if (connected) {
        this.#goBack('the cloud connection came back');
        this.#wake(0);
      }
    });
    this.#nextSeq = this.#deps.log.acknowledgedSeq() + 1;
    this.#logger.info(`audit forwarding to ${auditTopic(thingName)} from seq ${this.#nextSeq} (at most ${this.#s.recordsPerSecond} records/s, ${this.#s.maxBatchRecords} records or ${this.#s.maxBatchBytes} bytes a batch)`);
    this.#wake(0);
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#offConnection?.();
    await this.#subscription?.unsubscribe().catch(() => undefined);
    this.#subscription = undefined;
  }

  status(): AuditForwarderStatus {
    return { nextSeq: this.#nextSeq, acknowledgedSeq: this.#deps.log.acknowledgedSeq(), inFlight: this.#inFlight.length, ...this.#counts, stuck: this.#stuck };
  }

  /** Called with every well-formed ack for this thing (tests, metrics). Returns the unsubscribe. */
  onAck(listener: (ack: AuditAck) => void): () => void {
    this.#ackListeners.add(listener);
    return () => this.#ackListeners.delete(listener);
  }

  #wake(delayMs: number): void {
    if (!this.#running) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pumpSafely();
    }, Math.max(0, delayMs));
    // The forwarder never keeps the process alive on its own.
    this.#timer.unref();
  }

  /** Everything sent and not acknowledged is sent again, from the cursor (duplicates are harmless by construction). */
  #goBack(why: string): void {
    const cursor = this.#deps.log.acknowledgedSeq() + 1;
    if (this.#inFlight.length === 0 && this.#nextSeq === cursor) return;
    this.#counts.resends += 1;
    this.#warn(`audit forwarding resends from seq ${cursor} (${why})`);
    this.#inFlight = [];
    this.#nextSeq = cursor;
  }

  #warn(message: string): void {
    // An outage would otherwise log once per batch: once every 10 s is enough to be seen.
    const now = this.#now();
    if (now - this.#lastWarnMs < 10_000) return;
    this.#lastWarnMs = now;
    this.#logger.warn(message);
  }

  /** The drain must never take the interlock down: a failure reading the log stops forwarding, named, and retries. */
  #pumpSafely(): void {
    try {
      this.#pump();
    } catch (error) {
      this.#stick(`reading the audit log failed: ${error instanceof Error ? error.message : String(error)}`);
      this.#wake(this.#s.ackTimeoutMs);
    }
  }

  #pump(): void {
    if (!this.#running || this.#sending) return;
    const now = this.#now();
    const oldest = this.#inFlight[0];
    if (oldest !== undefined && now - oldest.sentAtMs >= this.#s.ackTimeoutMs) {
      this.#goBack(`no watermark covering seq ${oldest.last} within ${this.#s.ackTimeoutMs} ms`);
    }
    if (!this.#deps.transport.isConnected()) return this.#wake(this.#s.idlePollMs);
    const timeoutWake = this.#inFlight[0] === undefined ? Infinity : this.#inFlight[0].sentAtMs + this.#s.ackTimeoutMs - now;
    if (this.#inFlight.length >= this.#s.maxInFlightBatches) return this.#wake(timeoutWake);
    if (now < this.#nextSendMs) return this.#wake(Math.min(this.#nextSendMs - now, timeoutWake));
    const batch = this.#nextBatch();
    if (batch === undefined) return this.#wake(Math.min(this.#s.idlePollMs, timeoutWake));
    this.#send(batch.records, batch.payload);
  }

  /** The records from the cursor that fit one batch, or undefined when there are none (or forwarding is stuck). */
  #nextBatch(): { records: WireRecord[]; payload: string } | undefined {
    const { log, thingName } = this.#deps;
    const stored = log.read(this.#nextSeq, this.#s.maxBatchRecords);
    if (stored.length === 0) return undefined;
    const checkpoint = log.latestCheckpoint();
    const sizer = new BatchSizer(thingName, checkpoint);
    const records: WireRecord[] = [];
    for (const record of stored) {
      const expected = this.#nextSeq + records.length;
      // SAFETY: a gap or a body that does not hash to its stored hash is never sent (the receiver would refuse it, and
      // skipping it would break the chain): forwarding stops there and says why; `audit verify` tells the rest.
      if (record.seq !== expected) return this.#stick(`the log holds record ${record.seq} where ${expected} was expected`);
      const { hash, ...fields } = record;
      const body = canonicalJson(fields);
      if (sha256Hex(body) !== hash) return this.#stick(`record ${record.seq}'s body does not hash to its stored hash (run interlock audit verify)`);
      const wire: WireRecord = { seq: record.seq, body, hash };
      if (sizer.with(wire) > this.#s.maxBatchBytes) {
        if (records.length > 0) break;
        // A record too large for a batch of its own cannot pass IoT Core: never skipped, forwarding stops here.
        return this.#stick(`record ${record.seq} alone makes a ${sizer.with(wire)}-byte batch, over the ${this.#s.maxBatchBytes}-byte limit`);
      }
      sizer.add(wire);
      records.push(wire);
    }
    this.#stuck = undefined;
    return { records, payload: JSON.stringify(makeBatch(thingName, records, checkpoint)) };
  }

  #stick(why: string): undefined {
    if (this.#stuck !== why) this.#logger.error(`audit forwarding is stuck: ${why}; records from there stay on the device unacknowledged`);
    this.#stuck = why;
    return undefined;
  }

  #send(records: readonly WireRecord[], payload: string): void {
    const first = (records[0] as WireRecord).seq;
    const last = (records[records.length - 1] as WireRecord).seq;
    const now = this.#now();
    this.#inFlight.push({ first, last, sentAtMs: now });
    this.#nextSeq = last + 1;
    this.#nextSendMs = now + (records.length * 1000) / this.#s.recordsPerSecond;
    this.#counts.batchesSent += 1;
    this.#counts.recordsSent += records.length;
    this.#sending = true;
    // QoS 1 so the broker takes it; the PUBACK only lets the next batch go, it acknowledges nothing.
    this.#deps.transport.publish(auditTopic(this.#deps.thingName), payload, { qos: 1 }).then(
      () => {
        this.#sending = false;
        this.#pumpSafely();
      },
      (error: unknown) => {
        this.#sending = false;
        this.#goBack(`publishing records ${first}..${last} failed: ${error instanceof Error ? error.message : String(error)}`);
        this.#wake(this.#s.idlePollMs);
      },
    );
  }

  #onAck(payload: Buffer): void {
    try {
      this.#handleAck(payload);
    } catch (error) {
      // SAFETY: an ack is input from outside; nothing in it may throw into the transport's message loop.
      this.#logger.error(`audit ack not applied: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  #handleAck(payload: Buffer): void {
    const parsed = parseAuditAck(payload);
    if (!parsed.ok) {
      this.#logger.warn(`audit ack ignored: ${parsed.problem}`);
      return;
    }
    const ack = parsed.value;
    if (ack.thing !== this.#deps.thingName) {
      this.#logger.warn(`audit ack for thing ${JSON.stringify(ack.thing)} ignored (this is ${this.#deps.thingName})`);
      return;
    }
    for (const listener of this.#ackListeners) listener(ack);
    if (ack.problem !== undefined) {
      // A refused batch is sent again after the ack timeout; a gap (an earlier batch lost) at once, from the cursor.
      const line = `the audit receiver refused batch ${ack.key ?? '(unknown)'}: ${ack.problem.code}: ${ack.problem.message}`;
      if (ack.problem.code === 'gap' || ack.problem.code === 'unavailable') this.#logger.warn(line);
      else this.#logger.error(line);
      if (ack.problem.code === 'gap') this.#goBack('the receiver reported a gap');
    }
    this.#applyWatermark(ack);
    this.#wake(0);
  }

  #applyWatermark(mark: { readonly seq: number; readonly hash: string }): void {
    const { log } = this.#deps;
    if (mark.seq <= log.acknowledgedSeq()) return;
    const head = log.head();
    if (mark.seq > head.seq) {
      this.#counts.mismatches += 1;
      this.#logger.error(`AUDIT WATERMARK MISMATCH: the receiver claims to hold seq ${mark.seq}, beyond this log's head ${head.seq}: not acknowledged`);
      return;
    }
    const record = log.read(mark.seq, 1)[0];
    // SAFETY: the cursor moves only when the cloud holds exactly our record there; anything else leaves every record
    // on the device (retention cannot delete them) and is reported.
    if (record === undefined || record.seq !== mark.seq || record.hash !== mark.hash) {
      this.#counts.mismatches += 1;
      this.#logger.error(
        `AUDIT WATERMARK MISMATCH: the receiver holds seq ${mark.seq} with hash ${mark.hash}, this log has ${record?.seq === mark.seq ? record.hash : 'no such record'}: not acknowledged`,
      );
      return;
    }
    log.acknowledge(mark.seq);
    this.#inFlight = this.#inFlight.filter((batch) => batch.last > mark.seq);
    if (this.#nextSeq <= mark.seq) this.#nextSeq = mark.seq + 1;
  }
}
