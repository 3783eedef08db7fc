// The safety memory in the identity store's file, against real SQLite files in a temp folder: latched trips, released
// setpoints and operator modes are read back after a crash (a second open while the first was never closed); a
// corrupt row, a store marked incomplete, a version 1 store and a new store beside an old audit log all fail closed
// (every declared trip latched, reduced mode) and say so naming the file; a file that is not readable refuses to
// start; declarations that changed drop what they no longer name, with a log line. No sockets; time is injected.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { restoreSafetyMemory } from '../../src/app/restore-safety-memory.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { observeDeviceState, recordRelease, type BoundsMemory } from '../../src/bounds/bounds.js';
import { processMemory } from '../../src/bounds/process-unit/process-memory.js';
import { restoreBoundsMemory } from '../../src/bounds/safety-memory.js';
import type { Logger } from '../../src/core/log.js';
import { SqliteIdentityStore } from '../../src/identity/sqlite-identity-store.js';
import { loaded, pump, restState, BAR } from '../bounds/process-unit/fixtures.js';
import { manualClock } from '../helpers/clocks.js';

const dir = mkdtempSync(join(tmpdir(), 'safety-memory-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const declarations = loaded.declarations;
const T0 = 1_700_000_000_000;
const DECLARED_TRIPS = ['high_discharge_pressure', 'low_tank_level'];

let files = 0;
function freshPath(): string {
  files += 1;
  return join(dir, `identity-${files}.db`);
}

function recorder(): { lines: string[]; log: Logger } {
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
    child: () => log,
  };
  return { lines, log };
}

/** Opens the store at `path` and restores the bounds memory from it, as a start does. */
function start(path: string, nowMs = T0): { store: SqliteIdentityStore; bounds: BoundsMemory; lines: string[] } {
  const store = SqliteIdentityStore.open(path, manualClock(nowMs));
  const { lines, log } = recorder();
  const bounds = restoreBoundsMemory(store.safetyMemory, store.safetyMemory.load(), declarations, nowMs, log);
  return { store, bounds, lines };
}

const latchedOf = (bounds: BoundsMemory): Record<string, string> =>
  Object.fromEntries([...processMemory(bounds.device(pump.id)).latched.values()].map((l) => [l.trip, l.source]));

t.test('latched trips, released setpoints and operator modes survive a crash (the store never closed)', async (t) => {
  const path = freshPath();
  const first = start(path);
  observeDeviceState(pump, restState({ measurements: { discharge_pressure: 8.8 * BAR } }), first.bounds, T0 + 10);
  recordRelease(pump, { action: 'set_setpoint', params: { name: 'pump_speed', value: 50, unit: 'rad/s' } }, first.bounds, T0 + 20);
  first.bounds.setOperatorMode('arm-1', 'reduced', T0 + 30);
  // No close: the next open is what a start after kill -9 sees.
  const second = start(path, T0 + 1000);
  t.teardown(() => {
    second.store.close();
    first.store.close();
  });
  const latch = processMemory(second.bounds.device(pump.id)).latched.get('high_discharge_pressure');
  t.match(latch, { source: 'condition', latchedAtMs: T0 + 10, actual: 8.8 * BAR }, 'the latch as it was');
  t.same(processMemory(second.bounds.device(pump.id)).releasedSetpoints.get('pump_speed'), { value: 50, releasedAtMs: T0 + 20 });
  t.equal(second.bounds.modes.operatorMode('arm-1'), 'reduced');
  t.same(second.lines.filter((l) => l.startsWith('ERROR')), [], 'nothing failed closed');
});

t.test('a corrupt device row fails closed: every declared trip of the device latched, the file named', async (t) => {
  const path = freshPath();
  const first = start(path);
  recordRelease(pump, { action: 'set_setpoint', params: { name: 'pump_speed', value: 50, unit: 'rad/s' } }, first.bounds, T0 + 20);
  first.store.close();
  for (const garbage of ['{"latched": [{"trip": "high_discharge_pressure"}], "releasedSetpoints": []}', 'not json', 'null', '{"latched": [], "releasedSetpoints": [{"name": "pump_speed", "value": "fast", "releasedAtMs": 1}]}']) {
    const db = new Database(path);
    db.prepare("UPDATE safety_device_memory SET memory = ? WHERE device = 'pump-1'").run(garbage);
    db.close();
    const next = start(path, T0 + 1000);
    t.same(latchedOf(next.bounds), { high_discharge_pressure: 'memory-lost', low_tank_level: 'memory-lost' }, `${garbage}: every declared trip latched`);
    t.ok(next.lines.some((l) => l.startsWith('ERROR') && l.includes(path) && l.includes('pump-1 is unreadable')), `${garbage}: the error names the file and the device`);
    next.store.close();
    // What is in force was written back: the next start reads the latches as stored, without an error.
    const again = start(path, T0 + 2000);
    t.same(latchedOf(again.bounds), { high_discharge_pressure: 'memory-lost', low_tank_level: 'memory-lost' }, `${garbage}: the latches were written back`);
    t.same(again.lines.filter((l) => l.startsWith('ERROR')), [], `${garbage}: and read back cleanly`);
    again.store.close();
  }
});

t.test('a file that cannot be read refuses to start, naming it', async (t) => {
  const garbage = freshPath();
  writeFileSync(garbage, 'this is not a database\n'.repeat(200));
  t.throws(() => start(garbage), new RegExp(`^identity store ${escapeRegExp(garbage)}: `), 'not a database');
  const tableGone = freshPath();
  start(tableGone).store.close();
  const db = new Database(tableGone);
  db.exec('DROP TABLE safety_device_memory');
  db.close();
  t.throws(() => start(tableGone), new RegExp(`^identity store ${escapeRegExp(tableGone)}: identity store without its tables: safety_device_memory`), 'a table missing');
});

t.test('a write that fails holds in this run and makes the next start fail closed everywhere', async (t) => {
  const path = freshPath();
  const first = start(path);
  // From here SQLite refuses every change to the stored device memory (a real SQLite error inside the real store).
  const side = new Database(path);
  side.exec("CREATE TRIGGER refuse BEFORE UPDATE ON safety_device_memory BEGIN SELECT RAISE(ABORT, 'read-only (test)'); END;");
  observeDeviceState(pump, restState({ measurements: { discharge_pressure: 8.8 * BAR } }), first.bounds, T0 + 10);
  t.same(latchedOf(first.bounds), { high_discharge_pressure: 'condition' }, 'latched in memory although not stored');
  t.ok(first.lines.some((l) => /ERROR .*pump-1.*not stored \(read-only \(test\)\)/.test(l)), 'the failure is logged');
  // While the store refuses writes, a start refuses too: it cannot write back what it restored.
  first.store.close();
  t.throws(() => start(path, T0 + 500), /read-only \(test\)/, 'no start on a store that cannot be written');
  side.exec('DROP TRIGGER refuse');
  side.close();

  const next = start(path, T0 + 1000);
  t.same(latchedOf(next.bounds), { high_discharge_pressure: 'memory-lost', low_tank_level: 'memory-lost' }, 'every declared trip latched');
  for (const device of declarations.devices.keys()) t.equal(next.bounds.modes.operatorMode(device), 'reduced', `${device} reduced until an operator sets auto`);
  t.ok(next.lines.some((l) => l.startsWith('ERROR') && l.includes('may be incomplete') && l.includes('read-only (test)')), 'the start says why');
  // An operator sets auto on one device; the next start keeps the rest as they are, with no new alarm.
  next.bounds.setOperatorMode('conveyor-1', undefined, T0 + 1500);
  next.store.close();
  const third = start(path, T0 + 2000);
  t.teardown(() => third.store.close());
  t.same(third.lines.filter((l) => l.startsWith('ERROR')), [], 'the store is complete again');
  t.equal(third.bounds.modes.operatorMode('conveyor-1'), undefined, 'auto as the operator set it');
  t.equal(third.bounds.modes.operatorMode('arm-1'), 'reduced', 'the others still reduced');
  t.same(latchedOf(third.bounds), { high_discharge_pressure: 'memory-lost', low_tank_level: 'memory-lost' }, 'the trips still latched');
});

t.test('a version 1 store (no safety memory) is upgraded and that start fails closed', async (t) => {
  const path = freshPath();
  const db = new Database(path);
  db.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE replay_jti (agent TEXT NOT NULL, jti TEXT NOT NULL, forget_after_ms REAL NOT NULL, PRIMARY KEY (agent, jti)) STRICT;
    CREATE TABLE replay_seq (agent TEXT NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (agent, device)) STRICT;
    CREATE TABLE demotions (agent TEXT PRIMARY KEY, demoted_to TEXT NOT NULL, reason TEXT NOT NULL, since_ms REAL NOT NULL) STRICT;
  `);
  db.pragma(`application_id = ${0x49444e54}`);
  db.pragma('user_version = 1');
  db.close();
  const upgraded = start(path);
  t.teardown(() => upgraded.store.close());
  t.same(latchedOf(upgraded.bounds), { high_discharge_pressure: 'memory-lost', low_tank_level: 'memory-lost' });
  t.equal(upgraded.bounds.modes.operatorMode('pump-1'), 'reduced');
  t.ok(upgraded.lines.some((l) => l.includes('schema version 1, which kept no safety memory')));
});

t.test('a new identity store beside an audit log of earlier runs fails closed; beside a new one it starts empty', async (t) => {
  for (const earlierRuns of [true, false]) {
    const folder = mkdtempSync(join(dir, 'state-'));
    const audit = openSqliteAuditLog(join(folder, 'audit.db'));
    if (earlierRuns) await audit.record({ kind: 'event', timeMs: T0 - 5000, detail: { event: 'interlock-started' } });
    const identity = SqliteIdentityStore.open(join(folder, 'identity.db'), manualClock(T0));
    const { lines, log } = recorder();
    const bounds = restoreSafetyMemory({ declarations, identity, audit, nowMs: T0, log });
    identity.close();
    audit.close();
    if (earlierRuns) {
      t.same(latchedOf(bounds), { high_discharge_pressure: 'memory-lost', low_tank_level: 'memory-lost' }, 'earlier runs: trips latched');
      t.ok(lines.some((l) => l.startsWith('ERROR') && l.includes('was created at this start, but the audit log already holds 1 records')), 'and it says why');
    } else {
      t.same(latchedOf(bounds), {}, 'first start: nothing latched');
      t.same(lines.filter((l) => !l.startsWith('INFO')), [], 'and nothing to warn about');
    }
  }
});

t.test('memory of what the declarations no longer name is dropped with a log line, the rest kept', async (t) => {
  const path = freshPath();
  const first = start(path);
  const saved = JSON.stringify({
    latched: [
      { trip: 'high_discharge_pressure', source: 'condition', latchedAtMs: T0, actual: 8.8 * BAR },
      { trip: 'renamed_trip', source: 'condition', latchedAtMs: T0 },
      // The device's own trip ids are not declared: kept.
      { trip: 'drive_overcurrent', source: 'device', latchedAtMs: null },
    ],
    releasedSetpoints: [
      { name: 'pump_speed', value: 50, releasedAtMs: T0 },
      { name: 'bypass_valve', value: 0.5, releasedAtMs: T0 },
    ],
  });
  first.store.safetyMemory.saveDevice('pump-1', 'process_unit', saved);
  first.store.safetyMemory.saveDevice('pump-9', 'process_unit', saved);
  first.store.safetyMemory.saveDevice('conveyor-1', 'process_unit', saved);
  first.store.safetyMemory.saveOperatorMode('arm-9', { mode: 'reduced', why: 'an operator set reduced mode', sinceMs: T0 });
  first.store.close();

  const next = start(path, T0 + 1000);
  t.teardown(() => next.store.close());
  const mem = processMemory(next.bounds.device(pump.id));
  t.same([...mem.latched.keys()].sort(), ['drive_overcurrent', 'high_discharge_pressure']);
  t.ok(Number.isNaN(mem.latched.get('drive_overcurrent')?.latchedAtMs), 'a NaN time read back as NaN');
  t.same([...mem.releasedSetpoints.keys()], ['pump_speed']);
  const warned = next.lines.filter((l) => l.startsWith('WARN')).join('\n');
  for (const dropped of ['trip renamed_trip on pump-1', 'setpoint bypass_valve on pump-1', 'pump-9 (a process_unit): no longer declared', 'conveyor-1 (a process_unit): now declared a conveyor', 'reduced mode of arm-9']) {
    t.match(warned, dropped, `dropped: ${dropped}`);
  }
  t.same(next.lines.filter((l) => l.startsWith('ERROR')), [], 'no error: a change of declarations is not a fault');
  const db = new Database(path, { readonly: true });
  t.teardown(() => db.close());
  t.same((db.prepare('SELECT device FROM safety_device_memory ORDER BY device').all() as { device: string }[]).map((r) => r.device), ['pump-1'], 'the dropped rows are gone');
  t.same(db.prepare('SELECT device FROM safety_operator_modes').all(), []);
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
