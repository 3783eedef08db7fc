// The running interlock: takes commands and device state from a Transport, decides with the pipeline, records
// every decision durably, and only then releases allowed commands to actuators. Nothing moves unrecorded. Releases are
// pipelined: the release chain hands each one to the transport in decision order and moves on without waiting for the
// broker's acknowledgement; only the same device's next command waits for it. Device reports are checked in
// device-reports.ts, operator messages handled in operator-channel.ts, releases, holds and decision messages sent by
// release-desk.ts, audit entries built in decision-entry.ts.

import { createHash, randomUUID, type KeyObject } from 'node:crypto';
import type { AuditLog, AuditReceipt } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/log.js';
import { reason } from '../core/reasons.js';
import type { LoadedCell } from '../declarations/load.js';
import { signHeartbeat } from '../dispatch/heartbeat.js';
import { MemoryReplayGuard, type ReplayGuard } from '../envelope/replay-guard.js';
import { BoundsMemory, evaluateCommand, type Decision } from '../pipeline/pipeline.js';
import { ApprovalBook } from '../approvals/approval-book.js';
import { TrustTracker, type Demotion, type DemotionStore } from '../trust/trust-tracker.js';
import { hintedVerifier, VerifierPool, type PreVerified } from '../crypto/verifier-pool.js';
import type { LastRelease, ReleaseView } from '../core/device-state.js';
import { auditFailureReason, decisionEntry, eventEntry } from './decision-entry.js';
import { DeviceReports } from './device-reports.js';
import { OperatorChannel } from './operator-channel.js';
import { NOT_RELEASED, ReleaseDesk, type DecisionEvent, type ReleaseOutcome } from './release-desk.js';
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

