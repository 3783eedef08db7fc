// Exact floor geometry for the mobile robot checks: distances between points, segments and polygons (metres).
// No sampling, so nothing thin can fall between samples; a non-finite input yields NaN, never a distance.

import { polygonContains, type Vec2, type ZoneShape } from '../../core/zones.js';

/** A polygon with its bounding box, prepared once per declaration so that far-away segments are skipped cheaply. */
export interface PreparedPolygon {
  readonly points: readonly Vec2[];
  readonly xs: Float64Array;
  readonly ys: Float64Array;
  readonly minX: number;
  readonly minY: number;
  readonly maxX: number;
  readonly maxY: number;
}

export function preparePolygon(points: readonly Vec2[]): PreparedPolygon {
  const xs = new Float64Array(points.length);
  const ys = new Float64Array(points.length);
  points.forEach(([x, y], i) => {
    xs[i] = x;
    ys[i] = y;
  });
  return { points, xs, ys, minX: Math.min(...xs), minY: Math.min(...ys), maxX: Math.max(...xs), maxY: Math.max(...ys) };
}

/** Distance from point p to the segment a-b (a point when a = b). */
export function pointSegmentDistance(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  // SAFETY: one sum catches any NaN or infinite input, which would otherwise be lost in the t = 0 branch.
  if (!Number.isFinite(px + py + ax + ay + bx + by)) return NaN;
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  let cx: number;
  let cy: number;
  // The end points are taken as given rather than as a + 1 * (b - a), so a distance to a vertex is exact.
  if (!(t > 0)) {
    cx = ax;
    cy = ay;
  } else if (t >= 1) {
    cx = bx;
    cy = by;
  } else {
    cx = ax + t * dx;
    cy = ay + t * dy;
  }
  const ex = px - cx;
  const ey = py - cy;
  return Math.sqrt(ex * ex + ey * ey);
}

function orientation(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): number {
  return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
}

/** True when segments a-b and c-d cross or touch (collinear overlap included). */
export function segmentsIntersect(ax: number, ay: number, bx: number, by: number, cx: number, cy: number, dx: number, dy: number): boolean {
  const d1 = orientation(cx, cy, dx, dy, ax, ay);
  const d2 = orientation(cx, cy, dx, dy, bx, by);
  const d3 = orientation(ax, ay, bx, by, cx, cy);
  const d4 = orientation(ax, ay, bx, by, dx, dy);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  const within = (px: number, py: number, qx: number, qy: number, rx: number, ry: number): boolean =>
    Math.min(px, qx) <= rx && rx <= Math.max(px, qx) && Math.min(py, qy) <= ry && ry <= Math.max(py, qy);
  return (
    (d1 === 0 && within(cx, cy, dx, dy, ax, ay)) ||
    (d2 === 0 && within(cx, cy, dx, dy, bx, by)) ||
    (d3 === 0 && within(ax, ay, bx, by, cx, cy)) ||
    (d4 === 0 && within(ax, ay, bx, by, dx, dy))
  );
}

/**
 * Distance from the segment a-b to the polygon (0 when they touch or the segment lies inside), or Infinity when
 * the segment's box grown by `margin` misses the polygon's box (the caller only cares whether it is within margin).
 */
export function segmentPolygonDistance(ax: number, ay: number, bx: number, by: number, polygon: PreparedPolygon, margin = Infinity): number {
  // SAFETY: a non-finite coordinate has no distance; NaN makes every caller's `!(distance > limit)` fire.
  if (!(Number.isFinite(ax) && Number.isFinite(ay) && Number.isFinite(bx) && Number.isFinite(by))) return NaN;
  if (
    Math.min(ax, bx) - margin > polygon.maxX ||
    Math.max(ax, bx) + margin < polygon.minX ||
    Math.min(ay, by) - margin > polygon.maxY ||
    Math.max(ay, by) + margin < polygon.minY
  ) {
    return Infinity;
  }
  if (polygonContains(polygon.points, ax, ay)) return 0;
  const { xs, ys } = polygon;
  const n = xs.length;
  let best = Infinity;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const cx = xs[j] as number;
    const cy = ys[j] as number;
    const dx = xs[i] as number;
    const dy = ys[i] as number;
    if (segmentsIntersect(ax, ay, bx, by, cx, cy, dx, dy)) return 0;
    // Segments that do not cross are closest at an end point of one of them.
    best = Math.min(
      best,
      pointSegmentDistance(cx, cy, ax, ay, bx, by),
      pointSegmentDistance(ax, ay, cx, cy, dx, dy),
      pointSegmentDistance(bx, by, cx, cy, dx, dy),
    );
  }
  return best;
}

/** A cell zone seen from above: the robot is a vertical cylinder, so a zone's height band is ignored (fail safe). */
export type FloorShape = { readonly type: 'polygon'; readonly polygon: PreparedPolygon } | { readonly type: 'circle'; readonly x: number; readonly y: number; readonly radiusM: number };

export function floorShapeOf(shape: ZoneShape): FloorShape {
  switch (shape.type) {
    case 'prism':
      return { type: 'polygon', polygon: preparePolygon(shape.polygon) };
    case 'box':
      return {
        type: 'polygon',
        polygon: preparePolygon([
          [shape.min[0], shape.min[1]],
          [shape.max[0], shape.min[1]],
          [shape.max[0], shape.max[1]],
          [shape.min[0], shape.max[1]],
        ]),
      };
    case 'sphere':
      return { type: 'circle', x: shape.center[0], y: shape.center[1], radiusM: shape.radiusM };
  }
}

/** Distance from the segment a-b to the floor shape (0 when touching or inside); NaN for non-finite input. */
export function segmentShapeDistance(ax: number, ay: number, bx: number, by: number, shape: FloorShape, margin = Infinity): number {
  if (shape.type === 'polygon') return segmentPolygonDistance(ax, ay, bx, by, shape.polygon, margin);
  return Math.max(0, pointSegmentDistance(shape.x, shape.y, ax, ay, bx, by) - shape.radiusM);
}
