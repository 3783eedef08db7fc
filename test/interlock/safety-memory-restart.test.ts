// Safety memory survives a restart (issue 12, item 6), through the interlock as `interlock run` builds it (embedded
// broker, SQLite audit log and identity store in one state folder, real Cedar and keys), restarted cleanly on the
// same state folder: a latched pump trip, an operator's reduced mode, a released setpoint and a rate window are all
// in force after the restart as they were before it. Each would be forgotten by an interlock that keeps them in
// memory only. The restarts on a manual clock let no time pass, so what holds after it is not luck of timing.

import t, { type Test } from 'tap';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { restState } from '../bounds/process-unit/fixtures.js';
import { manualClock, type ManualClock } from '../helpers/clocks.js';
import { liveInterlock, type LiveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { amrStateMessage, conveyorStateMessage } from '../helpers/state-messages.js';
import { waitFor } from '../helpers/wait-for.js';

const PUMP = 'pump-1';
const CONVEYOR = 'conveyor-1';
const BAR = 1e5;
const HIGH_PRESSURE_RULE = 'pump-1/trips/high_discharge_pressure';
/** A whole second, so a command's iat (seconds) is never before the replay epoch (ms). */
const T0 = 1_800_000_000_000;

type Message = Record<string, unknown>;

/** pump-1 at rest at its safe state as its driver puts it on the wire, with `measurements`/`setpoints` overridden. */
function pumpMessage(overrides: { measurements?: Record<string, number | boolean>; setpoints?: Record<string, number> } = {}): Message {
  const { kind: _kind, ...state } = restState(overrides);
  return { ...state, timeMs: 0 };
}

const codes = (event: DecisionEvent): unknown[] => event.report.reasons.map((r) => [r.code, r.ruleId ?? null]);

interface Rig {
  readonly rig: LiveInterlock;
  readonly clock: ManualClock;
  /** What the feed publishes for each device now (the test changes it). */
  readonly feed: Record<string, Message>;
  send(signerId: string, deviceId: string, action: string, params: Record<string, unknown>): Promise<DecisionEvent>;
  /** Waits until the interlock holds a state of `deviceId` received at the clock's time now that `test` accepts. */
  stateNow(deviceId: string, test?: (state: Message) => boolean): Promise<void>;
}

async function rig(t: Test, options: { clock?: ManualClock } = {}): Promise<Rig> {
  const clock = options.clock ?? manualClock(T0);
  const feed: Record<string, Message> = { [PUMP]: pumpMessage(), [CONVEYOR]: conveyorStateMessage({ speedMPerS: 0.2 }), 'amr-1': amrStateMessage() };
  const live = await liveInterlock(t, { clock, feed: { [PUMP]: () => required(feed[PUMP], PUMP), [CONVEYOR]: () => required(feed[CONVEYOR], CONVEYOR), 'amr-1': () => required(feed['amr-1'], 'amr-1') } });
  const signers = new Map<string, ReturnType<typeof live.cell.signer>>();
  return {
    rig: live,
    clock,
    feed,
    send(signerId, deviceId, action, params) {
      let signer = signers.get(signerId);
      if (signer === undefined) {
        signer = live.cell.signer(signerId, () => clock.nowMs());
        signers.set(signerId, signer);
      }
      return live.send(deviceId, signer.sign(deviceId, action, params));
    },
    async stateNow(deviceId, test = () => true) {
      const at = clock.nowMs();
      await waitFor(() => {
        const latest = live.interlock.states.latest(deviceId);
        return latest !== undefined && latest.receivedAtMs === at && test(latest.state as unknown as Message);
      }, `a state of ${deviceId} received at ${at}`);
    },
  };
}

/** Lets the start-up reduced hold run out on the manual clock: people known for longer than holdReduced. */
async function pastStartupHold(r: Rig): Promise<void> {
  r.clock.advance(2500);
  await r.stateNow('amr-1');
  await r.rig.modesSettled();
}

t.test('a latched pump trip survives a clean restart: start is refused until a reset_trip is released', async (t) => {
  const r = await rig(t);
  const rest = pumpMessage();
  r.feed[PUMP] = pumpMessage({ measurements: { discharge_pressure: 8.8 * BAR } });
  await r.stateNow(PUMP, (s) => (s['measurements'] as Record<string, number>)['discharge_pressure'] === 8.8 * BAR);
  r.feed[PUMP] = rest;
  await r.stateNow(PUMP, (s) => (s['measurements'] as Record<string, number>)['discharge_pressure'] === 0.39 * BAR);
  const before = await r.send('planner-1', PUMP, 'start', {});
  t.same(codes(before), [['BOUNDS_TRIP_LATCHED', HIGH_PRESSURE_RULE]], 'latched before the restart');

  await r.rig.restart();
  const after = await r.send('planner-1', PUMP, 'start', {});
  t.same(codes(after), [['BOUNDS_TRIP_LATCHED', HIGH_PRESSURE_RULE]], 'still latched after the restart, with the pressure normal since');
  t.match(required(after.report.reasons[0], 'the latch').message, /measured 880000/, 'the latch as it was: the value that tripped it');
  t.equal(required(after.report.reasons[0], 'the latch').actual, 8.8 * BAR);

  const reset = await r.send('shift-lead', PUMP, 'reset_trip', { trip: 'high_discharge_pressure' });
  t.equal(reset.report.verdict, 'allow', `the reset passes with the pressure normal (${JSON.stringify(codes(reset))})`);
  await r.rig.restart();
  const started = await r.send('planner-1', PUMP, 'start', {});
  t.equal(started.report.verdict, 'allow', `the released reset survives a restart too (${JSON.stringify(codes(started))})`);
  await r.rig.interlock.idle();
  await waitFor(() => r.rig.releases.some((x) => x.command.commandId === started.report.commandId), 'the start to reach the pump');
  t.same(
    r.rig.releases.filter((x) => x.command.deviceId === PUMP).map((x) => x.command.action),
    ['reset_trip', 'start'],
    'no start reached the pump before the reset',
  );
});

t.test("an operator's reduced mode survives a clean restart, until an operator sets auto", async (t) => {
  const r = await rig(t);
  await pastStartupHold(r);
  const normal = await r.send('planner-1', CONVEYOR, 'set_speed', { speedMPerS: 0.3 });
  t.match(normal.report, { verdict: 'allow', mode: 'normal' }, '0.3 m/s passes in normal before the operator acts');
  t.match(await r.rig.operator({ action: 'set_mode', device: CONVEYOR, mode: 'reduced' }), { ok: true, mode: 'reduced' });

  await r.rig.restart();
  await pastStartupHold(r);
  const reduced = await r.send('planner-1', CONVEYOR, 'set_speed', { speedMPerS: 0.3 });
  t.equal(reduced.report.mode, 'reduced', 'still reduced after the restart');
  t.same(codes(reduced), [['BOUNDS_CONVEYOR_SPEED', 'conveyor-1/maxSpeed/reduced']], 'over the reduced 0.25 m/s');
  t.ok(reduced.report.modeBecause?.includes('an operator set reduced mode'), `the operator's mode is named (${JSON.stringify(reduced.report.modeBecause)})`);

  t.match(await r.rig.operator({ action: 'set_mode', device: CONVEYOR, mode: 'auto' }), { ok: true, mode: 'auto' });
  await r.rig.restart();
  await pastStartupHold(r);
  const back = await r.send('planner-1', CONVEYOR, 'set_speed', { speedMPerS: 0.3 });
  t.match(back.report, { verdict: 'allow', mode: 'normal' }, 'auto survives the restart as well');
});

t.test('a released setpoint survives a clean restart: the rate is measured from it', async (t) => {
  const r = await rig(t);
  const first = await r.send('planner-1', PUMP, 'set_setpoint', { name: 'pump_speed', value: 50, unit: 'rad/s' });
  t.equal(first.report.verdict, 'allow', `50 rad/s from rest (${JSON.stringify(codes(first))})`);
  await r.rig.interlock.idle();
  // The pump follows: it reports the new setpoint and runs at it, so steps from the state alone are small.
  r.feed[PUMP] = pumpMessage({ setpoints: { pump_speed: 50 }, measurements: { pump_speed: 50 } });
  await r.rig.restart();
  r.clock.advance(100);
  await r.stateNow(PUMP, (s) => (s['setpoints'] as Record<string, number>)['pump_speed'] === 50);

  // maxRate 600 rpm/s is 62.83 rad/s per second: 100 ms after the release allows 6.28 rad/s, and 60 is 10 away.
  const fast = await r.send('planner-1', PUMP, 'set_setpoint', { name: 'pump_speed', value: 60, unit: 'rad/s' });
  t.same(codes(fast), [['BOUNDS_SETPOINT_RATE', 'pump-1/setpoints/pump_speed/maxRate']], 'the rate since the release before the restart');
  const why = required(fast.report.reasons[0], 'the rate reason');
  t.equal(why.actual, 10, 'measured from the released 50');
  t.ok(Math.abs((why.limit ?? NaN) - (600 * (2 * Math.PI) / 60) * 0.1) < 1e-9, `the limit for 100 ms (${why.limit})`);
  t.match(why.message, /100 ms after the last release/);

  r.clock.advance(900);
  await r.stateNow(PUMP);
  const later = await r.send('planner-1', PUMP, 'set_setpoint', { name: 'pump_speed', value: 60, unit: 'rad/s' });
  t.equal(later.report.verdict, 'allow', `a second after the release it passes (${JSON.stringify(codes(later))})`);
});

t.test('a rate window survives a clean restart: the 11th command within the second is still over the limit', async (t) => {
  const r = await rig(t);
  // conveyor-1 takes at most 10 commands per second from all agents together.
  for (let i = 0; i < 10; i++) {
    const decided = await r.send('planner-1', CONVEYOR, 'set_speed', { speedMPerS: 0.1 });
    t.notOk(decided.report.reasons.some((r) => r.code === 'BOUNDS_RATE_LIMIT'), `command ${i + 1} is within the limit`);
  }
  await r.rig.restart();
  r.clock.advance(500);
  await r.stateNow(CONVEYOR);
  const eleventh = await r.send('planner-1', CONVEYOR, 'set_speed', { speedMPerS: 0.1 });
  t.same(codes(eleventh), [['BOUNDS_RATE_LIMIT', 'conveyor-1/rateLimit']], 'the window holds the 10 commands from before the restart');
  t.match(required(eleventh.report.reasons[0], 'the rate reason'), { limit: 10, actual: 11 });

  // Past the window of the first ten (the 11th is in it now), commands pass again.
  r.clock.advance(501);
  await r.stateNow(CONVEYOR);
  const later = await r.send('planner-1', CONVEYOR, 'set_speed', { speedMPerS: 0.1 });
  t.equal(later.report.verdict, 'allow', `once the window has passed (${JSON.stringify(codes(later))})`);
});
