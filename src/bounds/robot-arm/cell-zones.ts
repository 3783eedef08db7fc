// Where an arm is among the cell's zones, for shared-zone checks: the zones its body occupies now and the zones a
// command's swept path enters, both widened by the run-out. Whatever cannot be computed is 'unknown', never "clear".

import type { ArmDeclaration, ArmMoveJoints, ArmMoveLinear, ArmState } from '../../core/kinds/robot-arm.js';
import type { Zone } from '../../core/zones.js';
import type { KindCommand, ReleaseUnderWay } from '../kind-bounds.js';
import { compiledArm, type CompiledArm } from './compiled-arm.js';
import { forwardKinematics, type ArmPose } from './kinematics.js';
import { armRunOut } from './run-out.js';
import { sampleJointPath, sampleLinearPath, samplesProven, type SampleOutcome } from './swept-path.js';
import { compiledDistanceFor, compiledShapeOf, ROUNDING_SLACK_M, type CompiledShape } from './workspace.js';

/** One finite position per joint. */
export function validPositions(device: ArmDeclaration, positions: readonly number[]): boolean {
  if (positions.length !== device.joints.length) return false;
  for (let j = 0; j < positions.length; j++) if (!Number.isFinite(positions[j])) return false;
  return true;
}

/** A cell's zones in map order, compiled once per zones map (declarations are not changed after they are loaded). */
interface CellZones {
  readonly ids: readonly string[];
  readonly shapes: readonly CompiledShape[];
}

const cellZonesCache = new WeakMap<ReadonlyMap<string, Zone>, CellZones>();

function cellZones(zones: ReadonlyMap<string, Zone>): CellZones {
  let compiled = cellZonesCache.get(zones);
  if (compiled === undefined) {
    compiled = { ids: [...zones.keys()], shapes: [...zones.values()].map((zone) => compiledShapeOf(zone.shape)) };
    cellZonesCache.set(zones, compiled);
  }
  return compiled;
}

/**
 * Adds to `into` every cell zone that a body point of `pose` is within `clearance` of (NaN counts as inside).
 * `roomM` (zones x body points, from zoneRoom) carries, sample to sample along one path, how far each point can
 * still move before it could come within the clearance of each zone; `movedM` bounds how far every point moved
 * since the previous sample. What is provably clear is skipped, as in checkPoseWorkspace. Returns the least room
 * left for any zone not yet found (Infinity when all are found; NaN or less when none is proven).
 */
function collectZones(arm: CompiledArm, pose: ArmPose, zones: CellZones, clearance: number, into: Set<string>, roomM: Float64Array, movedM: number): number {
  const points = pose.points;
  const bodyPoints = arm.bodyPoints;
  let least = Infinity;
  for (let zoneIndex = 0; zoneIndex < zones.ids.length; zoneIndex++) {
    const id = zones.ids[zoneIndex] as string;
    if (into.has(id)) continue;
    const shape = zones.shapes[zoneIndex] as CompiledShape;
    const slots = zoneIndex * bodyPoints.length;
    // The least room of this zone's points; it counts only if the zone is not found at this sample.
    let zoneLeast = Infinity;
    let entered = false;
    for (let b = 0; b < bodyPoints.length; b++) {
      const k = (bodyPoints[b] as (typeof bodyPoints)[number]).index * 3;
      const x = points[k] as number, y = points[k + 1] as number, z = points[k + 2] as number;
      const finite = Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z);
      let room = (roomM[slots + b] as number) - movedM;
      if (!(finite && room > 0)) {
        const distance = finite ? compiledDistanceFor(shape, x, y, z, clearance) : NaN;
        // SAFETY: "not provably clear" counts as inside (so does a point that cannot be computed), so a shared zone
        // is never entered unnoticed.
        if (!(distance > clearance)) {
          into.add(id);
          entered = true;
          break;
        }
        room = distance - clearance - ROUNDING_SLACK_M;
      }
      roomM[slots + b] = room;
      if (!(room >= zoneLeast)) zoneLeast = room;
    }
    if (!entered && !(zoneLeast >= least)) least = zoneLeast;
  }
  return least;
}

