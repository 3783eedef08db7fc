// A view of the device states that remembers which ones a decision read, so that the audit record can say exactly
// which state the bounds and the policy context were checked against (with its receive time). It never changes a
// state and never hides one: every lookup is passed through.

import type { ObservedState, StateView } from '../core/device-state.js';

/** One device's state as a decision read it. */
export interface UsedState {
  readonly deviceId: string;
  readonly observed: ObservedState;
}

export class ConsultedStates implements StateView {
  readonly #inner: StateView;
  readonly #used = new Map<string, ObservedState>();

  constructor(inner: StateView) {
    this.#inner = inner;
  }

  latest(deviceId: string): ObservedState | undefined {
    const observed = this.#inner.latest(deviceId);
    // The first state read is the one kept: a decision is synchronous, so later reads return the same object.
    if (observed !== undefined && !this.#used.has(deviceId)) this.#used.set(deviceId, observed);
    return observed;
  }

  /** The states read, in the order first read. */
  used(): readonly UsedState[] {
    return [...this.#used].map(([deviceId, observed]) => ({ deviceId, observed }));
  }
}
