// What one state message changes in the pipeline's memory, for every device kind that has person-watching modes:
// the hold after a state trigger runs from the end of the trigger as the state history shows it (a silence, a
// refused report, the time before the first report), not from when a command happened to be checked.

import t from 'tap';
import type { Principal } from '../../src/core/declarations.js';
import { BoundsMemory } from '../../src/bounds/bounds.js';
import { peopleInCell } from '../../src/bounds/people.js';
import { StateStore } from '../../src/interlock/state-store.js';
import { observeStateMessage } from '../../src/pipeline/observe-state.js';
import { required } from '../helpers/required.js';
import { amrStateMessage } from '../helpers/state-messages.js';
import { makeTestCell } from '../helpers/test-cell.js';

const testCell = makeTestCell();
t.teardown(() => testCell.cleanup());
const { declarations } = testCell.load();
const SOURCE = required(declarations.people.devices[0], 'a people source');
const MAX_AGE = declarations.people.maxAgeMs;
// Every demo device whose modes watch zones for people: the arm and the conveyor (two kinds).
const WATCHING = [...declarations.devices.values()].filter((d) => d.modes.reducedWhenPersonInZones.length > 0);
const OPERATOR: Principal = { kind: 'operator', id: 'shift-lead' } as unknown as Principal;
const T0 = 1_800_000_000_000;

function cell() {
  const memory = { states: new StateStore(), bounds: new BoundsMemory() };
  const report = (atMs: number, message: unknown = amrStateMessage()) =>
    observeStateMessage(declarations, SOURCE, typeof message === 'string' ? message : JSON.stringify(message), atMs, memory);
  const modeAt = (deviceId: string, atMs: number) =>
    memory.bounds.modes.resolve(required(declarations.devices.get(deviceId), deviceId), OPERATOR, peopleInCell(declarations.people, memory.states, atMs), declarations.zones, atMs);
  /** Reports nobody every 100 ms from `fromMs` (exclusive) to `toMs` (inclusive): people known all along. */
  const steady = (fromMs: number, toMs: number) => {
    for (let at = fromMs + 100; at <= toMs; at += 100) report(at);
  };
  return { memory, report, modeAt, steady };
}

t.test('the demo cell has person-watching devices of more than one kind', async (t) => {
  t.same(new Set(WATCHING.map((d) => d.kind)), new Set(['robot_arm', 'conveyor']));
  t.ok(WATCHING.every((d) => d.modes.holdReducedForMs === 2000));
});

for (const device of WATCHING) {
  const hold = device.modes.holdReducedForMs;
  t.test(`${device.kind} ${device.id}: a silence of the people source holds reduced for holdReduced after it ends`, async (t) => {
    const c = cell();
    c.report(T0);
    c.steady(T0, T0 + 3000);
    t.equal(c.modeAt(device.id, T0 + 3000).mode, 'normal', 'people known for longer than the hold: normal');
    // Silent for 2 x maxAge, then nobody; no decision is made during the silence.
    const back = T0 + 3000 + 2 * MAX_AGE;
    c.report(back);
    c.steady(back, back + hold);
    const held = c.modeAt(device.id, back + hold);
    t.equal(held.mode, 'reduced', 'exactly holdReduced after the silence ended: still reduced');
    t.match(held.because.join(' | '), new RegExp(`people report of ${SOURCE} is ${2 * MAX_AGE} ms old`));
    c.report(back + hold + 1);
    t.equal(c.modeAt(device.id, back + hold + 1).mode, 'normal', 'past it: normal');
  });

  t.test(`${device.kind} ${device.id}: a silence shorter than maxAge is no trigger; a refused report or no report is`, async (t) => {
    const c = cell();
    c.report(T0);
    t.equal(c.memory.bounds.modes.lastTriggerOf(device.id)?.atMs, T0, 'before the first report people were unknown: the hold runs from it');
    c.steady(T0, T0 + hold + 100);
    const quiet = T0 + hold + 100 + MAX_AGE; // exactly maxAge since the last report is still fresh
    c.report(quiet);
    t.equal(c.memory.bounds.modes.lastTriggerOf(device.id)?.atMs, T0, 'a gap of exactly maxAge: no trigger');
    const refused = c.report(quiet + 50, { ...amrStateMessage(), people: [['x', 1]] });
    t.equal(refused.ok, false, 'the malformed report is refused');
    c.report(quiet + 100);
    t.equal(c.memory.bounds.modes.lastTriggerOf(device.id)?.atMs, quiet + 100, 'people unknown from the refused report until the next good one');
    t.equal(c.modeAt(device.id, quiet + 100 + hold).mode, 'reduced');
  });
}

t.test('an observation older than the last trigger does not move the hold back', async (t) => {
  const c = cell();
  const device = required(WATCHING[0], 'a watching device');
  c.report(T0 + 10_000);
  c.report(T0); // out of order (a clock that went back): the state is taken, the trigger time stays
  t.equal(c.memory.bounds.modes.lastTriggerOf(device.id)?.atMs, T0 + 10_000);
});
