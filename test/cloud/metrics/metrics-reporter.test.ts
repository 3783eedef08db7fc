// The metrics reporter over a real broker (mosquitto as IoT Core) with a fake Device Defender that checks each report
// and answers accepted or rejected, on a real SQLite audit log: counts match the records of the interval, the plain
// topic carries the same numbers, a restart neither loses nor doubles a count and report_id keeps increasing, a
// rejection is logged with its ErrorCode and not resent, a report that does not validate is never published, an
// outage leaves the cursor where it was and the first report after it covers the whole gap.

import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { AuditEntry } from '../../../src/audit/audit-log.js';
import { openSqliteAuditLog, type SqliteAuditLog } from '../../../src/audit/sqlite-audit-log.js';
import { MetricsReporter, type ReporterGauges } from '../../../src/cloud/metrics/metrics-reporter.js';
import type { MetricsSettings } from '../../../src/cloud/metrics/metrics-settings.js';
import { REPORTER_STATE_FILE } from '../../../src/cloud/metrics/reporter-state.js';
import { systemClock } from '../../../src/core/clock.js';
import { createLogger, type Logger } from '../../../src/core/log.js';
import { reason, type Reason, type ReasonCode } from '../../../src/core/reasons.js';
import { MqttTransport } from '../../../src/transport/mqtt-transport.js';
import { serveFakeDeviceDefender, type FakeDeviceDefender } from '../../helpers/fake-device-defender.js';
import { startMosquitto, type RunningMosquitto } from '../../helpers/mosquitto.js';
import { inbox } from '../../transport/transport-contract.js';
import { waitFor } from '../../helpers/wait-for.js';
import { REPO_ROOT } from '../../helpers/test-cell.js';
import { startRuntime } from '../../../src/app/compose.js';

const THING = 'cell-7';
const SETTINGS: MetricsSettings = { intervalMs: 300_000, defender: true, topic: 'interlock/{thing}/metrics' };

interface Setup {
  readonly dir: string;
  readonly audit: SqliteAuditLog;
  readonly broker: RunningMosquitto;
  readonly dd: FakeDeviceDefender;
  readonly plain: ReturnType<typeof inbox>;
  readonly lines: string[];
  readonly log: Logger;
  readonly gauges: ReporterGauges & { quarantined: unknown[]; decide(reasons: readonly Reason[]): void };
  reporter(settings?: MetricsSettings): Promise<{ reporter: MetricsReporter; link: MqttTransport }>;
}

