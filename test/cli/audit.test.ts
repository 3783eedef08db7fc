// `interlock audit verify|export|trace|tail` against real audit databases the test fills through the log's own
// record(): the chain verifies without the file changing, an edited body or a deleted record is named by seq,
// export filters and streams JSON lines in seq order, trace follows a command through its hold and approval, and
// tail --follow picks up a record written after it started and stops on its signal.

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { GENESIS_HASH, type AuditEntry } from '../../src/audit/audit-log.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { runAuditCommand } from '../../src/cli/audit.js';
import { main } from '../../src/cli/main.js';
import type { Reason } from '../../src/core/reasons.js';
import { waitFor } from '../helpers/wait-for.js';

const T0 = Date.parse('2026-11-22T08:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const DIGEST_ARM = 'a'.repeat(64);
const DIGEST_CONVEYOR = 'c'.repeat(64);
const DIGEST_ARM_2 = 'b'.repeat(64);
const DIGEST_AMR = 'd'.repeat(64);
const APPROVAL = 'bec1cbbdd9f12ebe';
const reasons = (...codes: string[]): Reason[] => codes.map((code) => ({ stage: 'policy', code, message: code })) as unknown as Reason[];

// seq: what it is
//  1 event start
//  2 decision allow  arm-agent  -> arm-1       cmd-a1 session s-arm
//  3 outcome release-failed, parent 2
//  4 decision hold   trainee-1  -> conveyor-1  cmd-c1 session s-conv
//  5 event approval-answer-refused (operator mode-only lacks the role), approval APPROVAL
//  6 decision allow  trainee-1  -> conveyor-1  cmd-c1, parent 4, approval APPROVAL, approver shift-lead
//  7 decision deny   arm-agent  -> arm-1       cmd-a2 session s-arm
//  8 decision allow  amr-agent  -> amr-1       cmd-m1 session s-amr
//  9 event stop
const ENTRIES: AuditEntry[] = [
  { kind: 'event', timeMs: T0, detail: { event: 'start' } },
  { kind: 'decision', timeMs: T0 + 1000, commandId: 'cmd-a1', agentId: 'arm-agent', deviceId: 'arm-1', action: 'move_joint', commandDigest: DIGEST_ARM, verdict: 'allow', reasons: [], trace: { session: 's-arm', plan: 'p1' } },
  { kind: 'outcome', timeMs: T0 + 1500, parentSeq: 2, detail: { event: 'release-failed', commandId: 'cmd-a1', error: 'broker gone' } },
  { kind: 'decision', timeMs: T0 + 2000, commandId: 'cmd-c1', agentId: 'trainee-1', deviceId: 'conveyor-1', action: 'set_speed', commandDigest: DIGEST_CONVEYOR, verdict: 'hold', reasons: reasons('POLICY_APPROVAL_REQUIRED'), trace: { session: 's-conv' } },
  { kind: 'event', timeMs: T0 + 2500, detail: { event: 'approval-answer-refused', approvalId: APPROVAL, operatorId: 'mode-only', problem: 'no approve role' } },
  { kind: 'decision', timeMs: T0 + 3000, commandId: 'cmd-c1', agentId: 'trainee-1', deviceId: 'conveyor-1', action: 'set_speed', commandDigest: DIGEST_CONVEYOR, verdict: 'allow', reasons: [], trace: { session: 's-conv' }, parentSeq: 4, detail: { approvalId: APPROVAL, operatorId: 'shift-lead', operatorName: 'Shift lead' } },
  { kind: 'decision', timeMs: T0 + 4000, commandId: 'cmd-a2', agentId: 'arm-agent', deviceId: 'arm-1', action: 'move_joint', commandDigest: DIGEST_ARM_2, verdict: 'deny', reasons: reasons('BOUNDS_EXCEEDED', 'POLICY_FORBIDDEN'), trace: { session: 's-arm' } },
  { kind: 'decision', timeMs: T0 + 5000, commandId: 'cmd-m1', agentId: 'amr-agent', deviceId: 'amr-1', action: 'drive_to', commandDigest: DIGEST_AMR, verdict: 'allow', reasons: [], trace: { session: 's-amr' } },
  { kind: 'event', timeMs: T0 + 6000, detail: { event: 'stop' } },
];

/** A state dir with a filled audit.db (closed, so the WAL is checkpointed into the file); returns it and the head hash. */
async function filledStateDir(t: Test): Promise<{ dir: string; headHash: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'interlock-audit-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = openSqliteAuditLog(join(dir, 'audit.db'));
  for (const entry of ENTRIES) await log.record(entry);
  const headHash = log.head().hash;
  log.close();
  return { dir, headHash };
}

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function audit(dir: string, ...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await main(['audit', ...args, '--state-dir', dir], { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) });
  return { code, stdout, stderr };
}

