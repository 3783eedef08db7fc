// Denials of commands whose sender could not be authenticated, counted per window (topic device and reason code, with
// the first example of each) and written as one audit event per window instead of one record each, so that a flood
// of garbage cannot fill the audit log. It must never take in a command the envelope authenticated.

import type { Clock } from '../core/clock.js';
import type { ReasonCode } from '../core/reasons.js';
import type { Decision } from '../pipeline/pipeline.js';

/** The event name of the window's audit record (kind `event`). */
export const UNAUTHENTICATED_DENIALS_EVENT = 'unauthenticated-denials';
/** How long one window counts before its record is written (and at the interlock's stop, whatever is open). */
export const UNAUTHENTICATED_WINDOW_MS = 10_000;
/** Distinct topic × reason code keys kept per window; denials under further keys are counted in one overflow bucket. */
export const MAX_UNAUTHENTICATED_KEYS = 16;
/**
 * What an example keeps of the payload and of the reason message (both attacker-chosen), in characters. Anything but
 * printable ASCII is shown as `?`, so that escapes cannot blow a bounded example up in the record (the digest is exact).
 */
export const EXAMPLE_PAYLOAD_CHARS = 64;
export const EXAMPLE_MESSAGE_CHARS = 160;

/**
 * The envelope's refusals made before the signature verified: anyone can provoke them without a key, so they alone
 * are aggregated. Everything after the signature check (bad claims from a key holder, replays, expiry, wrong audience,
 * bounds...) and any internal error stays one record each.
 */
// SAFETY: a closed list, not "the envelope stage": a denial a key holder can be held to must never be aggregated.
export const UNAUTHENTICATED_CODES: ReadonlySet<ReasonCode> = new Set<ReasonCode>([
  'ENVELOPE_OVERSIZE',
  'ENVELOPE_MALFORMED',
  'ENVELOPE_ALG_REJECTED',
  'ENVELOPE_UNKNOWN_KEY',
  'ENVELOPE_KEY_REVOKED',
  'ENVELOPE_KEY_NOT_VALID',
  'ENVELOPE_BAD_SIGNATURE',
]);

/** True for a denial that authenticated nobody: no verified command, no agent, and only pre-signature reasons. */
export function isUnauthenticatedDenial(decision: Decision): boolean {
  // SAFETY: only denials; an allow or hold is never aggregated, whatever its identity says.
  return (
    decision.verdict === 'deny' &&
    decision.command === undefined &&
    decision.identity.agentId === undefined &&
    decision.reasons.length > 0 &&
    decision.reasons.every((r) => UNAUTHENTICATED_CODES.has(r.code))
  );
}

/** The first denial of a bucket, kept bounded. */
export interface DenialExample {
  readonly atMs: number;
  readonly commandDigest: string;
  readonly payloadBytes: number;
  readonly payloadPrefix: string;
  readonly message: string;
}

export interface DenialBucket {
  /** The device id read from the command topic: what the sender chose, not an authenticated fact. */
  readonly topicDeviceId: string;
  readonly code: string;
  readonly count: number;
  readonly first: DenialExample;
}

/** One window as recorded in the audit event's detail. */
export interface UnauthenticatedDenialsSummary {
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  /** Every denial of the window, overflow included. */
  readonly denials: number;
  /** In the order the keys were first seen. */
  readonly buckets: readonly DenialBucket[];
  /** Denials under keys beyond MAX_UNAUTHENTICATED_KEYS, with the first of them. */
  readonly overflow?: { readonly count: number; readonly first: DenialExample & { readonly topicDeviceId: string; readonly code: string } };
}

export interface UnauthenticatedDenialsOptions {
  readonly clock: Clock;
  /** Writes one window's summary to the audit log. A rejection is the caller's to log; the counts are gone. */
  readonly record: (summary: UnauthenticatedDenialsSummary) => Promise<void>;
  readonly windowMs?: number;
  readonly maxKeys?: number;
}

