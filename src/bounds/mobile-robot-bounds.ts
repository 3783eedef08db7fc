// Bounds for the mobile_robot kind. (Skeleton: every action other than the safe state is denied until its bounds exist.)

import type { MobileRobotDeclaration, MobileRobotState } from '../core/kinds/mobile-robot.js';
import { reason } from '../core/reasons.js';
import { denyWith } from '../core/verdict.js';
import type { KindBounds } from './kind-bounds.js';

export const MOBILE_ROBOT_BOUNDS: KindBounds<MobileRobotDeclaration, MobileRobotState> = {
  check: (device, command) => denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on mobile_robot ${device.id}`, { ruleId: device.id })),
  occupancy: () => ({ zoneIds: 'unknown', moving: true }),
  zonesEntered: () => 'unknown',
};
