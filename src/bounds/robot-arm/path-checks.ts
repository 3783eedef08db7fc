// What the arm checks at each sample of a swept path (keep-in, keep-out, tool orientation), and how violations
// along a path are summarised: one reason per rule, naming where it first fired and where it was worst.
// NaN never passes a comparison here; a point that cannot be computed is a violation, never a pass.

import type { ArmDeclaration } from '../../core/kinds/robot-arm.js';
import { reason, type Reason, type ReasonCode } from '../../core/reasons.js';
import type { CompiledArm } from './compiled-arm.js';
import { fmt } from './format.js';
import type { ArmPose } from './kinematics.js';
import { describeRunOut, type ArmRunOut } from './run-out.js';
import { samplesProven } from './swept-path.js';
import { compiledDistance, compiledDistanceFor, ROUNDING_SLACK_M } from './workspace.js';

/** The first and the worst sample at which one rule fired along a path. */
export class Finding {
  hit = false;
  firstS = NaN;
  worstS = NaN;
  worst = NaN;
  where = '';

  /** `higherIsWorse`: speeds and angles; otherwise distances (lower is worse). A NaN actual is always the worst. */
  constructor(private readonly higherIsWorse: boolean) {}

  /** Forgets every violation, for reuse by the next check. */
  reset(): void {
    this.hit = false;
    this.firstS = NaN;
    this.worstS = NaN;
    this.worst = NaN;
    this.where = '';
  }

  /** Notes a violation at s; true when it is the worst so far. */
  record(s: number, actual: number, where: string): boolean {
    if (!this.hit) {
      this.hit = true;
      this.firstS = s;
    } else {
      if (Number.isNaN(this.worst)) return false; // nothing is worse than an incomputable value
      const worse = Number.isNaN(actual) || (this.higherIsWorse ? actual > this.worst : actual < this.worst);
      if (!worse) return false;
    }
    this.worst = actual;
    this.worstS = s;
    this.where = where;
    return true;
  }

  /** "first at s=0.250, worst at s=0.500" */
  get span(): string {
    return this.firstS === this.worstS ? `at s=${fmt(this.firstS)}` : `first at s=${fmt(this.firstS)}, worst at s=${fmt(this.worstS)}`;
  }
}

type MovingRunOut = Extract<ArmRunOut, { ok: true }>;

/** Findings for the checks every path sample gets, sized for one device's workspace; reset before each path. */
export class WorkspaceFindings {
  readonly keepIn = new Finding(false);
  readonly keepOut: readonly Finding[];
  readonly orientation = new Finding(true);
  /**
   * Kept inside the cone at every sample: half the largest turn of the tool axis between two samples (at most the
   * sum of the joint steps), as resolution / 2 is kept from zones, so the axis cannot leave the cone in between.
   */
  orientationMarginRad = 0;
  /** The run-out of a moving arm: zones are widened by its margin and the cone narrowed by its turn (0 at rest). */
  runOut: MovingRunOut | undefined = undefined;
  runOutM = 0;
  /** The clearance every sample keeps from keep-out zones and keep-in walls: margin + resolution / 2 + run-out. */
  zoneClearanceM = 0;
  /** The largest angle the tool axis may make with the cone's axis at a sample. */
  coneLimitRad = Infinity;
  /**
   * Per body point (keep-in) and per body point and keep-out zone: how much farther the point can move before the
   * pair could fail its test, as of the last sample that evaluated it (see checkPoseWorkspace). -Infinity: unknown.
   */
  readonly keepInRoomM: Float64Array;
  readonly keepOutRoomM: Float64Array;
  /** The least of those rooms after the last sample checked (Infinity without zones; NaN or less: none). */
  roomM = Infinity;
  /** How much farther the tool axis could turn before it leaves the cone, after the last sample checked. */
  coneRoomRad = Infinity;

  constructor(device: ArmDeclaration) {
    this.keepOut = (device.workspace?.keepOut ?? []).map(() => new Finding(false));
    const bodyPoints = device.workspace?.bodyPoints.length ?? 0;
    this.keepInRoomM = new Float64Array(bodyPoints);
    this.keepOutRoomM = new Float64Array(bodyPoints * this.keepOut.length);
  }

