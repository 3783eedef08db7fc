// Adversarial unit tests for the arm's joint-space bounds: every joint's position range at and just beyond its
// edges, velocity limits, non-finite values, unit mix-ups, joint count, and the live-state preconditions
// (missing, stale, from the future, malformed). A property test cross-checks every allow against limits computed
// here from the YAML (degrees), independently of the engine's unit conversion. Real demo-cell declarations;
// fixed clock. Path, workspace, TCP and measurement bounds are in test/bounds/robot-arm/.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { parse } from 'yaml';
import { checkArmMoveJoints } from '../../src/bounds/robot-arm-bounds.js';
import { checkBounds, stateReasons } from '../../src/bounds/bounds.js';
import { parseDeviceState } from '../../src/interlock/state-store.js';
import type { VerifiedCommand } from '../../src/core/command.js';
import type { ArmDeclaration, ArmState } from '../../src/core/kinds/robot-arm.js';
import type { ObservedState, StateView } from '../../src/core/device-state.js';
import type { StageResult } from '../../src/core/verdict.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { evaluateCommand, BoundsMemory, NO_RELEASES } from '../../src/pipeline/pipeline.js';
import { amrReport, withAmrReport } from '../helpers/demo-people.js';
import { DEMO_CELL, makeTestCell } from '../helpers/test-cell.js';
import { assertReasons, type Expected } from '../helpers/assert-reasons.js';

const NOW = 1_700_000_000_000;

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const arm = loaded.declarations.devices.get('arm-1') as ArmDeclaration;
// The demo arm without its kinematics, workspace and max step: isolates the joint-range and velocity rules here
// (with the full arm, a far target would also trip the step and path rules, tested in test/bounds/robot-arm/).
const { kinematics: _k, workspace: _w, maxStepRad: _m, ...jointsOnlyFields } = arm;
const JOINTS_ONLY: ArmDeclaration = jointsOnlyFields;

// The YAML as an operator wrote it, read here without the engine's loader or unit table.
interface YamlJoint {
  name: string;
  position: { min: number; max: number; unit: string };
  velocity: { max: number; unit: string };
}
const yamlArm = parse(readFileSync(join(DEMO_CELL, 'devices', 'arm-1.yaml'), 'utf8')) as {
  maxStateAge: { value: number; unit: string };
  joints: YamlJoint[];
};
const DEG = Math.PI / 180;
for (const joint of yamlArm.joints) {
  if (joint.position.unit !== 'deg' || joint.velocity.unit !== 'deg/s') throw new Error('test expects the demo arm in degrees');
}
if (yamlArm.maxStateAge.unit !== 'ms') throw new Error('test expects maxStateAge in ms');
const JOINT_COUNT = yamlArm.joints.length;
const MAX_STATE_AGE_MS = yamlArm.maxStateAge.value;
const SLOWEST_RAD_PER_S = Math.min(...yamlArm.joints.map((j) => j.velocity.max * DEG));
const HOME = [0, -Math.PI / 2, 0, 0, 0, 0];

// At rest: a state with positions alone leaves the motion unknown, which widens every path check by the run-out.
const AT_HOME: ArmState = { kind: 'robot_arm', positionsRad: HOME, moving: false };

function observed(positionsRad: readonly number[] = HOME, ageMs = 10): ObservedState {
  return { state: { kind: 'robot_arm', positionsRad, moving: false }, receivedAtMs: NOW - ageMs };
}

/** A target with every joint at a safe value (0, or the middle of the range), the given joint replaced. */
function targetWith(index: number, value: number): number[] {
  const target = yamlArm.joints.map((j) => ((j.position.min + j.position.max) / 2) * DEG);
  target[index] = value;
  return target;
}

t.test('limits were converted from the YAML degrees', async (t) => {
  t.equal(arm.joints.length, JOINT_COUNT);
  yamlArm.joints.forEach((joint, i) => {
    const declared = arm.joints[i];
    t.equal(declared?.name, joint.name);
    t.ok(Math.abs((declared?.positionMinRad ?? NaN) - joint.position.min * DEG) < 1e-12, `${joint.name} min`);
    t.ok(Math.abs((declared?.positionMaxRad ?? NaN) - joint.position.max * DEG) < 1e-12, `${joint.name} max`);
    t.ok(Math.abs((declared?.velocityMaxRadPerS.normal ?? NaN) - joint.velocity.max * DEG) < 1e-12, `${joint.name} velocity`);
  });
  t.equal(arm.maxStateAgeMs, MAX_STATE_AGE_MS);
});

