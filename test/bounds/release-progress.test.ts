// A release counts as finished only from the device's own report of it: its state names the released command
// (lastCommandId) and shows it at rest. A state received after the release proves nothing by arriving late: it may
// have been sent before the driver had the release. Until then the device may be anywhere its release (or one before
// it) could take it at its top speed, for other devices' shared-zone checks and for its own next command.
// The demo cell's arm-1 and amr-1 sharing the transfer station, through the bounds stage, with a fixed clock.

import t from 'tap';
import { checkBounds } from '../../src/bounds/bounds.js';
import { releaseProgress } from '../../src/bounds/release-progress.js';
import type { VerifiedCommand } from '../../src/core/command.js';
import type { DeviceDeclaration } from '../../src/core/declarations.js';
import type { LastRelease, ObservedState } from '../../src/core/device-state.js';
import type { MobileRobotState } from '../../src/core/kinds/mobile-robot.js';
import type { ArmState } from '../../src/core/kinds/robot-arm.js';
import { BoundsMemory } from '../../src/pipeline/pipeline.js';
import { AMR_AISLE_POSE, AMR_DOCK_POSE, amrReport } from '../helpers/demo-people.js';
import { makeTestCell } from '../helpers/test-cell.js';

const NOW = 1_800_000_000_000;
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
/** Over the tote on the transfer station: TCP at about (1.79, 1.13, 0.93). */
const TRANSFER = [0, -0.8, 0.9, -1.671, -1.571, 0];
/** A pick on the table, clear of the station: TCP at about (1.37, 1.41, 0.80). */
const PICK = [0.6, -1.2, 1.9, -2.2, -1.571, 0.3];
const STATION_RULE = 'cell/sharedZones/transfer-station';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const { declarations } = loaded;
const device = (id: string): DeviceDeclaration => declarations.devices.get(id) as DeviceDeclaration;

/**
 * arm-1 at `positionsRad`, at rest or creeping (0.01 rad/s per joint: a run-out of a few mm); `lastCommandId`
 * undefined leaves the field out (a state that cannot name a command).
 */
function armAt(positionsRad: readonly number[], lastCommandId: string | null | undefined, moving = false): ArmState {
  const state: ArmState = { kind: 'robot_arm', positionsRad, moving, velocitiesRadPerS: positionsRad.map(() => (moving ? 0.01 : 0)) };
  return lastCommandId === undefined ? state : { ...state, lastCommandId };
}

const release = (commandId: string, action: string, params: Record<string, unknown>): LastRelease => ({ commandId, action, params, releasedAtMs: NOW - 100 });
const intoStation = release('arm-into-station', 'move_joints', { positionsRad: TRANSFER, velocityRadPerS: 1 });

interface World {
  /** arm-1's state; received 10 ms ago, i.e. 90 ms after the release: late arrival is not proof. */
  readonly arm: ArmState;
  readonly armRelease?: LastRelease;
  /** amr-1's last release and the command id its state names (null by default). */
  readonly amrRelease?: LastRelease;
  readonly amrNames?: string | null;
  readonly amrPose?: { readonly xM: number; readonly yM: number; readonly yawRad: number };
}

function decide(deviceId: string, action: string, params: Record<string, unknown>, world: World): ReturnType<typeof checkBounds> {
  const agent = declarations.agents.get('planner-1');
  if (agent === undefined) throw new Error('no planner-1');
  const command: VerifiedCommand = { commandId: 'next', kid: 'k', seq: 1, agent, device: device(deviceId), action, params, safeState: false, issuedAtMs: NOW, expiresAtMs: NOW + 2000 };
  const amr = amrReport(NOW - 10, { pose: world.amrPose ?? AMR_AISLE_POSE });
  const amrState = { ...(amr.state as MobileRobotState), lastCommandId: world.amrNames ?? null };
  const states = new Map<string, ObservedState>([
    ['arm-1', { state: world.arm, receivedAtMs: NOW - 10 }],
    ['amr-1', { ...amr, state: amrState }],
  ]);
  const releases = new Map<string, LastRelease | undefined>([
    ['arm-1', world.armRelease],
    ['amr-1', world.amrRelease],
  ]);
  return checkBounds({ command, declarations, states: { latest: (id) => states.get(id) }, releases: { last: (id) => releases.get(id) }, memory: new BoundsMemory(), nowMs: NOW });
}

const codes = (result: ReturnType<typeof checkBounds>) => result.reasons.map((r) => [r.code, r.ruleId]);
const dock = { ...AMR_DOCK_POSE, speedMPerS: 0.3 };