/** Room for collectZones at the start of a path: unknown for every zone and body point (the arm's scratch). */
function zoneRoom(arm: CompiledArm, zones: CellZones): Float64Array {
  const size = zones.ids.length * arm.bodyPoints.length;
  if (arm.scratch.zoneRoom.length < size) arm.scratch.zoneRoom = new Float64Array(size);
  const room = arm.scratch.zoneRoom.subarray(0, size);
  room.fill(-Infinity);
  return room;
}

export function isMoving(state: ArmState): boolean {
  if (state.moving === undefined && state.velocitiesRadPerS === undefined) return true; // unknown: assume moving
  return state.moving === true || (state.velocitiesRadPerS ?? []).some((v) => v !== 0);
}

/**
 * Every zone a body point is within margin (+ the run-out of a moving arm, or of one with a release under way) of.
 * SAFETY: a run-out that cannot be bounded (a velocity that is not finite, a moving joint with no deceleration)
 * makes the place unknown.
 */
export function occupiedZones(device: ArmDeclaration, state: ArmState, zones: ReadonlyMap<string, Zone>, underWay?: ReleaseUnderWay): readonly string[] | 'unknown' {
  const arm = compiledArm(device);
  if (arm === undefined || !validPositions(device, state.positionsRad)) return 'unknown';
  const runOut = armRunOut(arm, state, underWay);
  if (!runOut.ok) return 'unknown';
  forwardKinematics(arm.chain, state.positionsRad, arm.pose);
  const found = new Set<string>();
  const compiled = cellZones(zones);
  collectZones(arm, arm.pose, compiled, (device.workspace?.marginM ?? 0) + runOut.marginM, found, zoneRoom(arm, compiled), 0);
  return [...found];
}

/**
 * Every zone the command's swept path enters, with the clearance widened by the run-out of a moving arm (with
 * `underWay`, of the arm at its declared maximum speed: the path may start anywhere within it).
 */
export function enteredZones(
  device: ArmDeclaration,
  command: KindCommand,
  state: ArmState,
  zones: ReadonlyMap<string, Zone>,
  underWay?: ReleaseUnderWay,
): readonly string[] | 'unknown' {
  const arm = compiledArm(device);
  if (arm === undefined || !validPositions(device, state.positionsRad)) return 'unknown';
  if (command.action === 'stop') return occupiedZones(device, state, zones, underWay);
  const found = new Set<string>();
  if (zones.size === 0) return [];
  const runOut = armRunOut(arm, state, underWay);
  // SAFETY: where a moving arm may be cannot be bounded, so the path may go anywhere.
  if (!runOut.ok) return 'unknown';
  const clearance = arm.clearanceM + runOut.marginM;
  const compiled = cellZones(zones);
  const room = zoneRoom(arm, compiled);
  let outcome: SampleOutcome;
  if (command.action === 'move_joints') {
    const target = (command.params as unknown as ArmMoveJoints).positionsRad;
    if (!Array.isArray(target) || !validPositions(device, target)) return 'unknown';
    outcome = sampleJointPath(arm, state.positionsRad, target, (_s, _q, pose, steps, stepM) => {
      // Measured afresh at every computed pose (as in move-joints.ts), so that the samples proven ahead are the most.
      const least = collectZones(arm, pose, compiled, clearance, found, room, Infinity);
      return found.size < zones.size ? samplesProven(least, stepM) : -1;
    });
  } else if (command.action === 'move_linear') {
    const target = (command.params as unknown as ArmMoveLinear).positionM;
    if (!Array.isArray(target) || target.length !== 3 || !target.every((v) => Number.isFinite(v))) return 'unknown';
    outcome = sampleLinearPath(arm, state.positionsRad, target, (_s, _q, pose, _qPrev, _stepM, movedM) => {
      collectZones(arm, pose, compiled, clearance, found, room, movedM);
      return found.size < zones.size;
    });
  } else {
    return 'unknown';
  }
  // SAFETY: a path that could not be sampled to its end may go anywhere.
  return outcome.ok ? [...found] : 'unknown';
}
