// The interlock's device channel: what drivers report on actuator/{device}/state and actuator/{device}/outcome.
// Every report must be signed by a driver key declared for that very device, newer than the last one accepted and
// timely; anything else is ignored as if it never came (with a throttled log line), so a client that forges or
// floods state can neither steer nor blank a device's state. Only then is the body a state or an outcome.

import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Declarations, DriverKey } from '../core/declarations.js';
import type { Logger } from '../core/log.js';
import type { BoundsMemory } from '../bounds/bounds.js';
import type { LoadedCell } from '../declarations/load.js';
import { verifyDeviceReport, type DeviceReportKind } from '../dispatch/device-report.js';
import { observeStateMessage } from '../pipeline/observe-state.js';
import { outcomePayloadProblem, statePayloadProblem } from '../transport/payload-limits.js';
import type { StateStore } from './state-store.js';

/** What a driver says it did with a release. */
export interface DeviceOutcome {
  readonly commandId: string;
  /** The audit seq the release carried (0 for a safe-state release made without a record). */
  readonly auditSeq: number;
  readonly status: 'executed' | 'refused';
  readonly problem?: string;
  /** The device's own clock; recorded, never trusted for ordering. */
  readonly timeMs: number;
}

/** A release that waits for its device's outcome. */
export interface AwaitedOutcome {
  readonly seq: number | undefined;
  readonly action: string;
  readonly agentId: string;
}

const MAX_AWAITING_OUTCOMES = 4096;
/** A driver sending bad reports does so 50 times a second: a problem is logged when it changes, or every 10 s. */
const WARN_EVERY_MS = 10_000;

export interface DeviceReportsOptions {
  /** The declarations in force now (they can be replaced while running). */
  readonly cell: () => LoadedCell;
  readonly states: StateStore;
  readonly bounds: BoundsMemory;
  readonly clock: Clock;
  readonly log: Logger;
  readonly audit: AuditLog;
  readonly recordEvent: (event: string, detail: Record<string, unknown>) => Promise<void>;
}

export class DeviceReports {
  private readonly awaiting = new Map<string, AwaitedOutcome>();
  private readonly lastSeq = new Map<string, number>();
  private readonly sessions = new Map<string, string>();
  private readonly warnings = new Map<string, { problem: string; atMs: number }>();
  private keyCache: { declarations: Declarations; byDevice: Map<string, Map<string, DriverKey>> } | undefined;

  constructor(private readonly options: DeviceReportsOptions) {}

  /** The driver run (sid) of the device's latest authenticated state; releases are bound to it. */
  sessionOf(deviceId: string): string | undefined {
    return this.sessions.get(deviceId);
  }

  /** A release to `deviceId` was published (or is about to be): its outcome will be recorded once. */
  expectOutcome(deviceId: string, commandId: string, awaited: AwaitedOutcome): void {
    this.awaiting.set(`${deviceId}\u0000${commandId}`, awaited);
    if (this.awaiting.size > MAX_AWAITING_OUTCOMES) {
      const oldest = this.awaiting.keys().next();
      if (oldest.done !== true) this.awaiting.delete(oldest.value);
    }
  }

  forgetOutcome(deviceId: string, commandId: string): void {
    this.awaiting.delete(`${deviceId}\u0000${commandId}`);
  }

  onState(deviceId: string, payload: Buffer): void {
    const { declarations } = this.options.cell();
    if (!declarations.devices.has(deviceId)) return; // not a device of this cell
    const nowMs = this.options.clock.nowMs();
    // SAFETY: the size first; anyone can send it, so it is ignored, never allowed to void the device's state.
    const tooLarge = statePayloadProblem(payload);
    if (tooLarge !== undefined) {
      this.warn(deviceId, 'state', `ignored: ${tooLarge}`, nowMs);
      return;
    }
    const body = this.authenticate('state', deviceId, payload, nowMs);
    if (body === undefined) return;
    const parsed = observeStateMessage(declarations, deviceId, body.text, nowMs, { states: this.options.states, bounds: this.options.bounds });
    if (!parsed.ok) this.warn(deviceId, 'state', `signed state refused (the device has no usable state until a valid one arrives): ${parsed.problem}`, nowMs);
    else this.sessions.set(deviceId, body.sid);
  }

  /**
   * A driver reports what it did with a release. Recorded as an `outcome` linked to the decision's record when it
   * answers a release of ours to that device, once; anything else signed by the driver is logged (throttled) and
   * recorded as an unmatched event, since a device claiming a command nobody released is worth an investigation.
   */
  onOutcome(deviceId: string, payload: Buffer): void {
    const cell = this.options.cell();
    if (!cell.declarations.devices.has(deviceId)) return;
    const nowMs = this.options.clock.nowMs();
    const tooLarge = outcomePayloadProblem(payload);
    if (tooLarge !== undefined) {
      this.warn(deviceId, 'outcome', `ignored: ${tooLarge}`, nowMs);
      return;
    }
    const body = this.authenticate('outcome', deviceId, payload, nowMs);
    if (body === undefined) return;
    const parsed = parseDeviceOutcome(Buffer.from(body.text, 'utf8'));
    const key = parsed.ok ? `${deviceId}\u0000${parsed.outcome.commandId}` : '';
    const released = parsed.ok ? this.awaiting.get(key) : undefined;
    if (!parsed.ok || released === undefined || (released.seq ?? 0) !== parsed.outcome.auditSeq) {
      const problem = parsed.ok ? `no release of command ${parsed.outcome.commandId} with audit seq ${parsed.outcome.auditSeq} to ${deviceId} awaits an outcome` : parsed.problem;
      if (this.warn(deviceId, 'outcome', `signed outcome not recorded as an outcome: ${problem}`, nowMs)) {
        void this.options.recordEvent('device-outcome-unmatched', { deviceId, problem, payloadDigest: createHash('sha256').update(payload).digest('hex') });
      }
      return;
    }
    this.awaiting.delete(key);
    const { outcome } = parsed;
    this.options.audit
      .record({
        kind: 'outcome',
        timeMs: nowMs,
        commandId: outcome.commandId,
        deviceId,
        agentId: released.agentId,
        action: released.action,
        declarationsDigest: cell.declarations.digest,
        ...(released.seq === undefined ? {} : { parentSeq: released.seq }),
        detail: { event: 'device-outcome', status: outcome.status, deviceTimeMs: outcome.timeMs, ...(outcome.problem === undefined ? {} : { problem: outcome.problem }) },
      })
      .catch((error: unknown) => this.options.log.error(`outcome of ${outcome.commandId} on ${deviceId} not recorded: ${error instanceof Error ? error.message : String(error)}`));
  }

