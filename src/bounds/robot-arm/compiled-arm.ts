// Per-declaration precomputation for the arm checks: the compiled DH chain, zones, run-out inputs, scratch buffers
// and findings, built once per loaded declaration and cached. Holds no state between commands that could change a
// decision: every check overwrites the scratch and resets the findings before it uses them.

import type { ArmBodyPoint, ArmDeclaration } from '../../core/kinds/robot-arm.js';
import { ArmPose, compileChain, IkSolver, type ArmChain } from './kinematics.js';
import { LineRates } from './line-rates.js';
import { WorkspaceFindings } from './path-checks.js';
import { compiledShapeOf, type CompiledShape } from './workspace.js';

export interface CompiledArm {
  readonly device: ArmDeclaration;
  readonly chain: ArmChain;
  readonly pose: ArmPose;
  readonly ik: IkSolver;
  /** The points the workspace and cell-zone checks follow (the declared ones, or every frame origin and the TCP). */
  readonly bodyPoints: readonly ArmBodyPoint[];
  /** margin + resolution / 2: a point between two samples is never farther than resolution / 2 from one of them. */
  readonly clearanceM: number;
  readonly resolutionM: number;
  /** The declared workspace zones, flattened for the per-sample loop (same order as the declaration). */
  readonly keepIn: readonly CompiledShape[];
  readonly keepOut: readonly CompiledShape[];
  /** Each joint's normal-mode speed limit: the speed assumed for a moving arm that reports no velocities. */
  readonly velocityMaxRadPerS: Float64Array;
  /**
   * The deceleration each joint is assumed to brake with: the smaller of its declared accelerations (the reduced
   * one, which is also the driver's default ramp). 0 when the joint declares none: its stopping distance is unknown.
   */
  readonly brakingRadPerS2: Float64Array;
  /** Reused by every path check of this arm (reset first). */
  readonly findings: WorkspaceFindings;
  /** The joint rates along a linear move, reused by every move_linear check (reset first). */
  readonly lineRates: LineRates;
  /** Scratch joint vectors, overwritten by every check (checks are synchronous and never nested). */
  readonly scratch: {
    readonly q: Float64Array;
    readonly q0: Float64Array;
    readonly q1: Float64Array;
    readonly dq: Float64Array;
    readonly qPrev: Float64Array;
    /** dq/ds of the last accepted linear step, to start IK from an extrapolated guess. */
    readonly rate: Float64Array;
    /** Each joint's run-out |dq| (rad) of the last run-out computed. */
    readonly runOut: Float64Array;
    /** Room per cell zone and body point while a path's zones are collected; grown to the cell's zone count. */
    zoneRoom: Float64Array;
    readonly rotation: Float64Array;
    readonly start: Float64Array;
    readonly target: Float64Array;
    readonly point: Float64Array;
  };
}

/** Without a declared workspace, sampling still needs a resolution for cell zones: 1 cm. */
export const DEFAULT_RESOLUTION_M = 0.01;

const cache = new WeakMap<ArmDeclaration, CompiledArm | null>();

/** The compiled arm, or undefined when the declaration has no kinematics (the arm's place in the cell is unknown). */
export function compiledArm(device: ArmDeclaration): CompiledArm | undefined {
  const cached = cache.get(device);
  if (cached !== undefined) return cached ?? undefined;
  const kinematics = device.kinematics;
  if (kinematics === undefined) {
    cache.set(device, null);
    return undefined;
  }
  const n = device.joints.length;
  const chain = compileChain(kinematics);
  const bodyPoints: ArmBodyPoint[] =
    device.workspace?.bodyPoints.slice() ?? [...device.joints.map((j, index) => ({ name: j.name, index })), { name: 'flange', index: n }, { name: 'tcp', index: n + 1 }];
  const resolutionM = device.workspace?.resolutionM ?? DEFAULT_RESOLUTION_M;
  const velocityMaxRadPerS = new Float64Array(n);
  const brakingRadPerS2 = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const joint = device.joints[j] as ArmDeclaration['joints'][number];
    velocityMaxRadPerS[j] = Math.max(joint.velocityMaxRadPerS.normal, joint.velocityMaxRadPerS.reduced);
    const acceleration = joint.accelerationMaxRadPerS2;
    const braking = acceleration === undefined ? 0 : Math.min(acceleration.normal, acceleration.reduced);
    // SAFETY: only a positive, finite deceleration bounds a stopping distance; anything else counts as undeclared.
    brakingRadPerS2[j] = braking > 0 && Number.isFinite(braking) ? braking : 0;
  }
  const compiled: CompiledArm = {
    device,
    chain,
    pose: new ArmPose(n),
    ik: new IkSolver(chain),
    bodyPoints,
    resolutionM,
    clearanceM: (device.workspace?.marginM ?? 0) + resolutionM / 2,
    keepIn: (device.workspace?.keepIn ?? []).map((zone) => compiledShapeOf(zone.shape)),
    keepOut: (device.workspace?.keepOut ?? []).map((zone) => compiledShapeOf(zone.shape)),
    velocityMaxRadPerS,
    brakingRadPerS2,
    findings: new WorkspaceFindings(device),
    lineRates: new LineRates(chain),
    scratch: {
      q: new Float64Array(n),
      q0: new Float64Array(n),
      q1: new Float64Array(n),
      dq: new Float64Array(n),
      qPrev: new Float64Array(n),
      rate: new Float64Array(n),
      runOut: new Float64Array(n),
      zoneRoom: new Float64Array(0),
      rotation: new Float64Array(9),
      start: new Float64Array(3),
      target: new Float64Array(3),
      point: new Float64Array(3),
    },
  };
  cache.set(device, compiled);
  return compiled;
}
