// The mobile robot's swept-footprint checks, with exact binary numbers so "at the limit" means exactly: keep-out
// polygons (touching is a violation; safe waypoints with a crossing middle; grazing by less than the footprint),
// speed zones, the run-out of a moving robot, speed and separation (S_p), and cell zones for shared-zone checks.

import t from 'tap';
import { checkBounds } from '../../../src/bounds/bounds.js';
import { checkMobileRobotCommand, MOBILE_ROBOT_BOUNDS } from '../../../src/bounds/mobile-robot-bounds.js';
import { protectiveSeparation, stoppingDistanceM } from '../../../src/bounds/mobile-robot/separation.js';
import { pointSegmentDistance, preparePolygon, segmentPolygonDistance } from '../../../src/bounds/mobile-robot/geometry.js';
import type { PeopleView } from '../../../src/bounds/people.js';
import type { ObservedState } from '../../../src/core/device-state.js';
import type { MobileRobotDeclaration, MobileRobotState } from '../../../src/core/kinds/mobile-robot.js';
import type { StageResult } from '../../../src/core/verdict.js';
import { BoundsMemory, NO_RELEASES } from '../../../src/pipeline/pipeline.js';
import { agent, assertReasons, loadMobileCell, NOBODY, NOW, peopleAt, robotState, TINY, type Expected } from './fixtures.js';

const { amr, amrS, amr2, loaded } = loadMobileCell(t);
const zones = loaded.declarations.zones;

function check(action: string, params: Record<string, unknown>, options: { state?: MobileRobotState; people?: PeopleView; device?: MobileRobotDeclaration } = {}): StageResult {
  return checkMobileRobotCommand(options.device ?? amr, { action, params }, { state: options.state ?? robotState(), mode: 'normal', people: options.people ?? NOBODY });
}

const PILLAR = 'amr-t/keepOut/pillar';

t.test('geometry primitives: exact distances, touching counts, non-finite input is NaN', async (t) => {
  const square = preparePolygon([[0, 0], [1, 0], [1, 1], [0, 1]]);
  t.equal(pointSegmentDistance(0, 2, -1, 0, 1, 0), 2, 'perpendicular');
  t.equal(pointSegmentDistance(3, 0, -1, 0, 1, 0), 2, 'beyond the end: to the end point');
  t.equal(pointSegmentDistance(3, 4, 0, 0, 0, 0), 5, 'a degenerate segment is a point');
  t.ok(Number.isNaN(pointSegmentDistance(NaN, 0, 0, 0, 1, 0)), 'NaN point');
  t.ok(Number.isNaN(pointSegmentDistance(0, 0, 0, 0, Infinity, 0)), 'infinite end (would otherwise hide in the t = 0 branch)');
  t.equal(segmentPolygonDistance(2, -1, 2, 2, square), 1, 'parallel to an edge');
  t.equal(segmentPolygonDistance(-1, 0.5, 2, 0.5, square), 0, 'crossing through, both ends outside');
  t.equal(segmentPolygonDistance(0.25, 0.25, 0.75, 0.75, square), 0, 'wholly inside');
  t.equal(segmentPolygonDistance(1, 2, 2, 1, square), Math.SQRT1_2, 'nearest to a vertex');
  t.equal(segmentPolygonDistance(-1, 1, 2, 1, square), 0, 'along an edge (collinear touch)');
  t.equal(segmentPolygonDistance(5, 5, 6, 6, square, 1), Infinity, 'far beyond the margin: skipped by the bounding box');
  t.ok(Number.isNaN(segmentPolygonDistance(NaN, 0, 0, 0, square)), 'NaN');
  t.ok(Number.isNaN(segmentPolygonDistance(0, 0, -Infinity, 0, square)), '-Infinity');
});