  /** Clears every finding and sets the allowances for the next path. */
  reset(arm: CompiledArm, orientationMarginRad: number, runOut: MovingRunOut | undefined): void {
    this.keepIn.reset();
    for (const finding of this.keepOut) finding.reset();
    this.orientation.reset();
    this.keepInRoomM.fill(-Infinity);
    this.keepOutRoomM.fill(-Infinity);
    this.roomM = Infinity;
    this.coneRoomRad = Infinity;
    this.orientationMarginRad = orientationMarginRad;
    this.runOut = runOut !== undefined && runOut.marginM > 0 ? runOut : undefined;
    this.runOutM = this.runOut?.marginM ?? 0;
    this.zoneClearanceM = arm.clearanceM + this.runOutM;
    const cone = arm.device.tcp.orientation;
    this.coneLimitRad = cone === undefined ? Infinity : cone.maxAngleRad - orientationMarginRad - (this.runOut?.turnRad ?? 0);
  }
}

/**
 * Slack on the tool-axis angle before a cone check counts as proven for later samples. acos is ill-conditioned near
 * 0 and pi: a rounding of 1e-16 in the dot product moves the angle by up to about 1.5e-8 rad. This is far above
 * that, and far below any cone that matters.
 */
export const CONE_SLACK_RAD = 1e-6;

/**
 * Keep-in, keep-out and orientation at one sample (pose already computed). `movedM` bounds how far any body point
 * moved since the previous sample of the same path (0 for its first).
 *
 * A signed distance changes by at most as much as the point moves. So a point found d from a zone, with
 * d > clearance + slack, passes that zone's test at every later sample until it has moved d - clearance - slack:
 * those evaluations are skipped, and their outcome (a pass) is the same. Anything not finite is evaluated. Leaves
 * the least room in findings.roomM and the cone's in findings.coneRoomRad (see workspaceSamplesProven).
 */
export function checkPoseWorkspace(arm: CompiledArm, pose: ArmPose, s: number, findings: WorkspaceFindings, movedM: number): void {
  const workspace = arm.device.workspace;
  const clearance = findings.zoneClearanceM;
  const points = pose.points;
  // The least room of any pair after this sample; a NaN room makes it NaN (written as !(room >= least)).
  let least = Infinity;
  if (workspace !== undefined) {
    const bodyPoints = workspace.bodyPoints;
    const keepIn = arm.keepIn;
    const keepOut = arm.keepOut;
    const inRoom = findings.keepInRoomM;
    const outRoom = findings.keepOutRoomM;
    for (let b = 0; b < bodyPoints.length; b++) {
      const body = bodyPoints[b] as (typeof bodyPoints)[number];
      const k = body.index * 3;
      const x = points[k] as number, y = points[k + 1] as number, z = points[k + 2] as number;
      // SAFETY: a point that cannot be computed is at distance NaN from every zone, which fails every test below;
      // it is never skipped.
      const finite = Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z);
      if (keepIn.length > 0) {
        let room = (inRoom[b] as number) - movedM;
        if (!(finite && room > 0)) {
          // Depth inside the best-fitting keep-in zone.
          let depth = finite ? -Infinity : NaN;
          if (finite) for (let i = 0; i < keepIn.length; i++) depth = Math.max(depth, -compiledDistance(keepIn[i] as (typeof keepIn)[number], x, y, z));
          // SAFETY: inside with at least the clearance, written so that NaN is outside.
          if (!(depth >= clearance)) findings.keepIn.record(s, depth, body.name);
          room = depth - clearance - ROUNDING_SLACK_M;
        }
        inRoom[b] = room;
        if (!(room >= least)) least = room;
      }
      for (let i = 0; i < keepOut.length; i++) {
        const slot = b * keepOut.length + i;
        let room = (outRoom[slot] as number) - movedM;
        if (!(finite && room > 0)) {
          const distance = finite ? compiledDistanceFor(keepOut[i] as (typeof keepOut)[number], x, y, z, clearance) : NaN;
          // SAFETY: strictly farther than the clearance; touching the (inflated) boundary counts as inside.
          if (!(distance > clearance)) (findings.keepOut[i] as Finding).record(s, distance, body.name);
          room = distance - clearance - ROUNDING_SLACK_M;
        }
        outRoom[slot] = room;
        if (!(room >= least)) least = room;
      }
    }
  }
  findings.roomM = least;
  const cone = arm.device.tcp.orientation;
  if (cone !== undefined) {
    const rotation = pose.rotation;
    const dot = (rotation[2] as number) * cone.axis[0] + (rotation[5] as number) * cone.axis[1] + (rotation[8] as number) * cone.axis[2];
    // Rounding can put |dot| a hair above 1; NaN stays NaN through min/max and fails the comparison.
    const angle = Math.acos(Math.min(1, Math.max(-1, dot)));
    if (!(angle <= findings.coneLimitRad)) findings.orientation.record(s, angle, 'tool axis');
    findings.coneRoomRad = findings.coneLimitRad - angle - CONE_SLACK_RAD;
  }
}

