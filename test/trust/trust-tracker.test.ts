// The trust tracker: the declared number of denials within the declared window demotes an agent, no fewer and
// not when spread wider; reduced and quarantine give different standings; an operator's restore clears the
// standing and the count; a store that fails never frees a demoted agent (fail closed). Pure where only the
// counting matters (no store, or a fake that records the calls); the real SQLite identity store wherever the store
// itself is the point: across a restart, and failing for real (closed) for the fail-closed cases.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { TrustPolicy } from '../../src/core/declarations.js';
import { SqliteIdentityStore } from '../../src/identity/sqlite-identity-store.js';
import { TrustTracker, type Demotion, type DemotionStore } from '../../src/trust/trust-tracker.js';

const T0 = 1_700_000_000_000;
const QUARANTINE_5_IN_60S: TrustPolicy = { denials: 5, windowMs: 60_000, demoteTo: 'quarantine' };
const REDUCE_3_IN_10S: TrustPolicy = { denials: 3, windowMs: 10_000, demoteTo: 'reduced' };

/** A demotion store in memory that records every call (for which calls the tracker makes, not for failures). */
class FakeStore implements DemotionStore {
  readonly saved: Demotion[] = [];
  readonly removed: string[] = [];
  readonly rows = new Map<string, Demotion>();
  demotions(): readonly Demotion[] {
    return [...this.rows.values()];
  }
  saveDemotion(demotion: Demotion): void {
    this.saved.push(demotion);
    this.rows.set(demotion.agentId, demotion);
  }
  removeDemotion(agentId: string): void {
    this.removed.push(agentId);
    this.rows.delete(agentId);
  }
}

const clock = { nowMs: () => T0 };

