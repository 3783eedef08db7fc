// The contract every AuditLog implementation must pass (run it from each store's test file).
// It must never depend on one store's internals: only the AuditLog seam is used here.

import type { Test } from 'tap';
import { GENESIS_HASH, type AuditEntry, type AuditLog, type AuditReceipt, type AuditRecord } from '../../src/audit/audit-log.js';
import { reason } from '../../src/core/reasons.js';

export interface AuditLogUnderTest {
  readonly log: AuditLog;
  cleanup(): Promise<void>;
}

/** What the caller recorded: the record minus the fields the log adds. */
function entryOf(record: AuditRecord): AuditEntry {
  const { seq: _seq, prevHash: _prevHash, hash: _hash, ...entry } = record;
  return entry;
}

function plainEntry(i: number): AuditEntry {
  return { kind: 'event', timeMs: 1_000 + i, detail: { i } };
}

function assertChain(t: Test, records: readonly AuditRecord[], firstSeq = 1): void {
  let prevHash = firstSeq === 1 ? GENESIS_HASH : undefined;
  records.forEach((record, index) => {
    t.equal(record.seq, firstSeq + index, `seq ${firstSeq + index} in place`);
    if (prevHash !== undefined) t.equal(record.prevHash, prevHash, `record ${record.seq} chains to its predecessor`);
    prevHash = record.hash;
  });
}

