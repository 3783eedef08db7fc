// A flood of unauthenticated commands (garbage bytes, alg none, an unregistered key, a forged signature on a registered
// key) through the interlock as `interlock run` composes it, on a real MQTT connection and the real SQLite audit log:
// each gets its decision on the decision topic, but the audit log holds one aggregate event per window, not a record
// each, so the flood cannot fill a capped log and deny honest commands AUDIT_LOG_FULL. Authenticated denials (signed,
// but out of bounds, replayed, misaddressed) stay one record each.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { rogueSigner } from '../../simulator/demo-agent.js';
import type { AuditRecord } from '../../src/audit/audit-log.js';
import { verifyAuditDatabase } from '../../src/cli/audit-verify.js';
import { COMMAND_TOKEN_TYPE } from '../../src/core/command.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { UNAUTHENTICATED_DENIALS_EVENT, UNAUTHENTICATED_WINDOW_MS, type UnauthenticatedDenialsSummary } from '../../src/interlock/unauthenticated-denials.js';
import { commandDigest } from '../../src/pipeline/pipeline.js';
import { liveInterlock, topics, type LiveInterlock } from '../helpers/live-interlock.js';
import { DEMO_CELL } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const AMR = 'amr-1';
/** Generous: 5,000 commands on a loaded 2-core machine. */
const FLOOD_WAIT_MS = 120_000;

const codes = (event: DecisionEvent): string[] => event.report.reasons.map((r) => r.code);
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

interface Garbage {
  readonly deviceId: string;
  readonly code: string;
  readonly token: string;
}

/** The i-th command of a flood: four kinds, each on the conveyor's and the AMR's command topic in turn. */
function garbageMaker(rig: LiveInterlock): (i: number) => Garbage {
  const planner = rig.cell.signer('planner-1');
  const rogue = rogueSigner();
  return (i) => {
    const deviceId = Math.floor(i / 4) % 2 === 0 ? CONVEYOR : AMR;
    switch (i % 4) {
      case 0:
        return { deviceId, code: 'ENVELOPE_MALFORMED', token: `garbage ${i} ${randomBytes(24).toString('hex')}` };
      case 1: {
        const claims = planner.claims(deviceId, 'stop', {});
        return { deviceId, code: 'ENVELOPE_ALG_REJECTED', token: `${b64({ alg: 'none', typ: COMMAND_TOKEN_TYPE, kid: 'planner-1-k1' })}.${b64(claims)}.` };
      }
      case 2:
        return { deviceId, code: 'ENVELOPE_UNKNOWN_KEY', token: rogue.sign(deviceId, 'stop', {}) };
      default: {
        // A real command of planner-1 whose signature is replaced: the key is registered, the signature is not its.
        const [header, payload] = planner.sign(deviceId, 'stop', {}).split('.');
        return { deviceId, code: 'ENVELOPE_BAD_SIGNATURE', token: `${header}.${payload}.${randomBytes(64).toString('base64url')}` };
      }
    }
  };
}

/** Publishes the flood on the outside connection, a few hundred in flight at a time, in order. */
async function publishFlood(rig: LiveInterlock, flood: readonly Garbage[]): Promise<void> {
  for (let i = 0; i < flood.length; i += 250) {
    await Promise.all(flood.slice(i, i + 250).map((g) => rig.client.publish(topics.command(g.deviceId), g.token, { qos: 1 })));
  }
}

/** Waits until the interlock has decided every command of the flood. */
async function floodDecided(rig: LiveInterlock, flood: readonly Garbage[]): Promise<void> {
  const digests = new Set(flood.map((g) => commandDigest(g.token)));
  let seen = 0;
  let from = 0;
  await waitFor(
    () => {
      for (; from < rig.decisions.length; from++) if (digests.has(rig.decisions[from]?.report.commandDigest ?? '')) seen += 1;
      return seen >= digests.size;
    },
    `the decisions on ${digests.size} flood commands`,
    FLOOD_WAIT_MS,
    20,
  );
}

const aggregates = (records: readonly AuditRecord[]): (UnauthenticatedDenialsSummary & { seq: number })[] =>
  records
    .filter((r) => r.kind === 'event' && r.detail?.['event'] === UNAUTHENTICATED_DENIALS_EVENT)
    .map((r) => ({ ...(r.detail as unknown as UnauthenticatedDenialsSummary), seq: r.seq }));

