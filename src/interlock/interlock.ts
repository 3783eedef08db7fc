// The running interlock: takes commands and device state from a Transport, decides with the pipeline, records
// every decision durably, and only then releases allowed commands to actuators. Nothing moves unrecorded.

import type { KeyObject } from 'node:crypto';
import type { AuditLog, AuditReceipt } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/log.js';
import { reason } from '../core/reasons.js';
import type { LoadedCell } from '../declarations/load.js';
import { signReleasedCommand, type ReleasedCommand } from '../dispatch/released-command.js';
import { MemoryReplayGuard, type ReplayGuard } from '../envelope/replay-guard.js';
import { decisionReport, type DecisionReport } from '../pipeline/decision-report.js';
import { BoundsMemory, evaluateCommand, type Decision } from '../pipeline/pipeline.js';
import type { LastRelease, ReleaseView } from '../core/device-state.js';
import { observeDeviceState, recordRelease } from '../bounds/bounds.js';
import { stateTriggers } from '../bounds/modes.js';
import { peopleInCell } from '../bounds/people.js';
import type { Subscription, Transport } from '../transport/transport.js';
import { topicSet, type TopicSet } from '../transport/topics.js';
import { parseDeviceState, StateStore } from './state-store.js';

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
}

/** What the live view and tests see for each command handled. */
export interface DecisionEvent {
  readonly report: DecisionReport;
  /** The audit record of the decision, when it was committed. */
  readonly auditSeq: number | null;
  /** True when the command was published to the actuator topic. */
  readonly released: boolean;
  readonly topicDeviceId: string;
}

export type DecisionListener = (event: DecisionEvent) => void;

export class Interlock {
  readonly states = new StateStore();
  /** Rate windows and mode hysteresis; `bounds.modes.setOperatorMode` is the operator's mode switch. */
  readonly bounds = new BoundsMemory();
  private readonly lastReleases = new Map<string, LastRelease>();
  private readonly lastStateWarnings = new Map<string, { problem: string; atMs: number }>();
  private readonly releases: ReleaseView = { last: (deviceId) => this.lastReleases.get(deviceId) };
  private readonly replay: ReplayGuard;
  private readonly topics: TopicSet;
  private readonly log: Logger;
  private readonly listeners = new Set<DecisionListener>();
  private subscriptions: Subscription[] = [];
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatSeq = 0;
  /** Commands are handled one at a time in arrival order, so audit order is decision order. */
  private queue: Promise<void> = Promise.resolve();
  private running = false;

  constructor(private readonly options: InterlockOptions) {
    this.topics = options.topics ?? topicSet();
    this.log = options.log ?? silentLogger;
    this.replay = new MemoryReplayGuard(() => options.clock.nowMs());
  }

  onDecision(listener: DecisionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    const { transport, cell } = this.options;
    this.running = true;
    this.log.info(`cell ${cell.declarations.cellId}, declarations digest ${cell.declarations.digest}, policies ${cell.policies.policyIds.join(', ')}`);
    await this.recordEvent('interlock-started', { declarationsDigest: cell.declarations.digest, transport: transport.name });
    this.subscriptions.push(await transport.subscribe(this.topics.stateFilter, (topic, payload) => this.onState(topic, payload)));
    this.subscriptions.push(
      await transport.subscribe(this.topics.commandFilter, (topic, payload) => {
        this.queue = this.queue.then(() => this.handleCommand(topic, payload)).catch((error: unknown) => {
          this.log.error(`command handling failed: ${error instanceof Error ? error.stack : String(error)}`);
        });
      }),
    );
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
    const subscriptions = this.subscriptions;
    this.subscriptions = [];
    await Promise.allSettled(subscriptions.map((s) => s.unsubscribe()));
    await this.queue;
    await this.recordEvent('interlock-stopped', {});
  }

  /** Resolves when every command received so far has been handled. */
  idle(): Promise<void> {
    return this.queue;
  }

