// Signed distances to zone shapes, worked out by hand: outside is the distance, inside minus the depth, the
// boundary 0, and any non-finite coordinate NaN (so that keep-in and keep-out checks both refuse it).

import t from 'tap';
import { signedDistance } from '../../../src/bounds/robot-arm/workspace.js';
import type { ArmZoneShape } from '../../../src/core/kinds/robot-arm.js';

const box: ArmZoneShape = { type: 'box', min: [0, 0, 0], max: [1, 2, 3] };
const sphere: ArmZoneShape = { type: 'sphere', center: [1, 1, 1], radiusM: 0.5 };
const plane: ArmZoneShape = { type: 'plane', point: [0, 0, 0.76], normal: [0, 0, 1] };
const prism: ArmZoneShape = { type: 'prism', polygon: [[0, 0], [2, 0], [2, 1], [0, 1]], zMinM: 0, zMaxM: 1 };
const tallPrism: ArmZoneShape = { type: 'prism', polygon: [[0, 0], [2, 0], [0, 2]], zMinM: -Infinity, zMaxM: Infinity };

const cases: { name: string; shape: ArmZoneShape; point: [number, number, number]; expected: number }[] = [
  { name: 'box: centre is 0.5 deep (nearest face x)', shape: box, point: [0.5, 1, 1.5], expected: -0.5 },
  { name: 'box: on a face', shape: box, point: [1, 1, 1], expected: 0 },
  { name: 'box: 0.25 outside a face', shape: box, point: [1.25, 1, 1], expected: 0.25 },
  { name: 'box: outside a corner (3-4-0 triangle)', shape: box, point: [1.3, 2.4, 3], expected: 0.5 },
  { name: 'box: -0 on the min face counts as on it', shape: box, point: [-0, 1, 1], expected: 0 },
  { name: 'sphere: centre', shape: sphere, point: [1, 1, 1], expected: -0.5 },
  { name: 'sphere: outside', shape: sphere, point: [1, 1, 2], expected: 0.5 },
  { name: 'sphere: on the surface', shape: sphere, point: [1.5, 1, 1], expected: 0 },
  { name: 'plane: 1 cm above (the allowed side)', shape: plane, point: [5, -3, 0.77], expected: 0.01 },
  { name: 'plane: on it', shape: plane, point: [0, 0, 0.76], expected: 0 },
  { name: 'plane: below (keep-out side)', shape: plane, point: [0, 0, 0.7], expected: -0.06 },
  { name: 'prism: inside, nearest is the edge y = 1', shape: prism, point: [1, 0.8, 0.5], expected: -0.2 },
  { name: 'prism: inside, nearest is the top', shape: prism, point: [1, 0.5, 0.9], expected: -0.1 },
  { name: 'prism: beside it', shape: prism, point: [3, 0.5, 0.5], expected: 1 },
  { name: 'prism: above it', shape: prism, point: [1, 0.5, 1.5], expected: 0.5 },
  { name: 'prism: beside and above (3-4-5)', shape: prism, point: [2.3, 0.5, 1.4], expected: 0.5 },
  { name: 'unbounded prism: beside the hypotenuse', shape: tallPrism, point: [2, 2, 100], expected: Math.SQRT2 },
];

t.test('signed distances worked out by hand', async (t) => {
  for (const c of cases) {
    const got = signedDistance(c.shape, ...c.point);
    t.ok(Math.abs(got - c.expected) < 1e-12, `${c.name}: ${got} vs ${c.expected}`);
  }
});

t.test('a non-finite coordinate is NaN for every shape: neither provably inside nor provably outside', async (t) => {
  for (const shape of [box, sphere, plane, prism, tallPrism]) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      t.ok(Number.isNaN(signedDistance(shape, 0.5, bad, 0.5)), `${shape.type} with ${bad}`);
    }
  }
});