export type { DecisionEvent } from './release-desk.js';

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
  /** Per device: resolves when its latest command admitted so far is decided and, if allowed or held, settled. */
  private readonly deviceGates = new Map<string, Promise<void>>();
  /** Commands admitted and not yet decided (some waiting for their device), for idle() and stop(). */
  private readonly undecided = new Set<Promise<void>>();
  /** Settlements past the chain (waiting for a PUBACK, publishing the decision), for `settledAll`. */
  private readonly settling = new Set<Promise<void>>();
  private running = false;
  /** Denials that authenticated nobody, counted per window instead of recorded one by one (unauthenticated-denials.ts). */
  private readonly unauthenticated: UnauthenticatedDenials;
  private readonly operatorChannel: OperatorChannel;
  /** Releases, holds and decision messages go out through it (release-desk.ts). */
  private readonly desk: ReleaseDesk;

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
    this.desk = new ReleaseDesk({
      transport: options.transport,
      topics: this.topics,
      signingKey: options.signingKey,
      clock: options.clock,
      audit: options.audit,
      log: this.log,
      reports: this.reports,
      bounds: this.bounds,
      states: this.states,
      lastReleases: this.lastReleases,
      get cell() {
        return self.cell;
      },
      get approvals() {
        return self.approvals;
      },
      recordEvent: (event, detail, parentSeq) => this.recordEvent(event, detail, parentSeq),
      decided: (event, verdict) => {
        this.counts[verdict] += 1;
        for (const listener of this.listeners) listener(event);
      },
    });
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
      settled: () => this.settledAll(),
      recordEvent: (event, detail) => this.recordEvent(event, detail),
      resolveHeld: (pending, verdict, reasons, detail, judged, arrivedAt) => this.desk.resolveHeld(pending, verdict, reasons, detail, judged, arrivedAt),
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
        // The signature is checked on a worker now, while earlier commands are still being decided.
        // SAFETY: the size first, before the payload is converted, hashed or handed to a verifier.
        const tooLarge = commandPayloadProblem(payload);
        const pool = tooLarge === undefined ? this.verifier : undefined;
        const hint = pool?.verify(payload.toString('utf8'));
        this.admitCommand(topic, async (deviceFree) => {
          const verified = await hint;
          // SAFETY: a hint from the pool of replaced declarations is dropped: a kid may now name another key.
          return this.handleCommand(topic, payload, arrivedAt, deviceFree, pool === this.verifier ? verified : undefined, tooLarge);
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
    await this.drained();
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
      await this.settledAll();
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
        await this.desk.resolveHeld(pending, 'deny', [reason('APPROVAL_DECLARATIONS_CHANGED', `held under declarations ${from}, which were replaced by ${to} before an answer`, { ruleId: 'approvals/declarations' })], { outcome: 'declarations-changed' });
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
    await this.drained();
  }

  /** Every command received so far decided (including those waiting for their device) and settled. */
  private async drained(): Promise<void> {
    for (;;) {
      await this.queue;
      if (this.undecided.size > 0) {
        await Promise.all([...this.undecided]);
        continue;
      }
      await this.settledAll();
      if (this.undecided.size === 0) return;
    }
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
   * Puts a command on the decision queue once its device is free: commands for one device are decided in arrival
   * order, each after the previous one's release is known to have happened or not (its PUBACK); a command waiting for
   * that does not hold up other devices' commands, which are decided meanwhile in arrival order.
   */
  private admitCommand(topic: string, decide: (deviceFree: () => void) => Promise<void>): void {
    const deviceId = this.topics.deviceOfCommandTopic(topic) ?? '';
    const previous = this.deviceGates.get(deviceId);
    let deviceFree = (): void => undefined;
    const free = new Promise<void>((resolve) => {
      deviceFree = resolve;
    });
    this.deviceGates.set(deviceId, free);
    void free.then(() => {
      if (this.deviceGates.get(deviceId) === free) this.deviceGates.delete(deviceId);
    });
    const enqueue = (): Promise<void> => {
      this.queue = this.queue
        .then(() => decide(deviceFree))
        .catch((error: unknown) => {
          deviceFree();
          this.log.error(`command handling failed: ${error instanceof Error ? error.stack : String(error)}`);
        });
      return this.queue;
    };
    const admitted = previous === undefined ? enqueue() : previous.then(enqueue);
    // Until it is decided, the command is waiting here: idle() and stop() wait for it too.
    this.undecided.add(admitted);
    void admitted.then(() => this.undecided.delete(admitted));
  }

  /**
   * Decides one command on the decision queue and hands it to the release chain without waiting for its record to
   * commit, so that commands arriving together share one audit transaction (group commit). What the next decision
   * must see of this one is settled first: a command for a device whose previous allow or hold is still in flight
   * waited for it before it came onto the queue (admitCommand: per-device memory, approval room), and an allow in
   * flight counts as released for every other device's shared-zone checks, which can only make those stricter.
   * `deviceFree` lets the device's next command in: at once for a denial, once settled for an allow or a hold.
   */
  private async handleCommand(topic: string, payload: Buffer, arrivedAt: number, deviceFree: () => void, hint?: PreVerified, tooLarge?: string): Promise<void> {
    const topicDeviceId = this.topics.deviceOfCommandTopic(topic);
    if (topicDeviceId === undefined) {
      deviceFree();
      this.log.warn(`command on unusable topic ${JSON.stringify(topic)} ignored`);
      return;
    }
    // SAFETY: admitCommand let this command in only once the device's previous command was released (or known not
    // to be), so it is checked against the device's last release and its kind memory as they are.
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
    const reservation = decision.verdict === 'allow' && decision.command !== undefined ? this.reserveRelease(decision) : undefined;
    // A denial counts now, so the agent's next command (perhaps already queued) is decided with it.
    const demotion = decision.verdict === 'deny' ? this.countDenial(decision) : undefined;
    const decided = decision;
    // The device's next command waits (admitCommand) until this one's release is known to have happened or not; a
    // denial frees it at once.
    if (decision.verdict === 'deny') deviceFree();
    const step = this.releaseChain.then(() => this.startSettlement(decided, topicDeviceId, recorded, reservation, demotion, deviceFree));
    this.releaseChain = step.catch((error: unknown) => {
      deviceFree();
      this.log.error(`command settlement failed: ${error instanceof Error ? error.stack : String(error)}`);
    });
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

  /**
   * On the release chain, in decision order: waits for the command's record, then hands its release (or its hold) to
   * the transport, which sends in call order. The chain then moves on: the broker's acknowledgement, the decision
   * message and any demotion follow in `finishSettlement`, so no command waits for an earlier one's PUBACK.
   */
  private async startSettlement(
    decided: Decision,
    topicDeviceId: string,
    recorded: Promise<AuditReceipt | undefined>,
    undoReservation: (() => void) | undefined,
    demotion: Demotion | undefined,
    deviceFree: () => void,
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
    if (decision.verdict !== 'deny') {
      try {
        // SAFETY: the replay memory of this command (and of everything decided before it) is written before it can
        // move: a restart must still refuse it if sent again. The store batches its writes; this is cheap when done.
        this.replay.persist?.();
      } catch (error) {
        const message = `the replay memory could not be written, so the command is not released: ${error instanceof Error ? error.message : String(error)}`;
        this.log.error(message);
        const note = reason('INTERNAL_ERROR', message);
        // As for an audit failure: a stop is always safe to release.
        decision =
          decision.verdict === 'allow' && decision.command?.safeState === true
            ? { ...decision, reasons: [...decision.reasons, note] }
            : { ...decision, verdict: 'deny', reasons: [...decision.reasons, note] };
      }
    }
    // Both start synchronously: the release is signed and handed to the transport, the hold enters the approval book.
    const release = decision.verdict === 'allow' && decision.command !== undefined ? this.desk.release(decision, receipt) : undefined;
    const held = decision.verdict === 'hold' && decision.command !== undefined ? this.desk.hold(decision, receipt) : undefined;
    const final = decision;
    this.track(this.finishSettlement(decided, final, topicDeviceId, receipt, release, held, undoReservation, demotion, deviceFree));
  }

  /** Off the chain: waits for the release's acknowledgement, then publishes the decision and any demotion. */
  private async finishSettlement(
    decided: Decision,
    decision: Decision,
    topicDeviceId: string,
    receipt: AuditReceipt | undefined,
    release: Promise<ReleaseOutcome> | undefined,
    held: Promise<void> | undefined,
    undoReservation: (() => void) | undefined,
    demotion: Demotion | undefined,
    deviceFree: () => void,
  ): Promise<void> {
    try {
      const outcome = release === undefined ? NOT_RELEASED : await release;
      // A release that did not happen must not count as one for other devices' shared-zone checks any more.
      if (!outcome.released) undoReservation?.();
      await held;
      const published = this.desk.publishDecision(decision, topicDeviceId, outcome, receipt);
      // The device's next command may be decided now: this one's release is settled and its decision is on its way
      // (sent before anything the next one publishes on the same topic).
      deviceFree();
      await published;
      // A command denied only because its record failed counts here (its decision said allow or hold until now).
      await this.announceDemotion(decided.verdict !== 'deny' && decision.verdict === 'deny' ? this.countDenial(decision) : demotion);
    } finally {
      deviceFree();
    }
  }

  /** Keeps a settlement running off the chain so that `settledAll` (idle, stop, declaration changes) can wait for it. */
  private track(settling: Promise<void>): void {
    const tracked = settling.catch((error: unknown) => {
      this.log.error(`command settlement failed: ${error instanceof Error ? error.stack : String(error)}`);
    });
    this.settling.add(tracked);
    void tracked.then(() => this.settling.delete(tracked));
  }

  /** Resolves once every command handed to the release chain so far is settled, acknowledgements included. */
  private async settledAll(): Promise<void> {
    await this.releaseChain;
    while (this.settling.size > 0) await Promise.all([...this.settling]);
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
    // Holds enter the book on the release chain; with none due, the queue does not wait for acknowledgements.
    await this.releaseChain;
    if (!this.approvals.list().some((pending) => !(this.options.clock.nowMs() < pending.expiresAtMs))) return;
    // An expiry's decision follows the hold's own decision message on the device's topic.
    await this.settledAll();
    const nowMs = this.options.clock.nowMs();
    for (const pending of this.approvals.expire(nowMs)) {
      const arrivedAt = performance.now();
      const minutes = this.cell.declarations.approvals.pendingTtlMs;
      await this.desk.resolveHeld(pending, 'deny', [reason('APPROVAL_EXPIRED', `no valid answer within ${minutes} ms of the hold`, { ruleId: 'approvals/pendingFor', limit: minutes, unit: 'ms' })], { outcome: 'expired' }, undefined, arrivedAt);
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
