// The interlock's outbound side: signs and publishes releases to actuators, keeps held commands for an operator,
// publishes every decision, and settles held commands (approved, rejected, expired, voided). Split out of
// interlock.ts, which decides, keeps the order and owns every piece of state; this file only acts on what it is
// handed, through its host.

import type { KeyObject } from 'node:crypto';
import type { ApprovalBook, PendingApproval } from '../approvals/approval-book.js';
import { viewOf } from '../approvals/approval-book.js';
import type { AuditLog, AuditReceipt } from '../audit/audit-log.js';
import { recordRelease, recordReleaseAhead } from '../bounds/bounds.js';
import type { Clock } from '../core/clock.js';
import type { LastRelease } from '../core/device-state.js';
import type { Logger } from '../core/log.js';
import type { Reason } from '../core/reasons.js';
import type { Verdict } from '../core/verdict.js';
import type { LoadedCell } from '../declarations/load.js';
import { signReleasedCommand, type ReleasedCommand } from '../dispatch/released-command.js';
import { decisionReport, type DecisionReport } from '../pipeline/decision-report.js';
import { identityOf, type BoundsMemory, type Decision } from '../pipeline/pipeline.js';
import type { TopicSet } from '../transport/topics.js';
import type { Transport } from '../transport/transport.js';
import { auditFailureReason, decisionEntry } from './decision-entry.js';
import type { DeviceReports } from './device-reports.js';
import type { StateStore } from './state-store.js';

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
export type ReleaseOutcome = { readonly released: true } | { readonly released: false; readonly problem?: string };
export const NOT_RELEASED: ReleaseOutcome = { released: false };

/** What the desk needs of the interlock: its adapters, its state in force now, and where decisions are counted. */
export interface ReleaseDeskHost {
  readonly transport: Transport;
  readonly topics: TopicSet;
  readonly signingKey: KeyObject;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly log: Logger;
  readonly reports: DeviceReports;
  readonly bounds: BoundsMemory;
  readonly states: StateStore;
  readonly lastReleases: Map<string, LastRelease>;
  readonly cell: LoadedCell;
  readonly approvals: ApprovalBook;
  recordEvent(event: string, detail: Record<string, unknown>, parentSeq?: number): Promise<void>;
  /** A decision was published (or its publish failed): count it and tell the listeners. */
  decided(event: DecisionEvent, verdict: Verdict): void;
}

export class ReleaseDesk {
  constructor(private readonly host: ReleaseDeskHost) {}

  async publishDecision(decision: Decision, topicDeviceId: string, outcome: ReleaseOutcome, receipt: AuditReceipt | undefined): Promise<void> {
    const report = decisionReport(decision);
    const { released } = outcome;
    // An allow that was not released says why: the agent must not read `allow` as "it moved".
    const releaseProblem = outcome.released ? undefined : outcome.problem;
    const message = { ...report, released, ...(releaseProblem === undefined ? {} : { releaseProblem }), auditSeq: receipt?.seq ?? null };
    await this.host.transport.publish(this.host.topics.decision(topicDeviceId), JSON.stringify(message), { qos: 1 }).catch((error: unknown) => {
      this.host.log.warn(`decision for ${report.commandId ?? report.commandDigest} not published: ${error instanceof Error ? error.message : String(error)}`);
    });
    const event: DecisionEvent = { report, auditSeq: receipt?.seq ?? null, released, ...(releaseProblem === undefined ? {} : { releaseProblem }), topicDeviceId };
    this.host.decided(event, decision.verdict);
  }

  /** A held command waits for an operator: kept with the device's state now, and published (retained). */
  async hold(decision: Decision, receipt: AuditReceipt | undefined): Promise<void> {
    const command = decision.command;
    if (command === undefined) return;
    const approvers = [...this.host.cell.declarations.operators.values()].filter((o) => o.roles.includes('approve')).map((o) => o.id);
    const pending = this.host.approvals.add(
      {
        command,
        commandDigest: decision.commandDigest,
        ...(decision.commandToken === undefined ? {} : { commandToken: decision.commandToken }),
        reasons: decision.reasons,
        snapshot: this.host.states.latest(command.device.id)?.state,
        heldAtMs: decision.decidedAtMs,
        auditSeq: receipt?.seq ?? null,
      },
      approvers,
    );
    if (approvers.length === 0) this.host.log.warn(`command ${command.commandId} is held, but no operator has the approve role: it will expire`);
    await this.host.transport
      .publish(this.host.topics.approvalPending(pending.id), JSON.stringify(viewOf(pending)), { qos: 1, retain: true })
      .catch((error: unknown) => this.host.log.warn(`pending approval ${pending.id} not published: ${error instanceof Error ? error.message : String(error)}`));
  }

