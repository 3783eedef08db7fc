// Named regions of the cell, in the cell frame (metres, z up): boxes, spheres and vertical prisms over a polygon.
// Plain data plus the one containment test every check shares; a point exactly on a boundary is inside.

export type Vec3 = readonly [number, number, number];
export type Vec2 = readonly [number, number];

export type ZoneShape =
  | { readonly type: 'box'; readonly min: Vec3; readonly max: Vec3 }
  | { readonly type: 'sphere'; readonly center: Vec3; readonly radiusM: number }
  /** A vertical prism: the polygon (x, y) between zMin and zMax (unbounded when omitted). */
  | { readonly type: 'prism'; readonly polygon: readonly Vec2[]; readonly zMinM: number; readonly zMaxM: number };

export interface Zone {
  readonly id: string;
  readonly shape: ZoneShape;
}

/** True when the point lies in the polygon (even-odd rule) or on its boundary. */
export function polygonContains(polygon: readonly Vec2[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i] as Vec2;
    const [xj, yj] = polygon[j] as Vec2;
    // On an edge counts as inside: a boundary is part of a keep-out region.
    const cross = (x - xi) * (yj - yi) - (y - yi) * (xj - xi);
    if (Math.abs(cross) <= 1e-12 && x >= Math.min(xi, xj) - 1e-12 && x <= Math.max(xi, xj) + 1e-12 && y >= Math.min(yi, yj) - 1e-12 && y <= Math.max(yi, yj) + 1e-12) {
      return true;
    }
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/**
 * True when the point is inside the shape. A point with a non-finite coordinate is reported inside, so that a
 * check asking "is it in a keep-out zone?" fails closed; callers asking "is it inside a keep-in zone?" must use
 * zoneContainsStrict.
 */
export function zoneContains(shape: ZoneShape, point: Vec3): boolean {
  if (!point.every(Number.isFinite)) return true;
  return zoneContainsStrict(shape, point);
}

/** Like zoneContains, but a non-finite point is outside (for keep-in checks, where outside means deny). */
export function zoneContainsStrict(shape: ZoneShape, point: Vec3): boolean {
  const [x, y, z] = point;
  if (!point.every(Number.isFinite)) return false;
  switch (shape.type) {
    case 'box':
      return x >= shape.min[0] && x <= shape.max[0] && y >= shape.min[1] && y <= shape.max[1] && z >= shape.min[2] && z <= shape.max[2];
    case 'sphere': {
      const dx = x - shape.center[0];
      const dy = y - shape.center[1];
      const dz = z - shape.center[2];
      return dx * dx + dy * dy + dz * dz <= shape.radiusM * shape.radiusM;
    }
    case 'prism':
      return z >= shape.zMinM && z <= shape.zMaxM && polygonContains(shape.polygon, x, y);
  }
}
