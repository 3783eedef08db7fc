// Sliding-window command counters per agent (across devices) and per device (across agents). Every authenticated
// command that is not a safe-state command counts, denied or not: a flood is a flood.

import type { RateLimit } from '../core/declarations.js';

export class RateMemory {
  private readonly windows = new Map<string, number[]>();

  /** Records a command at nowMs and returns how many fall in the window ending now (this one included). */
  count(key: string, limit: RateLimit, nowMs: number): number {
    const times = this.windows.get(key) ?? [];
    // SAFETY: a NaN or backwards clock keeps every entry (it never shortens the window).
    const fresh = times.filter((t) => !(nowMs - t >= limit.perMs));
    fresh.push(nowMs);
    // Only the newest `commands + 1` entries can matter for "over the limit"; older ones are dropped.
    this.windows.set(key, fresh.slice(-(limit.commands + 1)));
    return fresh.length;
  }
}
