// The decision pipeline in its fixed order: envelope -> policy -> bounds -> decide. Pure and synchronous
// (state and replay memory are injected); any exception becomes a deny. It never actuates or records.

import { createHash } from 'node:crypto';
import type { VerifiedCommand } from '../core/command.js';
import type { Mode } from '../core/declarations.js';
import type { ReleaseView, StateView } from '../core/device-state.js';
import { reason, type Reason } from '../core/reasons.js';
import { decide, type StageResult, type Verdict } from '../core/verdict.js';
import { BoundsMemory, checkBounds } from '../bounds/bounds.js';
import type { LoadedCell } from '../declarations/load.js';
import { checkEnvelope, type EnvelopeIdentity } from '../envelope/envelope.js';
import type { ReplayGuard } from '../envelope/replay-guard.js';

export interface PipelineContext {
  readonly cell: LoadedCell;
  readonly replay: ReplayGuard;
  readonly states: StateView;
  /** The last command released to each device; offline, an empty view. */
  readonly releases: ReleaseView;
  /** Rate windows and mode hysteresis, kept across commands. */
  readonly bounds: BoundsMemory;
}

/** A release view with nothing released, for offline checks and tests. */
export const NO_RELEASES: ReleaseView = { last: () => undefined };

export { BoundsMemory };

export interface CommandInput {
  /** The exact command bytes as received (a JWS compact string). */
  readonly token: string;
  /** The device whose command topic carried it; omitted offline. */
  readonly topicDeviceId?: string;
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
}

export function commandDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function evaluateCommand(input: CommandInput, context: PipelineContext, nowMs: number): Decision {
  const { declarations, policies } = context.cell;
  const base = { commandDigest: commandDigest(input.token), declarationsDigest: declarations.digest, decidedAtMs: nowMs };
  try {
    const envelope = checkEnvelope(
      input.topicDeviceId === undefined ? { token: input.token } : { token: input.token, topicDeviceId: input.topicDeviceId },
      { declarations, replay: context.replay, nowMs },
    );
    if (!envelope.ok) return { ...base, ...envelope.result, identity: envelope.identity };
    const { command } = envelope;
    const identity: EnvelopeIdentity = {
      agentId: command.agent.id,
      commandId: command.commandId,
      deviceId: command.device.id,
      action: command.action,
      seq: command.seq,
    };
    let stages: StageResult[] = [];
    if (command.safeState) {
      // SAFETY: stopping is always safe; an authenticated stop is never held back by policy or bounds.
      stages = [{ verdict: 'allow', reasons: [reason('SAFE_STATE_COMMAND', `${command.action} is a safe-state command`)] }];
    } else {
      const policy = policies.authorize({
        agent: command.agent,
        device: { id: command.device.id, kind: command.device.kind, cellId: declarations.cellId },
        action: command.action,
      });
      const bounds = checkBounds({
        command,
        declarations,
        states: context.states,
        releases: context.releases,
        memory: context.bounds,
        nowMs,
      });
      return { ...base, ...decide([policy, bounds]), identity, command, ...(bounds.mode === undefined ? {} : { mode: bounds.mode }) };
    }
    return { ...base, ...decide(stages), identity, command };
  } catch (error) {
    // SAFETY: a bug or broken dependency in any stage fails closed.
    const message = error instanceof Error ? error.message : String(error);
    return { ...base, verdict: 'deny', reasons: [reason('INTERNAL_ERROR', `internal error while checking: ${message}`)], identity: {} };
  }
}