  /** The report's body as JSON text, or undefined (logged) when the device's own driver did not sign it as new. */
  private authenticate(kind: DeviceReportKind, deviceId: string, payload: Buffer, nowMs: number): { text: string; sid: string } | undefined {
    const stream = `${deviceId}\u0000${kind}`;
    const check = verifyDeviceReport(payload.toString('utf8'), { kind, deviceId, keys: this.keysOf(deviceId), nowMs, lastSeq: this.lastSeq.get(stream) });
    if (!check.ok) {
      // SAFETY: ignored, not discarded: a forged message must not blank the device's real state either.
      this.warn(deviceId, kind, `unauthenticated ${kind} ignored: ${check.problem}`, nowMs);
      return undefined;
    }
    this.lastSeq.set(stream, check.claims.seq);
    let text: string;
    try {
      text = JSON.stringify(check.claims.body);
    } catch (error) {
      // SAFETY: a body nested deeper than the stack (even a signed one) is refused, never thrown into the transport.
      this.warn(deviceId, kind, `signed ${kind} refused: its body cannot be read (${error instanceof Error ? error.message : String(error)})`, nowMs);
      return undefined;
    }
    return { text, sid: check.claims.sid };
  }

  /** This device's declared driver keys by kid (revoked ones included, so they are named as revoked). */
  private keysOf(deviceId: string): ReadonlyMap<string, DriverKey> {
    const { declarations } = this.options.cell();
    if (this.keyCache?.declarations !== declarations) {
      const byDevice = new Map<string, Map<string, DriverKey>>();
      for (const key of declarations.driverKeys.values()) {
        const keys = byDevice.get(key.deviceId) ?? new Map<string, DriverKey>();
        keys.set(key.kid, key);
        byDevice.set(key.deviceId, keys);
      }
      this.keyCache = { declarations, byDevice };
    }
    return this.keyCache.byDevice.get(deviceId) ?? NO_KEYS;
  }

  /** Logs a problem when it changes or every 10 s per device and channel; true when it logged. */
  private warn(deviceId: string, kind: DeviceReportKind, problem: string, nowMs: number): boolean {
    const key = `${deviceId}\u0000${kind}`;
    const last = this.warnings.get(key);
    if (last !== undefined && last.problem === problem && nowMs - last.atMs < WARN_EVERY_MS) return false;
    this.warnings.set(key, { problem, atMs: nowMs });
    this.options.log.warn(`${kind} from ${deviceId}: ${problem}`);
    return true;
  }
}

const NO_KEYS: ReadonlyMap<string, DriverKey> = new Map();

/** Reads an outcome body: exactly commandId, auditSeq, status, optional problem, timeMs. */
export function parseDeviceOutcome(payload: Buffer): { ok: true; outcome: DeviceOutcome } | { ok: false; problem: string } {
  if (payload.length > 4096) return { ok: false, problem: `outcome body of ${payload.length} bytes (at most 4096)` };
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, problem: 'outcome message is not JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, problem: 'outcome message is not a JSON object' };
  const o = value as Record<string, unknown>;
  const extra = Object.keys(o).filter((k) => !['commandId', 'auditSeq', 'status', 'problem', 'timeMs'].includes(k));
  if (extra.length > 0) return { ok: false, problem: `unknown field(s) ${extra.join(', ')}` };
  if (typeof o.commandId !== 'string' || o.commandId.length === 0 || o.commandId.length > 128) return { ok: false, problem: '/commandId must be a string of 1-128 characters' };
  if (typeof o.auditSeq !== 'number' || !Number.isSafeInteger(o.auditSeq) || o.auditSeq < 0) return { ok: false, problem: '/auditSeq must be a non-negative integer' };
  if (o.status !== 'executed' && o.status !== 'refused') return { ok: false, problem: '/status must be "executed" or "refused"' };
  if (o.problem !== undefined && (typeof o.problem !== 'string' || o.problem.length > 1000)) return { ok: false, problem: '/problem must be a string of at most 1000 characters' };
  if (typeof o.timeMs !== 'number' || !Number.isFinite(o.timeMs)) return { ok: false, problem: '/timeMs must be a finite number' };
  return {
    ok: true,
    outcome: { commandId: o.commandId, auditSeq: o.auditSeq, status: o.status, timeMs: o.timeMs, ...(typeof o.problem === 'string' ? { problem: o.problem } : {}) },
  };
}
