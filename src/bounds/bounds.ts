// The bounds stage entry: routes a verified command to the checks of its device kind and action. An action
// with no bounds declared for it is denied: what is not proven safe does not move.

import type { VerifiedCommand } from '../core/command.js';
import type { ObservedState } from '../core/device-state.js';
import { reason } from '../core/reasons.js';
import { denyWith, PASS, type StageResult } from '../core/verdict.js';
import { checkArmMoveJoints, type ArmMoveJoints } from './arm-bounds.js';

export function checkBounds(command: VerifiedCommand, observed: ObservedState | undefined, nowMs: number): StageResult {
  if (command.safeState) return PASS;
  const { device } = command;
  switch (device.kind) {
    case 'robot_arm':
      if (command.action === 'move_joints') {
        // The envelope validated params against the action's schema, so this shape is guaranteed.
        return checkArmMoveJoints(device, command.params as unknown as ArmMoveJoints, observed, nowMs);
      }
      break;
  }
  return denyWith(reason('BOUNDS_NOT_DECLARED', `no bounds cover ${command.action} on ${device.kind} ${device.id}`, { ruleId: device.id }));
}
