// The identity store against real SQLite files in a temp folder: replay memory (jti and seq) and demotions survive
// a clean restart, expired jtis are forgotten but seqs never are, an unclean stop starts a new epoch, and a file
// that is not an identity store is refused with its path. Time is an injected clock; nothing sleeps.

import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { manualClock } from '../helpers/clocks.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { SqliteIdentityStore, type StoredDemotion } from '../../src/identity/sqlite-identity-store.js';

const dir = mkdtempSync(join(tmpdir(), 'identity-store-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function freshPath(): string {
  fileCount += 1;
  return join(dir, `identity-${fileCount}.db`);
}

const T0 = 1_700_000_000_000;

t.test('a jti seen before a clean close is still replayed after reopening', async (t) => {
  const path = freshPath();
  const clock = manualClock(T0);
  const first = SqliteIdentityStore.open(path, clock);
  t.equal(first.check('planner-1', 'arm-1', 'jti-00000001', 10), 'fresh', 'unknown before it is accepted');
  first.accept('planner-1', 'arm-1', 'jti-00000001', 10, T0 + 60_000);
  t.equal(first.check('planner-1', 'arm-1', 'jti-00000001', 11), 'replayed', 'replayed in the same run');
  first.close();

  clock.set(T0 + 1000);
  const second = SqliteIdentityStore.open(path, clock);
  t.teardown(() => second.close());
  // A higher seq does not make an old jti new: the jti alone proves the replay.
  t.equal(second.check('planner-1', 'arm-1', 'jti-00000001', 11), 'replayed', 'replayed after reopen');
  // The jti is scoped to the agent: another agent choosing the same id is not a replay.
  t.equal(second.check('trainee-1', 'arm-1', 'jti-00000001', 1), 'fresh', 'same jti from another agent');
  // ... but one agent cannot reuse it on another device.
  t.equal(second.check('planner-1', 'conveyor-1', 'jti-00000001', 1), 'replayed', 'same agent, other device');
  t.equal(second.rememberedJtis(), 1);
});

t.test('the last seq per agent and device survives reopening and refuses equal and lower', async (t) => {
  const path = freshPath();
  const clock = manualClock(T0);
  const first = SqliteIdentityStore.open(path, clock);
  first.accept('planner-1', 'arm-1', 'jti-arm-0001', 100, T0 + 5000);
  first.accept('planner-1', 'conveyor-1', 'jti-conv-0001', 7, T0 + 5000);
  // A lower seq accepted later (never happens through check, but accept must not lower the watermark).
  first.accept('planner-1', 'arm-1', 'jti-arm-0002', 50, T0 + 5000);
  t.equal(first.lastSeq('planner-1', 'arm-1'), 100, 'accept never lowers the seq');
  first.close();

  const second = SqliteIdentityStore.open(path, clock);
  t.teardown(() => second.close());
  t.equal(second.lastSeq('planner-1', 'arm-1'), 100);
  t.equal(second.lastSeq('planner-1', 'conveyor-1'), 7);
  t.equal(second.lastSeq('trainee-1', 'arm-1'), undefined, 'nothing for an agent never seen');
  const cases: { name: string; agent: string; device: string; seq: number; verdict: string }[] = [
    { name: 'equal seq is a rollback', agent: 'planner-1', device: 'arm-1', seq: 100, verdict: 'seq-not-increasing' },
    { name: 'lower seq is a rollback', agent: 'planner-1', device: 'arm-1', seq: 99, verdict: 'seq-not-increasing' },
    { name: 'seq 1 after 100 is a rollback', agent: 'planner-1', device: 'arm-1', seq: 1, verdict: 'seq-not-increasing' },
    { name: 'one more is fresh', agent: 'planner-1', device: 'arm-1', seq: 101, verdict: 'fresh' },
    { name: 'seq is per device: 8 on the conveyor is fresh', agent: 'planner-1', device: 'conveyor-1', seq: 8, verdict: 'fresh' },
    { name: 'seq is per device: 7 on the conveyor is a rollback', agent: 'planner-1', device: 'conveyor-1', seq: 7, verdict: 'seq-not-increasing' },
    { name: 'seq is per agent: another agent starts anywhere', agent: 'trainee-1', device: 'arm-1', seq: 1, verdict: 'fresh' },
  ];
  for (const c of cases) t.equal(second.check(c.agent, c.device, `new-jti-${c.seq}-${c.device}`, c.seq), c.verdict, c.name);
});

t.test('jtis are forgotten after their forget time; seqs are not', async (t) => {
  const path = freshPath();
  const clock = manualClock(T0);
  const store = SqliteIdentityStore.open(path, clock);
  store.accept('planner-1', 'arm-1', 'short-lived-1', 1, T0 + 5000);
  store.accept('planner-1', 'arm-1', 'long-lived-01', 2, T0 + 60_000);
  t.equal(store.rememberedJtis(), 2);

  clock.set(T0 + 5000);
  // At exactly its forget time the jti is still remembered (forgotten only after it).
  t.equal(store.check('planner-1', 'arm-1', 'short-lived-1', 3), 'replayed', 'remembered at its forget time');
  t.equal(store.rememberedJtis(), 2);

  clock.set(T0 + 6001);
  t.equal(store.check('planner-1', 'arm-1', 'short-lived-1', 3), 'fresh', 'forgotten after its forget time (with a new seq)');
  t.equal(store.rememberedJtis(), 1, 'the expired row is deleted, the live one kept');
  t.equal(store.check('planner-1', 'arm-1', 'long-lived-01', 3), 'replayed', 'a jti still within its time stays');
  // The seq of the forgotten command still guards against rollback: re-sending it with its old seq fails.
  t.equal(store.check('planner-1', 'arm-1', 'short-lived-1', 2), 'seq-not-increasing', 'the seq watermark is not pruned');
  t.equal(store.lastSeq('planner-1', 'arm-1'), 2);

  // Pruning runs at most once a second: a jti that expired since the last prune is kept until the next one.
  store.accept('planner-1', 'arm-1', 'already-gone1', 3, T0 + 6001);
  clock.set(T0 + 6500);
  t.equal(store.check('planner-1', 'arm-1', 'already-gone1', 4), 'replayed', 'within a second of the last prune: not yet pruned');
  clock.set(T0 + 7001);
  t.equal(store.check('planner-1', 'arm-1', 'already-gone1', 4), 'fresh', 'a second later it is pruned');
  store.close();

  const reopened = SqliteIdentityStore.open(path, clock);
  t.teardown(() => reopened.close());
  t.equal(reopened.rememberedJtis(), 1, 'the pruning was persisted');
  t.equal(reopened.lastSeq('planner-1', 'arm-1'), 3, 'the seq watermark was persisted');
});

t.test('the run marker: a clean close keeps the epoch, an unclean stop starts a new one', async (t) => {
  t.test('a new store starts a new epoch at now', async (t) => {
    const store = SqliteIdentityStore.open(freshPath(), manualClock(T0));
    t.teardown(() => store.close());
    t.equal(store.startedAfterUncleanStop, true, 'nothing proves the memory is complete');
    t.equal(store.epochMs, T0);
  });

  t.test('after a clean close the next open keeps the old epoch', async (t) => {
    const path = freshPath();
    const clock = manualClock(T0);
    SqliteIdentityStore.open(path, clock).close();
    clock.set(T0 + 3_600_000);
    const second = SqliteIdentityStore.open(path, clock);
    t.equal(second.startedAfterUncleanStop, false);
    t.equal(second.epochMs, T0, 'the epoch of the first run');
    second.close();
    clock.set(T0 + 7_200_000);
    const third = SqliteIdentityStore.open(path, clock);
    t.teardown(() => third.close());
    t.equal(third.epochMs, T0, 'still the first epoch after two clean restarts');
  });

  t.test('opening a second instance while the first was never closed is an unclean stop', async (t) => {
    const path = freshPath();
    const clock = manualClock(T0);
    const crashed = SqliteIdentityStore.open(path, clock);
    crashed.accept('planner-1', 'arm-1', 'before-crash1', 5, T0 + 60_000);
    // What the interlock does before it releases anything on the strength of an accepted command.
    crashed.persist();
    crashed.accept('planner-1', 'arm-1', 'unwritten-at-crash', 6, T0 + 60_000);
    t.equal(crashed.lastSeq('planner-1', 'arm-1'), 6, 'an accepted command is remembered at once, before it is written');
    clock.set(T0 + 10_000);
    const next = SqliteIdentityStore.open(path, clock);
    t.teardown(() => {
      next.close();
      crashed.close();
    });
    t.equal(next.startedAfterUncleanStop, true);
    t.equal(next.epochMs, T0 + 10_000, 'the new epoch is the new now');
    // A process crash loses nothing that was committed.
    t.equal(next.check('planner-1', 'arm-1', 'before-crash1', 6), 'replayed', 'committed jtis survive the crash');
    t.equal(next.lastSeq('planner-1', 'arm-1'), 5, 'the one accepted but not yet written is lost with the crash (nothing was released on it; the new epoch refuses it)');
  });

  t.test('accepted commands are written together on the next turn of the event loop, without a persist call', async (t) => {
    const path = freshPath();
    const clock = manualClock(T0);
    const store = SqliteIdentityStore.open(path, clock);
    t.teardown(() => store.close());
    for (let i = 0; i < 20; i++) store.accept('planner-1', 'arm-1', `batched-jti-${i}`, 10 + i, T0 + 60_000);
    const reader = new Database(path, { readonly: true });
    t.teardown(() => reader.close());
    const count = (): number => (reader.prepare('SELECT count(*) AS n FROM replay_jti').get() as { n: number }).n;
    t.equal(count(), 0, 'not written yet, in this turn');
    await new Promise<void>((resolve) => setImmediate(resolve));
    t.equal(count(), 20, 'all twenty written by the next turn');
    t.equal((reader.prepare('SELECT seq FROM replay_seq WHERE agent = ? AND device = ?').get('planner-1', 'arm-1') as { seq: number }).seq, 29, 'with the highest seq');
  });

  t.test('files copied while the store was open (a snapshot of a running system) open as an unclean stop', async (t) => {
    const path = freshPath();
    const clock = manualClock(T0);
    const running = SqliteIdentityStore.open(path, clock);
    t.teardown(() => running.close());
    running.accept('planner-1', 'arm-1', 'in-the-wal-01', 9, T0 + 60_000);
    running.persist();
    const copy = freshPath();
    for (const suffix of ['', '-wal']) if (existsSync(`${path}${suffix}`)) copyFileSync(`${path}${suffix}`, `${copy}${suffix}`);
    clock.set(T0 + 20_000);
    const restored = SqliteIdentityStore.open(copy, clock);
    t.teardown(() => restored.close());
    t.equal(restored.startedAfterUncleanStop, true);
    t.equal(restored.epochMs, T0 + 20_000);
    t.equal(restored.check('planner-1', 'arm-1', 'in-the-wal-01', 10), 'replayed', 'the copy holds what was committed');
  });

  t.test('after an unclean stop and then a clean close, the new epoch is kept', async (t) => {
    const path = freshPath();
    const clock = manualClock(T0);
    const crashed = SqliteIdentityStore.open(path, clock);
    clock.set(T0 + 5000);
    const recovered = SqliteIdentityStore.open(path, clock);
    recovered.close();
    crashed.close();
    clock.set(T0 + 9000);
    const later = SqliteIdentityStore.open(path, clock);
    t.teardown(() => later.close());
    t.equal(later.startedAfterUncleanStop, false);
    t.equal(later.epochMs, T0 + 5000, 'the epoch the recovery started, not the first one and not now');
  });

  t.test('a clock that gives no time refuses to start an epoch', async (t) => {
    const path = freshPath();
    t.throws(() => SqliteIdentityStore.open(path, { nowMs: () => NaN }), new RegExp(`identity store ${escapeRegExp(path)}: .*NaN`));
  });
});

t.test('demotions are saved, read back after reopening, replaced and removed', async (t) => {
  const path = freshPath();
  const clock = manualClock(T0);
  const first = SqliteIdentityStore.open(path, clock);
  t.same(first.demotions(), [], 'none in a new store');
  const quarantine: StoredDemotion = { agentId: 'trainee-1', demotedTo: 'quarantine', reason: '5 denied commands within 60000 ms', sinceMs: T0 };
  const reduced: StoredDemotion = { agentId: 'planner-1', demotedTo: 'reduced', reason: 'by operator shift-lead', sinceMs: T0 + 1 };
  first.saveDemotion(quarantine);
  first.saveDemotion(reduced);
  first.close();

  const second = SqliteIdentityStore.open(path, clock);
  t.same(second.demotions(), [reduced, quarantine], 'both read back, ordered by agent');
  // Saving again for the same agent replaces its demotion (one standing per agent).
  const stricter: StoredDemotion = { agentId: 'planner-1', demotedTo: 'quarantine', reason: 'incident 42', sinceMs: T0 + 2 };
  second.saveDemotion(stricter);
  second.removeDemotion('trainee-1');
  second.removeDemotion('never-demoted');
  second.close();

  const third = SqliteIdentityStore.open(path, clock);
  t.teardown(() => third.close());
  t.same(third.demotions(), [stricter], 'the replacement persisted, the removed one is gone');
  t.throws(
    () => third.saveDemotion({ agentId: 'x', demotedTo: 'banished', reason: 'r', sinceMs: T0 } as unknown as StoredDemotion),
    /CHECK constraint/,
    'a standing other than reduced or quarantine is refused by the table',
  );
  t.same(third.demotions(), [stricter], 'and nothing was written');
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

t.test('a file that is not an identity store is refused with its path', async (t) => {
  const cases: { name: string; make: (path: string) => void; message: RegExp }[] = [
    // Not SQLite at all.
    { name: 'text, not a database', make: (path) => writeFileSync(path, 'this is not a database\n'.repeat(200)), message: /not a database/ },
    // A real identity store whose page bytes were damaged after a clean close.
    {
      name: 'an identity store whose pages were overwritten',
      make: (path) => {
        const store = SqliteIdentityStore.open(path, manualClock(T0));
        for (let i = 0; i < 200; i += 1) store.accept('planner-1', 'arm-1', `jti-${String(i).padStart(6, '0')}`, i + 1, T0 + 60_000);
        store.close();
        const checkpoint = new Database(path);
        checkpoint.pragma('wal_checkpoint(TRUNCATE)');
        checkpoint.close();
        const bytes = readFileSync(path);
        // Everything after the 100-byte file header is overwritten: the schema and every table are garbage.
        bytes.fill(0x5a, 100);
        writeFileSync(path, bytes);
      },
      message: /integrity check failed|malformed|not a database/,
    },
    // A SQLite database of a later (or another) schema version.
    {
      name: 'a database of schema version 7',
      make: (path) => {
        const db = new Database(path);
        db.pragma('user_version = 7');
        db.close();
      },
      message: /not an identity store/,
    },
    // A database whose meta table has another shape.
    {
      name: 'a foreign database with a meta table of other columns',
      make: (path) => {
        const db = new Database(path);
        db.exec('CREATE TABLE meta (k TEXT, v TEXT)');
        db.close();
      },
      message: /not an identity store/,
    },
  ];
  for (const c of cases) {
    const path = freshPath();
    c.make(path);
    t.throws(() => SqliteIdentityStore.open(path, manualClock(T0)), new RegExp(`^identity store ${escapeRegExp(path)}: `), `${c.name}: names the path`);
    t.throws(() => SqliteIdentityStore.open(path, manualClock(T0)), c.message, `${c.name}: says why`);
  }
});

// Regression (found by this suite, fixed): an identity store must refuse a foreign SQLite file rather than add its
// tables to it, so another application's database, or the audit log (also user_version 1), is silently taken as
// the identity store. The audit log refuses such files (ensureSchema); the identity store should too.
t.test('a foreign SQLite database (the audit log, another application\'s file) is refused, not taken over', async (t) => {
  const cases: { name: string; make: (path: string) => void }[] = [
    // The audit log has user_version 1 like the identity store, and its own records table.
    { name: 'the audit log', make: (path) => openSqliteAuditLog(path).close() },
    // Version 0 with tables: some other application's database.
    {
      name: 'another application\'s database (user_version 0, its own tables)',
      make: (path) => {
        const db = new Database(path);
        db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)');
        db.close();
      },
    },
  ];
  for (const c of cases) {
    const path = freshPath();
    c.make(path);
    t.throws(() => SqliteIdentityStore.open(path, manualClock(T0)).close(), new RegExp(`^identity store ${escapeRegExp(path)}: `), `${c.name}: refused, naming the path`);
    const db = new Database(path, { readonly: true });
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    db.close();
    t.notOk(tables.includes('replay_jti'), `${c.name}: no identity table was added to it`);
  }
});
