// Counts the counter metrics of one report interval from the audit log's records: the log is the source of truth, so
// a restart or a cloud outage loses no count and none is counted twice (the reporter keeps a seq cursor). Pure: it
// reads records handed to it and never writes anything.

import type { AuditRecord } from '../../audit/audit-log.js';
import { REASON_CATALOG, type Stage } from '../../core/reasons.js';
import type { DeviceKind } from '../../core/kinds/index.js';
import { UNAUTHENTICATED_CODES, UNAUTHENTICATED_DENIALS_EVENT, type UnauthenticatedDenialsSummary } from '../../interlock/unauthenticated-denials.js';
import { kindSegment, METRICS } from '../metric-catalog.js';

/**
 * Codes that say the sender did not authenticate: the unauthenticated denials (which are only counted in aggregate)
 * and the claims a signed command got wrong (replays are counted apart).
 */
export const AUTH_FAILURE_CODES: ReadonlySet<string> = new Set([
  ...UNAUTHENTICATED_CODES,
  'ENVELOPE_INVALID_CLAIMS',
  'ENVELOPE_ISSUER_MISMATCH',
  'ENVELOPE_WRONG_AUDIENCE',
  'ENVELOPE_EXPIRED',
  'ENVELOPE_NOT_YET_VALID',
  'ENVELOPE_TTL_TOO_LONG',
  'ENVELOPE_ISSUED_BEFORE_START',
]);
export const REPLAY_CODES: ReadonlySet<string> = new Set(['ENVELOPE_REPLAYED', 'ENVELOPE_SEQ_NOT_INCREASING']);
/** The event of a new declaration set put in force while running, and of every start (with the digest in force). */
export const DECLARATIONS_CHANGED_EVENT = 'declarations-changed';
export const INTERLOCK_STARTED_EVENT = 'interlock-started';
export const OPERATOR_MESSAGE_REFUSED_EVENT = 'operator-message-refused';

/** At most this many latencies are kept for the p99; beyond it a uniform sample of this size (reservoir) stands in. */
export const LATENCY_SAMPLE_LIMIT = 1_000_000;

/** The stage a code belongs to, from the catalog; a code this build does not know counts as internal. */
export function stageOfCode(code: string): Stage {
  const spec = (REASON_CATALOG as Readonly<Record<string, { readonly stage: Stage }>>)[code];
  return spec?.stage ?? 'internal';
}

/** Where the counting of one interval starts and what it needs to know about the cell. */
export interface CountContext {
  /** Device id → kind, from the declarations in force (a device no longer declared is not counted per kind). */
  readonly kindOf: (deviceId: string) => DeviceKind | undefined;
  /** The declarations digest in force before the interval (the last record before it carries it), if known. */
  readonly digestBefore: string | undefined;
}

/** One interval's counts, built by feeding it records in seq order. */
export class IntervalCounts {
  readonly counters = new Map<string, number>();
  /** The last seq taken in (the interval's end), or the start when none was. */
  lastSeq: number;
  records = 0;
  #digest: string | undefined;
  readonly #latencies: number[] = [];
  #latencySeen = 0;
  readonly #random: () => number;

  constructor(
    readonly fromSeq: number,
    private readonly context: CountContext,
    random: () => number = Math.random,
  ) {
    this.lastSeq = fromSeq;
    this.#digest = context.digestBefore;
    this.#random = random;
  }

