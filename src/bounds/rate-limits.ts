// Sliding-window command counters per agent (across devices) and per device (across agents). Every authenticated
// command that is not a safe-state command counts, denied or not: a flood is a flood. After a restart the windows
// are rebuilt from the audit log's decision records, never started empty on a guess.

import type { Declarations, RateLimit } from '../core/declarations.js';

export function agentRateKey(agentId: string): string {
  return `agent\u0000${agentId}`;
}

export function deviceRateKey(deviceId: string): string {
  return `device\u0000${deviceId}`;
}

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

  /** Puts commands counted before a restart into a window (times in any order), keeping what `count` would keep. */
  restore(key: string, limit: RateLimit, timesMs: readonly number[], nowMs: number): void {
    const fresh = [...timesMs].sort((a, b) => a - b).filter((t) => !(nowMs - t >= limit.perMs));
    this.windows.set(key, fresh.slice(-(limit.commands + 1)));
  }
}

/** A decision as the audit log recorded it: enough to tell whether, and in which windows, it was counted. */
export interface RecordedDecision {
  readonly timeMs: number;
  readonly agentId?: string;
  readonly deviceId?: string;
  readonly reasonCodes: readonly string[];
}

/** The decisions recorded within the longest window before now, or why they cannot all be known. */
export type RecentDecisions = { readonly complete: true; readonly decisions: readonly RecordedDecision[] } | { readonly complete: false; readonly why: string };

/**
 * Whether a recorded decision was counted when it was made. Only decisions that provably stopped before the count
 * are left out: no authenticated agent (the envelope failed before the agent was known), an envelope or command
 * check that failed (the pipeline stops there), and a safe-state command (never counted, never limited). Anything
 * else counts, also decisions that returned before the bounds stage for another reason (quarantine, observe-only,
 * an approval answered): counting one too many is stricter, never looser.
 */
export function countedByRates(decision: RecordedDecision): boolean {
  if (decision.agentId === undefined || decision.deviceId === undefined) return false;
  return !decision.reasonCodes.some((code) => code === 'SAFE_STATE_COMMAND' || code.startsWith('ENVELOPE_') || code.startsWith('COMMAND_'));
}

/** The longest declared window: how far back the audit log must be read to rebuild every window. */
export function longestRateWindowMs(declarations: Declarations): number {
  let longest = declarations.commandLimits.ratePerAgent?.perMs ?? 0;
  for (const device of declarations.devices.values()) longest = Math.max(longest, device.rateLimit?.perMs ?? 0);
  return longest;
}

/**
 * Rebuilds every declared window at start from the recorded decisions. When they cannot all be known (the audit log
 * was moved aside, cut by retention inside the window, unreadable), every window starts full instead: each agent and
 * each device may send again once its window has passed. Returns what to log.
 */
export function rebuildRateWindows(rates: RateMemory, recent: RecentDecisions, declarations: Declarations, nowMs: number): string[] {
  const perAgent = declarations.commandLimits.ratePerAgent;
  const principals = [...declarations.agents.keys(), ...declarations.operators.keys()];
  if (!recent.complete) {
    // SAFETY: unknown history fails closed: as if each limit had just been reached.
    const full = (limit: RateLimit): number[] => Array.from({ length: limit.commands }, () => nowMs);
    if (perAgent !== undefined) for (const id of principals) rates.restore(agentRateKey(id), perAgent, full(perAgent), nowMs);
    for (const device of declarations.devices.values()) if (device.rateLimit !== undefined) rates.restore(deviceRateKey(device.id), device.rateLimit, full(device.rateLimit), nowMs);
    return [`rate windows start full (the recent decisions are not all known: ${recent.why}); each limit allows commands again once its window has passed`];
  }
  const byKey = new Map<string, number[]>();
  const add = (key: string, timeMs: number): void => {
    const times = byKey.get(key);
    if (times === undefined) byKey.set(key, [timeMs]);
    else times.push(timeMs);
  };
  let counted = 0;
  for (const decision of recent.decisions) {
    if (!countedByRates(decision)) continue;
    counted += 1;
    add(agentRateKey(decision.agentId ?? ''), decision.timeMs);
    add(deviceRateKey(decision.deviceId ?? ''), decision.timeMs);
  }
  if (perAgent !== undefined) for (const id of principals) rates.restore(agentRateKey(id), perAgent, byKey.get(agentRateKey(id)) ?? [], nowMs);
  for (const device of declarations.devices.values()) {
    if (device.rateLimit !== undefined) rates.restore(deviceRateKey(device.id), device.rateLimit, byKey.get(deviceRateKey(device.id)) ?? [], nowMs);
  }
  return counted === 0 ? [] : [`rate windows rebuilt from ${counted} recorded decision(s)`];
}
