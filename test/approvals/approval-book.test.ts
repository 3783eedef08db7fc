// The approval book: the pending cap per agent and device, approval ids unique even when command digests share a
// prefix, expiry that voids everything on a broken clock, and the 10-minute per-operator request count (the alarm
// flood metric). Pure; agents and devices are the demo cell's own declarations.

import t from 'tap';
import { ApprovalBook, FLOOD_WINDOW_MS, viewOf, type PendingApproval } from '../../src/approvals/approval-book.js';
import type { VerifiedCommand } from '../../src/core/command.js';
import type { ApprovalSettings, DeviceState } from '../../src/core/declarations.js';
import { makeTestCell } from '../helpers/test-cell.js';

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const { declarations } = cell.load();

const T0 = 1_700_000_000_000;
const SETTINGS: ApprovalSettings = { pendingTtlMs: 120_000, maxAnswerTtlMs: 60_000, maxPendingPerAgentDevice: 2, drift: new Map() };

let commandCount = 0;
function command(agentId: string, deviceId: string): VerifiedCommand {
  const agent = declarations.agents.get(agentId);
  const device = declarations.devices.get(deviceId);
  if (agent === undefined || device === undefined) throw new Error(`fixture: no ${agentId} or ${deviceId}`);
  commandCount += 1;
  return {
    commandId: `cmd-${String(commandCount).padStart(8, '0')}`,
    kid: `${agentId}-k1`,
    seq: commandCount,
    agent,
    device,
    action: 'set_speed',
    params: { speedMPerS: 0.1 },
    safeState: false,
    issuedAtMs: T0,
    expiresAtMs: T0 + 2000,
  };
}

/** A digest of 64 hex digits: `prefix` then `fill` repeated. */
function digest(prefix: string, fill: string): string {
  return (prefix + fill.repeat(64)).slice(0, 64);
}

function hold(book: ApprovalBook, agentId: string, deviceId: string, options: { digest?: string; heldAtMs?: number; operators?: string[]; snapshot?: DeviceState } = {}): PendingApproval {
  const cmd = command(agentId, deviceId);
  return book.add(
    {
      command: cmd,
      commandDigest: options.digest ?? digest(cmd.commandId.replace(/\D/g, ''), 'e'),
      reasons: [],
      snapshot: options.snapshot,
      heldAtMs: options.heldAtMs ?? T0,
      auditSeq: null,
    },
    options.operators ?? ['shift-lead'],
  );
}

t.test('the pending cap is per agent and device', async (t) => {
  const book = new ApprovalBook(SETTINGS);
  t.ok(book.hasRoom('trainee-1', 'conveyor-1'), 'room when empty');
  const first = hold(book, 'trainee-1', 'conveyor-1');
  t.ok(book.hasRoom('trainee-1', 'conveyor-1'), 'room for a second (cap 2)');
  hold(book, 'trainee-1', 'conveyor-1');
  t.equal(book.pendingFor('trainee-1', 'conveyor-1'), 2);
  t.notOk(book.hasRoom('trainee-1', 'conveyor-1'), 'no room for a third on the same device');
  // Other devices of the same agent and other agents on the same device have their own count.
  t.ok(book.hasRoom('trainee-1', 'arm-1'), 'same agent, another device: room');
  t.ok(book.hasRoom('planner-1', 'conveyor-1'), 'another agent, same device: room');
  hold(book, 'planner-1', 'conveyor-1');
  t.equal(book.pendingFor('trainee-1', 'conveyor-1'), 2, 'another agent\'s hold does not count against trainee-1');
  // Answering one frees its place.
  book.take(first.id);
  t.ok(book.hasRoom('trainee-1', 'conveyor-1'), 'room again after one was taken');
  // A cap of 1 allows exactly one.
  const single = new ApprovalBook({ ...SETTINGS, maxPendingPerAgentDevice: 1 });
  hold(single, 'trainee-1', 'conveyor-1');
  t.notOk(single.hasRoom('trainee-1', 'conveyor-1'), 'cap 1: one pending fills it');
});

t.test('approval ids are unique even when digests share a prefix', async (t) => {
  const book = new ApprovalBook({ ...SETTINGS, maxPendingPerAgentDevice: 10 });
  const shared16 = 'a'.repeat(16);
  const cases: { name: string; digest: string; idLength: number }[] = [
    { name: 'first: the 16-digit prefix', digest: digest(shared16, 'b'), idLength: 16 },
    // Same first 16 digits: the id grows by 8 until it is unique.
    { name: 'same 16-digit prefix', digest: digest(shared16, 'c'), idLength: 24 },
    // Same first 24 digits as the second: 32.
    { name: 'same 24-digit prefix as the second', digest: digest(`${shared16}cccccccc`, 'd'), idLength: 32 },
    // The same digest as the first (a command held twice): still a distinct id.
    { name: 'the very same digest as the first', digest: digest(shared16, 'b'), idLength: 24 },
  ];
  const ids: string[] = [];
  for (const c of cases) {
    const pending = hold(book, 'trainee-1', 'conveyor-1', { digest: c.digest });
    t.equal(pending.id.length, c.idLength, `${c.name}: id length`);
    t.ok(c.digest.startsWith(pending.id), `${c.name}: the id is a prefix of its digest`);
    t.equal(book.get(pending.id), pending, `${c.name}: found by its id`);
    ids.push(pending.id);
  }
  t.equal(new Set(ids).size, ids.length, 'all ids distinct');
  t.equal(book.list().length, cases.length, 'none replaced another');
});

