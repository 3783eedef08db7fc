// What a device driver reports to the interlock (its state on actuator/{device}/state, what it did with a release on
// actuator/{device}/outcome), signed with the driver's own Ed25519 key as declared for the device in agents.yaml.
// The interlock acts on nothing a driver did not sign: an unsigned, mis-signed, replayed, stale or misaddressed
// report is no report at all.

import type { KeyObject } from 'node:crypto';
import type { DriverKey } from '../core/declarations.js';
import { parseCompactJws, signCompactJws, verifyJws } from '../crypto/jws.js';

export const DEVICE_STATE_TYPE = 'device-state+jws';
export const DEVICE_OUTCOME_TYPE = 'device-outcome+jws';

export type DeviceReportKind = 'state' | 'outcome';

/** How far a report's own time may be from the interlock's clock: device clocks must be synchronised this well. */
export const REPORT_MAX_CLOCK_SKEW_MS = 2000;

/** The signed claims around a report's body. */
export interface DeviceReportClaims {
  /** The device the report is about; must be the device of the topic it arrived on. */
  readonly dev: string;
  /** The driver's run: random per driver process. Releases name it, so a release never outlives the run it was made for. */
  readonly sid: string;
  /** Strictly increasing over the driver's life, across restarts (it starts from the clock). */
  readonly seq: number;
  /** When the driver sent it (ms since the epoch, the driver's clock). */
  readonly iat: number;
  /** The state message or the outcome, as the unsigned protocol carried it. */
  readonly body: Record<string, unknown>;
}

export function signDeviceReport(kind: DeviceReportKind, claims: DeviceReportClaims, kid: string, privateKey: KeyObject): string {
  return signCompactJws(claims, kid, privateKey, kind === 'state' ? DEVICE_STATE_TYPE : DEVICE_OUTCOME_TYPE);
}

export type ReportCheck = { readonly ok: true; readonly claims: DeviceReportClaims; readonly kid: string } | { readonly ok: false; readonly problem: string };

export interface ReportExpectation {
  readonly kind: DeviceReportKind;
  readonly deviceId: string;
  /** The device's declared driver keys by kid (only this device's keys count). */
  readonly keys: ReadonlyMap<string, DriverKey>;
  readonly nowMs: number;
  /** The highest seq already accepted from this device, if any. */
  readonly lastSeq: number | undefined;
}

/**
 * Verifies one report: the device's own declared, valid, unrevoked key, the report type, the device, a seq newer
 * than any accepted before, and a time within REPORT_MAX_CLOCK_SKEW_MS of now. Never throws.
 */
export function verifyDeviceReport(payload: string, expect: ReportExpectation): ReportCheck {
  const parsed = parseCompactJws(payload);
  if (!parsed.ok) return { ok: false, problem: `not a signed report: ${parsed.problem.message}` };
  const { header } = parsed.jws;
  const type = expect.kind === 'state' ? DEVICE_STATE_TYPE : DEVICE_OUTCOME_TYPE;
  if (header.typ !== type) return { ok: false, problem: `typ ${JSON.stringify(header.typ ?? null)} is not ${type}` };
  const key = expect.keys.get(header.kid);
  // SAFETY: only a key declared for this very device counts; another device's driver cannot speak for it.
  if (key === undefined || key.deviceId !== expect.deviceId) return { ok: false, problem: `kid ${header.kid} is not a driver key of ${expect.deviceId}` };
  if (key.revoked !== undefined) return { ok: false, problem: `driver key ${key.kid} is revoked: ${key.revoked}` };
  if (!(expect.nowMs >= key.notBeforeMs && expect.nowMs < key.notAfterMs)) return { ok: false, problem: `driver key ${key.kid} is not valid now` };
  if (!verifyJws(parsed.jws, key.publicKey)) return { ok: false, problem: `signature does not verify with driver key ${key.kid}` };
  const claims = parsed.jws.payload as Partial<DeviceReportClaims> | null;
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) return { ok: false, problem: 'claims are not an object' };
  if (claims.dev !== expect.deviceId) return { ok: false, problem: `report is about ${JSON.stringify(claims.dev ?? null)}, not ${expect.deviceId}` };
  if (typeof claims.sid !== 'string' || claims.sid.length === 0 || claims.sid.length > 64) return { ok: false, problem: 'sid must be a string of 1 to 64 characters' };
  if (typeof claims.seq !== 'number' || !Number.isSafeInteger(claims.seq) || claims.seq < 0) return { ok: false, problem: 'seq must be a non-negative integer' };
  // SAFETY: a report at or below the last accepted seq is a replay (or reordered), never a new fact.
  if (expect.lastSeq !== undefined && !(claims.seq > expect.lastSeq)) return { ok: false, problem: `seq ${claims.seq} is not after ${expect.lastSeq} (replayed?)` };
  if (typeof claims.iat !== 'number' || !(Math.abs(expect.nowMs - claims.iat) <= REPORT_MAX_CLOCK_SKEW_MS)) {
    return { ok: false, problem: `iat ${String(claims.iat)} is more than ${REPORT_MAX_CLOCK_SKEW_MS} ms from the interlock's clock (stale, replayed, or the device clock is off)` };
  }
  if (typeof claims.body !== 'object' || claims.body === null || Array.isArray(claims.body)) return { ok: false, problem: 'body is not an object' };
  return { ok: true, claims: claims as DeviceReportClaims, kid: key.kid };
}
