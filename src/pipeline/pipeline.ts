// The decision pipeline in its fixed order: envelope -> policy -> bounds -> decide. Pure and synchronous
// (state and replay memory are injected); any exception becomes a deny. It never actuates or records.

import { createHash } from 'node:crypto';
import type { VerifiedCommand } from '../core/command.js';
import type { Mode } from '../core/declarations.js';
import type { ReleaseView, StateView } from '../core/device-state.js';
import { reason, type Reason } from '../core/reasons.js';
import { decide, PASS, type StageResult, type Verdict } from '../core/verdict.js';
import { BoundsMemory, checkBounds, currentMode } from '../bounds/bounds.js';
import { peopleInCell } from '../bounds/people.js';
import type { LoadedCell } from '../declarations/load.js';
import { checkEnvelope, type EnvelopeIdentity } from '../envelope/envelope.js';
import type { ReplayGuard } from '../envelope/replay-guard.js';
import { ConsultedStates, type UsedState } from './consulted-state.js';

export interface PipelineContext {
  readonly cell: LoadedCell;
  readonly replay: ReplayGuard;
  readonly states: StateView;
  /** The last command released to each device; offline, an empty view. */
  readonly releases: ReleaseView;
  /** Rate windows and mode hysteresis, kept across commands. */
  readonly bounds: BoundsMemory;
  /** Which agents are demoted; offline and in tests, nobody. */
  readonly trust?: TrustView;
}

/** An agent's standing after demotions; each field, when set, says why. */
export interface AgentStanding {
  readonly quarantined?: string;
  readonly reduced?: string;
}

export interface TrustView {
  standing(agentId: string): AgentStanding;
}

/** Nobody demoted: for offline checks and tests. */
export const FULL_TRUST: TrustView = { standing: () => ({}) };

/** A release view with nothing released, for offline checks and tests. */
export const NO_RELEASES: ReleaseView = { last: () => undefined };

export { BoundsMemory };

export interface CommandInput {
  /** The exact command bytes as received (a JWS compact string). */
  readonly token: string;
  /** The device whose command topic carried it; omitted offline. */
  readonly topicDeviceId?: string;
  /** A signature check done on a worker thread for exactly this token (see VerifierPool). */
  readonly signatureHint?: (kid: string) => boolean | undefined;
}

export interface Decision {
  readonly verdict: Verdict;
  readonly reasons: readonly Reason[];
  /** sha256 (hex) of the command bytes; binds approvals and audit records to the exact command. */
  readonly commandDigest: string;
  readonly declarationsDigest: string;
  readonly decidedAtMs: number;
  /** Authenticated facts about the command (empty when it could not be authenticated). */
  readonly identity: EnvelopeIdentity;
  /** Set when the envelope passed: the command that was judged. */
  readonly command?: VerifiedCommand;
  /** The limit set the bounds were checked in, when the bounds stage got that far. */
  readonly mode?: Mode;
  /** Why the reduced set applied (a person in a zone, a hold after one, people unknown, the agent's scope...). */
  readonly modeBecause?: readonly string[];
  /** What the shadow (candidate) policy set would have decided, when the cell has one. Never enforced. */
  readonly shadow?: ShadowVerdict;
  /** The command as received (set once its signature verified): the compact JWS whose sha256 is `commandDigest`. */
  readonly commandToken?: string;
  /** The device states the decision read (trust, policy context, bounds), each with its receive time. */
  readonly stateUsed?: readonly UsedState[];
}

export interface ShadowVerdict extends StageResult {
  /** The shadow policy set's version (sha256 of its texts and the schema). */
  readonly policyVersion: string;
}

export function commandDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function evaluateCommand(input: CommandInput, context: PipelineContext, nowMs: number): Decision {
  const { declarations } = context.cell;
  const base = { commandDigest: commandDigest(input.token), declarationsDigest: declarations.digest, decidedAtMs: nowMs };
  try {
    const envelope = checkEnvelope(
      input.topicDeviceId === undefined ? { token: input.token } : { token: input.token, topicDeviceId: input.topicDeviceId },
      { declarations, replay: context.replay, nowMs, ...(input.signatureHint === undefined ? {} : { signatureHint: input.signatureHint }) },
    );
    // A denial whose signature verified (identity known) keeps the token for its record, as an allow does.
    if (!envelope.ok) return { ...base, ...envelope.result, identity: envelope.identity, ...(envelope.identity.agentId === undefined ? {} : { commandToken: input.token }) };
    const { command } = envelope;
    const judged = judgeCommand(command, context, nowMs, false);
    return { ...base, ...judged, identity: identityOf(command), command, commandToken: input.token };
  } catch (error) {
    return { ...base, ...internalError(error), identity: {} };
  }
}

