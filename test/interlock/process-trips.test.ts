// Latched trips of a process unit through the interlock as `interlock run` builds it (embedded broker, SQLite audit
// log, real Cedar and keys), with pump-1's state published from outside as its driver would: a trip latches on a
// state message the parser refuses (its measurement missing, or the trip shown beside another fault), and a reset is
// refused while the device still reports the trip.

import t, { type Test } from 'tap';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import type { ProcessStateMessage } from '../../simulator/process-unit-driver.js';
import { restState } from '../bounds/process-unit/fixtures.js';
import { liveInterlock, type LiveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { amrStateMessage } from '../helpers/state-messages.js';
import { waitFor } from '../helpers/wait-for.js';

const PUMP = 'pump-1';
const BAR = 1e5;
const HIGH_PRESSURE_RULE = 'pump-1/trips/high_discharge_pressure';

/** pump-1 at rest at its safe state, as its driver puts it on the wire (the bounds tests' rest state, without `kind`). */
function restMessage(): ProcessStateMessage {
  const { kind: _kind, ...state } = restState();
  return { ...state, timeMs: 0 } as unknown as ProcessStateMessage;
}

interface Harness {
  readonly rig: LiveInterlock;
  /** What the feed publishes as pump-1's state at every tick (the test changes it). */
  pump: Record<string, unknown>;
  send(signerId: string, action: string, params: Record<string, unknown>): Promise<DecisionEvent>;
  /** Publishes `message` until the interlock has refused it (the pump has no state), then a rest state until it is back. */
  refuseOnce(message: Record<string, unknown>): Promise<void>;
  /** The actions released to pump-1, in order, once `last` (an allowed command) has been seen released. */
  released(last: DecisionEvent): Promise<string[]>;
}

async function harness(t: Test): Promise<Harness> {
  const h = {
    pump: restMessage() as unknown as Record<string, unknown>,
  } as Harness;
  const rig = await liveInterlock(t, { feed: { [PUMP]: () => h.pump, 'amr-1': () => amrStateMessage() } });
  Object.assign(h, {
    rig,
    send: (signerId: string, action: string, params: Record<string, unknown>) => rig.send(PUMP, rig.cell.signer(signerId).sign(PUMP, action, params)),
    refuseOnce: async (message: Record<string, unknown>) => {
      await waitFor(() => rig.interlock.states.latest(PUMP) !== undefined, 'pump-1 to have a state before the refused one');
      h.pump = message;
      await waitFor(() => rig.interlock.states.latest(PUMP) === undefined, 'the interlock to refuse the message (pump-1 has no state)');
      h.pump = restMessage() as unknown as Record<string, unknown>;
      await waitFor(() => rig.interlock.states.latest(PUMP) !== undefined, 'a valid pump-1 state again');
    },
    released: async (last: DecisionEvent) => {
      await rig.interlock.idle();
      // The last allowed command is the barrier: the broker delivers the interlock's releases in order, so once the
      // outside subscriber has it, a release of any earlier (denied) command would have arrived before it.
      await waitFor(() => rig.releases.some((r) => r.command.commandId === last.report.commandId), 'the outside subscriber to see the last release');
      return rig.releases.filter((r) => r.command.deviceId === PUMP).map((r) => r.command.action);
    },
  });
  return h;
}

const codes = (event: DecisionEvent): unknown[] => event.report.reasons.map((r) => [r.code, r.ruleId ?? null]);

t.test('a state without the trip measurement latches the trip; good states after it do not clear it', async (t) => {
  const h = await harness(t);
  const { discharge_pressure: _dropped, ...measurements } = restMessage().measurements;
  await h.refuseOnce({ ...restMessage(), measurements });

  const start = await h.send('planner-1', 'start', {});
  t.equal(start.report.verdict, 'deny', 'start after the unreadable state');
  t.same(codes(start), [['BOUNDS_TRIP_LATCHED', HIGH_PRESSURE_RULE]]);
  const why = required(start.report.reasons[0], 'the latch reason');
  t.match(why.message, /measurement unknown.*in a refused state message/, 'the reason says the measurement could not be read');
  t.equal(why.actual, undefined, 'no value was read, so none is given');

  // The operator resets it: the pressure reads normal now.
  const reset = await h.send('shift-lead', 'reset_trip', { trip: 'high_discharge_pressure' });
  t.equal(reset.report.verdict, 'allow', `reset once the pressure reads normal (${JSON.stringify(codes(reset))})`);
  const again = await h.send('planner-1', 'start', {});
  t.equal(again.report.verdict, 'allow', `start after the reset (${JSON.stringify(codes(again))})`);
  t.same(await h.released(again), ['reset_trip', 'start'], 'the first start never reached the pump');
});

t.test('a state refused for another fault while it shows 8.8 bar latches the discharge-pressure trip', async (t) => {
  const h = await harness(t);
  const rest = restMessage();
  // Refused for the missing discharge_valve setpoint; the pressure in it is over the 8 bar trip all the same.
  await h.refuseOnce({ ...rest, measurements: { ...rest.measurements, discharge_pressure: 8.8 * BAR }, setpoints: { pump_speed: 0, suction_valve: 1 } });

  const start = await h.send('planner-1', 'start', {});
  t.equal(start.report.verdict, 'deny', 'start after the refused 8.8 bar state');
  t.same(codes(start), [['BOUNDS_TRIP_LATCHED', HIGH_PRESSURE_RULE]]);
  const why = required(start.report.reasons[0], 'the latch reason');
  t.equal(why.actual, 8.8 * BAR, 'the pressure the refused message showed');
  t.equal(why.limit, 8 * BAR);
  t.equal(why.unit, 'Pa');
  const speed = await h.send('planner-1', 'set_setpoint', { name: 'pump_speed', value: 10, unit: 'rad/s' });
  t.same(codes(speed), [['BOUNDS_TRIP_LATCHED', HIGH_PRESSURE_RULE]], 'set_setpoint is denied too');
  const safe = await h.send('planner-1', 'go_safe', {});
  t.equal(safe.report.verdict, 'allow', 'go_safe passes while latched');

  const reset = await h.send('planner-1', 'reset_trip', { trip: 'high_discharge_pressure' });
  t.equal(reset.report.verdict, 'allow', `reset once the pressure reads normal (${JSON.stringify(codes(reset))})`);
  const again = await h.send('planner-1', 'start', {});
  t.equal(again.report.verdict, 'allow', `start after the reset (${JSON.stringify(codes(again))})`);
  t.same(await h.released(again), ['go_safe', 'reset_trip', 'start'], 'only go_safe, the reset and the last start reached the pump');
});

t.test('a reset is refused while the device still reports its own trip, by an agent and by an operator', async (t) => {
  const h = await harness(t);
  h.pump = { ...restMessage(), trips: ['pressure_switch_high'] };
  await waitFor(() => {
    const state = h.rig.interlock.states.latest(PUMP)?.state;
    return state?.kind === 'process_unit' && state.trips.includes('pressure_switch_high');
  }, 'the interlock to see the device trip');

  const deviceRule = 'pump-1/state/trips/pressure_switch_high';
  for (const who of ['planner-1', 'shift-lead']) {
    const reset = await h.send(who, 'reset_trip', { trip: 'pressure_switch_high' });
    t.equal(reset.report.verdict, 'deny', `reset by ${who} while the device reports the trip`);
    t.same(codes(reset), [['BOUNDS_TRIP_ACTIVE', deviceRule]]);
    t.match(reset.report.reasons[0]?.message ?? '', /device still reports it/);
  }

  // The device's own protection cleared: the interlock's latch still holds until a reset is released.
  h.pump = restMessage() as unknown as Record<string, unknown>;
  await waitFor(() => {
    const state = h.rig.interlock.states.latest(PUMP)?.state;
    return state?.kind === 'process_unit' && state.trips.length === 0;
  }, 'the interlock to see the device trip gone');
  const start = await h.send('planner-1', 'start', {});
  t.same(codes(start), [['BOUNDS_TRIP_LATCHED', deviceRule]], 'still latched in the interlock');
  const reset = await h.send('shift-lead', 'reset_trip', { trip: 'pressure_switch_high' });
  t.equal(reset.report.verdict, 'allow', `the reset passes once the device no longer reports it (${JSON.stringify(codes(reset))})`);
  const again = await h.send('planner-1', 'start', {});
  t.equal(again.report.verdict, 'allow', `start after the reset (${JSON.stringify(codes(again))})`);
  t.same(await h.released(again), ['reset_trip', 'start'], 'no refused reset and no early start reached the pump');
});
