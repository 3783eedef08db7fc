// The embedded broker's packet limit through real sockets: a hostile client streaming byte-built PUBLISH packets is
// disconnected as soon as a header announces more than the limit, while the other clients keep getting their
// messages. Integration tests: they open sockets on 127.0.0.1.

import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { payloadBytesForPacket, rawPublish } from '../../scripts/bench-oversize.js';
import { EmbeddedBroker } from '../../src/transport/embedded-broker.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { MAX_PACKET_BYTES, MQTT_MAX_PACKET_BYTES } from '../../src/transport/payload-limits.js';
import { inbox } from './transport-contract.js';
import { wideBroker, wideLogin } from '../../scripts/wide-broker.js';

const quiet = (): void => undefined;
// A logged-in client (anonymous ones do not get past CONNECT): the size limit holds against a client the broker knows.
const rawLogin = (name: string) => {
  const { username, password, clientId } = wideLogin(name);
  return { clientId, login: { username, password } };
};

async function startBroker(t: Test, logs: string[]): Promise<EmbeddedBroker> {
  const broker = wideBroker({ log: (msg) => logs.push(msg) });
  await broker.start();
  t.teardown(() => broker.stop());
  return broker;
}

t.test('a publish of exactly the limit is delivered; one byte more disconnects its sender and is not', { timeout: 30_000 }, async (t) => {
  const logs: string[] = [];
  const broker = await startBroker(t, logs);
  t.equal(broker.maxPacketBytes, MAX_PACKET_BYTES, 'the default limit');
  const interlock = broker.transport();
  t.teardown(() => interlock.stop());
  await interlock.start();
  const box = inbox();
  await interlock.subscribe('limits/#', box.handler);

  const exact = payloadBytesForPacket('limits/exact', MAX_PACKET_BYTES);
  const atLimit = await rawPublish(connect({ host: '127.0.0.1', port: broker.port }), { ...rawLogin('at-limit'), topic: 'limits/exact', payloadBytes: exact });
  t.match(atLimit, { completed: true, closedByBroker: false }, 'at the limit: written whole, the connection kept');
  await box.until((m) => m.length === 1, 'the packet at the limit');
  t.equal(box.messages[0]?.payload.length, exact, 'delivered whole');

  const over = await rawPublish(connect({ host: '127.0.0.1', port: broker.port }), { ...rawLogin('over-limit'), topic: 'limits/over', payloadBytes: payloadBytesForPacket('limits/over', MAX_PACKET_BYTES + 1) });
  t.equal(over.closedByBroker, true, 'one byte over: the broker closed the connection');
  t.match(logs.join('\n'), new RegExp(`packet of ${MAX_PACKET_BYTES + 1} bytes exceeds the broker's maximum of ${MAX_PACKET_BYTES} bytes`), 'and logged why');
  // A later message proves the broker went on, and that nothing of the refused one came before it.
  const after = new MqttTransport({ url: broker.url, ...wideLogin('client'), log: quiet });
  t.teardown(() => after.stop());
  await after.start();
  await after.publish('limits/after', 'still working');
  await box.until((m) => m.length === 2, 'the next message');
  t.same(box.messages.map((m) => m.topic), ['limits/exact', 'limits/after'], 'the oversize publish was never delivered');
});

t.test('three 100 MB publishes are refused at their headers while a subscriber keeps its heartbeat', { timeout: 60_000 }, async (t) => {
  const logs: string[] = [];
  const broker = await startBroker(t, logs);
  const interlock = broker.transport();
  t.teardown(() => interlock.stop());
  await interlock.start();
  const commands = inbox();
  await interlock.subscribe('interlock/+/command', commands.handler);
  const driver = new MqttTransport({ url: broker.url, ...wideLogin('driver'), log: quiet });
  t.teardown(() => driver.stop());
  await driver.start();
  const beats: number[] = [];
  await driver.subscribe('interlock/heartbeat', () => beats.push(performance.now()));
  const timer = setInterval(() => void interlock.publish('interlock/heartbeat', 'beat', { qos: 0 }).catch(quiet), 50);
  t.teardown(() => clearInterval(timer));
  await new Promise((resolve) => setTimeout(resolve, 300));

  const started = performance.now();
  const results = await Promise.all(
    [0, 1, 2].map((i) => rawPublish(connect({ host: '127.0.0.1', port: broker.port }), { ...rawLogin(`hostile-${i}`), topic: 'interlock/arm-1/command', payloadBytes: 100_000_000 })),
  );
  const ended = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 300));
  clearInterval(timer);

  for (const [i, r] of results.entries()) {
    t.match(r, { completed: false, closedByBroker: true }, `publish ${i}: disconnected before it was written`);
    // What the kernel's socket buffers took before the close arrived; the broker itself read only the header.
    t.ok(r.bytesWritten < 32 * 2 ** 20, `publish ${i}: ${(r.bytesWritten / 2 ** 20).toFixed(1)} MiB of 95 MiB left the client`);
  }
  t.equal(commands.messages.length, 0, 'nothing reached the interlock');
  t.equal(logs.filter((l) => /exceeds the broker's maximum/.test(l)).length, 3, 'each refusal logged');
  const window = [beats.filter((b) => b < started).at(-1) ?? started, ...beats.filter((b) => b >= started), performance.now()];
  const gap = Math.max(...window.slice(1).map((b, i) => b - (window[i] as number)));
  // The drivers stop when the heartbeat is silent for 1 s; without the limit the gap was over 2 s here.
  t.ok(gap < 1_000, `largest heartbeat gap ${gap.toFixed(0)} ms over ${(ended - started).toFixed(0)} ms of attack`);
  t.ok(beats.some((b) => b > ended), 'heartbeats still arrive after the attack');
});

t.test('the limit must be a whole number of bytes within MQTT\'s range', async (t) => {
  for (const bad of [0, 63, 1.5, Number.NaN, MQTT_MAX_PACKET_BYTES + 1]) {
    t.throws(() => wideBroker({ maxPacketBytes: bad }), /maxPacketBytes must be an integer from 64/, String(bad));
  }
  t.equal(wideBroker({ maxPacketBytes: MQTT_MAX_PACKET_BYTES }).maxPacketBytes, MQTT_MAX_PACKET_BYTES, 'MQTT\'s own maximum is allowed (the bench compares with it)');
  t.throws(() => new MqttTransport({ url: 'mqtt://127.0.0.1:1', maxPacketBytes: 0 }), /maxPacketBytes must be > 0/, 'the client side too');
});
