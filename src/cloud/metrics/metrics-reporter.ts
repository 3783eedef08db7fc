// Reports the interlock's metrics to the cloud every interval: counters counted from the audit log since the last
// published report (a seq cursor per destination, kept in the state folder), gauges read from the live runtime at
// report time. Each report is validated before it is published (Device Defender and/or a plain topic, QoS 1); a
// cursor moves only once its report was acknowledged by the transport, so an outage or a restart loses no count and
// counts none twice: the first report after it covers the whole gap. It never touches a decision.

import { join } from 'node:path';
import type { AuditHealth, AuditHead } from '../../audit/sqlite-audit-log.js';
import type { AuditRecord } from '../../audit/audit-log.js';
import type { Clock } from '../../core/clock.js';
import type { DeviceKind } from '../../core/kinds/index.js';
import type { Logger } from '../../core/log.js';
import type { Reason } from '../../core/reasons.js';
import type { Subscription, Transport } from '../../transport/transport.js';
import { defenderReport, defenderReportProblems, type MetricValue } from './defender-report.js';
import { IntervalCounts } from './interval-counts.js';
import { defenderTopics, metricsSettingsProblem, plainMetricsTopic, type MetricsSettings } from './metrics-settings.js';
import { loadReporterState, REPORTER_STATE_FILE, saveReporterState, type Destination, type DestinationCursor } from './reporter-state.js';
import { renameSync } from 'node:fs';

/** The audit log as the reporter reads it. */
export interface ReporterAudit {
  read(fromSeq: number, limit: number): AuditRecord[];
  head(): AuditHead;
  health(): AuditHealth;
}

/** What the live runtime tells at report time. */
export interface ReporterGauges {
  readonly pendingApprovals: () => number;
  /** Ids of the agents in quarantine now. */
  readonly quarantinedAgents: () => readonly string[];
  /** The device kinds of the declarations in force (bounds violations are counted per kind). */
  readonly kindOf: (deviceId: string) => DeviceKind | undefined;
  /**
   * Every decision as it is made, for the audit errors: a decision whose record failed is, by its nature, not in the
   * log, so those are counted live (and a crash before the next report loses them).
   */
  readonly onDecision: (listener: (reasons: readonly Reason[]) => void) => () => void;
}

export interface MetricsReporterOptions {
  readonly settings: MetricsSettings;
  /** Started by its owner; the reporter publishes only after `started` resolved. */
  readonly transport: Transport;
  readonly thingName: string;
  readonly started: Promise<void>;
  readonly audit: ReporterAudit;
  readonly gauges: ReporterGauges;
  /** The folder the cursor file lives in (the interlock's state folder). */
  readonly stateDirectory: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Report on a timer every settings.intervalMs (default true); tests call reportNow() instead. */
  readonly schedule?: boolean;
  /** Starts the interval timer and returns its stop (default setInterval, unref'd); tests pass their own. */
  readonly every?: (intervalMs: number, tick: () => void) => () => void;
}

function everyInterval(intervalMs: number, tick: () => void): () => void {
  const timer = setInterval(tick, intervalMs);
  // The report timer never keeps a stopping process alive.
  timer.unref();
  return () => clearInterval(timer);
}

/** What became of one report for one destination. */
export type ReportOutcome =
  | { readonly destination: Destination; readonly status: 'published'; readonly reportId: number; readonly fromSeq: number; readonly toSeq: number; readonly values: Readonly<Record<string, MetricValue>> }
  | { readonly destination: Destination; readonly status: 'invalid' | 'failed' | 'not-connected'; readonly problem: string };

export interface DefenderReply {
  readonly reportId: number | undefined;
  readonly status: 'ACCEPTED' | 'REJECTED';
  readonly errorCode?: string;
  readonly message?: string;
}

export interface ReporterStats {
  readonly published: number;
  readonly invalid: number;
  readonly failed: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly lastRejection: DefenderReply | undefined;
}

/** Records read per page while counting; the loop yields between pages so decisions are never held up. */
const PAGE = 2_000;

