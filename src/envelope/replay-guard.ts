// Remembers which command ids (jti) were seen and the last seq accepted per agent and device, so that a
// captured command cannot be replayed or rolled back. Entries expire with their token. This one is in memory
// (offline checks, tests); the running interlock persists the same memory in SQLite (src/identity/).

export type ReplayVerdict = 'fresh' | 'replayed' | 'seq-not-increasing';

export interface ReplayGuard {
  /**
   * When this memory began (ms since the epoch). A command issued earlier may have been accepted by a run whose
   * memory is lost, so it is refused. -Infinity for a memory that is complete by construction (offline checks).
   */
  readonly epochMs: number;
  /** Checks without recording. */
  check(agentId: string, deviceId: string, jti: string, seq: number): ReplayVerdict;
  /** Records a jti (kept until `forgetAfterMs`) and raises the agent/device seq. */
  accept(agentId: string, deviceId: string, jti: string, seq: number, forgetAfterMs: number): void;
  /** The last accepted seq for this agent and device, if any. */
  lastSeq(agentId: string, deviceId: string): number | undefined;
  /**
   * Writes accepted commands that are still only in memory (a store that batches its writes). Throws if it cannot:
   * nothing is released on the strength of a replay memory that would not survive a restart.
   */
  persist?(): void;
}

export class MemoryReplayGuard implements ReplayGuard {
  private readonly jtis = new Map<string, number>();
  private readonly seqs = new Map<string, number>();
  private lastPruneMs = 0;

  constructor(
    private readonly nowMs: () => number,
    readonly epochMs: number = -Infinity,
  ) {}

  check(agentId: string, deviceId: string, jti: string, seq: number): ReplayVerdict {
    this.prune();
    // jti is scoped to the agent: two agents choosing the same id do not collide, one agent cannot reuse one.
    if (this.jtis.has(jtiKey(agentId, jti))) return 'replayed';
    const last = this.seqs.get(seqKey(agentId, deviceId));
    if (last !== undefined && !(seq > last)) return 'seq-not-increasing';
    return 'fresh';
  }

  accept(agentId: string, deviceId: string, jti: string, seq: number, forgetAfterMs: number): void {
    this.jtis.set(jtiKey(agentId, jti), forgetAfterMs);
    const key = seqKey(agentId, deviceId);
    const last = this.seqs.get(key);
    if (last === undefined || seq > last) this.seqs.set(key, seq);
  }

  lastSeq(agentId: string, deviceId: string): number | undefined {
    return this.seqs.get(seqKey(agentId, deviceId));
  }

  /** Drops jtis whose tokens have expired: an expired token is denied on its own, so it need not be remembered. */
  private prune(): void {
    const now = this.nowMs();
    if (now - this.lastPruneMs < 1000) return;
    this.lastPruneMs = now;
    for (const [key, forgetAfterMs] of this.jtis) if (forgetAfterMs < now) this.jtis.delete(key);
  }
}

function jtiKey(agentId: string, jti: string): string {
  return `${agentId}\u0000${jti}`;
}

function seqKey(agentId: string, deviceId: string): string {
  return `${agentId}\u0000${deviceId}`;
}
