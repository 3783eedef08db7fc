// The running interlock: takes commands and device state from a Transport, decides with the pipeline, records
// every decision durably, and only then releases allowed commands to actuators. Nothing moves unrecorded. Device
// reports are checked in device-reports.ts, operator messages handled in operator-channel.ts, audit entries built in
// decision-entry.ts.

import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import type { AuditLog, AuditReceipt } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/log.js';
import { reason } from '../core/reasons.js';
import type { LoadedCell } from '../declarations/load.js';
import { signHeartbeat } from '../dispatch/heartbeat.js';
import { signReleasedCommand, type ReleasedCommand } from '../dispatch/released-command.js';
import { MemoryReplayGuard, type ReplayGuard } from '../envelope/replay-guard.js';
import { decisionReport, type DecisionReport } from '../pipeline/decision-report.js';
import { BoundsMemory, evaluateCommand, identityOf, type Decision } from '../pipeline/pipeline.js';
import { ApprovalBook, viewOf, type PendingApproval } from '../approvals/approval-book.js';
import { TrustTracker, type Demotion, type DemotionStore } from '../trust/trust-tracker.js';
import type { Reason } from '../core/reasons.js';
import { hintedVerifier, VerifierPool, type PreVerified } from '../crypto/verifier-pool.js';
import type { LastRelease, ReleaseView } from '../core/device-state.js';
import { recordRelease, recordReleaseAhead } from '../bounds/bounds.js';
import { auditFailureReason, decisionEntry, eventEntry } from './decision-entry.js';
import { DeviceReports } from './device-reports.js';
import { OperatorChannel } from './operator-channel.js';
import type { Subscription, Transport } from '../transport/transport.js';
import { commandPayloadProblem, PAYLOAD_LIMITS } from '../transport/payload-limits.js';
import { topicSet, type TopicSet } from '../transport/topics.js';
import { StateStore } from './state-store.js';
import { isUnauthenticatedDenial, UnauthenticatedDenials, UNAUTHENTICATED_DENIALS_EVENT } from './unauthenticated-denials.js';

export interface InterlockOptions {
  readonly cell: LoadedCell;
  readonly transport: Transport;
  readonly audit: AuditLog;
  /** The interlock's own Ed25519 private key; drivers verify released commands with its public half. */
  readonly signingKey: KeyObject;
  readonly clock: Clock;
  readonly topics?: TopicSet;
  /** How often `interlock/heartbeat` is published; drivers stop when it stops. 0 disables. */
  readonly heartbeatPeriodMs?: number;
  readonly log?: Logger;
  /**
   * Replay memory and demotions that survive restarts (SqliteIdentityStore). Without it both live in memory,
   * with a replay epoch at construction: commands issued before the interlock existed are refused.
   */
  readonly identity?: ReplayGuard & DemotionStore;
  /**
   * The bounds memory as restored at start (restoreSafetyMemory: latched trips, released setpoints and operator modes
   * from the identity store, rate windows from the audit log), writing its changes back. Default: empty, memory only.
   */
  readonly bounds?: BoundsMemory;
  /**
   * Worker threads that verify command signatures ahead of the serial decision queue (0: verify on the main
   * thread). One is enough on a 2-core device: it takes the most expensive step off the thread that decides.
   */
  readonly verifierThreads?: number;
  /** How often the counters are published on interlock/metrics (default 10 s; 0 disables). */
  readonly metricsPeriodMs?: number;
}

/** A snapshot of the interlock's counters, published on interlock/metrics and read by the CLI and tests. */
export interface InterlockMetrics {
  readonly timeMs: number;
  readonly decisions: { readonly allow: number; readonly hold: number; readonly deny: number };
  readonly pendingApprovals: number;
  /** Approval requests routed to each approver in the last 10 minutes (over 10 is an alarm flood, ISA-18.2). */
  readonly approvalRequestsPer10Min: Readonly<Record<string, number>>;
  readonly demotedAgents: readonly { readonly agentId: string; readonly demotedTo: string; readonly sinceMs: number }[];
}

