// move_linear joint accelerations where they peak at the ends of the line (issue 11, item 4): lines on the demo arm
// whose elbow needs most acceleration at s = 0 or s = 1, at a speed chosen so that an independent reference (own IK,
// fine central differences; line-reference.ts) puts that peak at 1.01 x the elbow's limit (denied, naming the
// elbow) and at 0.99 x (allowed). Backward differences between samples used to miss 1-6 % there.

import t from 'tap';
import { checkArmMoveLinear } from '../../../src/bounds/robot-arm-bounds.js';
import { compiledArm } from '../../../src/bounds/robot-arm/compiled-arm.js';
import type { ArmDeclaration, ArmState } from '../../../src/core/kinds/robot-arm.js';
import { assertReasons } from '../../helpers/assert-reasons.js';
import { makeTestCell } from '../../helpers/test-cell.js';
import { referencePeak, referenceRates, speedForPeak } from './line-reference.js';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const arm = cell.load().declarations.devices.get('arm-1') as ArmDeclaration;
const chain = compiledArm(arm)?.chain;
const ELBOW = 2;
const elbowLimit = arm.joints[ELBOW]?.accelerationMaxRadPerS2?.normal as number;
const at = (positionsRad: readonly number[]): ArmState => ({ kind: 'robot_arm', positionsRad, moving: false });
/** The commanded TCP ramp (m/s^2), within the normal limit 1.2. */
const RAMP = 1.0;
/** The reference grid step: its central differences are accurate to far better than the 1 % tested. */
const STEP_M = 2e-4;

// Found by a search over the demo arm's workspace: the elbow's need rises steeply toward one end of the line.
const cases: { name: string; from: number[]; target: number[]; end: 0 | 1 }[] = [
  { name: 'out and down toward +x', from: [-0.8, -0.898, 1.234, -2.034, -1.204, 0.052], target: [1.7728, 0.6893, 0.9108], end: 1 },
  { name: 'out toward +x, +y', from: [0.367, -0.966, 0.865, -1.933, -1.474, 0.014], target: [1.6594, 1.5264, 1.0364], end: 0 },
  { name: 'across the pick area', from: [0.472, -0.967, 0.949, -1.06, -2.247, -0.149], target: [1.5229, 1.322, 1.0189], end: 0 },
];

t.ok(chain !== undefined && elbowLimit > 0, 'the demo arm has kinematics and an elbow acceleration limit');

for (const c of cases) {
  t.test(c.name, async (t) => {
    const rates = referenceRates(chain as NonNullable<typeof chain>, c.from, c.target, STEP_M);
    t.ok(rates !== undefined, 'the reference follows the line');
    if (rates === undefined) return;
    for (const factor of [1.01, 0.99]) {
      const speed = speedForPeak(rates, ELBOW, RAMP, factor * elbowLimit, 1.5);
      const { peak, s } = referencePeak(rates, ELBOW, speed, RAMP);
      t.ok(Math.abs(peak / elbowLimit - factor) < 1e-6, `${factor} x: reference elbow peak ${peak} rad/s^2 at ${speed} m/s`);
      t.equal(s, c.end, `${factor} x: the peak is at the end s = ${c.end}`);
      const result = checkArmMoveLinear(arm, { positionM: c.target, speedMPerS: speed, accelerationMPerS2: RAMP }, at(c.from), 'normal');
      if (factor > 1) {
        assertReasons(
          t,
          result,
          [{ code: 'BOUNDS_JOINT_ACCELERATION', ruleId: 'arm-1/jointDynamics/elbow/acceleration/normal', path: '/params/speedMPerS', limit: elbowLimit, unit: 'rad/s^2' }],
          `${factor} x the limit: denied`,
        );
        t.match(result.reasons[0]?.message ?? '', /joint elbow needs/, 'the reason names the elbow');
        t.match(result.reasons[0]?.message ?? '', new RegExp(`s=${c.end}\\.000`), `and where: at s = ${c.end}`);
        // The engine's bound is at least the exact need, and adds little to it.
        const actual = result.reasons[0]?.actual ?? NaN;
        t.ok(actual >= peak * (1 - 1e-4) && actual <= peak * 1.005, `engine bound ${actual} rad/s^2 against the reference ${peak}`);
      } else {
        assertReasons(t, result, [], `${factor} x the limit: allowed`);
      }
    }
  });
}
