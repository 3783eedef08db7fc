// Signed distance from a point to a zone shape (box, sphere, prism, half-space): positive outside, negative inside.
// Exact for every shape, so clearances mean what they say; a non-finite point gives NaN, which every check refuses.

import type { ArmZoneShape } from '../../core/kinds/robot-arm.js';
import { polygonContains, type Vec2 } from '../../core/zones.js';

/** Distance from (x, y) to the segment a-b. */
function segmentDistance(x: number, y: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const lengthSquared = dx * dx + dy * dy;
  let t = lengthSquared > 0 ? ((x - ax) * dx + (y - ay) * dy) / lengthSquared : 0;
  if (t < 0) t = 0;
  else if (t > 1) t = 1;
  const ex = x - (ax + t * dx);
  const ey = y - (ay + t * dy);
  return Math.sqrt(ex * ex + ey * ey);
}

/** Signed distance in the floor plane: negative inside the polygon (minus the distance to its nearest edge). */
function polygonSignedDistance(polygon: readonly Vec2[], x: number, y: number): number {
  let nearest = Infinity;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [ax, ay] = polygon[j] as Vec2;
    const [bx, by] = polygon[i] as Vec2;
    const distance = segmentDistance(x, y, ax, ay, bx, by);
    if (distance < nearest) nearest = distance;
  }
  return polygonContains(polygon, x, y) ? -nearest : nearest;
}

function boxDistance(x: number, y: number, z: number, minX: number, minY: number, minZ: number, maxX: number, maxY: number, maxZ: number): number {
  const dx = Math.max(minX - x, x - maxX);
  const dy = Math.max(minY - y, y - maxY);
  const dz = Math.max(minZ - z, z - maxZ);
  // Inside on every axis: the depth is the distance to the nearest face.
  if (dx <= 0 && dy <= 0 && dz <= 0) return Math.max(dx, dy, dz);
  const ox = dx > 0 ? dx : 0;
  const oy = dy > 0 ? dy : 0;
  const oz = dz > 0 ? dz : 0;
  return Math.sqrt(ox * ox + oy * oy + oz * oz);
}

function sphereDistance(x: number, y: number, z: number, cx: number, cy: number, cz: number, radiusM: number): number {
  const dx = x - cx;
  const dy = y - cy;
  const dz = z - cz;
  return Math.sqrt(dx * dx + dy * dy + dz * dz) - radiusM;
}

function planeDistance(x: number, y: number, z: number, px: number, py: number, pz: number, nx: number, ny: number, nz: number): number {
  return (x - px) * nx + (y - py) * ny + (z - pz) * nz;
}

function prismDistance(polygon: readonly Vec2[], zMinM: number, zMaxM: number, x: number, y: number, z: number): number {
  const dxy = polygonSignedDistance(polygon, x, y);
  const dz = Math.max(zMinM - z, z - zMaxM);
  if (dxy <= 0 && dz <= 0) return Math.max(dxy, dz);
  const oxy = dxy > 0 ? dxy : 0;
  const oz = dz > 0 ? dz : 0;
  return Math.sqrt(oxy * oxy + oz * oz);
}

/**
 * Signed distance from (x, y, z) to the shape: > 0 outside (how far), <= 0 inside (minus the depth). A plane's
 * shape is the half-space its normal points away from. NaN in, NaN out.
 */
export function signedDistance(shape: ArmZoneShape, x: number, y: number, z: number): number {
  if (!(Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z))) return NaN;
  switch (shape.type) {
    case 'box':
      return boxDistance(x, y, z, shape.min[0], shape.min[1], shape.min[2], shape.max[0], shape.max[1], shape.max[2]);
    case 'sphere':
      return sphereDistance(x, y, z, shape.center[0], shape.center[1], shape.center[2], shape.radiusM);
    case 'plane':
      return planeDistance(x, y, z, shape.point[0], shape.point[1], shape.point[2], shape.normal[0], shape.normal[1], shape.normal[2]);
    case 'prism':
      return prismDistance(shape.polygon, shape.zMinM, shape.zMaxM, x, y, z);
  }
}