interface Window {
  readonly startMs: number;
  readonly buckets: Map<string, { readonly topicDeviceId: string; readonly code: string; count: number; readonly first: DenialExample }>;
  denials: number;
  overflow?: { count: number; readonly first: DenialExample & { readonly topicDeviceId: string; readonly code: string } };
}

export class UnauthenticatedDenials {
  readonly windowMs: number;
  readonly maxKeys: number;
  #window: Window | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #writes = new Set<Promise<void>>();

  constructor(private readonly options: UnauthenticatedDenialsOptions) {
    this.windowMs = options.windowMs ?? UNAUTHENTICATED_WINDOW_MS;
    this.maxKeys = options.maxKeys ?? MAX_UNAUTHENTICATED_KEYS;
    if (!(this.windowMs > 0) || !Number.isInteger(this.maxKeys) || this.maxKeys < 1) {
      throw new RangeError(`UnauthenticatedDenials: windowMs must be positive and maxKeys a positive integer, got ${this.windowMs} and ${this.maxKeys}`);
    }
  }

  /** Counts a denial that isUnauthenticatedDenial accepted; the window's record comes at its end. */
  add(decision: Decision, topicDeviceId: string, payload: string): void {
    const nowMs = this.options.clock.nowMs();
    // A clock that jumped (or a timer that came late) closes the old window here, before this denial joins one.
    if (this.#window !== undefined && !(nowMs < this.#window.startMs + this.windowMs)) this.#flush();
    let window = this.#window;
    if (window === undefined) {
      window = { startMs: nowMs, buckets: new Map(), denials: 0 };
      this.#window = window;
      this.#timer = setTimeout(() => this.#flush(), this.windowMs);
      // The window's end must never keep a stopping process alive; stop() flushes what is open.
      this.#timer.unref();
    }
    window.denials += 1;
    const code = decision.reasons[0]?.code ?? 'INTERNAL_ERROR';
    const key = `${topicDeviceId}\u0000${code}`;
    const bucket = window.buckets.get(key);
    if (bucket !== undefined) {
      bucket.count += 1;
      return;
    }
    const first = exampleOf(decision, payload);
    // SAFETY: memory and record size are bounded by maxKeys, whatever topics and codes a flood spreads over.
    if (window.buckets.size < this.maxKeys) window.buckets.set(key, { topicDeviceId, code, count: 1, first });
    else if (window.overflow === undefined) window.overflow = { count: 1, first: { ...first, topicDeviceId, code } };
    else window.overflow.count += 1;
  }

  /** Writes the open window now (the interlock's stop) and waits for every window's record. */
  async close(): Promise<void> {
    this.#flush();
    await Promise.allSettled([...this.#writes]);
  }

  #flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const window = this.#window;
    this.#window = undefined;
    if (window === undefined) return;
    const summary: UnauthenticatedDenialsSummary = {
      windowStartMs: window.startMs,
      windowEndMs: this.options.clock.nowMs(),
      denials: window.denials,
      buckets: [...window.buckets.values()].map((b) => ({ topicDeviceId: b.topicDeviceId, code: b.code, count: b.count, first: b.first })),
      ...(window.overflow === undefined ? {} : { overflow: { count: window.overflow.count, first: window.overflow.first } }),
    };
    const write = this.options.record(summary).catch(() => undefined);
    this.#writes.add(write);
    void write.then(() => this.#writes.delete(write));
  }
}

function exampleOf(decision: Decision, payload: string): DenialExample {
  return {
    atMs: decision.decidedAtMs,
    commandDigest: decision.commandDigest,
    payloadBytes: Buffer.byteLength(payload, 'utf8'),
    payloadPrefix: printable(payload, EXAMPLE_PAYLOAD_CHARS),
    message: printable(decision.reasons[0]?.message ?? '', EXAMPLE_MESSAGE_CHARS),
  };
}

function printable(text: string, maxChars: number): string {
  return text.slice(0, maxChars).replace(/[^\x20-\x7e]/g, '?');
}