export class MetricsReporter {
  readonly #o: MetricsReporterOptions;
  readonly #statePath: string;
  readonly #cursors = new Map<Destination, DestinationCursor>();
  readonly #auditErrors = new Map<Destination, number>();
  readonly #destinations: readonly Destination[];
  #stats = { published: 0, invalid: 0, failed: 0, accepted: 0, rejected: 0, lastRejection: undefined as DefenderReply | undefined };
  #chain: Promise<unknown> = Promise.resolve();
  #stopTimer: () => void = () => undefined;
  #subscriptions: Subscription[] = [];
  #offDecision: () => void = () => undefined;
  #up = false;
  #stopped = false;
  readonly #replies: ((reply: DefenderReply) => void)[] = [];

  constructor(options: MetricsReporterOptions) {
    const problem = metricsSettingsProblem(options.settings);
    if (problem !== undefined) throw new RangeError(problem);
    this.#o = options;
    this.#statePath = join(options.stateDirectory, REPORTER_STATE_FILE);
    this.#destinations = [...(options.settings.defender ? ['defender' as const] : []), ...(options.settings.topic === undefined ? [] : ['topic' as const])];
    for (const d of this.#destinations) this.#auditErrors.set(d, 0);
  }

  /**
   * Loads (or starts) the cursors, then, once the cloud link is up, subscribes to the replies and starts the timer.
   * Never throws: the interlock runs whatever becomes of its metrics.
   */
  start(): void {
    try {
      this.#loadCursors();
    } catch (error) {
      this.#o.log.error(`metrics cursors not loaded (${error instanceof Error ? error.message : String(error)}); reports count from the audit head on`);
    }
    this.#offDecision = this.#o.gauges.onDecision((reasons) => {
      if (!reasons.some((r) => r.stage === 'audit')) return;
      for (const d of this.#destinations) this.#auditErrors.set(d, (this.#auditErrors.get(d) ?? 0) + 1);
    });
    void this.#o.started.then(() => this.#connected()).catch((error: unknown) => this.#o.log.error(`metrics not started: ${error instanceof Error ? error.message : String(error)}`));
  }