  #add(name: string, n = 1): void {
    if (n === 0) return;
    this.counters.set(name, (this.counters.get(name) ?? 0) + n);
  }

  add(record: AuditRecord): void {
    if (record.seq <= this.lastSeq) throw new RangeError(`IntervalCounts: record ${record.seq} is not after ${this.lastSeq}`);
    this.lastSeq = record.seq;
    this.records += 1;
    if (record.kind === 'decision') this.#decision(record);
    else if (record.kind === 'event') this.#event(record);
    // Outcomes (device reports, release failures) are no metric of their own.
  }

  #decision(record: AuditRecord): void {
    const reasons = record.reasons ?? [];
    const codes = reasons.map((r) => String(r.code));
    if (record.verdict === 'allow') this.#add('interlock_commands_allowed');
    if (record.verdict === 'hold') {
      this.#add('interlock_commands_held');
      this.#add('interlock_approval_requests');
    }
    if (record.verdict === 'deny') {
      this.#add('interlock_commands_denied');
      const first = codes[0];
      this.#add(`interlock_denied_${first === undefined ? 'internal' : stageOfCode(first)}`);
      // A hold refused because the agent's approval queue is full was still a request.
      if (codes.includes('APPROVAL_PENDING_LIMIT')) this.#add('interlock_approval_requests');
      if (codes.some((c) => AUTH_FAILURE_CODES.has(c))) this.#add('interlock_auth_failures');
      if (codes.some((c) => REPLAY_CODES.has(c))) this.#add('interlock_replay_attempts');
    }
    const kind = record.deviceId === undefined ? undefined : this.context.kindOf(record.deviceId);
    if (kind !== undefined) this.#add(`interlock_bounds_violations_${kindSegment(kind)}`, codes.filter((c) => stageOfCode(c) === 'bounds').length);
    const us = record.decisionUs;
    if (typeof us === 'number' && Number.isFinite(us) && us >= 0) this.#latency(us);
    if (record.declarationsDigest !== undefined) this.#digest = record.declarationsDigest;
  }

  #event(record: AuditRecord): void {
    const detail = record.detail ?? {};
    const event = detail['event'];
    if (event === UNAUTHENTICATED_DENIALS_EVENT) this.#unauthenticated(detail as unknown as UnauthenticatedDenialsSummary);
    else if (event === OPERATOR_MESSAGE_REFUSED_EVENT) this.#add('interlock_auth_failures');
    else if (event === DECLARATIONS_CHANGED_EVENT) {
      this.#add('interlock_declaration_digest_changes');
      const to = detail['toDigest'];
      this.#digest = typeof to === 'string' ? to : this.#digest;
      return;
    } else if (event === INTERLOCK_STARTED_EVENT) {
      // A start under other declarations than the ones in force before it puts a new set in force too.
      const digest = detail['declarationsDigest'] ?? record.declarationsDigest;
      if (typeof digest === 'string') {
        if (this.#digest !== undefined && digest !== this.#digest) this.#add('interlock_declaration_digest_changes');
        this.#digest = digest;
      }
      return;
    }
    if (record.declarationsDigest !== undefined) this.#digest = record.declarationsDigest;
  }

  /** One window of aggregated unauthenticated denials: every one a denial, counted under its bucket's code. */
  #unauthenticated(summary: UnauthenticatedDenialsSummary): void {
    const buckets = [...(Array.isArray(summary.buckets) ? summary.buckets : []), ...(summary.overflow === undefined ? [] : [{ ...summary.overflow.first, count: summary.overflow.count }])];
    for (const bucket of buckets) {
      const count = Number.isSafeInteger(bucket.count) && bucket.count > 0 ? bucket.count : 0;
      const code = String(bucket.code);
      this.#add('interlock_commands_denied', count);
      this.#add(`interlock_denied_${stageOfCode(code)}`, count);
      if (AUTH_FAILURE_CODES.has(code)) this.#add('interlock_auth_failures', count);
    }
  }

  #latency(us: number): void {
    this.#latencySeen += 1;
    if (this.#latencies.length < LATENCY_SAMPLE_LIMIT) {
      this.#latencies.push(us);
      return;
    }
    // Algorithm R: every latency of the interval has the same chance to be in the sample.
    const slot = Math.floor(this.#random() * this.#latencySeen);
    if (slot < LATENCY_SAMPLE_LIMIT) this.#latencies[slot] = us;
  }

  /** The 99th percentile (nearest rank) of the decision latencies taken in, in whole µs; 0 with none. */
  latencyP99Us(): number {
    const n = this.#latencies.length;
    if (n === 0) return 0;
    const sorted = Float64Array.from(this.#latencies).sort();
    return Math.round(sorted[Math.ceil(0.99 * n) - 1] ?? 0);
  }

  /** Every counter of the catalog counted from the log (zero when nothing happened), the p99 included. */
  values(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, spec] of Object.entries(METRICS)) if (spec.measure === 'counter' && spec.type === 'number') out[name] = 0;
    for (const [name, value] of this.counters) out[name] = value;
    out['interlock_decision_latency_p99_us'] = this.latencyP99Us();
    return out;
  }
}
