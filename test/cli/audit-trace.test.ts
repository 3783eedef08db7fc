// `interlock audit trace <commandId>` tells one command's story from the records the live rig wrote (the interlock as
// `interlock run` builds it, real SQLite): the plan hash, the command and its params decoded from the recorded token
// (signature re-verified with --cell, "not re-verified" without), the state used, the hold, the operator's approval,
// the release and the device's outcome; --json carries the same; a token edited in the database no longer verifies.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { commandStory, formatStory, type CommandStory } from '../../src/cli/audit-trace.js';
import { main } from '../../src/cli/main.js';
import { liveInterlock, topics } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const PLAN = 'cd'.repeat(32);

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

t.test('trace tells a held, approved, released command from plan to outcome', async (t) => {
  const rig = await liveInterlock(t);
  const token = rig.cell.signer('trainee-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }, { trace: { session: 'shift-7', plan: PLAN } });
  const held = await rig.send(CONVEYOR, token);
  t.equal(held.report.verdict, 'hold');
  const commandId = required(held.report.commandId, 'the command id');
  const approval = required(rig.interlock.approvals.list()[0], 'the pending approval');
  t.match(await rig.operator({ action: 'approve', approvalId: approval.id, commandDigest: approval.commandDigest }), { ok: true, released: true });
  const approvedSeq = required(rig.decisions.at(-1)?.auditSeq, 'the approval record');
  await waitFor(() => rig.releases.length > 0, 'the release');
  const release = required(rig.releases[0], 'the release').command;
  await rig.client.publish(topics.actuatorOutcome(CONVEYOR), rig.reporter(CONVEYOR).outcome({ commandId, auditSeq: release.auditSeq, status: 'executed', timeMs: Date.now() }), { qos: 1 });
  await waitFor(() => rig.audit.read(1, 1000).some((r) => r.kind === 'outcome'), 'the outcome record');
  await rig.interlock.idle();

  const text = await run('audit', 'trace', commandId, '--state-dir', rig.stateDirectory, '--cell', rig.cell.cellDir);
  t.equal(text.code, 0, text.stderr);
  const story = text.stdout.slice(text.stdout.indexOf(`command ${commandId}`));
  t.match(story, `from: plan ${PLAN}, session shift-7`);
  t.match(story, `command: trainee-1 -> ${CONVEYOR} set_speed {"speedMPerS":0.1,"rampMPerS2":0.2}`);
  t.match(story, 'token: sha256 matches the recorded commandDigest; signature verified with trainee-1-k1 (agent trainee-1)');
  t.match(story, /state used:\n( {4}.*\n)* {4}conveyor-1\/permissives = \{.*\} \(age \d+ ms\)\n/);
  t.match(story, new RegExp(`decision: record #${String(held.auditSeq)} hold at \\S+, \\d+ us after arrival\\n    POLICY_APPROVAL_REQUIRED`));
  t.match(story, `held: approval ${approval.id}`);
  t.match(story, new RegExp(`answer \\(approved by shift-lead\\): record #${approvedSeq} allow at \\S+, \\d+ us after arrival\\n    APPROVAL_GRANTED`));
  t.match(story, `release: under record #${approvedSeq}`);
  t.match(story, /outcome: record #\d+: executed, device time /);

  const unverified = await run('audit', 'trace', commandId, '--state-dir', rig.stateDirectory);
  t.match(unverified.stdout, "signature not re-verified (give --cell <dir> to check it against the cell's keys)");

  const json = await run('audit', 'trace', commandId, '--state-dir', rig.stateDirectory, '--cell', rig.cell.cellDir, '--json');
  t.equal(json.code, 0);
  const storyLine = required(json.stdout.split('\n').find((l) => l.startsWith('{"story":')), 'the story line');
  const parsed = (JSON.parse(storyLine) as { story: CommandStory }).story;
  t.match(parsed, {
    commandId,
    trace: { plan: PLAN, session: 'shift-7' },
    command: { agentId: 'trainee-1', deviceId: CONVEYOR, action: 'set_speed', params: { speedMPerS: 0.1, rampMPerS2: 0.2 }, kid: 'trainee-1-k1' },
    token: { digestMatches: true },
    decision: { seq: held.auditSeq, verdict: 'hold' },
    held: { approvalId: approval.id, answer: { seq: approvedSeq, verdict: 'allow', outcome: 'approved', operatorId: 'shift-lead' } },
    release: { underSeq: approvedSeq, failed: null },
    outcomes: [{ status: 'executed' }],
  });
  t.match(parsed.token?.signature, /^verified with trainee-1-k1/);

  // A token edited in a copy of the database (another signature in its place) is caught.
  const copyDir = mkdtempSync(join(tmpdir(), 'interlock-trace-copy-'));
  t.teardown(() => rmSync(copyDir, { recursive: true, force: true }));
  const source = new Database(join(rig.stateDirectory, 'audit.db'), { readonly: true });
  source.exec(`VACUUM INTO '${join(copyDir, 'audit.db')}'`);
  source.close();
  const copy = new Database(join(copyDir, 'audit.db'));
  const signature = required(token.split('.')[2], 'the signature');
  const forged = `${signature.slice(0, -4)}${signature.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
  copy.prepare('UPDATE records SET body = replace(body, ?, ?)').run(signature, forged);
  copy.close();
  const tampered = await run('audit', 'trace', commandId, '--db', join(copyDir, 'audit.db'), '--cell', rig.cell.cellDir);
  t.match(tampered.stdout, 'token: sha256 DOES NOT MATCH the recorded commandDigest; signature DOES NOT VERIFY with trainee-1-k1');
});

t.test('trace: an unknown command id is exit 1 with one clear line; a bad --cell is exit 1', async (t) => {
  const rig = await liveInterlock(t, { feed: false });
  await rig.interlock.idle();
  const unknown = await run('audit', 'trace', 'no-such-command', '--state-dir', rig.stateDirectory);
  t.equal(unknown.code, 1);
  t.equal(unknown.stdout, '');
  t.match(unknown.stderr, /^interlock: no record in .*audit\.db has "no-such-command" as a command id/);
  const badCell = await run('audit', 'trace', 'x', '--state-dir', rig.stateDirectory, '--cell', join(rig.stateDirectory, 'no-cell'));
  t.equal(badCell.code, 1);
  t.match(badCell.stderr, /cannot read the keys of .*no-cell/);
});

t.test('a story never sends an agent-given control character to the terminal', async (t) => {
  const hostile = '\u001b[2J\u009b31m';
  const lines = formatStory(
    commandStory(hostile, [{ seq: 1, kind: 'decision', timeMs: 0, commandId: hostile, verdict: 'deny', reasons: [{ code: 'X', message: hostile }], trace: { session: hostile } }]),
  );
  const text = lines.join('\n');
  t.notOk(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), 'no control character but the newlines between lines');
  t.match(text, 'command \\u001b[2J\\u009b31m');
});
