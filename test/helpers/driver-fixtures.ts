// What simulator tests need on the driver's side of the trust boundary: a driver key (what a driver signs its state
// and outcomes with), the interlock's signed heartbeats as the interlock makes them, and a reader that verifies
// what a driver published, as the interlock does (the device's declared key, report type, device, a seq above the
// last one read, a time within the report skew of the reader's clock), and returns the body. Not a test file.

import { createPublicKey, randomUUID, type KeyObject } from 'node:crypto';
import type { DriverKey } from '../../src/core/declarations.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { verifyDeviceReport, type DeviceReportClaims, type DeviceReportKind } from '../../src/dispatch/device-report.js';
import { signHeartbeat, type Heartbeat } from '../../src/dispatch/heartbeat.js';
import type { DriverKeyPair } from '../../src/driver-sdk/device-reporter.js';

/** A driver's key pair: the private half goes into the driver's options, the public half is what a cell declares. */
export interface DriverKeyFixture extends DriverKeyPair {
  readonly publicKey: KeyObject;
}

/** A fresh Ed25519 driver key under `kid`. */
export function driverKeyFixture(kid = 'test-driver-k1'): DriverKeyFixture {
  const { publicKey, privateKey } = generateEd25519KeyPair();
  return { kid, privateKey, publicKey };
}

/** `key` as a cell would declare it for `deviceId` (valid at any time, not revoked), by kid: verifyDeviceReport's keys. */
export function declaredDriverKeys(deviceId: string, key: DriverKeyPair): ReadonlyMap<string, DriverKey> {
  // The public half is derived from the private one, so a key from a test cell (private half only) works too.
  return new Map([[key.kid, { kid: key.kid, deviceId, publicKey: createPublicKey(key.privateKey), notBeforeMs: -Infinity, notAfterMs: Infinity }]]);
}

/** The outcome body a driver reports for a release (src/interlock/device-reports.ts DeviceOutcome). */
export interface OutcomeBody {
  readonly commandId: string;
  readonly auditSeq: number;
  readonly status: 'executed' | 'refused';
  readonly problem?: string;
  readonly timeMs: number;
}

/**
 * Reads one driver's reports in arrival order and verifies each as the interlock would; a report that does not
 * verify throws with the reason (in a bus handler that fails the running test). Seqs are checked per kind, as the
 * interlock keeps them, so a reader sees every state (or outcome) newer than the one before.
 */
export class ReportReader {
  readonly #lastSeq = new Map<DeviceReportKind, number>();
  /** The claims of every report read, in order. */
  readonly claims: DeviceReportClaims[] = [];

  /** `nowMs`: the clock freshness is judged by; give the driver's own (injected) clock. */
  constructor(
    readonly deviceId: string,
    private readonly keys: ReadonlyMap<string, DriverKey>,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** The verified claims of one report. */
  verify(kind: DeviceReportKind, payload: Buffer | string): DeviceReportClaims {
    const check = verifyDeviceReport(payload.toString(), { kind, deviceId: this.deviceId, keys: this.keys, nowMs: this.nowMs(), lastSeq: this.#lastSeq.get(kind) });
    if (!check.ok) throw new Error(`${kind} report of ${this.deviceId} does not verify: ${check.problem}`);
    this.#lastSeq.set(kind, check.claims.seq);
    this.claims.push(check.claims);
    return check.claims;
  }

  /** The body of a signed state message. */
  state<T = Record<string, unknown>>(payload: Buffer | string): T {
    return this.verify('state', payload).body as T;
  }

  /** The body of a signed outcome. */
  outcome(payload: Buffer | string): OutcomeBody {
    return this.verify('outcome', payload).body as unknown as OutcomeBody;
  }
}

/** A reader for `deviceId`'s reports signed with `key`, judging freshness by `nowMs`. */
export function reportReader(deviceId: string, key: DriverKeyPair, nowMs: () => number = Date.now): ReportReader {
  return new ReportReader(deviceId, declaredDriverKeys(deviceId, key), nowMs);
}

/** The interlock's heartbeats, as its heartbeat loop makes them: one epoch, a rising seq, the time of `nowMs`. */
export class HeartbeatSigner {
  #seq = 0;

  /** `nowMs`: the clock the heartbeat times come from; give the driver's own (injected) clock. */
  constructor(
    private readonly privateKey: KeyObject,
    private readonly nowMs: () => number = Date.now,
    readonly epoch: string = randomUUID(),
  ) {}

  /** The next heartbeat (seq one higher, time now), with `overrides` for a test that wants it wrong. */
  next(overrides: Partial<Heartbeat> = {}): string {
    this.#seq += 1;
    return signHeartbeat({ epoch: this.epoch, seq: this.#seq, timeMs: this.nowMs(), ...overrides }, this.privateKey);
  }
}
