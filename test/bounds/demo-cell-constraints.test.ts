// The demo cell's cell-level constraints, through the whole pipeline (signed commands, Cedar, bounds) with the real
// declarations: the transfer station that arm-1 and amr-1 share, and arm-1 and conveyor-1 dropping to their reduced
// limits while amr-1's scanners report a person near them, with the hold after the person leaves. Fixed clock.

import t from 'tap';
import type { LastRelease, ObservedState, ReleaseView, StateView } from '../../src/core/device-state.js';
import type { ArmState } from '../../src/core/kinds/robot-arm.js';
import type { ConveyorState } from '../../src/core/kinds/conveyor.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { BoundsMemory, evaluateCommand, type Decision, type PipelineContext } from '../../src/pipeline/pipeline.js';
import { AMR_AISLE_POSE, AMR_DOCK_POSE, amrReport, type AmrReportOptions } from '../helpers/demo-people.js';
import { makeTestCell } from '../helpers/test-cell.js';

const T0 = 1_800_000_000_000;
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
/** Over the tote on the transfer station: TCP at about (1.79, 1.13, 0.93). */
const TRANSFER = [0, -0.8, 0.9, -1.671, -1.571, 0];
/** A pick on the table, clear of the station: TCP at about (1.37, 1.41, 0.80). */
const PICK = [0.6, -1.2, 1.9, -2.2, -1.571, 0.3];
const STATION_RULE = 'cell/sharedZones/transfer-station';
/** At the loading station on the table's south side: inside table-surround, outside infeed-walkway. */
const AT_THE_TABLE: [number, number] = [1.0, -0.4];
/** Beside the infeed belt: inside infeed-walkway, outside table-surround. */
const AT_THE_BELT: [number, number] = [-1.5, 1.4];
/** The far end of the hall, where the demo's people walk. */
const FAR_AWAY: [number, number] = [12, 4];

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const declarations = loaded.declarations;

t.test('the example declares what these tests rely on', async (t) => {
  t.same(declarations.sharedZones, [{ zoneId: 'transfer-station', devices: ['arm-1', 'amr-1'] }]);
  t.same(declarations.people, { devices: ['amr-1'], maxAgeMs: 300 });
  const arm = declarations.devices.get('arm-1');
  const conveyor = declarations.devices.get('conveyor-1');
  t.same(arm?.modes, { reducedWhenPersonInZones: ['table-surround'], reducedForScopeAtMost: 3, holdReducedForMs: 2000 });
  t.same(conveyor?.modes, { reducedWhenPersonInZones: ['infeed-walkway'], reducedForScopeAtMost: 3, holdReducedForMs: 2000 });
});

/**
 * One pipeline with a settable clock, the devices' state and the release history, as the running interlock keeps
 * them. Each device keeps reporting: its state is always `ageMs` old at the current time.
 */
function rig() {
  let nowMs = T0;
  const world = new Map<string, () => ObservedState>();
  const released = new Map<string, LastRelease>();
  const view: StateView = { latest: (id) => world.get(id)?.() };
  const releases: ReleaseView = { last: (id) => released.get(id) };
  const context: PipelineContext = { cell: loaded, replay: new MemoryReplayGuard(() => nowMs), states: view, releases, bounds: new BoundsMemory() };
  const planner = cell.signer('planner-1', () => nowMs);
  return {
    at(ms: number): void {
      nowMs = ms;
    },
    /** The arm at rest at `positionsRad`, its state 10 ms old, naming `lastCommandId` as the last command it executed. */
    arm(positionsRad: readonly number[], lastCommandId: string | null = null): void {
      const state: ArmState = { kind: 'robot_arm', positionsRad, moving: false, velocitiesRadPerS: positionsRad.map(() => 0), lastCommandId };
      world.set('arm-1', () => ({ state, receivedAtMs: nowMs - 10 }));
    },
    amr(options: AmrReportOptions = {}, ageMs = 10): void {
      world.set('amr-1', () => amrReport(nowMs - ageMs, options));
    },
    conveyor(speedMPerS: number): void {
      const state: ConveyorState = { kind: 'conveyor', speedMPerS, permissives: { guardClosed: true, estopReleased: true, downstreamReady: true }, running: speedMPerS !== 0, safeStopped: false, lastCommandId: null };
      world.set('conveyor-1', () => ({ state, receivedAtMs: nowMs - 10 }));
    },
    forget(deviceId: string): void {
      world.delete(deviceId);
    },
    /** Records this command as the last one released to `deviceId`, `agoMs` ago (the interlock keeps one per device); returns its id. */
    release(deviceId: string, action: string, params: Record<string, unknown>, agoMs = 50): string {
      const commandId = `r-${deviceId}-${nowMs}-${released.size}`;
      released.set(deviceId, { commandId, action, params, releasedAtMs: nowMs - agoMs });
      return commandId;
    },
    send(deviceId: string, action: string, params: Record<string, unknown>): Decision {
      return evaluateCommand({ token: planner.sign(deviceId, action, params), topicDeviceId: deviceId }, context, nowMs);
    },
  };
}

