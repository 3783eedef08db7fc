// The audit forwarder against a real mosquitto and the SQLite receiver: a backlog drains and the cursor equals the
// receiver's watermark; the cursor never moves on a PUBACK alone nor on a watermark whose hash is not ours; batches
// stay within the byte limit; a record too large for any batch stops forwarding there and says so; a new forwarder
// on the same log resumes from the cursor.

import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/core/log.js';
import { AuditForwarder, forwardingSettings } from '../../src/cloud/audit-forwarder.js';
import { auditAckTopic, auditTopic, IOT_CORE_MAX_MESSAGE_BYTES } from '../../src/cloud/audit-batch.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/wait-for.js';
import { cloudPeer, filledLog } from '../helpers/audit-forwarding.js';

const THING = 'forward-test';

function capture(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger('audit-forward', 'info', (line) => lines.push(line)) };
}

async function deviceLink(t: Test, url: string): Promise<MqttTransport> {
  const transport = new MqttTransport({ url, clientId: `device-${Math.random().toString(16).slice(2, 10)}`, reconnectPeriodMs: 100, log: () => undefined });
  await transport.start();
  t.teardown(() => transport.stop());
  return transport;
}

t.test('a backlog drains in bounded batches; the cursor ends at the receiver watermark', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const device = await filledLog(t, 600, {}, undefined);
  // A few large records, so the byte bound (not the count) closes some batches.
  await device.add(20, 30_000);
  const peer = await cloudPeer(t, broker.url, new Map([[THING, device.publicKey]]));
  const sizes: number[] = [];
  await peer.transport.subscribe(auditTopic(THING), (_topic, payload) => sizes.push(payload.length));
  const { logger } = capture();
  const forwarder = new AuditForwarder({ log: device.log, transport: await deviceLink(t, broker.url), thingName: THING, logger, options: { recordsPerSecond: 100_000, maxBatchBytes: 64 * 1024 } });
  t.teardown(() => forwarder.stop());
  await forwarder.start();
  const head = device.log.head();
  await waitFor(() => device.log.acknowledgedSeq() === head.seq, 'the cursor to reach the head', 30_000);
  const mark = await peer.receiver.watermark(THING);
  t.same(mark, { seq: head.seq, hash: head.hash }, 'receiver watermark = device head');
  t.equal(peer.store.count(THING), head.seq, 'every record held once');
  t.ok(sizes.length > 0 && sizes.every((s) => s <= 64 * 1024), `every batch within 64 KiB (largest ${Math.max(...sizes)})`);
  t.ok(Math.max(...sizes) > 60_000 || sizes.length > 620 / 256, 'batches were cut by size or count');
  t.equal(peer.receiver.stats().refused, 0);
  t.equal(forwarder.status().mismatches, 0);
});

t.test('the cursor moves only on a receiver watermark whose hash matches our record', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const device = await filledLog(t, 50);
  const link = await deviceLink(t, broker.url);
  const { lines, logger } = capture();
  const forwarder = new AuditForwarder({ log: device.log, transport: link, thingName: THING, logger, options: { ackTimeoutMs: 60_000 } });
  t.teardown(() => forwarder.stop());
  const outside = await deviceLink(t, broker.url);
  let batches = 0;
  await outside.subscribe(auditTopic(THING), () => (batches += 1));
  await forwarder.start();
  // No receiver: the broker PUBACKs every batch, and nothing is acknowledged.
  await waitFor(() => batches >= 1 && forwarder.status().batchesSent >= 1, 'a batch to reach the broker and be PUBACKed');
  await waitFor(() => forwarder.status().inFlight === 0 || forwarder.status().nextSeq === 51, 'the sent batches to be waiting for a watermark');
  t.equal(device.log.acknowledgedSeq(), 0, 'a PUBACK acknowledges nothing');
  const seen: number[] = [];
  forwarder.onAck((ack) => seen.push(ack.seq));
  await outside.publish(auditAckTopic(THING), JSON.stringify({ v: 1, thing: THING, seq: 30, hash: 'f'.repeat(64) }));
  await waitFor(() => forwarder.status().mismatches === 1, 'the mismatching watermark to be refused');
  t.equal(device.log.acknowledgedSeq(), 0, 'a watermark with another hash acknowledges nothing');
  t.ok(lines.some((l) => /AUDIT WATERMARK MISMATCH: the receiver holds seq 30 with hash f{64}, this log has [0-9a-f]{64}: not acknowledged/.test(l)), 'and is logged loudly');
  await outside.publish(auditAckTopic(THING), JSON.stringify({ v: 1, thing: THING, seq: 99, hash: 'f'.repeat(64) }));
  await waitFor(() => forwarder.status().mismatches === 2, 'a watermark beyond the head to be refused');
  const at30 = device.log.read(30, 1)[0];
  await outside.publish(auditAckTopic(THING), JSON.stringify({ v: 1, thing: THING, seq: 30, hash: at30?.hash }));
  await waitFor(() => device.log.acknowledgedSeq() === 30, 'the matching watermark to move the cursor');
  t.same(seen, [30, 99, 30]);
});

