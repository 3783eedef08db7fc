// `interlock check`: the offline pipeline. One command per input line in, one decision per line out (JSON), with
// the same declarations and pipeline code as the live interlock, minus transport, audit and actuation.

import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { Ajv } from 'ajv';
import type { ObservedState, StateView } from '../core/device-state.js';
import { reason } from '../core/reasons.js';
import type { LoadedCell } from '../declarations/load.js';
import { MemoryReplayGuard } from '../envelope/replay-guard.js';
import { parseDeviceState } from '../interlock/state-store.js';
import { decisionReport, type DecisionReport } from '../pipeline/decision-report.js';
import { BoundsMemory, commandDigest, evaluateCommand, NO_RELEASES } from '../pipeline/pipeline.js';

const STATE_SNAPSHOT = {
  type: 'object',
  required: ['ageMs'],
  properties: { ageMs: { type: 'number', minimum: 0 } },
} as const;

/** A JSON input line. A line that does not start with `{` is taken as a bare JWS. */
export const CHECK_LINE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['token'],
  properties: {
    /** The signed command (JWS compact). */
    token: { type: 'string' },
    /** The device whose command topic it arrived on; defaults to the command's own aud. */
    device: { type: 'string' },
    /** Check as of this time (ms since the epoch); defaults to the wall clock. */
    atMs: { type: 'number', minimum: 0 },
    /** Live state of the target device: the state message a driver publishes, plus its age at atMs. */
    state: STATE_SNAPSHOT,
    /** Live state of other devices (people sources, shared-zone neighbours), by device id. */
    states: { type: 'object', maxProperties: 64, additionalProperties: STATE_SNAPSHOT },
  },
} as const;

const ajv = new Ajv({ strict: true, allErrors: false });
type Snapshot = Record<string, unknown> & { ageMs: number };
const validateLine = ajv.compile<{ token: string; device?: string; atMs?: number; state?: Snapshot; states?: Record<string, Snapshot> }>(
  CHECK_LINE_SCHEMA,
);

export interface CheckOutputLine extends DecisionReport {
  /** 1-based input line number. */
  readonly line: number;
}

export interface CheckSummary {
  readonly lines: number;
  readonly allow: number;
  readonly hold: number;
  readonly deny: number;
}

/** What carries from line to line, as it does in the live interlock: replay memory, rate windows, mode hysteresis. */
export class CheckSession {
  private readonly clock = { atMs: 0 };
  readonly replay = new MemoryReplayGuard(() => this.clock.atMs);
  readonly bounds = new BoundsMemory();

  constructor(
    readonly cell: LoadedCell,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.clock.atMs = nowMs();
  }

  /** Decides one input line; never throws for bad input (it becomes an INPUT_INVALID deny). */
  check(text: string, lineNumber: number): CheckOutputLine {
    const { cell } = this;
    const trimmed = text.trim();
    const inputInvalid = (message: string): CheckOutputLine => ({
      line: lineNumber,
      verdict: 'deny',
      reasons: [reason('INPUT_INVALID', message)],
      commandId: null,
      agentId: null,
      deviceId: null,
      action: null,
      seq: null,
      mode: null,
      commandDigest: commandDigest(trimmed),
      declarationsDigest: cell.declarations.digest,
      decidedAtMs: this.nowMs(),
    });
    let token = trimmed;
    let topicDeviceId: string | undefined;
    let atMs = this.nowMs();
    const snapshots = new Map<string, Snapshot>();
    if (trimmed.startsWith('{')) {
      let value: unknown;
      try {
        value = JSON.parse(trimmed);
      } catch (error) {
        return inputInvalid(`line is not valid JSON: ${(error as Error).message}`);
      }
      if (!validateLine(value)) {
        const error = validateLine.errors?.[0];
        const extra = error?.keyword === 'additionalProperties' ? ` "${(error.params as { additionalProperty: string }).additionalProperty}"` : '';
        return inputInvalid(`line ${error?.instancePath || '/'}: ${error?.message ?? 'invalid'}${extra}`);
      }
      token = value.token;
      topicDeviceId = value.device;
      atMs = value.atMs ?? atMs;
      for (const [id, snapshot] of Object.entries(value.states ?? {})) snapshots.set(id, snapshot);
      if (value.state !== undefined) {
        const targetId = topicDeviceId ?? audOf(token);
        if (targetId !== undefined) snapshots.set(targetId, value.state);
      }
    }
    this.clock.atMs = atMs;
    const observed = new Map<string, ObservedState>();
    for (const [id, snapshot] of snapshots) {
      const device = cell.declarations.devices.get(id);
      if (device === undefined) continue; // the envelope reports an unknown target device; others are ignored
      const { ageMs, ...stateMessage } = snapshot;
      const parsed = parseDeviceState(device, JSON.stringify(stateMessage));
      if (!parsed.ok) return inputInvalid(`line state of ${id}: ${parsed.problem}`);
      observed.set(id, { ...parsed.observed, receivedAtMs: atMs - ageMs });
    }
    const states: StateView = { latest: (deviceId) => observed.get(deviceId) };
    const decision = evaluateCommand(
      topicDeviceId === undefined ? { token } : { token, topicDeviceId },
      { cell, replay: this.replay, states, releases: NO_RELEASES, bounds: this.bounds },
      atMs,
    );
    return { line: lineNumber, ...decisionReport(decision) };
  }
}

/** Reads aud from a token without trusting it: only used to attach the supplied state to the right device. */
function audOf(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { aud?: unknown };
    return typeof claims.aud === 'string' ? claims.aud : undefined;
  } catch {
    return undefined;
  }
}

/** Streams input lines to output lines. Blank lines are skipped but still counted for line numbers. */
export async function runCheck(cell: LoadedCell, input: Readable, output: Writable, nowMs: () => number = Date.now): Promise<CheckSummary> {
  const session = new CheckSession(cell, nowMs);
  const counts = { lines: 0, allow: 0, hold: 0, deny: 0 };
  let lineNumber = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    lineNumber += 1;
    if (text.trim() === '') continue;
    const result = session.check(text, lineNumber);
    counts.lines += 1;
    counts[result.verdict] += 1;
    if (!output.write(`${JSON.stringify(result)}\n`)) await new Promise((resolve) => output.once('drain', resolve));
  }
  return counts;
}
