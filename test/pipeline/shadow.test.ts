// Shadow mode: a candidate policy set in policies-shadow/ is evaluated beside the enforced one. Proves that the
// shadow verdict is computed from the same request and bounds, recorded with the decision in the audit log, and
// never changes what is enforced; and that a shadow set is validated as strictly as the enforced one. The pipeline
// cases call evaluateCommand on an injected clock; the running-interlock case composes the interlock as `interlock
// run` does (embedded broker, SQLite audit log and identity store, the interlock's key), with commands and device
// state on a real MQTT connection and releases received by an outside subscriber.

import t from 'tap';
import type { ObservedState, StateView } from '../../src/core/device-state.js';
import { loadCell } from '../../src/declarations/load.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { BoundsMemory, evaluateCommand, NO_RELEASES, type PipelineContext } from '../../src/pipeline/pipeline.js';
import { amrReport, withAmrReport } from '../helpers/demo-people.js';
import { liveInterlock } from '../helpers/live-interlock.js';
import { required } from '../helpers/required.js';
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

t.test('the running interlock writes the shadow verdict into the decision record and enforces only its own', async (t) => {
  const rig = await liveInterlock(t, { files: { 'policies-shadow/conveyor-candidate.cedar': CANDIDATE } });
  const shadowVersion = required(rig.runtime.cell.shadowPolicies, 'the shadow set of the running cell').version;
  const shadowOf = (seq: number | null) => {
    const record = required(rig.audit.read(required(seq, 'the decision record'), 1)[0], 'the decision record');
    const shadow = record.detail?.['shadow'] as { verdict?: string; policyVersion?: string; reasons?: { code: string }[] } | undefined;
    return { record, shadow: required(shadow, 'the shadow verdict in the record') };
  };

  // The trainee (scope 2): the enforced set holds it for approval, the candidate would deny it.
  const trainee = await rig.send('conveyor-1', rig.cell.signer('trainee-1').sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }));
  t.equal(trainee.report.verdict, 'hold', 'enforced: hold');
  const held = shadowOf(trainee.auditSeq);
  t.equal(held.record.agentId, 'trainee-1');
  t.equal(held.record.verdict, 'hold', 'the record carries the enforced verdict');
  t.equal(held.shadow.policyVersion, shadowVersion);
  t.equal(held.shadow.verdict, 'deny', 'and beside it the shadow verdict');
  t.ok(held.shadow.reasons?.some((r) => r.code === 'POLICY_NO_PERMIT'), 'the candidate has no permit for scope 2');
  t.equal(rig.interlock.approvals.list().length, 1, 'the hold is in force: it waits for an operator');

  // The planner (scope 4): both allow, and the command reaches the conveyor.
  const planner = await rig.send('conveyor-1', rig.cell.signer('planner-1').sign('conveyor-1', 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(planner.report.verdict, 'allow');
  const allowed = shadowOf(planner.auditSeq);
  t.equal(allowed.shadow.verdict, 'allow');
  t.equal(allowed.shadow.policyVersion, shadowVersion);
  await waitFor(() => rig.releases.length > 0, 'the release');
  await rig.interlock.idle();
  t.same(rig.releases.map((r) => r.command.commandId), [planner.report.commandId], 'only the enforced allow reached the conveyor');
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
