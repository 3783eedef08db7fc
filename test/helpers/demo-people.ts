// The demo cell's people source (amr-1's scanners) for tests that check arm-1 or conveyor-1 commands through the
// bounds stage. Not a test file. Without a people report, people are unknown, so the demo arm and conveyor check in
// their reduced limits. The arm also shares the transfer station with amr-1, and an AMR with no state may be in it.

import type { ObservedState, StateView } from '../../src/core/device-state.js';
import type { MobileRobotState } from '../../src/core/kinds/mobile-robot.js';

/** In the aisle south-east of the table: outside the transfer station and every watched zone (cell.yaml). */
export const AMR_AISLE_POSE = { xM: 4, yM: -0.5, yawRad: 0 } as const;

/** Where the demo AMR docks to hand a tote to the arm: inside the shared transfer station. */
export const AMR_DOCK_POSE = { xM: 2.5, yM: 1.3, yawRad: Math.PI / 2 } as const;

export interface AmrReportOptions {
  /** People the scanners report, [x, y] in the cell frame (m); nobody by default. */
  readonly people?: readonly (readonly [number, number])[];
  readonly pose?: { readonly xM: number; readonly yM: number; readonly yawRad: number };
  /** Linear speed (m/s); 0 (at rest) by default. */
  readonly speedMPerS?: number;
  /** false: the robot reports its localization as lost, so its pose cannot be trusted. */
  readonly localized?: boolean;
}

/** amr-1's state as the interlock holds it: localized, with a people report, received at `receivedAtMs`. */
export function amrReport(receivedAtMs: number, options: AmrReportOptions = {}): ObservedState {
  const speed = options.speedMPerS ?? 0;
  const state: MobileRobotState = {
    kind: 'mobile_robot',
    pose: { ...(options.pose ?? AMR_AISLE_POSE) },
    velocity: { linearMPerS: speed, angularRadPerS: 0 },
    localization: { ok: options.localized ?? true, ageMs: 20 },
    moving: speed !== 0,
    safeStopped: false,
    lastCommandId: null,
  };
  return { state, people: (options.people ?? []).map(([x, y]) => [x, y, 0] as const), receivedAtMs };
}

/** `states` with amr-1's report added (it replaces whatever `states` says about amr-1). */
export function withAmrReport(states: StateView, report: ObservedState): StateView {
  return { latest: (deviceId) => (deviceId === 'amr-1' ? report : states.latest(deviceId)) };
}
