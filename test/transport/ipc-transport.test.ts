// IpcTransport (aws-iot-device-sdk-v2 greengrasscoreipc, the real SDK client) against the test nucleus: the shared
// transport contract (with the nucleus dropping connections), accessControl refusals surfacing as rejected publishes
// and subscribes, IoT Core through the MQTT proxy, the component calls, and connect failures.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ComponentIpc } from '../../src/greengrass/component-ipc.js';
import { IpcConnection, IpcTransport } from '../../src/transport/greengrass-ipc.js';
import { TestNucleus, type AccessControl } from '../helpers/greengrass-nucleus.js';
import { waitFor } from '../helpers/wait-for.js';
import { inbox, runTransportContract, uniqueRoot } from './transport-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'ipc-transport-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const OPEN: AccessControl = {
  'aws.greengrass.ipc.pubsub': { 'test:pubsub:1': { operations: ['aws.greengrass#PublishToTopic', 'aws.greengrass#SubscribeToTopic'], resources: ['*'] } },
};
const NARROW: AccessControl = {
  'aws.greengrass.ipc.pubsub': {
    'narrow:pubsub:1': { operations: ['aws.greengrass#PublishToTopic'], resources: ['actuator/*/state'] },
    'narrow:pubsub:2': { operations: ['aws.greengrass#SubscribeToTopic'], resources: ['actuator/arm-1/command'] },
  },
  'aws.greengrass.ipc.mqttproxy': {
    'narrow:mqttproxy:1': { operations: ['aws.greengrass#PublishToIoTCore'], resources: ['interlock/test-thing/audit'] },
    'narrow:mqttproxy:2': { operations: ['aws.greengrass#SubscribeToIoTCore'], resources: ['interlock/test-thing/audit/ack'] },
  },
};

let sockets = 0;
async function nucleus(components: { name: string; accessControl: AccessControl; configuration?: Record<string, unknown> }[]): Promise<TestNucleus> {
  const n = new TestNucleus(join(dir, `nucleus-${++sockets}.sock`), components);
  await n.start();
  return n;
}

// Fast reconnects; calls keep the default 5 s bound (generous: on a loaded machine an answered call must never hit it).
const fast = { reconnectMinMs: 20, reconnectMaxMs: 200, connectTimeoutMs: 3_000 };
/**
 * The call bound of the tests about that bound, and of no other: unanswered calls on these connections reject after
 * it. Their answered calls share it, so it stays far above what an answered local call takes on a loaded machine.
 */
const LOST_ANSWER_MS = 1_000;

t.test('contract against the test nucleus', async (t) => {
  const n = await nucleus([{ name: 'a', accessControl: OPEN }, { name: 'b', accessControl: OPEN }]);
  t.teardown(() => n.stop());
  runTransportContract(t, 'ipc -> test nucleus', async () => {
    const made: IpcTransport[] = [];
    const make = (component: string): IpcTransport => {
      const transport = new IpcTransport({ socketPath: n.socketPath, authToken: n.tokens.get(component) as string, ...fast });
      made.push(transport);
      return transport;
    };
    const a = make('a');
    const b = make('b');
    await Promise.all([a.start(), b.start()]);
    return {
      a,
      b,
      unstarted: () => make('a'),
      cleanup: async () => void (await Promise.all(made.map((x) => x.stop()))),
      // Only a's connection: b must stay up to publish the message that proves a's subscription survived.
      dropA: async () => n.dropConnections('a'),
    };
  });
});

t.test('contract on the IoT Core channel (the MQTT proxy), the test nucleus looping publishes back as IoT Core does', async (t) => {
  const CLOUD_OPEN: AccessControl = {
    'aws.greengrass.ipc.mqttproxy': { 'cloud:1': { operations: ['aws.greengrass#PublishToIoTCore', 'aws.greengrass#SubscribeToIoTCore'], resources: ['*'] } },
  };
  const n = await nucleus([{ name: 'a', accessControl: CLOUD_OPEN }, { name: 'b', accessControl: CLOUD_OPEN }]);
  n.iotCoreLoopback = true;
  t.teardown(() => n.stop());
  runTransportContract(t, 'ipc iot-core -> test nucleus', async () => {
    const made: { transport: IpcTransport; connection: IpcConnection }[] = [];
    const make = (component: string): IpcTransport => {
      // As the component does: the IoT Core transport shares a connection it does not own.
      const connection = new IpcConnection({ socketPath: n.socketPath, authToken: n.tokens.get(component) as string, ...fast });
      const transport = new IpcTransport({ connection, channel: 'iot-core' });
      made.push({ transport, connection });
      return transport;
    };
    const a = make('a');
    const b = make('b');
    await Promise.all([a.start(), b.start()]);
    return {
      a,
      b,
      unstarted: () => make('a'),
      cleanup: async () => {
        await Promise.all(made.map((x) => x.transport.stop()));
        await Promise.all(made.map((x) => x.connection.stop()));
      },
      dropA: async () => n.dropConnections('a'),
    };
  });
});

