// Live device state as the bounds stage sees it: what the device last reported and when the interlock
// received it (the interlock's own clock, so a device clock cannot make old state look fresh).

export interface ArmState {
  readonly kind: 'robot_arm';
  readonly positionsRad: readonly number[];
}

export type DeviceState = ArmState;

export interface ObservedState {
  readonly state: DeviceState;
  readonly receivedAtMs: number;
}

/** Read-only view of the latest state per device. */
export interface StateView {
  latest(deviceId: string): ObservedState | undefined;
}
