// `interlock check`: the offline pipeline. One command per input line in, one decision per line out (JSON), with
// the same declarations and pipeline code as the live interlock, minus transport, audit and actuation.

import type { Readable, Writable } from 'node:stream';
import type { DeviceDeclaration } from '../core/declarations.js';
import type { LastRelease } from '../core/device-state.js';
import { reason, type Reason } from '../core/reasons.js';
import { recordRelease } from '../bounds/bounds.js';
import type { LoadedCell } from '../declarations/load.js';
import { MemoryReplayGuard } from '../envelope/replay-guard.js';
import { parseDeviceState, StateStore } from '../interlock/state-store.js';
import { decisionReport, type DecisionReport } from '../pipeline/decision-report.js';
import { observeStateMessage } from '../pipeline/observe-state.js';
import { BoundsMemory, commandDigest, evaluateCommand, type Decision } from '../pipeline/pipeline.js';
import { readBoundedLines } from './bounded-lines.js';
import { audOf, readCheckLine, type CheckLine, type Snapshot } from './check-input.js';

/**
 * Longest input line read, without its line ending. A command with all its history fits many times over (a token is
 * at most the cell's maxTokenSize); a longer line is refused without being held in memory.
 */
export const MAX_LINE_BYTES = 1024 * 1024;

/** A rule the line's decision could not evaluate as live would, for lack of history in the input. */
export interface Unevaluated {
  readonly rule: string;
  readonly why: string;
}

export interface CheckOutputLine extends DecisionReport {
  /** 1-based input line number. */
  readonly line: number;
  /** Rules that needed history the input did not give (empty when the input covered them). */
  readonly unevaluated: readonly Unevaluated[];
}

export interface CheckSummary {
  readonly lines: number;
  readonly allow: number;
  readonly hold: number;
  readonly deny: number;
}

/** One thing that happened before the line's decision, at its time. */
type HistoryEvent =
  | { readonly atMs: number; readonly kind: 'state'; readonly device: DeviceDeclaration; readonly message: string; readonly steadyMs: number }
  | {
      readonly atMs: number;
      readonly kind: 'release';
      readonly device: DeviceDeclaration;
      readonly action: string;
      readonly params: Record<string, unknown>;
      /** The command's id, which a later state names (lastCommandId) once the device has finished it. */
      readonly commandId: string | undefined;
    };

/**
 * What carries from line to line, as in an interlock that started at the first line: replay memory, rate windows,
 * mode hysteresis and trip latches, the latest state of each device, and what was released (an allowed line counts
 * as released at its atMs, as it would be live).
 */
export class CheckSession {
  private readonly clock = { atMs: 0 };
  readonly replay = new MemoryReplayGuard(() => this.clock.atMs);
  readonly bounds = new BoundsMemory();
  readonly states = new StateStore();
  private readonly lastReleases = new Map<string, LastRelease>();
  /** When each device's state was first seen (people sources: where the mode history starts). */
  private readonly firstStateMs = new Map<string, number>();
  /** Set once a line carried history.releases: from then on the release history is the input's, complete. */
  private releaseHistoryGiven = false;
  private releaseCount = 0;

  constructor(
    readonly cell: LoadedCell,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.clock.atMs = nowMs();
  }

  /**
   * Decides one input line; never throws for bad input (it becomes an INPUT_INVALID deny, and changes nothing). A bug
   * met on the way is an INTERNAL_ERROR deny for that line only: the lines after it are still decided.
   */
  check(text: string, lineNumber: number): CheckOutputLine {
    try {
      return this.decide(text, lineNumber);
    } catch (error) {
      const message = `the line could not be checked: ${error instanceof Error ? error.message : String(error)}`;
      return this.refused(commandDigest(text.trim()), lineNumber, reason('INTERNAL_ERROR', message));
    }
  }

