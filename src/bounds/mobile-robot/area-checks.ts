// Checks of a mobile robot's swept footprint against floor areas: keep-out polygons, speed zones, people (speed and
// separation) and the cell's zones. Exact segment geometry; every comparison is written so that NaN denies. What the
// box around the whole widened path misses is skipped with the same answer.

import type { Mode, Zone } from '../../core/declarations.js';
import { limitIn, type ModeLimit } from '../../core/kinds/kind-spec.js';
import type { MobileRobotDeclaration } from '../../core/kinds/mobile-robot.js';
import { reason, type Reason } from '../../core/reasons.js';
import type { PeopleView } from '../people.js';
import { floorShapeOf, pointSegmentDistance, preparePolygon, segmentPolygonDistance, segmentShapeDistance, type FloorShape, type PreparedPolygon } from './geometry.js';
import type { Motion } from './motion.js';
import { protectiveSeparation } from './separation.js';

interface PreparedArea {
  readonly id: string;
  readonly polygon: PreparedPolygon;
}
interface PreparedSpeedZone extends PreparedArea {
  readonly maxSpeedMPerS: ModeLimit;
}
interface PreparedRobot {
  readonly keepOut: readonly PreparedArea[];
  readonly speedZones: readonly PreparedSpeedZone[];
}

// Derived once per loaded declaration (declarations are immutable), so the request path only evaluates.
const preparedRobots = new WeakMap<MobileRobotDeclaration, PreparedRobot>();
const preparedZones = new WeakMap<Zone, FloorShape>();

function prepared(device: MobileRobotDeclaration): PreparedRobot {
  let robot = preparedRobots.get(device);
  if (robot === undefined) {
    robot = {
      keepOut: device.keepOut.map((area) => ({ id: area.id, polygon: preparePolygon(area.polygon) })),
      speedZones: device.speedZones.map((zone) => ({ id: zone.id, polygon: preparePolygon(zone.polygon), maxSpeedMPerS: zone.maxSpeedMPerS })),
    };
    preparedRobots.set(device, robot);
  }
  return robot;
}

function floorShape(zone: Zone): FloorShape {
  let shape = preparedZones.get(zone);
  if (shape === undefined) {
    shape = floorShapeOf(zone.shape);
    preparedZones.set(zone, shape);
  }
  return shape;
}

/** The widened radius of segment k: the footprint, plus the run-out on the first segment. */
function inflation(device: MobileRobotDeclaration, motion: Motion, segment: number): number {
  return segment === 0 ? device.footprintRadiusM + motion.firstExtraM : device.footprintRadiusM;
}

/**
 * The box around the whole centre line, grown by the widest inflation: no segment's widened footprint reaches
 * outside it. All NaN when a coordinate or the inflation is not finite (then it proves nothing).
 */
interface PathBox {
  readonly minX: number;
  readonly minY: number;
  readonly maxX: number;
  readonly maxY: number;
}

const NO_BOX: PathBox = Object.freeze({ minX: NaN, minY: NaN, maxX: NaN, maxY: NaN });

