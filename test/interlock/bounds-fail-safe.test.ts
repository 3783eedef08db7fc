// Fail-safe rules of the bounds, through the interlock as `interlock run` builds it (embedded broker, SQLite audit
// log and identity store, real Cedar and keys), with the agent and the driver's state on a real MQTT connection:
// the cases where the engine was once looser than docs/declarations.md promises, each as an agent and a device would meet it.

import t from 'tap';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { liveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { amrStateMessage, conveyorStateMessage } from '../helpers/state-messages.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const codes = (event: DecisionEvent): string[] => event.report.reasons.map((r) => r.code);

t.test('a conveyor is not reversed after a tiny forward setpoint: a stop (or 0) must be released first', async (t) => {
  let beltMPerS = 0;
  const rig = await liveInterlock(t, { feed: { [CONVEYOR]: () => conveyorStateMessage({ speedMPerS: beltMPerS }), 'amr-1': () => amrStateMessage() } });
  const planner = rig.cell.signer('planner-1');
  const beltAt = (speed: number): Promise<void> =>
    waitFor(() => {
      const state = rig.interlock.states.latest(CONVEYOR)?.state;
      return state?.kind === 'conveyor' && state.speedMPerS === speed;
    }, `the belt at ${speed} m/s`);

  t.equal((await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}))).report.verdict, 'allow');
  // 0.006 m/s is inside the belt's 0.01 m/s standstill band, but it is a forward setpoint all the same.
  const creep = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.006 }));
  t.equal(creep.report.verdict, 'allow', codes(creep).join(','));
  beltMPerS = 0.006;
  await beltAt(0.006);
  const reverse = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: -0.05 }));
  t.equal(reverse.report.verdict, 'deny');
  t.same(codes(reverse), ['BOUNDS_CONVEYOR_REVERSAL']);
  const why = required(reverse.report.reasons[0], 'the reversal reason');
  t.equal(why.ruleId, `${CONVEYOR}/reversal/lastRelease`);
  t.equal(why.actual, 0.006);
  t.equal(why.limit, 0);
  await rig.releasesArrived();
  t.same(
    rig.releases.map((r) => r.command.action + (r.command.action === 'set_speed' ? ` ${String(r.command.params['speedMPerS'])}` : '')),
    ['stop', 'set_speed 0.006'],
    'the reversal never reached the conveyor',
  );

  // The documented way: release a stop, let the belt come to rest, then reverse.
  t.equal((await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}))).report.verdict, 'allow');
  beltMPerS = 0;
  await beltAt(0);
  const afterStop = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: -0.05 }));
  t.equal(afterStop.report.verdict, 'allow', codes(afterStop).join(','));
  await waitFor(() => rig.releases.length === 4, 'the reverse release');
  t.equal(rig.releases.at(-1)?.command.params['speedMPerS'], -0.05);
});
