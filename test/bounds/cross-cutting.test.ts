// The bounds stage's cell-wide rules, independent of any one kind: zones, people, modes with hysteresis, rate
// limits, and the declaration checks behind them. Real cell files (temp copies of the demo cell), fixed clock.

import t, { type Test } from 'tap';
import type { VerifiedCommand } from '../../src/core/command.js';
import type { ObservedState } from '../../src/core/device-state.js';
import type { ArmDeclaration } from '../../src/core/kinds/robot-arm.js';
import { zoneContains, zoneContainsStrict, type ZoneShape } from '../../src/core/zones.js';
import { checkBounds, BoundsMemory } from '../../src/bounds/bounds.js';
import { ModeTracker, stateTriggers } from '../../src/bounds/modes.js';
import { peopleInCell } from '../../src/bounds/people.js';
import { RateMemory } from '../../src/bounds/rate-limits.js';
import { loadCell } from '../../src/declarations/load.js';
import { NO_RELEASES } from '../../src/pipeline/pipeline.js';
import { startRuntime, DigestMismatchError } from '../../src/app/compose.js';
import { silentLogger } from '../../src/core/log.js';
import { makeTestCell, type TestCell } from '../helpers/test-cell.js';

const NOW = 1_800_000_000_000;
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];

t.test('zone containment: boundaries are inside; a non-finite point is inside keep-out tests, outside keep-in tests', async (t) => {
  const box: ZoneShape = { type: 'box', min: [0, 0, 0], max: [1, 2, 3] };
  const sphere: ZoneShape = { type: 'sphere', center: [0, 0, 0], radiusM: 1 };
  const prism: ZoneShape = { type: 'prism', polygon: [[0, 0], [2, 0], [2, 2], [0, 2]], zMinM: 0, zMaxM: 1 };
  const cases: [string, ZoneShape, [number, number, number], boolean][] = [
    ['box corner', box, [1, 2, 3], true],
    ['box just outside', box, [1 + 1e-9, 1, 1], false],
    ['box inside', box, [0.5, 1, 1.5], true],
    ['sphere surface', sphere, [1, 0, 0], true],
    ['sphere just outside', sphere, [0, 1 + 1e-9, 0], false],
    ['prism edge', prism, [2, 1, 0.5], true],
    ['prism vertex', prism, [0, 0, 0], true],
    ['prism above', prism, [1, 1, 1.01], false],
    ['prism outside polygon', prism, [2.01, 1, 0.5], false],
  ];
  for (const [name, shape, point, expected] of cases) {
    t.equal(zoneContains(shape, point), expected, name);
    t.equal(zoneContainsStrict(shape, point), expected, `${name} (strict)`);
  }
  for (const bad of [NaN, Infinity, -Infinity]) {
    t.equal(zoneContains(box, [bad, 1, 1]), true, `${bad}: inside for keep-out (fails closed)`);
    t.equal(zoneContainsStrict(box, [bad, 1, 1]), false, `${bad}: outside for keep-in (fails closed)`);
  }
});

const observed = (people?: [number, number, number][], receivedAtMs = NOW): ObservedState =>
  people === undefined
    ? { state: { kind: 'robot_arm', positionsRad: HOME }, receivedAtMs }
    : { state: { kind: 'robot_arm', positionsRad: HOME }, people, receivedAtMs };

t.test('people: unknown unless every declared source reported people recently', async (t) => {
  const sources = { devices: ['scanner-a', 'scanner-b'], maxAgeMs: 500 };
  const states = (a?: ObservedState, b?: ObservedState) => ({ latest: (id: string) => (id === 'scanner-a' ? a : id === 'scanner-b' ? b : undefined) });
  t.same(peopleInCell({ devices: [], maxAgeMs: 500 }, states(), NOW).known, false, 'no sources declared: unknown, never "nobody"');
  t.same(peopleInCell(sources, states(observed([])), NOW).known, false, 'one source silent');
  t.same(peopleInCell(sources, states(observed([]), observed([], NOW - 501)), NOW).known, false, 'one source 1 ms too old');
  t.same(peopleInCell(sources, states(observed([]), observed(undefined)), NOW).known, false, 'a source without a people field');
  t.same(peopleInCell(sources, states(observed([]), observed([], NOW + 1)), NOW).known, false, 'a report from the future');
  const both = peopleInCell(sources, states(observed([[1, 1, 0]]), observed([[2, 2, 0]], NOW - 500)), NOW);
  t.same(both, { known: true, positions: [[1, 1, 0], [2, 2, 0]] }, 'both fresh (one exactly at maxAge): everyone is counted');
});