function pathBox(device: MobileRobotDeclaration, motion: Motion): PathBox {
  const grow = device.footprintRadiusM + Math.max(0, motion.firstExtraM);
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  const count = Math.min(motion.segmentCount + 1, motion.xs.length);
  for (let i = 0; i < count; i++) {
    const x = motion.xs[i] as number;
    const y = motion.ys[i] as number;
    if (!(Number.isFinite(x) && Number.isFinite(y))) return NO_BOX;
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  // SAFETY: a NaN or infinite inflation (or no point at all) gives a box that proves nothing.
  if (!(Number.isFinite(grow) && count > 0)) return NO_BOX;
  return { minX: minX - grow, minY: minY - grow, maxX: maxX + grow, maxY: maxY + grow };
}

/**
 * True when the grown path box misses the polygon's box: then every segment's own box, grown by its (smaller)
 * inflation, misses it too, which is where segmentPolygonDistance answers Infinity (not touching) without the
 * polygon. The same strict comparisons, so the answer is the same; NaN never misses.
 */
function missesPolygon(box: PathBox, polygon: PreparedPolygon): boolean {
  return box.minX > polygon.maxX || box.maxX < polygon.minX || box.minY > polygon.maxY || box.maxY < polygon.minY;
}

/**
 * How far the point is from the grown path box (0 inside, NaN when the box proves nothing). The box holds the
 * path's points grown by a disc of the widest inflation, so no widened footprint comes closer to the point.
 */
function distanceFromBox(box: PathBox, x: number, y: number): number {
  const dx = Math.max(box.minX - x, 0, x - box.maxX);
  const dy = Math.max(box.minY - y, 0, y - box.maxY);
  return Math.sqrt(dx * dx + dy * dy);
}

/** Slack for rounding when a person is proven clear of the whole path by its box (see separationReasons). */
const BOX_SLACK_M = 1e-9;

interface Touch {
  readonly segment: number;
  /** Distance from the centre line to the area (NaN when it could not be computed). */
  readonly distanceM: number;
  readonly limitM: number;
  readonly count: number;
}

/** The first segment whose widened footprint touches the polygon, and how many do; undefined when none does. */
function firstTouch(device: MobileRobotDeclaration, motion: Motion, polygon: PreparedPolygon, box: PathBox): Touch | undefined {
  if (missesPolygon(box, polygon)) return undefined;
  let first: Touch | undefined;
  let count = 0;
  for (let k = 0; k < motion.segmentCount; k++) {
    const b = Math.min(k + 1, motion.xs.length - 1);
    const limitM = inflation(device, motion, k);
    const distanceM = segmentPolygonDistance(motion.xs[k] as number, motion.ys[k] as number, motion.xs[b] as number, motion.ys[b] as number, polygon, limitM);
    // SAFETY: touching (distance exactly the radius) counts, the boundary is part of the area; NaN counts too.
    if (!(distanceM > limitM)) {
      count++;
      first ??= { segment: k, distanceM, limitM, count: 0 };
    }
  }
  return first === undefined ? undefined : { ...first, count };
}

function segmentsText(touch: Touch): string {
  return touch.count > 1 ? ` (${touch.count} segments in all)` : '';
}

export function keepOutReasons(device: MobileRobotDeclaration, motion: Motion): Reason[] {
  const reasons: Reason[] = [];
  const box = pathBox(device, motion);
  for (const area of prepared(device).keepOut) {
    const touch = firstTouch(device, motion, area.polygon, box);
    if (touch === undefined) continue;
    reasons.push(
      reason(
        'BOUNDS_KEEP_OUT_AREA',
        `${motion.describe(touch.segment)} comes within ${touch.distanceM} m of keep-out area ${area.id}; the footprint needs more than ${touch.limitM} m${segmentsText(touch)}`,
        { ruleId: `${device.id}/keepOut/${area.id}`, path: motion.pointer(touch.segment), limit: touch.limitM, actual: touch.distanceM, unit: 'm' },
      ),
    );
  }
  return reasons;
}

export function speedZoneReasons(device: MobileRobotDeclaration, motion: Motion, mode: Mode): Reason[] {
  const reasons: Reason[] = [];
  const speed = motion.commandedSpeedMPerS;
  const box = pathBox(device, motion);
  for (const zone of prepared(device).speedZones) {
    const limit = limitIn(zone.maxSpeedMPerS, mode);
    // SAFETY: only a speed proven within the zone's limit skips the geometry; NaN does not.
    if (speed <= limit) continue;
    const touch = firstTouch(device, motion, zone.polygon, box);
    if (touch === undefined) continue;
    reasons.push(
      reason('BOUNDS_SPEED_ZONE', `${motion.describe(touch.segment)} enters speed zone ${zone.id} at ${speed} m/s; its ${mode} limit is ${limit} m/s${segmentsText(touch)}`, {
        ruleId: `${device.id}/speedZones/${zone.id}/${mode}`,
        path: motion.pointer(touch.segment),
        limit,
        actual: speed,
        unit: 'm/s',
      }),
    );
  }
  return reasons;
}

/**
 * Speed and separation: each reported person must be at least S_p (for the fastest speed of the command) from the
 * edge of the widened footprint along the whole motion. Unknown people deny any command that moves.
 */
export function separationReasons(device: MobileRobotDeclaration, motion: Motion, people: PeopleView): Reason[] {
  const ruleId = `${device.id}/separation`;
  if (!people.known) {
    return [
      reason('BOUNDS_PEOPLE_UNKNOWN', `people in the cell are unknown (${people.why}); a moving command cannot be checked for separation`, { ruleId, path: motion.pointer(0) }),
    ];
  }
  const terms = protectiveSeparation(device.separation, motion.peakSpeedMPerS);
  const requiredM = terms.totalM;
  const reasons: Reason[] = [];
  const box = pathBox(device, motion);
  people.positions.forEach((person, index) => {
    const [px, py] = person;
    let clearanceM = Infinity;
    let closest = 0;
    // SAFETY: a person at NaN or Infinity is somewhere unknown: reported as a violation, never skipped.
    if (!(Number.isFinite(px) && Number.isFinite(py))) clearanceM = NaN;
    // Farther from the grown box than S_p (plus rounding slack): every segment's clearance is at least that, so
    // this person gives no reason and the segments need not be measured. NaN (a box proving nothing) measures them.
    else if (distanceFromBox(box, px, py) - BOX_SLACK_M >= requiredM) return;
    else {
      for (let k = 0; k < motion.segmentCount; k++) {
        const b = Math.min(k + 1, motion.xs.length - 1);
        const c = pointSegmentDistance(px, py, motion.xs[k] as number, motion.ys[k] as number, motion.xs[b] as number, motion.ys[b] as number) - inflation(device, motion, k);
        if (!(c >= clearanceM)) {
          clearanceM = c;
          closest = k;
        }
      }
    }
    if (!(clearanceM >= requiredM)) {
      reasons.push(
        reason(
          'BOUNDS_SEPARATION',
          `person ${index} at (${px}, ${py}) would be ${clearanceM} m from the footprint on ${motion.describe(closest)}; S_p at ${terms.robotSpeedMPerS} m/s is ${requiredM} m ` +
            `(S_h ${terms.humanM} + S_r ${terms.reactionM} + S_s ${terms.stoppingM} + C ${terms.intrusionM} + Z_d ${terms.sensorM} + Z_r ${terms.robotM})`,
          { ruleId, path: motion.pointer(closest), limit: requiredM, actual: clearanceM, unit: 'm' },
        ),
      );
    }
  });
  return reasons;
}

/** The ids of the cell zones the widened footprint touches anywhere along the motion (the robot as a vertical cylinder). */
export function zonesTouched(device: MobileRobotDeclaration, motion: Motion, zones: ReadonlyMap<string, Zone>): string[] {
  const touched: string[] = [];
  const box = pathBox(device, motion);
  for (const [id, zone] of zones) {
    const shape = floorShape(zone);
    if (shape.type === 'polygon' && missesPolygon(box, shape.polygon)) continue;
    for (let k = 0; k < motion.segmentCount; k++) {
      const b = Math.min(k + 1, motion.xs.length - 1);
      const limitM = inflation(device, motion, k);
      const distanceM = segmentShapeDistance(motion.xs[k] as number, motion.ys[k] as number, motion.xs[b] as number, motion.ys[b] as number, shape, limitM);
      // SAFETY: NaN (a pose or target that is not a number) counts as touching: fail closed for shared zones.
      if (!(distanceM > limitM)) {
        touched.push(id);
        break;
      }
    }
  }
  return touched;
}
