// The operator channel: signed operator messages in (approve, reject, restore, quarantine, set_mode), checked,
// acted on through the interlock, and answered on the result topic. Split out of interlock.ts; the interlock is its
// host and keeps every piece of state (approvals, trust, bounds), so nothing here outlives a decision.

import { createHash } from 'node:crypto';
import type { ApprovalBook, PendingApproval } from '../approvals/approval-book.js';
import { stateDrift } from '../approvals/drift.js';
import type { BoundsMemory } from '../bounds/bounds.js';
import type { Clock } from '../core/clock.js';
import type { ReleaseView } from '../core/device-state.js';
import type { Logger } from '../core/log.js';
import { reason, type Reason } from '../core/reasons.js';
import type { LoadedCell } from '../declarations/load.js';
import type { ReplayGuard } from '../envelope/replay-guard.js';
import { verifyOperatorMessage, type OperatorMessage } from '../operator/operator-message.js';
import { judgeCommand, type Decision } from '../pipeline/pipeline.js';
import type { TopicSet } from '../transport/topics.js';
import type { Transport } from '../transport/transport.js';
import { operatorMessagePayloadProblem } from '../transport/payload-limits.js';
import type { Demotion, TrustTracker } from '../trust/trust-tracker.js';
import type { StateStore } from './state-store.js';

/** What the operator channel needs of the interlock: its state in force now, and the steps it shares. */
export interface OperatorHost {
  readonly cell: LoadedCell;
  readonly approvals: ApprovalBook;
  readonly trust: TrustTracker;
  readonly bounds: BoundsMemory;
  readonly states: StateStore;
  readonly releases: ReleaseView;
  readonly replay: ReplayGuard;
  readonly clock: Clock;
  readonly transport: Transport;
  readonly topics: TopicSet;
  readonly log: Logger;
  /** Resolves once every command decided so far has been recorded and released (operator actions act on them). */
  settled(): Promise<void>;
  recordEvent(event: string, detail: Record<string, unknown>): Promise<void>;
  /** Records and publishes the final decision on a held command, releasing it on allow. */
  /** `arrivedAt`: performance.now() when the message that resolves it arrived (for the record's decisionUs). */
  resolveHeld(
    pending: PendingApproval,
    verdict: 'allow' | 'deny',
    reasons: readonly Reason[],
    detail: Record<string, unknown>,
    judged?: Pick<Decision, 'mode' | 'modeBecause' | 'stateUsed'>,
    arrivedAt?: number,
  ): Promise<{ released: boolean; decision: Decision }>;
  announceStanding(agentId: string, event: string, detail: Record<string, unknown>): Promise<void>;
}

type OperatorResult = { ok: boolean; problem?: string; [key: string]: unknown };

export class OperatorChannel {
  constructor(private readonly host: OperatorHost) {}

  async handle(payload: Buffer, arrivedAt: number = performance.now()): Promise<void> {
    // Operator actions act on what earlier commands did: let every decided command settle first.
    await this.host.settled();
    const { clock } = this.host;
    const cell = this.host.cell;
    const nowMs = clock.nowMs();
    // SAFETY: the size first, before the payload is converted or hashed.
    const tooLarge = operatorMessagePayloadProblem(payload);
    if (tooLarge !== undefined) {
      this.host.log.warn(`operator message refused: ${tooLarge}`);
      await this.host.recordEvent('operator-message-refused', { problem: tooLarge, payloadBytes: payload.length });
      await this.answerOperator({ ok: false, problem: tooLarge });
      return;
    }
    const token = payload.toString('utf8');
    // Every answer names the message by its digest, so a sender can match even a refusal that has no jti yet.
    const messageDigest = createHash('sha256').update(token, 'utf8').digest('hex');
    let verified: ReturnType<typeof verifyOperatorMessage>;
    try {
      verified = verifyOperatorMessage(token, { declarations: cell.declarations, replay: this.host.replay, maxTtlMs: cell.declarations.approvals.maxAnswerTtlMs, nowMs });
      // SAFETY: an accepted message is remembered on disk before anything is done on its strength.
      if (verified.ok) this.host.replay.persist?.();
    } catch (error) {
      // SAFETY: a message that cannot be checked (the replay memory is broken) is refused, and the sender told so.
      verified = { ok: false, problem: `the message cannot be checked: ${error instanceof Error ? error.message : String(error)}` };
      this.host.log.error(`operator message not checked: ${verified.problem}`);
    }
    if (!verified.ok) {
      this.host.log.warn(`operator message refused: ${verified.problem}`);
      await this.host.recordEvent('operator-message-refused', { messageDigest, problem: verified.problem, ...(verified.operatorId === undefined ? {} : { operatorId: verified.operatorId }) });
      await this.answerOperator({ messageDigest, ok: false, problem: verified.problem });
      return;
    }
    const message = verified.message;
    const result = await this.actOnOperator(message, nowMs, arrivedAt);
    await this.answerOperator({ messageDigest, jti: message.jti, operatorId: message.operator.id, action: message.request.action, ...result });
  }

