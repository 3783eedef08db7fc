// Shadow mode: a candidate policy set in policies-shadow/ is evaluated beside the enforced one. Proves that the
// shadow verdict is computed from the same request and bounds, recorded with the decision in the audit log, and
// never changes what is enforced; and that a shadow set is validated as strictly as the enforced one.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import type { ObservedState, StateView } from '../../src/core/device-state.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { loadCell } from '../../src/declarations/load.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { Interlock } from '../../src/interlock/interlock.js';
import { BoundsMemory, evaluateCommand, NO_RELEASES, type PipelineContext } from '../../src/pipeline/pipeline.js';
import { topicSet } from '../../src/transport/topics.js';
import { amrReport, withAmrReport } from '../helpers/demo-people.js';
import { InMemoryBus } from '../helpers/memory-bus.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const NOW = 1_700_000_000_000;

/** The candidate: only scope 4 agents may run the belt, and nobody needs an approval for it. */
const CANDIDATE = `@id("candidate-conveyor-scope-4-only")
permit (
  principal is Interlock::Agent,
  action == Interlock::Action::"set_speed",
  resource is Interlock::Device in Interlock::Cell::"demo-cell"
)
when { principal.autonomyScope >= 4 && resource.kind == "conveyor" };
`;

const cell = makeTestCell({ 'policies-shadow/conveyor-candidate.cedar': CANDIDATE });
t.teardown(() => cell.cleanup());
const loaded = cell.load();

function states(receivedAtMs = NOW - 20): StateView {
  const conveyor: ObservedState = {
    state: { kind: 'conveyor', speedMPerS: 0, permissives: { guardClosed: true, estopReleased: true, downstreamReady: true }, running: true, safeStopped: false, lastCommandId: null },
    receivedAtMs,
  };
  return withAmrReport({ latest: (id) => (id === 'conveyor-1' ? conveyor : undefined) }, amrReport(receivedAtMs));
}

function context(): PipelineContext {
  return { cell: loaded, replay: new MemoryReplayGuard(() => NOW), states: states(), releases: NO_RELEASES, bounds: new BoundsMemory() };
}

t.test('the shadow verdict is recorded beside the enforced one and never replaces it', async (t) => {
  t.ok(loaded.shadowPolicies, 'the shadow set is loaded');
  t.same(loaded.shadowPolicies?.policyIds, ['candidate-conveyor-scope-4-only']);
  t.not(loaded.shadowPolicies?.version, loaded.policies.version, 'the two sets have different versions');

  // Both sets allow the scope 4 planner: they agree.
  const planner = evaluateCommand({ token: cell.signer('planner-1', () => NOW).sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }) }, context(), NOW);
  t.equal(planner.verdict, 'allow');
  t.equal(planner.shadow?.verdict, 'allow');
  t.equal(planner.shadow?.policyVersion, loaded.shadowPolicies?.version);

  // The enforced set holds the scope 2 trainee for approval; the candidate has no permit for it: they differ,
  // and the enforced hold stands.
  const trainee = evaluateCommand({ token: cell.signer('trainee-1', () => NOW).sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }) }, context(), NOW);
  t.equal(trainee.verdict, 'hold', 'enforced: hold');
  t.equal(trainee.shadow?.verdict, 'deny', 'shadow: deny');
  t.same(trainee.shadow?.reasons.map((r) => r.code), ['POLICY_NO_PERMIT']);

  // Bounds are shared: a speed over the limit is denied in both, with the same bounds reason.
  const fast = evaluateCommand({ token: cell.signer('planner-1', () => NOW).sign('conveyor-1', 'set_speed', { speedMPerS: 2 }) }, context(), NOW);
  t.equal(fast.verdict, 'deny');
  t.equal(fast.shadow?.verdict, 'deny');
  t.same(fast.shadow?.reasons.map((r) => r.code), fast.reasons.map((r) => r.code));

  // A cell without the folder has no shadow verdict at all.
  const plain = makeTestCell();
  t.teardown(() => plain.cleanup());
  const plainLoaded = plain.load();
  t.equal(plainLoaded.shadowPolicies, undefined);
  const none = evaluateCommand(
    { token: plain.signer('planner-1', () => NOW).sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }) },
    { ...context(), cell: plainLoaded },
    NOW,
  );
  t.equal(none.shadow, undefined);
});

t.test('the running interlock writes the shadow verdict into the decision record', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'interlock-shadow-'));
  const audit = openSqliteAuditLog(join(stateDir, 'audit.db'));
  const bus = new InMemoryBus();
  const topics = topicSet();
  const interlock = new Interlock({ cell: loaded, transport: bus, audit, signingKey: generateEd25519KeyPair().privateKey, clock: { nowMs: () => Date.now() }, heartbeatPeriodMs: 0 });
  t.teardown(async () => {
    await interlock.stop();
    audit.close();
    await bus.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  let decided = 0;
  interlock.onDecision(() => (decided += 1));
  await interlock.start();
  await bus.publish(topics.command('conveyor-1'), cell.signer('trainee-1').sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }));
  await waitFor(() => decided === 1, 'the decision');
  const record = audit.read(1, 100).find((r) => r.kind === 'decision');
  t.equal(record?.agentId, 'trainee-1');
  const shadow = record?.detail?.['shadow'] as { verdict?: string; policyVersion?: string; reasons?: { code: string }[] } | undefined;
  t.ok(shadow, 'the record carries the shadow verdict');
  t.equal(shadow?.policyVersion, loaded.shadowPolicies?.version);
  // No state was published, so the bounds deny both; the shadow adds its own policy reason.
  t.equal(record?.verdict, 'deny');
  t.equal(shadow?.verdict, 'deny');
  t.ok(shadow?.reasons?.some((r) => r.code === 'POLICY_NO_PERMIT'), 'the candidate has no permit for scope 2');
});

t.test('a shadow set is validated as strictly as the enforced one', async (t) => {
  const broken = makeTestCell({ 'policies-shadow/bad.cedar': 'permit (principal, action, resource) when { principal.nope == 1 };\n' });
  t.teardown(() => broken.cleanup());
  const result = loadCell(broken.cellDir);
  t.equal(result.ok, false);
  const problems = result.ok ? [] : result.problems;
  t.ok(problems.some((p) => p.file === 'policies-shadow/bad.cedar' && /@id/.test(p.message)), JSON.stringify(problems));
  const stray = makeTestCell({ 'policies-shadow/notes.txt': 'todo', 'policies-shadow/ok.cedar': CANDIDATE });
  t.teardown(() => stray.cleanup());
  const strayResult = loadCell(stray.cellDir);
  t.equal(strayResult.ok, false, 'a stray file in the shadow folder is a problem, as in policies/');
});