/** A cell whose arm is reduced while a person is in zone `near-arm` (reported by arm-2's state), hold 2 s. */
function modeCell(t: Test, extra: Record<string, string | null> = {}): TestCell {
  const cell = makeTestCell({
    'cell.yaml': `cell: demo-cell
commands:
  maxTtl: { value: 5, unit: s }
  clockSkew: { value: 1, unit: s }
  maxTokenSize: { value: 8, unit: KiB }
  ratePerAgent: { commands: 3, per: { value: 1, unit: s } }
zones:
  - id: near-arm
    box: { min: [-1, -1, 0], max: [1, 1, 2], unit: m }
  # The demo conveyor, kept from the demo cell, watches this zone for people.
  - id: infeed-walkway
    polygon: { points: [[-4, 0.1], [0.1, 0.1], [0.1, 2.7], [-4, 2.7]], unit: m }
people:
  sources: [arm-1]
  maxAge: { value: 500, unit: ms }
`,
    'devices/arm-1.yaml': `id: arm-1
kind: robot_arm
maxStateAge: { value: 250, unit: ms }
rateLimit: { commands: 2, per: { value: 500, unit: ms } }
modes:
  reducedWhen: { personInZones: [near-arm], autonomyScopeAtMost: 3 }
  holdReduced: { value: 2, unit: s }
joints:
${['base', 'shoulder', 'elbow', 'wrist1', 'wrist2', 'wrist3'].map((name) => `  - { name: ${name}, position: { min: -360, max: 360, unit: deg }, velocity: { normal: 120, reduced: 30, unit: deg/s } }`).join('\n')}
`,
    ...extra,
  });
  t.teardown(() => cell.cleanup());
  return cell;
}

function command(cell: ReturnType<TestCell['load']>, agentId: string, velocityRadPerS: number, action = 'move_joints'): VerifiedCommand {
  const agent = cell.declarations.agents.get(agentId);
  if (agent === undefined) throw new Error(agentId);
  return {
    commandId: `cmd-${Math.random().toString(36).slice(2, 12)}`,
    kid: `${agentId}-k1`,
    seq: 1,
    agent,
    device: cell.declarations.devices.get('arm-1') as ArmDeclaration,
    action,
    params: action === 'stop' ? {} : { positionsRad: HOME, velocityRadPerS },
    safeState: action === 'stop',
    issuedAtMs: NOW,
    expiresAtMs: NOW + 2000,
  };
}

