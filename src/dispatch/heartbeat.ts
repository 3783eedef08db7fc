// The interlock's heartbeat on interlock/heartbeat, signed with its release key: epoch (random per interlock start),
// counter and time. A driver keeps its device out of the safe state only on valid heartbeats newer than the last
// one it accepted and fresh by its own clock; anyone else's, or a replay of an old one, counts as silence.

import type { KeyObject } from 'node:crypto';
import { parseCompactJws, signCompactJws, verifyJws } from '../crypto/jws.js';
import { INTERLOCK_KID } from './released-command.js';

export const HEARTBEAT_TYPE = 'interlock-heartbeat+jws';

export interface Heartbeat {
  readonly epoch: string;
  readonly seq: number;
  readonly timeMs: number;
}

export function signHeartbeat(heartbeat: Heartbeat, privateKey: KeyObject): string {
  return signCompactJws(heartbeat, INTERLOCK_KID, privateKey, HEARTBEAT_TYPE);
}

export type HeartbeatCheck = { readonly ok: true; readonly heartbeat: Heartbeat } | { readonly ok: false; readonly problem: string };

export interface HeartbeatExpectation {
  readonly nowMs: number;
  /** The last heartbeat accepted, if any: a new one must be later. */
  readonly last: Heartbeat | undefined;
  /** How far the heartbeat's time may be from the driver's clock (either way). */
  readonly maxSkewMs: number;
}

/** Verifies one heartbeat message; never throws. */
export function verifyHeartbeat(payload: string, interlockPublicKey: KeyObject, expect: HeartbeatExpectation): HeartbeatCheck {
  const parsed = parseCompactJws(payload);
  if (!parsed.ok) return { ok: false, problem: `not a signed heartbeat: ${parsed.problem.message}` };
  if (parsed.jws.header.typ !== HEARTBEAT_TYPE) return { ok: false, problem: `typ is not ${HEARTBEAT_TYPE}` };
  if (parsed.jws.header.kid !== INTERLOCK_KID) return { ok: false, problem: `kid ${parsed.jws.header.kid} is not the interlock's` };
  if (!verifyJws(parsed.jws, interlockPublicKey)) return { ok: false, problem: "signature is not the interlock's" };
  const beat = parsed.jws.payload as Partial<Heartbeat> | null;
  if (typeof beat !== 'object' || beat === null || typeof beat.epoch !== 'string' || typeof beat.seq !== 'number' || typeof beat.timeMs !== 'number') {
    return { ok: false, problem: 'heartbeat needs epoch (string), seq and timeMs (numbers)' };
  }
  // SAFETY: freshness by the driver's own clock: a recorded stream of genuine heartbeats replayed later is silence.
  if (!(Math.abs(expect.nowMs - beat.timeMs) <= expect.maxSkewMs)) return { ok: false, problem: `heartbeat time ${beat.timeMs} is more than ${expect.maxSkewMs} ms from now` };
  const last = expect.last;
  if (last !== undefined) {
    const newer = beat.epoch === last.epoch ? beat.seq > last.seq : beat.timeMs > last.timeMs;
    if (!newer) return { ok: false, problem: `heartbeat ${beat.epoch}/${beat.seq} is not newer than ${last.epoch}/${last.seq} (replayed?)` };
  }
  return { ok: true, heartbeat: beat as Heartbeat };
}