/**
 * How many of the following samples of a joint line pass every check of checkPoseWorkspace, proven from its last
 * call: no body point moves more than `stepM` per interval, so none comes closer to a zone than its room allows
 * before it has used that room up; the tool axis turns by at most `turnStepRad` per interval (the sum of the joint
 * steps), so it stays in the cone while its angle room lasts.
 */
export function workspaceSamplesProven(findings: WorkspaceFindings, stepM: number, turnStepRad: number): number {
  return Math.min(samplesProven(findings.roomM, stepM), samplesProven(findings.coneRoomRad, turnStepRad));
}

/** "clearance 0.0250 m = margin 0.0200 m + resolution / 2", plus the run-out of a moving arm. */
function clearanceText(arm: CompiledArm, findings: WorkspaceFindings): string {
  const base = `clearance ${fmt(arm.clearanceM, 4)} m = margin ${fmt(arm.device.workspace?.marginM ?? 0, 4)} m + resolution / 2`;
  const runOut = findings.runOut;
  if (runOut === undefined) return base;
  return `${fmt(findings.zoneClearanceM, 4)} m: ${base}, plus ${fmt(runOut.marginM, 4)} m run-out because ${describeRunOut(runOut)}`;
}

/** One reason per workspace rule that fired along the path, appended to `into`. */
export function workspaceReasons(arm: CompiledArm, findings: WorkspaceFindings, path: string, into: Reason[]): void {
  const device = arm.device;
  const clearance = findings.zoneClearanceM;
  if (findings.keepIn.hit) {
    const f = findings.keepIn;
    // Only the run-out made these violations: the point keeps the ordinary clearance but not the widened one.
    const what = findings.runOut !== undefined && f.worst >= arm.clearanceM ? `comes within the ${fmt(findings.runOutM, 4)} m run-out of the keep-in wall` : 'leaves the keep-in workspace';
    into.push(
      reason('BOUNDS_KEEP_IN', `${f.where} ${what} ${f.span}: ${fmt(f.worst, 4)} m inside it (needs >= ${clearanceText(arm, findings)})`, {
        ruleId: `${device.id}/workspace/keepIn`,
        path,
        limit: clearance,
        actual: f.worst,
        unit: 'm',
      }),
    );
  }
  const keepOut = device.workspace?.keepOut ?? [];
  for (let i = 0; i < keepOut.length; i++) {
    const f = findings.keepOut[i] as Finding;
    if (!f.hit) continue;
    const id = (keepOut[i] as (typeof keepOut)[number]).id;
    const what = findings.runOut !== undefined && f.worst > arm.clearanceM ? `comes within the ${fmt(findings.runOutM, 4)} m run-out of keep-out ${id}` : `enters keep-out ${id}`;
    into.push(
      reason('BOUNDS_KEEP_OUT', `${f.where} ${what} ${f.span}: ${fmt(f.worst, 4)} m from it (needs > ${clearanceText(arm, findings)})`, {
        ruleId: `${device.id}/workspace/keepOut/${id}`,
        path,
        limit: clearance,
        actual: f.worst,
        unit: 'm',
      }),
    );
  }
  const cone = device.tcp.orientation;
  if (findings.orientation.hit && cone !== undefined) {
    const f = findings.orientation;
    const runOut = findings.runOut;
    const turn = runOut === undefined ? '' : `, and ${fmt(runOut.turnRad, 4)} rad the tool axis may turn in the run-out because ${describeRunOut(runOut)}`;
    into.push(
      reason('BOUNDS_TCP_ORIENTATION', `the tool axis is ${fmt(f.worst)} rad from [${cone.axis.map((v) => fmt(v)).join(', ')}] ${f.span} (cone ${fmt(cone.maxAngleRad)} rad, less ${fmt(findings.orientationMarginRad, 4)} rad kept for the turn between samples${turn})`, {
        ruleId: `${device.id}/tcp/orientation`,
        path,
        limit: cone.maxAngleRad,
        actual: f.worst,
        unit: 'rad',
      }),
    );
  }
}

/** A reason for a path rule with a scalar limit (TCP speed, derived joint velocity / acceleration / position). */
export function findingReason(code: ReasonCode, finding: Finding, what: string, details: { ruleId: string; path: string; limit: number; unit: string }): Reason {
  return reason(code, `${what} ${fmt(finding.worst, 4)} ${details.unit} ${finding.span} (limit ${fmt(details.limit, 4)} ${details.unit})`, {
    ...details,
    actual: finding.worst,
  });
}
