// Unit tests for the decision pipeline (envelope -> policy -> bounds -> decide): the most restrictive verdict
// wins with every stage's reasons kept, a throwing stage becomes an INTERNAL_ERROR deny, decisions carry the
// command and declaration digests, and an authenticated stop bypasses policy and bounds while a forged one does not.

import { createHash } from 'node:crypto';
import t from 'tap';
import type { ObservedState, StateView } from '../../src/core/device-state.js';
import { MemoryReplayGuard } from '../../src/envelope/replay-guard.js';
import { commandDigest, evaluateCommand, type PipelineContext, BoundsMemory, NO_RELEASES } from '../../src/pipeline/pipeline.js';
import { amrReport, withAmrReport } from '../helpers/demo-people.js';
import { makeTestCell } from '../helpers/test-cell.js';

const NOW = 1_700_000_000_000;
const HOME = [0, -1, 0, 0, 0, 0];
const IN_BOUNDS = { positionsRad: [0.2, -1.2, 0.4, 0, 0, 0], velocityRadPerS: 0.5 };
const OUT_OF_BOUNDS = { positionsRad: [0.2, 0.5, 3.0, 0, 0, 0], velocityRadPerS: 0.5 }; // shoulder above 0, elbow above 160 deg

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();

function freshStates(receivedAtMs = NOW - 20): StateView {
  const observed: ObservedState = { state: { kind: 'robot_arm', positionsRad: HOME, moving: false }, receivedAtMs };
  // amr-1, the cell's people source, reports nobody near the table (and is out of the station it shares with the arm).
  return withAmrReport({ latest: (deviceId) => (deviceId === 'arm-1' ? observed : undefined) }, amrReport(receivedAtMs));
}

function context(states: StateView = freshStates()): PipelineContext {
  return { cell: loaded, replay: new MemoryReplayGuard(() => NOW), states, releases: NO_RELEASES, bounds: new BoundsMemory() };
}

t.test('an allowed command', async (t) => {
  const signer = cell.signer('planner-1', () => NOW);
  const token = signer.sign('arm-1', 'move_joints', IN_BOUNDS);
  const decision = evaluateCommand({ token, topicDeviceId: 'arm-1' }, context(), NOW);
  t.equal(decision.verdict, 'allow');
  t.same(decision.reasons, []);
  t.equal(decision.decidedAtMs, NOW);
  t.equal(decision.identity.agentId, 'planner-1');
  t.equal(decision.identity.deviceId, 'arm-1');
  t.equal(decision.identity.action, 'move_joints');
  t.equal(decision.command?.device.id, 'arm-1');
});

t.test('the most restrictive verdict wins and reasons of policy and bounds are both kept', async (t) => {
  const trainee = cell.signer('trainee-1', () => NOW);
  const planner = cell.signer('planner-1', () => NOW);
  const cases: { name: string; token: () => string; states?: StateView; codes: [string, string | undefined][] }[] = [
    {
      name: 'policy deny (no permit) + bounds deny (two joints out of range)',
      token: () => trainee.sign('arm-1', 'move_joints', OUT_OF_BOUNDS),
      codes: [
        ['POLICY_NO_PERMIT', undefined],
        ['BOUNDS_JOINT_POSITION', 'arm-1/joints/shoulder/position'],
        ['BOUNDS_JOINT_POSITION', 'arm-1/joints/elbow/position'],
      ],
    },
    {
      name: 'policy deny + bounds allow',
      token: () => trainee.sign('arm-1', 'move_joints', IN_BOUNDS),
      codes: [['POLICY_NO_PERMIT', undefined]],
    },
    {
      name: 'policy allow + bounds deny',
      token: () => planner.sign('arm-1', 'move_joints', OUT_OF_BOUNDS),
      codes: [
        ['BOUNDS_JOINT_POSITION', 'arm-1/joints/shoulder/position'],
        ['BOUNDS_JOINT_POSITION', 'arm-1/joints/elbow/position'],
      ],
    },
    {
      name: 'policy allow + stale state',
      token: () => planner.sign('arm-1', 'move_joints', IN_BOUNDS),
      states: freshStates(NOW - 251),
      codes: [['BOUNDS_STATE_STALE', 'arm-1/maxStateAge']],
    },
    {
      // A scope 1 agent is denied before Cedar and bounds: it may never actuate, so nothing else can matter.
      name: 'scope 1 (observer-1) + missing state',
      token: () => cell.signer('observer-1', () => NOW).sign('arm-1', 'move_joints', IN_BOUNDS),
      states: { latest: () => undefined },
      codes: [['POLICY_SCOPE_OBSERVE_ONLY', 'scope-1']],
    },
  ];
  for (const c of cases) {
    const decision = evaluateCommand({ token: c.token(), topicDeviceId: 'arm-1' }, context(c.states), NOW);
    t.equal(decision.verdict, 'deny', `${c.name}: verdict`);
    t.same(decision.reasons.map((r) => [r.code, r.ruleId]), c.codes, `${c.name}: reasons in stage order`);
  }
});

