// Waits until no device holds reduced after a state trigger. After a start people were unknown until the people
// source's first report, so the person-watching devices hold reduced for their holdReduced after it (as after a
// restart in the field); a test about the normal limits waits that out first, on a condition, not a sleep.

import type { Clock } from '../../src/core/clock.js';
import type { Interlock } from '../../src/interlock/interlock.js';
import { waitFor } from './wait-for.js';

export async function modesSettled(interlock: Interlock, clock: Clock, timeoutMs = 10_000): Promise<void> {
  const { declarations } = interlock.declarations;
  const holding = (): boolean =>
    [...declarations.devices.values()].some((device) => {
      const last = interlock.bounds.modes.lastTriggerOf(device.id);
      return last !== undefined && !(clock.nowMs() - last.atMs > device.modes.holdReducedForMs);
    });
  await waitFor(() => !holding(), 'the start-up reduced hold to run out', timeoutMs);
}
