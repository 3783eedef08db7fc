// The embedded broker: its in-process transport against the contract, and its one security promise, that no
// TCP client gets a message onto a protected (actuator command) topic. Integration tests: they open sockets.

import mqtt from 'mqtt';
import t from 'tap';
import { wideAccess, wideLogin } from '../../scripts/wide-broker.js';
import { EmbeddedBroker, type PublishDenied } from '../../src/transport/embedded-broker.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import type { Transport } from '../../src/transport/transport.js';
import { connectionLog, inbox, runTransportContract } from './transport-contract.js';

const quiet = (): void => undefined;
// These tests are about the broker's mechanics, not its ACL (test/transport/broker-acl.test.ts): one login that may
// read and write everything a grant can name.
const WIDE = wideAccess();
const login = wideLogin;

t.test('contract: in-process transport paired with an MQTT client over TCP', async (t) => {
  const broker = new EmbeddedBroker({ access: WIDE, log: quiet });
  await broker.start();
  t.teardown(() => broker.stop());
  runTransportContract(t, 'embedded in-process <-> mqtt', async () => {
    const made: Transport[] = [];
    const unstarted = (): Transport => {
      const transport = broker.transport();
      made.push(transport);
      return transport;
    };
    const a = unstarted();
    const b = new MqttTransport({ url: broker.url, ...login('b'), log: quiet });
    made.push(b);
    await Promise.all([a.start(), b.start()]);
    return { a, b, unstarted, cleanup: async () => void (await Promise.all(made.map((x) => x.stop()))) };
  }, {
    notApplicable: {
      // The in-process transport has no connection of its own: it is "dropped" only when the broker stops, and a
      // stopped broker never comes back, so there is no reconnect to test. That end is tested below ('stop closes
      // everything, tells transports').
      droppedConnection: 'no connection to drop; only the broker stopping disconnects it, for good (tested in this file)',
    },
  });
});