  private async answerOperator(result: Record<string, unknown>): Promise<void> {
    await this.host.transport.publish(this.host.topics.operatorResult, JSON.stringify(result), { qos: 1 }).catch((error: unknown) => {
      this.host.log.warn(`operator result not published: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private async actOnOperator(message: OperatorMessage, nowMs: number, arrivedAt: number): Promise<OperatorResult> {
    const { request, operator } = message;
    const by = { operatorId: operator.id, operatorName: operator.owner, messageDigest: message.digest };
    switch (request.action) {
      case 'approve':
      case 'reject': {
        const pending = this.host.approvals.get(request.approvalId);
        if (pending === undefined) {
          const problem = `no pending approval ${request.approvalId} (answered, expired, or never held)`;
          await this.host.recordEvent('approval-answer-refused', { ...by, approvalId: request.approvalId, problem });
          return { ok: false, problem };
        }
        // SAFETY: the answer binds the exact command; an approval of another command releases nothing.
        if (request.commandDigest !== pending.commandDigest) {
          const problem = `the answer names command ${request.commandDigest}, but approval ${pending.id} holds ${pending.commandDigest}`;
          await this.host.recordEvent('approval-answer-refused', { ...by, approvalId: pending.id, problem });
          return { ok: false, problem };
        }
        this.host.approvals.take(pending.id);
        const note = request.note === undefined ? {} : { note: request.note };
        if (request.action === 'reject') {
          const { decision } = await this.host.resolveHeld(pending, 'deny', [reason('APPROVAL_REJECTED', `rejected by operator ${operator.id}${request.note === undefined ? '' : `: ${request.note}`}`, { ruleId: `operator/${operator.id}` })], { outcome: 'rejected', ...by, ...note }, undefined, arrivedAt);
          return { ok: true, approvalId: pending.id, verdict: 'deny', released: false, reasons: decision.reasons };
        }
        return this.approve(pending, message, nowMs, { ...by, ...note }, arrivedAt);
      }
      case 'restore_agent': {
        if (!this.host.cell.declarations.agents.has(request.agent)) return { ok: false, problem: `no agent ${request.agent} is declared` };
        let previous: Demotion | undefined;
        try {
          previous = this.host.trust.restore(request.agent);
        } catch (error) {
          const problem = `restore not stored, the agent stays demoted: ${error instanceof Error ? error.message : String(error)}`;
          this.host.log.error(problem);
          return { ok: false, problem };
        }
        if (previous === undefined) return { ok: false, problem: `agent ${request.agent} is not demoted` };
        await this.host.announceStanding(request.agent, 'agent-restored', { ...by, previous: previous.demotedTo, ...(request.note === undefined ? {} : { note: request.note }) });
        return { ok: true, agent: request.agent };
      }
      case 'quarantine_agent': {
        if (!this.host.cell.declarations.agents.has(request.agent)) return { ok: false, problem: `no agent ${request.agent} is declared` };
        try {
          this.host.trust.demote(request.agent, 'quarantine', `quarantined by operator ${operator.id}: ${request.reason}`, nowMs);
        } catch (error) {
          this.host.log.error(`quarantine of ${request.agent} not stored (in force in this run): ${error instanceof Error ? error.message : String(error)}`);
        }
        await this.host.announceStanding(request.agent, 'agent-demoted', { ...by, demotedTo: 'quarantine', reason: request.reason });
        return { ok: true, agent: request.agent };
      }
      case 'set_mode': {
        if (!this.host.cell.declarations.devices.has(request.device)) return { ok: false, problem: `no device ${request.device} is declared` };
        try {
          this.host.bounds.setOperatorMode(request.device, request.mode === 'reduced' ? 'reduced' : undefined, nowMs);
        } catch (error) {
          // SAFETY: only auto can fail here, and then nothing changed: the device stays in reduced mode.
          const problem = `mode not stored, ${request.device} stays in reduced mode: ${error instanceof Error ? error.message : String(error)}`;
          this.host.log.error(problem);
          return { ok: false, problem };
        }
        await this.host.recordEvent('operator-mode', { ...by, deviceId: request.device, mode: request.mode });
        return { ok: true, device: request.device, mode: request.mode };
      }
    }
  }

  /**
   * An operator approved a held command. The approval is void if the device's state drifted beyond the declared
   * tolerances since the hold; otherwise policy and bounds are checked again, now, with approved = true.
   */
  private async approve(pending: PendingApproval, message: OperatorMessage, nowMs: number, by: Record<string, unknown>, arrivedAt: number): Promise<OperatorResult> {
    const { command } = pending;
    const cell = this.host.cell;
    const observed = this.host.states.latest(command.device.id);
    const current = observed?.state;
    const tolerances = cell.declarations.approvals.drift.get(command.device.id) ?? [];
    const drift =
      pending.snapshot === undefined || current === undefined
        ? [{ field: 'state', message: pending.snapshot === undefined ? 'no device state was known at the hold' : 'no device state is known now' }]
        : stateDrift(pending.snapshot, current, tolerances);
    if (drift.length > 0) {
      const reasons = drift.map((d) =>
        reason('APPROVAL_STATE_DRIFT', `approval void: ${d.message}`, {
          ruleId: `approvals/stateDrift/${command.device.id}`,
          path: `/state/${d.field}`,
          ...(d.limit === undefined ? {} : { limit: d.limit }),
          ...(d.actual === undefined ? {} : { actual: d.actual }),
        }),
      );
      const { decision } = await this.host.resolveHeld(pending, 'deny', reasons, { outcome: 'void', ...by }, observed === undefined ? undefined : { stateUsed: [{ deviceId: command.device.id, observed }] }, arrivedAt);
      return { ok: true, approvalId: pending.id, verdict: 'deny', released: false, reasons: decision.reasons, problem: 'the state drifted since the hold' };
    }
    const judged = judgeCommand(command, { cell, replay: this.host.replay, states: this.host.states, releases: this.host.releases, bounds: this.host.bounds, trust: this.host.trust }, nowMs, true);
    if (judged.verdict !== 'allow') {
      const reasons = [reason('APPROVAL_RECHECK_FAILED', `approved by ${message.operator.id}, but the command no longer passes`, { ruleId: `operator/${message.operator.id}` }), ...judged.reasons];
      const { decision } = await this.host.resolveHeld(pending, 'deny', reasons, { outcome: 'recheck-failed', ...by }, judged, arrivedAt);
      return { ok: true, approvalId: pending.id, verdict: 'deny', released: false, reasons: decision.reasons, problem: 'the command no longer passes' };
    }
    const reasons = [reason('APPROVAL_GRANTED', `approved by operator ${message.operator.id} and checked again against the current state`, { ruleId: `operator/${message.operator.id}` }), ...judged.reasons];
    const { released, decision } = await this.host.resolveHeld(pending, 'allow', reasons, { outcome: 'approved', ...by }, judged, arrivedAt);
    return { ok: true, approvalId: pending.id, verdict: decision.verdict, released, reasons: decision.reasons };
  }
}