t.test('keep-out: the footprint touching the polygon is denied; clear by any margin passes', async (t) => {
  const cases: { name: string; action: string; params: Record<string, unknown>; state?: MobileRobotState; expected: Expected[] }[] = [
    { name: 'target just clear of the pillar (x 4 - r - 2^-20)', action: 'go_to', params: { xM: 3.5 - TINY, yM: 0, speedMPerS: 1 }, expected: [] },
    { name: 'target exactly one radius from the pillar: a touch', action: 'go_to', params: { xM: 3.5, yM: 0, speedMPerS: 1 }, expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, path: '/params', limit: 0.5, actual: 0.5, unit: 'm' }] },
    { name: 'target just inside one radius', action: 'go_to', params: { xM: 3.5 + TINY, yM: 0, speedMPerS: 1 }, expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, limit: 0.5, actual: 0.5 - TINY }] },
    { name: 'target inside the pillar', action: 'go_to', params: { xM: 4.5, yM: 0, speedMPerS: 1 }, expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, actual: 0 }] },
    { name: 'both ends clear, the straight line between crosses the pillar', action: 'go_to', params: { xM: 7, yM: 0, speedMPerS: 1 }, expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, path: '/params', actual: 0 }] },
    {
      name: 'every waypoint clear, segment 1 cuts through the pillar',
      action: 'follow_path',
      params: { waypoints: [[2, 3], [7, -3]], speedMPerS: 1 },
      expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, path: '/params/waypoints/1', limit: 0.5, actual: 0 }],
    },
    {
      name: 'centre line never enters, but grazes the pillar by 0.375 m < r',
      action: 'follow_path',
      params: { waypoints: [[0, 1.375], [7, 1.375]], speedMPerS: 1 },
      expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, path: '/params/waypoints/1', limit: 0.5, actual: 0.375 }],
    },
    { name: 'passing exactly one radius above the pillar: a touch', action: 'follow_path', params: { waypoints: [[0, 1.5], [7, 1.5]], speedMPerS: 1 }, expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', path: '/params/waypoints/1', actual: 0.5 }] },
    { name: 'passing just more than one radius above', action: 'follow_path', params: { waypoints: [[0, 1.5 + TINY], [7, 1.5 + TINY]], speedMPerS: 1 }, expected: [] },
    { name: 'passing near a corner (0.35 m diagonal)', action: 'go_to', params: { xM: 5.25, yM: 1.25, speedMPerS: 1 }, state: robotState({ x: 5.25, y: 4 }), expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR }] },
    { name: 'starting touching it: leaving is still denied (the current pose is part of the path)', action: 'go_to', params: { xM: 0, yM: 0, speedMPerS: 1 }, state: robotState({ x: 3.75, y: 0 }), expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, actual: 0.25 }] },
    { name: 'a zero-speed set_velocity next to it (turning in place)', action: 'set_velocity', params: { linearMPerS: 0, angularRadPerS: 1, durationMs: 1000 }, state: robotState({ x: 3.75, y: 0 }), expected: [] },
  ];
  for (const c of cases) assertReasons(t, check(c.action, c.params, c.state === undefined ? {} : { state: c.state }), c.expected, c.name);
  const many = check('follow_path', { waypoints: [[7, 0], [0, 0], [7, 0]], speedMPerS: 1 });
  t.equal(many.reasons.length, 1, 'one reason per keep-out area, however many segments touch it');
  t.match(many.reasons[0]?.message ?? '', /3 segments in all/);
});

