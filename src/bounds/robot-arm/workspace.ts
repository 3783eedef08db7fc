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

/**
 * Signed distance from (x, y, z) to the shape: > 0 outside (how far), <= 0 inside (minus the depth). A plane's
 * shape is the half-space its normal points away from. NaN in, NaN out.
 */
export function signedDistance(shape: ArmZoneShape, x: number, y: number, z: number): number {
  if (!(Number.isFinite(x) && Number.isFinite(y) && Number.isFinite(z))) return NaN;
  switch (shape.type) {
    case 'box': {
      const min = shape.min;
      const max = shape.max;
      const dx = Math.max(min[0] - x, x - max[0]);
      const dy = Math.max(min[1] - y, y - max[1]);
      const dz = Math.max(min[2] - z, z - max[2]);
      // Inside on every axis: the depth is the distance to the nearest face.
      if (dx <= 0 && dy <= 0 && dz <= 0) return Math.max(dx, dy, dz);
      const ox = dx > 0 ? dx : 0;
      const oy = dy > 0 ? dy : 0;
      const oz = dz > 0 ? dz : 0;
      return Math.sqrt(ox * ox + oy * oy + oz * oz);
    }
    case 'sphere': {
      const dx = x - shape.center[0];
      const dy = y - shape.center[1];
      const dz = z - shape.center[2];
      return Math.sqrt(dx * dx + dy * dy + dz * dz) - shape.radiusM;
    }
    case 'plane':
      return (x - shape.point[0]) * shape.normal[0] + (y - shape.point[1]) * shape.normal[1] + (z - shape.point[2]) * shape.normal[2];
    case 'prism': {
      const dxy = polygonSignedDistance(shape.polygon, x, y);
      const dz = Math.max(shape.zMinM - z, z - shape.zMaxM);
      if (dxy <= 0 && dz <= 0) return Math.max(dxy, dz);
      const oxy = dxy > 0 ? dxy : 0;
      const oz = dz > 0 ? dz : 0;
      return Math.sqrt(oxy * oxy + oz * oz);
    }
  }
}