const BOX = 0;
const SPHERE = 1;
const PLANE = 2;
const PRISM = 3;

/**
 * A shape flattened once at load (one object layout for every kind of shape, so the per-sample loop reads its
 * numbers without looking up differently shaped objects). Distances equal signedDistance's exactly.
 */
export interface CompiledShape {
  readonly kind: number;
  /**
   * box: min xyz, max xyz; sphere: centre xyz, radius; plane: point xyz, normal xyz; prism: zMin, zMax, then the
   * box around it (min xyz, max xyz), which no point of the prism lies outside.
   */
  readonly v: Float64Array;
  readonly polygon: readonly Vec2[];
}

export function compileShape(shape: ArmZoneShape): CompiledShape {
  switch (shape.type) {
    case 'box':
      return { kind: BOX, v: Float64Array.of(...shape.min, ...shape.max), polygon: [] };
    case 'sphere':
      return { kind: SPHERE, v: Float64Array.of(...shape.center, shape.radiusM), polygon: [] };
    case 'plane':
      return { kind: PLANE, v: Float64Array.of(...shape.point, ...shape.normal), polygon: [] };
    case 'prism': {
      const xs = shape.polygon.map((p) => p[0]);
      const ys = shape.polygon.map((p) => p[1]);
      const around = [Math.min(...xs), Math.min(...ys), shape.zMinM, Math.max(...xs), Math.max(...ys), shape.zMaxM];
      return { kind: PRISM, v: Float64Array.of(shape.zMinM, shape.zMaxM, ...around), polygon: shape.polygon };
    }
  }
}

const compiledShapes = new WeakMap<ArmZoneShape, CompiledShape>();

/** compileShape, once per shape object (declarations are not changed after they are loaded). */
export function compiledShapeOf(shape: ArmZoneShape): CompiledShape {
  let compiled = compiledShapes.get(shape);
  if (compiled === undefined) {
    compiled = compileShape(shape);
    compiledShapes.set(shape, compiled);
  }
  return compiled;
}

/**
 * Slack for rounding: far more than the rounding of any distance or step bound here (about 1e-15 m per operation,
 * under 1e-11 m over a whole path), far less than any clearance that matters.
 */
export const ROUNDING_SLACK_M = 1e-9;

/**
 * The point's (already found finite) distance to the shape for a test against `clearanceM`: compiledDistance, except
 * that a point more than clearance + slack from the box around a prism gets its distance to that box, a lower bound
 * (the prism lies inside the box), without the polygon. So the result is > clearanceM exactly when the distance is,
 * it is the exact distance whenever it is not, and it never exceeds the exact distance.
 */
export function compiledDistanceFor(shape: CompiledShape, x: number, y: number, z: number, clearanceM: number): number {
  if (shape.kind === PRISM) {
    const v = shape.v;
    const boxM = boxDistance(x, y, z, v[2] as number, v[3] as number, v[4] as number, v[5] as number, v[6] as number, v[7] as number);
    if (boxM > clearanceM + ROUNDING_SLACK_M) return boxM;
  }
  return compiledDistance(shape, x, y, z);
}

/** signedDistance for a compiled shape and a point the caller has already found finite. */
export function compiledDistance(shape: CompiledShape, x: number, y: number, z: number): number {
  const v = shape.v;
  switch (shape.kind) {
    case BOX:
      return boxDistance(x, y, z, v[0] as number, v[1] as number, v[2] as number, v[3] as number, v[4] as number, v[5] as number);
    case SPHERE:
      return sphereDistance(x, y, z, v[0] as number, v[1] as number, v[2] as number, v[3] as number);
    case PLANE:
      return planeDistance(x, y, z, v[0] as number, v[1] as number, v[2] as number, v[3] as number, v[4] as number, v[5] as number);
    case PRISM:
      return prismDistance(shape.polygon, v[0] as number, v[1] as number, x, y, z);
    default:
      return NaN; // SAFETY: a shape this code does not know is never clear of anything.
  }
}
