// What the arm checks at each sample of a swept path (keep-in, keep-out, tool orientation), and how violations
// along a path are summarised: one reason per rule, naming where it first fired and where it was worst.
// NaN never passes a comparison here; a point that cannot be computed is a violation, never a pass.

import type { ArmDeclaration } from '../../core/kinds/robot-arm.js';
import { reason, type Reason, type ReasonCode } from '../../core/reasons.js';
import type { CompiledArm } from './compiled-arm.js';
import type { ArmPose } from './kinematics.js';
import { signedDistance } from './workspace.js';

/** The first and the worst sample at which one rule fired along a path. */
export class Finding {
  hit = false;
  firstS = NaN;
  worstS = NaN;
  worst = NaN;
  where = '';

  /** `higherIsWorse`: speeds and angles; otherwise distances (lower is worse). A NaN actual is always the worst. */
  constructor(private readonly higherIsWorse: boolean) {}

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

export function fmt(value: number, digits = 3): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

/** Findings for the checks every path sample gets, sized for one device's workspace. */
export class WorkspaceFindings {
  readonly keepIn = new Finding(false);
  readonly keepOut: readonly Finding[];
  readonly orientation = new Finding(true);
  /**
   * Kept inside the cone at every sample: half the largest turn of the tool axis between two samples (at most the
   * sum of the joint steps), as resolution / 2 is kept from zones, so the axis cannot leave the cone in between.
   */
  orientationMarginRad = 0;

  constructor(device: ArmDeclaration) {
    this.keepOut = (device.workspace?.keepOut ?? []).map(() => new Finding(false));
  }
}

/** Keep-in, keep-out and orientation at one sample (pose already computed). */
export function checkPoseWorkspace(arm: CompiledArm, pose: ArmPose, s: number, findings: WorkspaceFindings): void {
  const workspace = arm.device.workspace;
  const clearance = arm.clearanceM;
  const points = pose.points;
  if (workspace !== undefined) {
    const { keepIn, keepOut } = workspace;
    for (const body of workspace.bodyPoints) {
      const k = body.index * 3;
      const x = points[k] as number, y = points[k + 1] as number, z = points[k + 2] as number;
      if (keepIn.length > 0) {
        // Depth inside the best-fitting keep-in zone; Math.max propagates NaN, which then fails the test below.
        let depth = -Infinity;
        for (const zone of keepIn) depth = Math.max(depth, -signedDistance(zone.shape, x, y, z));
        // SAFETY: inside with at least the clearance, written so that NaN is outside.
        if (!(depth >= clearance)) findings.keepIn.record(s, depth, body.name);
      }
      for (let i = 0; i < keepOut.length; i++) {
        const distance = signedDistance((keepOut[i] as (typeof keepOut)[number]).shape, x, y, z);
        // SAFETY: strictly farther than the clearance; touching the (inflated) boundary counts as inside.
        if (!(distance > clearance)) (findings.keepOut[i] as Finding).record(s, distance, body.name);
      }
    }
  }
  const cone = arm.device.tcp.orientation;
  if (cone !== undefined) {
    const rotation = pose.rotation;
    const dot = (rotation[2] as number) * cone.axis[0] + (rotation[5] as number) * cone.axis[1] + (rotation[8] as number) * cone.axis[2];
    // Rounding can put |dot| a hair above 1; NaN stays NaN through min/max and fails the comparison.
    const angle = Math.acos(Math.min(1, Math.max(-1, dot)));
    if (!(angle <= cone.maxAngleRad - findings.orientationMarginRad)) findings.orientation.record(s, angle, 'tool axis');
  }
}

/** One reason per workspace rule that fired along the path. */
export function workspaceReasons(arm: CompiledArm, findings: WorkspaceFindings, path: string): Reason[] {
  const device = arm.device;
  const reasons: Reason[] = [];
  const clearance = arm.clearanceM;
  const clearanceText = `clearance ${fmt(clearance, 4)} m = margin ${fmt(device.workspace?.marginM ?? 0, 4)} m + resolution / 2`;
  if (findings.keepIn.hit) {
    const f = findings.keepIn;
    reasons.push(
      reason('BOUNDS_KEEP_IN', `${f.where} leaves the keep-in workspace ${f.span}: ${fmt(f.worst, 4)} m inside it (needs >= ${clearanceText})`, {
        ruleId: `${device.id}/workspace/keepIn`,
        path,
        limit: clearance,
        actual: f.worst,
        unit: 'm',
      }),
    );
  }
  (device.workspace?.keepOut ?? []).forEach((zone, i) => {
    const f = findings.keepOut[i] as Finding;
    if (!f.hit) return;
    reasons.push(
      reason('BOUNDS_KEEP_OUT', `${f.where} enters keep-out ${zone.id} ${f.span}: ${fmt(f.worst, 4)} m from it (needs > ${clearanceText})`, {
        ruleId: `${device.id}/workspace/keepOut/${zone.id}`,
        path,
        limit: clearance,
        actual: f.worst,
        unit: 'm',
      }),
    );
  });
  const cone = device.tcp.orientation;
  if (findings.orientation.hit && cone !== undefined) {
    const f = findings.orientation;
    reasons.push(
      reason('BOUNDS_TCP_ORIENTATION', `the tool axis is ${fmt(f.worst)} rad from [${cone.axis.map((v) => fmt(v)).join(', ')}] ${f.span} (cone ${fmt(cone.maxAngleRad)} rad, less ${fmt(findings.orientationMarginRad, 4)} rad kept for the turn between samples)`, {
        ruleId: `${device.id}/tcp/orientation`,
        path,
        limit: cone.maxAngleRad,
        actual: f.worst,
        unit: 'rad',
      }),
    );
  }
  return reasons;
}

/** A reason for a path rule with a scalar limit (TCP speed, derived joint velocity / acceleration / position). */
export function findingReason(code: ReasonCode, finding: Finding, what: string, details: { ruleId: string; path: string; limit: number; unit: string }): Reason {
  return reason(code, `${what} ${fmt(finding.worst, 4)} ${details.unit} ${finding.span} (limit ${fmt(details.limit, 4)} ${details.unit})`, {
    ...details,
    actual: finding.worst,
  });
}