export function runAuditLogContract(t: Test, name: string, factory: () => Promise<AuditLogUnderTest>): void {
  // Each case gets a fresh, empty log and cleans it up however it ends.
  const withLog = (title: string, body: (t: Test, log: AuditLog) => Promise<void>): void => {
    t.test(`${name}: ${title}`, async (t) => {
      const { log, cleanup } = await factory();
      t.teardown(cleanup);
      await body(t, log);
    });
  };

  withLog('a fresh log verifies, with no records and the genesis hash as head', async (t, log) => {
    t.strictSame(log.verify(), { ok: true, records: 0, headHash: GENESIS_HASH });
    t.strictSame(log.read(1, 10), []);
  });

  withLog('seq is gapless from 1 and each receipt chains to the one before', async (t, log) => {
    const receipts: AuditReceipt[] = [];
    for (let i = 0; i < 10; i += 1) receipts.push(await log.record(plainEntry(i)));
    t.strictSame(receipts.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const records = log.read(1, 100);
    t.equal(records.length, 10);
    assertChain(t, records);
    records.forEach((record, index) => {
      t.equal(record.hash, receipts[index]?.hash, `record ${record.seq} hash equals its receipt`);
      t.equal(record.prevHash, index === 0 ? GENESIS_HASH : receipts[index - 1]?.hash);
    });
    t.match(receipts[0]?.hash, /^[0-9a-f]{64}$/, 'hashes are sha256 hex');
    t.strictSame(log.verify(), { ok: true, records: 10, headHash: receipts[9]?.hash });
  });

  withLog('read returns exactly what was recorded', async (t, log) => {
    const decision: AuditEntry = {
      kind: 'decision',
      timeMs: 1_732_000_000_123,
      commandId: 'cmd-7f3a',
      agentId: 'planner-1',
      deviceId: 'arm-1',
      action: 'move_joints',
      commandDigest: 'a'.repeat(64),
      declarationsDigest: 'b'.repeat(64),
      verdict: 'deny',
      reasons: [
        {
          ...reason('BOUNDS_JOINT_POSITION', 'elbow target 2.5 rad exceeds 2.0 rad'),
          ruleId: 'arm-1/joints/elbow/position',
          path: '/params/joints/1',
          limit: 2,
          actual: 2.5000000000000004,
          unit: 'rad',
        },
        reason('POLICY_NO_PERMIT', 'no permit for "planner-1" – ünïcödé ✓'),
      ],
      trace: { session: 's-1', plan: 'c'.repeat(64) },
      detail: { nested: { list: [1, -2.75, 1e-300, 'x', null, true], empty: {} }, big: Number.MAX_SAFE_INTEGER },
    };
    const outcome: AuditEntry = { kind: 'outcome', timeMs: 1_732_000_000_200, parentSeq: 1, detail: { ok: true } };
    const event: AuditEntry = { kind: 'event', timeMs: 0 };
    for (const entry of [decision, outcome, event]) await log.record(entry);

    const records = log.read(1, 10);
    t.strictSame(records.map(entryOf), [decision, outcome, event]);
    // Optional fields that were omitted stay omitted (exactOptionalPropertyTypes: never present as undefined).
    t.notOk('commandId' in (records[2] ?? {}), 'an omitted field is absent, not undefined');
    t.strictSame(log.read(2, 1).map(entryOf), [outcome], 'read honours fromSeq and limit');
    t.strictSame(log.read(4, 10), [], 'reading past the head gives nothing');
    t.strictSame(log.read(1, 0), [], 'limit 0 gives nothing');
  });

  withLog('-0 is stored as 0 (canonical JSON writes -0 as 0), and the record still verifies', async (t, log) => {
    // Documented behaviour, not an accident: JSON has no -0, and canonicalJson writes JSON.stringify(-0) = "0".
    await log.record({
      kind: 'decision',
      timeMs: 5,
      reasons: [{ ...reason('BOUNDS_JOINT_VELOCITY', 'v'), limit: 0, actual: -0 }],
      detail: { z: -0 },
    });
    const [record] = log.read(1, 1);
    t.ok(Object.is(record?.reasons?.[0]?.actual, 0), 'reason number -0 reads back as +0');
    t.ok(Object.is(record?.detail?.['z'], 0), 'detail -0 reads back as +0');
    t.equal(log.verify().ok, true);
  });

  withLog('verify is ok on a filled log and reports the head', async (t, log) => {
    let last = { seq: 0, hash: GENESIS_HASH };
    for (let i = 0; i < 25; i += 1) {
      last = await log.record({ kind: i % 2 === 0 ? 'decision' : 'outcome', timeMs: i, verdict: 'allow' });
    }
    t.strictSame(log.verify(), { ok: true, records: 25, headHash: last.hash });
  });

  withLog('50 concurrent record calls give a gapless chain in call order', async (t, log) => {
    const entries = Array.from({ length: 50 }, (_, i) => plainEntry(i));
    const receipts = await Promise.all(entries.map((entry) => log.record(entry)));
    t.strictSame(receipts.map((r) => r.seq), Array.from({ length: 50 }, (_, i) => i + 1));
    const records = log.read(1, 100);
    assertChain(t, records);
    t.strictSame(records.map(entryOf), entries, 'stored in call order');
    t.strictSame(log.verify(), { ok: true, records: 50, headHash: receipts[49]?.hash });
  });

  withLog('a bad entry among concurrent ones rejects alone; the others stay gapless in call order', async (t, log) => {
    const bad = { kind: 'event', timeMs: 1, detail: { bad: Number.NaN } } as AuditEntry;
    const calls = [plainEntry(0), plainEntry(1), bad, plainEntry(2), plainEntry(3)].map((entry) => log.record(entry));
    const settled = await Promise.allSettled(calls);
    t.strictSame(settled.map((s) => s.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const seqs = settled.map((s) => (s.status === 'fulfilled' ? s.value.seq : null));
    t.strictSame(seqs, [1, 2, null, 3, 4]);
    t.strictSame(log.read(1, 10).map(entryOf), [plainEntry(0), plainEntry(1), plainEntry(2), plainEntry(3)]);
    t.equal(log.verify().ok, true);
  });

  withLog('the entry is stored as it was when record was called, even if the caller changes it later', async (t, log) => {
    const detail: Record<string, unknown> = { speed: 1 };
    const pending = log.record({ kind: 'event', timeMs: 7, detail });
    detail['speed'] = 999;
    await pending;
    t.strictSame(log.read(1, 1)[0]?.detail, { speed: 1 });
  });

  withLog('an entry with a non-finite number rejects and does not consume a seq', async (t, log) => {
    const first = await log.record(plainEntry(0));
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      await t.rejects(log.record({ kind: 'event', timeMs: 1, detail: { nested: [1, { bad }] } }), `${bad} rejects`);
    }
    await t.rejects(
      log.record({ kind: 'decision', timeMs: 1, reasons: [{ ...reason('BOUNDS_JOINT_POSITION', 'x'), actual: Number.NaN }] }),
      'NaN in a reason rejects',
    );
    const second = await log.record(plainEntry(1));
    t.equal(second.seq, 2, 'the failed records took no seq');
    t.equal(log.read(2, 1)[0]?.prevHash, first.hash, 'and left no hole in the chain');
    t.strictSame(log.verify(), { ok: true, records: 2, headHash: second.hash });
  });

  withLog('an invalid kind or time rejects and does not consume a seq', async (t, log) => {
    const bad = [
      { kind: 'decison', timeMs: 1 },
      { kind: 'event', timeMs: -1 },
      { kind: 'event', timeMs: 1.5 },
      { kind: 'event', timeMs: Number.NaN },
      { kind: 'event', timeMs: Number.POSITIVE_INFINITY },
      { kind: 'event' },
    ] as unknown as AuditEntry[];
    for (const entry of bad) await t.rejects(log.record(entry), `rejects ${JSON.stringify(entry)}`);
    t.equal((await log.record(plainEntry(0))).seq, 1);
  });

  withLog('record after close rejects, and close is idempotent', async (t, log) => {
    await log.record(plainEntry(0));
    log.close();
    log.close();
    await t.rejects(log.record(plainEntry(1)), 'record after close rejects');
  });
}