t.test('a stage that throws becomes an INTERNAL_ERROR deny', async (t) => {
  const signer = cell.signer('planner-1', () => NOW);
  const throwing: StateView = {
    latest: () => {
      throw new Error('state store unavailable');
    },
  };
  const token = signer.sign('arm-1', 'move_joints', IN_BOUNDS);
  const decision = evaluateCommand({ token, topicDeviceId: 'arm-1' }, context(throwing), NOW);
  t.equal(decision.verdict, 'deny');
  t.same(decision.reasons.map((r) => [r.stage, r.code]), [['internal', 'INTERNAL_ERROR']]);
  t.match(decision.reasons[0]?.message ?? '', /state store unavailable/);
  t.equal(decision.commandDigest, commandDigest(token), 'still bound to the command');
  t.equal(decision.declarationsDigest, loaded.declarations.digest);

  // A throw of a non-Error value, and a replay guard that throws.
  const nonError: StateView = {
    latest: () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error
      throw 'disk on fire';
    },
  };
  const second = evaluateCommand({ token: signer.sign('arm-1', 'move_joints', IN_BOUNDS) }, context(nonError), NOW);
  t.same(second.reasons.map((r) => r.code), ['INTERNAL_ERROR']);
  t.match(second.reasons[0]?.message ?? '', /disk on fire/);

  const brokenReplay: PipelineContext = {
    cell: loaded,
    states: freshStates(),
    replay: {
      epochMs: -Infinity,
      check: () => {
        throw new Error('replay store corrupt');
      },
      accept: () => undefined,
      lastSeq: () => undefined,
    },
    releases: NO_RELEASES,
    bounds: new BoundsMemory(),
  };
  const third = evaluateCommand({ token: signer.sign('arm-1', 'move_joints', IN_BOUNDS) }, brokenReplay, NOW);
  t.equal(third.verdict, 'deny');
  t.same(third.reasons.map((r) => r.code), ['INTERNAL_ERROR']);

  // A state object that throws on property access (a getter) is caught too.
  const hostileState: StateView = {
    latest: () =>
      ({
        receivedAtMs: NOW,
        get state(): never {
          throw new Error('getter exploded');
        },
      }) as unknown as ObservedState,
  };
  const fourth = evaluateCommand({ token: signer.sign('arm-1', 'move_joints', IN_BOUNDS) }, context(hostileState), NOW);
  t.same(fourth.reasons.map((r) => r.code), ['INTERNAL_ERROR']);
});

t.test('a decision carries the sha256 of the exact token bytes and the declarations digest', async (t) => {
  const signer = cell.signer('planner-1', () => NOW);
  const tokens = [signer.sign('arm-1', 'move_joints', IN_BOUNDS), 'not-a-token', '', `${signer.sign('arm-1', 'stop', {})}`];
  for (const token of tokens) {
    const decision = evaluateCommand({ token }, context(), NOW);
    t.equal(decision.commandDigest, createHash('sha256').update(Buffer.from(token, 'utf8')).digest('hex'), `digest of ${JSON.stringify(token.slice(0, 12))}`);
    t.equal(decision.declarationsDigest, loaded.declarations.digest);
    t.match(decision.declarationsDigest, /^[0-9a-f]{64}$/);
  }
  // A denied, unauthenticated command reports no identity.
  const malformed = evaluateCommand({ token: 'not-a-token' }, context(), NOW);
  t.equal(malformed.verdict, 'deny');
  t.same(malformed.reasons.map((r) => r.code), ['ENVELOPE_MALFORMED']);
  t.same(malformed.identity, {});
  t.equal(malformed.command, undefined);
});

