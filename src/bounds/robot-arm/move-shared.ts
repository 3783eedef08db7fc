// What both arm moves share around their swept path: the run-out the path is widened by, the max-step reason, and
// the reasons for a path that could not be sampled to its end. It decides nothing by itself.

import type { ArmDeclaration, ArmState } from '../../core/kinds/robot-arm.js';
import type { Mode } from '../../core/kinds/kind-spec.js';
import { reason, type Reason } from '../../core/reasons.js';
import type { ReleaseUnderWay } from '../kind-bounds.js';
import type { CompiledArm } from './compiled-arm.js';
import { fmt } from './format.js';
import { armRunOut, type ArmRunOut } from './run-out.js';
import { MAX_PATH_SAMPLES, type SampleOutcome } from './swept-path.js';

export type MovingRunOut = Extract<ArmRunOut, { ok: true }>;

/** Whether the path checks have anything a run-out widens: workspace zones or a tool orientation cone. */
export function pathWidensByRunOut(arm: CompiledArm): boolean {
  return arm.keepIn.length > 0 || arm.keepOut.length > 0 || arm.device.tcp.orientation !== undefined;
}

/**
 * The run-out the path checks widen their zones by: undefined at rest or when nothing on the path depends on it.
 * With `underWay` the arm is never at rest (see armRunOut): the path may start anywhere within the run-out.
 * SAFETY: when it cannot be bounded and the path depends on it, the reason is appended and the command is denied.
 */
export function pathRunOut(arm: CompiledArm, state: ArmState, reasons: Reason[], underWay: ReleaseUnderWay | undefined): MovingRunOut | undefined {
  if (!pathWidensByRunOut(arm)) return undefined;
  const runOut = armRunOut(arm, state, underWay);
  if (runOut.ok) return runOut.marginM > 0 ? runOut : undefined;
  // A velocity that is not finite is already reported by velocityStateReasons; anything else is reported here.
  if (runOut.reason.code !== 'BOUNDS_STATE_INVALID') reasons.push(runOut.reason);
  return undefined;
}

export function stepReason(device: ArmDeclaration, index: number, travel: number, limit: number, mode: Mode, path: string): Reason {
  const joint = device.joints[index];
  return reason('BOUNDS_JOINT_STEP', `joint ${joint?.name ?? index} would move ${fmt(travel)} rad from its state position, over the ${mode} max step ${fmt(limit)} rad`, {
    ruleId: `${device.id}/maxStep/${mode}`,
    path,
    limit,
    actual: travel,
    unit: 'rad',
  });
}

export function pathOutcomeReasons(device: ArmDeclaration, outcome: SampleOutcome, path: string, reasons: Reason[]): void {
  if (outcome.ok) return;
  if (outcome.why === 'too-long') {
    reasons.push(
      reason('BOUNDS_ARM_PATH_TOO_LONG', `the path needs ${outcome.samples} samples at the declared resolution; at most ${MAX_PATH_SAMPLES} are checked (split the move)`, {
        ruleId: `${device.id}/workspace/resolution`,
        path,
        limit: MAX_PATH_SAMPLES,
        actual: outcome.samples,
      }),
    );
    return;
  }
  reasons.push(reason('BOUNDS_IK_UNREACHABLE', `the straight line cannot be followed at s=${fmt(outcome.s)}: ${outcome.detail}`, { ruleId: `${device.id}/kinematics`, path }));
}
