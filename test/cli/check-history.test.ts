// `interlock check` with history (issue 11, item 6): the rules that need it (setpoint rate, reversal and step
// against the last release, a released reset clearing a latch, the reduced hold after people were unknown) are
// evaluated from what the input gives: earlier lines (an allowed line counts as released), history.releases and
// history.states. What the input does not cover is named in `unevaluated`. Each case fails on the check that had
// no history (every rule that needs it passed silently).

import t, { type Test } from 'tap';
import { PassThrough, Readable } from 'node:stream';
import { runCheck, type CheckOutputLine } from '../../src/cli/check.js';
import { restState } from '../bounds/process-unit/fixtures.js';
import { amrStateMessage, conveyorStateMessage } from '../helpers/state-messages.js';
import { makeTestCell, type TestCell } from '../helpers/test-cell.js';

const NOW = 1_795_000_000_000;
const BAR = 1e5;

function testCell(t: Test): TestCell {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  return cell;
}

async function check(cell: TestCell, lines: readonly unknown[]): Promise<CheckOutputLine[]> {
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  await runCheck(cell.load(), Readable.from([lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')]), output, () => NOW);
  return chunks
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as CheckOutputLine);
}

const codes = (o: CheckOutputLine | undefined): string[] => (o?.reasons ?? []).map((r) => r.code);
const rules = (o: CheckOutputLine | undefined): string[] => (o?.unevaluated ?? []).map((u) => u.rule);

/** pump-1's state message at rest (no `kind`), with overrides. */
function pump(overrides: Parameters<typeof restState>[0] = {}): Record<string, unknown> {
  const { kind: _kind, ...state } = restState(overrides);
  return state as unknown as Record<string, unknown>;
}

/** The people source reporting nobody for the last 5 s (a steady run), 20 ms ago. */
const PEOPLE_KNOWN = { 'amr-1': { ...amrStateMessage(), ageMs: 20, steadyMs: 5000 } };

t.test('a 4-step setpoint ramp at 9x maxRate: the first step is allowed, the rest are BOUNDS_SETPOINT_RATE', async (t) => {
  const cell = testCell(t);
  // maxRate 600 rpm/s = 62.83 rad/s per s: 3.14 rad/s in 50 ms. Each step is 28.3 rad/s, 50 ms apart (9x), and
  // the state follows the last value, so no step limit (600 rpm from every reference) is what stops it.
  const step = 28.3;
  const lines = [1, 2, 3, 4].map((k) => {
    const atMs = NOW + k * 50;
    const previous = (k - 1) * step;
    return {
      token: cell.signer('planner-1', () => atMs).sign('pump-1', 'set_setpoint', { name: 'pump_speed', value: k * step, unit: 'rad/s' }),
      atMs,
      state: { ...pump({ running: true, measurements: { pump_speed: previous }, setpoints: { pump_speed: previous } }), ageMs: 10 },
    };
  });
  const out = await check(cell, lines);
  t.same(out.map((o) => o.verdict), ['allow', 'deny', 'deny', 'deny']);
  t.same(codes(out[1]), ['BOUNDS_SETPOINT_RATE'], 'the second step: only its rate is wrong');
  // Later steps are measured from the last release, the first line's value: their step from it is too big as well.
  t.ok(out.slice(1).every((o) => codes(o).includes('BOUNDS_SETPOINT_RATE')), 'every later step is over the rate');
  t.equal(out[1]?.reasons[0]?.ruleId, 'pump-1/setpoints/pump_speed/maxRate');
  t.same(rules(out[0]), ['pump-1/setpoints/pump_speed/maxRate'], 'the first line says the rate had no earlier release to go by');
  t.same(rules(out[1]), [], 'from the second line the allowed first one is the last release');
});

t.test('reversal against the last release: a tiny forward setpoint in history.releases forbids the reversal', async (t) => {
  const cell = testCell(t);
  const planner = cell.signer('planner-1', () => NOW);
  const belt = { ...conveyorStateMessage({ speedMPerS: 0.006 }), ageMs: 10 };
  const reverse = () => planner.sign('conveyor-1', 'set_speed', { speedMPerS: -0.05, rampMPerS2: 0.2 });
  const forwardReleased = [{ device: 'conveyor-1', action: 'set_speed', params: { speedMPerS: 0.006, rampMPerS2: 0.2 }, ageMs: 3000 }];
  const stopReleased = [{ device: 'conveyor-1', action: 'stop', params: {}, ageMs: 3000 }];
  const [noHistory, afterForward, afterStop] = await check(cell, [
    { token: reverse(), atMs: NOW, state: belt, states: PEOPLE_KNOWN },
    { token: reverse(), atMs: NOW + 1, state: belt, states: PEOPLE_KNOWN, history: { releases: forwardReleased } },
    { token: reverse(), atMs: NOW + 2, state: belt, states: PEOPLE_KNOWN, history: { releases: stopReleased } },
  ]);
  t.equal(noHistory?.verdict, 'allow', 'no release known: the belt is within standstill, so the reversal passes');
  t.same(rules(noHistory), ['conveyor-1/reversal/lastRelease', 'conveyor-1/maxStep/lastRelease'], '...and the output says what it could not check');
  t.equal(afterForward?.verdict, 'deny');
  t.same(codes(afterForward), ['BOUNDS_CONVEYOR_REVERSAL']);
  t.equal(afterForward?.reasons[0]?.ruleId, 'conveyor-1/reversal/lastRelease');
  t.same(rules(afterForward), [], 'history.releases given: nothing left unevaluated');
  t.equal(afterStop?.verdict, 'allow', 'a released stop last: the reversal is allowed');
});

t.test('mode history: the reduced hold follows the people history the input gives', async (t) => {
  const cell = testCell(t);
  const planner = cell.signer('planner-1', () => NOW);
  const belt = { ...conveyorStateMessage({ speedMPerS: 0.2 }), ageMs: 10 };
  const releases = [{ device: 'conveyor-1', action: 'set_speed', params: { speedMPerS: 0.2, rampMPerS2: 0.2 }, ageMs: 10_000 }];
  const faster = () => planner.sign('conveyor-1', 'set_speed', { speedMPerS: 0.3, rampMPerS2: 0.2 });
  const people = amrStateMessage();
  const out = await check(cell, [
    // Only one people report, 20 ms old: the history starts there, so reduced holds as after a restart.
    { token: faster(), atMs: NOW, state: belt, states: { 'amr-1': { ...people, ageMs: 20 } }, history: { releases } },
  ]);
  t.match(out[0], { verdict: 'deny', mode: 'reduced' });
  t.same(codes(out[0]), ['BOUNDS_CONVEYOR_SPEED']);
  t.same(rules(out[0]), ['conveyor-1/modes/holdReduced']);

  const cell2 = testCell(t);
  const planner2 = cell2.signer('planner-1', () => NOW);
  const [steady, afterSilence] = await check(cell2, [
    { token: planner2.sign('conveyor-1', 'set_speed', { speedMPerS: 0.3, rampMPerS2: 0.2 }), atMs: NOW, state: belt, states: PEOPLE_KNOWN, history: { releases } },
    {
      token: cell2.signer('planner-1', () => NOW + 10_000).sign('conveyor-1', 'set_speed', { speedMPerS: 0.3, rampMPerS2: 0.2 }),
      atMs: NOW + 10_000,
      state: { ...conveyorStateMessage({ speedMPerS: 0.3 }), ageMs: 10 },
      // Reports every 100 ms until 1100 ms ago, silent for 600 ms, reporting again for the last 500 ms.
      history: { states: { 'amr-1': [{ ...people, ageMs: 1100, steadyMs: 8000 }] } },
      states: { 'amr-1': { ...people, ageMs: 20, steadyMs: 480 } },
    },
  ]);
  t.match(steady, { verdict: 'allow', mode: 'normal' }, 'people known for longer than the hold: normal, 0.3 m/s allowed');
  t.same(rules(steady), []);
  t.match(afterSilence, { verdict: 'deny', mode: 'reduced' }, 'a 600 ms silence ended 500 ms ago: reduced holds');
  t.match(afterSilence?.modeBecause.join(' | ') ?? '', /holding reduced for 2000 ms after the last trigger, 500 ms ago: people unknown \(people report of amr-1 is 600 ms old/);
});

t.test('a released reset in the history clears the latch its trip state set', async (t) => {
  const cell = testCell(t);
  const planner = cell.signer('planner-1', () => NOW);
  const tripped = { ...pump({ measurements: { discharge_pressure: 8.8 * BAR } }), ageMs: 5000 };
  const rest = { ...pump(), ageMs: 10 };
  const reset = { device: 'pump-1', action: 'reset_trip', params: { trip: 'high_discharge_pressure' }, ageMs: 3000 };
  const [noReset, withReset] = await check(cell, [
    { token: planner.sign('pump-1', 'start', {}), atMs: NOW, state: rest, history: { states: { 'pump-1': [tripped] }, releases: [] } },
    { token: planner.sign('pump-1', 'start', {}), atMs: NOW + 1, state: rest, history: { releases: [{ ...reset, ageMs: 1 }] } },
  ]);
  t.equal(noReset?.verdict, 'deny');
  t.same(codes(noReset), ['BOUNDS_TRIP_LATCHED'], 'the trip in the history latched');
  t.equal(withReset?.verdict, 'allow', 'the released reset cleared it');
});

t.test('bad history is INPUT_INVALID, names the entry, and changes nothing', async (t) => {
  const cell = testCell(t);
  const planner = cell.signer('planner-1', () => NOW);
  const belt = { ...conveyorStateMessage({ speedMPerS: 0.006 }), ageMs: 10 };
  const reverse = () => planner.sign('conveyor-1', 'set_speed', { speedMPerS: -0.05, rampMPerS2: 0.2 });
  const forward = { device: 'conveyor-1', action: 'set_speed', params: { speedMPerS: 0.006 }, ageMs: 3000 };
  const out = await check(cell, [
    { token: reverse(), atMs: NOW, state: belt, states: PEOPLE_KNOWN, history: { releases: [forward, { ...forward, device: 'belt-9' }] } },
    { token: reverse(), atMs: NOW, state: belt, states: PEOPLE_KNOWN, history: { releases: [forward], states: { 'amr-1': [{ ...amrStateMessage(), people: [['x', 1]], ageMs: 100 }] } } },
    { token: reverse(), atMs: NOW, state: belt, states: PEOPLE_KNOWN, history: { releases: [{ ...forward, ageMs: -1 }] } },
    { token: reverse(), atMs: NOW, state: belt, states: { ...PEOPLE_KNOWN, 'belt-9': { ageMs: 0 } } },
    // None of the above changed the session: no release of the forward setpoint is known, the reversal passes.
    { token: reverse(), atMs: NOW, state: belt, states: PEOPLE_KNOWN },
  ]);
  t.same(out.map((o) => codes(o)[0] ?? o.verdict), ['INPUT_INVALID', 'INPUT_INVALID', 'INPUT_INVALID', 'INPUT_INVALID', 'allow']);
  t.match(out[0]?.reasons[0]?.message ?? '', /\/history\/releases\/1\/device: no device belt-9/);
  t.match(out[1]?.reasons[0]?.message ?? '', /\/history\/states\/amr-1\/0 \(state of amr-1\)/);
  t.match(out[2]?.reasons[0]?.message ?? '', /\/history\/releases\/0\/ageMs/);
  t.match(out[3]?.reasons[0]?.message ?? '', /\/states\/belt-9: no device belt-9/);
});

t.test('a release in history.releases is finished once a later state names its commandId at rest', async (t) => {
  const cell = testCell(t);
  const planner = cell.signer('planner-1', () => NOW);
  const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
  const move = () => planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 });
  const released = { device: 'arm-1', action: 'move_joints', params: { positionsRad: HOME, velocityRadPerS: 0.5 }, ageMs: 1000, commandId: 'earlier-move' };
  const atRest = (lastCommandId: string | null) => ({ positionsRad: HOME, velocitiesRadPerS: [0, 0, 0, 0, 0, 0], moving: false, lastCommandId, ageMs: 20 });
  const [named, notNamed] = await check(cell, [
    { token: move(), atMs: NOW, state: atRest('earlier-move'), states: PEOPLE_KNOWN, history: { releases: [released] } },
    { token: move(), atMs: NOW + 1, state: atRest('something-older'), states: PEOPLE_KNOWN, history: { releases: [{ ...released, commandId: 'another-move' }] } },
  ]);
  t.equal(named?.verdict, 'allow', `the state names the release at rest: finished (${codes(named).join(', ')})`);
  t.equal(notNamed?.verdict, 'deny', 'a state naming an older command: the release may still be moving the arm');
});