t.test('a record too large for a batch of its own stops forwarding there, named; nothing after it is skipped', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const device = await filledLog(t, 5);
  await device.add(1, IOT_CORE_MAX_MESSAGE_BYTES);
  await device.add(5);
  const peer = await cloudPeer(t, broker.url, new Map([[THING, device.publicKey]]));
  const { lines, logger } = capture();
  const forwarder = new AuditForwarder({ log: device.log, transport: await deviceLink(t, broker.url), thingName: THING, logger, options: { idlePollMs: 20 } });
  t.teardown(() => forwarder.stop());
  await forwarder.start();
  await waitFor(() => forwarder.status().stuck !== undefined && device.log.acknowledgedSeq() === 5, 'forwarding to stop at record 6');
  t.match(forwarder.status().stuck, /record 6 alone makes a \d+-byte batch, over the 131072-byte limit/);
  t.ok(lines.some((l) => l.includes('audit forwarding is stuck: record 6')), 'logged as an error');
  t.equal(peer.store.count(THING), 5, 'records 7.. are not sent past the hole');
});

t.test('a new forwarder on the same log resumes from the cursor; the receiver holds each record once', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const device = await filledLog(t, 400);
  const peer = await cloudPeer(t, broker.url, new Map([[THING, device.publicKey]]));
  const link = await deviceLink(t, broker.url);
  const first = new AuditForwarder({ log: device.log, transport: link, thingName: THING, logger: capture().logger, options: { recordsPerSecond: 2_000, maxBatchRecords: 20 } });
  await first.start();
  await waitFor(() => device.log.acknowledgedSeq() >= 100, 'part of the backlog to be acknowledged');
  await first.stop();
  const cursor = device.log.acknowledgedSeq();
  t.ok(cursor < 400, `stopped mid-drain at ${cursor}`);
  await device.add(100);
  const second = new AuditForwarder({ log: device.log, transport: link, thingName: THING, logger: capture().logger, options: { recordsPerSecond: 100_000 } });
  t.teardown(() => second.stop());
  t.equal(second.status().nextSeq, cursor + 1, 'starts at the cursor');
  await second.start();
  await waitFor(() => device.log.acknowledgedSeq() === 500, 'the rest to be acknowledged');
  t.equal(peer.store.count(THING), 500);
  t.same(await peer.receiver.watermark(THING), device.log.head());
});

t.test('a tampered or unreadable record stops forwarding there, named, without throwing into the interlock', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  for (const [label, body, expected] of [
    ['edited', `replace(body, 'cmd-3', 'cmd-X')`, /record 3's body does not hash to its stored hash/],
    ['not JSON', `'garbage'`, /reading the audit log failed: .*record 3: body is not JSON/],
  ] as const) {
    const device = await filledLog(t, 6);
    const db = new Database(device.path);
    db.prepare(`UPDATE records SET body = ${body} WHERE seq = 3`).run();
    db.close();
    const peer = await cloudPeer(t, broker.url, new Map([[`${THING}-${label.replace(' ', '-')}`, device.publicKey]]));
    const forwarder = new AuditForwarder({ log: device.log, transport: await deviceLink(t, broker.url), thingName: `${THING}-${label.replace(' ', '-')}`, logger: capture().logger, options: { idlePollMs: 20, ackTimeoutMs: 200 } });
    t.teardown(() => forwarder.stop());
    await forwarder.start();
    await waitFor(() => forwarder.status().stuck !== undefined, `forwarding to stop at the ${label} record`);
    t.match(forwarder.status().stuck, expected, label);
    t.ok(device.log.acknowledgedSeq() <= 2, `${label}: nothing from record 3 on is acknowledged`);
    t.ok(peer.store.count(`${THING}-${label.replace(' ', '-')}`) <= 2, `${label}: nothing from record 3 on is sent`);
  }
});

t.test('options are checked, each bad one named', async (t) => {
  t.throws(() => forwardingSettings({ maxBatchBytes: IOT_CORE_MAX_MESSAGE_BYTES + 1 }), /maxBatchBytes must be a number > 0 and <= 131072/);
  t.throws(() => forwardingSettings({ recordsPerSecond: 0 }), /recordsPerSecond must be a number > 0/);
  t.throws(() => forwardingSettings({ maxBatchRecords: 2.5 }), /maxBatchRecords must be an integer/);
  t.equal(forwardingSettings().recordsPerSecond, 1_000);
  t.equal(forwardingSettings({ enabled: false }).enabled, false);
});
