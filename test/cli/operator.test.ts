// The operator commands of the CLI against a real runtime (embedded broker on a free port, real Cedar, real SQLite,
// real keys): a held command is listed, approved (and released exactly once) or rejected; an unknown id, a missing
// or wrong key and a missing role are refused before anything is sent; restore, quarantine and mode reach the
// interlock. Then `interlock shadow-report` on audit databases the test fills.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startRuntime } from '../../src/app/compose.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { main } from '../../src/cli/main.js';
import { silentLogger } from '../../src/core/log.js';
import type { Reason } from '../../src/core/reasons.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { commandDigest } from '../../src/pipeline/pipeline.js';
import { topicSet } from '../../src/transport/topics.js';
import { amrStateMessage, conveyorStateMessage, stateFeed } from '../helpers/state-messages.js';
import { DEMO_CELL, makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const topics = topicSet();
const CONVEYOR = 'conveyor-1';

/** The demo cell's agents.yaml plus a second operator who may switch modes but not approve. */
const AGENTS_WITH_MODE_ONLY = readFileSync(join(DEMO_CELL, 'agents.yaml'), 'utf8').replace(
  'operators:\n',
  'operators:\n  - id: mode-only\n    name: Operator without the approve role\n    roles: [mode]\n    keys:\n      - kid: mode-only-k1\n        publicKeyFile: keys/mode-only-k1.pub.pem\n',
);

// State-age limits relaxed: the runtime is on the real clock, and these tests are about the operator commands.
const cell = makeTestCell({ 'agents.yaml': AGENTS_WITH_MODE_ONLY }, { stateAgeMs: 10_000 });
const stateDir = join(cell.root, 'state');
// The CLI's default key path: <state-dir>/agent-keys/<kid>.key.pem (as the demo lays it out).
mkdirSync(join(stateDir, 'agent-keys'), { recursive: true });
copyFileSync(join(cell.privateKeyDir, 'shift-lead-k1.key.pem'), join(stateDir, 'agent-keys', 'shift-lead-k1.key.pem'));
const runtime = await startRuntime({ cellDirectory: cell.cellDir, stateDirectory: stateDir, embeddedPort: 0, heartbeatPeriodMs: 0, log: silentLogger });
const decisions: DecisionEvent[] = [];
runtime.interlock.onDecision((event) => decisions.push(event));

// Driver-rate state: the conveyor (at the speed the test sets) with every permissive true, and the AMR (the cell's
// people source) seeing nobody.
let conveyorSpeedMPerS = 0;
const reporters = new Map([CONVEYOR, 'amr-1'].map((id) => [id, cell.reporter(id)]));
const feed = stateFeed(
  runtime.transport,
  { [CONVEYOR]: () => conveyorStateMessage({ speedMPerS: conveyorSpeedMPerS }), 'amr-1': () => amrStateMessage() },
  (deviceId, message) => reporters.get(deviceId)?.state(message) ?? '',
);
await feed.publishNow();
await waitFor(() => runtime.interlock.states.latest(CONVEYOR) !== undefined && runtime.interlock.states.latest('amr-1') !== undefined, 'device state');

t.teardown(async () => {
  feed.stop();
  await runtime.stop();
  cell.cleanup();
});

const trainee = cell.signer('trainee-1');

/** trainee-1 (scope 2) sends set_speed to the conveyor; returns the decisions on that exact command. */
async function send(speedMPerS: number): Promise<{ digest: string; events: () => DecisionEvent[] }> {
  const token = trainee.sign(CONVEYOR, 'set_speed', { speedMPerS });
  const digest = commandDigest(token);
  await runtime.transport.publish(topics.command(CONVEYOR), token);
  await waitFor(() => decisions.some((d) => d.report.commandDigest === digest), 'the decision on set_speed');
  return { digest, events: () => decisions.filter((d) => d.report.commandDigest === digest) };
}

/** A held set_speed: its approval id, once the retained pending message can be read. */
async function hold(speedMPerS: number): Promise<{ id: string; digest: string; events: () => DecisionEvent[] }> {
  const sent = await send(speedMPerS);
  const first = sent.events()[0];
  if (first?.report.verdict !== 'hold') throw new Error(`expected a hold, got ${first?.report.verdict ?? 'nothing'}`);
  const pending = runtime.interlock.approvals.list().find((p) => p.commandDigest === sent.digest);
  if (pending === undefined) throw new Error('the held command is not pending');
  return { id: pending.id, ...sent };
}

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process against this runtime's broker and cell (options given in `args` win: the last one counts). */
async function cli(command: string, ...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main([command, '--broker', runtime.brokerUrl, '--cell', cell.cellDir, '--state-dir', stateDir, ...args], {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

const codes = (event: DecisionEvent | undefined): string[] => (event?.report.reasons ?? []).map((r: Reason) => r.code);

t.test('approvals with nothing held says so and exits 0', async (t) => {
  const run = await cli('approvals');
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /no pending approvals/);
});

t.test('a held command is listed; approve releases exactly that command, once', async (t) => {
  const held = await hold(0.1);
  const listed = await cli('approvals');
  t.equal(listed.code, 0, listed.stderr);
  t.match(listed.stdout, held.id, 'the table names the approval id');
  t.match(listed.stdout, /trainee-1 +conveyor-1 +set_speed speedMPerS=0\.1/);
  t.match(listed.stdout, /POLICY_APPROVAL_REQUIRED \(.*scope-2/, 'and why it was held');

  const json = await cli('approvals', '--json');
  t.equal(json.code, 0);
  const lines = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
  t.same(
    lines.map((l) => [l['id'], l['commandDigest'], l['agentId']]),
    [[held.id, held.digest, 'trainee-1']],
    'one JSON object per pending approval',
  );

  const approved = await cli('approve', held.id, '--note', 'belt is clear');
  t.equal(approved.code, 0, approved.stderr);
  t.match(approved.stdout, held.id);
  t.match(approved.stdout, /released to the actuator/);
  const final = held.events().at(-1);
  t.equal(final?.report.verdict, 'allow');
  t.equal(final?.released, true, 'the approved command was released');
  t.equal(codes(final)[0], 'APPROVAL_GRANTED');
  t.equal(held.events().filter((e) => e.released).length, 1, 'released once');
  t.equal(runtime.interlock.approvals.get(held.id), undefined, 'no longer pending');

  // Answered already: the CLI finds nothing pending under that id and sends nothing.
  const again = await cli('approve', held.id);
  t.equal(again.code, 1);
  t.match(again.stderr, new RegExp(`no pending approval ${held.id}`));
  t.equal(held.events().filter((e) => e.released).length, 1, 'still released once');
});

t.test('reject denies the held command and releases nothing', async (t) => {
  const held = await hold(0.12);
  const other = await hold(0.08);
  const rejected = await cli('reject', held.id, '--note', 'not now');
  t.equal(rejected.code, 0, rejected.stderr);
  t.match(rejected.stdout, held.id);
  t.match(rejected.stdout, /rejected/);
  const final = held.events().at(-1);
  t.equal(final?.report.verdict, 'deny');
  t.same(codes(final), ['APPROVAL_REJECTED']);
  t.notOk(held.events().some((e) => e.released), 'nothing released');
  t.ok(runtime.interlock.approvals.get(other.id), 'the other held command is untouched');
  const listed = await cli('approvals');
  t.notMatch(listed.stdout, held.id, 'the rejected one is no longer listed');
  t.match(listed.stdout, other.id);
  t.equal((await cli('reject', other.id)).code, 0);
});

t.test('an approval the interlock voids (the belt moved since the hold) exits 1 and says nothing was released', async (t) => {
  const held = await hold(0.1);
  t.teardown(() => {
    conveyorSpeedMPerS = 0;
  });
  // Beyond the declared 0.02 m/s drift tolerance of conveyor-1.
  conveyorSpeedMPerS = 0.05;
  await waitFor(() => (runtime.interlock.states.latest(CONVEYOR)?.state as { speedMPerS?: number } | undefined)?.speedMPerS === 0.05, 'the moved belt to be seen');
  const run = await cli('approve', held.id);
  t.equal(run.code, 1, 'accepted by the interlock, but nothing moved');
  t.match(run.stdout, /NOTHING was released/);
  t.match(run.stdout, /APPROVAL_STATE_DRIFT/, 'with the reasons of the final decision');
  t.notOk(held.events().some((e) => e.released));
});

t.test('an unknown approval id is an error naming the id, and nothing is sent', async (t) => {
  const before = decisions.length;
  const run = await cli('approve', 'deadbeefdeadbeef');
  t.equal(run.code, 1);
  t.match(run.stderr, /no pending approval deadbeefdeadbeef/);
  t.equal(decisions.length, before);
  const wildcard = await cli('approve', 'abc/#');
  t.equal(wildcard.code, 2, 'an id that is not an id (here an MQTT wildcard) is a usage error');
  t.match(wildcard.stderr, /not a valid id/);
});

t.test('key problems and a missing role are refused before anything is sent', async (t) => {
  const held = await hold(0.11);
  t.teardown(async () => {
    await cli('reject', held.id);
  });
  const root = mkdtempSync(join(tmpdir(), 'interlock-cli-keys-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const rsa = join(root, 'rsa.key.pem');
  writeFileSync(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const traineeKey = join(cell.privateKeyDir, 'trainee-1-k1.key.pem');
  const cases: [string, string[], RegExp][] = [
    ['a missing --key file', ['--key', join(root, 'missing.key.pem')], /key file .*missing\.key\.pem not found/],
    ['an empty state dir (default key path)', ['--state-dir', join(root, 'empty-state')], /empty-state\/agent-keys\/shift-lead-k1\.key\.pem not found/],
    ['a public key', ['--key', join(cell.cellDir, 'keys', 'shift-lead-k1.pub.pem')], /holds a public key/],
    ['an RSA key', ['--key', rsa], /holds a key of type rsa; operator keys are Ed25519/],
    ["an agent's key", ['--key', traineeKey], /is not a key of operator shift-lead/],
    ['an operator without the approve role', ['--operator', 'mode-only'], /operator mode-only lacks the approve role/],
    ['an undeclared operator', ['--operator', 'nobody'], /no operator "nobody"/],
  ];
  for (const [what, extra, problem] of cases) {
    const before = decisions.length;
    const run = await cli('approve', held.id, ...extra);
    t.equal(run.code, 1, `${what}: exit 1`);
    t.match(run.stderr, problem, what);
    t.equal(run.stderr.trim().split('\n').length, 1, `${what}: one line`);
    t.notMatch(run.stderr, /BEGIN|PRIVATE KEY|MC4CAQAw/, `${what}: no key material printed`);
    t.equal(decisions.length, before, `${what}: nothing decided`);
  }
  t.ok(runtime.interlock.approvals.get(held.id), 'still pending after all of them');
});

t.test('quarantine and restore reach the interlock; restoring an agent in good standing is refused', async (t) => {
  const noReason = await cli('quarantine', 'trainee-1');
  t.equal(noReason.code, 2, 'quarantine needs --reason');
  t.match(noReason.stderr, /--reason/);

  const quarantined = await cli('quarantine', 'trainee-1', '--reason', 'sends odd speeds');
  t.equal(quarantined.code, 0, quarantined.stderr);
  t.match(quarantined.stdout, /quarantined agent trainee-1/);
  t.equal(runtime.interlock.trust.demotion('trainee-1')?.demotedTo, 'quarantine');
  const denied = await send(0.1);
  t.ok(codes(denied.events()[0]).includes('TRUST_QUARANTINED'), 'its next command is denied');

  const restored = await cli('restore', 'trainee-1', '--note', 'checked');
  t.equal(restored.code, 0, restored.stderr);
  t.match(restored.stdout, /restored agent trainee-1/);
  t.equal(runtime.interlock.trust.demotion('trainee-1'), undefined);

  const refused = await cli('restore', 'trainee-1');
  t.equal(refused.code, 1, 'the interlock refuses: the agent is not demoted');
  t.match(refused.stderr, /refused the restore_agent from shift-lead: agent trainee-1 is not demoted/);

  const unknown = await cli('quarantine', 'ghost-1', '--reason', 'x');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no agent ghost-1/);
});

t.test('mode forces reduced limits and back; two operators with the mode role need --operator', async (t) => {
  const ambiguous = await cli('mode', CONVEYOR, 'reduced');
  t.equal(ambiguous.code, 2);
  t.match(ambiguous.stderr, /several operators have the mode role \(.*mode-only.*\): choose one with --operator/);
  t.equal((await cli('mode', CONVEYOR, 'fast', '--operator', 'shift-lead')).code, 2, 'only reduced or auto');

  const reduced = await cli('mode', CONVEYOR, 'reduced', '--operator', 'shift-lead');
  t.equal(reduced.code, 0, reduced.stderr);
  t.equal(runtime.interlock.bounds.modes.operatorMode(CONVEYOR), 'reduced');
  // mode-only signs with its own key, given with --key.
  const auto = await cli('mode', CONVEYOR, 'auto', '--operator', 'mode-only', '--key', join(cell.privateKeyDir, 'mode-only-k1.key.pem'));
  t.equal(auto.code, 0, auto.stderr);
  t.equal(runtime.interlock.bounds.modes.operatorMode(CONVEYOR), undefined);
  const unknown = await cli('mode', 'belt-9', 'reduced', '--operator', 'shift-lead');
  t.equal(unknown.code, 1);
  t.match(unknown.stderr, /no device belt-9/);
});

t.test('an unreachable broker is a one-line error', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  let stderr = '';
  const code = await main(['approvals', '--broker', `mqtt://127.0.0.1:${port}`], { stdout: () => undefined, stderr: (text) => (stderr += text) });
  t.equal(code, 1);
  t.match(stderr, /cannot reach the broker/);
  t.equal(stderr.trim().split('\n').length, 1);
  const restore = await main(['restore', 'trainee-1', '--broker', `mqtt://127.0.0.1:${port}`, '--cell', cell.cellDir, '--state-dir', stateDir], { stdout: () => undefined, stderr: (text) => (stderr += text) });
  t.equal(restore, 1);
});

// ---------------------------------------------------------------------------------------------------------------
// shadow-report

const T0 = Date.parse('2026-11-22T08:00:00Z');

async function auditDir(t: Test, fill: (record: (entry: Parameters<ReturnType<typeof openSqliteAuditLog>['record']>[0]) => Promise<unknown>) => Promise<void>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'interlock-shadow-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = openSqliteAuditLog(join(dir, 'audit.db'));
  await fill((entry) => log.record(entry));
  log.close();
  return dir;
}

type Verdict = 'allow' | 'hold' | 'deny';
const decision = (i: number, agentId: string, deviceId: string, action: string, verdict: Verdict, reasons: { code: string; ruleId?: string }[], shadow: unknown) => ({
  kind: 'decision' as const,
  timeMs: T0 + i * 1000,
  commandId: `cmd-${i}`,
  agentId,
  deviceId,
  action,
  verdict,
  reasons: reasons.map((r) => ({ stage: 'policy', message: r.code, ...r })) as unknown as Reason[],
  ...(shadow === undefined ? {} : { detail: { shadow } }),
});

async function shadowReport(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(['shadow-report', ...args], { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

t.test('shadow-report counts agreement, verdict pairs, and where they differ with the shadow rules that caused it', async (t) => {
  const v = 'shadow-v2';
  const dir = await auditDir(t, async (record) => {
    await record({ kind: 'event', timeMs: T0, detail: { event: 'interlock-started' } });
    // Agree: allow/allow twice, deny/deny once (same bound).
    await record(decision(1, 'planner-1', 'arm-1', 'move_joints', 'allow', [], { verdict: 'allow', reasons: [], policyVersion: v }));
    await record(decision(2, 'planner-1', 'arm-1', 'move_joints', 'allow', [], { verdict: 'allow', reasons: [], policyVersion: v }));
    await record(decision(3, 'planner-1', 'arm-1', 'move_joints', 'deny', [{ code: 'BOUNDS_JOINT_POSITION', ruleId: 'arm-1/joints/elbow/position' }], { verdict: 'deny', reasons: [{ code: 'BOUNDS_JOINT_POSITION', ruleId: 'arm-1/joints/elbow/position' }], policyVersion: v }));
    // Differ: the shadow set forbids planner-1's conveyor speed changes (3 times), and would not hold trainee-1 (once).
    for (const i of [4, 5, 6]) {
      await record(decision(i, 'planner-1', CONVEYOR, 'set_speed', 'allow', [], { verdict: 'deny', reasons: [{ code: 'POLICY_FORBIDDEN', ruleId: 'conveyor-planner-forbid,night-shift' }], policyVersion: v }));
    }
    await record(decision(7, 'trainee-1', CONVEYOR, 'set_speed', 'hold', [{ code: 'POLICY_APPROVAL_REQUIRED', ruleId: 'scope-2' }], { verdict: 'allow', reasons: [], policyVersion: v }));
    // No shadow verdict: counted as a decision only.
    await record(decision(8, 'planner-1', 'arm-1', 'stop', 'allow', [], undefined));
  });
  const run = await shadowReport('--state-dir', dir, '--json');
  t.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as Record<string, unknown>;
  t.match(report, { decisions: 8, withShadow: 7, agree: 3, differ: 4, malformed: 0, policyVersions: [{ policyVersion: v, count: 7 }] });
  const pairs = (report['pairs'] as { enforced: string; shadow: string; count: number }[]).map((p) => `${p.enforced} -> ${p.shadow}: ${p.count}`).sort();
  t.same(pairs, ['allow -> allow: 2', 'allow -> deny: 3', 'deny -> deny: 1', 'hold -> allow: 1']);
  t.same(report['groups'], [
    {
      agentId: 'planner-1',
      deviceId: CONVEYOR,
      action: 'set_speed',
      count: 3,
      pairs: [{ enforced: 'allow', shadow: 'deny', count: 3 }],
      shadowRules: [
        { rule: 'conveyor-planner-forbid', count: 3 },
        { rule: 'night-shift', count: 3 },
      ],
      enforcedOnlyRules: [],
    },
    {
      agentId: 'trainee-1',
      deviceId: CONVEYOR,
      action: 'set_speed',
      count: 1,
      pairs: [{ enforced: 'hold', shadow: 'allow', count: 1 }],
      shadowRules: [],
      enforcedOnlyRules: [{ rule: 'scope-2', count: 1 }],
    },
  ]);

  const text = await shadowReport('--state-dir', dir);
  t.equal(text.code, 0);
  t.match(text.stdout, /agree: 3/);
  t.match(text.stdout, /planner-1 +conveyor-1 +set_speed .*conveyor-planner-forbid \(3\)/);

  const later = await shadowReport('--state-dir', dir, '--since', new Date(T0 + 4000).toISOString(), '--json');
  t.match(JSON.parse(later.stdout), { decisions: 5, withShadow: 4, agree: 0, differ: 4 }, '--since leaves earlier decisions out');
  t.equal((await shadowReport('--state-dir', dir, '--since', 'yesterday')).code, 2, 'an unreadable --since is a usage error');
});

t.test('shadow-report without shadow records says so; a missing database or a malformed shadow detail is an error', async (t) => {
  const plain = await auditDir(t, async (record) => {
    await record(decision(1, 'planner-1', 'arm-1', 'move_joints', 'allow', [], undefined));
  });
  const none = await shadowReport('--state-dir', plain);
  t.equal(none.code, 0);
  t.match(none.stdout, /no decision carries a shadow verdict/);

  const missing = await shadowReport('--state-dir', join(plain, 'nowhere'));
  t.equal(missing.code, 1);
  t.match(missing.stderr, /no audit database at .*nowhere\/audit\.db/);

  const broken = await auditDir(t, async (record) => {
    await record(decision(1, 'planner-1', 'arm-1', 'move_joints', 'allow', [], { verdict: 'allow', reasons: [], policyVersion: 'v1' }));
    await record(decision(2, 'planner-1', 'arm-1', 'move_joints', 'allow', [], { verdict: 'maybe', reasons: [], policyVersion: 'v1' }));
  });
  const malformed = await shadowReport('--state-dir', broken, '--json');
  t.equal(malformed.code, 1, 'exit 1: the report leaves a record out');
  t.match(malformed.stderr, /audit\.db: record 2: \/detail\/shadow\/verdict: must be allow, hold or deny, got "maybe"/);
  t.match(JSON.parse(malformed.stdout), { withShadow: 1, agree: 1, malformed: 1 }, 'the rest is still reported');
});
