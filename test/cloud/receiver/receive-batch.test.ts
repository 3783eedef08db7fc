// The receiver's verification on a real SQLite store and real audit-log records: what it stores, the watermark it
// answers, and each refusal (gap, edited body, forged or lying checkpoint, a second history, a batch filed under
// another thing). No sockets.

import { join } from 'node:path';
import t, { type Test } from 'tap';
import { signCheckpoint } from '../../../src/audit/audit-checkpoint.js';
import { GENESIS_HASH } from '../../../src/audit/audit-log.js';
import { generateEd25519KeyPair } from '../../../src/crypto/jws.js';
import { makeBatch, batchBytes, BatchSizer, IOT_CORE_MAX_MESSAGE_BYTES, type AuditBatch, type WireRecord } from '../../../src/cloud/audit-batch.js';
import { receiveBatch, type ReceiveOptions } from '../../../src/cloud/receiver/receive-batch.js';
import { SqliteReceiverStore } from '../../../src/cloud/receiver/sqlite-receiver-store.js';
import { filledLog, tempDir, wireRecords } from '../../helpers/audit-forwarding.js';

const THING = 'cell-a-interlock';

async function setup(t: Test, n = 100) {
  const device = await filledLog(t, n);
  const store = new SqliteReceiverStore(join(tempDir(t, 'receiver-'), 'r.db'));
  t.teardown(() => store.close());
  const options: ReceiveOptions = { store, things: { publicKey: (thing) => (thing === THING ? device.publicKey : undefined) } };
  const send = (batch: AuditBatch | string, thing = THING) => receiveBatch(typeof batch === 'string' ? batch : JSON.stringify(batch), thing, options);
  const batch = (from: number, count: number, records?: WireRecord[]) => makeBatch(THING, records ?? wireRecords(device.log, from, count), device.log.latestCheckpoint());
  return { device, store, send, batch };
}

t.test('a batch is stored and answered with the watermark; a resend and an overlap are harmless', async (t) => {
  const { device, store, send, batch } = await setup(t);
  const first = await send(batch(1, 50));
  t.equal(first.stored, 50);
  t.same({ seq: first.ack.seq, hash: first.ack.hash }, { seq: 50, hash: device.log.read(50, 1)[0]?.hash }, 'watermark = seq 50 and its hash');
  t.equal(first.ack.problem, undefined);
  t.equal(first.ack.key, batch(1, 50).key);
  const again = await send(batch(1, 50));
  t.equal(again.stored, 0);
  t.equal(again.duplicates, 50, 'the same records again are duplicates');
  const overlap = await send(batch(30, 51));
  t.equal(overlap.stored, 30, '51..80 new');
  t.equal(overlap.duplicates, 21);
  t.equal(overlap.ack.seq, 80);
  const held = store.records(THING);
  t.equal(held.length, 80);
  t.same(held.map((r) => r.seq), Array.from({ length: 80 }, (_, i) => i + 1), 'gapless, each seq once');
  t.same(held[0]?.prevHash, GENESIS_HASH);
  t.ok(store.latestCheckpoint(THING), 'the checkpoint is kept');
});

t.test('a batch that does not chain onto what is held is refused as a gap and nothing of it is stored', async (t) => {
  const { send, batch, store } = await setup(t);
  await send(batch(1, 20));
  const gap = await send(batch(30, 10));
  t.equal(gap.ack.problem?.code, 'gap');
  t.match(gap.ack.problem?.message, /holds up to 20: send from 21/);
  t.equal(gap.ack.seq, 20, 'the ack still carries the watermark');
  t.equal(store.count(THING), 20);
  const fresh = await send(batch(5, 5), THING);
  t.equal(fresh.ack.seq, 20, 'an old batch does not lower the watermark');
});

t.test('a body that does not hash to its hash is refused', async (t) => {
  const { send, batch, device, store } = await setup(t);
  const records = wireRecords(device.log, 1, 10).map((r) => (r.seq === 4 ? { ...r, body: r.body.replace('cmd-4', 'cmd-X') } : r));
  const result = await send(batch(1, 10, records));
  t.equal(result.ack.problem?.code, 'hash-mismatch');
  t.match(result.ack.problem?.message, /seq 4: sha256 of the body/);
  t.equal(store.count(THING), 0, 'nothing of the batch is stored');
});