t.test('5,000 unauthenticated commands: each decision published, one aggregate record per window, the chain verifies', async (t) => {
  const rig = await liveInterlock(t);
  const published: Record<string, unknown>[] = [];
  await rig.client.subscribe(topics.decision('+'), (_topic, payload) => published.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>));
  const make = garbageMaker(rig);
  const flood = Array.from({ length: 5000 }, (_, i) => make(i));
  const headBefore = rig.audit.read(1, 100_000).length;
  const startedMs = Date.now();
  await publishFlood(rig, flood);
  await floodDecided(rig, flood);
  const elapsedMs = Date.now() - startedMs;

  const byDigest = new Map(rig.decisions.map((d) => [d.report.commandDigest, d]));
  const wrong = flood.filter((g) => {
    const d = byDigest.get(commandDigest(g.token));
    return d === undefined || d.report.verdict !== 'deny' || codes(d).join() !== g.code || d.auditSeq !== null || d.released;
  });
  t.same(wrong.slice(0, 3).map((g) => [g.code, g.token.slice(0, 40)]), [], 'every flood command is denied for its own reason, unreleased, with auditSeq null');

  // What the sender sees on the decision topic: the verdict and the reasons, no agent, auditSeq null.
  await waitFor(() => published.length >= flood.length, 'the decision messages of the flood', FLOOD_WAIT_MS);
  const message = published.find((m) => m['commandDigest'] === commandDigest(flood[3]?.token ?? ''));
  t.match(message, { verdict: 'deny', agentId: null, released: false, auditSeq: null, reasons: [{ code: 'ENVELOPE_BAD_SIGNATURE', message: /does not verify/ }] });

  // An honest command after the flood is decided and recorded as usual.
  const honest = await rig.send(CONVEYOR, rig.cell.signer('planner-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.equal(honest.report.verdict, 'allow', codes(honest).join(','));
  t.type(honest.auditSeq, 'number');

  // The stop writes the open window; the restart reopens the same log.
  await rig.restart();
  const records = rig.audit.read(1, 100_000);
  const floodDigests = new Set(flood.map((g) => commandDigest(g.token)));
  t.same(records.filter((r) => r.commandDigest !== undefined && floodDigests.has(r.commandDigest)).map((r) => r.seq), [], 'no flood command has a record of its own');
  const windows = aggregates(records);
  const maxWindows = Math.ceil(elapsedMs / UNAUTHENTICATED_WINDOW_MS) + 1;
  t.ok(windows.length >= 1 && windows.length <= maxWindows, `${windows.length} aggregate record(s) for ${elapsedMs} ms of flood (at most ${maxWindows})`);
  t.ok(records.length - headBefore < 20 + maxWindows, `the flood added ${records.length - headBefore} records in all`);
  t.equal(windows.reduce((n, w) => n + w.denials, 0), flood.length, 'every flood command is counted');
  t.notOk(windows.some((w) => w.overflow !== undefined), '8 keys fit without overflow');

  const counted = new Map<string, number>();
  for (const w of windows) for (const b of w.buckets) counted.set(`${b.topicDeviceId} ${b.code}`, (counted.get(`${b.topicDeviceId} ${b.code}`) ?? 0) + b.count);
  const expected = new Map<string, number>();
  for (const g of flood) expected.set(`${g.deviceId} ${g.code}`, (expected.get(`${g.deviceId} ${g.code}`) ?? 0) + 1);
  t.same(Object.fromEntries([...counted].sort()), Object.fromEntries([...expected].sort()), 'counted per topic and reason code');

  // The first window's example of each key is the first command of that key the flood sent.
  const first = windows[0];
  for (const key of expected.keys()) {
    const example = flood.find((g) => `${g.deviceId} ${g.code}` === key);
    const bucket = first?.buckets.find((b) => `${b.topicDeviceId} ${b.code}` === key);
    if (example === undefined || bucket === undefined) {
      t.fail(`no first example for ${key}`);
      continue;
    }
    t.equal(bucket.first.commandDigest, commandDigest(example.token), `${key}: the first example's digest`);
    t.equal(bucket.first.payloadPrefix, example.token.slice(0, 64), `${key}: a 64-character prefix of the payload`);
    t.equal(bucket.first.payloadBytes, Buffer.byteLength(example.token), `${key}: the payload's size`);
    t.ok(bucket.first.message.length > 0 && bucket.first.message.length <= 160, `${key}: the first reason message, bounded: ${bucket.first.message}`);
  }

  t.match(rig.audit.verify(), { ok: true }, 'the hash chain verifies');
  const cli = await verifyAuditDatabase(join(rig.stateDirectory, 'audit.db'), rig.runtime.interlockPublicKey);
  t.match(cli, { status: 'ok' }, '`interlock audit verify` (with checkpoints) says ok');
  t.same(rig.badReleases, []);
});

t.test('a garbage flood does not fill a capped log: an honest command afterwards is allowed, not AUDIT_LOG_FULL', async (t) => {
  // 512 KiB, of which the reserve (64 KiB) is kept for stops: a few thousand decision records fill it.
  const cellYaml = readFileSync(join(DEMO_CELL, 'cell.yaml'), 'utf8');
  if (!cellYaml.includes('maxSize: { value: 256, unit: MiB }')) throw new Error('the demo cell no longer declares maxSize 256 MiB');
  const rig = await liveInterlock(t, { files: { 'cell.yaml': cellYaml.replace('maxSize: { value: 256, unit: MiB }', 'maxSize: { value: 512, unit: KiB }') } });
  t.equal(rig.audit.health().maxBytes, 512 * 1024, 'the log has the declared cap');
  const make = garbageMaker(rig);
  // Garbage bytes only (cheapest to send): one decision record each would be about 1.5 MB, three times the cap.
  const flood = Array.from({ length: 3000 }, (_, i) => make(i * 4));
  await publishFlood(rig, flood);
  await floodDecided(rig, flood);
  await rig.interlock.idle();
  t.not(rig.audit.health().state, 'full', 'the log is not full after the flood');

  const honest = await rig.send(CONVEYOR, rig.cell.signer('planner-1').sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  t.notOk(codes(honest).includes('AUDIT_LOG_FULL'), `not AUDIT_LOG_FULL: ${codes(honest).join(',')}`);
  t.equal(honest.report.verdict, 'allow');
  t.equal(honest.released, true);
  t.type(honest.auditSeq, 'number', 'recorded');
  await waitFor(() => rig.releases.some((r) => r.command.commandId === honest.report.commandId), 'the release of the honest command');
});

t.test('authenticated denials (signed: out of bounds, replayed, misaddressed) stay one record each amid a garbage flood', async (t) => {
  const rig = await liveInterlock(t);
  const planner = rig.cell.signer('planner-1');
  const make = garbageMaker(rig);
  const flood: Garbage[] = [];
  // Ten garbage commands before each signed one, on the same connection (so decided in that order).
  const send = async (token: string): Promise<DecisionEvent> => {
    const before = Array.from({ length: 10 }, (_, i) => make(flood.length + i));
    flood.push(...before);
    await publishFlood(rig, before);
    const digest = commandDigest(token);
    const earlier = rig.decisions.filter((d) => d.report.commandDigest === digest).length;
    await rig.client.publish(topics.command(CONVEYOR), token, { qos: 1 });
    // A replay has the same digest as its original: wait for the decision after the ones already seen.
    await waitFor(() => rig.decisions.filter((d) => d.report.commandDigest === digest).length > earlier, `the decision on ${digest.slice(0, 12)}`);
    return rig.decisions.filter((d) => d.report.commandDigest === digest)[earlier] as DecisionEvent;
  };
  const tooFast = Array.from({ length: 8 }, () => planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 5, rampMPerS2: 0.2 }));
  const denied: DecisionEvent[] = [];
  for (const token of tooFast) denied.push(await send(token));
  denied.push(await send(tooFast[0] ?? ''));
  denied.push(await send(planner.sign(AMR, 'stop', {})));
  t.same(denied.map((d) => d.report.verdict), denied.map(() => 'deny'), 'all denied');
  t.same(codes(denied[8] as DecisionEvent), ['ENVELOPE_REPLAYED'], 'the replay');
  t.same(codes(denied[9] as DecisionEvent), ['ENVELOPE_WRONG_AUDIENCE'], 'the misaddressed stop');
  await floodDecided(rig, flood);
  await rig.restart();
  const records = rig.audit.read(1, 100_000);
  for (const d of denied) {
    const own = records.filter((r) => r.kind === 'decision' && r.seq === d.auditSeq);
    t.equal(own.length, 1, `${codes(d).join(',')}: a record of its own (seq ${String(d.auditSeq)})`);
    t.match(own[0], { commandDigest: d.report.commandDigest, agentId: 'planner-1', verdict: 'deny' });
  }
  t.equal(new Set(denied.map((d) => d.auditSeq)).size, denied.length, 'ten denials, ten records');
  t.same(
    records.filter((r) => r.kind === 'decision').map((r) => r.seq),
    denied.map((d) => d.auditSeq),
    'and no other decision record: the garbage between them has none',
  );
  t.equal(aggregates(records).reduce((n, w) => n + w.denials, 0), flood.length, 'the garbage is counted in the aggregate');
});