async function setup(t: Test): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-reporter-'));
  const audit = openSqliteAuditLog(join(dir, 'audit.db'), { ballastBytes: 0 });
  const broker = await startMosquitto();
  const cloud = new MqttTransport({ url: broker.url, clientId: 'fake-iot-core', log: () => undefined });
  await cloud.start();
  const dd = await serveFakeDeviceDefender(cloud);
  const plain = inbox();
  await cloud.subscribe('interlock/+/metrics', plain.handler);
  const lines: string[] = [];
  const log = createLogger('test', 'info', (line) => lines.push(line));
  const listeners = new Set<(reasons: readonly Reason[]) => void>();
  const gauges = {
    quarantined: ['agent-q'] as unknown[],
    pendingApprovals: () => 2,
    quarantinedAgents: () => gauges.quarantined as string[],
    kindOf: (id: string) => (id === 'arm-1' ? ('robot_arm' as const) : undefined),
    onDecision: (listener: (reasons: readonly Reason[]) => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    decide: (reasons: readonly Reason[]) => listeners.forEach((l) => l(reasons)),
  };
  const made: { reporter: MetricsReporter; link: MqttTransport }[] = [];
  t.teardown(async () => {
    for (const { reporter, link } of made) {
      await reporter.stop();
      await link.stop();
    }
    await cloud.stop();
    await broker.stop();
    audit.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    audit,
    broker,
    dd,
    plain,
    lines,
    log,
    gauges,
    async reporter(settings = SETTINGS) {
      const link = new MqttTransport({ url: broker.url, clientId: `device-${made.length}`, reconnectPeriodMs: 100, publishTimeoutMs: 2_000, log: () => undefined });
      const started = link.start();
      const reporter = new MetricsReporter({ settings, transport: link, thingName: THING, started, audit, gauges, stateDirectory: dir, clock: systemClock, log, schedule: false });
      made.push({ reporter, link });
      reporter.start();
      await started;
      // Connected and subscribed to the replies: a report now is published.
      await waitFor(() => lines.some((l) => l.includes('metrics every 300 s')), 'the reporter to be up');
      lines.length = 0;
      return { reporter, link };
    },
  };
}

const decision = (verdict: 'allow' | 'deny' | 'hold', codes: ReasonCode[] = [], decisionUs?: number): AuditEntry => ({
  kind: 'decision',
  timeMs: Date.now(),
  verdict,
  deviceId: 'arm-1',
  declarationsDigest: 'd'.repeat(64),
  reasons: codes.map((c) => reason(c, c)),
  ...(decisionUs === undefined ? {} : { decisionUs }),
});

async function record(audit: SqliteAuditLog, entries: readonly AuditEntry[]): Promise<void> {
  for (const entry of entries) await audit.record(entry);
}

const number = (report: FakeDeviceDefender['reports'][number] | undefined, name: string): unknown => (report?.report.custom_metrics[name]?.[0] as { number?: number } | undefined)?.number;

t.test('a report counts the interval, is accepted by Device Defender, and the plain topic carries the same numbers', async (t) => {
  const s = await setup(t);
  await record(s.audit, [decision('allow')]); // before the first start: not counted (reports count from the head on)
  const { reporter } = await s.reporter();
  await record(s.audit, [decision('allow', [], 120), decision('allow', [], 80), decision('deny', ['BOUNDS_JOINT_POSITION' as ReasonCode, 'BOUNDS_TCP_SPEED' as ReasonCode], 300), decision('hold', ['POLICY_APPROVAL_REQUIRED'])]);
  s.gauges.decide([reason('AUDIT_LOG_FULL', 'full')]);
  const outcomes = await reporter.reportNow();
  t.match(outcomes, [{ destination: 'defender', status: 'published' }, { destination: 'topic', status: 'published' }]);
  await waitFor(() => reporter.stats().accepted === 1, 'the accepted reply');
  const report = s.dd.reports[0];
  t.equal(report?.status, 'ACCEPTED', 'the fake Device Defender accepted it');
  t.equal(report?.thingName, THING);
  t.equal(number(report, 'interlock_commands_allowed'), 2, 'the allow before the first start is not in it');
  t.equal(number(report, 'interlock_commands_denied'), 1);
  t.equal(number(report, 'interlock_commands_held'), 1);
  t.equal(number(report, 'interlock_denied_bounds'), 1);
  t.equal(number(report, 'interlock_bounds_violations_robot_arm'), 2);
  t.equal(number(report, 'interlock_decision_latency_p99_us'), 300);
  t.equal(number(report, 'interlock_pending_approvals'), 2);
  t.equal(number(report, 'interlock_audit_errors'), 1, 'the failed record, counted live');
  t.same(report?.report.custom_metrics['interlock_quarantined_agents'], [{ string_list: ['agent-q'] }]);
  t.ok((number(report, 'interlock_audit_backlog') as number) >= 5, 'nothing acknowledged yet');
  t.equal(number(report, 'interlock_audit_space_used_percent'), 0, 'no cap declared');
  await s.plain.until((m) => m.length === 1, 'the plain report');
  const plain = JSON.parse(s.plain.payloads()[0] ?? '{}') as { thingName: string; reportId: number; fromSeq: number; toSeq: number; metrics: Record<string, unknown> };
  t.equal(s.plain.messages[0]?.topic, `interlock/${THING}/metrics`, '{thing} replaced');
  t.equal(plain.thingName, THING);
  t.same(Object.fromEntries(Object.entries(plain.metrics).map(([k, v]) => [k, [Array.isArray(v) ? { string_list: v } : { number: v }]])), report?.report.custom_metrics, 'the same numbers');
  t.equal(plain.toSeq, s.audit.head().seq);
  t.equal(reporter.cursor('defender')?.seq, s.audit.head().seq, 'the cursor moved to the end of the interval');

  // The next interval counts only what came after.
  await record(s.audit, [decision('deny', ['ENVELOPE_REPLAYED'])]);
  await reporter.reportNow();
  await waitFor(() => s.dd.reports.length === 2, 'the second report');
  const second = s.dd.reports[1];
  t.equal(number(second, 'interlock_commands_allowed'), 0);
  t.equal(number(second, 'interlock_replay_attempts'), 1);
  t.equal(number(second, 'interlock_audit_errors'), 0, 'the audit error was reported once');
  t.ok((second?.report.header.report_id ?? 0) > (report?.report.header.report_id ?? 0), 'report_id increases');
});

t.test('restart: counts neither lost nor doubled, report_id keeps increasing', async (t) => {
  const s = await setup(t);
  const first = await s.reporter();
  await record(s.audit, [decision('allow'), decision('allow')]);
  await first.reporter.reportNow();
  await waitFor(() => s.dd.reports.length === 1, 'the first report');
  await first.reporter.stop();
  await first.link.stop();
  // Decided while the reporter was down.
  await record(s.audit, [decision('allow'), decision('deny', ['POLICY_NO_PERMIT']), decision('deny', ['POLICY_NO_PERMIT'])]);
  t.ok(existsSync(join(s.dir, REPORTER_STATE_FILE)), 'the cursor is kept in the state folder');
  const second = await s.reporter();
  await record(s.audit, [decision('allow')]);
  await second.reporter.reportNow();
  await waitFor(() => s.dd.reports.length === 2, 'the report after the restart');
  const [a, b] = s.dd.reports;
  t.equal(number(a, 'interlock_commands_allowed'), 2);
  t.equal(number(b, 'interlock_commands_allowed'), 2, 'the one decided while down and the one after; none of the first two again');
  t.equal(number(b, 'interlock_denied_policy'), 2);
  t.equal(b?.status, 'ACCEPTED');
  t.ok((b?.report.header.report_id ?? 0) > (a?.report.header.report_id ?? 0), 'report_id increases across the restart');
});

t.test('a rejection is logged with its ErrorCode and message, counted, and not resent', async (t) => {
  const s = await setup(t);
  const { reporter } = await s.reporter();
  await record(s.audit, [decision('allow'), decision('allow'), decision('allow')]);
  s.dd.rejectWith = 'Throttled';
  await reporter.reportNow();
  await waitFor(() => reporter.stats().rejected === 1, 'the rejection');
  t.match(s.lines.join('\n'), /ERROR.*Device Defender rejected report \d+: Throttled: refused: Throttled \(not resent; 1 rejected so far\)/);
  t.match(reporter.stats().lastRejection, { status: 'REJECTED', errorCode: 'Throttled' });
  s.dd.rejectWith = undefined;
  await record(s.audit, [decision('deny', ['POLICY_NO_PERMIT'])]);
  const outcomes = await reporter.reportNow();
  await waitFor(() => s.dd.reports.length === 2, 'the next report');
  t.equal(outcomes.length, 2);
  const ids = s.dd.reports.map((r) => r.report.header.report_id);
  t.equal(new Set(ids).size, 2, 'no report sent twice');
  t.equal(number(s.dd.reports[1], 'interlock_commands_allowed'), 0, 'the rejected interval is not sent again');
  t.equal(number(s.dd.reports[1], 'interlock_commands_denied'), 1);
  await s.plain.until((m) => m.length === 2, 'the second plain report');
  t.match(JSON.parse(s.plain.payloads()[1] ?? '{}'), { reporter: { rejected: 1 } }, 'the rejection count goes out with the next report');
});

t.test('a report that does not validate is never published: logged and counted, its interval stays open', async (t) => {
  const s = await setup(t);
  const { reporter } = await s.reporter({ intervalMs: 300_000, defender: true, topic: undefined });
  await record(s.audit, [decision('allow')]);
  s.gauges.quarantined = [42];
  const [outcome] = await reporter.reportNow();
  t.match(outcome, { destination: 'defender', status: 'invalid', problem: /interlock_quarantined_agents\/0\/string_list\/0: must be string/ });
  t.equal(reporter.stats().invalid, 1);
  t.match(s.lines.join('\n'), /ERROR.*metrics to defender: report \d+ is invalid, not published/);
  s.gauges.quarantined = [];
  await reporter.reportNow();
  await waitFor(() => s.dd.reports.length === 1, 'the valid report');
  t.equal(s.dd.reports.length, 1, 'only the valid report reached Device Defender');
  t.equal(number(s.dd.reports[0], 'interlock_commands_allowed'), 1, 'the interval of the invalid report is in it');
});

t.test('an outage: the cursor stays, the first report after it covers the whole gap', async (t) => {
  const s = await setup(t);
  const { reporter, link } = await s.reporter();
  const port = s.broker.port;
  await record(s.audit, [decision('allow')]);
  await s.broker.stop();
  await waitFor(() => !link.isConnected(), 'the link to notice the outage');
  const before = reporter.cursor('defender');
  const outcomes = await reporter.reportNow();
  t.match(outcomes, [{ destination: 'defender', status: 'failed' }, { destination: 'topic', status: 'failed' }]);
  t.equal(reporter.cursor('defender')?.seq, before?.seq, 'the cursor did not move');
  await record(s.audit, [decision('allow'), decision('deny', ['POLICY_NO_PERMIT'])]);
  await reporter.reportNow();
  t.equal(reporter.stats().failed, 4);
  // The cloud comes back (a broker on the same port) with a fresh Device Defender.
  const back = await startMosquitto({ port });
  const cloud = new MqttTransport({ url: back.url, clientId: 'fake-iot-core-2', log: () => undefined });
  t.teardown(async () => {
    await cloud.stop();
    await back.stop();
  });
  await cloud.start();
  const dd = await serveFakeDeviceDefender(cloud);
  await waitFor(() => link.isConnected(), 'the link to reconnect');
  // The reply subscriptions come back with the reconnect (the transport restores them); report once.
  const after = await reporter.reportNow();
  t.match(after, [{ destination: 'defender', status: 'published' }, { destination: 'topic', status: 'published' }]);
  await waitFor(() => dd.reports.length === 1, 'the report after the outage');
  t.equal(number(dd.reports[0], 'interlock_commands_allowed'), 2, 'both allows of the gap in one report');
  t.equal(number(dd.reports[0], 'interlock_commands_denied'), 1);
  t.equal(dd.reports.length, 1, 'one report for the gap');
  await waitFor(() => reporter.stats().accepted === 1, 'the accepted reply over the restored subscription');
});

t.test('settings out of range are refused, not clamped; an unreadable cursor file is moved aside', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-settings-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const audit = openSqliteAuditLog(join(dir, 'audit.db'), { ballastBytes: 0 });
  t.teardown(() => audit.close());
  const base = { transport: new MqttTransport({ url: 'mqtt://127.0.0.1:1', clientId: 'x', log: () => undefined }), thingName: THING, started: new Promise<void>(() => undefined), audit, stateDirectory: dir, clock: systemClock, log: createLogger('x', 'silent'), schedule: false };
  const gauges: ReporterGauges = { pendingApprovals: () => 0, quarantinedAgents: () => [], kindOf: () => undefined, onDecision: () => () => undefined };
  t.throws(() => new MetricsReporter({ ...base, gauges, settings: { intervalMs: 299_000, defender: true, topic: undefined } }), /metrics interval 299 s is under the minimum of 300 s/);
  t.throws(() => new MetricsReporter({ ...base, gauges, settings: { intervalMs: 300_000, defender: false, topic: undefined } }), /metrics go nowhere/);
  t.throws(() => new MetricsReporter({ ...base, gauges, settings: { intervalMs: 300_000, defender: true, topic: 'a/#' } }), /metrics topic "a\/#": wildcards are not allowed/);
  t.throws(() => new MetricsReporter({ ...base, gauges, settings: { intervalMs: 300_000, defender: false, topic: '$aws/x' } }), /reserved/);
  writeFileSync(join(dir, REPORTER_STATE_FILE), '{"version":1,"destinations":{"defender":{"seq":-1,"reportId":0}}}');
  const lines: string[] = [];
  const reporter = new MetricsReporter({ ...base, gauges, log: createLogger('x', 'info', (l) => lines.push(l)), settings: SETTINGS });
  reporter.start();
  t.match(lines.join('\n'), /metrics cursor unreadable \(.*destinations\.defender\.seq is not a non-negative integer\); moved to .*unreadable-\d+/);
  t.ok(readdirSync(dir).some((f) => f.startsWith(`${REPORTER_STATE_FILE}.unreadable-`)), 'kept for a look');
  t.same(reporter.cursor('defender'), { seq: 0, reportId: 0 }, 'counting from the audit head on');
  await reporter.stop();
});