t.test('joint positions: exactly at min and max allowed; 1e-9 rad beyond, non-finite, or degrees denied', async (t) => {
  arm.joints.forEach((joint, index) => {
    const ruleId = `arm-1/joints/${joint.name}/position`;
    const path = `/params/positionsRad/${index}`;
    const pos = (value: number): StageResult => checkArmMoveJoints(JOINTS_ONLY, { positionsRad: targetWith(index, value), velocityRadPerS: 0.5 }, AT_HOME, 'normal');
    const cases: { name: string; value: number; expected: Expected[] }[] = [
      { name: 'exactly at min', value: joint.positionMinRad, expected: [] },
      { name: 'exactly at max', value: joint.positionMaxRad, expected: [] },
      { name: 'min - 1e-9 rad', value: joint.positionMinRad - 1e-9, expected: [{ code: 'BOUNDS_JOINT_POSITION', ruleId, path, limit: joint.positionMinRad, actual: joint.positionMinRad - 1e-9, unit: 'rad' }] },
      { name: 'max + 1e-9 rad', value: joint.positionMaxRad + 1e-9, expected: [{ code: 'BOUNDS_JOINT_POSITION', ruleId, path, limit: joint.positionMaxRad, actual: joint.positionMaxRad + 1e-9, unit: 'rad' }] },
      { name: 'NaN', value: NaN, expected: [{ code: 'BOUNDS_JOINT_POSITION', ruleId, path, actual: NaN, unit: 'rad' }] },
      { name: '+Infinity', value: Infinity, expected: [{ code: 'BOUNDS_JOINT_POSITION', ruleId, path, limit: joint.positionMaxRad, actual: Infinity, unit: 'rad' }] },
      { name: '-Infinity', value: -Infinity, expected: [{ code: 'BOUNDS_JOINT_POSITION', ruleId, path, limit: joint.positionMinRad, actual: -Infinity, unit: 'rad' }] },
      // The far limit written in degrees into the radian field (shoulder's max is 0 deg, so its min is used).
      joint.positionMaxRad / DEG > joint.positionMaxRad
        ? { name: 'max in degrees given as radians', value: joint.positionMaxRad / DEG, expected: [{ code: 'BOUNDS_JOINT_POSITION', ruleId, path, limit: joint.positionMaxRad, actual: joint.positionMaxRad / DEG, unit: 'rad' }] }
        : { name: 'min in degrees given as radians', value: joint.positionMinRad / DEG, expected: [{ code: 'BOUNDS_JOINT_POSITION', ruleId, path, limit: joint.positionMinRad, actual: joint.positionMinRad / DEG, unit: 'rad' }] },
    ];
    for (const c of cases) assertReasons(t, pos(c.value), c.expected, `${joint.name} ${c.name}`);
  });
});

t.test('degrees in the radian field: 90 for the elbow (limit ±160° ≈ 2.79 rad) is denied', async (t) => {
  const elbow = arm.joints.findIndex((j) => j.name === 'elbow');
  const result = checkArmMoveJoints(JOINTS_ONLY, { positionsRad: targetWith(elbow, 90), velocityRadPerS: 0.5 }, AT_HOME, 'normal');
  assertReasons(t, result, [{ code: 'BOUNDS_JOINT_POSITION', ruleId: 'arm-1/joints/elbow/position', limit: 160 * DEG, actual: 90, unit: 'rad' }], 'elbow 90');
  // A whole pose in degrees: every joint whose range is below the number is denied.
  const degreesPose = [10, -45, 90, 0, 0, 0];
  const all = checkArmMoveJoints(arm, { positionsRad: degreesPose, velocityRadPerS: 0.5 }, AT_HOME, 'normal');
  t.same(all.reasons.map((r) => r.ruleId), ['arm-1/joints/base/position', 'arm-1/joints/shoulder/position', 'arm-1/joints/elbow/position']);
  // 120 deg/s written as 120 rad/s.
  const fast = checkArmMoveJoints(arm, { positionsRad: HOME, velocityRadPerS: 120 }, AT_HOME, 'normal');
  t.equal(fast.verdict, 'deny');
  t.equal(fast.reasons.length, JOINT_COUNT, 'every joint reports its velocity limit');
});

