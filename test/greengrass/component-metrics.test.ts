// The component's metrics over Greengrass, in process against the test nucleus with the recipe's own configuration
// and accessControl: the cloud link is the nucleus's IoT Core channel on the component's IPC connection, reports reach
// the nucleus's cloud side (PublishToIoTCore, QoS 1) where a fake Device Defender checks and answers them, the counts
// are the decisions made over IPC, a rejection is logged and not resent, and a plain topic the accessControl does not
// grant is refused by the nucleus and reported as not published.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { startComponent, type RunningComponent } from '../../src/greengrass/component.js';
import { ed25519PublicKeyFromPem } from '../../src/crypto/jws.js';
import { IpcTransport } from '../../src/transport/greengrass-ipc.js';
import { topicSet } from '../../src/transport/topics.js';
import { fakeDeviceDefender, type FakeDeviceDefender } from '../helpers/fake-device-defender.js';
import { TestNucleus } from '../helpers/greengrass-nucleus.js';
import { AGENT_ACCESS, CONVEYOR, DRIVER_ACCESS, startIpcConveyor } from '../helpers/ipc-conveyor.js';
import { COMPONENT_NAME, loadRecipe } from '../helpers/recipe.js';
import { required } from '../helpers/required.js';
import { makeTestCell } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const topics = topicSet();
const fast = { reconnectMinMs: 20, reconnectMaxMs: 200, connectTimeoutMs: 3_000 };
const THING = 'test-thing';

interface Started {
  readonly nucleus: TestNucleus;
  readonly running: RunningComponent;
  readonly dd: FakeDeviceDefender;
  readonly logs: string[];
  send(action: string, params: Record<string, unknown>): Promise<{ verdict: string }>;
}

async function start(t: Test, metrics?: Record<string, unknown>): Promise<Started> {
  const cell = makeTestCell({}, { stateAgeMs: 10_000 });
  const work = mkdtempSync(join(tmpdir(), 'gg-metrics-'));
  const recipe = loadRecipe();
  const configuration = { ...recipe.configuration, cellDirectory: cell.cellDir, heartbeatPeriodMs: 10_000, ...(metrics === undefined ? {} : { metrics }) };
  const nucleus = new TestNucleus(join(work, 'ipc.sock'), [
    { name: COMPONENT_NAME, accessControl: recipe.accessControl, configuration },
    { name: 'conveyor-driver', accessControl: DRIVER_ACCESS },
    { name: 'agent', accessControl: AGENT_ACCESS },
  ]);
  await nucleus.start();
  t.teardown(async () => {
    await nucleus.stop();
    cell.cleanup();
    rmSync(work, { recursive: true, force: true });
  });
  // The cloud side: Device Defender answers each report it gets through the nucleus's MQTT proxy.
  const dd = fakeDeviceDefender();
  nucleus.iotCoreListeners.add((published) => {
    const reply = dd.answer(published.topicName, published.payload);
    if (reply !== undefined) nucleus.cloudPublish(reply.topic, reply.payload);
  });
  const logs: string[] = [];
  const running = await startComponent({ ipc: { socketPath: nucleus.socketPath, authToken: nucleus.tokens.get(COMPONENT_NAME) as string, ...fast }, places: { workPath: work }, write: (line) => logs.push(line), thingName: THING });
  t.teardown(() => running.stop());
  const publicKey = ed25519PublicKeyFromPem(readFileSync(running.runtime.interlockPublicKeyPath, 'utf8'));
  const { agentBus } = await startIpcConveyor(t, nucleus, cell, publicKey, fast);
  const decisions: { verdict: string }[] = [];
  await agentBus.subscribe(topics.decision(CONVEYOR), (_topic, payload) => decisions.push(JSON.parse(payload.toString()) as { verdict: string }));
  await waitFor(() => running.runtime.interlock.states.latest(CONVEYOR) !== undefined, 'conveyor state over IPC');
  const planner = cell.signer('planner-1');
  return {
    nucleus,
    running,
    dd,
    logs,
    async send(action, params) {
      const before = decisions.length;
      await agentBus.publish(topics.command(CONVEYOR), planner.sign(CONVEYOR, action, params));
      await waitFor(() => decisions.length > before, `the decision on ${action}`);
      return decisions[before] as { verdict: string };
    },
  };
}

const number = (report: FakeDeviceDefender['reports'][number] | undefined, name: string): number | undefined => (report?.report.custom_metrics[name]?.[0] as { number?: number } | undefined)?.number;

