// Bounds for robot arms: joint position ranges and joint velocity limits (per mode), against fresh live state.
// It allows or denies; it never edits a command. Every comparison is written so that NaN fails it.

import type { ArmDeclaration, ArmMoveJoints, ArmState } from '../core/kinds/robot-arm.js';
import { limitIn, type Mode } from '../core/kinds/kind-spec.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';
import type { KindBounds } from './kind-bounds.js';

export function checkArmMoveJoints(device: ArmDeclaration, move: ArmMoveJoints, mode: Mode): StageResult {
  const reasons: Reason[] = [];
  if (move.positionsRad.length !== device.joints.length) {
    return denyWith(
      reason('BOUNDS_JOINT_COUNT', `${move.positionsRad.length} joint targets given, ${device.id} has ${device.joints.length} joints`, {
        ruleId: `${device.id}/joints`,
        path: '/params/positionsRad',
        limit: device.joints.length,
        actual: move.positionsRad.length,
      }),
    );
  }
  device.joints.forEach((joint, index) => {
    const target = move.positionsRad[index] as number;
    // SAFETY: written as "not inside" so that NaN (which fails every comparison) is outside.
    if (!(target >= joint.positionMinRad && target <= joint.positionMaxRad)) {
      const below = target < joint.positionMinRad;
      reasons.push(
        reason(
          'BOUNDS_JOINT_POSITION',
          `joint ${joint.name} target ${target} rad is ${below ? 'below' : 'above'} its ${below ? 'min' : 'max'} ${below ? joint.positionMinRad : joint.positionMaxRad} rad`,
          {
            ruleId: `${device.id}/joints/${joint.name}/position`,
            path: `/params/positionsRad/${index}`,
            limit: below ? joint.positionMinRad : joint.positionMaxRad,
            actual: target,
            unit: 'rad',
          },
        ),
      );
    }
    // The leading joint moves at the commanded speed and any joint may lead, so each joint's limit applies.
    const limit = limitIn(joint.velocityMaxRadPerS, mode);
    if (!(move.velocityRadPerS > 0 && move.velocityRadPerS <= limit)) {
      reasons.push(
        reason('BOUNDS_JOINT_VELOCITY', `velocity ${move.velocityRadPerS} rad/s exceeds joint ${joint.name}'s ${mode} limit ${limit} rad/s`, {
          ruleId: `${device.id}/joints/${joint.name}/velocity/${mode}`,
          path: '/params/velocityRadPerS',
          limit,
          actual: move.velocityRadPerS,
          unit: 'rad/s',
        }),
      );
    }
  });
  return reasons.length === 0 ? PASS : denyWith(...reasons);
}

export const ROBOT_ARM_BOUNDS: KindBounds<ArmDeclaration, ArmState> = {
  check(device, command, context) {
    const positions = context.state.positionsRad;
    // SAFETY: the state parser already refuses these; checked again because a wrong state here means a wrong path.
    if (positions.length !== device.joints.length || !positions.every(Number.isFinite)) {
      return denyWith(reason('BOUNDS_STATE_INVALID', `state of ${device.id} does not give ${device.joints.length} finite joint positions`));
    }
    if (command.action === 'move_joints') return checkArmMoveJoints(device, command.params as unknown as ArmMoveJoints, context.mode);
    return denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on robot_arm ${device.id}`, { ruleId: device.id }));
  },
  // SAFETY: without kinematics the arm's place in the cell is unknown, so a shared zone it is listed in is
  // treated as occupied by it and entered by every move: fail closed.
  occupancy: () => ({ zoneIds: 'unknown', moving: true }),
  zonesEntered: () => 'unknown',
};
