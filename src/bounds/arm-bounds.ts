// Bounds for robot arms: joint position ranges and joint velocity limits, checked against fresh live state.
// It allows or denies; it never edits a command. Every comparison is written so that NaN fails it.

import type { ArmDeclaration } from '../core/declarations.js';
import type { ObservedState } from '../core/device-state.js';
import { reason, type Reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';

export interface ArmMoveJoints {
  readonly positionsRad: readonly number[];
  readonly velocityRadPerS: number;
}

/** Checks that the arm's state exists, is fresh and well-formed; returns the reasons it is not. */
export function checkArmState(device: ArmDeclaration, observed: ObservedState | undefined, nowMs: number): Reason[] {
  if (observed === undefined) {
    return [reason('BOUNDS_STATE_MISSING', `no valid state received from ${device.id}`, { ruleId: `${device.id}/maxStateAge` })];
  }
  const ageMs = nowMs - observed.receivedAtMs;
  // SAFETY: `!(age <= max)` also rejects a NaN age; a negative age (clock went back) is not fresh either.
  if (!(ageMs >= 0 && ageMs <= device.maxStateAgeMs)) {
    return [
      reason('BOUNDS_STATE_STALE', `state of ${device.id} is ${ageMs} ms old, limit ${device.maxStateAgeMs} ms`, {
        ruleId: `${device.id}/maxStateAge`,
        limit: device.maxStateAgeMs,
        actual: ageMs,
        unit: 'ms',
      }),
    ];
  }
  const positions = observed.state.positionsRad;
  if (observed.state.kind !== 'robot_arm' || positions.length !== device.joints.length || !positions.every(Number.isFinite)) {
    return [reason('BOUNDS_STATE_INVALID', `state of ${device.id} does not give ${device.joints.length} finite joint positions`)];
  }
  return [];
}

export function checkArmMoveJoints(device: ArmDeclaration, move: ArmMoveJoints, observed: ObservedState | undefined, nowMs: number): StageResult {
  const reasons = checkArmState(device, observed, nowMs);
  if (move.positionsRad.length !== device.joints.length) {
    reasons.push(
      reason('BOUNDS_JOINT_COUNT', `${move.positionsRad.length} joint targets given, ${device.id} has ${device.joints.length} joints`, {
        ruleId: `${device.id}/joints`,
        path: '/params/positionsRad',
        limit: device.joints.length,
        actual: move.positionsRad.length,
      }),
    );
    return denyWith(...reasons);
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
    // Every joint may travel at the commanded speed (the state can lag the real arm), so each limit applies.
    if (!(move.velocityRadPerS > 0 && move.velocityRadPerS <= joint.velocityMaxRadPerS)) {
      reasons.push(
        reason('BOUNDS_JOINT_VELOCITY', `velocity ${move.velocityRadPerS} rad/s exceeds joint ${joint.name}'s limit ${joint.velocityMaxRadPerS} rad/s`, {
          ruleId: `${device.id}/joints/${joint.name}/velocity`,
          path: '/params/velocityRadPerS',
          limit: joint.velocityMaxRadPerS,
          actual: move.velocityRadPerS,
          unit: 'rad/s',
        }),
      );
    }
  });
  return reasons.length === 0 ? PASS : denyWith(...reasons);
}