const codes = (d: Decision) => d.reasons.map((r) => [r.code, r.ruleId]);
const armTo = (positionsRad: number[], velocityRadPerS = 1.0) => ({ positionsRad, velocityRadPerS });
const dock = { ...AMR_DOCK_POSE, speedMPerS: 0.3 };

t.test('the arm may not reach into the transfer station while the AMR is in it, and may once it has left', async (t) => {
  const r = rig();
  r.arm(HOME);

  r.amr({ pose: AMR_DOCK_POSE });
  const docked = r.send('arm-1', 'move_joints', armTo(TRANSFER));
  t.equal(docked.verdict, 'deny', 'the AMR is docked at the station');
  t.same(codes(docked), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'for the shared zone alone (the move is otherwise fine)');
  t.match(docked.reasons[0]?.message ?? '', /arm-1 would enter shared zone transfer-station, which amr-1 occupies/);
  t.equal(r.send('arm-1', 'move_joints', armTo(PICK)).verdict, 'allow', 'a pick that stays out of the station is not held up by the docked AMR');

  // Sent to the dock and on its way: still in the aisle, but released into the station.
  r.amr({ pose: { xM: 3.5, yM: -0.2, yawRad: 1.2 }, speedMPerS: 0.3 });
  r.release('amr-1', 'go_to', dock);
  const onItsWay = r.send('arm-1', 'move_joints', armTo(TRANSFER));
  t.same(codes(onItsWay), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'the AMR is driving to the dock');
  t.match(onItsWay.reasons[0]?.message ?? '', /which amr-1 has been released into/);

  // Sent back to the aisle; still inside the station while it pulls out.
  r.release('amr-1', 'go_to', { ...AMR_AISLE_POSE, speedMPerS: 0.3 });
  r.amr({ pose: { xM: 2.6, yM: 1.0, yawRad: -1.2 }, speedMPerS: 0.3 });
  t.same(codes(r.send('arm-1', 'move_joints', armTo(TRANSFER))), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'the AMR is pulling out of the station');

  // Out of it and at rest in the aisle.
  r.amr({ pose: AMR_AISLE_POSE });
  const free = r.send('arm-1', 'move_joints', armTo(TRANSFER));
  t.equal(free.verdict, 'allow', codes(free).join(' | '));
  t.equal(free.mode, 'normal');
});

