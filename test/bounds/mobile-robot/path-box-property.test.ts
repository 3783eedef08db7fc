// The mobile robot's area checks now skip an area, zone or person that the box around the whole widened path
// misses (issue 15). That may never change a reason: random paths, go_to, set_velocity and stop of the test robots,
// with people placed at about S_p from a random waypoint, must give exactly the reasons and touched zones of
// area-checks-reference.ts, which measures every segment.

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import { keepOutReasons, separationReasons, speedZoneReasons, zonesTouched } from '../../../src/bounds/mobile-robot/area-checks.js';
import { motionOf } from '../../../src/bounds/mobile-robot/motion.js';
import { protectiveSeparation } from '../../../src/bounds/mobile-robot/separation.js';
import type { Mode } from '../../../src/core/kinds/kind-spec.js';
import type { PeopleView } from '../../../src/bounds/people.js';
import * as reference from './area-checks-reference.js';
import { loadMobileCell, robotState } from './fixtures.js';

const { loaded, amr, amrS, amrP, amr2 } = loadMobileCell(t);
const robots = [amr, amrS, amrP, amr2];
const zones = loaded.declarations.zones;

const coordinate = fc.double({ min: -8, max: 10, noNaN: true });
const point = fc.tuple(coordinate, coordinate);
const nearly = fc.oneof(fc.constantFrom(0, 1e-9, -1e-9, 1e-12, -1e-12), fc.double({ min: -0.01, max: 0.01, noNaN: true }), fc.double({ min: -1, max: 3, noNaN: true }));

const cases = fc.record({
  robot: fc.integer({ min: 0, max: robots.length - 1 }),
  start: point,
  v: fc.oneof(fc.constant(0), fc.double({ min: -1, max: 1, noNaN: true })),
  action: fc.constantFrom('follow_path', 'go_to', 'set_velocity', 'stop'),
  waypoints: fc.array(point, { minLength: 1, maxLength: 30 }),
  speed: fc.double({ min: 0.05, max: 1.2, noNaN: true }),
  mode: fc.constantFrom<Mode>('normal', 'reduced'),
  // People near one waypoint, about S_p plus the footprint away from it, and anywhere.
  near: fc.array(fc.record({ at: fc.nat(), angle: fc.double({ min: 0, max: 2 * Math.PI, noNaN: true }), off: nearly }), { maxLength: 3 }),
  anywhere: fc.array(point, { maxLength: 2 }),
});

t.test('property: the path-box early-outs give the reasons and touched zones of measuring every segment', async (t) => {
  let compared = 0;
  let withReasons = 0;
  let separation = 0;
  fc.assert(
    fc.property(cases, (c) => {
      const device = robots[c.robot] as (typeof robots)[number];
      const state = robotState({ x: c.start[0], y: c.start[1], v: c.v });
      const params =
        c.action === 'follow_path'
          ? { waypoints: c.waypoints, speedMPerS: c.speed }
          : c.action === 'go_to'
            ? { xM: c.waypoints[0]?.[0], yM: c.waypoints[0]?.[1], speedMPerS: c.speed }
            : c.action === 'set_velocity'
              ? { linearMPerS: c.speed, angularRadPerS: 0.1, durationMs: 500 }
              : {};
      const built = motionOf(device, c.action, params, state);
      if (built === undefined || !built.ok) return true;
      const motion = built.motion;
      const requiredM = protectiveSeparation(device.separation, motion.peakSpeedMPerS).totalM;
      const positions = [
        ...c.near.map(({ at, angle, off }) => {
          const i = at % motion.xs.length;
          const r = device.footprintRadiusM + requiredM + off;
          return [(motion.xs[i] as number) + r * Math.cos(angle), (motion.ys[i] as number) + r * Math.sin(angle), 0] as const;
        }),
        ...c.anywhere.map(([x, y]) => [x, y, 0] as const),
      ];
      const people: PeopleView = { known: true, positions };
      const got = [...keepOutReasons(device, motion), ...speedZoneReasons(device, motion, c.mode), ...separationReasons(device, motion, people)];
      const want = [...reference.keepOutReasons(device, motion), ...reference.speedZoneReasons(device, motion, c.mode), ...reference.separationReasons(device, motion, people)];
      compared += 1;
      if (want.length > 0) withReasons += 1;
      separation += want.filter((r) => r.code === 'BOUNDS_SEPARATION').length;
      return isDeepStrictEqual(got, want) && isDeepStrictEqual(zonesTouched(device, motion, zones), reference.zonesTouched(device, motion, zones));
    }),
    { numRuns: 1500, seed: 20261207 },
  );
  t.ok(compared >= 1000, `${compared} motions compared`);
  t.ok(withReasons > compared / 10 && withReasons < compared, `${withReasons} of them gave reasons, the others none`);
  t.ok(separation > 100, `people near S_p were found too close (${separation} times) and not`);
});