t.test('velocity: at the slowest joint limit allowed; just over, zero, negative, NaN, Infinity denied', async (t) => {
  const vel = (velocityRadPerS: number): StageResult => checkArmMoveJoints(arm, { positionsRad: HOME, velocityRadPerS }, AT_HOME, 'normal');
  const slow = arm.joints.filter((j) => Math.abs(j.velocityMaxRadPerS.normal - SLOWEST_RAD_PER_S) < 1e-15);
  t.same(slow.map((j) => j.name), ['base', 'shoulder', 'elbow'], 'the slowest joints (120 deg/s)');
  const limitOfSlowest = arm.joints[0]?.velocityMaxRadPerS.normal as number;
  const perJoint = (velocity: number, joints: readonly { name: string; velocityMaxRadPerS: { normal: number } }[]): Expected[] =>
    joints.map((j) => ({ code: 'BOUNDS_JOINT_VELOCITY', ruleId: `arm-1/joints/${j.name}/velocity/normal`, path: '/params/velocityRadPerS', limit: j.velocityMaxRadPerS.normal, actual: velocity, unit: 'rad/s' }));
  const cases: { name: string; velocity: number; expected: Expected[] }[] = [
    { name: 'exactly the slowest limit', velocity: limitOfSlowest, expected: [] },
    { name: 'a tiny positive speed', velocity: Number.MIN_VALUE, expected: [] },
    { name: 'slowest limit + 1e-9', velocity: limitOfSlowest + 1e-9, expected: perJoint(limitOfSlowest + 1e-9, slow) },
    { name: 'the fastest joint limit (180 deg/s)', velocity: 180 * DEG, expected: perJoint(180 * DEG, slow) },
    { name: 'zero', velocity: 0, expected: perJoint(0, arm.joints) },
    { name: '-0', velocity: -0, expected: perJoint(-0, arm.joints) },
    { name: 'negative', velocity: -1, expected: perJoint(-1, arm.joints) },
    { name: 'NaN', velocity: NaN, expected: perJoint(NaN, arm.joints).map(({ actual: _a, ...rest }) => rest) },
    { name: '+Infinity', velocity: Infinity, expected: perJoint(Infinity, arm.joints) },
    { name: '-Infinity', velocity: -Infinity, expected: perJoint(-Infinity, arm.joints) },
  ];
  for (const c of cases) assertReasons(t, vel(c.velocity), c.expected, c.name);
  t.ok(Number.isNaN(vel(NaN).reasons[0]?.actual), 'NaN velocity reported as actual NaN');
});

t.test('joint count must match the declaration', async (t) => {
  const cases: { name: string; positions: number[] }[] = [
    { name: 'no targets', positions: [] },
    { name: 'five targets', positions: [0, -1, 0, 0, 0] },
    { name: 'seven targets', positions: [0, -1, 0, 0, 0, 0, 0] },
  ];
  for (const c of cases) {
    assertReasons(
      t,
      checkArmMoveJoints(arm, { positionsRad: c.positions, velocityRadPerS: 0.5 }, AT_HOME, 'normal'),
      [{ code: 'BOUNDS_JOINT_COUNT', ruleId: 'arm-1/joints', path: '/params/positionsRad', limit: JOINT_COUNT, actual: c.positions.length }],
      c.name,
    );
  }
  // A sparse array of the right length hides undefined targets: they are outside every range.
  const sparse = new Array<number>(JOINT_COUNT);
  sparse[0] = 0;
  const result = checkArmMoveJoints(arm, { positionsRad: sparse, velocityRadPerS: 0.5 }, AT_HOME, 'normal');
  t.equal(result.verdict, 'deny', 'sparse array denied');
  t.equal(result.reasons.length, JOINT_COUNT - 1);
});