t.test('when the AMR cannot say where it is, the station counts as occupied', async (t) => {
  const cases: { name: string; amr: (r: ReturnType<typeof rig>) => void; why: RegExp }[] = [
    { name: 'no state from the AMR', amr: (r) => r.forget('amr-1'), why: /which amr-1 may occupy/ },
    { name: 'the AMR state 1 ms over its maxStateAge (200 ms)', amr: (r) => r.amr({ pose: AMR_AISLE_POSE }, 201), why: /which amr-1 may occupy \(its state is missing or stale\)/ },
    // Its people report still counts; only its pose cannot be trusted.
    { name: 'the AMR reports its localization lost', amr: (r) => r.amr({ pose: AMR_AISLE_POSE, localized: false }), why: /which amr-1 may occupy \(its position in the cell is unknown\)/ },
  ];
  for (const c of cases) {
    const r = rig();
    r.arm(HOME);
    c.amr(r);
    const decision = r.send('arm-1', 'move_joints', armTo(TRANSFER));
    t.equal(decision.verdict, 'deny', c.name);
    const shared = decision.reasons.filter((x) => x.code === 'BOUNDS_SHARED_ZONE_OCCUPIED');
    t.same(shared.map((x) => x.ruleId), [STATION_RULE], `${c.name}: the station rule`);
    t.match(shared[0]?.message ?? '', c.why, `${c.name}: says why`);
  }
});

t.test('the AMR may not dock while the arm works in the station, and may once the arm is out and at rest', async (t) => {
  const r = rig();
  r.amr({ pose: AMR_AISLE_POSE });

  r.arm(TRANSFER);
  const armThere = r.send('amr-1', 'go_to', dock);
  t.equal(armThere.verdict, 'deny', 'the arm is over the tote');
  t.same(codes(armThere), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'for the shared zone alone (the docking run is otherwise fine)');
  t.match(armThere.reasons[0]?.message ?? '', /amr-1 would enter shared zone transfer-station, which arm-1 occupies/);
  t.equal(r.send('amr-1', 'go_to', { xM: 5, yM: -0.5, speedMPerS: 0.5 }).verdict, 'allow', 'driving down the aisle does not enter the station');

  // Released into the station a moment ago: its latest state, sent before that release, still shows it at home.
  r.arm(HOME);
  r.release('arm-1', 'move_joints', armTo(TRANSFER), 5);
  const released = r.send('amr-1', 'go_to', dock);
  t.same(codes(released), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'the arm is on its way into the station');
  t.match(released.reasons[0]?.message ?? '', /which arm-1 has been released into/);

  // Released back home: out of the station once its own state names that release and shows it at rest at home. A
  // state at rest at home that names an older command (sent before the arm had the release) proves nothing.
  const home = r.release('arm-1', 'move_joints', armTo(HOME), 50);
  r.arm(HOME, 'an-older-command');
  const notYet = r.send('amr-1', 'go_to', dock);
  t.same(codes(notYet), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'a state at rest naming an older command');
  t.match(notYet.reasons[0]?.message ?? '', new RegExp(`which arm-1 has been released into \\(command ${home} not yet reported finished: its latest state names command an-older-command\\)`));
  r.arm(HOME, home);
  const free = r.send('amr-1', 'go_to', dock);
  t.equal(free.verdict, 'allow', codes(free).join(' | '));
  t.equal(free.mode, 'normal');
});

t.test('a person near the table puts the arm in its reduced limits, for holdReduced after they leave', async (t) => {
  const r = rig();
  r.arm(HOME);
  const fastPick = () => r.send('arm-1', 'move_joints', armTo(PICK, 1.0));
  const slowPick = () => r.send('arm-1', 'move_joints', armTo(PICK, 0.3));

  r.amr({ people: [FAR_AWAY] });
  const before = fastPick();
  t.equal(before.verdict, 'allow', 'nobody near the table: the fast pick passes');
  t.equal(before.mode, 'normal');

  r.at(T0 + 100);
  r.amr({ people: [FAR_AWAY, AT_THE_TABLE] });
  const withPerson = fastPick();
  t.equal(withPerson.mode, 'reduced', 'a person at the table');
  t.same(codes(withPerson), [['BOUNDS_TCP_SPEED', 'arm-1/tcp/speed/reduced']], 'the same fast pick, over the reduced TCP speed');
  const slow = slowPick();
  t.equal(slow.verdict, 'allow', 'slowed to 0.3 rad/s it is within the reduced limits');
  t.equal(slow.mode, 'reduced');

  // They leave. The hold runs from the last time the interlock saw them in the zone: here, the commands at T0 + 100.
  // (The running interlock also looks at every people report as it arrives, so there it runs from the last report.)
  r.amr({ people: [FAR_AWAY] });
  for (const [afterMs, mode] of [
    [1000, 'reduced'],
    [1900, 'reduced'],
    [2000, 'reduced'],
    [2001, 'normal'],
  ] as const) {
    r.at(T0 + 100 + afterMs);
    const decision = fastPick();
    t.equal(decision.mode, mode, `${afterMs} ms after the last sighting: ${mode}`);
    t.equal(decision.verdict, mode === 'normal' ? 'allow' : 'deny', `${afterMs} ms after: the fast pick is ${mode === 'normal' ? 'allowed' : 'denied'}`);
  }
});