/** What the live view and tests see for each command handled. */
export interface DecisionEvent {
  readonly report: DecisionReport;
  /** The audit record of the decision, when it was committed. */
  readonly auditSeq: number | null;
  /** True when the command was published to the actuator topic. */
  readonly released: boolean;
  /** Why an allowed command was not released (the broker connection refused the publish); absent otherwise. */
  readonly releaseProblem?: string;
  readonly topicDeviceId: string;
}

/** What became of a release: published, or not, and why not. */
type ReleaseOutcome = { readonly released: true } | { readonly released: false; readonly problem?: string };
const NOT_RELEASED: ReleaseOutcome = { released: false };

export type DecisionListener = (event: DecisionEvent) => void;

/** What `replaceCell` did: put the new declarations in force (or found them identical), or refused them. */
export type CellChange =
  | { readonly ok: true; readonly changed: boolean; readonly fromDigest: string; readonly toDigest: string }
  | { readonly ok: false; readonly problem: string };

export class Interlock {
  readonly states = new StateStore();
  /** Rate windows, mode hysteresis, kind memory; `bounds.setOperatorMode` is the operator's mode switch. */
  readonly bounds: BoundsMemory;
  /** Demoted agents; restored only by an operator. */
  trust: TrustTracker;
  /** Held commands waiting for an operator. */
  approvals: ApprovalBook;
  /** The declarations in force; replaced only whole, by `replaceCell`, between two decisions. */
  private cell: LoadedCell;
  private readonly lastReleases = new Map<string, LastRelease>();
  /** The device channel: authenticated state and outcomes, and the releases awaiting their outcome. */
  private readonly reports: DeviceReports;
  private readonly releases: ReleaseView = { last: (deviceId) => this.lastReleases.get(deviceId) };
  private readonly replay: ReplayGuard;
  private verifier: VerifierPool | undefined;
  private readonly topics: TopicSet;
  private readonly log: Logger;
  private readonly listeners = new Set<DecisionListener>();
  private subscriptions: Subscription[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private metricsTimer: NodeJS.Timeout | undefined;
  private readonly counts = { allow: 0, hold: 0, deny: 0 };
  private heartbeatSeq = 0;
  /** This run of the interlock, in every heartbeat: a new epoch starts the drivers' counter comparison afresh. */
  private readonly heartbeatEpoch = randomUUID();
  /** Commands are decided one at a time in arrival order, so audit order is decision order. */
  private queue: Promise<void> = Promise.resolve();
  /** Decided commands waiting for their audit record, settled (released, held, reported) in decision order. */
  private releaseChain: Promise<void> = Promise.resolve();
  /** Per device: the settlement of its latest allowed or held command still in flight. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private running = false;
  /** Denials that authenticated nobody, counted per window instead of recorded one by one (unauthenticated-denials.ts). */
  private readonly unauthenticated: UnauthenticatedDenials;
  private readonly operatorChannel: OperatorChannel;

  constructor(private readonly options: InterlockOptions) {
    this.topics = options.topics ?? topicSet();
    this.log = options.log ?? silentLogger;
    this.replay = options.identity ?? new MemoryReplayGuard(() => options.clock.nowMs(), options.clock.nowMs());
    this.bounds = options.bounds ?? new BoundsMemory();
    this.cell = options.cell;
    this.unauthenticated = new UnauthenticatedDenials({ clock: options.clock, record: (summary) => this.recordEvent(UNAUTHENTICATED_DENIALS_EVENT, { ...summary }) });
    this.trust = new TrustTracker(options.cell.declarations.trust, options.identity);
    this.approvals = new ApprovalBook(options.cell.declarations.approvals);
    this.reports = new DeviceReports({
      cell: () => this.cell,
      states: this.states,
      bounds: this.bounds,
      clock: options.clock,
      log: this.log,
      audit: options.audit,
      recordEvent: (event, detail) => this.recordEvent(event, detail),
    });
    const threads = options.verifierThreads ?? 0;
    this.verifier = threads > 0 ? new VerifierPool(options.cell.declarations.keys, threads) : undefined;
    // Getters: the cell, approvals and trust are replaced whole when the declarations change.
    const self = this;
    this.operatorChannel = new OperatorChannel({
      get cell() {
        return self.cell;
      },
      get approvals() {
        return self.approvals;
      },
      get trust() {
        return self.trust;
      },
      bounds: this.bounds,
      states: this.states,
      releases: this.releases,
      replay: this.replay,
      clock: options.clock,
      transport: options.transport,
      topics: this.topics,
      log: this.log,
      settled: () => this.releaseChain,
      recordEvent: (event, detail) => this.recordEvent(event, detail),
      resolveHeld: (pending, verdict, reasons, detail, judged, arrivedAt) => this.resolveHeld(pending, verdict, reasons, detail, judged, arrivedAt),
      announceStanding: (agentId, event, detail) => this.announceStanding(agentId, event, detail),
    });
  }

  onDecision(listener: DecisionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    const { transport } = this.options;
    const cell = this.cell;
    this.running = true;
    this.log.info(`cell ${cell.declarations.cellId}, declarations digest ${cell.declarations.digest}, policies ${cell.policies.policyIds.join(', ')}`);
    await this.recordEvent('interlock-started', { declarationsDigest: cell.declarations.digest, transport: transport.name });
    this.subscriptions.push(
      await transport.subscribe(this.topics.stateFilter, (topic, payload) => {
        const deviceId = this.topics.deviceOfStateTopic(topic);
        if (deviceId !== undefined) this.reports.onState(deviceId, payload);
      }),
    );
    this.subscriptions.push(
      await transport.subscribe(this.topics.outcomeFilter, (topic, payload) => {
        const deviceId = this.topics.deviceOfOutcomeTopic(topic);
        if (deviceId !== undefined) this.reports.onOutcome(deviceId, payload);
      }),
    );
    this.subscriptions.push(
      await transport.subscribe(this.topics.commandFilter, (topic, payload) => {
        // Monotonic, taken on receipt: the record's decisionUs runs from here to the verdict.
        const arrivedAt = performance.now();
        // The signature is checked on a worker now, while earlier commands are still being decided; the decision
        // itself stays in arrival order on the queue.
        // SAFETY: the size first, before the payload is converted, hashed or handed to a verifier.
        const tooLarge = commandPayloadProblem(payload);
        const pool = tooLarge === undefined ? this.verifier : undefined;
        const hint = pool?.verify(payload.toString('utf8'));
        this.queue = this.queue.then(async () => {
          const verified = await hint;
          // SAFETY: a hint from the pool of replaced declarations is dropped: a kid may now name another key.
          return this.handleCommand(topic, payload, arrivedAt, pool === this.verifier ? verified : undefined, tooLarge);
        }).catch((error: unknown) => {
          this.log.error(`command handling failed: ${error instanceof Error ? error.stack : String(error)}`);
        });
      }),
    );
    this.subscriptions.push(
      await transport.subscribe(this.topics.operator, (_topic, payload) => {
        const arrivedAt = performance.now();
        this.queue = this.queue.then(() => this.operatorChannel.handle(payload, arrivedAt)).catch((error: unknown) => {
          this.log.error(`operator message handling failed: ${error instanceof Error ? error.stack : String(error)}`);
        });
      }),
    );
    // Held commands whose time ran out are denied on the queue, in order with everything else.
    this.expiryTimer = setInterval(() => {
      this.queue = this.queue.then(() => this.expireApprovals()).catch((error: unknown) => {
        this.log.error(`approval expiry failed: ${error instanceof Error ? error.stack : String(error)}`);
      });
    }, 500);
    const metricsPeriod = this.options.metricsPeriodMs ?? 10_000;
    if (metricsPeriod > 0) this.metricsTimer = setInterval(() => this.publishMetrics(), metricsPeriod);
    const period = this.options.heartbeatPeriodMs ?? 250;
    if (period > 0) {
      this.heartbeatTimer = setInterval(() => this.beat(), period);
      this.beat();
    }
  }

  /** Stops taking commands, finishes the ones in flight, stops the heartbeat (drivers then go safe). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    if (this.expiryTimer) clearInterval(this.expiryTimer);
    this.expiryTimer = undefined;
    if (this.metricsTimer) clearInterval(this.metricsTimer);
    this.metricsTimer = undefined;
    const subscriptions = this.subscriptions;
    this.subscriptions = [];
    await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
    await this.queue;
    await this.releaseChain;
    await this.unauthenticated.close();
    await this.recordEvent('interlock-stopped', {});
    await this.verifier?.close();
  }

  /** The declarations in force now. */
  get declarations(): LoadedCell {
    return this.cell;
  }

  /**
   * Puts a new declaration set in force between two decisions: every command decided before settles under the old
   * set, every later one is decided under the new one. The caller has loaded and validated `next` in full. Commands
   * held for approval under the old set are denied (an approval was asked for under rules no longer in force).
   * Demotions and recent denials carry over; the change is audited with both digests and what made it.
   * A different cell id is refused: the audit checkpoints and the agents' audience name the cell.
   */
  replaceCell(next: LoadedCell, change: { readonly source: string; readonly by?: string }): Promise<CellChange> {
    const result = this.queue.then(async (): Promise<CellChange> => {
      await this.releaseChain;
      const previous = this.cell;
      const from = previous.declarations.digest;
      const to = next.declarations.digest;
      if (next.declarations.cellId !== previous.declarations.cellId) {
        const problem = `the new declarations are for cell ${next.declarations.cellId}, this interlock runs cell ${previous.declarations.cellId}: a restart is required`;
        await this.recordEvent('declarations-change-refused', { fromDigest: from, toDigest: to, source: change.source, ...(change.by === undefined ? {} : { by: change.by }), problem });
        return { ok: false, problem };
      }
      if (from === to) return { ok: true, changed: false, fromDigest: from, toDigest: to };
      const voided = this.approvals.list();
      for (const pending of voided) this.approvals.take(pending.id);
      this.cell = next;
      this.trust = this.trust.rebased(next.declarations.trust);
      this.approvals = new ApprovalBook(next.declarations.approvals);
      const oldPool = this.verifier;
      const threads = this.options.verifierThreads ?? 0;
      this.verifier = threads > 0 ? new VerifierPool(next.declarations.keys, threads) : undefined;
      await oldPool?.close();
      await this.recordEvent('declarations-changed', {
        fromDigest: from,
        toDigest: to,
        source: change.source,
        ...(change.by === undefined ? {} : { by: change.by }),
        policies: next.policies.policyIds,
        voidedApprovals: voided.map((p) => p.id),
      });
      this.log.info(`declarations changed ${from} -> ${to} (${change.source}${change.by === undefined ? '' : `, by ${change.by}`})`);
      for (const pending of voided) {
        await this.resolveHeld(pending, 'deny', [reason('APPROVAL_DECLARATIONS_CHANGED', `held under declarations ${from}, which were replaced by ${to} before an answer`, { ruleId: 'approvals/declarations' })], { outcome: 'declarations-changed' });
      }
      return { ok: true, changed: true, fromDigest: from, toDigest: to };
    });
    this.queue = result.then(
      () => undefined,
      (error: unknown) => this.log.error(`declaration change failed: ${error instanceof Error ? error.stack : String(error)}`),
    );
    return result;
  }

  /** Resolves when every command received so far has been decided, recorded and released or reported. */
  async idle(): Promise<void> {
    await this.queue;
    await this.releaseChain;
  }

  private beat(): void {
    this.heartbeatSeq += 1;
    // Signed like a release: drivers act only on the interlock's own, newer, timely heartbeats.
    const payload = signHeartbeat({ epoch: this.heartbeatEpoch, seq: this.heartbeatSeq, timeMs: this.options.clock.nowMs() }, this.options.signingKey);
    this.options.transport.publish(this.topics.heartbeat, payload, { qos: 0 }).catch((error: unknown) => {
      this.log.warn(`heartbeat not sent: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  /**
   * Decides one command on the decision queue and hands it to the release chain without waiting for its record to
   * commit, so that commands arriving together share one audit transaction (group commit). What the next decision
   * must see of this one is settled first: a command for a device whose previous allow or hold is still in flight
   * waits for it (per-device memory, approval room), and an allow in flight counts as released for every other
   * device's shared-zone checks, which can only make those stricter.
   */
  private async handleCommand(topic: string, payload: Buffer, arrivedAt: number, hint?: PreVerified, tooLarge?: string): Promise<void> {
    const topicDeviceId = this.topics.deviceOfCommandTopic(topic);
    if (topicDeviceId === undefined) {
      this.log.warn(`command on unusable topic ${JSON.stringify(topic)} ignored`);
      return;
    }
    // SAFETY: the device's previous command must be released (or known not to be) before this one is checked
    // against its last release and its kind memory.
    await this.inFlight.get(topicDeviceId);
    const { clock } = this.options;
    const cell = this.cell;
    let decision: Decision;
    if (tooLarge !== undefined) {
      // Denied unread: no identity, so it is counted with the other unauthenticated denials, not one record each.
      decision = {
        verdict: 'deny',
        reasons: [reason('ENVELOPE_OVERSIZE', tooLarge, { limit: PAYLOAD_LIMITS.commandBytes, actual: payload.length, unit: 'B' })],
        commandDigest: createHash('sha256').update(payload).digest('hex'),
        declarationsDigest: cell.declarations.digest,
        decidedAtMs: clock.nowMs(),
        identity: {},
      };
    } else {
      const token = payload.toString('utf8');
      const signatureHint = hintedVerifier(hint, token);
      decision = evaluateCommand(
        { token, topicDeviceId, ...(signatureHint === undefined ? {} : { signatureHint }) },
        { cell, replay: this.replay, states: this.states, releases: this.releases, bounds: this.bounds, trust: this.trust },
        clock.nowMs(),
      );
    }
    if (decision.verdict === 'hold' && decision.command !== undefined && !this.approvals.hasRoom(decision.command.agent.id, decision.command.device.id)) {
      const { agent, device } = decision.command;
      const cap = cell.declarations.approvals.maxPendingPerAgentDevice;
      decision = {
        ...decision,
        verdict: 'deny',
        reasons: [
          ...decision.reasons,
          reason('APPROVAL_PENDING_LIMIT', `${agent.id} already has ${cap} commands waiting for approval on ${device.id}`, { ruleId: 'approvals/maxPendingPerAgentDevice', limit: cap, actual: cap + 1 }),
        ],
      };
    }
    const decidedAt = performance.now();
    const safeState = decision.verdict === 'allow' && decision.command?.safeState === true;
    // The record joins the batch now; it is awaited on the release chain, in decision order.
    // SAFETY: a denial that authenticated nobody is only counted in the window's aggregate record, so that a flood of
    // garbage cannot fill the log; its decision is still published, with auditSeq null.
    const aggregated = isUnauthenticatedDenial(decision);
    if (aggregated) this.unauthenticated.add(decision, topicDeviceId, tooLarge === undefined ? payload.toString('utf8') : payload.subarray(0, 256).toString('utf8'));
    const recorded = aggregated ? Promise.resolve(undefined) : this.options.audit.record(decisionEntry(decision, topicDeviceId, { arrivedAt, decidedAt }), { safeState });
    recorded.catch(() => undefined); // handled on the release chain; never an unhandled rejection meanwhile
    const deviceId = decision.command?.device.id ?? topicDeviceId;
    const reservation = decision.verdict === 'allow' && decision.command !== undefined ? this.reserveRelease(decision) : undefined;
    // A denial counts now, so the agent's next command (perhaps already queued) is decided with it.
    const demotion = decision.verdict === 'deny' ? this.countDenial(decision) : undefined;
    const decided = decision;
    const settled = this.releaseChain.then(() => this.settleCommand(decided, topicDeviceId, recorded, reservation, demotion));
    this.releaseChain = settled.catch((error: unknown) => {
      this.log.error(`command settlement failed: ${error instanceof Error ? error.stack : String(error)}`);
    });
    if (decision.verdict !== 'deny') {
      const done = this.releaseChain;
      this.inFlight.set(deviceId, done);
      void done.then(() => {
        if (this.inFlight.get(deviceId) === done) this.inFlight.delete(deviceId);
      });
    }
  }

  /** Marks an allowed command as released for other devices' checks until its record settles; returns the undo. */
  private reserveRelease(decision: Decision): () => void {
    const command = decision.command;
    if (command === undefined) return () => undefined;
    const deviceId = command.device.id;
    const previous = this.lastReleases.get(deviceId);
    const provisional: LastRelease = { commandId: command.commandId, action: command.action, params: command.params, releasedAtMs: decision.decidedAtMs };
    this.lastReleases.set(deviceId, provisional);
    return () => {
      if (this.lastReleases.get(deviceId) !== provisional) return;
      if (previous === undefined) this.lastReleases.delete(deviceId);
      else this.lastReleases.set(deviceId, previous);
    };
  }

  /** Waits for the command's record, then releases, holds or only reports it; runs in decision order. */
  private async settleCommand(
    decided: Decision,
    topicDeviceId: string,
    recorded: Promise<AuditReceipt | undefined>,
    undoReservation: (() => void) | undefined,
    demotion: Demotion | undefined,
  ): Promise<void> {
    let decision = decided;
    let receipt: AuditReceipt | undefined;
    try {
      receipt = await recorded;
    } catch (error) {
      const note = auditFailureReason(error);
      this.log.error(note.message);
      // SAFETY: log before act. Without a committed record nothing is released, except a safe-state command:
      // stopping is always safe, so it still passes and the failure is reported with it.
      decision =
        decision.verdict === 'allow' && decision.command?.safeState === true
          ? { ...decision, reasons: [...decision.reasons, note] }
          : { ...decision, verdict: 'deny', reasons: [...decision.reasons, note] };
    }

    let outcome = NOT_RELEASED;
    if (decision.verdict === 'allow' && decision.command !== undefined) {
      outcome = await this.release(decision, receipt);
    }
    // A release that did not happen must not count as one for other devices' shared-zone checks any more.
    if (!outcome.released) undoReservation?.();
    if (decision.verdict === 'hold' && decision.command !== undefined) await this.hold(decision, receipt);
    await this.publishDecision(decision, topicDeviceId, outcome, receipt);
    // A command denied only because its record failed counts here (its decision said allow or hold until now).
    await this.announceDemotion(decided.verdict !== 'deny' && decision.verdict === 'deny' ? this.countDenial(decision) : demotion);
  }

  metrics(): InterlockMetrics {
    const nowMs = this.options.clock.nowMs();
    return {
      timeMs: nowMs,
      decisions: { ...this.counts },
      pendingApprovals: this.approvals.list().length,
      approvalRequestsPer10Min: Object.fromEntries(this.approvals.requestsPerOperator(nowMs)),
      demotedAgents: this.trust.all().map((d) => ({ agentId: d.agentId, demotedTo: d.demotedTo, sinceMs: d.sinceMs })),
    };
  }

  private publishMetrics(): void {
    this.options.transport.publish(this.topics.metrics, JSON.stringify(this.metrics()), { qos: 0 }).catch((error: unknown) => {
      this.log.warn(`metrics not published: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private async publishDecision(decision: Decision, topicDeviceId: string, outcome: ReleaseOutcome, receipt: AuditReceipt | undefined): Promise<void> {
    this.counts[decision.verdict] += 1;
    const report = decisionReport(decision);
    const { released } = outcome;
    // An allow that was not released says why: the agent must not read `allow` as "it moved".
    const releaseProblem = outcome.released ? undefined : outcome.problem;
    const message = { ...report, released, ...(releaseProblem === undefined ? {} : { releaseProblem }), auditSeq: receipt?.seq ?? null };
    await this.options.transport.publish(this.topics.decision(topicDeviceId), JSON.stringify(message), { qos: 1 }).catch((error: unknown) => {
      this.log.warn(`decision for ${report.commandId ?? report.commandDigest} not published: ${error instanceof Error ? error.message : String(error)}`);
    });
    const event: DecisionEvent = { report, auditSeq: receipt?.seq ?? null, released, ...(releaseProblem === undefined ? {} : { releaseProblem }), topicDeviceId };
    for (const listener of this.listeners) listener(event);
  }

  /** A held command waits for an operator: kept with the device's state now, and published (retained). */
  private async hold(decision: Decision, receipt: AuditReceipt | undefined): Promise<void> {
    const command = decision.command;
    if (command === undefined) return;
    const approvers = [...this.cell.declarations.operators.values()].filter((o) => o.roles.includes('approve')).map((o) => o.id);
    const pending = this.approvals.add(
      {
        command,
        commandDigest: decision.commandDigest,
        ...(decision.commandToken === undefined ? {} : { commandToken: decision.commandToken }),
        reasons: decision.reasons,
        snapshot: this.states.latest(command.device.id)?.state,
        heldAtMs: decision.decidedAtMs,
        auditSeq: receipt?.seq ?? null,
      },
      approvers,
    );
    if (approvers.length === 0) this.log.warn(`command ${command.commandId} is held, but no operator has the approve role: it will expire`);
    await this.options.transport
      .publish(this.topics.approvalPending(pending.id), JSON.stringify(viewOf(pending)), { qos: 1, retain: true })
      .catch((error: unknown) => this.log.warn(`pending approval ${pending.id} not published: ${error instanceof Error ? error.message : String(error)}`));
  }

  /**
   * Counts a denial against an authenticated agent, synchronously so that the agent's next command (possibly already
   * being decided) sees it; returns the demotion when the declared count is reached now.
   */
  private countDenial(decision: Decision): Demotion | undefined {
    const command = decision.command;
    if (command === undefined || command.agent.kind !== 'agent' || command.safeState) return undefined;
    const before = this.trust.demotion(command.agent.id);
    let demotion: Demotion | undefined;
    try {
      demotion = this.trust.recordDenial(command.agent.id, decision.decidedAtMs);
    } catch (error) {
      // The demotion holds in memory even if it could not be stored; say so loudly.
      this.log.error(`demotion of ${command.agent.id} not stored: ${error instanceof Error ? error.message : String(error)}`);
      demotion = this.trust.demotion(command.agent.id);
    }
    return demotion !== undefined && demotion !== before ? demotion : undefined;
  }

  private async announceDemotion(demotion: Demotion | undefined): Promise<void> {
    if (demotion === undefined) return;
    this.log.warn(`agent ${demotion.agentId} demoted to ${demotion.demotedTo}: ${demotion.reason}`);
    await this.announceStanding(demotion.agentId, 'agent-demoted', { demotedTo: demotion.demotedTo, reason: demotion.reason, by: 'interlock' });
  }

  private async announceStanding(agentId: string, event: string, detail: Record<string, unknown>): Promise<void> {
    await this.recordEvent(event, { agentId, ...detail });
    const standing = this.trust.demotion(agentId) ?? null;
    await this.options.transport
      .publish(this.topics.agentTrust(agentId), JSON.stringify({ agentId, event, standing, ...detail, timeMs: this.options.clock.nowMs() }), { qos: 1, retain: true })
      .catch((error: unknown) => this.log.warn(`standing of ${agentId} not published: ${error instanceof Error ? error.message : String(error)}`));
  }

  private async expireApprovals(): Promise<void> {
    await this.releaseChain;
    const nowMs = this.options.clock.nowMs();
    for (const pending of this.approvals.expire(nowMs)) {
      const arrivedAt = performance.now();
      const minutes = this.cell.declarations.approvals.pendingTtlMs;
      await this.resolveHeld(pending, 'deny', [reason('APPROVAL_EXPIRED', `no valid answer within ${minutes} ms of the hold`, { ruleId: 'approvals/pendingFor', limit: minutes, unit: 'ms' })], { outcome: 'expired' }, undefined, arrivedAt);
    }
  }

  /** Records and publishes the final decision on a held command, and clears its retained pending message. */
  private async resolveHeld(
    pending: PendingApproval,
    verdict: 'allow' | 'deny',
    reasons: readonly Reason[],
    detail: Record<string, unknown>,
    judged?: Pick<Decision, 'mode' | 'modeBecause' | 'stateUsed'>,
    arrivedAt: number = performance.now(),
  ): Promise<{ released: boolean; decision: Decision }> {
    const { command } = pending;
    let decision: Decision = {
      verdict,
      reasons,
      commandDigest: pending.commandDigest,
      declarationsDigest: this.cell.declarations.digest,
      decidedAtMs: this.options.clock.nowMs(),
      identity: identityOf(command),
      command,
      ...(judged?.mode === undefined ? {} : { mode: judged.mode }),
      ...(judged?.modeBecause === undefined ? {} : { modeBecause: judged.modeBecause }),
      ...(judged?.stateUsed === undefined ? {} : { stateUsed: judged.stateUsed }),
      ...(pending.commandToken === undefined ? {} : { commandToken: pending.commandToken }),
    };
    let receipt: AuditReceipt | undefined;
    try {
      receipt = await this.options.audit.record(
        decisionEntry(decision, command.device.id, { ...(pending.auditSeq === null ? {} : { parentSeq: pending.auditSeq }), detail: { approvalId: pending.id, ...detail }, arrivedAt }),
      );
    } catch (error) {
      const note = auditFailureReason(error);
      this.log.error(note.message);
      // SAFETY: log before act, here as for any command: no record, no release.
      decision = { ...decision, verdict: 'deny', reasons: [...decision.reasons, note] };
    }
    let release = NOT_RELEASED;
    // Released after a human's approval: valid for one command TTL from now, as a fresh command would be.
    if (decision.verdict === 'allow') release = await this.release(decision, receipt, decision.decidedAtMs + this.cell.declarations.commandLimits.maxTtlMs);
    await this.publishDecision(decision, command.device.id, release, receipt);
    const { released } = release;
    const releaseProblem = release.released ? undefined : release.problem;
    const outcome = { approvalId: pending.id, commandDigest: pending.commandDigest, verdict: decision.verdict, released, ...(releaseProblem === undefined ? {} : { releaseProblem }), reasons: decision.reasons, ...detail };
    await this.options.transport.publish(this.topics.approvalResolved(pending.id), JSON.stringify(outcome), { qos: 1 }).catch(() => undefined);
    await this.options.transport.publish(this.topics.approvalPending(pending.id), '', { qos: 1, retain: true }).catch(() => undefined);
    return { released, decision };
  }

  /**
   * Publishes an allowed command to its actuator, signed. `expiresAtMs` overrides the command's own expiry for a
   * command released after an approval (its agent-given TTL ran out while a person looked at it).
   */
  private async release(decision: Decision, receipt: AuditReceipt | undefined, expiresAtMs?: number): Promise<ReleaseOutcome> {
    const command = decision.command;
    if (command === undefined) return NOT_RELEASED;
    const { clock, transport } = this.options;
    const released: ReleasedCommand = {
      commandId: command.commandId,
      agentId: command.agent.id,
      deviceId: command.device.id,
      action: command.action,
      params: command.params,
      safeState: command.safeState,
      // A safe-state command released without a record (audit failure) carries seq 0 and no hash; drivers
      // exempt safe-state releases from the seq order check.
      auditSeq: receipt?.seq ?? 0,
      auditHash: receipt?.hash ?? '',
      releasedAtMs: clock.nowMs(),
      expiresAtMs: expiresAtMs ?? command.expiresAtMs,
      // SAFETY: bound to the driver run whose signed state it was checked against: a restarted driver refuses it.
      session: this.reports.sessionOf(command.device.id) ?? null,
    };
    // Expected before the publish: a fast driver can answer before the broker's acknowledgement reaches us.
    this.reports.expectOutcome(command.device.id, command.commandId, { seq: receipt?.seq, action: command.action, agentId: command.agent.id });
    try {
      // SAFETY: a setpoint the device may receive is durable before it is published (see recordReleaseAhead).
      recordReleaseAhead(command.device, { action: command.action, params: command.params }, this.bounds, released.releasedAtMs);
      await transport.publish(this.topics.actuatorCommand(command.device.id), signReleasedCommand(released, this.options.signingKey), { qos: 1 });
      this.lastReleases.set(command.device.id, { commandId: command.commandId, action: command.action, params: command.params, releasedAtMs: released.releasedAtMs });

      recordRelease(command.device, { action: command.action, params: command.params }, this.bounds, released.releasedAtMs);
      return { released: true };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.error(`release of ${command.commandId} to ${command.device.id} failed: ${message}`);
      this.reports.forgetOutcome(command.device.id, command.commandId);
      await this.recordEvent('release-failed', { commandId: command.commandId, error: message }, receipt?.seq);
      return { released: false, problem: `the release could not be published (${message}); the device did not get it` };
    }
  }

  private async recordEvent(event: string, detail: Record<string, unknown>, parentSeq?: number): Promise<void> {
    try {
      await this.options.audit.record(
        eventEntry(event, detail, { timeMs: this.options.clock.nowMs(), declarationsDigest: this.cell.declarations.digest, ...(parentSeq === undefined ? {} : { parentSeq }) }),
      );
    } catch (error) {
      this.log.error(`audit event ${event} not recorded: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