t.test('startRuntime refuses metrics without a cloud link, and an interval under 300 s, before opening anything', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-compose-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const state = join(dir, 'state');
  const base = { cellDirectory: join(REPO_ROOT, 'safety-bounds', 'demo-cell'), stateDirectory: state, log: createLogger('x', 'silent') };
  await t.rejects(startRuntime({ ...base, metrics: SETTINGS }), /metrics need a cloud link/);
  const link = { transport: new MqttTransport({ url: 'mqtt://127.0.0.1:1', clientId: 'x', log: () => undefined }), thingName: THING };
  await t.rejects(startRuntime({ ...base, cloud: link, metrics: { ...SETTINGS, intervalMs: 60_000 } }), /metrics interval 60 s is under the minimum of 300 s/);
  t.notOk(existsSync(state), 'nothing was opened or created');
});

t.test('on its timer: every configured interval a report goes out; the timer stops with the reporter', async (t) => {
  const s = await setup(t);
  const link = new MqttTransport({ url: s.broker.url, clientId: 'device-timer', log: () => undefined });
  const started = link.start();
  t.teardown(() => link.stop());
  const ticks: { intervalMs: number; tick: () => void; stopped: boolean }[] = [];
  const reporter = new MetricsReporter({
    settings: { ...SETTINGS, intervalMs: 900_000 },
    transport: link,
    thingName: THING,
    started,
    audit: s.audit,
    gauges: s.gauges,
    stateDirectory: s.dir,
    clock: systemClock,
    log: s.log,
    every: (intervalMs, tick) => {
      const entry = { intervalMs, tick, stopped: false };
      ticks.push(entry);
      return () => void (entry.stopped = true);
    },
  });
  reporter.start();
  await waitFor(() => ticks.length === 1, 'the timer to start once the link is up');
  t.equal(ticks[0]?.intervalMs, 900_000, 'the configured interval');
  await record(s.audit, [decision('allow')]);
  ticks[0]?.tick();
  await waitFor(() => s.dd.reports.length === 1, 'the report of the tick');
  t.equal(number(s.dd.reports[0], 'interlock_commands_allowed'), 1);
  await reporter.stop();
  t.equal(ticks[0]?.stopped, true, 'the timer stopped');
});