t.test('live state: missing, stale, from the future (stateReasons, the bounds stage precondition)', async (t) => {
  const ruleId = 'arm-1/maxStateAge';
  const at = (receivedAtMs: number, positionsRad: readonly number[] = HOME): ObservedState => ({ state: { kind: 'robot_arm', positionsRad, moving: false }, receivedAtMs });
  const cases: { name: string; state: ObservedState | undefined; expected: Expected[] }[] = [
    { name: 'no state at all', state: undefined, expected: [{ code: 'BOUNDS_STATE_MISSING', ruleId }] },
    { name: 'age 0 (just received)', state: at(NOW), expected: [] },
    { name: 'age exactly maxStateAge', state: at(NOW - MAX_STATE_AGE_MS), expected: [] },
    { name: 'age maxStateAge + 1 ms', state: at(NOW - MAX_STATE_AGE_MS - 1), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId, limit: MAX_STATE_AGE_MS, actual: MAX_STATE_AGE_MS + 1, unit: 'ms' }] },
    { name: 'an hour old', state: at(NOW - 3_600_000), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId, limit: MAX_STATE_AGE_MS, actual: 3_600_000, unit: 'ms' }] },
    { name: 'from the future by 1 ms (negative age)', state: at(NOW + 1), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId, limit: MAX_STATE_AGE_MS, actual: -1, unit: 'ms' }] },
    { name: 'far in the future', state: at(NOW + 86_400_000), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId, limit: MAX_STATE_AGE_MS, actual: -86_400_000, unit: 'ms' }] },
    { name: 'NaN receivedAt', state: at(NaN), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId, limit: MAX_STATE_AGE_MS, unit: 'ms' }] },
    { name: '+Infinity receivedAt', state: at(Infinity), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId, limit: MAX_STATE_AGE_MS, actual: -Infinity, unit: 'ms' }] },
    { name: '-Infinity receivedAt', state: at(-Infinity), expected: [{ code: 'BOUNDS_STATE_STALE', ruleId, limit: MAX_STATE_AGE_MS, actual: Infinity, unit: 'ms' }] },
    { name: 'state of another device kind', state: { state: { kind: 'conveyor', positionsRad: HOME } as unknown as ObservedState['state'], receivedAtMs: NOW }, expected: [{ code: 'BOUNDS_STATE_KIND_MISMATCH' }] },
  ];
  for (const c of cases) {
    const reasons = stateReasons(arm, { latest: () => c.state }, NOW);
    assertReasons(t, { verdict: reasons.length === 0 ? 'allow' : 'deny', reasons }, c.expected, c.name);
  }
  t.ok(Number.isNaN(stateReasons(arm, { latest: () => at(NaN) }, NOW)[0]?.actual), 'NaN age reported as NaN');
  // A broken clock (NaN now) makes every state stale rather than fresh.
  t.same(stateReasons(arm, { latest: () => at(NOW) }, NaN).map((r) => r.code), ['BOUNDS_STATE_STALE'], 'now NaN');
});

t.test('malformed state messages are refused when parsed, so they never become state', async (t) => {
  const cases: { name: string; message: string; problem: RegExp }[] = [
    { name: '5 joints', message: JSON.stringify({ positionsRad: [0, 0, 0, 0, 0] }), problem: /5 joint positions/ },
    { name: '7 joints', message: JSON.stringify({ positionsRad: [0, 0, 0, 0, 0, 0, 0] }), problem: /7 joint positions/ },
    { name: 'no joints', message: JSON.stringify({ positionsRad: [] }), problem: /fewer than 1/ },
    { name: 'Infinity (1e400)', message: '{"positionsRad":[0,0,0,0,0,1e400]}', problem: /must be number/ },
    { name: 'a string position', message: '{"positionsRad":[0,0,0,0,0,"0"]}', problem: /must be number/ },
    { name: 'an unknown field', message: '{"positionsRad":[0,0,0,0,0,0],"torque":1}', problem: /torque/ },
    { name: 'not JSON', message: 'positions: 0', problem: /not JSON/ },
  ];
  for (const c of cases) {
    const parsed = parseDeviceState(arm, c.message);
    t.equal(parsed.ok, false, c.name);
    if (!parsed.ok) t.match(parsed.problem, c.problem, c.name);
  }
  t.ok(parseDeviceState(arm, JSON.stringify({ positionsRad: HOME, people: [[1, 2]] })).ok, 'a well-formed message with people');
});

