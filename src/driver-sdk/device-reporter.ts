// The driver's half of the device channel: signs what the driver reports (its state, what it did with a release)
// with the driver's own key, with a run id (sid) and a seq that only ever rises, across restarts too (it starts
// from the clock). A real driver uses this as the simulator does; the interlock acts on nothing unsigned.

import { randomUUID, type KeyObject } from 'node:crypto';
import { signDeviceReport, type DeviceReportKind } from '../dispatch/device-report.js';

/** The key a driver signs with, as declared for its device under `drivers` in agents.yaml. */
export interface DriverKeyPair {
  readonly kid: string;
  readonly privateKey: KeyObject;
}

export class DeviceReporter {
  /** This run of the driver (one reporter per driver process); releases made from this run's state name it. */
  readonly session: string = randomUUID();
  #seq = 0;

  constructor(
    readonly deviceId: string,
    private readonly key: DriverKeyPair,
    private readonly nowMs: () => number = Date.now,
  ) {
    if (key.privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError(`DeviceReporter: the driver key of ${deviceId} is not an Ed25519 private key`);
  }

  /** The signed state message for actuator/{device}/state. */
  state(body: object): string {
    return this.sign('state', body);
  }

  /** The signed outcome for actuator/{device}/outcome. */
  outcome(body: object): string {
    return this.sign('outcome', body);
  }

  private sign(kind: DeviceReportKind, body: object): string {
    const iat = this.nowMs();
    // 1000 seqs per millisecond of clock: a driver restarted later starts above everything it sent before (a clock
    // stepped back makes its first reports look replayed until it catches up: they are ignored, which is safe).
    this.#seq = Math.max(this.#seq + 1, Math.floor(iat) * 1000);
    return signDeviceReport(kind, { dev: this.deviceId, sid: this.session, seq: this.#seq, iat, body: body as Record<string, unknown> }, this.key.kid, this.key.privateKey);
  }
}
