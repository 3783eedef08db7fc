// Bounds for robot arms: joint limits, step per command, measured effort / force / payload, and the whole swept
// path (keep-in, keep-out, tool orientation, TCP speed, IK for linear moves) against fresh live state.
// It allows or denies; it never edits a command. The moves are checked in robot-arm/move-joints.ts and
// robot-arm/move-linear.ts; this file is the kind's entry point.

import type { ArmDeclaration, ArmMoveJoints, ArmMoveLinear, ArmState } from '../core/kinds/robot-arm.js';
import { reason } from '../core/reasons.js';
import { denyWith } from '../core/verdict.js';
import type { KindBounds } from './kind-bounds.js';
import { enteredZones, isMoving, occupiedZones, validPositions } from './robot-arm/cell-zones.js';
import { checkArmMoveJoints } from './robot-arm/move-joints.js';
import { checkArmMoveLinear } from './robot-arm/move-linear.js';

export { checkArmMoveJoints, checkArmMoveLinear };

export const ROBOT_ARM_BOUNDS: KindBounds<ArmDeclaration, ArmState> = {
  check(device, command, context) {
    const positions = context.state.positionsRad;
    // SAFETY: the state parser already refuses these; checked again because a wrong state here means a wrong path.
    if (!validPositions(device, positions)) {
      return denyWith(reason('BOUNDS_STATE_INVALID', `state of ${device.id} does not give ${device.joints.length} finite joint positions`));
    }
    // SAFETY: with its last release not yet reported finished the arm is checked as moving at its declared maximum.
    const { state, mode, underWay } = context;
    if (command.action === 'move_joints') return checkArmMoveJoints(device, command.params as unknown as ArmMoveJoints, state, mode, underWay);
    if (command.action === 'move_linear') return checkArmMoveLinear(device, command.params as unknown as ArmMoveLinear, state, mode, underWay);
    return denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on robot_arm ${device.id}`, { ruleId: device.id }));
  },
  // SAFETY: without kinematics the arm's place in the cell is unknown, so a shared zone it is listed in is treated
  // as occupied by it and entered by every move: fail closed. Unknown motion counts as moving, and a moving arm
  // occupies every zone it may reach within its run-out.
  occupancy: (device, state, zones) => ({ zoneIds: occupiedZones(device, state, zones), moving: isMoving(state) }),
  zonesEntered: enteredZones,
};