t.test("publishes and subscribes outside the component's accessControl are refused with the nucleus's reason", async (t) => {
  const n = await nucleus([{ name: 'driver', accessControl: NARROW }]);
  t.teardown(() => n.stop());
  const driver = new IpcTransport({ socketPath: n.socketPath, authToken: n.tokens.get('driver') as string, ...fast });
  t.teardown(() => driver.stop());
  await driver.start();
  await t.resolves(driver.publish('actuator/arm-1/state', '{}'), 'its own state topic is granted');
  await t.rejects(driver.publish('actuator/arm-1/command', 'forged'), /not authorized to perform aws\.greengrass#PublishToTopic on resource actuator\/arm-1\/command/);
  await t.resolves(driver.subscribe('actuator/arm-1/command', () => undefined), 'its own actuator topic is granted');
  await t.rejects(driver.subscribe('actuator/+/command', () => undefined), /not authorized/, 'a wildcard is a different resource (wildcards are literal there)');
  t.same(n.refused.map((r) => r.resource), ['actuator/arm-1/command', 'actuator/+/command']);
  t.equal(driver.isConnected(), true, 'a refusal does not cost the connection');
});

t.test('IoT Core through the MQTT proxy: publish recorded by the nucleus, cloud messages delivered, others refused', async (t) => {
  const n = await nucleus([{ name: 'c', accessControl: NARROW }]);
  t.teardown(() => n.stop());
  const connection = new IpcConnection({ socketPath: n.socketPath, authToken: n.tokens.get('c') as string, ...fast });
  const cloud = new IpcTransport({ connection, channel: 'iot-core' });
  t.teardown(async () => {
    await cloud.stop();
    await connection.stop();
  });
  await cloud.start();
  t.equal(cloud.name, 'ipc-iot-core');
  await cloud.publish('interlock/test-thing/audit', Buffer.from([0, 1, 2]), { qos: 1 });
  t.match(n.iotCorePublishes, [{ component: 'c', topicName: 'interlock/test-thing/audit', qos: '1' }]);
  t.same([...(n.iotCorePublishes[0]?.payload ?? [])], [0, 1, 2], 'the exact bytes');
  await t.rejects(cloud.publish('$aws/things/test-thing/shadow/update', '{}'), /not authorized/);
  const acks = inbox();
  await cloud.subscribe('interlock/test-thing/audit/ack', acks.handler);
  n.cloudPublish('interlock/test-thing/audit/ack', '{"upToSeq":7}');
  await acks.until((m) => m.length === 1, 'the ack from the cloud');
  t.same(acks.payloads(), ['{"upToSeq":7}']);
  t.equal(acks.messages[0]?.topic, 'interlock/test-thing/audit/ack');
});

t.test('component calls: updateState, getConfiguration, configuration updates across a reconnect', async (t) => {
  const n = await nucleus([{ name: 'interlock', accessControl: OPEN, configuration: { logLevel: 'info', cellDirectory: '/x' } }]);
  t.teardown(() => n.stop());
  const connection = new IpcConnection({ socketPath: n.socketPath, authToken: n.tokens.get('interlock') as string, ...fast });
  t.teardown(() => connection.stop());
  await connection.start();
  const component = new ComponentIpc(connection);
  await component.updateState('RUNNING');
  t.same(n.states.get('interlock'), ['RUNNING']);
  t.same(await component.getConfiguration(), { logLevel: 'info', cellDirectory: '/x' });
  const updates: (readonly string[])[] = [];
  await component.subscribeToConfigurationUpdate([], (keyPath) => updates.push(keyPath));
  n.setConfiguration('interlock', { logLevel: 'warn', cellDirectory: '/x' });
  await waitFor(() => updates.length === 1, 'the first update');
  // The nucleus restarts its side; the subscription comes back on the new client.
  const reconnected = new Promise<void>((resolve) => connection.onConnectionChange((c) => c && resolve()));
  n.dropConnections();
  await reconnected;
  // The connection reports connected only after its restorers ran (the nucleus answered the new subscription), so one
  // update now must arrive: no retries, which would also pass if the subscription came back late or only by chance.
  n.setConfiguration('interlock', { logLevel: 'error', cellDirectory: '/x' });
  await waitFor(() => updates.length >= 2, 'the update sent after the reconnect');
  t.same(updates, [[], []], 'each update heard once, the second on the new client');
  t.same(await component.getConfiguration(['logLevel']), { logLevel: 'error' });
});

t.test('every call is bounded: an unanswered request rejects after callTimeoutMs, outcome unknown, and the connection stays', async (t) => {
  const n = await nucleus([{ name: 'a', accessControl: OPEN, configuration: { logLevel: 'info' } }]);
  t.teardown(() => n.stop());
  const a = new IpcTransport({ socketPath: n.socketPath, authToken: n.tokens.get('a') as string, ...fast, callTimeoutMs: LOST_ANSWER_MS });
  t.teardown(() => a.stop());
  await a.start();
  n.unanswered.add('PublishToTopic');
  await t.rejects(a.publish('x/1/state', 'lost'), new RegExp(`publish to x/1/state: no answer from the nucleus within ${LOST_ANSWER_MS} ms; outcome unknown`));
  t.same(n.unansweredRequests, [{ component: 'a', operation: 'PublishToTopic' }], 'the nucleus did receive it: its outcome really is unknown');
  t.equal(a.isConnected(), true, 'a lost answer does not cost the connection');
  n.unanswered.clear();
  await t.resolves(a.publish('x/1/state', 'next'), 'the next publish goes through');
  const component = new ComponentIpc(a.connection);
  n.unanswered.add('GetConfiguration');
  await t.rejects(component.getConfiguration(), new RegExp(`getConfiguration: no answer from the nucleus within ${LOST_ANSWER_MS} ms; outcome unknown`), 'component calls are bounded too');
  n.unanswered.add('SubscribeToTopic');
  await t.rejects(a.subscribe('x/+/state', () => undefined), new RegExp(`^ipc: subscribe to x/\\+/state: no answer from the nucleus within ${LOST_ANSWER_MS} ms; outcome unknown$`), 'a subscription too');
  n.unanswered.clear();
  t.throws(() => new IpcConnection({ socketPath: n.socketPath, authToken: 'x', callTimeoutMs: 0 }), /callTimeoutMs must be > 0/);
});

t.test('a request still waiting when the connection drops rejects at once, not after the timeout', async (t) => {
  const n = await nucleus([{ name: 'a', accessControl: OPEN }]);
  t.teardown(() => n.stop());
  const a = new IpcTransport({ socketPath: n.socketPath, authToken: n.tokens.get('a') as string, ...fast, callTimeoutMs: 60_000 });
  t.teardown(() => a.stop());
  await a.start();
  n.unanswered.add('PublishToTopic');
  const started = Date.now();
  const pending = a.publish('x/1/state', 'in flight').then(() => 'resolved', (e: Error) => e.message);
  // Drop only once the request has reached the nucleus (written, waiting for its answer).
  await waitFor(() => n.unansweredRequests.length === 1, 'the request to reach the nucleus');
  n.dropConnections();
  t.match(await pending, /publish to x\/1\/state: the connection to the nucleus dropped before the answer; outcome unknown/);
  t.ok(Date.now() - started < 10_000, 'rejected at the drop, long before the 60 s bound');
  n.unanswered.clear();
  await waitFor(() => a.isConnected(), 'the reconnect');
  await t.resolves(a.publish('x/1/state', 'after'), 'publishes work again after the reconnect');
});

t.test('a resubscription the nucleus never answers does not stall the reconnect: the next client tries again', async (t) => {
  const n = await nucleus([{ name: 'a', accessControl: OPEN }, { name: 'b', accessControl: OPEN }]);
  t.teardown(() => n.stop());
  const a = new IpcTransport({ socketPath: n.socketPath, authToken: n.tokens.get('a') as string, ...fast, callTimeoutMs: LOST_ANSWER_MS });
  const b = new IpcTransport({ socketPath: n.socketPath, authToken: n.tokens.get('b') as string, ...fast });
  t.teardown(() => Promise.all([a.stop(), b.stop()]).then(() => undefined));
  await Promise.all([a.start(), b.start()]);
  const box = inbox();
  await a.subscribe('x/+/state', box.handler);
  n.unanswered.add('SubscribeToTopic');
  n.dropConnections('a');
  await waitFor(() => n.unansweredRequests.length >= 2, 'two resubscriptions left unanswered');
  t.equal(a.isConnected(), false, 'not reported connected while its subscription is not restored');
  n.unanswered.clear();
  await waitFor(() => a.isConnected(), 'the reconnect once the nucleus answers again');
  // Reported connected only once the nucleus answered the resubscription: one message now must arrive, no retries.
  await b.publish('x/1/state', 'restored');
  await box.until((m) => m.length > 0, 'the message sent after the reconnect');
  t.same(box.payloads(), ['restored']);
});

t.test('connect failures: a wrong token, no nucleus, no environment; the token never appears in an error', async (t) => {
  const n = await nucleus([{ name: 'a', accessControl: OPEN }]);
  t.teardown(() => n.stop());
  const secret = 'not-the-token-0123456789';
  const wrong = new IpcTransport({ socketPath: n.socketPath, authToken: secret, ...fast, connectTimeoutMs: 1_000 });
  const error = await wrong.start().then(() => undefined, (e: Error) => e);
  await wrong.stop();
  t.ok(error instanceof Error, 'a wrong token is refused');
  t.notMatch(error?.message ?? '', new RegExp(secret), 'the token is not in the message');
  const nowhere = new IpcTransport({ socketPath: join(dir, 'missing.sock'), authToken: secret, ...fast, connectTimeoutMs: 1_000 });
  await t.rejects(nowhere.start(), /cannot connect to the nucleus at .*missing\.sock/);
  await nowhere.stop();
  const saved = { path: process.env['AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT'], token: process.env['SVCUID'] };
  delete process.env['AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT'];
  t.throws(() => new IpcTransport(), /run as a Greengrass component/);
  if (saved.path !== undefined) process.env['AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT'] = saved.path;
  const root = uniqueRoot();
  t.ok(root.length > 0);
});