t.test('a log that cannot be read fails that report only: logged, cursors unmoved, the next report goes out', async (t) => {
  const s = await setup(t);
  const link = new MqttTransport({ url: s.broker.url, clientId: 'device-broken-read', log: () => undefined });
  const started = link.start();
  t.teardown(() => link.stop());
  let broken = true;
  const audit = {
    read: (fromSeq: number, limit: number) => {
      if (broken) throw new Error('record 3: body is not JSON');
      return s.audit.read(fromSeq, limit);
    },
    head: () => s.audit.head(),
    health: () => s.audit.health(),
  };
  const reporter = new MetricsReporter({ settings: { ...SETTINGS, topic: undefined }, transport: link, thingName: THING, started, audit, gauges: s.gauges, stateDirectory: s.dir, clock: systemClock, log: s.log, schedule: false });
  reporter.start();
  t.teardown(() => reporter.stop());
  await waitFor(() => reporter.ready, 'the reporter to be up');
  await record(s.audit, [decision('allow'), decision('allow')]);
  const before = reporter.cursor('defender');
  const [outcome] = await reporter.reportNow();
  t.match(outcome, { destination: 'defender', status: 'failed', problem: /report not made: record 3: body is not JSON/ });
  t.same(reporter.cursor('defender'), before, 'the cursor did not move');
  t.match(s.lines.join('\n'), /ERROR.*metrics: report not made/);
  broken = false;
  await reporter.reportNow();
  await waitFor(() => s.dd.reports.length === 1, 'the next report');
  t.equal(number(s.dd.reports[0], 'interlock_commands_allowed'), 2, 'with the interval of the failed one');
});
