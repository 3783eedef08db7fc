// Builds the audit entries of the interlock's decisions and events: what a decision record holds (the command as
// received, the state it was checked against with its age, the time it took, the links to its hold), and the reason
// a failed write becomes. Pure: it records nothing itself, and never changes a decision.

import type { AuditEntry } from '../audit/audit-log.js';
import { reason, recordableReasons, type Reason } from '../core/reasons.js';
import type { UsedState } from '../pipeline/consulted-state.js';
import type { Decision } from '../pipeline/pipeline.js';

/** What a decision entry adds to the decision itself. */
export interface DecisionEntryExtra {
  /** The record this decision answers (the hold an approval, rejection or expiry resolves). */
  readonly parentSeq?: number;
  readonly detail?: Record<string, unknown>;
  /** performance.now() when the message that led to this decision arrived (the command, or the operator's answer). */
  readonly arrivedAt?: number;
  /** performance.now() when the verdict was reached (default: now). */
  readonly decidedAt?: number;
}

/** The audit entry of a decision on a command (the first one, or the one that answers a hold). */
export function decisionEntry(decision: Decision, topicDeviceId: string, extra: DecisionEntryExtra = {}): AuditEntry {
  const state = decision.stateUsed === undefined ? undefined : stateRecord(decision.stateUsed, decision.decidedAtMs);
  return {
    kind: 'decision',
    timeMs: decision.decidedAtMs,
    commandDigest: decision.commandDigest,
    declarationsDigest: decision.declarationsDigest,
    verdict: decision.verdict,
    // SAFETY: every reason recordable: a value JSON cannot carry would make the audit log refuse the whole record.
    reasons: recordableReasons(decision.reasons),
    ...(decision.identity.commandId === undefined ? {} : { commandId: decision.identity.commandId }),
    ...(decision.identity.agentId === undefined ? {} : { agentId: decision.identity.agentId }),
    ...(decision.identity.action === undefined ? {} : { action: decision.identity.action }),
    deviceId: decision.identity.deviceId ?? topicDeviceId,
    ...(decision.command?.trace === undefined ? {} : { trace: decision.command.trace }),
    ...(extra.parentSeq === undefined ? {} : { parentSeq: extra.parentSeq }),
    // The exact bytes the agent signed: what the machine was told, re-checkable by anyone with the agent's key.
    ...(decision.commandToken === undefined ? {} : { commandToken: decision.commandToken }),
    ...(state === undefined || Object.keys(state).length === 0 ? {} : { state }),
    ...(extra.arrivedAt === undefined ? {} : { decisionUs: elapsedUs(extra.arrivedAt, extra.decidedAt ?? performance.now()) }),
    // Shadow mode: the candidate policy set's verdict is recorded beside the enforced one, never acted on.
    ...(extra.detail === undefined && decision.shadow === undefined
      ? {}
      : { detail: { ...extra.detail, ...(decision.shadow === undefined ? {} : { shadow: { ...decision.shadow, reasons: recordableReasons(decision.shadow.reasons) } }) } }),
  };
}

/** Whole microseconds between two performance.now() readings (never negative). */
export function elapsedUs(fromMs: number, toMs: number): number {
  const us = Math.round((toMs - fromMs) * 1000);
  return Number.isFinite(us) && us > 0 ? us : 0;
}

/**
 * The state a decision read, one entry per field: `<device>/<field>` (`people` for what its sensors see) with the
 * value and its age at the decision (decision time minus the interlock's receive time).
 */
export function stateRecord(used: readonly UsedState[], decidedAtMs: number): Record<string, { value: unknown; ageMs: number }> {
  const record: Record<string, { value: unknown; ageMs: number }> = {};
  for (const { deviceId, observed } of used) {
    const ageMs = decidedAtMs - observed.receivedAtMs;
    for (const [field, value] of Object.entries(observed.state)) {
      // The kind is the device's declaration, not something it reported.
      if (field === 'kind' || value === undefined) continue;
      record[`${deviceId}/${field}`] = { value: recordableValue(value), ageMs };
    }
    if (observed.people !== undefined) record[`${deviceId}/people`] = { value: recordableValue(observed.people), ageMs };
  }
  return record;
}

/**
 * The value with every number JSON cannot carry (an overflowing 1e400 parses to Infinity) written as its words, so
 * that a driver's odd value can never make the decision's record unrecordable.
 */
export function recordableValue(value: unknown): unknown {
  // SAFETY: canonical JSON refuses non-finite numbers; the audit log would refuse the whole record.
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (Array.isArray(value)) return value.map(recordableValue);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, recordableValue(v)]));
  return value;
}

/** The audit entry of an interlock event; with a parent it is an outcome of that record (a failed release). */
export function eventEntry(event: string, detail: Record<string, unknown>, at: { timeMs: number; declarationsDigest: string; parentSeq?: number }): AuditEntry {
  return {
    kind: at.parentSeq === undefined ? 'event' : 'outcome',
    timeMs: at.timeMs,
    declarationsDigest: at.declarationsDigest,
    detail: { event, ...detail },
    ...(at.parentSeq === undefined ? {} : { parentSeq: at.parentSeq }),
  };
}

/** The audit log's failure codes, each a reason code of its own; anything else is AUDIT_WRITE_FAILED. */
const AUDIT_FAILURE_CODES = ['AUDIT_LOG_FULL', 'AUDIT_DISK_FULL', 'AUDIT_OUTCOME_UNKNOWN', 'AUDIT_UNAVAILABLE'] as const;

/** Why a decision's record failed, as the reason an agent and the audit trail see. */
export function auditFailureReason(error: unknown): Reason {
  const message = `audit write failed: ${error instanceof Error ? error.message : String(error)}`;
  const code = error instanceof Error ? (error as Error & { code?: unknown }).code : undefined;
  const known = AUDIT_FAILURE_CODES.find((c) => c === code);
  return reason(known ?? 'AUDIT_WRITE_FAILED', message);
}
