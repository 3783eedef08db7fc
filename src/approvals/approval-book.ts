// Held commands waiting for a human: at most the declared number per agent and device, each with the device's
// state when it was held, void after the declared pending time. Also counts approval requests per operator over
// the last 10 minutes (alarm-flood practice: more than 10 per operator per 10 minutes is a flood). In memory:
// after a restart nothing is pending, so every held command is void (fail closed).

import type { ApprovalSettings, DeviceState } from '../core/declarations.js';
import type { VerifiedCommand } from '../core/command.js';
import type { Reason } from '../core/reasons.js';

export const FLOOD_WINDOW_MS = 10 * 60_000;

export interface PendingApproval {
  /** The approval id operators answer to: the command's digest prefix, unique among pending ones. */
  readonly id: string;
  readonly command: VerifiedCommand;
  readonly commandDigest: string;
  /** The command as received (compact JWS), recorded again with the decision that answers the hold. */
  readonly commandToken?: string;
  /** Why it was held (and any notes). */
  readonly reasons: readonly Reason[];
  /** The device state the person is asked to judge; undefined when none was known (then any state is drift). */
  readonly snapshot: DeviceState | undefined;
  readonly heldAtMs: number;
  readonly expiresAtMs: number;
  /** The audit record of the hold decision. */
  readonly auditSeq: number | null;
}

/** What is published for operators and listed by `interlock approvals`. */
export interface PendingApprovalView {
  readonly id: string;
  readonly commandDigest: string;
  readonly commandId: string;
  readonly agentId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly reasons: readonly Reason[];
  readonly snapshot: DeviceState | null;
  readonly heldAtMs: number;
  readonly expiresAtMs: number;
  readonly auditSeq: number | null;
}

export function viewOf(pending: PendingApproval): PendingApprovalView {
  const { command } = pending;
  return {
    id: pending.id,
    commandDigest: pending.commandDigest,
    commandId: command.commandId,
    agentId: command.agent.id,
    deviceId: command.device.id,
    action: command.action,
    params: command.params,
    reasons: pending.reasons,
    snapshot: pending.snapshot ?? null,
    heldAtMs: pending.heldAtMs,
    expiresAtMs: pending.expiresAtMs,
    auditSeq: pending.auditSeq,
  };
}

export class ApprovalBook {
  readonly #settings: ApprovalSettings;
  readonly #pending = new Map<string, PendingApproval>();
  /** Times approval requests were routed to each operator, oldest first. */
  readonly #requests = new Map<string, number[]>();

  constructor(settings: ApprovalSettings) {
    this.#settings = settings;
  }

  /** How many commands of this agent wait for approval on this device. */
  pendingFor(agentId: string, deviceId: string): number {
    let count = 0;
    for (const p of this.#pending.values()) if (p.command.agent.id === agentId && p.command.device.id === deviceId) count += 1;
    return count;
  }

  /** True when one more hold for this agent and device stays within the declared cap. */
  hasRoom(agentId: string, deviceId: string): boolean {
    return this.pendingFor(agentId, deviceId) < this.#settings.maxPendingPerAgentDevice;
  }

  /** Adds a held command; `operatorIds` are the operators it is routed to (those with the approve role). */
  add(entry: Omit<PendingApproval, 'id' | 'expiresAtMs'>, operatorIds: readonly string[]): PendingApproval {
    // A digest prefix, longer while it collides; the same command held twice gets a counter suffix.
    let length = 16;
    let id = entry.commandDigest.slice(0, length);
    while (this.#pending.has(id) && length < entry.commandDigest.length) id = entry.commandDigest.slice(0, (length += 8));
    for (let n = 2; this.#pending.has(id); n++) id = `${entry.commandDigest.slice(0, 16)}-${n}`;
    const pending: PendingApproval = { ...entry, id, expiresAtMs: entry.heldAtMs + this.#settings.pendingTtlMs };
    this.#pending.set(id, pending);
    for (const operatorId of operatorIds) {
      const times = this.#requests.get(operatorId) ?? [];
      times.push(entry.heldAtMs);
      this.#requests.set(operatorId, times);
    }
    return pending;
  }

  get(id: string): PendingApproval | undefined {
    return this.#pending.get(id);
  }

  /** Removes and returns a pending approval (answered, expired, or void). */
  take(id: string): PendingApproval | undefined {
    const pending = this.#pending.get(id);
    this.#pending.delete(id);
    return pending;
  }

  list(): PendingApproval[] {
    return [...this.#pending.values()].sort((a, b) => a.heldAtMs - b.heldAtMs);
  }

  /** Removes and returns every pending approval whose time ran out by `nowMs` (NaN: all of them). */
  expire(nowMs: number): PendingApproval[] {
    const expired: PendingApproval[] = [];
    for (const pending of this.#pending.values()) {
      // SAFETY: "not provably before expiry" is expired, so a broken clock voids approvals rather than keeping them.
      if (!(nowMs < pending.expiresAtMs)) expired.push(pending);
    }
    for (const pending of expired) this.#pending.delete(pending.id);
    return expired;
  }

  /** Approval requests routed to each operator in the 10 minutes up to `nowMs` (the flood metric). */
  requestsPerOperator(nowMs: number): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [operatorId, times] of this.#requests) {
      // SAFETY: with a broken clock nothing is trimmed, so a NaN or early time cannot erase the flood count.
      const recent = Number.isFinite(nowMs) ? times.filter((t) => t > nowMs - FLOOD_WINDOW_MS) : times;
      this.#requests.set(operatorId, recent);
      counts.set(operatorId, recent.length);
    }
    return counts;
  }
}