t.test('checkBounds: stop bypasses bounds with no state at all; move_joints needs it; undeclared actions deny', async (t) => {
  const agent = loaded.declarations.agents.get('planner-1');
  if (agent === undefined) throw new Error('no planner-1');
  const command = (action: string, safeState: boolean, params: Record<string, unknown>): VerifiedCommand => ({
    commandId: 'cmd-00000001',
    kid: 'planner-1-k1',
    seq: 1,
    agent,
    device: arm,
    action,
    params,
    safeState,
    issuedAtMs: NOW,
    expiresAtMs: NOW + 2000,
  });
  // amr-1, the cell's people source, reports nobody: the arm checks in its normal limits and the transfer station it
  // shares with amr-1 is free. Only the arm's own state varies here.
  const bounds = (c: VerifiedCommand, state: ObservedState | undefined) =>
    checkBounds({ command: c, declarations: loaded.declarations, states: withAmrReport({ latest: () => state }, amrReport(NOW - 10)), releases: NO_RELEASES, memory: new BoundsMemory(), nowMs: NOW });
  const stop = bounds(command('stop', true, {}), undefined);
  t.equal(stop.verdict, 'allow', 'stop with no state');
  t.same(stop.reasons, []);
  t.equal(bounds(command('stop', true, {}), observed(HOME, 10_000_000)).verdict, 'allow', 'stop with very stale state');
  assertReasons(t, bounds(command('move_joints', false, { positionsRad: HOME, velocityRadPerS: 0.5 }), undefined), [{ code: 'BOUNDS_STATE_MISSING' }], 'move with no state');
  assertReasons(t, bounds(command('move_joints', false, { positionsRad: HOME, velocityRadPerS: 0.5 }), observed()), [], 'move in bounds');
  assertReasons(t, bounds(command('wave', false, {}), observed()), [{ code: 'BOUNDS_NOT_DECLARED', ruleId: 'arm-1' }], 'action without bounds');
});

t.test('stop passes through evaluateCommand with no state at all; a move does not', async (t) => {
  const signer = cell.signer('planner-1', () => NOW);
  const noStates: StateView = { latest: () => undefined };
  const context = { cell: loaded, replay: new MemoryReplayGuard(() => NOW), states: noStates, releases: NO_RELEASES, bounds: new BoundsMemory() };
  const stop = evaluateCommand({ token: signer.sign('arm-1', 'stop', {}), topicDeviceId: 'arm-1' }, context, NOW);
  t.equal(stop.verdict, 'allow');
  t.same(stop.reasons.map((r) => r.code), ['SAFE_STATE_COMMAND']);
  const move = evaluateCommand({ token: signer.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }), topicDeviceId: 'arm-1' }, context, NOW);
  t.equal(move.verdict, 'deny');
  t.same(move.reasons.map((r) => [r.code, r.ruleId]), [['BOUNDS_STATE_MISSING', 'arm-1/maxStateAge']]);
});

/** The cell with the joints-only arm, so the property below is about joint limits and state freshness alone. */
// The other demo devices stay: amr-1 shares the transfer station with the arm, and a zone partner the cell does not
// declare counts as occupying it.
const jointsOnlyDeclarations = { ...loaded.declarations, devices: new Map([...loaded.declarations.devices, ['arm-1', JOINTS_ONLY]]) };

/** The whole bounds stage for a planner-1 move, with the arm's state received at `receivedAtMs`. */
function checkWithState(move: { positionsRad: number[]; velocityRadPerS: number }, receivedAtMs: number): StageResult {
  const agent = loaded.declarations.agents.get('planner-1');
  if (agent === undefined) throw new Error('no planner-1');
  const command: VerifiedCommand = {
    commandId: 'cmd-00000001', kid: 'planner-1-k1', seq: 1, agent, device: JOINTS_ONLY, action: 'move_joints',
    params: move, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 2000,
  };
  const state: ObservedState = { state: { kind: 'robot_arm', positionsRad: HOME, moving: false }, receivedAtMs };
  // amr-1 reports nobody near the arm and is out of the shared transfer station (without kinematics, every move of
  // this arm may enter it): this property is about joint limits and the arm's own state freshness.
  const people = amrReport(NOW - 10);
  return checkBounds({ command, declarations: jointsOnlyDeclarations, states: withAmrReport({ latest: () => state }, people), releases: NO_RELEASES, memory: new BoundsMemory(), nowMs: NOW });
}