t.test('modes: a person in the zone selects reduced, which holds for holdReduced after they leave (hysteresis)', async (t) => {
  const loaded = modeCell(t).load();
  const memory = new BoundsMemory();
  const check = (people: [number, number, number][] | undefined, nowMs: number, velocityRadPerS: number) =>
    checkBounds({
      command: command(loaded, 'planner-1', velocityRadPerS),
      declarations: loaded.declarations,
      states: { latest: () => observed(people, nowMs) },
      releases: NO_RELEASES,
      memory,
      nowMs,
    });
  const fastOk = 100 * (Math.PI / 180); // under normal (120 deg/s), over reduced (30 deg/s)
  t.equal(check([[5, 5, 0]], NOW, fastOk).mode, 'normal', 'person outside the zone: normal');
  t.equal(check([[5, 5, 0]], NOW, fastOk).verdict, 'allow');
  const inZone = check([[0.5, 0, 1]], NOW + 100, fastOk);
  t.equal(inZone.mode, 'reduced', 'person inside: reduced');
  t.equal(inZone.verdict, 'deny');
  // (The device's rate limit, 2 per 500 ms, also fires here: this test shares one memory, as the interlock does.)
  const velocity = inZone.reasons.find((r) => r.code === 'BOUNDS_JOINT_VELOCITY');
  t.equal(velocity?.ruleId, 'arm-1/joints/base/velocity/reduced');
  t.equal(velocity?.limit, 30 * (Math.PI / 180));
  // The person leaves at NOW+100; reduced holds 2 s (exactly 2000 ms later still reduced), then normal.
  t.equal(check([[5, 5, 0]], NOW + 1100, 0.1).mode, 'reduced', '1 s after leaving: still reduced');
  t.equal(check([[5, 5, 0]], NOW + 2100, 0.1).mode, 'reduced', 'exactly holdReduced after: still reduced');
  t.equal(check([[5, 5, 0]], NOW + 2101, 0.1).mode, 'normal', 'past holdReduced: normal again');
  t.equal(check(undefined, NOW + 2200, 0.1).mode, 'reduced', 'people unknown (source sends no people): reduced');
});

t.test('modes: a state trigger seen between commands still starts the hold (the interlock observes every people update)', async (t) => {
  const loaded = modeCell(t).load();
  const device = loaded.declarations.devices.get('arm-1') as ArmDeclaration;
  const tracker = new ModeTracker();
  const agent = loaded.declarations.agents.get('planner-1');
  if (agent === undefined) throw new Error('planner-1');
  const people = (positions: [number, number, number][]) => ({ known: true as const, positions });
  // A person walks through at NOW (no command then), gone by NOW+500.
  tracker.observe(device, stateTriggers(device, people([[0, 0, 1]]), loaded.declarations.zones), NOW);
  t.equal(tracker.resolve(device, agent, people([]), loaded.declarations.zones, NOW + 500).mode, 'reduced', 'still held at the next command');
  t.equal(tracker.resolve(device, agent, people([]), loaded.declarations.zones, NOW + 2001).mode, 'normal');
  t.equal(tracker.resolve(device, agent, people([]), loaded.declarations.zones, NaN).mode, 'reduced', 'a NaN clock never ends the hold early');
  tracker.setOperatorMode('arm-1', 'reduced');
  t.same(tracker.resolve(device, agent, people([]), loaded.declarations.zones, NOW + 5000).because, ['an operator set reduced mode']);
  tracker.setOperatorMode('arm-1', undefined);
  t.equal(tracker.resolve(device, agent, people([]), loaded.declarations.zones, NOW + 5000).mode, 'normal');
  const trainee = loaded.declarations.agents.get('trainee-1');
  if (trainee === undefined) throw new Error('trainee-1');
  t.match(tracker.resolve(device, trainee, people([]), loaded.declarations.zones, NOW + 5000).because[0] ?? '', /autonomy scope 2/, 'scope 2 <= 3: reduced');
});

t.test('rate limits: per device and per agent, sliding windows; denied attempts count; stops never do', async (t) => {
  const loaded = modeCell(t).load();
  const memory = new BoundsMemory();
  const check = (agentId: string, nowMs: number, action = 'move_joints') =>
    checkBounds({
      command: command(loaded, agentId, 0.1, action),
      declarations: loaded.declarations,
      states: { latest: () => observed([[5, 5, 0]], nowMs) },
      releases: NO_RELEASES,
      memory,
      nowMs,
    });
  t.equal(check('planner-1', NOW).verdict, 'allow', '1st');
  t.equal(check('planner-1', NOW + 100).verdict, 'allow', '2nd within 500 ms');
  const third = check('planner-1', NOW + 200);
  t.same(third.reasons.map((r) => [r.code, r.ruleId, r.limit, r.actual]), [['BOUNDS_RATE_LIMIT', 'arm-1/rateLimit', 2, 3]], '3rd within 500 ms: the device limit');
  for (let i = 0; i < 5; i += 1) t.equal(check('planner-1', NOW + 300, 'stop').verdict, 'allow', 'stops pass and are not counted');
  const fourth = check('planner-1', NOW + 400);
  t.same(fourth.reasons.map((r) => r.ruleId), ['cell/commands/ratePerAgent', 'arm-1/rateLimit'], '4th within 1 s: the agent limit too');
  t.equal(check('planner-1', NOW + 2000).verdict, 'allow', 'after both windows have passed');
  const memoryOnly = new RateMemory();
  t.equal(memoryOnly.count('k', { commands: 1, perMs: 1000 }, NaN), 1);
  t.equal(memoryOnly.count('k', { commands: 1, perMs: 1000 }, NOW), 2, 'an entry at a NaN time never leaves the window');
});