export function identityOf(command: VerifiedCommand): EnvelopeIdentity {
  return { agentId: command.agent.id, commandId: command.commandId, deviceId: command.device.id, action: command.action, seq: command.seq };
}

function internalError(error: unknown): StageResult {
  // SAFETY: a bug or broken dependency in any stage fails closed.
  const message = error instanceof Error ? error.message : String(error);
  return { verdict: 'deny', reasons: [reason('INTERNAL_ERROR', `internal error while checking: ${message}`)] };
}

/** What judging an authenticated command produces: the verdict, the limit set, the shadow verdict, the state read. */
export type Judgement = StageResult & {
  readonly mode?: Mode;
  readonly modeBecause?: readonly string[];
  readonly shadow?: ShadowVerdict;
  readonly stateUsed?: readonly UsedState[];
};

/**
 * Trust, policy and bounds for an authenticated command, in that order. `approved` is true only when an operator
 * approved exactly this command and it is checked again before release. The device states it read come back in
 * `stateUsed`, for the audit record.
 */
export function judgeCommand(command: VerifiedCommand, context: PipelineContext, nowMs: number, approved: boolean): Judgement {
  const consulted = new ConsultedStates(context.states);
  const judged = judgeWith(command, { ...context, states: consulted }, nowMs, approved);
  const used = consulted.used();
  return used.length === 0 ? judged : { ...judged, stateUsed: used };
}

function judgeWith(command: VerifiedCommand, context: PipelineContext, nowMs: number, approved: boolean): Judgement {
  try {
    if (command.safeState) {
      // SAFETY: stopping is always safe; an authenticated stop is never held back by trust, policy or bounds.
      return { verdict: 'allow', reasons: [reason('SAFE_STATE_COMMAND', `${command.action} is a safe-state command`)] };
    }
    const { declarations, policies } = context.cell;
    const principal = command.agent;
    const standing = principal.kind === 'agent' ? (context.trust ?? FULL_TRUST).standing(principal.id) : {};
    if (standing.quarantined !== undefined) {
      return { verdict: 'deny', reasons: [reason('TRUST_QUARANTINED', `agent ${principal.id} is quarantined: ${standing.quarantined}`, { ruleId: 'trust' })] };
    }
    if (principal.kind === 'agent' && principal.autonomyScope <= 1) {
      return {
        verdict: 'deny',
        reasons: [reason('POLICY_SCOPE_OBSERVE_ONLY', `agent ${principal.id} has autonomy scope ${principal.autonomyScope}: it may observe, never actuate`, { ruleId: 'scope-1' })],
      };
    }
    const reducedBecause = standing.reduced === undefined ? [] : [`agent ${principal.id} is demoted: ${standing.reduced}`];
    const modeInput = { command, declarations, states: context.states, memory: context.bounds, nowMs, reducedBecause };
    const people = peopleInCell(declarations.people, context.states, nowMs);
    const day = new Date(nowMs);
    const request = {
      principal,
      device: { id: command.device.id, kind: command.device.kind, cellId: declarations.cellId },
      action: command.action,
      context: {
        mode: currentMode(modeInput),
        peopleKnown: people.known,
        peoplePresent: !people.known || people.positions.length > 0,
        approved,
        minuteOfDay: day.getUTCHours() * 60 + day.getUTCMinutes(),
        dayOfWeek: day.getUTCDay(),
      },
    };
    const policy = policies.authorize(request);
    const scope = (policyResult: StageResult): StageResult =>
      // Only when policy lets the command through: a hold on top of a policy deny would only add noise.
      principal.kind === 'agent' && principal.autonomyScope === 2 && !approved && policyResult.verdict !== 'deny'
        ? {
            verdict: 'hold',
            reasons: [reason('POLICY_APPROVAL_REQUIRED', `agent ${principal.id} has autonomy scope 2: every actuation needs a human approval`, { ruleId: 'scope-2' })],
          }
        : PASS;
    const bounds = checkBounds({ ...modeInput, releases: context.releases });
    const shadowPolicies = context.cell.shadowPolicies;
    // The candidate set sees the same request and the same bounds result; only its own verdict is recorded.
    const shadow: ShadowVerdict | undefined =
      shadowPolicies === undefined
        ? undefined
        : (() => {
            const shadowPolicy = shadowPolicies.authorize(request);
            return { ...decide([shadowPolicy, scope(shadowPolicy), bounds]), policyVersion: shadowPolicies.version };
          })();
    return {
      ...decide([policy, scope(policy), bounds]),
      ...(bounds.mode === undefined ? {} : { mode: bounds.mode }),
      ...(bounds.modeBecause === undefined ? {} : { modeBecause: bounds.modeBecause }),
      ...(shadow === undefined ? {} : { shadow }),
    };
  } catch (error) {
    return internalError(error);
  }
}