  #loadCursors(): void {
    const { log } = this.#o;
    const loaded = loadReporterState(this.#statePath);
    let state = loaded.ok ? loaded.state : undefined;
    if (!loaded.ok) {
      // The counts are still in the audit log; only where the last report ended is unknown. Keep the bad file for a look.
      const aside = `${this.#statePath}.unreadable-${this.#o.clock.nowMs()}`;
      renameSync(this.#statePath, aside);
      log.error(`metrics cursor unreadable (${loaded.problem}); moved to ${aside}; reports count from the audit head on`);
      state = undefined;
    }
    const head = this.#o.audit.head().seq;
    for (const d of this.#destinations) {
      const cursor = state?.destinations[d];
      if (cursor === undefined) log.info(`metrics to ${d}: first report counts from audit record ${head + 1} on`);
      this.#cursors.set(d, cursor ?? { seq: head, reportId: 0 });
    }
    // Cursors of destinations switched off stay in the file for when they are switched on again.
    for (const [d, cursor] of Object.entries(state?.destinations ?? {})) if (!this.#cursors.has(d as Destination)) this.#cursors.set(d as Destination, cursor);
    this.#save();
  }

  async #connected(): Promise<void> {
    if (this.#stopped) return;
    const { transport, thingName, log, settings } = this.#o;
    if (settings.defender) {
      const topics = defenderTopics(thingName);
      for (const topic of [topics.accepted, topics.rejected]) {
        try {
          this.#subscriptions.push(await transport.subscribe(topic, (_t, payload) => this.#reply(payload)));
        } catch (error) {
          log.error(`Device Defender replies on ${topic} not subscribed (${error instanceof Error ? error.message : String(error)}); reports are still sent, rejections will not be seen`);
        }
      }
    }
    if (this.#stopped) return;
    this.#up = true;
    if (this.#o.schedule ?? true) this.#stopTimer = (this.#o.every ?? everyInterval)(settings.intervalMs, () => void this.reportNow());
    log.info(`metrics every ${settings.intervalMs / 1000} s to ${this.#destinations.map((d) => (d === 'defender' ? defenderTopics(thingName).report : plainMetricsTopic(settings.topic ?? '', thingName))).join(' and ')}`);
  }

  #reply(payload: Buffer): void {
    let body: { reportId?: unknown; status?: unknown; statusDetails?: { ErrorCode?: unknown; ErrorMessage?: unknown } };
    try {
      body = JSON.parse(payload.toString('utf8')) as typeof body;
    } catch {
      this.#o.log.warn(`Device Defender reply is not JSON: ${payload.toString('utf8').slice(0, 200)}`);
      return;
    }
    const reportId = typeof body.reportId === 'number' ? body.reportId : undefined;
    if (body.status === 'ACCEPTED') {
      this.#stats.accepted += 1;
      for (const listener of this.#replies) listener({ reportId, status: 'ACCEPTED' });
      return;
    }
    const errorCode = String(body.statusDetails?.ErrorCode ?? 'unknown');
    const message = String(body.statusDetails?.ErrorMessage ?? '');
    const reply: DefenderReply = { reportId, status: 'REJECTED', errorCode, message };
    this.#stats.rejected += 1;
    this.#stats.lastRejection = reply;
    // Not resent: the same report would be rejected again, and its counts are already behind the cursor.
    this.#o.log.error(`Device Defender rejected report ${reportId ?? '(no id)'}: ${errorCode}: ${message} (not resent; ${this.#stats.rejected} rejected so far)`);
    for (const listener of this.#replies) listener(reply);
  }

  /** Device Defender's answers as they come (for tests and the log). */
  onReply(listener: (reply: DefenderReply) => void): void {
    this.#replies.push(listener);
  }

  /** True once the cloud link is up and the replies are subscribed: from then on a report is attempted. */
  get ready(): boolean {
    return this.#up && !this.#stopped;
  }

  stats(): ReporterStats {
    return { ...this.#stats };
  }

  /** The cursor of a destination: every record up to its seq is in a published report. */
  cursor(destination: Destination): DestinationCursor | undefined {
    return this.#cursors.get(destination);
  }

  /** Reports now (the timer calls it; tests too). Reports never overlap: a call waits for the one before. */
  reportNow(): Promise<readonly ReportOutcome[]> {
    const run = this.#chain.then(() => this.#report());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #report(): Promise<readonly ReportOutcome[]> {
    try {
      return await this.#reportOnce();
    } catch (error) {
      // A broken read of the log (or a bug) fails this report; the cursors stay, the next one tries again.
      const problem = `report not made: ${error instanceof Error ? error.message : String(error)}`;
      this.#o.log.error(`metrics: ${problem}`);
      this.#stats.failed += 1;
      return this.#destinations.map((destination) => ({ destination, status: 'failed', problem }) as const);
    }
  }

  async #reportOnce(): Promise<readonly ReportOutcome[]> {
    const { audit, log } = this.#o;
    if (this.#stopped) return [];
    if (!this.#up) {
      return this.#destinations.map((destination) => ({ destination, status: 'not-connected', problem: 'the cloud link is not up yet; the interval stays open' }) as const);
    }
    const headSeq = audit.head().seq;
    const counted = new Map<number, IntervalCounts>();
    const outcomes: ReportOutcome[] = [];
    for (const destination of this.#destinations) {
      let cursor = this.#cursors.get(destination) ?? { seq: headSeq, reportId: 0 };
      if (cursor.seq > headSeq) {
        // The log is behind the cursor (a damaged log moved aside, a new one started): count from its head on.
        log.warn(`metrics cursor of ${destination} (${cursor.seq}) is beyond the audit head (${headSeq}); counting from the head on`);
        cursor = { ...cursor, seq: headSeq };
        this.#cursors.set(destination, cursor);
      }
      let counts = counted.get(cursor.seq);
      if (counts === undefined) {
        counts = await this.#count(cursor.seq, headSeq);
        counted.set(cursor.seq, counts);
      }
      outcomes.push(await this.#publish(destination, cursor, counts));
    }
    return outcomes;
  }

  /** Counts the records after `fromSeq` up to `toSeq`, a page at a time. */
  async #count(fromSeq: number, toSeq: number): Promise<IntervalCounts> {
    const { audit, gauges } = this.#o;
    const before = fromSeq > 0 ? audit.read(fromSeq, 1)[0] : undefined;
    const counts = new IntervalCounts(fromSeq, { kindOf: gauges.kindOf, digestBefore: before?.seq === fromSeq ? before.declarationsDigest : undefined });
    let next = fromSeq + 1;
    while (next <= toSeq) {
      const page = audit.read(next, Math.min(PAGE, toSeq - next + 1));
      if (page.length === 0) break;
      for (const record of page) if (record.seq <= toSeq) counts.add(record);
      const last = page[page.length - 1];
      if (last === undefined || last.seq >= toSeq) break;
      next = last.seq + 1;
      await new Promise((resolve) => setImmediate(resolve));
    }
    // Records deleted by retention before they were counted (acknowledged and old, while reports failed) are gone.
    if (counts.lastSeq < toSeq) counts.lastSeq = toSeq;
    return counts;
  }

  #values(counts: IntervalCounts, destination: Destination): Record<string, MetricValue> {
    const { audit, gauges } = this.#o;
    const health = audit.health();
    return {
      ...counts.values(),
      interlock_audit_errors: this.#auditErrors.get(destination) ?? 0,
      interlock_pending_approvals: gauges.pendingApprovals(),
      interlock_quarantined_agents: [...gauges.quarantinedAgents()].sort(),
      interlock_audit_backlog: health.unacknowledged,
      interlock_audit_space_used_percent: health.maxBytes === undefined || health.maxBytes <= 0 ? 0 : Math.round((health.usedBytes / health.maxBytes) * 1000) / 10,
    };
  }

  async #publish(destination: Destination, cursor: DestinationCursor, counts: IntervalCounts): Promise<ReportOutcome> {
    const { transport, thingName, settings, log, clock } = this.#o;
    const values = this.#values(counts, destination);
    // Strictly increasing across restarts: above the last one used, and the time in seconds when that is higher.
    const reportId = Math.max(cursor.reportId + 1, Math.floor(clock.nowMs() / 1000));
    const report = defenderReport(reportId, values);
    const problems = defenderReportProblems(report, cursor.reportId);
    if (problems.length > 0) {
      this.#stats.invalid += 1;
      const problem = `report ${reportId} is invalid, not published: ${problems.join('; ')}`;
      log.error(`metrics to ${destination}: ${problem} (${this.#stats.invalid} invalid so far)`);
      return { destination, status: 'invalid', problem };
    }
    // The id is used from now on, whatever becomes of this publish: a later report never reuses it.
    this.#cursors.set(destination, { seq: cursor.seq, reportId });
    this.#save();
    const topic = destination === 'defender' ? defenderTopics(thingName).report : plainMetricsTopic(settings.topic ?? '', thingName);
    const payload =
      destination === 'defender'
        ? JSON.stringify(report)
        : JSON.stringify({
            thingName,
            reportId,
            timeMs: clock.nowMs(),
            fromSeq: cursor.seq + 1,
            toSeq: counts.lastSeq,
            intervalSeconds: settings.intervalMs / 1000,
            metrics: values,
            reporter: { invalid: this.#stats.invalid, failed: this.#stats.failed, rejected: this.#stats.rejected },
          });
    try {
      await transport.publish(topic, payload, { qos: 1 });
    } catch (error) {
      this.#stats.failed += 1;
      const problem = `report ${reportId} not published to ${topic} (${error instanceof Error ? error.message : String(error)}); the next report covers this interval too`;
      log.warn(`metrics: ${problem}`);
      return { destination, status: 'failed', problem };
    }
    // SAFETY (of the counts, not of the machine): the cursor moves only after the transport acknowledged the report.
    this.#cursors.set(destination, { seq: counts.lastSeq, reportId });
    this.#auditErrors.set(destination, Math.max(0, (this.#auditErrors.get(destination) ?? 0) - (values['interlock_audit_errors'] as number)));
    this.#save();
    this.#stats.published += 1;
    return { destination, status: 'published', reportId, fromSeq: cursor.seq + 1, toSeq: counts.lastSeq, values };
  }

  #save(): void {
    try {
      saveReporterState(this.#statePath, { version: 1, destinations: Object.fromEntries(this.#cursors) });
    } catch (error) {
      this.#o.log.error(`metrics cursor not saved to ${this.#statePath}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Stops the timer and the reply subscriptions; a report in progress finishes first. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stopTimer();
    this.#offDecision();
    await this.#chain;
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
  }
}
