// The move_joints swept-path checks as they were before samples could be skipped (issue 15): every sample of the
// joint line is computed and every body point is measured against every zone, the tool axis against the cone and
// the TCP against its speed limit. Tests compare the engine, which skips what it has proven clear, with this.

import { limitIn, type Mode } from '../../../src/core/kinds/kind-spec.js';
import type { ArmDeclaration, ArmState } from '../../../src/core/kinds/robot-arm.js';
import type { Reason } from '../../../src/core/reasons.js';
import type { Zone } from '../../../src/core/zones.js';
import type { ReleaseUnderWay } from '../../../src/bounds/kind-bounds.js';
import type { CompiledArm } from '../../../src/bounds/robot-arm/compiled-arm.js';
import { pointSpeed } from '../../../src/bounds/robot-arm/kinematics.js';
import { Finding, findingReason, WorkspaceFindings, workspaceReasons } from '../../../src/bounds/robot-arm/path-checks.js';
import { armRunOut } from '../../../src/bounds/robot-arm/run-out.js';
import { jointPathIntervals, MAX_PATH_SAMPLES, sampleJointPath } from '../../../src/bounds/robot-arm/swept-path.js';
import { signedDistance } from '../../../src/bounds/robot-arm/workspace.js';

/** Reason codes that the swept joint line (and nothing else in a move_joints check) gives. */
export const JOINT_PATH_CODES: ReadonlySet<string> = new Set(['BOUNDS_KEEP_IN', 'BOUNDS_KEEP_OUT', 'BOUNDS_TCP_ORIENTATION', 'BOUNDS_TCP_SPEED', 'BOUNDS_ARM_PATH_TOO_LONG']);

/** Every sample, one after the other (the sampler with nothing proven ahead). */
function everySample(arm: CompiledArm, q0: readonly number[], q1: readonly number[], visit: (s: number, pose: CompiledArm['pose']) => void): void {
  sampleJointPath(arm, q0, q1, (s, _q, pose) => {
    visit(s, pose);
    return 0;
  });
}

/**
 * The reasons of the swept joint line for a valid target, in the engine's order (workspace rules, then TCP speed),
 * or undefined when the path is too long to sample (not compared: nothing is sampled then). The command's speed
 * counts only when it is within every joint's limit, as in checkArmMoveJoints.
 */
export function referenceJointPathReasons(arm: CompiledArm, state: ArmState, q1: readonly number[], velocity: number, mode: Mode, underWay?: ReleaseUnderWay): Reason[] | undefined {
  const device: ArmDeclaration = arm.device;
  const q0 = state.positionsRad;
  const intervals = jointPathIntervals(arm, q0, q1);
  if (!(intervals <= MAX_PATH_SAMPLES)) return undefined;
  const widens = arm.keepIn.length > 0 || arm.keepOut.length > 0 || device.tcp.orientation !== undefined;
  const runOut = widens ? armRunOut(arm, state, underWay) : undefined;
  if (runOut !== undefined && !runOut.ok) throw new Error('the reference compares paths whose run-out is bounded');
  const moving = runOut !== undefined && runOut.marginM > 0 ? runOut : undefined;
  const velocityValid = device.joints.every((joint) => velocity > 0 && velocity <= limitIn(joint.velocityMaxRadPerS, mode));
  let leading = 0;
  let totalTurnRad = 0;
  for (let j = 0; j < q1.length; j++) {
    const travel = Math.abs((q1[j] as number) - (q0[j] as number));
    leading = Math.max(leading, travel);
    totalTurnRad += travel;
  }
  const durationS = !velocityValid || leading === 0 ? undefined : leading / velocity;
  const speedLimit = device.tcp.speedMaxMPerS === undefined ? undefined : limitIn(device.tcp.speedMaxMPerS, mode);
  const findings = new WorkspaceFindings(device);
  findings.reset(arm, totalTurnRad / intervals / 2, moving);
  const clearance = findings.zoneClearanceM;
  const speed = new Finding(true);
  const dq = q1.map((v, j) => v - (q0[j] as number));
  const workspace = device.workspace;
  const cone = device.tcp.orientation;
  everySample(arm, q0, q1, (s, pose) => {
    for (const body of workspace?.bodyPoints ?? []) {
      const k = body.index * 3;
      const [x, y, z] = [pose.points[k] as number, pose.points[k + 1] as number, pose.points[k + 2] as number];
      if ((workspace?.keepIn.length ?? 0) > 0) {
        const depth = Math.max(...(workspace?.keepIn ?? []).map((zone) => -signedDistance(zone.shape, x, y, z)));
        if (!(depth >= clearance)) findings.keepIn.record(s, depth, body.name);
      }
      (workspace?.keepOut ?? []).forEach((zone, i) => {
        const distance = signedDistance(zone.shape, x, y, z);
        if (!(distance > clearance)) findings.keepOut[i]?.record(s, distance, body.name);
      });
    }
    if (cone !== undefined) {
      const r = pose.rotation;
      const dot = (r[2] as number) * cone.axis[0] + (r[5] as number) * cone.axis[1] + (r[8] as number) * cone.axis[2];
      const angle = Math.acos(Math.min(1, Math.max(-1, dot)));
      if (!(angle <= findings.coneLimitRad)) findings.orientation.record(s, angle, 'tool axis');
    }
    if (speedLimit !== undefined && durationS !== undefined) {
      const tcpSpeed = pointSpeed(pose, pose.tcpIndex, dq) / durationS;
      if (!(tcpSpeed <= speedLimit)) speed.record(s, tcpSpeed, 'tcp');
    }
  });
  const reasons: Reason[] = [];
  workspaceReasons(arm, findings, '/params/positionsRad', reasons);
  if (speed.hit && speedLimit !== undefined) {
    reasons.push(
      findingReason('BOUNDS_TCP_SPEED', speed, `with the leading joint at ${velocity} rad/s the TCP moves at`, {
        ruleId: `${device.id}/tcp/speed/${mode}`,
        path: '/params/velocityRadPerS',
        limit: speedLimit,
        unit: 'm/s',
      }),
    );
  }
  return reasons;
}

/** The cell zones the joint line enters, in the order first entered (sample by sample, zones in map order). */
export function referenceEnteredZones(arm: CompiledArm, state: ArmState, q1: readonly number[], zones: ReadonlyMap<string, Zone>, underWay?: ReleaseUnderWay): string[] | 'unknown' {
  const runOut = armRunOut(arm, state, underWay);
  if (!runOut.ok) return 'unknown';
  if (!(jointPathIntervals(arm, state.positionsRad, q1) <= MAX_PATH_SAMPLES)) return 'unknown';
  const clearance = arm.clearanceM + runOut.marginM;
  const found: string[] = [];
  everySample(arm, state.positionsRad, q1, (_s, pose) => {
    for (const [id, zone] of zones) {
      if (found.includes(id)) continue;
      const inside = arm.bodyPoints.some((body) => {
        const k = body.index * 3;
        return !(signedDistance(zone.shape, pose.points[k] as number, pose.points[k + 1] as number, pose.points[k + 2] as number) > clearance);
      });
      if (inside) found.push(id);
    }
  });
  return found;
}
