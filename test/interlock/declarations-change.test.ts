// Replacing the declarations of a running interlock (Interlock.replaceCell, what a live configuration update ends
// in), on the interlock as `interlock run` composes it (startRuntime: embedded broker, SQLite audit log and identity
// store, the interlock's key) with commands and device state on a real MQTT connection and releases received by an
// outside subscriber: the new set is in force from the next decision on, a held command is denied rather than
// approved under rules no longer in force, a removed key stops working at once, a set for another cell is refused,
// and every change is audited with both digests and its source.

import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadCell, type LoadedCell } from '../../src/declarations/load.js';
import { liveInterlock, type LiveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';

/** A copy of the rig's cell (same agent keys) with `edit` applied to one file, loaded. */
function editedCell(cellDir: string, file: string, edit: (text: string) => string): LoadedCell {
  const copy = `${cellDir}-edited-${Math.random().toString(36).slice(2)}`;
  cpSync(cellDir, copy, { recursive: true });
  const path = join(copy, file);
  const before = readFileSync(path, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`the edit of ${file} changed nothing`);
  writeFileSync(path, after);
  const loaded = loadCell(copy);
  if (!loaded.ok) throw new Error(`edited cell does not load: ${JSON.stringify(loaded.problems)}`);
  return loaded.cell;
}

const events = (r: LiveInterlock, name: string) => r.audit.read(1, 10_000).filter((rec) => rec.detail?.['event'] === name);

t.test('a tighter limit is in force from the next decision, and the change is audited with both digests', async (t) => {
  const r = await liveInterlock(t);
  const planner = r.cell.signer('planner-1');
  const before = await r.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.15, rampMPerS2: 0.2 }));
  t.equal(before.report.verdict, 'allow', '0.15 m/s is within the declared maxStep and maxSpeed');

  const old = r.interlock.declarations.declarations.digest;
  const tighter = editedCell(r.cell.cellDir, 'devices/conveyor-1.yaml', (text) => text.replace('maxStep: { value: 0.2, unit: m/s }', 'maxStep: { value: 0.1, unit: m/s }'));
  const change = await r.interlock.replaceCell(tighter, { source: 'test', by: 'declarations-change.test' });
  t.match(change, { ok: true, changed: true, fromDigest: old, toDigest: tighter.declarations.digest });
  t.equal(r.interlock.declarations.declarations.digest, tighter.declarations.digest);

  // Back to 0 first (a stop is always fine), then the same 0.15 step that passed before.
  const stop = await r.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}));
  t.equal(stop.report.verdict, 'allow');
  const after = await r.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.15, rampMPerS2: 0.2 }));
  t.equal(after.report.verdict, 'deny', 'the same step is over the new maxStep');
  t.ok(after.report.reasons.some((reason) => reason.limit === 0.1), `denied against the new limit: ${JSON.stringify(after.report.reasons)}`);
  t.equal(after.report.declarationsDigest, tighter.declarations.digest, 'decided under the new set');

  const audited = events(r, 'declarations-changed');
  t.equal(audited.length, 1);
  t.match(audited[0]?.detail, { fromDigest: old, toDigest: tighter.declarations.digest, source: 'test', by: 'declarations-change.test' });
  t.ok(required(audited[0], 'the change record').seq < required(after.auditSeq, 'the record of the denial'), 'recorded before any decision under the new set');
  t.ok(r.audit.verify().ok);

  // The conveyor got the first setpoint and the stop, nothing else.
  await waitFor(() => r.releases.length >= 2, 'the two releases');
  await r.interlock.idle();
  t.same(r.releases.map((release) => release.command.action), ['set_speed', 'stop']);

  const same = await r.interlock.replaceCell(tighter, { source: 'test' });
  t.match(same, { ok: true, changed: false }, 'the same set again changes nothing');
  t.equal(events(r, 'declarations-changed').length, 1, 'and is not audited as a change');
});

t.test('a command held under the old declarations is denied when they are replaced', async (t) => {
  const r = await liveInterlock(t);
  const held = await r.send(CONVEYOR, r.cell.signer('trainee-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1 }));
  t.equal(held.report.verdict, 'hold');
  t.equal(r.interlock.approvals.list().length, 1);
  const next = editedCell(r.cell.cellDir, 'devices/conveyor-1.yaml', (text) => text.replace('maxStep: { value: 0.2, unit: m/s }', 'maxStep: { value: 0.15, unit: m/s }'));
  const before = r.decisions.length;
  const change = await r.interlock.replaceCell(next, { source: 'test' });
  t.match(change, { ok: true, changed: true });
  await waitFor(() => r.decisions.length > before, 'the final decision on the held command');
  const final = required(r.decisions[before], 'the final decision');
  t.equal(final.report.commandDigest, held.report.commandDigest, 'on the held command');
  t.equal(final.report.verdict, 'deny');
  t.ok(final.report.reasons.some((reason) => reason.code === 'APPROVAL_DECLARATIONS_CHANGED'));
  t.equal(final.released, false);
  t.equal(r.interlock.approvals.list().length, 0, 'nothing is left waiting');
  await r.interlock.idle();
  t.same(r.releases, [], 'nothing reached the conveyor');
  const voided = events(r, 'declarations-changed')[0]?.detail?.['voidedApprovals'];
  t.ok(Array.isArray(voided) && voided.length === 1, `the change names the voided approval: ${JSON.stringify(voided)}`);
});

t.test("a key removed from the registry stops working at the next decision; demotions carry over", async (t) => {
  const r = await liveInterlock(t);
  const planner = r.cell.signer('planner-1');
  r.interlock.trust.demote('trainee-1', 'quarantine', 'test quarantine', Date.now());
  const ok = await r.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(ok.report.verdict, 'allow');
  const withoutPlanner = editedCell(r.cell.cellDir, 'agents.yaml', (text) =>
    text.replace(/ {2}- id: planner-1\n(?: {4}.*\n)+/, ''),
  );
  t.equal(withoutPlanner.declarations.agents.has('planner-1'), false, 'the edited registry has no planner-1');
  t.match(await r.interlock.replaceCell(withoutPlanner, { source: 'test' }), { ok: true, changed: true });
  const denied = await r.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}));
  t.equal(denied.report.verdict, 'deny', 'not even a stop from a key that is no longer registered');
  t.ok(denied.report.reasons.some((reason) => reason.stage === 'envelope'), JSON.stringify(denied.report.reasons));
  t.equal(r.interlock.trust.demotion('trainee-1')?.demotedTo, 'quarantine', 'a new declaration set restores nobody');
  await r.releasesArrived();
  t.same(r.releases.map((release) => release.command.commandId), [ok.report.commandId], 'only the command before the change reached the conveyor');
});

t.test('declarations of another cell are refused, audited, and the running set stays in force', async (t) => {
  const r = await liveInterlock(t);
  const old = r.interlock.declarations.declarations.digest;
  const other = editedCell(r.cell.cellDir, 'cell.yaml', (text) => text.replace('cell: demo-cell', 'cell: other-cell'));
  const change = await r.interlock.replaceCell(other, { source: 'test' });
  t.equal(change.ok, false);
  t.match(change, { problem: /other-cell.*restart/ });
  t.equal(r.interlock.declarations.declarations.digest, old);
  t.equal(events(r, 'declarations-change-refused').length, 1);
  const still = await r.send(CONVEYOR, r.cell.signer('planner-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(still.report.verdict, 'allow', 'commands are still decided under the old set');
  t.equal(still.report.declarationsDigest, old);
  await waitFor(() => r.releases.length > 0, 'the release');
  t.equal(r.releases[0]?.command.commandId, still.report.commandId);
});
