// mosquitto run from the shipped greengrass/standalone/mosquitto.conf (TLS, client certificates from make-certs.sh)
// refuses a packet over max_packet_size as soon as its header announces it, while the interlock's connection
// carries on; and an MQTT 5 client's own maximum (MqttTransport maxPacketBytes) keeps larger messages from it.
// Never skips: without mosquitto it fails with the install instruction.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import t from 'tap';
import { payloadBytesForPacket, rawPublish } from '../../scripts/bench-oversize.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { MAX_PACKET_BYTES } from '../../src/transport/payload-limits.js';
import { loadTlsFiles } from '../../src/transport/tls-files.js';
import { startMosquitto, startShippedMosquitto, type RunningMosquitto } from '../helpers/mosquitto.js';
import { REPO_ROOT } from '../helpers/test-cell.js';
import { connectionLog, inbox } from '../transport/transport-contract.js';

const STANDALONE = join(REPO_ROOT, 'greengrass', 'standalone');
const TOPIC = 'interlock/arm-1/command';
const dir = mkdtempSync(join(tmpdir(), 'interlock-packet-limit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('the shipped config: a packet over max_packet_size disconnects its sender at the header; the interlock carries on', { timeout: 60_000 }, async (t) => {
  const certs = join(dir, 'certs');
  execFileSync(join(STANDALONE, 'make-certs.sh'), [certs, 'localhost', 'interlock', 'planner-1'], { stdio: 'pipe' });
  const broker: RunningMosquitto = await startShippedMosquitto(STANDALONE, certs);
  t.teardown(() => broker.stop());
  const url = `mqtts://localhost:${broker.port}`;

  const interlock = new MqttTransport({ url, ...loadTlsFiles(url, { caFile: join(certs, 'ca.crt'), certFile: join(certs, 'interlock.crt'), keyFile: join(certs, 'interlock.key') }), protocolVersion: 5, log: () => undefined });
  t.teardown(() => interlock.stop());
  await interlock.start();
  const connection = connectionLog(interlock);
  const commands = inbox();
  await interlock.subscribe('interlock/+/command', commands.handler);
  const ca = readFileSync(join(certs, 'ca.crt'));
  const cert = readFileSync(join(certs, 'planner-1.crt'));
  const key = readFileSync(join(certs, 'planner-1.key'));
  const planner = (clientId: string, payloadBytes: number): ReturnType<typeof rawPublish> =>
    rawPublish(connectTls({ host: '127.0.0.1', servername: 'localhost', port: broker.port, ca, cert, key }), { clientId, topic: TOPIC, payloadBytes });

  const exact = payloadBytesForPacket(TOPIC, MAX_PACKET_BYTES);
  t.match(await planner('planner-exact', exact), { completed: true, closedByBroker: false }, 'a packet of exactly max_packet_size: kept');
  // To the MQTT 5 interlock it is forwarded with a subscription identifier added: CLIENT_MAX_PACKET_BYTES leaves room.
  await commands.until((m) => m.length === 1, 'the packet at the limit');
  t.equal(commands.messages[0]?.payload.length, exact, 'delivered whole to an MQTT 5 client with the default maxPacketBytes');

  // mosquitto 2.0.11 compares remaining length + 1 with the limit, leaving out the 1 to 4 length bytes: a packet may
  // be up to 3 bytes longer than the interlock's MAX_PACKET_BYTES before mosquitto refuses it. Immaterial, but exact.
  t.match(await planner('planner-over', payloadBytesForPacket(TOPIC, MAX_PACKET_BYTES + 4)), { closedByBroker: true }, 'just over (as mosquitto counts): disconnected');

  const hostile = await planner('planner-hostile', 100_000_000);
  t.match(hostile, { completed: false, closedByBroker: true }, '100 MB: disconnected before it was written');
  t.ok(hostile.bytesWritten < 32 * 2 ** 20, `${(hostile.bytesWritten / 2 ** 20).toFixed(1)} MiB of 95 MiB left the client before the close`);

  t.match(await planner('planner-after', 100), { completed: true, closedByBroker: false }, 'the next publish from the same identity is fine');
  await commands.until((m) => m.length === 2, 'the next command');
  t.same(commands.messages.map((m) => m.payload.length), [exact, 100], 'nothing of the refused packets reached the interlock');
  t.same(connection.changes, [], 'the interlock stayed connected throughout');
});

t.test('an MQTT 5 client with maxPacketBytes is never sent a larger packet, and stays connected', { timeout: 30_000 }, async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const small = new MqttTransport({ url: broker.url, protocolVersion: 5, maxPacketBytes: 1024, log: () => undefined });
  const sender = new MqttTransport({ url: broker.url, protocolVersion: 5, log: () => undefined });
  t.teardown(() => Promise.all([small.stop(), sender.stop()]).then(() => undefined));
  await Promise.all([small.start(), sender.start()]);
  const connection = connectionLog(small);
  const box = inbox();
  await small.subscribe('limits/#', box.handler);
  await sender.publish('limits/big', Buffer.alloc(2000, 0x62));
  await sender.publish('limits/small', Buffer.alloc(500, 0x73));
  await box.until((m) => m.length >= 1, 'the small message');
  // The big one was published first: had mosquitto sent it, it would have arrived (or broken the connection) first.
  t.same(box.messages.map((m) => m.topic), ['limits/small'], 'mosquitto dropped the 2000-byte message for this client');
  t.same(connection.changes, [], 'and the client stayed connected');
  // A plain TCP client is told nothing (MQTT 3.1.1): without a broker limit, the default helper config, it gets through.
  const plain = await rawPublish(connectTcp({ host: '127.0.0.1', port: broker.port }), { clientId: 'plain', topic: 'other/x', payloadBytes: 2 * MAX_PACKET_BYTES });
  t.match(plain, { completed: true, closedByBroker: false }, 'fixture: the helper\'s default config has no max_packet_size');
});
