// The JSON shape of a decision as agents and tools see it: on interlock/{device}/decision and from
// `interlock check`. Fields are always present (null when unknown) so consumers need no guessing.

import type { Mode } from '../core/declarations.js';
import { recordableReasons, type Reason } from '../core/reasons.js';
import type { Verdict } from '../core/verdict.js';
import type { Decision } from './pipeline.js';

export interface DecisionReport {
  readonly verdict: Verdict;
  readonly reasons: readonly Reason[];
  /** jti of the command, when it could be authenticated. */
  readonly commandId: string | null;
  readonly agentId: string | null;
  readonly deviceId: string | null;
  readonly action: string | null;
  readonly seq: number | null;
  /** The limit set (normal/reduced) the bounds were checked in; null when bounds were not checked. */
  readonly mode: Mode | null;
  /** Why the reduced limits applied, one entry per trigger (empty in normal, or when bounds were not checked). */
  readonly modeBecause: readonly string[];
  readonly commandDigest: string;
  readonly declarationsDigest: string;
  readonly decidedAtMs: number;
}

export function decisionReport(decision: Decision): DecisionReport {
  const { identity } = decision;
  return {
    verdict: decision.verdict,
    // JSON has no NaN or Infinity: such values are put in words (a reason never arrives with a silent null).
    reasons: recordableReasons(decision.reasons),
    commandId: identity.commandId ?? null,
    agentId: identity.agentId ?? null,
    deviceId: identity.deviceId ?? null,
    action: identity.action ?? null,
    seq: identity.seq ?? null,
    mode: decision.mode ?? null,
    modeBecause: decision.modeBecause ?? [],
    commandDigest: decision.commandDigest,
    declarationsDigest: decision.declarationsDigest,
    decidedAtMs: decision.decidedAtMs,
  };
}