t.test('releaseProgress: only a state naming the release at rest finishes it', async (t) => {
  const at = (moving: boolean) => () => moving;
  /** Received 90 ms after the release, unless told otherwise. */
  const seen = (state: ArmState, receivedAtMs = NOW - 10): ObservedState => ({ state, receivedAtMs });
  t.same(releaseProgress(undefined, seen(armAt(HOME, null)), at(false)), { finished: true }, 'nothing released: judged by its state');
  t.same(releaseProgress(intoStation, seen(armAt(HOME, 'arm-into-station')), at(false)), { finished: true }, 'names the release, at rest');
  const early = releaseProgress(intoStation, seen(armAt(HOME, 'arm-into-station'), intoStation.releasedAtMs), at(false));
  t.match(early, { finished: false, why: /names it and was received no later than the release/ }, 'never looser than the rule before: received after the release too');
  const moving = releaseProgress(intoStation, seen(armAt(HOME, 'arm-into-station', true)), at(true));
  t.equal(moving.finished, false, 'names the release, moving: not finished');
  t.equal(!moving.finished && moving.underWay, undefined, 'names the release, moving: its state is on that path, no top-speed assumption');
  const cases: { name: string; names: string | null | undefined; why: RegExp }[] = [
    { name: 'names an older command', names: 'arm-older', why: /command arm-into-station not yet reported finished: its latest state names command arm-older/ },
    { name: 'names no command (null)', names: null, why: /its latest state names no command/ },
    { name: 'cannot name one (field absent)', names: undefined, why: /does not report lastCommandId, so it can never show a command finished/ },
  ];
  for (const c of cases) {
    const progress = releaseProgress(intoStation, seen(armAt(HOME, c.names)), at(false));
    t.equal(progress.finished, false, `${c.name}, at rest: not finished`);
    if (progress.finished) continue;
    t.equal(progress.underWay?.commandId, 'arm-into-station', `${c.name}: under way`);
    t.match(progress.why, c.why, `${c.name}: says why`);
  }
});

t.test('another device: a late state at rest naming an older command does not settle the release into the station', async (t) => {
  const cases: { name: string; arm: ArmState; allowed: boolean; why?: RegExp }[] = [
    { name: 'at home, naming the command before the release', arm: armAt(HOME, 'arm-older'), allowed: false, why: /which arm-1 has been released into \(command arm-into-station not yet reported finished: its latest state names command arm-older\)/ },
    { name: 'at home, naming no command', arm: armAt(HOME, null), allowed: false, why: /has been released into \(command arm-into-station not yet reported finished: its latest state names no command\)/ },
    { name: 'at home, a state without lastCommandId', arm: armAt(HOME, undefined), allowed: false, why: /can never show a command finished/ },
    { name: 'naming the release, still moving (at home)', arm: armAt(HOME, 'arm-into-station', true), allowed: false, why: /its state names it and shows it moving/ },
    { name: 'naming the release, at rest in the station', arm: armAt(TRANSFER, 'arm-into-station'), allowed: false, why: /which arm-1 occupies$/ },
    { name: 'naming the release, at rest at home (it was sent back before reaching the station)', arm: armAt(HOME, 'arm-into-station'), allowed: true },
  ];
  for (const c of cases) {
    const result = decide('amr-1', 'go_to', dock, { arm: c.arm, armRelease: intoStation });
    if (c.allowed) {
      t.equal(result.verdict, 'allow', `${c.name}: ${codes(result).join(' | ')}`);
      continue;
    }
    t.same(codes(result), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], c.name);
    t.match(result.reasons[0]?.message ?? '', c.why ?? /./, `${c.name}: says why`);
  }
});

t.test('a released stop: the arm may be anywhere until its state names the stop, then it is judged by its place', async (t) => {
  const stop = release('arm-stop', 'stop', {});
  const notYet = decide('amr-1', 'go_to', dock, { arm: armAt(HOME, 'arm-older'), armRelease: stop });
  t.same(codes(notYet), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'stop not yet named: the move before it may still be reaching into the station');
  t.match(notYet.reasons[0]?.message ?? '', /command arm-stop not yet reported finished/);
  t.equal(decide('amr-1', 'go_to', dock, { arm: armAt(HOME, 'arm-stop'), armRelease: stop }).verdict, 'allow', 'stop named, at rest at home: the station is free');
  const stoppedInside = decide('amr-1', 'go_to', dock, { arm: armAt(TRANSFER, 'arm-stop'), armRelease: stop });
  t.match(stoppedInside.reasons[0]?.message ?? '', /which arm-1 occupies$/, 'stop named, at rest in the station: it occupies it');
});

t.test("the arm's own next command is checked as if its release may still be moving it", async (t) => {
  const pick = { positionsRad: PICK, velocityRadPerS: 1 };
  const toPick = release('arm-to-pick', 'move_joints', pick);
  const settled = decide('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 1 }, { arm: armAt(PICK, 'arm-to-pick'), armRelease: toPick });
  t.equal(settled.verdict, 'allow', `the pick named at rest: back home passes (${codes(settled).join(' | ')})`);
  const late = decide('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 1 }, { arm: armAt(PICK, 'arm-older'), armRelease: toPick });
  t.equal(late.verdict, 'deny', 'the same move while the state still names an older command');
  t.ok(late.reasons.length > 0 && late.reasons.every((r) => /may be moving \(command arm-to-pick not yet reported finished: its latest state names command arm-older: joint \w+ at up to/.test(r.message)), `every reason is the run-out of the release under way: ${late.reasons.map((r) => r.message).join(' | ')}`);
});

t.test("the AMR's own next command is checked as if its release may still be driving it at top speed", async (t) => {
  const toAisle = release('amr-to-aisle', 'go_to', { ...AMR_AISLE_POSE, speedMPerS: 0.3 });
  const arm = armAt(HOME, null);
  t.equal(decide('amr-1', 'go_to', dock, { arm, amrRelease: toAisle, amrNames: 'amr-to-aisle' }).verdict, 'allow', 'the last release named at rest in the aisle: docking passes');
  const late = decide('amr-1', 'go_to', dock, { arm, amrRelease: toAisle, amrNames: 'amr-older' });
  t.equal(late.verdict, 'deny', `the last release not yet named: the run-out at top speed reaches the table (${codes(late).join(' | ')})`);
  t.ok(late.reasons.some((r) => r.code === 'BOUNDS_KEEP_OUT_AREA'), 'for a keep-out area its widened path now touches');
});
