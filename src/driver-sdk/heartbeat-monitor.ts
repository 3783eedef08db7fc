// The driver's check of the interlock's heartbeat: only a heartbeat the interlock signed, newer than the last one
// accepted and fresh by the driver's own clock, keeps the device running. Anything else counts as silence.

import type { KeyObject } from 'node:crypto';
import { verifyHeartbeat, type Heartbeat, type HeartbeatCheck } from '../dispatch/heartbeat.js';
import { REPORT_MAX_CLOCK_SKEW_MS } from '../dispatch/device-report.js';

export class HeartbeatMonitor {
  #last: Heartbeat | undefined;

  /** `maxSkewMs`: how far a heartbeat's time may be from the driver's clock (default 2000 ms, as for reports). */
  constructor(
    private readonly interlockPublicKey: KeyObject,
    private readonly maxSkewMs: number = REPORT_MAX_CLOCK_SKEW_MS,
  ) {}

  /** Checks one heartbeat message; a valid one becomes the last accepted. */
  accept(payload: Buffer | string, nowMs: number): HeartbeatCheck {
    const check = verifyHeartbeat(payload.toString(), this.interlockPublicKey, { nowMs, last: this.#last, maxSkewMs: this.maxSkewMs });
    if (check.ok) this.#last = check.heartbeat;
    return check;
  }
}