t.test('stop from observer-1 (scope 1, forbidden by policy) passes as a safe-state command', async (t) => {
  const observer = cell.signer('observer-1', () => NOW);
  const cases: { name: string; states: StateView }[] = [
    { name: 'with fresh state', states: freshStates() },
    { name: 'with no state at all', states: { latest: () => undefined } },
    { name: 'with stale state', states: freshStates(NOW - 60_000) },
  ];
  const replay = new MemoryReplayGuard(() => NOW);
  for (const c of cases) {
    const decision = evaluateCommand({ token: observer.sign('arm-1', 'stop', {}), topicDeviceId: 'arm-1' }, { cell: loaded, replay, states: c.states, releases: NO_RELEASES, bounds: new BoundsMemory() }, NOW);
    t.equal(decision.verdict, 'allow', `${c.name}: verdict`);
    t.same(decision.reasons.map((r) => [r.stage, r.code]), [['decide', 'SAFE_STATE_COMMAND']], `${c.name}: reason`);
    t.equal(decision.identity.agentId, 'observer-1');
    t.equal(decision.command?.safeState, true);
  }
  // The same agent's move is still forbidden.
  const move = evaluateCommand({ token: observer.sign('arm-1', 'move_joints', IN_BOUNDS), topicDeviceId: 'arm-1' }, { cell: loaded, replay, states: freshStates(), releases: NO_RELEASES, bounds: new BoundsMemory() }, NOW);
  t.same(move.reasons.map((r) => [r.code, r.ruleId]), [['POLICY_SCOPE_OBSERVE_ONLY', 'scope-1']]);
});

t.test('a stop that is not authentic, fresh and unreplayed is denied', async (t) => {
  const observer = cell.signer('observer-1', () => NOW);
  const replay = new MemoryReplayGuard(() => NOW);
  const ctx: PipelineContext = { cell: loaded, replay, states: freshStates(), releases: NO_RELEASES, bounds: new BoundsMemory() };
  const stop = observer.sign('arm-1', 'stop', {});
  const [h, p, s] = stop.split('.') as [string, string, string];
  // Flip one bit of the signature.
  const signature = Buffer.from(s, 'base64url');
  signature[10] = (signature[10] as number) ^ 0x01;
  const cases: { name: string; token: string; code: string }[] = [
    { name: 'bad signature', token: `${h}.${p}.${signature.toString('base64url')}`, code: 'ENVELOPE_BAD_SIGNATURE' },
    { name: 'signed by planner-1 under observer-1 kid', token: `${h}.${p}.${cell.signer('planner-1', () => NOW).sign('arm-1', 'stop', {}).split('.')[2] ?? ''}`, code: 'ENVELOPE_BAD_SIGNATURE' },
    { name: 'alg none', token: `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'observer-1-k1' })).toString('base64url')}.${p}.`, code: 'ENVELOPE_ALG_REJECTED' },
    { name: 'expired', token: observer.sign('arm-1', 'stop', {}, { override: { iat: (NOW - 10_000) / 1000, exp: (NOW - 8_000) / 1000 } }), code: 'ENVELOPE_EXPIRED' },
    { name: 'for another device on this topic', token: observer.sign('arm-2', 'stop', {}), code: 'ENVELOPE_WRONG_AUDIENCE' },
  ];
  for (const c of cases) {
    const decision = evaluateCommand({ token: c.token, topicDeviceId: 'arm-1' }, ctx, NOW);
    t.equal(decision.verdict, 'deny', `${c.name}: verdict`);
    t.same(decision.reasons.map((r) => r.code), [c.code], `${c.name}: reason`);
  }
  t.equal(evaluateCommand({ token: stop, topicDeviceId: 'arm-1' }, ctx, NOW).verdict, 'allow', 'the genuine stop passes once');
  const replayed = evaluateCommand({ token: stop, topicDeviceId: 'arm-1' }, ctx, NOW);
  t.same(replayed.reasons.map((r) => r.code), ['ENVELOPE_REPLAYED'], 'and a replayed stop is denied');
});
