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
import { commandDigest, evaluateCommand } from '../pipeline/pipeline.js';

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
    state: {
      type: 'object',
      required: ['ageMs'],
      properties: { ageMs: { type: 'number', minimum: 0 } },
    },
  },
} as const;

const ajv = new Ajv({ strict: true, allErrors: false });
const validateLine = ajv.compile<{ token: string; device?: string; atMs?: number; state?: Record<string, unknown> & { ageMs: number } }>(
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

/** Decides one input line. Replay memory carries across lines, as it does in the live interlock. */
export function checkLine(cell: LoadedCell, replay: MemoryReplayGuard, clock: { atMs: number }, text: string, lineNumber: number, nowMs: () => number): CheckOutputLine {
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
    commandDigest: commandDigest(trimmed),
    declarationsDigest: cell.declarations.digest,
    decidedAtMs: nowMs(),
  });
  let token = trimmed;
  let topicDeviceId: string | undefined;
  let atMs = nowMs();
  let stateInput: (Record<string, unknown> & { ageMs: number }) | undefined;
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
    stateInput = value.state;
  }
  clock.atMs = atMs;
  let observed: ObservedState | undefined;
  let stateProblem: string | undefined;
  if (stateInput !== undefined) {
    const { ageMs, ...stateMessage } = stateInput;
    const targetId = topicDeviceId ?? audOf(token);
    const device = targetId === undefined ? undefined : cell.declarations.devices.get(targetId);
    if (device !== undefined) {
      const parsed = parseDeviceState(device, JSON.stringify(stateMessage));
      if (parsed.ok) observed = { state: parsed.state, receivedAtMs: atMs - ageMs };
      else stateProblem = parsed.problem;
    }
  }
  if (stateProblem !== undefined) return inputInvalid(`line /state: ${stateProblem}`);
  const states: StateView = { latest: (deviceId) => (observed !== undefined && deviceId === (topicDeviceId ?? audOf(token)) ? observed : undefined) };
  const decision = evaluateCommand(
    topicDeviceId === undefined ? { token } : { token, topicDeviceId },
    { cell, replay, states },
    atMs,
  );
  return { line: lineNumber, ...decisionReport(decision) };
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
  const clock = { atMs: nowMs() };
  const replay = new MemoryReplayGuard(() => clock.atMs);
  const counts = { lines: 0, allow: 0, hold: 0, deny: 0 };
  let lineNumber = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    lineNumber += 1;
    if (text.trim() === '') continue;
    const result = checkLine(cell, replay, clock, text, lineNumber, nowMs);
    counts.lines += 1;
    counts[result.verdict] += 1;
    if (!output.write(`${JSON.stringify(result)}\n`)) await new Promise((resolve) => output.once('drain', resolve));
  }
  return counts;
}
