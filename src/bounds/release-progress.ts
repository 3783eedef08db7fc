// Whether a device has itself reported its last release finished: its state names the released command (the id of
// the last command its driver executed, `lastCommandId`) and shows it at rest. It never checks a limit.
// It must never count a state as proof because of when it arrived: a state received after the release may have
// been sent before the driver had the release (link latency), and then it shows the device before it moved.

import type { LastRelease, ObservedState } from '../core/device-state.js';
import type { ReleaseUnderWay } from './kind-bounds.js';

export type ReleaseProgress =
  /** Nothing released since the interlock started, or the state names the last release at rest: judge it by its place. */
  | { readonly finished: true }
  /**
   * The last release may still move the device. `underWay` is set when the state does not name it (the driver may
   * not have it yet: the device may be moving from where its state says, on it or on one before it); unset when the
   * state names it but shows the device moving (the state is then already on that release's path).
   */
  | { readonly finished: false; readonly release: LastRelease; readonly why: string; readonly underWay?: ReleaseUnderWay };

const FINISHED: ReleaseProgress = Object.freeze({ finished: true });

/**
 * Where the device's last release stands, from its own state. `moving` says whether the state shows the device
 * moving (the kind's occupancy); asked only when the state names the release.
 */
export function releaseProgress(last: LastRelease | undefined, observed: ObservedState, moving: () => boolean): ReleaseProgress {
  if (last === undefined) return FINISHED;
  const named = observed.state.lastCommandId;
  if (named === last.commandId) {
    // SAFETY: naming the release proves the driver had it; only at rest does the state show where it ended. Received
    // after the release too (as the rule before this one asked), so that this rule is never looser than that one.
    const notYet = moving() ? 'shows it moving' : observed.receivedAtMs > last.releasedAtMs ? undefined : 'was received no later than the release';
    if (notYet === undefined) return FINISHED;
    return { finished: false, release: last, why: `command ${last.commandId} not yet reported finished: its state names it and ${notYet}` };
  }
  // SAFETY: a state that cannot name a command (the field is optional for some kinds) can never prove one finished,
  // so such a device stays "released into" its last release's zones: fail closed, and the message says why.
  const seen =
    named === undefined
      ? 'its state does not report lastCommandId, so it can never show a command finished'
      : named === null
        ? 'its latest state names no command'
        : `its latest state names command ${named}`;
  const why = `command ${last.commandId} not yet reported finished: ${seen}`;
  return { finished: false, release: last, why, underWay: { commandId: last.commandId, why } };
}
