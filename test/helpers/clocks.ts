// The test clocks, in one place: a manual clock that moves only when told, and the real clock with an offset a test
// can add (to let something expire without waiting for it). Both satisfy the interlock's Clock.

import type { Clock } from '../../src/core/clock.js';

export interface ManualClock extends Clock {
  set(ms: number): void;
  advance(ms: number): void;
}

/** A clock that reads `startMs` until the test sets or advances it. */
export function manualClock(startMs: number): ManualClock {
  let now = startMs;
  return {
    nowMs: () => now,
    set(ms) {
      now = ms;
    },
    advance(ms) {
      now += ms;
    },
  };
}

export interface OffsetClock extends Clock {
  /** Milliseconds added to the real clock. */
  offsetMs: number;
}

/** The real clock plus `offsetMs`, which the test may change at any time. */
export function offsetClock(offsetMs = 0): OffsetClock {
  const clock = {
    offsetMs,
    nowMs: () => Date.now() + clock.offsetMs,
  };
  return clock;
}
