// The reduced-mode hold follows the state history, not the moments commands arrive (issue 11, item 2): a people
// source that goes silent longer than the people maxAge makes people unknown for that time, and when it reports
// again the person-watching devices stay reduced for their holdReduced, although no command was checked during
// the silence. Through the interlock as `interlock run` builds it, with the declared freshness limits, on a manual
// clock so the silence is exactly as long as the test says.

import t from 'tap';
import { manualClock } from '../helpers/clocks.js';
import { liveInterlock, topics } from '../helpers/live-interlock.js';
import { amrStateMessage, conveyorStateMessage } from '../helpers/state-messages.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const PEOPLE_SOURCE = 'amr-1';

t.test('people unknown for 600 ms while no command is checked still holds reduced for holdReduced after', async (t) => {
  const clock = manualClock(1_800_000_000_000);
  const belt = { speed: 0 };
  // The conveyor is fed by the rig (every message stamped with the manual time); the people source is played here.
  const rig = await liveInterlock(t, { clock, stateAgeMs: null, feed: { [CONVEYOR]: () => conveyorStateMessage({ speedMPerS: belt.speed }) } });
  const conveyor = rig.interlock.declarations.declarations.devices.get(CONVEYOR);
  const holdMs = conveyor?.modes.holdReducedForMs ?? NaN;
  const peopleMaxAgeMs = rig.interlock.declarations.declarations.people.maxAgeMs;
  t.equal(holdMs, 2000, 'the demo conveyor holds reduced 2 s');
  t.equal(peopleMaxAgeMs, 300, 'the demo people report is fresh for 300 ms');
  const signer = rig.cell.signer('planner-1', () => clock.nowMs());

  /** The people source reports nobody now; resolves once the interlock holds that report. */
  const reportNobody = async (): Promise<void> => {
    const at = clock.nowMs();
    await rig.report(PEOPLE_SOURCE, amrStateMessage());
    await waitFor(() => rig.interlock.states.latest(PEOPLE_SOURCE)?.receivedAtMs === at, 'the people report to arrive');
  };
  /** Lets `ms` pass with the people source reporting every 100 ms (never silent) and the belt state fresh. */
  const reportingFor = async (ms: number): Promise<void> => {
    for (let passed = 0; passed < ms; passed += 100) {
      clock.advance(100);
      await reportNobody();
    }
    await beltFresh();
  };
  const beltFresh = async (): Promise<void> => {
    const at = clock.nowMs();
    await waitFor(() => {
      const latest = rig.interlock.states.latest(CONVEYOR);
      return latest?.receivedAtMs === at && latest.state.kind === 'conveyor' && latest.state.speedMPerS === belt.speed;
    }, 'a belt state at the current time');
  };
  const setSpeed = (speedMPerS: number) => rig.send(CONVEYOR, signer.sign(CONVEYOR, 'set_speed', { speedMPerS, rampMPerS2: 0.2 }));

  // Start-up: people were unknown until the first report, so the hold runs from it. Past it, normal.
  await reportNobody();
  await reportingFor(holdMs + 200);
  const first = await setSpeed(0.2);
  t.match(first.report, { verdict: 'allow', mode: 'normal' }, '0.2 m/s in normal with people known for longer than the hold');
  belt.speed = 0.2;
  await reportingFor(200);

  // The people source falls silent for 600 ms (twice its maxAge); nothing is checked meanwhile. Then it reports
  // nobody again, every 100 ms, and 500 ms later 0.3 m/s is asked for: over the reduced 0.25.
  clock.advance(600);
  await reportNobody();
  await reportingFor(500);
  const during = await setSpeed(0.3);
  t.equal(during.report.verdict, 'deny', 'denied: reduced still holds 500 ms after people were known again');
  t.equal(during.report.mode, 'reduced');
  t.same(
    during.report.reasons.map((r) => r.code),
    ['BOUNDS_CONVEYOR_SPEED'],
    'over the reduced speed limit, nothing else',
  );
  t.match(during.report.modeBecause.join(' | '), /holding reduced for 2000 ms after the last trigger, 500 ms ago: people unknown \(people report of amr-1 is 600 ms old/, 'the deny says which silence');
  t.equal(rig.releases.filter((r) => r.command.commandId === during.report.commandId).length, 0, 'nothing released');

  // Once the hold has run out (people reported all along), the same request is checked in normal and allowed.
  await reportingFor(holdMs - 500 + 100);
  const after = await setSpeed(0.3);
  t.match(after.report, { verdict: 'allow', mode: 'normal' }, 'normal again once holdReduced has passed');
});

t.test('a refused people report leaves people unknown until the next good one, and the hold runs from there', async (t) => {
  const clock = manualClock(1_800_000_000_000);
  const rig = await liveInterlock(t, { clock, stateAgeMs: null, feed: { [CONVEYOR]: () => conveyorStateMessage() } });
  const modes = rig.interlock.bounds.modes;
  const publish = async (message: unknown): Promise<void> => {
    await rig.report(PEOPLE_SOURCE, message as Record<string, unknown>);
  };
  await publish(amrStateMessage());
  await waitFor(() => rig.interlock.states.latest(PEOPLE_SOURCE) !== undefined, 'the first people report');
  const startedAt = clock.nowMs();
  t.equal(modes.lastTriggerOf(CONVEYOR)?.atMs, startedAt, 'start-up: people unknown until the first report');
  clock.advance(5000);
  // Within maxAge of nothing: only a refused message (people with a non-numeric coordinate) 100 ms before a good one.
  await publish({ ...amrStateMessage(), people: [['x', 1]] });
  await waitFor(() => rig.interlock.states.latest(PEOPLE_SOURCE) === undefined, 'the refused report to void the state');
  clock.advance(100);
  await publish(amrStateMessage());
  await waitFor(() => rig.interlock.states.latest(PEOPLE_SOURCE) !== undefined, 'the next good report');
  const last = modes.lastTriggerOf(CONVEYOR);
  t.equal(last?.atMs, startedAt + 5100, 'the trigger held until the good report');
  t.match(last?.why ?? '', /people unknown \(no state from people source amr-1\)/);
});