t.test('cell-level declarations: every broken reference and shape is reported with file, pointer and line', async (t) => {
  const cell = modeCell(t, {
    'cell.yaml': `cell: demo-cell
commands:
  maxTtl: { value: 5, unit: s }
  clockSkew: { value: 1, unit: s }
  maxTokenSize: { value: 8, unit: KiB }
zones:
  - id: a
    box: { min: [1, 0, 0], max: [0, 1, 1], unit: m }
  - id: a
    sphere: { center: [0, 0, 0], radius: 1, unit: m }
  - id: flat
    polygon: { points: [[0, 0], [1, 1], [2, 2]], unit: m }
  - id: both
    box: { min: [0, 0, 0], max: [1, 1, 1], unit: m }
    sphere: { center: [0, 0, 0], radius: 1, unit: m }
sharedZones:
  - { zone: nowhere, devices: [arm-1, ghost] }
people:
  sources: [phantom]
  maxAge: { value: 500, unit: ms }
`,
  });
  const result = loadCell(cell.cellDir);
  t.equal(result.ok, false);
  const problems = result.ok ? [] : result.problems.map((p) => `${p.file}:${p.line ?? '?'} ${p.path} ${p.message}`);
  const expect = [
    /^cell\.yaml:13 \/zones\/3 does not match any of the allowed forms/,
  ];
  for (const pattern of expect) t.ok(problems.some((p) => pattern.test(p)), `${pattern}`, { problems });
  // The schema error stops the file before references are checked; fix it and the rest is reported.
  const second = modeCell(t, {
    'cell.yaml': `cell: demo-cell
commands:
  maxTtl: { value: 5, unit: s }
  clockSkew: { value: 1, unit: s }
  maxTokenSize: { value: 8, unit: KiB }
zones:
  - id: a
    box: { min: [1, 0, 0], max: [0, 1, 1], unit: m }
  - id: a
    sphere: { center: [0, 0, 0], radius: 1, unit: m }
  - id: flat
    polygon: { points: [[0, 0], [1, 1], [2, 2]], unit: m }
sharedZones:
  - { zone: nowhere, devices: [arm-1, ghost] }
people:
  sources: [phantom]
  maxAge: { value: 500, unit: ms }
`,
  });
  const again = loadCell(second.cellDir);
  const texts = again.ok ? [] : again.problems.map((p) => `${p.file}:${p.line ?? '?'} ${p.path} ${p.message}`);
  for (const pattern of [
    /^cell\.yaml:8 \/zones\/0\/box every min coordinate must be less than the max one/,
    /^cell\.yaml:9 \/zones\/1\/id zone id "a" is used twice/,
    /^cell\.yaml:12 \/zones\/2\/polygon\/points the polygon has no area/,
    /^cell\.yaml:14 \/sharedZones\/0\/zone no zone "nowhere" is declared in zones/,
    /^cell\.yaml:14 \/sharedZones\/0\/devices\/1 no device "ghost" is declared/,
    /^cell\.yaml:16 \/people\/sources\/0 no device "phantom" is declared/,
    /^devices\/arm-1\.yaml:6 \/modes\/reducedWhen\/personInZones\/0 no zone "near-arm" is declared in cell\.yaml/,
  ]) {
    t.ok(texts.some((p) => pattern.test(p)), `${pattern}`, { texts });
  }
});