const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');
const seqsOfJson = (text: string): number[] => lines(text).map((line) => (JSON.parse(line) as { seq: number }).seq);
const seqsOfText = (text: string): number[] => lines(text).flatMap((line) => /  #(\d+)  /.exec(line)?.[1] ?? []).map(Number);
const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

t.test('verify: ok with the record count and head hash, and the database file is left byte for byte as it was', async (t) => {
  const { dir, headHash } = await filledStateDir(t);
  const before = sha256(readFileSync(join(dir, 'audit.db')));
  const run = await audit(dir, 'verify');
  t.equal(run.code, 0, run.stderr);
  t.equal(run.stdout, `ok: ${ENTRIES.length} records, head ${headHash}\n`);
  t.equal(sha256(readFileSync(join(dir, 'audit.db'))), before, 'verify never writes to the database');
  // A reader of a WAL database needs the -wal and -shm files and creates them, empty, when no writer has.
  const wal = join(dir, 'audit.db-wal');
  t.equal(existsSync(wal) ? statSync(wal).size : 0, 0, 'nothing is written to the WAL either');
});

t.test('verify names the seq of an edited body and of a deleted middle record, exit 1', async (t) => {
  const { dir } = await filledStateDir(t);
  const tamper = (sql: string): string => {
    const copy = mkdtempSync(join(tmpdir(), 'interlock-audit-tamper-'));
    t.teardown(() => rmSync(copy, { recursive: true, force: true }));
    copyFileSync(join(dir, 'audit.db'), join(copy, 'audit.db'));
    const db = new Database(join(copy, 'audit.db'));
    db.exec(sql);
    db.close();
    return copy;
  };
  const edited = await audit(tamper("UPDATE records SET body = replace(body, '\"verdict\":\"hold\"', '\"verdict\":\"allow\"') WHERE seq = 4"), 'verify');
  t.equal(edited.code, 1);
  t.equal(edited.stdout, 'broken at seq 4: hash does not match its body (edited?)\n');

  const deleted = await audit(tamper('DELETE FROM records WHERE seq = 5'), 'verify');
  t.equal(deleted.code, 1);
  t.match(deleted.stdout, /^broken at seq 5: record 5 missing \(gap between 4 and 6\)\n$/);

  const column = await audit(tamper("UPDATE records SET agent_id = 'someone-else' WHERE seq = 7"), 'verify');
  t.equal(column.code, 1);
  t.match(column.stdout, /^broken at seq 7: column agent_id is "someone-else"/);
});

t.test('verify: a missing database or one that is not an audit log is exit 1 and names the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'interlock-audit-missing-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['verify', 'export', 'tail']) {
    const run = await audit(dir, sub);
    t.equal(run.code, 1, sub);
    t.equal(run.stderr, `interlock: no audit database at ${join(dir, 'audit.db')} (the interlock creates it in its --state-dir)\n`, sub);
  }
  t.equal((await audit(dir, 'trace', 'cmd-1')).code, 1);
  const foreign = new Database(join(dir, 'audit.db'));
  foreign.exec('CREATE TABLE other (x INTEGER)');
  foreign.close();
  const run = await audit(dir, 'verify');
  t.equal(run.code, 1);
  t.match(run.stderr, /audit\.db is not an audit log this build reads \(schema version 0, records table missing/);
});