  /** Records and publishes the final decision on a held command, and clears its retained pending message. */
  async resolveHeld(
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
      declarationsDigest: this.host.cell.declarations.digest,
      decidedAtMs: this.host.clock.nowMs(),
      identity: identityOf(command),
      command,
      ...(judged?.mode === undefined ? {} : { mode: judged.mode }),
      ...(judged?.modeBecause === undefined ? {} : { modeBecause: judged.modeBecause }),
      ...(judged?.stateUsed === undefined ? {} : { stateUsed: judged.stateUsed }),
      ...(pending.commandToken === undefined ? {} : { commandToken: pending.commandToken }),
    };
    let receipt: AuditReceipt | undefined;
    try {
      receipt = await this.host.audit.record(
        decisionEntry(decision, command.device.id, { ...(pending.auditSeq === null ? {} : { parentSeq: pending.auditSeq }), detail: { approvalId: pending.id, ...detail }, arrivedAt }),
      );
    } catch (error) {
      const note = auditFailureReason(error);
      this.host.log.error(note.message);
      // SAFETY: log before act, here as for any command: no record, no release.
      decision = { ...decision, verdict: 'deny', reasons: [...decision.reasons, note] };
    }
    let release = NOT_RELEASED;
    // Released after a human's approval: valid for one command TTL from now, as a fresh command would be.
    if (decision.verdict === 'allow') release = await this.release(decision, receipt, decision.decidedAtMs + this.host.cell.declarations.commandLimits.maxTtlMs);
    await this.publishDecision(decision, command.device.id, release, receipt);
    const { released } = release;
    const releaseProblem = release.released ? undefined : release.problem;
    const outcome = { approvalId: pending.id, commandDigest: pending.commandDigest, verdict: decision.verdict, released, ...(releaseProblem === undefined ? {} : { releaseProblem }), reasons: decision.reasons, ...detail };
    await this.host.transport.publish(this.host.topics.approvalResolved(pending.id), JSON.stringify(outcome), { qos: 1 }).catch(() => undefined);
    await this.host.transport.publish(this.host.topics.approvalPending(pending.id), '', { qos: 1, retain: true }).catch(() => undefined);
    return { released, decision };
  }

  /**
   * Publishes an allowed command to its actuator, signed. `expiresAtMs` overrides the command's own expiry for a
   * command released after an approval (its agent-given TTL ran out while a person looked at it).
   */
  async release(decision: Decision, receipt: AuditReceipt | undefined, expiresAtMs?: number): Promise<ReleaseOutcome> {
    const command = decision.command;
    if (command === undefined) return NOT_RELEASED;
    const { clock, transport } = this.host;
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
      session: this.host.reports.sessionOf(command.device.id) ?? null,
    };
    // Expected before the publish: a fast driver can answer before the broker's acknowledgement reaches us.
    this.host.reports.expectOutcome(command.device.id, command.commandId, { seq: receipt?.seq, action: command.action, agentId: command.agent.id });
    try {
      // SAFETY: a setpoint the device may receive is durable before it is published (see recordReleaseAhead).
      recordReleaseAhead(command.device, { action: command.action, params: command.params }, this.host.bounds, released.releasedAtMs);
      await transport.publish(this.host.topics.actuatorCommand(command.device.id), signReleasedCommand(released, this.host.signingKey), { qos: 1 });
      this.host.lastReleases.set(command.device.id, { commandId: command.commandId, action: command.action, params: command.params, releasedAtMs: released.releasedAtMs });

      recordRelease(command.device, { action: command.action, params: command.params }, this.host.bounds, released.releasedAtMs);
      return { released: true };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.host.log.error(`release of ${command.commandId} to ${command.device.id} failed: ${message}`);
      this.host.reports.forgetOutcome(command.device.id, command.commandId);
      await this.host.recordEvent('release-failed', { commandId: command.commandId, error: message }, receipt?.seq);
      return { released: false, problem: `the release could not be published (${message}); the device did not get it` };
    }
  }
}