t.test('a moving robot: the first segment is widened by its run-out (state age at its speed, then braking)', async (t) => {
  // v = 1 m/s, maxStateAge 250 ms, braking 2 m/s^2: 0.25 + 0.25 = 0.5 m; so segment 0 needs 1 m of clearance.
  t.equal(1 * 0.25 + stoppingDistanceM(amr.separation.stopping, 1), 0.5);
  const cases: { name: string; x: number; v: number; expected: Expected[] }[] = [
    { name: 'at rest 1 m from the pillar', x: 3, v: 0, expected: [] },
    { name: 'moving at 1 m/s, exactly 1 m from the pillar: touches', x: 3, v: 1, expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', ruleId: PILLAR, limit: 1, actual: 1 }] },
    { name: 'moving at 1 m/s, just over 1 m from it', x: 3 - TINY, v: 1, expected: [] },
    { name: 'reversing at 1 m/s counts the same', x: 3, v: -1, expected: [{ code: 'BOUNDS_KEEP_OUT_AREA', limit: 1, actual: 1 }] },
  ];
  for (const c of cases) {
    assertReasons(t, check('go_to', { xM: c.x, yM: 3, speedMPerS: 1 }, { state: robotState({ x: c.x, y: 0, v: c.v }) }), c.expected, c.name);
  }
  // Later segments are not widened: the run-out happens before the robot follows the path.
  assertReasons(t, check('follow_path', { waypoints: [[0, 2.5], [3, 2.5], [3, -3]], speedMPerS: 1 }, { state: robotState({ x: 0, y: 0, v: 1 }) }), [], 'a later segment 1 m from the pillar');
});

t.test('speed zones: the commanded speed must be within the limit of every zone the footprint touches', async (t) => {
  const rule = 'amr-t/speedZones/slow/normal';
  const cases: { name: string; action: string; params: Record<string, unknown>; state?: MobileRobotState; expected: Expected[] }[] = [
    { name: 'stopping just short of touching it, at full speed', action: 'go_to', params: { xM: 0, yM: 3.5 - TINY, speedMPerS: 1 }, expected: [] },
    { name: 'touching its edge at full speed', action: 'go_to', params: { xM: 0, yM: 3.5, speedMPerS: 1 }, expected: [{ code: 'BOUNDS_SPEED_ZONE', ruleId: rule, path: '/params', limit: 0.5, actual: 1, unit: 'm/s' }] },
    { name: 'entering it at exactly its limit', action: 'go_to', params: { xM: 0, yM: 5, speedMPerS: 0.5 }, expected: [] },
    { name: 'entering it just over its limit', action: 'go_to', params: { xM: 0, yM: 5, speedMPerS: 0.5 + TINY }, expected: [{ code: 'BOUNDS_SPEED_ZONE', ruleId: rule, limit: 0.5, actual: 0.5 + TINY }] },
    { name: 'waypoints outside, segment 1 crosses it', action: 'follow_path', params: { waypoints: [[-5, 5], [5, 5]], speedMPerS: 1 }, expected: [{ code: 'BOUNDS_SPEED_ZONE', ruleId: rule, path: '/params/waypoints/1' }] },
    { name: 'the same path at the zone limit', action: 'follow_path', params: { waypoints: [[-5, 5], [5, 5]], speedMPerS: 0.5 }, expected: [] },
    { name: 'leaving it from inside at full speed', action: 'go_to', params: { xM: 0, yM: 0, speedMPerS: 1 }, state: robotState({ x: 0, y: 5 }), expected: [{ code: 'BOUNDS_SPEED_ZONE', ruleId: rule, path: '/params' }] },
    // set_velocity 1 m/s for 500 ms: reach 0.5 + 0.25 = 0.75 m, plus the 0.5 m footprint.
    { name: 'set_velocity whose reach stops short of it', action: 'set_velocity', params: { linearMPerS: 1, angularRadPerS: 0, durationMs: 500 }, state: robotState({ x: 0, y: 2.75 - TINY }), expected: [] },
    { name: 'set_velocity whose reach touches it', action: 'set_velocity', params: { linearMPerS: 1, angularRadPerS: 0, durationMs: 500 }, state: robotState({ x: 0, y: 2.75 }), expected: [{ code: 'BOUNDS_SPEED_ZONE', ruleId: rule, limit: 0.5, actual: 1 }] },
    { name: 'set_velocity in reverse: the reach has no direction', action: 'set_velocity', params: { linearMPerS: -1, angularRadPerS: 0, durationMs: 500 }, state: robotState({ x: 0, y: 2.75 }), expected: [{ code: 'BOUNDS_SPEED_ZONE', ruleId: rule, actual: 1 }] },
  ];
  for (const c of cases) assertReasons(t, check(c.action, c.params, c.state === undefined ? {} : { state: c.state }), c.expected, c.name);
});

t.test('S_p terms: ISO/TS 15066 with the declared parameters', async (t) => {
  const at1 = protectiveSeparation(amr.separation, 1);
  t.same(
    { s_h: at1.humanM, s_r: at1.reactionM, s_s: at1.stoppingM, c: at1.intrusionM, z_d: at1.sensorM, z_r: at1.robotM, total: at1.totalM, t_s: at1.stoppingTimeS },
    { s_h: 2 * (0.125 + 0.5), s_r: 0.125, s_s: 0.25, c: 0.25, z_d: 0.125, z_r: 0.0625, total: 2.0625, t_s: 0.5 },
    'v = 1 m/s with 2 m/s^2 braking',
  );
  t.equal(protectiveSeparation(amr.separation, 0).totalM, 2 * 0.125 + 0.4375, 'standing still: the walker during T_r, plus C + Z_d + Z_r');
  t.equal(protectiveSeparation(amr.separation, -1).totalM, 2.0625, 'reversing is the same speed');
  t.equal(protectiveSeparation(amr.separation, 0.5).totalM, 1.3125);
  // Declared stopping time 0.5 s: S_s = v * T_s (no credit for the braking profile).
  t.equal(protectiveSeparation(amrS.separation, 1).totalM, 2 * (0.125 + 0.5) + 0.125 + 0.5 + 0.4375);
  t.ok(Number.isNaN(protectiveSeparation(amr.separation, NaN).totalM), 'NaN speed');
  t.equal(protectiveSeparation(amr.separation, Infinity).totalM, Infinity, 'infinite speed needs infinite room');
});

t.test('separation: each person at least S_p from the footprint edge along the path and at the current pose', async (t) => {
  const rule = 'amr-t/separation';
  const go = { xM: 0, yM: 3, speedMPerS: 1 };
  // S_p(1 m/s) = 2.0625 m, footprint 0.5 m: a person's centre-line distance must be at least 2.5625 m.
  const cases: { name: string; action?: string; params?: Record<string, unknown>; people: [number, number][]; state?: MobileRobotState; device?: MobileRobotDeclaration; expected: Expected[] }[] = [
    { name: 'beside the path at exactly S_p', people: [[2.5625, 1.5]], expected: [] },
    { name: 'beside the path just inside S_p', people: [[2.5625 - TINY, 1.5]], expected: [{ code: 'BOUNDS_SEPARATION', ruleId: rule, path: '/params', limit: 2.0625, actual: 2.0625 - TINY, unit: 'm' }] },
    { name: 'behind the current pose at exactly S_p', people: [[0, -2.5625]], expected: [] },
    { name: 'behind the current pose just inside S_p (the start counts)', people: [[0, -2.5625 + TINY]], expected: [{ code: 'BOUNDS_SEPARATION', ruleId: rule, limit: 2.0625, actual: 2.0625 - TINY }] },
    { name: 'ahead of the target at exactly S_p', people: [[0, 5.5625]], expected: [] },
    { name: 'on the path', people: [[0, 1]], expected: [{ code: 'BOUNDS_SEPARATION', ruleId: rule, actual: -0.5 }] },
    { name: 'slower (0.5 m/s): S_p 1.3125 m, exactly', params: { ...go, speedMPerS: 0.5 }, people: [[1.8125, 1.5]], expected: [] },
    { name: 'slower (0.5 m/s): just inside', params: { ...go, speedMPerS: 0.5 }, people: [[1.8125 - TINY, 1.5]], expected: [{ code: 'BOUNDS_SEPARATION', limit: 1.3125 }] },
    // Moving at 1 m/s while commanded 0.5: S_p for 1 m/s, and segment 0 widened by the 0.5 m run-out.
    { name: 'currently faster than commanded: S_p at the current speed, plus the run-out', params: { ...go, speedMPerS: 0.5 }, state: robotState({ v: 1 }), people: [[3.0625, 1.5]], expected: [] },
    { name: 'currently faster than commanded: just inside', params: { ...go, speedMPerS: 0.5 }, state: robotState({ v: 1 }), people: [[3.0625 - TINY, 1.5]], expected: [{ code: 'BOUNDS_SEPARATION', limit: 2.0625, actual: 2.0625 - TINY }] },
    { name: 'stopping-time robot: S_p 2.3125 m, exactly', device: amrS, people: [[2.8125, 1.5]], expected: [] },
    { name: 'stopping-time robot: just inside', device: amrS, people: [[2.8125 - TINY, 1.5]], expected: [{ code: 'BOUNDS_SEPARATION', ruleId: 'amr-s/separation', limit: 2.3125 }] },
    {
      name: 'a path: the segment closest to the person is named',
      action: 'follow_path',
      params: { waypoints: [[0, 3], [-3, 3], [-3, 6]], speedMPerS: 1 },
      people: [[-5, 5]],
      expected: [{ code: 'BOUNDS_SEPARATION', path: '/params/waypoints/2', actual: 2 - 0.5 }],
    },
    // set_velocity 1 m/s for 500 ms reaches 0.75 m in any direction: 0.5 + 0.75 + 2.0625 = 3.3125 m.
    { name: 'set_velocity: exactly S_p from the edge of its reach', action: 'set_velocity', params: { linearMPerS: 1, angularRadPerS: 0, durationMs: 500 }, people: [[-3.3125, 0]], expected: [] },
    { name: 'set_velocity: just inside', action: 'set_velocity', params: { linearMPerS: 1, angularRadPerS: 0, durationMs: 500 }, people: [[-3.3125 + TINY, 0]], expected: [{ code: 'BOUNDS_SEPARATION', limit: 2.0625, actual: 2.0625 - TINY }] },
    { name: 'set_velocity at zero speed with a person touching the robot: nothing moves', action: 'set_velocity', params: { linearMPerS: 0, angularRadPerS: 0.5, durationMs: 500 }, people: [[0.6, 0]], expected: [] },
    { name: 'two people too close: one reason each', people: [[1, 1], [-1, 2]], expected: [{ code: 'BOUNDS_SEPARATION' }, { code: 'BOUNDS_SEPARATION' }] },
    { name: 'a person at NaN is somewhere unknown', people: [[NaN, 50]], expected: [{ code: 'BOUNDS_SEPARATION', actual: NaN }] },
    { name: 'a person at Infinity too', people: [[Infinity, 0]], expected: [{ code: 'BOUNDS_SEPARATION', actual: NaN }] },
    { name: 'nobody', people: [], expected: [] },
  ];
  for (const c of cases) {
    const options = { people: peopleAt(...c.people), ...(c.state === undefined ? {} : { state: c.state }), ...(c.device === undefined ? {} : { device: c.device }) };
    assertReasons(t, check(c.action ?? 'go_to', c.params ?? go, options), c.expected, c.name);
  }
  const terms = check('go_to', go, { people: peopleAt([1, 1]) }).reasons[0]?.message ?? '';
  t.match(terms, /person 0 at \(1, 1\).*S_p at 1 m\/s is 2.0625 m \(S_h 1.25 \+ S_r 0.125 \+ S_s 0.25 \+ C 0.25 \+ Z_d 0.125 \+ Z_r 0.0625\)/, 'the message shows every term');
});

t.test('occupancy: the cell zones the footprint touches now; unknown without a trusted pose', async (t) => {
  const occupancy = (state: MobileRobotState) => MOBILE_ROBOT_BOUNDS.occupancy(amr, state, zones);
  const cases: { name: string; state: MobileRobotState; zoneIds: string[] | 'unknown'; moving: boolean }[] = [
    { name: 'one radius from the dock polygon: touching', state: robotState({ x: -2.5, y: -3.5 }), zoneIds: ['dock'], moving: false },
    { name: 'just more than one radius', state: robotState({ x: -2.5 + TINY, y: -3.5 }), zoneIds: [], moving: false },
    { name: 'one radius from the bench box (height ignored)', state: robotState({ x: -5.5, y: 1.5 }), zoneIds: ['bench'], moving: false },
    { name: 'touching the column sphere seen from above', state: robotState({ x: -5, y: -4 }), zoneIds: ['column'], moving: false },
    { name: 'just clear of the column', state: robotState({ x: -5, y: -4 + TINY }), zoneIds: [], moving: false },
    // A moving robot occupies where it is, not where it may brake to (zonesEntered covers that).
    { name: 'moving near the dock', state: robotState({ x: -2.5 + TINY, y: -3.5, v: 1 }), zoneIds: [], moving: true },
    { name: 'the moving flag alone', state: { ...robotState(), moving: true }, zoneIds: [], moving: true },
    { name: 'turning in place', state: { ...robotState(), velocity: { linearMPerS: 0, angularRadPerS: 0.3 } }, zoneIds: [], moving: true },
    { name: 'localization lost', state: { ...robotState({ x: 9, y: 9 }), localization: { ok: false } }, zoneIds: 'unknown', moving: false },
    { name: 'a NaN pose', state: { ...robotState(), pose: { xM: NaN, yM: 0, yawRad: 0 } }, zoneIds: 'unknown', moving: false },
    { name: 'a NaN velocity counts as moving', state: { ...robotState(), velocity: { linearMPerS: NaN, angularRadPerS: 0 } }, zoneIds: 'unknown', moving: true },
  ];
  for (const c of cases) t.same(occupancy(c.state), { zoneIds: c.zoneIds, moving: c.moving }, c.name);
});

t.test('zonesEntered: every cell zone the widened footprint touches along the command; unknown when it cannot be said', async (t) => {
  const entered = (action: string, params: Record<string, unknown>, state: MobileRobotState = robotState()) => MOBILE_ROBOT_BOUNDS.zonesEntered(amr, { action, params }, state, zones);
  t.same(entered('follow_path', { waypoints: [[-2, -3.5], [-7, -3.5]], speedMPerS: 1 }), ['dock'], 'a path through the dock');
  t.same(entered('go_to', { xM: -2, yM: -2, speedMPerS: 1 }), [], 'a path short of it');
  // set_velocity 1 m/s for 1 s: reach 1.25 m plus the footprint; the dock corner is sqrt(2) m away.
  t.same(entered('set_velocity', { linearMPerS: 1, angularRadPerS: 0, durationMs: 1000 }, robotState({ x: -2, y: -2 })), ['dock'], 'set_velocity reach');
  t.same(entered('set_velocity', { linearMPerS: 0.1, angularRadPerS: 0, durationMs: 100 }, robotState({ x: -2, y: -2 })), [], 'a short nudge');
  t.same(entered('stop', {}, robotState({ x: -2, y: -3.5, v: 1 })), ['dock'], 'stop: braking at 1 m/s runs out 0.5 m');
  t.same(entered('stop', {}, robotState({ x: -2, y: -3.5 })), [], 'stop at rest');
  t.equal(entered('go_to', { xM: NaN, yM: 0, speedMPerS: 1 }), 'unknown', 'an invalid target');
  t.equal(entered('set_velocity', { linearMPerS: 1, angularRadPerS: 0, durationMs: Infinity }), 'unknown', 'an endless twist');
  t.equal(entered('dance', {}), 'unknown', 'an unknown action');
  t.equal(entered('go_to', { xM: 1, yM: 0, speedMPerS: 1 }, { ...robotState(), localization: { ok: true, ageMs: 10_000 } }), 'unknown', 'stale localization');
});

t.test('shared zones through checkBounds: amr-t may not enter the dock while amr-2 is in it or may be', async (t) => {
  const into = { xM: -3.5, yM: -3.5, speedMPerS: 1 };
  const run = (amr2State: ObservedState | undefined): StageResult => {
    const own: ObservedState = { state: robotState(), receivedAtMs: NOW - 10, people: [] };
    return checkBounds({
      command: { commandId: 'c', kid: 'k', seq: 1, agent: agent(4), device: amr, action: 'go_to', params: into, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 1000 },
      declarations: loaded.declarations,
      states: { latest: (id) => (id === 'amr-t' ? own : id === 'amr-2' ? amr2State : undefined) },
      releases: NO_RELEASES,
      memory: new BoundsMemory(),
      nowMs: NOW,
    });
  };
  const at = (state: MobileRobotState): ObservedState => ({ state, receivedAtMs: NOW - 10 });
  t.equal(amr2.id, 'amr-2');
  assertReasons(t, run(at(robotState({ x: 8, y: 8 }))), [], 'amr-2 far away and at rest');
  assertReasons(t, run(at(robotState({ x: -3.5, y: -3.5 }))), [{ code: 'BOUNDS_SHARED_ZONE_OCCUPIED', ruleId: 'cell/sharedZones/dock' }], 'amr-2 in the dock');
  assertReasons(t, run(at(robotState({ x: -2.5, y: -3.5 }))), [{ code: 'BOUNDS_SHARED_ZONE_OCCUPIED' }], 'amr-2 touching the dock');
  const lost = run(at({ ...robotState({ x: 8, y: 8 }), localization: { ok: false } }));
  assertReasons(t, lost, [{ code: 'BOUNDS_SHARED_ZONE_OCCUPIED' }], 'amr-2 lost its localization');
  t.match(lost.reasons[0]?.message ?? '', /position in the cell is unknown/);
  assertReasons(t, run(undefined), [{ code: 'BOUNDS_SHARED_ZONE_OCCUPIED' }], 'no state from amr-2');
});