t.test('a reduced limit looser than the normal one, or a wrong unit inside a mode limit, is a load error', async (t) => {
  const cell = modeCell(t, {
    'devices/arm-1.yaml': `id: arm-1
kind: robot_arm
maxStateAge: { value: 250, unit: ms }
joints:
  - { name: base, position: { min: -360, max: 360, unit: deg }, velocity: { normal: 30, reduced: 120, unit: deg/s } }
  - { name: shoulder, position: { min: -360, max: 360, unit: deg }, velocity: { max: 120, unit: mm/s } }
`,
  });
  const result = loadCell(cell.cellDir);
  const texts = result.ok ? [] : result.problems.map((p) => `${p.file}:${p.line ?? '?'} ${p.path} ${p.message}`);
  t.ok(texts.some((p) => /^devices\/arm-1\.yaml:6 \/joints\/1\/velocity\/unit must be equal to one of the allowed values: "rad\/s", "deg\/s", "rpm"/.test(p)), 'the wrong unit is named, not "does not match any form"', { texts });
  const loose = modeCell(t, {
    'devices/arm-1.yaml': `id: arm-1
kind: robot_arm
maxStateAge: { value: 250, unit: ms }
joints:
  - { name: base, position: { min: -360, max: 360, unit: deg }, velocity: { normal: 30, reduced: 120, unit: deg/s } }
`,
  });
  const second = loadCell(loose.cellDir);
  const texts2 = second.ok ? [] : second.problems.map((p) => `${p.file}:${p.line ?? '?'} ${p.path} ${p.message}`);
  t.ok(texts2.some((p) => /^devices\/arm-1\.yaml:5 \/joints\/0\/velocity reduced \(120\) must not exceed normal \(30\)/.test(p)), 'reduced looser than normal', { texts2 });
});

t.test('start-up is refused when the declarations digest differs from the expected one', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const digest = cell.load().declarations.digest;
  const wrong = `${digest.slice(0, -1)}${digest.endsWith('0') ? '1' : '0'}`;
  await t.rejects(startRuntime({ cellDirectory: cell.cellDir, stateDirectory: `${cell.root}/state`, expectedDigest: wrong, log: silentLogger }), DigestMismatchError);
  await t.rejects(startRuntime({ cellDirectory: cell.cellDir, stateDirectory: `${cell.root}/state`, expectedDigest: wrong, log: silentLogger }), {
    message: new RegExp(`digest of .* is ${digest}, but ${wrong} is expected`),
  });
  // With the right digest it starts (and is stopped again at once).
  const runtime = await startRuntime({ cellDirectory: cell.cellDir, stateDirectory: `${cell.root}/state`, expectedDigest: digest, log: silentLogger });
  await runtime.stop();
  t.pass('the matching digest starts');
});

t.test('only kinds that can place themselves may be listed in a shared zone', async (t) => {
  const cell = makeTestCell({
    'cell.yaml': `cell: demo-cell
commands:
  maxTtl: { value: 5, unit: s }
  clockSkew: { value: 1, unit: s }
  maxTokenSize: { value: 8, unit: KiB }
zones:
  - id: table
    box: { min: [0, 0, 0], max: [1, 1, 1], unit: m }
sharedZones:
  - { zone: table, devices: [arm-1, conveyor-1] }
`,
  });
  t.teardown(() => cell.cleanup());
  const result = loadCell(cell.cellDir);
  const texts = result.ok ? [] : result.problems.map((p) => `${p.file}:${p.line ?? '?'} ${p.path} ${p.message}`);
  t.ok(texts.some((p) => /^cell\.yaml:10 \/sharedZones\/0\/devices\/1 conveyor-1 is a conveyor, which does not report where it is in the cell/.test(p)), 'a conveyor in a shared zone is refused', { texts });
});