t.test("the component reports through the nucleus's IoT Core channel with the recipe's accessControl", async (t) => {
  const s = await start(t);
  const metrics = required(s.running.runtime.metrics, 'the reporter the component started (the recipe turns metrics on)');
  await waitFor(() => metrics.ready, 'the reporter to be up on the IoT Core channel');
  t.equal(s.running.runtime.cloud?.link.transport.name, 'ipc-iot-core');
  t.equal((await s.send('set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 })).verdict, 'allow');
  t.equal((await s.send('set_speed', { speedMPerS: 2, rampMPerS2: 0.2 })).verdict, 'deny');
  await s.running.runtime.interlock.idle();
  const outcomes = await metrics.reportNow();
  t.match(outcomes, [{ destination: 'defender', status: 'published' }, { destination: 'topic', status: 'published' }]);
  await waitFor(() => metrics.stats().accepted === 1, 'the accepted reply over SubscribeToIoTCore');
  // Audit batches go over the same channel (forwarding is on in the recipe): component-forwarding.test.ts covers them.
  const reports = s.nucleus.iotCorePublishes.filter((p) => p.component === COMPONENT_NAME && !p.topicName.endsWith('/audit'));
  t.same(reports.map((p) => [p.topicName, p.qos]), [[`$aws/things/${THING}/defender/metrics/json`, '1'], [`interlock/${THING}/metrics`, '1']], 'both at QoS 1, as the recipe grants');
  const report = s.dd.reports[0];
  t.equal(report?.status, 'ACCEPTED');
  t.equal(number(report, 'interlock_commands_allowed'), 1);
  t.equal(number(report, 'interlock_commands_denied'), 1);
  t.equal(number(report, 'interlock_denied_bounds'), 1);
  const plain = JSON.parse(reports[1]?.payload.toString('utf8') ?? '{}') as { metrics: Record<string, unknown> };
  t.equal(plain.metrics['interlock_commands_allowed'], 1, 'the plain topic carries the same numbers');

  // Rejected: logged with the ErrorCode, counted, not resent.
  s.dd.rejectWith = 'InvalidPayload';
  await s.send('stop', {});
  await s.running.runtime.interlock.idle();
  await metrics.reportNow();
  await waitFor(() => metrics.stats().rejected === 1, 'the rejection');
  t.ok(s.logs.some((line) => /ERROR.*Device Defender rejected report \d+: InvalidPayload/.test(line)), 'logged with the ErrorCode');
  s.dd.rejectWith = undefined;
  await metrics.reportNow();
  await waitFor(() => s.dd.reports.length === 3, 'the next report');
  t.equal(number(s.dd.reports[2], 'interlock_commands_allowed'), 0, 'the rejected interval is not sent again');
  t.equal(new Set(s.dd.reports.map((r) => r.report.header.report_id)).size, 3, 'every report has its own id');
});

t.test('a plain topic the accessControl does not grant: refused by the nucleus, reported as not published, Device Defender unaffected', async (t) => {
  const s = await start(t, { intervalSeconds: 300, defender: true, topic: 'elsewhere/{thing}/metrics' });
  const metrics = required(s.running.runtime.metrics, 'the reporter');
  await waitFor(() => metrics.ready, 'the reporter to be up');
  const before = required(metrics.cursor('topic'), 'the topic cursor').seq;
  await s.send('stop', {});
  await s.running.runtime.interlock.idle();
  const outcomes = await metrics.reportNow();
  t.match(outcomes, [{ destination: 'defender', status: 'published' }, { destination: 'topic', status: 'failed', problem: /not authorized.*elsewhere\/test-thing\/metrics/ }]);
  t.equal(metrics.cursor('topic')?.seq, before, "the topic's cursor did not move: its interval stays open");
  t.ok((metrics.cursor('defender')?.seq ?? 0) > before, "Device Defender's moved");
  t.ok(s.nucleus.refused.some((r) => r.resource === `elsewhere/${THING}/metrics`), 'the nucleus refused it');
});

t.test("the recipe's mqttproxy grants exactly the cloud topics: reports and replies, audit batches and their acks", async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'gg-grants-'));
  const recipe = loadRecipe();
  const nucleus = new TestNucleus(join(work, 'ipc.sock'), [{ name: COMPONENT_NAME, accessControl: recipe.accessControl, configuration: {} }]);
  await nucleus.start();
  t.teardown(async () => {
    await nucleus.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const cloud = new IpcTransport({ socketPath: nucleus.socketPath, authToken: nucleus.tokens.get(COMPONENT_NAME) as string, ...fast, channel: 'iot-core' });
  await cloud.start();
  t.teardown(() => cloud.stop());
  for (const topic of [`$aws/things/${THING}/defender/metrics/json`, `interlock/${THING}/audit`, `interlock/${THING}/metrics`]) await t.resolves(cloud.publish(topic, '{}'), `publish ${topic}`);
  for (const filter of [`$aws/things/${THING}/defender/metrics/json/accepted`, `$aws/things/${THING}/defender/metrics/json/rejected`, `interlock/${THING}/audit/ack`]) {
    await t.resolves(cloud.subscribe(filter, () => undefined), `subscribe ${filter}`);
  }
  await t.rejects(cloud.publish(`$aws/things/${THING}/shadow/update`, '{}'), /not authorized/, 'nothing else: the shadow');
  await t.rejects(cloud.subscribe('#', () => undefined), /not authorized/, 'nothing else: everything');
  await t.rejects(cloud.publish(`interlock/${THING}/audit/ack`, '{}'), /not authorized/, 'the component never acknowledges its own audit batches');
});
