// Live device state as the bounds stage sees it: what the device last reported and when the interlock
// received it (the interlock's own clock, so a device clock cannot make old state look fresh).

import type { DeviceState } from './kinds/index.js';
import type { Vec3 } from './zones.js';

export type { DeviceState } from './kinds/index.js';

export interface ObservedState {
  readonly state: DeviceState;
  /** People the device's sensors report, in the cell frame (metres); undefined when the message had none. */
  readonly people?: readonly Vec3[];
  readonly receivedAtMs: number;
}

/** Read-only view of the latest state per device. */
export interface StateView {
  latest(deviceId: string): ObservedState | undefined;
}

/** The last command released to a device: what rate-of-change and shared-zone checks compare against. */
export interface LastRelease {
  readonly commandId: string;
  readonly action: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly releasedAtMs: number;
}

export interface ReleaseView {
  last(deviceId: string): LastRelease | undefined;
}
