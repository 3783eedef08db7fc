// Property: whenever the bounds stage allows a short move_linear of the demo arm, an independent estimate of every
// joint's peak acceleration along it (own IK, dense central differences; line-reference.ts) is within the joint's
// limit. Half the runs take a speed near where the reference says the busiest joint reaches its limit, so the
// allows tested include lines close to the boundary, where the ends of the line used to be underestimated.

import fc from 'fast-check';
import t from 'tap';
import { checkArmMoveLinear } from '../../../src/bounds/robot-arm-bounds.js';
import { compiledArm } from '../../../src/bounds/robot-arm/compiled-arm.js';
import { ArmPose, forwardKinematics } from '../../../src/bounds/robot-arm/kinematics.js';
import type { ArmDeclaration } from '../../../src/core/kinds/robot-arm.js';
import { makeTestCell } from '../../helpers/test-cell.js';
import { referencePeak, referenceRates, speedForPeak, type ReferenceRates } from './line-reference.js';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const arm = cell.load().declarations.devices.get('arm-1') as ArmDeclaration;
const chain = compiledArm(arm)?.chain as NonNullable<ReturnType<typeof compiledArm>>['chain'];
const limits = arm.joints.map((j) => j.accelerationMaxRadPerS2?.normal as number);
/** The reference grid step (m), and what its central differences may be off by: the allowed overshoot. */
const STEP_M = 5e-4;
const TOLERANCE = 2e-3;
const WORK = [0, -1.571, 1.571, -1.571, -1.571, 0];
const pose = new ArmPose(6);

/** The joint whose reference peak over its limit is largest at this speed, and that ratio. */
function busiest(rates: ReferenceRates, speed: number, ramp: number): { joint: number; ratio: number } {
  let joint = 0;
  let ratio = -Infinity;
  limits.forEach((limit, j) => {
    const r = referencePeak(rates, j, speed, ramp).peak / limit;
    if (r > ratio) {
      ratio = r;
      joint = j;
    }
  });
  return { joint, ratio };
}

t.test('an allowed move_linear never needs more joint acceleration than the limits, by an independent estimate', async (t) => {
  let allowed = 0;
  let nearLimit = 0;
  let denied = 0;
  let unfollowed = 0;
  const offsets = fc.array(fc.double({ min: -0.8, max: 0.8, noNaN: true }), { minLength: 6, maxLength: 6 });
  const direction = fc.tuple(fc.double({ min: -1, max: 1, noNaN: true }), fc.double({ min: -1, max: 1, noNaN: true }), fc.double({ min: -1, max: 1, noNaN: true }));
  const speedChoice = fc.oneof(fc.record({ near: fc.constant(true), value: fc.double({ min: 0.97, max: 1.03, noNaN: true }) }), fc.record({ near: fc.constant(false), value: fc.double({ min: 0.02, max: 1.5, noNaN: true }) }));
  fc.assert(
    fc.property(offsets, direction, fc.double({ min: 0.01, max: 0.15, noNaN: true }), speedChoice, fc.double({ min: 0.1, max: 1.2, noNaN: true }), (offset, dir, lengthM, speedChoiceValue, ramp) => {
      const norm = Math.hypot(...dir);
      fc.pre(norm > 0.1);
      const q0 = WORK.map((v, j) => v + (offset[j] as number));
      forwardKinematics(chain, q0, pose);
      const tcp = pose.tcpIndex * 3;
      const target = [0, 1, 2].map((i) => (pose.points[tcp + i] as number) + (lengthM * (dir[i] as number)) / norm);
      const rates = referenceRates(chain, q0, target, STEP_M);
      let speed = speedChoiceValue.value;
      if (speedChoiceValue.near) {
        // Lines the reference cannot follow get a random speed: the engine must then deny them (checked below).
        if (rates !== undefined) {
          const { joint } = busiest(rates, 1.5, ramp);
          speed = Math.min(1.5, speedChoiceValue.value * speedForPeak(rates, joint, ramp, limits[joint] as number, 1.5));
        } else {
          speed = 0.1;
        }
      }
      fc.pre(speed > 0);
      const result = checkArmMoveLinear(arm, { positionM: target, speedMPerS: speed, accelerationMPerS2: ramp }, { kind: 'robot_arm', positionsRad: q0, moving: false }, 'normal');
      if (result.verdict !== 'allow') {
        denied += 1;
        if (rates === undefined) unfollowed += 1;
        return true;
      }
      allowed += 1;
      if (rates === undefined) throw new Error(`allowed, but the reference IK cannot follow the line: ${JSON.stringify({ q0, target, speed, ramp })}`);
      const worst = busiest(rates, speed, ramp);
      if (worst.ratio > 0.97) nearLimit += 1;
      if (!(worst.ratio <= 1 + TOLERANCE)) {
        const name = arm.joints[worst.joint]?.name;
        throw new Error(`allowed, but ${name} needs ${worst.ratio} x its limit: ${JSON.stringify({ q0, target, speed, ramp })}`);
      }
      return true;
    }),
    { numRuns: 300, seed: 20260311 },
  );
  t.ok(allowed >= 100, `the property exercised allows (${allowed} allowed, ${denied} denied, ${unfollowed} of them unfollowable)`);
  t.ok(nearLimit >= 20, `and allows within 3 % of an acceleration limit (${nearLimit})`);
});