t.test('export: every record as one JSON line in seq order, chained by prevHash and hash', async (t) => {
  const { dir, headHash } = await filledStateDir(t);
  const run = await audit(dir, 'export');
  t.equal(run.code, 0, run.stderr);
  const records = lines(run.stdout).map((line) => JSON.parse(line) as { seq: number; prevHash: string; hash: string; kind: string });
  t.same(records.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.equal(records[0]?.prevHash, GENESIS_HASH);
  for (let i = 1; i < records.length; i += 1) t.equal(records[i]?.prevHash, records[i - 1]?.hash, `record ${i + 1} links to ${i}`);
  t.equal(records.at(-1)?.hash, headHash);
  t.match(records[5], { kind: 'decision', commandId: 'cmd-c1', parentSeq: 4, detail: { approvalId: APPROVAL, operatorId: 'shift-lead' }, trace: { session: 's-conv' } });
});

t.test('export filters: each alone, combined, --since inclusive and --until exclusive', async (t) => {
  const { dir } = await filledStateDir(t);
  const cases: [string[], number[]][] = [
    [['--agent', 'arm-agent'], [2, 7]],
    [['--device', 'conveyor-1'], [4, 6]],
    [['--verdict', 'hold'], [4]],
    [['--verdict', 'allow'], [2, 6, 8]],
    [['--kind', 'event'], [1, 5, 9]],
    [['--kind', 'outcome'], [3]],
    [['--since', iso(T0 + 2000)], [4, 5, 6, 7, 8, 9]],
    [['--until', iso(T0 + 2000)], [1, 2, 3]],
    [['--since', iso(T0 + 2000), '--until', iso(T0 + 3000)], [4, 5]],
    [['--since', '2026-11-22T09:00:00+01:00', '--until', '2026-11-22T08:00:01.500Z'], [1, 2]],
    [['--since', '2026-11-22', '--until', '2026-11-23'], [1, 2, 3, 4, 5, 6, 7, 8, 9]],
    [['--since', '2026-11-23'], []],
    [['--agent', 'arm-agent', '--verdict', 'deny'], [7]],
    [['--device', 'conveyor-1', '--kind', 'decision', '--verdict', 'allow', '--since', iso(T0 + 3000)], [6]],
    [['--agent', 'nobody'], []],
  ];
  for (const [args, expected] of cases) {
    const run = await audit(dir, 'export', ...args);
    t.equal(run.code, 0, `${args.join(' ')}: ${run.stderr}`);
    t.same(seqsOfJson(run.stdout), expected, args.join(' '));
  }
});

t.test('trace by command id, command digest, approval id and session, in seq order', async (t) => {
  const { dir } = await filledStateDir(t);
  const cases: [string, number[]][] = [
    ['cmd-a1', [2, 3]],
    ['cmd-c1', [4, 6]],
    [DIGEST_CONVEYOR, [4, 6]],
    [APPROVAL, [4, 5, 6]],
    ['s-arm', [2, 3, 7]],
    ['s-amr', [8]],
  ];
  for (const [id, expected] of cases) {
    const text = await audit(dir, 'trace', id);
    t.equal(text.code, 0, `${id}: ${text.stderr}`);
    t.same(seqsOfText(text.stdout), expected, `${id} (text)`);
    t.match(text.stdout, new RegExp(`trace ${id}: ${expected.length} record\\(s\\)`));
    const json = await audit(dir, 'trace', id, '--json');
    // The records as JSON lines, then one {"story": ...} line per command of the chain (audit-trace.test.ts).
    const [records, stories] = [lines(json.stdout).filter((l) => !l.startsWith('{"story":')), lines(json.stdout).filter((l) => l.startsWith('{"story":'))];
    t.same(seqsOfJson(records.join('\n')), expected, `${id} (--json)`);
    t.ok(stories.length >= 1, `${id}: a story per command`);
  }
  const timeline = lines((await audit(dir, 'trace', APPROVAL)).stdout);
  t.equal(timeline[0], `${iso(T0 + 2000)}  #4  decision  hold   trainee-1 -> conveyor-1  set_speed  reasons=POLICY_APPROVAL_REQUIRED  command=cmd-c1`);
  t.equal(timeline[1], `${iso(T0 + 2500)}  #5  event     -      - -> -  approval-answer-refused  approval=${APPROVAL}  operator=mode-only`);
  t.equal(timeline[2], `${iso(T0 + 3000)}  #6  decision  allow  trainee-1 -> conveyor-1  set_speed  approval=${APPROVAL}  approver=shift-lead  parent=#4  command=cmd-c1`);
  const outcome = lines((await audit(dir, 'trace', 'cmd-a1')).stdout)[1];
  t.equal(outcome, `${iso(T0 + 1500)}  #3  outcome   -      - -> -  release-failed  parent=#2`);
});

t.test('trace: an unknown id is exit 1 and says what was looked for', async (t) => {
  const { dir } = await filledStateDir(t);
  const run = await audit(dir, 'trace', 'no-such-command');
  t.equal(run.code, 1);
  t.equal(run.stdout, '');
  t.match(run.stderr, /no record in .*audit\.db has "no-such-command" as a command id, command digest, approval id \(detail\.approvalId\) or agent session \(trace\.session\)/);
});

t.test('tail prints the last n records, one line each (default 20)', async (t) => {
  const { dir } = await filledStateDir(t);
  const three = await audit(dir, 'tail', '-n', '3');
  t.equal(three.code, 0, three.stderr);
  t.same(seqsOfText(three.stdout), [7, 8, 9]);
  t.same(seqsOfText((await audit(dir, 'tail')).stdout), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.same(seqsOfText((await audit(dir, 'tail', '--lines', '0')).stdout), []);
  t.same(seqsOfJson((await audit(dir, 'tail', '-n', '2', '--json')).stdout), [8, 9]);
});

t.test('tail --follow picks up a record written after it started and stops on its signal', async (t) => {
  const { dir } = await filledStateDir(t);
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (line: string) => out.push(line), err: (line: string) => err.push(line), usageError: () => 2 };
  const stop = new AbortController();
  const following = runAuditCommand(['tail'], { databasePath: join(dir, 'audit.db'), lines: '2', follow: true, stop: stop.signal, pollMs: 5 }, io);
  await waitFor(() => out.length === 2, 'the last two records');
  const writer = openSqliteAuditLog(join(dir, 'audit.db'));
  t.teardown(() => writer.close());
  await writer.record({ kind: 'event', timeMs: T0 + 7000, detail: { event: 'late' } });
  await waitFor(() => out.length === 3, 'the record written while following');
  t.match(out[2], /  #10  event .* late$/);
  stop.abort();
  t.equal(await following, 0);
  t.same(err, []);
  await writer.record({ kind: 'event', timeMs: T0 + 8000, detail: { event: 'after-stop' } });
  t.equal(out.length, 3, 'nothing is printed after the stop');
});

t.test('bad subcommands and option values are usage errors (exit 2) naming the option', async (t) => {
  const { dir } = await filledStateDir(t);
  const cases: [string[], RegExp][] = [
    [[], /audit needs a subcommand: verify, export, trace, tail/],
    [['nope'], /unknown audit subcommand "nope"/],
    [['verify', 'extra'], /audit verify takes no arguments, got extra: extra/],
    [['trace'], /audit trace needs an id/],
    [['trace', 'a', 'b'], /audit trace takes one id, got extra: b/],
    [['export', '--verdict', 'maybe'], /--verdict must be allow, hold, deny, not "maybe"/],
    [['export', '--kind', 'decisions'], /--kind must be decision, outcome, event, not "decisions"/],
    [['export', '--since', 'yesterday'], /--since: cannot read "yesterday" as an ISO 8601 time/],
    [['export', '--until', '2026-11-22T08:00:00'], /--until: cannot read "2026-11-22T08:00:00" as an ISO 8601 time with a zone/],
    [['export', '--since', '2026-11-22T09:00:00Z', '--until', '2026-11-22T08:00:00Z'], /--since \(2026-11-22T09:00:00Z\) must be before --until/],
    [['export', '--agent', ''], /--agent must not be empty/],
    [['export', '--json'], /--json does not apply to audit export \(export always writes JSON lines\)/],
    [['verify', '--follow'], /--follow does not apply to audit verify/],
    [['trace', 'cmd-a1', '--since', '2026-11-22'], /--since does not apply to audit trace/],
    [['tail', '-n', 'ten'], /-n\/--lines must be a whole number >= 0, not "ten"/],
    [['tail', '-n', '1.5'], /-n\/--lines must be a whole number >= 0/],
    [['export', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const run = await audit(dir, ...args);
    t.equal(run.code, 2, args.join(' '));
    t.match(run.stderr, message, args.join(' '));
    t.equal(run.stdout, '', args.join(' '));
  }
});

t.test('a record whose body is not JSON is named on stderr; the rest is still exported, exit 1', async (t) => {
  const { dir } = await filledStateDir(t);
  const db = new Database(join(dir, 'audit.db'));
  db.prepare("UPDATE records SET body = '{broken' WHERE seq = 3").run();
  db.close();
  const run = await audit(dir, 'export');
  t.equal(run.code, 1);
  t.same(seqsOfJson(run.stdout), [1, 2, 4, 5, 6, 7, 8, 9]);
  t.match(run.stderr, /audit\.db: record 3: body is not JSON/);
});
