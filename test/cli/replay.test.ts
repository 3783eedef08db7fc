// `interlock replay` on commands the live rig recorded (the interlock as `interlock run` builds it, real SQLite): against
// a copy of the cell with a tighter conveyor speed limit exactly the command above it flips to deny with the speed
// reason; against a copy whose policy forbids the trainee, its hold and its approval re-check flip to deny with the
// forbid; against the same cell nothing changes. Unreadable input is exit 1 and says which.

import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../src/cli/main.js';
import type { ReplayReport } from '../../src/cli/replay.js';
import { liveInterlock, topics, type LiveInterlock } from '../helpers/live-interlock.js';
import { waitFor } from '../helpers/wait-for.js';
import { required } from '../helpers/required.js';

const CONVEYOR = 'conveyor-1';

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

/** A copy of the rig's cell folder with `edit` applied to one file. */
function variant(t: Parameters<typeof liveInterlock>[0], rig: LiveInterlock, file: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'interlock-replay-cell-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(rig.cell.cellDir, dir, { recursive: true });
  const path = join(dir, file);
  const before = readFileSync(path, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`the edit of ${file} changed nothing`);
  writeFileSync(path, after);
  return dir;
}

t.test('replay flips exactly the commands the new declarations decide otherwise, with their reasons', async (t) => {
  const rig = await liveInterlock(t);
  await rig.modesSettled();
  const planner = rig.cell.signer('planner-1');
  const trainee = rig.cell.signer('trainee-1');
  const first = planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 });
  const a = await rig.send(CONVEYOR, first);
  // The same token again: denied by the replay memory, recorded with its token, and never re-decided as fresh.
  await rig.client.publish(topics.command(CONVEYOR), first, { qos: 1 });
  await waitFor(() => rig.decisions.some((d) => d.report.reasons.some((r) => r.code === 'ENVELOPE_REPLAYED')), 'the replayed command denied');
  const b = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.18, rampMPerS2: 0.2 }));
  const stop = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}));
  const held = await rig.send(CONVEYOR, trainee.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  const approval = required(rig.interlock.approvals.list()[0], 'the pending approval');
  const answer = await rig.operator({ action: 'approve', approvalId: approval.id, commandDigest: approval.commandDigest });
  t.match(answer, { ok: true, verdict: 'allow' });
  const approved = required(rig.decisions.at(-1), 'the approval decision');
  const e = await rig.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.25, rampMPerS2: 0.2 }));
  t.same([a, b, stop, held, approved, e].map((d) => d.report.verdict), ['allow', 'allow', 'allow', 'hold', 'allow', 'deny'], 'as recorded');
  await rig.interlock.idle();
  const seqOf = (d: typeof a): number => required(d.auditSeq, 'an audit seq');

  const same = variant(t, rig, 'cell.yaml', (text) => `${text}\n`);
  const unchanged = await run('replay', '--cell', same, '--state-dir', rig.stateDirectory, '--json');
  t.equal(unchanged.code, 0, unchanged.stderr);
  const sameReport = JSON.parse(unchanged.stdout) as ReplayReport;
  t.equal(sameReport.summary.replayed, 6, 'every recorded command with its token, the approval re-check included');
  t.same(sameReport.commands.filter((c) => c.changed), [], 'the same declarations change nothing');
  t.equal(sameReport.summary.unchanged, 6);
  t.equal(sameReport.summary.envelopeDenialsAsRecorded, 1, 'the replayed command stays as recorded');

  // A tighter belt: 0.15 m/s in both limit sets. Only the 0.18 m/s command is above it.
  const tight = variant(t, rig, 'devices/conveyor-1.yaml', (text) => text.replace('maxSpeed: { normal: 0.5, reduced: 0.25, unit: m/s }', 'maxSpeed: { normal: 0.15, reduced: 0.15, unit: m/s }'));
  const tighter = await run('replay', '--cell', tight, '--state-dir', rig.stateDirectory, '--json');
  t.equal(tighter.code, 0, tighter.stderr);
  const tightReport = JSON.parse(tighter.stdout) as ReplayReport;
  const flipped = tightReport.commands.filter((c) => c.changed);
  t.same(flipped.map((c) => c.seq), [seqOf(b)], 'exactly the 0.18 m/s command flips');
  t.match(flipped[0], { recorded: { verdict: 'allow' }, replayed: { verdict: 'deny' }, commandId: b.report.commandId });
  t.same(flipped[0]?.replayed.reasons.map((r) => [r.code, r.ruleId]), [['BOUNDS_CONVEYOR_SPEED', `${CONVEYOR}/maxSpeed/normal`]]);
  t.match(tightReport.summary, { replayed: 6, unchanged: 5, newlyDenied: 1, newlyAllowed: 0, newlyHeld: 0 });

  const text = await run('replay', '--cell', tight, '--state-dir', rig.stateDirectory);
  t.equal(text.code, 0);
  t.match(text.stdout, /as recorded: replay protection \(jti, seq\) as recorded/);
  t.match(text.stdout, new RegExp(`#${seqOf(b)} planner-1 -> ${CONVEYOR} set_speed \\S+: allow -> deny\\n    BOUNDS_CONVEYOR_SPEED \\[${CONVEYOR}/maxSpeed/normal\\]: `));
  t.match(text.stdout, /6 command\(s\) replayed: 5 unchanged, 1 newly denied, 0 newly allowed, 0 newly held; 1 envelope denial\(s\) taken as recorded\n$/);

  // A stricter policy: the trainee may no longer run the belt, with or without an approval.
  const strict = variant(t, rig, 'policies/conveyor.cedar', (text) => `${text}\n@id("no-trainee-belt")\nforbid (principal == Interlock::Agent::"trainee-1", action == Interlock::Action::"set_speed", resource);\n`);
  const stricter = await run('replay', '--cell', strict, '--state-dir', rig.stateDirectory, '--json');
  t.equal(stricter.code, 0, stricter.stderr);
  const strictReport = JSON.parse(stricter.stdout) as ReplayReport;
  const denied = strictReport.commands.filter((c) => c.changed);
  t.same(denied.map((c) => [c.seq, c.recorded.verdict, c.replayed.verdict, c.answersHold]), [
    [seqOf(held), 'hold', 'deny', false],
    [seqOf(approved), 'allow', 'deny', true],
  ]);
  for (const c of denied) t.ok(c.replayed.reasons.some((r) => r.code === 'POLICY_FORBIDDEN' && r.ruleId === 'no-trainee-belt'), JSON.stringify(c.replayed.reasons));

  // --from/--to report a window (earlier records still build the history).
  const window = JSON.parse((await run('replay', '--cell', tight, '--db', join(rig.stateDirectory, 'audit.db'), '--from', String(seqOf(b)), '--to', String(seqOf(b)), '--json')).stdout) as ReplayReport;
  t.same(window.commands.map((c) => [c.seq, c.changed]), [[seqOf(b), true]]);
});

t.test('replay: unreadable input is exit 1 and names it; usage errors are exit 2', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'interlock-replay-empty-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const noCell = await run('replay', '--cell', join(empty, 'nothing'), '--state-dir', empty);
  t.equal(noCell.code, 1);
  t.match(noCell.stderr, /cannot replay against .*nothing: \d+ problem\(s\) in its declarations/);
  const rig = await liveInterlock(t, { feed: false });
  const noDb = await run('replay', '--cell', rig.cell.cellDir, '--state-dir', empty);
  t.equal(noDb.code, 1);
  t.match(noDb.stderr, /no audit database at .*audit\.db/);
  t.equal((await run('replay', '--state-dir', empty)).code, 2, 'no --cell');
  t.equal((await run('replay', '--cell', rig.cell.cellDir, '--from', 'x')).code, 2);
  t.equal((await run('replay', '--cell', rig.cell.cellDir, '--from', '5', '--to', '2')).code, 2);
});