t.test('an edited record with a recomputed hash breaks the chain', async (t) => {
  const { send, batch, device } = await setup(t);
  const { createHash } = await import('node:crypto');
  const records = wireRecords(device.log, 1, 10).map((r) => {
    if (r.seq !== 4) return r;
    const body = r.body.replace('cmd-4', 'cmd-X');
    return { ...r, body, hash: createHash('sha256').update(body).digest('hex') };
  });
  const result = await send(batch(1, 10, records));
  t.equal(result.ack.problem?.code, 'broken-chain');
  t.match(result.ack.problem?.message, /seq 5: prevHash .* is not the hash of seq 4/);
});

t.test('a second history for a held seq is a conflict: refused and reported, the held records stay', async (t) => {
  const { send, batch, store } = await setup(t);
  await send(batch(1, 30));
  const before = store.records(THING);
  // Another log of the same thing (same key): the same seqs with other records.
  const impostor = await filledLog(t, 40);
  const other = makeBatch(THING, wireRecords(impostor.log, 1, 40), undefined);
  const result = await send(other);
  t.equal(result.ack.problem?.code, 'conflict');
  t.match(result.ack.problem?.message, /seq 1: held with hash/);
  t.same(store.records(THING), before, 'nothing replaced, nothing added');
  t.equal(result.ack.seq, 30);
});

t.test('checkpoints: a forged one and one whose head is not the record at its size are refused', async (t) => {
  const { send, device, store } = await setup(t);
  const real = device.log.latestCheckpoint();
  if (real === undefined) return t.fail('the log has a checkpoint');
  const records = wireRecords(device.log, 1, 100);
  const forged = signCheckpoint({ seq: real.seq, size: real.size, head: real.head, origin: real.origin, timeMs: real.timeMs }, generateEd25519KeyPair().privateKey);
  const a = await send(makeBatch(THING, records, forged));
  t.equal(a.ack.problem?.code, 'bad-checkpoint');
  t.match(a.ack.problem?.message, /does not verify/);
  const lying = signCheckpoint({ seq: real.seq, size: 50, head: 'a'.repeat(64), origin: real.origin, timeMs: real.timeMs }, device.privateKey);
  const b = await send(makeBatch(THING, records, lying));
  t.equal(b.ack.problem?.code, 'bad-checkpoint');
  t.match(b.ack.problem?.message, /record 50 has hash a{64}, the record is [0-9a-f]{64}/);
  t.equal(store.count(THING), 0);
  const ok = await send(makeBatch(THING, records, real));
  t.equal(ok.ack.problem, undefined);
  t.equal(ok.ack.seq, 100);
});

t.test('malformed, foreign and unknown-thing batches are refused with the reason', async (t) => {
  const { send, batch } = await setup(t);
  t.equal((await send('{')).ack.problem?.code, 'malformed');
  const b = batch(1, 5);
  const wrongKey = await send({ ...b, key: `${THING}:1:5:${'0'.repeat(64)}` });
  t.match(wrongKey.ack.problem?.message, /key: .* does not name these records/);
  const foreign = await send(b, 'other-thing');
  t.equal(foreign.ack.problem?.code, 'malformed');
  t.match(foreign.ack.problem?.message, /names thing cell-a-interlock but arrived on other-thing's topic/);
  const unknown = await send({ ...b, thing: 'stranger', key: b.key.replace(THING, 'stranger') }, 'stranger');
  t.equal(unknown.ack.problem?.code, 'unknown-thing');
  const huge = JSON.stringify({ ...b, pad: 'x'.repeat(IOT_CORE_MAX_MESSAGE_BYTES) });
  t.match((await send(huge)).ack.problem?.message, /over the 131072-byte message limit/);
});

t.test('BatchSizer never undercounts the JSON a batch becomes', async (t) => {
  const { device } = await setup(t, 60);
  const records = wireRecords(device.log, 1, 60);
  const sizer = new BatchSizer(THING, device.log.latestCheckpoint());
  for (const r of records) sizer.add(r);
  const exact = batchBytes(makeBatch(THING, records, device.log.latestCheckpoint()));
  t.ok(sizer.bytes >= exact, `estimate ${sizer.bytes} >= exact ${exact}`);
  t.ok(sizer.bytes - exact < 64, 'and over by less than the key padding');
});