  private decide(text: string, lineNumber: number): CheckOutputLine {
    const trimmed = text.trim();
    const read = readCheckLine(trimmed);
    if (!read.ok) return this.inputInvalid(commandDigest(trimmed), lineNumber, read.problem);
    const { line } = read;
    const atMs = line.atMs ?? this.nowMs();
    const events = this.historyOf(line, atMs);
    if (!events.ok) return this.inputInvalid(commandDigest(trimmed), lineNumber, events.problem);
    // Everything is valid: only now does the session's memory change.
    for (const event of events.list) this.apply(event);
    if (line.history?.releases !== undefined) this.releaseHistoryGiven = true;
    this.clock.atMs = atMs;
    const decision = evaluateCommand(
      line.device === undefined ? { token: line.token } : { token: line.token, topicDeviceId: line.device },
      { cell: this.cell, replay: this.replay, states: this.states, releases: { last: (id) => this.lastReleases.get(id) }, bounds: this.bounds },
      atMs,
    );
    const unevaluated = this.unevaluated(decision, atMs);
    const command = decision.command;
    // Released live once recorded: the lines after it meet it as the last release (a stop included).
    if (decision.verdict === 'allow' && command !== undefined) {
      this.apply({ atMs, kind: 'release', device: command.device, action: command.action, params: command.params as Record<string, unknown>, commandId: command.commandId });
    }
    return { line: lineNumber, ...decisionReport(decision), unevaluated };
  }

  /** A line too long to be read: INPUT_INVALID, its digest taken over its bytes as they streamed past; changes nothing. */
  refuseLongLine(lineNumber: number, bytes: number, digest: string): CheckOutputLine {
    return this.inputInvalid(digest, lineNumber, `line is ${bytes} bytes, longer than the ${MAX_LINE_BYTES} bytes read: not read`);
  }

  private inputInvalid(digest: string, lineNumber: number, message: string): CheckOutputLine {
    return this.refused(digest, lineNumber, reason('INPUT_INVALID', message));
  }

  private refused(digest: string, lineNumber: number, why: Reason): CheckOutputLine {
    return {
      line: lineNumber,
      verdict: 'deny',
      reasons: [why],
      commandId: null,
      agentId: null,
      deviceId: null,
      action: null,
      seq: null,
      mode: null,
      modeBecause: [],
      commandDigest: digest,
      declarationsDigest: this.cell.declarations.digest,
      decidedAtMs: this.nowMs(),
      unevaluated: [],
    };
  }

  /** The line's history and state, validated whole and put in time order (a tie keeps input order). */
  private historyOf(line: CheckLine, atMs: number): { ok: true; list: HistoryEvent[] } | { ok: false; problem: string } {
    const { devices } = this.cell.declarations;
    const list: HistoryEvent[] = [];
    const addState = (where: string, id: string, snapshot: Snapshot): string | undefined => {
      const device = devices.get(id);
      if (device === undefined) return `${where}: no device ${id} in the cell`;
      const { ageMs, steadyMs, ...stateMessage } = snapshot;
      const message = JSON.stringify(stateMessage);
      const parsed = parseDeviceState(device, message);
      // The live interlock would refuse it (the device then has no state): offline that is an input mistake.
      if (!parsed.ok) return `${where} (state of ${id}): ${parsed.problem}`;
      list.push({ atMs: atMs - ageMs, kind: 'state', device, message, steadyMs: steadyMs ?? 0 });
      return undefined;
    };
    for (const [id, snapshots] of Object.entries(line.history?.states ?? {})) {
      for (const [index, snapshot] of snapshots.entries()) {
        const problem = addState(`line /history/states/${id}/${index}`, id, snapshot);
        if (problem !== undefined) return { ok: false, problem };
      }
    }
    for (const [index, release] of (line.history?.releases ?? []).entries()) {
      const device = devices.get(release.device);
      if (device === undefined) return { ok: false, problem: `line /history/releases/${index}/device: no device ${release.device} in the cell` };
      list.push({ atMs: atMs - release.ageMs, kind: 'release', device, action: release.action, params: release.params, commandId: release.commandId });
    }
    for (const [id, snapshot] of Object.entries(line.states ?? {})) {
      const problem = addState(`line /states/${id}`, id, snapshot);
      if (problem !== undefined) return { ok: false, problem };
    }
    if (line.state !== undefined) {
      const targetId = line.device ?? audOf(line.token);
      // A target the cell does not declare: the envelope reports it; its state has nothing to attach to.
      if (targetId !== undefined && devices.has(targetId)) {
        const problem = addState('line /state', targetId, line.state);
        if (problem !== undefined) return { ok: false, problem };
      }
    }
    return { ok: true, list: list.map((event, order) => ({ event, order })).sort((a, b) => a.event.atMs - b.event.atMs || a.order - b.order).map((e) => e.event) };
  }