/** A fresh identity store file in a temp folder, removed after the test; `open()` opens it (again). */
function storeFile(t: Test): { open(): SqliteIdentityStore } {
  const dir = mkdtempSync(join(tmpdir(), 'trust-tracker-'));
  const path = join(dir, 'identity.db');
  const opened: SqliteIdentityStore[] = [];
  t.teardown(() => {
    for (const store of opened) store.close(); // idempotent: most are closed already
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    open() {
      const store = SqliteIdentityStore.open(path, clock);
      opened.push(store);
      return store;
    },
  };
}

/** better-sqlite3's error for a statement on a closed database: the store's real failure. */
const CLOSED = /database connection is not open/;

/** Records denials at the given times; returns the index of the denial that demoted, or -1. */
function denialsAt(tracker: TrustTracker, agentId: string, times: readonly number[]): number {
  let demotedAt = -1;
  times.forEach((time, index) => {
    if (tracker.recordDenial(agentId, time) !== undefined && demotedAt < 0) demotedAt = index;
  });
  return demotedAt;
}

t.test('denials within the window demote at exactly the declared count', async (t) => {
  const cases: { name: string; policy: TrustPolicy; times: number[]; demotedAt: number }[] = [
    // 5 in 60 s: the fifth demotes, one second apart.
    { name: '5 denials, 1 s apart: the fifth demotes', policy: QUARANTINE_5_IN_60S, times: [0, 1, 2, 3, 4].map((s) => T0 + s * 1000), demotedAt: 4 },
    // count - 1 does not.
    { name: '4 denials (count - 1): no demotion', policy: QUARANTINE_5_IN_60S, times: [0, 1, 2, 3].map((s) => T0 + s * 1000), demotedAt: -1 },
    // All at the same instant still counts each.
    { name: '5 denials in the same millisecond', policy: QUARANTINE_5_IN_60S, times: [T0, T0, T0, T0, T0], demotedAt: 4 },
    // The first and the fifth 59.999 s apart: still one window.
    { name: 'first and last 59 999 ms apart: demotes', policy: QUARANTINE_5_IN_60S, times: [T0, T0 + 10, T0 + 20, T0 + 30, T0 + 59_999], demotedAt: 4 },
    // The window is a half-open interval: a denial exactly windowMs ago has left it.
    { name: 'first and last exactly 60 000 ms apart: no demotion', policy: QUARANTINE_5_IN_60S, times: [T0, T0 + 10, T0 + 20, T0 + 30, T0 + 60_000], demotedAt: -1 },
    // A count of 1 demotes on the first denial.
    { name: 'declared count 1: the first denial demotes', policy: { denials: 1, windowMs: 1000, demoteTo: 'quarantine' }, times: [T0], demotedAt: 0 },
  ];
  for (const c of cases) {
    const tracker = new TrustTracker(c.policy);
    t.equal(denialsAt(tracker, 'planner-1', c.times), c.demotedAt, `${c.name}: demoted at denial index`);
    t.equal(tracker.demotion('planner-1') !== undefined, c.demotedAt >= 0, `${c.name}: standing`);
  }
});

t.test('denials spread wider than the window do not demote', async (t) => {
  const tracker = new TrustTracker(QUARANTINE_5_IN_60S);
  // One denial every 15 s for ten minutes: at most 4 fall in any 60 s window.
  const times = Array.from({ length: 40 }, (_, i) => T0 + i * 15_000);
  t.equal(denialsAt(tracker, 'planner-1', times), -1);
  t.same(tracker.standing('planner-1'), {});
  // Then a burst: one more denial 1 ms after the last makes 5 within 60 s (the last four plus this one).
  t.ok(tracker.recordDenial('planner-1', T0 + 39 * 15_000 + 1), 'a fifth within the window demotes');
});

t.test('denials are counted per agent', async (t) => {
  const tracker = new TrustTracker(QUARANTINE_5_IN_60S);
  for (let i = 0; i < 4; i += 1) {
    tracker.recordDenial('planner-1', T0 + i);
    tracker.recordDenial('trainee-1', T0 + i);
  }
  t.same(tracker.all(), [], 'four each: nobody demoted');
  t.ok(tracker.recordDenial('trainee-1', T0 + 10), 'the fifth of trainee-1 demotes trainee-1');
  t.same(tracker.standing('planner-1'), {}, 'planner-1 keeps its standing');
});

t.test('demoteTo reduced and quarantine set different standing fields', async (t) => {
  const cases: { name: string; policy: TrustPolicy; field: 'reduced' | 'quarantined'; other: 'reduced' | 'quarantined' }[] = [
    { name: 'quarantine', policy: { ...QUARANTINE_5_IN_60S, denials: 2 }, field: 'quarantined', other: 'reduced' },
    { name: 'reduced', policy: { ...REDUCE_3_IN_10S, denials: 2 }, field: 'reduced', other: 'quarantined' },
  ];
  for (const c of cases) {
    const tracker = new TrustTracker(c.policy);
    tracker.recordDenial('planner-1', T0);
    const demotion = tracker.recordDenial('planner-1', T0 + 500);
    t.same(demotion, { agentId: 'planner-1', demotedTo: c.policy.demoteTo, reason: `2 denied commands within ${c.policy.windowMs} ms`, sinceMs: T0 + 500 }, `${c.name}: the demotion`);
    const standing = tracker.standing('planner-1');
    t.match(standing[c.field], /2 denied commands/, `${c.name}: ${c.field} says why`);
    t.match(standing[c.field], new RegExp(new Date(T0 + 500).toISOString()), `${c.name}: and since when`);
    t.equal(standing[c.other], undefined, `${c.name}: ${c.other} not set`);
  }
});

t.test('a reduced agent that keeps being denied is not demoted again; an operator can still quarantine it', async (t) => {
  const tracker = new TrustTracker(REDUCE_3_IN_10S);
  denialsAt(tracker, 'planner-1', [T0, T0 + 1, T0 + 2]);
  t.equal(tracker.demotion('planner-1')?.demotedTo, 'reduced');
  t.equal(denialsAt(tracker, 'planner-1', [T0 + 3, T0 + 4, T0 + 5, T0 + 6]), -1, 'no further automatic demotion');
  tracker.demote('planner-1', 'quarantine', 'quarantined by operator shift-lead: incident 42', T0 + 7);
  t.match(tracker.standing('planner-1').quarantined, /incident 42/);
  t.equal(tracker.standing('planner-1').reduced, undefined, 'quarantine replaces reduced');
});

t.test('restore clears the standing and restarts the count', async (t) => {
  const store = new FakeStore();
  const tracker = new TrustTracker(QUARANTINE_5_IN_60S, store);
  denialsAt(tracker, 'planner-1', [0, 1, 2, 3, 4].map((i) => T0 + i));
  t.ok(tracker.standing('planner-1').quarantined);
  const previous = tracker.restore('planner-1');
  t.equal(previous?.demotedTo, 'quarantine', 'restore returns what was lifted');
  t.same(tracker.standing('planner-1'), {});
  t.same(store.removed, ['planner-1'], 'the store was told');
  // Four more denials right after the restore do not demote: the old ones no longer count.
  t.equal(denialsAt(tracker, 'planner-1', [5, 6, 7, 8].map((i) => T0 + i)), -1, 'four after restore: no demotion');
  t.ok(tracker.recordDenial('planner-1', T0 + 9), 'the fifth after restore demotes');
  t.equal(tracker.restore('trainee-1'), undefined, 'restoring an agent that is not demoted returns nothing');
  t.same(store.removed, ['planner-1'], 'and does not touch the store');
});

t.test('a store that fails to save (SQLite, closed) still leaves the agent demoted in memory, and the error reaches the caller', async (t) => {
  const file = storeFile(t);
  const store = file.open();
  const tracker = new TrustTracker(QUARANTINE_5_IN_60S, store);
  denialsAt(tracker, 'planner-1', [0, 1, 2, 3].map((i) => T0 + i));
  store.close(); // every write throws from here on
  t.throws(() => tracker.recordDenial('planner-1', T0 + 4), CLOSED, 'the fifth denial reports the store error');
  t.ok(tracker.standing('planner-1').quarantined, 'quarantined in this run all the same');
  t.throws(() => tracker.demote('trainee-1', 'quarantine', 'by operator', T0 + 5), CLOSED, 'an operator quarantine reports it too');
  t.ok(tracker.standing('trainee-1').quarantined, 'and holds in memory');
  // The failure was real: nothing reached the file (which is why the error must reach the caller, to be reported).
  t.same(new TrustTracker(QUARANTINE_5_IN_60S, file.open()).all(), [], 'no demotion on disk');
});

t.test('a store that fails to remove (SQLite, closed) keeps the agent demoted (fail closed)', async (t) => {
  const file = storeFile(t);
  const earlier = file.open();
  const demotion = new TrustTracker(QUARANTINE_5_IN_60S, earlier).demote('planner-1', 'quarantine', 'earlier run', T0);
  earlier.close();
  const store = file.open();
  const tracker = new TrustTracker(QUARANTINE_5_IN_60S, store);
  t.same(tracker.demotion('planner-1'), demotion, 'demotion loaded from the store at construction');
  store.close();
  t.throws(() => tracker.restore('planner-1'), CLOSED, 'the restore reports the store error');
  t.same(tracker.demotion('planner-1'), demotion, 'still demoted');
  t.ok(tracker.standing('planner-1').quarantined);
  t.same(new TrustTracker(QUARANTINE_5_IN_60S, file.open()).all(), [demotion], 'and still demoted on disk');
});

t.test('demotions survive a restart through the SQLite identity store', async (t) => {
  const file = storeFile(t);
  const firstStore = file.open();
  const first = new TrustTracker(QUARANTINE_5_IN_60S, firstStore);
  denialsAt(first, 'planner-1', [0, 1, 2, 3, 4].map((i) => T0 + i));
  first.demote('trainee-1', 'reduced', 'by operator shift-lead', T0 + 10);
  firstStore.close();

  const secondStore = file.open();
  const second = new TrustTracker(QUARANTINE_5_IN_60S, secondStore);
  t.ok(second.standing('planner-1').quarantined, 'a quarantined agent is not freed by restarting');
  t.ok(second.standing('trainee-1').reduced, 'a reduced one stays reduced');
  second.restore('planner-1');
  secondStore.close();

  const third = new TrustTracker(QUARANTINE_5_IN_60S, file.open());
  t.same(third.standing('planner-1'), {}, 'the restore persisted');
  t.same(third.all().map((d) => d.agentId), ['trainee-1']);
});