t.test('expiry: at the declared pending time, and everything on a clock that is not a number', async (t) => {
  const book = new ApprovalBook(SETTINGS);
  const early = hold(book, 'trainee-1', 'conveyor-1', { heldAtMs: T0 });
  const late = hold(book, 'trainee-1', 'arm-1', { heldAtMs: T0 + 1000 });
  t.equal(early.expiresAtMs, T0 + 120_000, 'held time + pendingFor');
  t.same(book.expire(T0 + 119_999), [], 'one ms before expiry: nothing expires');
  t.same(book.expire(T0 + 120_000).map((p) => p.id), [early.id], 'at its expiry time it is void');
  t.same(book.list().map((p) => p.id), [late.id], 'and removed');

  const broken = new ApprovalBook(SETTINGS);
  hold(broken, 'trainee-1', 'conveyor-1', { heldAtMs: T0 });
  hold(broken, 'planner-1', 'conveyor-1', { heldAtMs: T0 + 60_000 });
  t.equal(broken.expire(NaN).length, 2, 'a NaN clock expires every pending approval');
  t.same(broken.list(), [], 'nothing left to approve');
});

t.test('requests per operator count the last 10 minutes', async (t) => {
  t.equal(FLOOD_WINDOW_MS, 600_000);
  const book = new ApprovalBook({ ...SETTINGS, maxPendingPerAgentDevice: 100 });
  hold(book, 'trainee-1', 'conveyor-1', { heldAtMs: T0, operators: ['shift-lead', 'night-lead'] });
  hold(book, 'trainee-1', 'conveyor-1', { heldAtMs: T0 + 1, operators: ['shift-lead'] });
  hold(book, 'trainee-1', 'conveyor-1', { heldAtMs: T0 + 300_000, operators: ['shift-lead'] });
  const cases: { name: string; nowMs: number; counts: Record<string, number> }[] = [
    { name: 'just after the third', nowMs: T0 + 300_000, counts: { 'shift-lead': 3, 'night-lead': 1 } },
    // The window is (now - 10 min, now]: a request exactly 10 minutes old has left it.
    { name: 'first request 10 min - 1 ms old', nowMs: T0 + 599_999, counts: { 'shift-lead': 3, 'night-lead': 1 } },
    { name: 'first request exactly 10 min old', nowMs: T0 + 600_000, counts: { 'shift-lead': 2, 'night-lead': 0 } },
    { name: 'only the third left', nowMs: T0 + 600_001, counts: { 'shift-lead': 1, 'night-lead': 0 } },
    { name: 'all older than 10 minutes', nowMs: T0 + 900_000, counts: { 'shift-lead': 0, 'night-lead': 0 } },
  ];
  for (const c of cases) t.same(Object.fromEntries(book.requestsPerOperator(c.nowMs)), c.counts, c.name);
  // Requests are counted when routed, whether or not the hold is still pending.
  const fresh = new ApprovalBook(SETTINGS);
  const taken = hold(fresh, 'trainee-1', 'conveyor-1', { heldAtMs: T0 });
  fresh.take(taken.id);
  t.same(Object.fromEntries(fresh.requestsPerOperator(T0 + 1)), { 'shift-lead': 1 }, 'an answered request still counts for the flood metric');
  // A hold routed to nobody counts for nobody.
  hold(fresh, 'trainee-1', 'conveyor-1', { heldAtMs: T0, operators: [] });
  t.same(Object.fromEntries(fresh.requestsPerOperator(T0 + 1)), { 'shift-lead': 1 });
});

t.test('list is oldest first; take removes; the published view names the command', async (t) => {
  const book = new ApprovalBook(SETTINGS);
  const second = hold(book, 'trainee-1', 'conveyor-1', { heldAtMs: T0 + 5 });
  const first = hold(book, 'trainee-1', 'arm-1', { heldAtMs: T0, snapshot: { kind: 'robot_arm', positionsRad: [0, -1, 0, 0, 0, 0] } });
  t.same(book.list().map((p) => p.id), [first.id, second.id]);
  t.equal(book.take(second.id), second);
  t.equal(book.take(second.id), undefined, 'taken only once');
  t.equal(book.get(second.id), undefined);
  const view = viewOf(first);
  t.match(view, { id: first.id, commandDigest: first.commandDigest, agentId: 'trainee-1', deviceId: 'arm-1', action: 'set_speed', heldAtMs: T0, expiresAtMs: T0 + 120_000 });
  t.same(view.snapshot, { kind: 'robot_arm', positionsRad: [0, -1, 0, 0, 0, 0] });
  t.equal(viewOf(second).snapshot, null, 'no known state is published as null');
});