  private apply(event: HistoryEvent): void {
    const memory = { states: this.states, bounds: this.bounds };
    const { declarations } = this.cell;
    if (event.kind === 'state') {
      // A steady run: the same message kept arriving within its freshness limits for steadyMs up to atMs.
      const from = event.atMs - event.steadyMs;
      if (!this.firstStateMs.has(event.device.id)) this.firstStateMs.set(event.device.id, from);
      observeStateMessage(declarations, event.device.id, event.message, from, memory);
      if (event.steadyMs > 0) observeStateMessage(declarations, event.device.id, event.message, event.atMs, memory, { continuous: true });
      return;
    }
    this.releaseCount += 1;
    // Without an id from the input no state can ever name the release: the device then stays "may be moving".
    const commandId = event.commandId ?? `check-release-${this.releaseCount}`;
    this.lastReleases.set(event.device.id, { commandId, action: event.action, params: event.params, releasedAtMs: event.atMs });
    recordRelease(event.device, { action: event.action, params: event.params }, this.bounds, event.atMs);
  }

  /** The rules of this decision that needed history the input has not given. */
  private unevaluated(decision: Decision, atMs: number): Unevaluated[] {
    const command = decision.command;
    if (command === undefined || command.safeState || decision.mode === undefined) return [];
    const { declarations } = this.cell;
    const device = command.device;
    const out: Unevaluated[] = [];
    if (!this.releaseHistoryGiven) {
      const noRelease = (id: string): boolean => !this.lastReleases.has(id);
      const missing = 'is in the input (history.releases, or an earlier allowed line): checked as if nothing had been released';
      if (device.kind === 'conveyor' && command.action === 'set_speed' && noRelease(device.id)) {
        for (const rule of ['reversal/lastRelease', 'maxStep/lastRelease']) out.push({ rule: `${device.id}/${rule}`, why: `no release to ${device.id} ${missing}` });
      }
      if (device.kind === 'process_unit' && command.action === 'set_setpoint' && noRelease(device.id)) {
        out.push({ rule: `${device.id}/setpoints/${String(command.params['name'])}/maxRate`, why: `no release to ${device.id} ${missing}` });
      }
      for (const zone of declarations.sharedZones.filter((z) => z.devices.includes(device.id))) {
        for (const other of zone.devices.filter((id) => id !== device.id && noRelease(id))) {
          out.push({ rule: `cell/sharedZones/${zone.zoneId}`, why: `no release to ${other} ${missing} (a device released into the zone occupies it)` });
        }
      }
    }
    const holdMs = device.modes.holdReducedForMs;
    if (device.modes.reducedWhenPersonInZones.length > 0 && holdMs > 0) {
      for (const source of declarations.people.devices) {
        const first = this.firstStateMs.get(source);
        if (first !== undefined && atMs - first > holdMs) continue;
        out.push({
          rule: `${device.id}/modes/holdReduced`,
          why:
            first === undefined
              ? `the input gives no state of people source ${source}: people are unknown, as live before its first report`
              : `the input's state history of people source ${source} starts ${atMs - first} ms before atMs, not more than holdReduced (${holdMs} ms): reduced holds as after a restart (give earlier states in history.states, or steadyMs)`,
        });
      }
    }
    return out;
  }
}

/**
 * Streams input lines to output lines. Lines end with LF or CRLF. Blank lines are skipped but still counted for line
 * numbers; a line longer than MAX_LINE_BYTES is one INPUT_INVALID line, and reading goes on with the next.
 */
export async function runCheck(cell: LoadedCell, input: Readable, output: Writable, nowMs: () => number = Date.now): Promise<CheckSummary> {
  const session = new CheckSession(cell, nowMs);
  const counts = { lines: 0, allow: 0, hold: 0, deny: 0 };
  for await (const line of readBoundedLines(input, MAX_LINE_BYTES)) {
    if (line.ok && line.text.trim() === '') continue;
    const result = line.ok ? session.check(line.text, line.lineNumber) : session.refuseLongLine(line.lineNumber, line.bytes, line.digest);
    counts.lines += 1;
    counts[result.verdict] += 1;
    if (!output.write(`${JSON.stringify(result)}\n`)) await new Promise((resolve) => output.once('drain', resolve));
  }
  return counts;
}