t.test('the watched zone: its boundary counts, just outside does not; people unknown is reduced', async (t) => {
  const cases: { name: string; people?: [number, number][]; ageMs?: number; mode: 'normal' | 'reduced' }[] = [
    { name: 'nobody reported', people: [], mode: 'normal' },
    { name: 'on the zone edge, 1.0 m east of the table', people: [[2.9, 1.0]], mode: 'reduced' },
    { name: '1 mm outside that edge', people: [[2.901, 1.0]], mode: 'normal' },
    { name: 'at the corner of the zone', people: [[-0.9, -0.9]], mode: 'reduced' },
    { name: 'beside the infeed belt (the conveyor watches that)', people: [AT_THE_BELT], mode: 'normal' },
    { name: 'report exactly maxAge (300 ms) old', people: [], ageMs: 300, mode: 'normal' },
    { name: 'report 301 ms old: people unknown', people: [], ageMs: 301, mode: 'reduced' },
  ];
  for (const c of cases) {
    const r = rig();
    r.arm(HOME);
    // The pick stays out of the station, so only the people report's age matters here, not the AMR's own maxStateAge.
    r.amr({ people: c.people ?? [] }, c.ageMs ?? 10);
    const decision = r.send('arm-1', 'move_joints', armTo(PICK, 1.0));
    t.equal(decision.mode, c.mode, c.name);
  }
  const r = rig();
  r.arm(HOME);
  r.forget('amr-1');
  t.equal(r.send('arm-1', 'move_joints', armTo(PICK, 0.3)).mode, 'reduced', 'no report from the AMR at all: reduced');
});

t.test('a person beside the infeed belt puts the conveyor in its reduced limits, not the arm', async (t) => {
  const r = rig();
  r.arm(HOME);
  r.conveyor(0.2);
  r.amr({ people: [] });
  const nobody = r.send('conveyor-1', 'set_speed', { speedMPerS: 0.3 });
  t.equal(nobody.verdict, 'allow', 'nobody there: 0.3 m/s is within normal (0.5)');
  t.equal(nobody.mode, 'normal');

  r.at(T0 + 100);
  r.conveyor(0.3);
  r.amr({ people: [AT_THE_BELT] });
  const withPerson = r.send('conveyor-1', 'set_speed', { speedMPerS: 0.4 });
  t.equal(withPerson.mode, 'reduced');
  t.same(codes(withPerson), [['BOUNDS_CONVEYOR_SPEED', 'conveyor-1/maxSpeed/reduced']], '0.4 m/s is over the reduced 0.25');
  t.equal(r.send('arm-1', 'move_joints', armTo(PICK, 1.0)).mode, 'normal', 'the arm does not watch the belt');

  r.at(T0 + 200);
  r.amr({ people: [AT_THE_TABLE] });
  t.equal(r.send('arm-1', 'move_joints', armTo(PICK, 0.3)).mode, 'reduced', 'the arm watches the table');
  r.at(T0 + 2101);
  t.equal(r.send('conveyor-1', 'set_speed', { speedMPerS: 0.25 }).mode, 'normal', 'the conveyor is normal again after its hold: nobody at the belt');
});