t.test('property: every allow is within the YAML limits (computed here in degrees) with fresh state', async (t) => {
  // Independent oracle: limits straight from the YAML, converted with this file's own degree factor.
  const oracle = (positionsRad: readonly number[], velocityRadPerS: number, receivedAtMs: number): boolean =>
    positionsRad.length === yamlArm.joints.length &&
    yamlArm.joints.every((joint, i) => {
      const degrees = (positionsRad[i] as number) * (180 / Math.PI);
      return degrees >= joint.position.min - 1e-9 && degrees <= joint.position.max + 1e-9;
    }) &&
    velocityRadPerS > 0 &&
    yamlArm.joints.every((joint) => velocityRadPerS * (180 / Math.PI) <= joint.velocity.max + 1e-9) &&
    receivedAtMs <= NOW &&
    NOW - receivedAtMs <= yamlArm.maxStateAge.value;

  // Per joint: mostly inside its range (so allows happen), often right at an edge (±1e-6 rad), sometimes the
  // edge in degrees typed into the radian field, sometimes any double at all (NaN, ±Infinity, -0, huge).
  const jointValue = (joint: YamlJoint): fc.Arbitrary<number> =>
    fc.oneof(
      { weight: 8, arbitrary: fc.double({ min: joint.position.min * DEG, max: joint.position.max * DEG, noNaN: true }) },
      { weight: 2, arbitrary: fc.constantFrom(joint.position.min * DEG, joint.position.max * DEG).chain((edge) => fc.double({ min: edge - 1e-6, max: edge + 1e-6, noNaN: true })) },
      { weight: 1, arbitrary: fc.constantFrom(joint.position.min, joint.position.max) },
      { weight: 1, arbitrary: fc.double() },
    );
  const pose = fc.tuple(...yamlArm.joints.map(jointValue));
  const positions = fc.oneof(
    { weight: 9, arbitrary: pose },
    { weight: 1, arbitrary: fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 0, maxLength: 8 }) },
  );
  const velocity = fc.oneof(
    { weight: 4, arbitrary: fc.double({ min: -1, max: 4, noNaN: true }) },
    { weight: 2, arbitrary: fc.constantFrom(120 * DEG, 180 * DEG).chain((edge) => fc.double({ min: edge - 1e-6, max: edge + 1e-6, noNaN: true })) },
    { weight: 1, arbitrary: fc.double() },
  );
  // The time the state was received, around the freshness edges (future, exactly maxStateAge old, just older), or anything.
  const receivedAt = fc.oneof(
    fc.integer({ min: -1000, max: 1000 }).map((ageMs) => NOW - ageMs),
    fc.constantFrom(NOW - MAX_STATE_AGE_MS, NOW - MAX_STATE_AGE_MS - 1, NOW + 1, NOW),
    fc.double({ min: NOW - 2 * MAX_STATE_AGE_MS, max: NOW + 10 }),
    fc.double(),
  );

  let allows = 0;
  fc.assert(
    fc.property(
      positions,
      velocity,
      receivedAt,
      (positionsRad, velocityRadPerS, receivedAtMs) => {
        const result = checkWithState({ positionsRad, velocityRadPerS }, receivedAtMs);
        if (result.verdict === 'allow') {
          allows += 1;
          return oracle(positionsRad, velocityRadPerS, receivedAtMs) && result.reasons.length === 0;
        }
        // A deny always says why.
        return result.verdict === 'deny' && result.reasons.length > 0;
      },
    ),
    { numRuns: 5000, seed: 20240601 },
  );
  t.ok(allows > 100, `the property exercised allows too (${allows})`);

  // And the converse on clearly-inside inputs (1e-6 rad margin): the engine does not deny what is safe.
  fc.assert(
    fc.property(
      fc.tuple(...yamlArm.joints.map((j) => fc.double({ min: j.position.min * DEG + 1e-6, max: j.position.max * DEG - 1e-6, noNaN: true }))),
      fc.double({ min: 1e-6, max: 120 * DEG - 1e-6, noNaN: true }),
      fc.integer({ min: 0, max: MAX_STATE_AGE_MS }),
      (positionsRad, velocityRadPerS, ageMs) =>
        checkWithState({ positionsRad, velocityRadPerS }, NOW - ageMs).verdict === 'allow',
    ),
    { numRuns: 2000, seed: 7 },
  );
});
