// An independent ground truth for mobile-robot paths: reads the device YAML itself and samples the footprint densely
// along each segment with its own geometry. It must never import src/ (so an engine bug cannot hide in it). Not a test file.

import { parse } from 'yaml';

type Point = readonly [number, number];

interface OracleArea {
  readonly id: string;
  readonly points: readonly Point[];
}

export interface OracleRobot {
  readonly radiusM: number;
  readonly maxStateAgeS: number;
  readonly brakingMPerS2: number;
  readonly maxGoalM: number;
  readonly speed: { readonly normal: number; readonly reduced: number };
  readonly keepOut: readonly OracleArea[];
  readonly zones: readonly (OracleArea & { readonly normal: number; readonly reduced: number })[];
}

// Only the units the property test's YAML uses; anything else stops the test rather than being guessed.
const METRES: Record<string, number> = { m: 1, cm: 0.01, mm: 0.001 };
const SECONDS: Record<string, number> = { s: 1, ms: 0.001 };

function factor(table: Record<string, number>, unit: string): number {
  const f = table[unit];
  if (f === undefined) throw new Error(`oracle does not know unit ${unit}`);
  return f;
}

interface YamlLimit {
  max?: number;
  normal?: number;
  reduced?: number;
  unit: string;
}

function modeLimit(limit: YamlLimit): { normal: number; reduced: number } {
  if (limit.unit !== 'm/s') throw new Error(`oracle expects m/s, got ${limit.unit}`);
  return limit.max !== undefined ? { normal: limit.max, reduced: limit.max } : { normal: limit.normal as number, reduced: limit.reduced as number };
}

export function readRobot(yamlText: string): OracleRobot {
  const doc = parse(yamlText) as {
    maxStateAge: { value: number; unit: string };
    footprint: { radius: number; unit: string };
    limits: { linearSpeed: YamlLimit; maxGoalDistance: { value: number; unit: string } };
    keepOut: { id: string; polygon: { points: [number, number][]; unit: string } }[];
    speedZones: { id: string; polygon: { points: [number, number][]; unit: string }; maxSpeed: YamlLimit }[];
    separation: { brakingDeceleration: { value: number; unit: string } };
  };
  const polygon = (p: { points: [number, number][]; unit: string }): Point[] => p.points.map(([x, y]) => [x * factor(METRES, p.unit), y * factor(METRES, p.unit)] as const);
  if (doc.separation.brakingDeceleration.unit !== 'm/s^2') throw new Error('oracle expects m/s^2');
  return {
    radiusM: doc.footprint.radius * factor(METRES, doc.footprint.unit),
    maxStateAgeS: doc.maxStateAge.value * factor(SECONDS, doc.maxStateAge.unit),
    brakingMPerS2: doc.separation.brakingDeceleration.value,
    maxGoalM: doc.limits.maxGoalDistance.value * factor(METRES, doc.limits.maxGoalDistance.unit),
    speed: modeLimit(doc.limits.linearSpeed),
    keepOut: doc.keepOut.map((a) => ({ id: a.id, points: polygon(a.polygon) })),
    zones: doc.speedZones.map((z) => ({ id: z.id, points: polygon(z.polygon), ...modeLimit(z.maxSpeed) })),
  };
}

function inside(points: readonly Point[], x: number, y: number): boolean {
  let odd = false;
  for (let i = 0; i < points.length; i++) {
    const [x1, y1] = points[i] as Point;
    const [x2, y2] = points[(i + 1) % points.length] as Point;
    if (y1 > y !== y2 > y && x < x1 + ((y - y1) / (y2 - y1)) * (x2 - x1)) odd = !odd;
  }
  return odd;
}

function toEdge(x: number, y: number, [x1, y1]: Point, [x2, y2]: Point): number {
  const ex = x2 - x1;
  const ey = y2 - y1;
  const s = Math.max(0, Math.min(1, ((x - x1) * ex + (y - y1) * ey) / (ex * ex + ey * ey)));
  return Math.hypot(x - (x1 + s * ex), y - (y1 + s * ey));
}

/** Distance from a point to a filled polygon (0 inside). */
export function distanceToArea(points: readonly Point[], x: number, y: number): number {
  if (inside(points, x, y)) return 0;
  let best = Infinity;
  for (let i = 0; i < points.length; i++) best = Math.min(best, toEdge(x, y, points[i] as Point, points[(i + 1) % points.length] as Point));
  return best;
}

/** The smallest sampled distance from the path's centre line to the area, minus each sample's footprint radius. */
export interface Sampled {
  /** min over samples of (distance to area - radius there): > 0 means the footprint stays clear at every sample. */
  readonly clearanceM: number;
}

/**
 * Samples every segment from `start` through `waypoints` every `stepM` (ends included). The first segment's
 * radius grows by the run-out of a robot moving at `speedNow` (state age at that speed, then braking): the
 * documented model, recomputed here.
 */
export function sampleClearance(robot: OracleRobot, area: readonly Point[], start: Point, waypoints: readonly Point[], speedNow: number, stepM: number): Sampled {
  const v = Math.abs(speedNow);
  const runOut = v * robot.maxStateAgeS + (v * v) / (2 * robot.brakingMPerS2);
  let clearance = Infinity;
  let from = start;
  waypoints.forEach((to, k) => {
    const radius = robot.radiusM + (k === 0 ? runOut : 0);
    const length = Math.hypot(to[0] - from[0], to[1] - from[1]);
    const n = Math.max(1, Math.ceil(length / stepM));
    for (let i = 0; i <= n; i++) {
      const s = i / n;
      const x = from[0] + s * (to[0] - from[0]);
      const y = from[1] + s * (to[1] - from[1]);
      clearance = Math.min(clearance, distanceToArea(area, x, y) - radius);
    }
    from = to;
  });
  return { clearanceM: clearance };
}