  private beat(): void {
    this.heartbeatSeq += 1;
    const payload = JSON.stringify({ seq: this.heartbeatSeq, timeMs: this.options.clock.nowMs() });
    this.options.transport.publish(this.topics.heartbeat, payload, { qos: 0 }).catch((error: unknown) => {
      this.log.warn(`heartbeat not sent: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private onState(topic: string, payload: Buffer): void {
    const deviceId = this.topics.deviceOfStateTopic(topic);
    const device = deviceId === undefined ? undefined : this.options.cell.declarations.devices.get(deviceId);
    if (deviceId === undefined || device === undefined) return; // not a device of this cell
    const parsed = parseDeviceState(device, payload);
    if (parsed.ok) {
      const nowMs = this.options.clock.nowMs();
      this.states.update(deviceId, parsed.observed, nowMs);
      observeDeviceState(device, parsed.observed.state, this.bounds, nowMs);
      if (parsed.observed.people !== undefined) this.observePeople(nowMs);
    } else {
      // SAFETY: a garbled state message also voids the previous state; stateful checks then deny.
      this.states.discard(deviceId);
      this.warnStateProblem(deviceId, parsed.problem);
    }
  }

  /** A driver sending bad state does so 50 times a second: log a problem when it changes, or every 10 s. */
  private warnStateProblem(deviceId: string, problem: string): void {
    const nowMs = this.options.clock.nowMs();
    const last = this.lastStateWarnings.get(deviceId);
    if (last !== undefined && last.problem === problem && nowMs - last.atMs < 10_000) return;
    this.lastStateWarnings.set(deviceId, { problem, atMs: nowMs });
    this.log.warn(`state from ${deviceId} rejected (the device has no usable state until a valid one arrives): ${problem}`);
  }

  /** People moved: let each device's mode hysteresis see it now, not only when its next command arrives. */
  private observePeople(nowMs: number): void {
    const { declarations } = this.options.cell;
    const people = peopleInCell(declarations.people, this.states, nowMs);
    for (const device of declarations.devices.values()) {
      this.bounds.modes.observe(device, stateTriggers(device, people, declarations.zones), nowMs);
    }
  }

  private async handleCommand(topic: string, payload: Buffer): Promise<void> {
    const topicDeviceId = this.topics.deviceOfCommandTopic(topic);
    if (topicDeviceId === undefined) {
      this.log.warn(`command on unusable topic ${JSON.stringify(topic)} ignored`);
      return;
    }
    const { clock, cell } = this.options;
    let decision: Decision = evaluateCommand(
      { token: payload.toString('utf8'), topicDeviceId },
      { cell, replay: this.replay, states: this.states, releases: this.releases, bounds: this.bounds },
      clock.nowMs(),
    );
    let receipt: AuditReceipt | undefined;
    try {
      receipt = await this.options.audit.record({
        kind: 'decision',
        timeMs: decision.decidedAtMs,
        commandDigest: decision.commandDigest,
        declarationsDigest: decision.declarationsDigest,
        verdict: decision.verdict,
        reasons: decision.reasons,
        ...(decision.identity.commandId === undefined ? {} : { commandId: decision.identity.commandId }),
        ...(decision.identity.agentId === undefined ? {} : { agentId: decision.identity.agentId }),
        ...(decision.identity.action === undefined ? {} : { action: decision.identity.action }),
        deviceId: decision.identity.deviceId ?? topicDeviceId,
        ...(decision.command?.trace === undefined ? {} : { trace: decision.command.trace }),
      });
    } catch (error) {
      const message = `audit write failed: ${error instanceof Error ? error.message : String(error)}`;
      this.log.error(message);
      const note = reason('AUDIT_WRITE_FAILED', message);
      // SAFETY: log before act. Without a committed record nothing is released, except a safe-state command:
      // stopping is always safe, so it still passes and the failure is reported with it.
      decision =
        decision.verdict === 'allow' && decision.command?.safeState === true
          ? { ...decision, reasons: [...decision.reasons, note] }
          : { ...decision, verdict: 'deny', reasons: [...decision.reasons, note] };
    }

    let released = false;
    if (decision.verdict === 'allow' && decision.command !== undefined) {
      released = await this.release(decision, receipt);
    }
    const report = decisionReport(decision);
    const message = { ...report, released, auditSeq: receipt?.seq ?? null };
    await this.options.transport.publish(this.topics.decision(topicDeviceId), JSON.stringify(message), { qos: 1 }).catch((error: unknown) => {
      this.log.warn(`decision for ${report.commandId ?? report.commandDigest} not published: ${error instanceof Error ? error.message : String(error)}`);
    });
    const event: DecisionEvent = { report, auditSeq: receipt?.seq ?? null, released, topicDeviceId };
    for (const listener of this.listeners) listener(event);
  }

  private async release(decision: Decision, receipt: AuditReceipt | undefined): Promise<boolean> {
    const command = decision.command;
    if (command === undefined) return false;
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
      expiresAtMs: command.expiresAtMs,
    };
    try {
      await transport.publish(this.topics.actuatorCommand(command.device.id), signReleasedCommand(released, this.options.signingKey), { qos: 1 });
      this.lastReleases.set(command.device.id, { commandId: command.commandId, action: command.action, params: command.params, releasedAtMs: released.releasedAtMs });
      recordRelease(command.device, { action: command.action, params: command.params }, this.bounds, released.releasedAtMs);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.log.error(`release of ${command.commandId} to ${command.device.id} failed: ${message}`);
      await this.recordEvent('release-failed', { commandId: command.commandId, error: message }, receipt?.seq);
      return false;
    }
  }

  private async recordEvent(event: string, detail: Record<string, unknown>, parentSeq?: number): Promise<void> {
    try {
      await this.options.audit.record({
        kind: parentSeq === undefined ? 'event' : 'outcome',
        timeMs: this.options.clock.nowMs(),
        declarationsDigest: this.options.cell.declarations.digest,
        detail: { event, ...detail },
        ...(parentSeq === undefined ? {} : { parentSeq }),
      });
    } catch (error) {
      this.log.error(`audit event ${event} not recorded: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