t.test('listens on 127.0.0.1 on an ephemeral port by default', { timeout: 10_000 }, async (t) => {
  const broker = new EmbeddedBroker({ access: WIDE, log: quiet });
  t.throws(() => broker.url, /not started/, 'no url before start');
  await broker.start();
  t.teardown(() => broker.stop());
  t.ok(broker.port > 0, 'a real port was bound');
  t.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`);
});

t.test('only the in-process transport may publish actuator commands', { timeout: 20_000 }, async (t) => {
  const denials: PublishDenied[] = [];
  const denied = inbox(); // mirrors denials as messages so the test can wait on them
  const broker = new EmbeddedBroker({
    access: WIDE,
    log: quiet,
    onPublishDenied: (event) => {
      denials.push(event);
      denied.handler(event.topic, Buffer.from(event.clientId ?? ''));
    },
  });
  await broker.start();
  t.teardown(() => broker.stop());

  const interlock = broker.transport();
  t.teardown(() => interlock.stop());
  await interlock.start();
  const atInterlock = inbox();
  await interlock.subscribe('actuator/+/command', atInterlock.handler);
  const agentCommands = inbox();
  await interlock.subscribe('interlock/+/command', agentCommands.handler);

  // A device driver: an external subscriber to its actuator commands.
  const driver = new MqttTransport({ url: broker.url, ...login('driver'), log: quiet });
  t.teardown(() => driver.stop());
  await driver.start();
  const atDriver = inbox();
  await driver.subscribe('actuator/#', atDriver.handler);

  // A rogue agent using our own transport: QoS 1. aedes closes its connection (3.1.1 has no negative PUBACK).
  const agent = new MqttTransport({ url: broker.url, ...login('rogue-agent'), reconnectPeriodMs: 50, log: quiet });
  t.teardown(() => agent.stop());
  await agent.start();
  const agentConnection = connectionLog(agent);
  await t.rejects(agent.publish('actuator/arm-1/command', 'forged qos1'), /outcome unknown/, 'the forged publish fails');

  // A raw client at QoS 0, and one that leaves a forged Last Will and then drops without DISCONNECT.
  const raw = await mqtt.connectAsync(broker.url, { ...login('rogue-raw'), reconnectPeriod: 0 });
  t.teardown(() => raw.endAsync(true));
  raw.on('error', quiet);
  raw.publish('actuator/arm-1/command', 'forged qos0', { qos: 0 });
  const willer = await mqtt.connectAsync(broker.url, {
    ...login('rogue-will'),
    reconnectPeriod: 0,
    will: { topic: 'actuator/arm-1/command', payload: Buffer.from('forged will'), qos: 1, retain: false },
  });
  willer.on('error', quiet);
  willer.end(true); // force: the socket is destroyed, no DISCONNECT, so the broker publishes the will
  await denied.until((m) => m.length >= 3, 'three refusals');

  // The rogue agent reconnects and is still a normal client; its refused message is not resent.
  await agentConnection.until((c) => c.at(-1) === true, 'the rogue agent to reconnect');
  await agent.publish('interlock/arm-1/command', 'a normal agent command');
  await agentCommands.until((m) => m.length >= 1, 'the agent command at the interlock');

  // The interlock's own publish goes through to the external driver.
  await interlock.publish('actuator/arm-1/command', 'released');
  await atDriver.until((m) => m.length >= 1, 'the released command at the driver');
  await atInterlock.until((m) => m.length >= 1, 'the released command at the in-process subscriber');

  t.same(atDriver.payloads(), ['released'], 'the driver saw only the interlock command');
  t.same(atInterlock.payloads(), ['released'], 'the in-process subscriber saw only the interlock command');
  t.same(
    denials.map((d) => [d.clientId, d.topic]).sort(),
    [
      ['bench:rogue-agent', 'actuator/arm-1/command'],
      ['bench:rogue-raw', 'actuator/arm-1/command'],
      ['bench:rogue-will', 'actuator/arm-1/command'],
    ],
    'each forgery was refused once, and the QoS 1 one was not retried after reconnecting',
  );
});

t.test('protected filters are configurable (topic prefix)', { timeout: 15_000 }, async (t) => {
  const denials: PublishDenied[] = [];
  const broker = new EmbeddedBroker({
    access: WIDE,
    log: quiet,
    protectedPublishFilters: ['site-a/actuator/+/command'],
    onPublishDenied: (event) => denials.push(event),
  });
  await broker.start();
  t.teardown(() => broker.stop());
  const interlock = broker.transport();
  t.teardown(() => interlock.stop());
  await interlock.start();
  const box = inbox();
  await interlock.subscribe('#', box.handler);

  const client = new MqttTransport({ url: broker.url, ...login('c'), reconnectPeriodMs: 50, log: quiet });
  t.teardown(() => client.stop());
  await client.start();
  const log = connectionLog(client);
  await t.rejects(client.publish('site-a/actuator/arm-1/command', 'forged'), /outcome unknown/);
  await log.until((c) => c.at(-1) === true, 'the reconnect');
  await client.publish('actuator/arm-1/command', 'not protected under this prefix');
  await box.until((m) => m.length >= 1, 'the unprotected message');
  t.same(box.payloads(), ['not protected under this prefix']);
  t.same(denials.map((d) => d.topic), ['site-a/actuator/arm-1/command']);
  t.throws(() => new EmbeddedBroker({ access: WIDE, protectedPublishFilters: ['actuator/#/command'] }), /bad protected filter/);
});

t.test('stop closes everything, tells transports, and is idempotent', { timeout: 15_000 }, async (t) => {
  const broker = new EmbeddedBroker({ access: WIDE, log: quiet });
  await broker.start();
  const inProcess = broker.transport();
  await inProcess.start();
  const inProcessLog = connectionLog(inProcess);
  const tcp = new MqttTransport({ url: broker.url, ...login('c'), reconnectPeriodMs: 50, log: quiet });
  t.teardown(() => tcp.stop());
  await tcp.start();
  const tcpLog = connectionLog(tcp);

  await Promise.all([broker.stop(), broker.stop()]);
  await broker.stop();
  t.equal(broker.isRunning(), false);
  t.same(inProcessLog.changes, [false], 'the in-process transport heard the broker go');
  t.equal(inProcess.isConnected(), false);
  await t.rejects(inProcess.publish('a/b', 'x'), /broker not running|stopped/);
  await tcpLog.until((c) => c.includes(false), 'the TCP client to notice');
  await t.rejects(broker.start(), /cannot start/, 'a stopped broker is not restarted');
  await t.resolves(inProcess.stop(), 'stopping the transport afterwards is fine');
});
