// Which agents are demoted. An agent whose commands keep being denied is probably confused or compromised: after
// the declared number of denials within the declared window it is demoted (reduced limits, or quarantined), and
// stays so until an operator restores it. Demotions survive restarts through the injected store.

import type { TrustPolicy } from '../core/declarations.js';
import type { AgentStanding, TrustView } from '../pipeline/pipeline.js';

export interface Demotion {
  readonly agentId: string;
  readonly demotedTo: 'reduced' | 'quarantine';
  readonly reason: string;
  readonly sinceMs: number;
}

/** Where demotions are kept across restarts (SqliteIdentityStore); absent in tests and offline checks. */
export interface DemotionStore {
  demotions(): readonly Demotion[];
  saveDemotion(demotion: Demotion): void;
  removeDemotion(agentId: string): void;
}

export class TrustTracker implements TrustView {
  readonly #policy: TrustPolicy;
  #store: DemotionStore | undefined;
  readonly #demotions = new Map<string, Demotion>();
  /** Times of recent denials per agent, oldest first, trimmed to the window. */
  readonly #denials = new Map<string, number[]>();

  constructor(policy: TrustPolicy, store?: DemotionStore) {
    this.#policy = policy;
    this.#store = store;
    for (const demotion of store?.demotions() ?? []) this.#demotions.set(demotion.agentId, demotion);
  }

  /**
   * The same demotions and recent denials under another policy (a declaration change): nobody is restored by a new
   * declaration set, and denials counted so far still count.
   */
  rebased(policy: TrustPolicy): TrustTracker {
    // Built without the store so nothing is read again; the store is handed over for what happens from now on.
    const next = new TrustTracker(policy);
    next.#store = this.#store;
    for (const [agentId, demotion] of this.#demotions) next.#demotions.set(agentId, demotion);
    for (const [agentId, times] of this.#denials) next.#denials.set(agentId, [...times]);
    return next;
  }

  standing(agentId: string): AgentStanding {
    const demotion = this.#demotions.get(agentId);
    if (demotion === undefined) return {};
    const why = `${demotion.reason} (since ${new Date(demotion.sinceMs).toISOString()}; an operator must restore it)`;
    return demotion.demotedTo === 'quarantine' ? { quarantined: why } : { reduced: why };
  }

  demotion(agentId: string): Demotion | undefined {
    return this.#demotions.get(agentId);
  }

  all(): Demotion[] {
    return [...this.#demotions.values()];
  }

  /**
   * Counts a denied command of `agentId` at `nowMs`. Returns the demotion when this denial caused it. Denials of
   * an agent already demoted to the same or a stricter standing are not counted further.
   */
  recordDenial(agentId: string, nowMs: number): Demotion | undefined {
    const current = this.#demotions.get(agentId);
    if (current?.demotedTo === 'quarantine' || current?.demotedTo === this.#policy.demoteTo) return undefined;
    // SAFETY: a broken clock (NaN) or one that stepped back must not wipe the count: only entries provably older
    // than the window are dropped, so such a clock demotes sooner, never later.
    const windowStart = nowMs - this.#policy.windowMs;
    const previous = this.#denials.get(agentId) ?? [];
    const times = Number.isFinite(windowStart) ? previous.filter((t) => !(t <= windowStart)) : [...previous];
    times.push(nowMs);
    this.#denials.set(agentId, times);
    if (times.length < this.#policy.denials) return undefined;
    this.#denials.delete(agentId);
    return this.demote(agentId, this.#policy.demoteTo, `${times.length} denied commands within ${this.#policy.windowMs} ms`, nowMs);
  }

  /**
   * Demotes an agent (automatically, or an operator quarantining it). In force at once, then persisted; if
   * persisting throws, the demotion still holds in this run and the error reaches the caller to be reported.
   */
  demote(agentId: string, demotedTo: 'reduced' | 'quarantine', reason: string, nowMs: number): Demotion {
    const demotion: Demotion = { agentId, demotedTo, reason, sinceMs: nowMs };
    this.#demotions.set(agentId, demotion);
    this.#store?.saveDemotion(demotion);
    return demotion;
  }

  /**
   * An operator restores the agent: its standing is cleared and its denial count starts again. Persisted first:
   * if that throws, the agent stays demoted (fail closed).
   */
  restore(agentId: string): Demotion | undefined {
    const previous = this.#demotions.get(agentId);
    if (previous === undefined) return undefined;
    this.#store?.removeDemotion(agentId);
    this.#demotions.delete(agentId);
    this.#denials.delete(agentId);
    return previous;
  }
}
