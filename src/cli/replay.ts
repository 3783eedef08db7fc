// `interlock replay`: the what-if before new limits go live. Re-decides the recorded commands (decision records that
// carry their token) against another declaration set with the real pipeline, each against the state its record says
// it read and at its recorded time, and reports which verdicts would change and why. Reads the audit log read-only.

import { recordRelease } from '../bounds/bounds.js';
import { formatProblem } from '../core/problems.js';
import { reason, type Reason } from '../core/reasons.js';
import type { Verdict } from '../core/verdict.js';
import { parseCompactJws } from '../crypto/jws.js';
import { loadCell, type LoadedCell } from '../declarations/load.js';
import { checkEnvelope } from '../envelope/envelope.js';
import { observeModes } from '../pipeline/observe-state.js';
import { BoundsMemory, evaluateCommand, judgeCommand, type PipelineContext } from '../pipeline/pipeline.js';
import { AS_RECORDED_REPLAY, recordedStates, RecordedReleases, RecordedStandings } from '../pipeline/recorded-context.js';
import { messageOf, openAuditReader } from './audit-reader.js';
import type { CliIo } from './cli-io.js';

export interface ReplayOptions {
  readonly cellDirectory: string;
  readonly databasePath: string;
  /** Only records with seq in [fromSeq, toSeq] are reported (earlier ones still build the history). */
  readonly fromSeq?: number;
  readonly toSeq?: number;
  readonly json: boolean;
}

/** What the replay cannot re-decide from a record, and so takes from it: printed at the head of every report. */
export const AS_RECORDED = [
  'replay protection (jti, seq) as recorded: every recorded command counts as fresh, and a command the envelope denied (signature, freshness, replay, audience, parameters) stays denied',
  'operator answers as recorded: a rejection, expiry or voided approval stands; an approved command is checked again with approved = true',
  'device state as recorded: each command is checked against the state its record says it read, at the record time; a device it did not read has no state',
  'releases and agent standings as recorded; rate windows and mode hysteresis rebuilt by replaying from the first record',
] as const;

export interface ReplayedCommand {
  readonly seq: number;
  readonly commandId: string;
  readonly agentId: string;
  readonly deviceId: string;
  readonly action: string;
  /** True for a decision that answers a hold (an approval checked again). */
  readonly answersHold: boolean;
  readonly recorded: { readonly verdict: Verdict; readonly codes: readonly string[] };
  readonly replayed: { readonly verdict: Verdict; readonly reasons: readonly Pick<Reason, 'code' | 'message' | 'ruleId'>[] };
  readonly changed: boolean;
  /** Why part of the record could not be used under the replayed declarations (a device no longer declared...). */
  readonly notes: readonly string[];
}

export interface ReplayReport {
  readonly database: string;
  readonly cell: { readonly directory: string; readonly cellId: string; readonly digest: string };
  readonly fromSeq: number;
  readonly toSeq: number | null;
  readonly asRecorded: readonly string[];
  readonly commands: readonly ReplayedCommand[];
  readonly summary: {
    readonly replayed: number;
    readonly unchanged: number;
    readonly newlyDenied: number;
    readonly newlyAllowed: number;
    readonly newlyHeld: number;
    /** Answers to holds taken as recorded (rejected, expired, voided): not re-decided. */
    readonly answersAsRecorded: number;
    /** Commands the envelope denied when recorded: not re-decided (replay memory and arrival topic are not recorded). */
    readonly envelopeDenialsAsRecorded: number;
  };
}

const VERDICTS: readonly string[] = ['allow', 'hold', 'deny'];
const RECHECKED_ANSWERS: readonly unknown[] = ['approved', 'recheck-failed'];

/** Runs the replay; returns the exit code (0 when it ran, changes or not; 1 when an input cannot be read). */
export function runReplay(options: ReplayOptions, io: CliIo): number {
  const loaded = loadCell(options.cellDirectory);
  if (!loaded.ok) {
    io.err(`interlock: cannot replay against ${options.cellDirectory}: ${loaded.problems.length} problem(s) in its declarations`);
    for (const problem of loaded.problems) io.err(`  ${formatProblem(problem)}`);
    return 1;
  }
  const opened = openAuditReader(options.databasePath);
  if (!opened.ok) {
    io.err(`interlock: ${opened.problem}`);
    return 1;
  }
  let result: { report: ReplayReport; problems: string[] };
  try {
    result = replayRecords(loaded.cell, opened.reader.scan(0, options.toSeq ?? Number.MAX_SAFE_INTEGER), options, opened.reader.path);
  } catch (error) {
    io.err(`interlock: cannot read the audit database ${opened.reader.path}: ${messageOf(error)}`);
    return 1;
  } finally {
    opened.reader.close();
  }
  for (const problem of result.problems) io.err(`interlock: ${problem}`);
  if (options.json) io.out(JSON.stringify(result.report));
  else for (const line of formatReplay(result.report)) io.out(line);
  return result.problems.length === 0 ? 0 : 1;
}

type Row = { readonly seq: number; readonly ok: true; readonly record: Readonly<Record<string, unknown>> } | { readonly seq: number; readonly ok: false; readonly problem: string };

/** Re-decides every decision record with a token, in seq order; reports those from `fromSeq` on. */
export function replayRecords(cell: LoadedCell, rows: Iterable<Row>, options: Pick<ReplayOptions, 'fromSeq' | 'toSeq'>, database: string): { report: ReplayReport; problems: string[] } {
  const { declarations } = cell;
  const fromSeq = options.fromSeq ?? 1;
  const bounds = new BoundsMemory();
  const releases = new RecordedReleases();
  const trust = new RecordedStandings();
  const commands: ReplayedCommand[] = [];
  const problems: string[] = [];
  let answersAsRecorded = 0;
  let envelopeDenialsAsRecorded = 0;
  for (const row of rows) {
    if (!row.ok) {
      problems.push(`${database}: record ${row.seq}: ${row.problem}`);
      continue;
    }
    const { record } = row;
    const detail = isObject(record['detail']) ? record['detail'] : undefined;
    if (record['kind'] === 'event' && detail !== undefined) trust.observe(detail);
    const token = record['commandToken'];
    if (record['kind'] !== 'decision' || typeof token !== 'string') continue;
    const fields = recordFields(record);
    if (typeof fields === 'string') {
      problems.push(`${database}: record ${row.seq}: ${fields}`);
      continue;
    }
    // SAFETY: re-deciding these would call a replayed or misaddressed command fresh (the replay memory and the
    // topic it arrived on are not in the record) and report it as newly allowed.
    if (fields.stages.includes('envelope')) {
      if (row.seq >= fromSeq) envelopeDenialsAsRecorded += 1;
      continue;
    }
    const answer = detail?.['approvalId'] === undefined ? undefined : detail['outcome'];
    if (answer !== undefined && !RECHECKED_ANSWERS.includes(answer)) {
      if (row.seq >= fromSeq) answersAsRecorded += 1;
      continue;
    }
    const rebuilt = recordedStates(record['state'], fields.timeMs, declarations);
    if (!rebuilt.ok) {
      problems.push(`${database}: record ${row.seq}: ${rebuilt.problem}`);
      continue;
    }
    const context: PipelineContext = { cell, replay: AS_RECORDED_REPLAY, states: rebuilt.states, releases, bounds, trust };
    // The mode hysteresis sees the people as this decision saw them, as the live interlock's state messages would. A
    // decision that read no state (a stop) says nothing about the people, so it is not taken as "people unknown".
    if (record['state'] !== undefined) observeModes(declarations, { states: rebuilt.states, bounds }, fields.timeMs);
    let replayed: { verdict: Verdict; reasons: readonly Reason[] } =
      answer === undefined ? evaluateCommand({ token, topicDeviceId: fields.deviceId }, context, fields.timeMs) : recheckApproved(token, fields, context);
    // The approval room is approvals' state too: a hold the recorded interlock had no room for stays denied.
    if (replayed.verdict === 'hold' && fields.codes.includes('APPROVAL_PENDING_LIMIT')) {
      replayed = { verdict: 'deny', reasons: [...replayed.reasons, reason('APPROVAL_PENDING_LIMIT', 'no room for another pending approval (as recorded)', { ruleId: 'approvals/maxPendingPerAgentDevice' })] };
    }
    if (row.seq >= fromSeq) {
      commands.push({
        seq: row.seq,
        commandId: fields.commandId,
        agentId: fields.agentId,
        deviceId: fields.deviceId,
        action: fields.action,
        answersHold: answer !== undefined,
        recorded: { verdict: fields.verdict, codes: fields.codes },
        replayed: { verdict: replayed.verdict, reasons: replayed.reasons.map((r) => ({ code: r.code, message: r.message, ...(r.ruleId === undefined ? {} : { ruleId: r.ruleId }) })) },
        changed: replayed.verdict !== fields.verdict,
        notes: rebuilt.notes,
      });
    }
    // What the device was told, as recorded, is what later commands are checked against.
    if (fields.verdict === 'allow') released(token, fields, declarations, releases, bounds);
  }
  const changed = commands.filter((c) => c.changed);
  return {
    report: {
      database,
      cell: { directory: cell.directory, cellId: declarations.cellId, digest: declarations.digest },
      fromSeq,
      toSeq: options.toSeq ?? null,
      asRecorded: AS_RECORDED,
      commands,
      summary: {
        replayed: commands.length,
        unchanged: commands.length - changed.length,
        newlyDenied: changed.filter((c) => c.replayed.verdict === 'deny').length,
        newlyAllowed: changed.filter((c) => c.replayed.verdict === 'allow').length,
        newlyHeld: changed.filter((c) => c.replayed.verdict === 'hold').length,
        answersAsRecorded,
        envelopeDenialsAsRecorded,
      },
    },
    problems,
  };
}

interface RecordFields {
  readonly timeMs: number;
  readonly commandId: string;
  readonly agentId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly verdict: Verdict;
  readonly codes: readonly string[];
  readonly stages: readonly string[];
}

function recordFields(record: Readonly<Record<string, unknown>>): RecordFields | string {
  const { timeMs, commandId, agentId, deviceId, action, verdict, reasons } = record;
  if (typeof timeMs !== 'number' || !Number.isFinite(timeMs)) return 'timeMs is not a number';
  for (const [name, value] of Object.entries({ commandId, agentId, deviceId, action })) if (typeof value !== 'string') return `${name} is not a string`;
  if (typeof verdict !== 'string' || !VERDICTS.includes(verdict)) return `verdict ${JSON.stringify(verdict)} is not allow, hold or deny`;
  if (!Array.isArray(reasons)) return 'reasons is not a list';
  const codes = reasons.map((r: unknown) => (isObject(r) && typeof r['code'] === 'string' ? r['code'] : '?'));
  const stages = reasons.map((r: unknown) => (isObject(r) && typeof r['stage'] === 'string' ? r['stage'] : '?'));
  return { timeMs, commandId: commandId as string, agentId: agentId as string, deviceId: deviceId as string, action: action as string, verdict: verdict as Verdict, codes, stages };
}

/**
 * An approved held command, checked again as the interlock checks it on approval: the envelope as when it was issued
 * (the approval comes after the agent's TTL), then trust, policy and bounds at the answer's time with approved = true.
 */
function recheckApproved(token: string, fields: RecordFields, context: PipelineContext): { verdict: Verdict; reasons: readonly Reason[] } {
  const parsed = parseCompactJws(token);
  const iat = parsed.ok && isObject(parsed.jws.payload) ? parsed.jws.payload['iat'] : undefined;
  const issuedAtMs = typeof iat === 'number' ? iat * 1000 : fields.timeMs;
  const envelope = checkEnvelope({ token, topicDeviceId: fields.deviceId }, { declarations: context.cell.declarations, replay: context.replay, nowMs: issuedAtMs });
  if (!envelope.ok) return envelope.result;
  const judged = judgeCommand(envelope.command, context, fields.timeMs, true);
  // On an approval the interlock releases only an allow; anything else denies.
  return { verdict: judged.verdict === 'allow' ? 'allow' : 'deny', reasons: judged.reasons };
}

/** Notes a recorded allow as released to its device, for the checks of the commands after it. */
function released(token: string, fields: RecordFields, declarations: LoadedCell['declarations'], releases: RecordedReleases, bounds: BoundsMemory): void {
  const parsed = parseCompactJws(token);
  const claims = parsed.ok && isObject(parsed.jws.payload) ? parsed.jws.payload : undefined;
  const params = isObject(claims?.['params']) ? claims['params'] : {};
  releases.released(fields.deviceId, { commandId: fields.commandId, action: fields.action, params, releasedAtMs: fields.timeMs });
  const device = declarations.devices.get(fields.deviceId);
  if (device !== undefined) recordRelease(device, { action: fields.action, params }, bounds, fields.timeMs);
}

/** The report as text: the header, one block per changed command, the summary. */
export function formatReplay(report: ReplayReport): string[] {
  const lines = [
    `replay of ${report.database} (records ${report.fromSeq}..${report.toSeq ?? 'end'}) against cell ${report.cell.cellId} at ${report.cell.directory} (digest ${report.cell.digest})`,
    ...report.asRecorded.map((line) => `  as recorded: ${line}`),
  ];
  for (const c of report.commands) {
    if (!c.changed) continue;
    lines.push(`#${c.seq} ${c.agentId} -> ${c.deviceId} ${c.action} ${c.commandId}${c.answersHold ? ' (approval re-check)' : ''}: ${c.recorded.verdict} -> ${c.replayed.verdict}`);
    for (const r of c.replayed.reasons) lines.push(`    ${r.code}${r.ruleId === undefined ? '' : ` [${r.ruleId}]`}: ${r.message}`);
    for (const note of c.notes) lines.push(`    note: ${note}`);
  }
  const s = report.summary;
  lines.push(
    `${s.replayed} command(s) replayed: ${s.unchanged} unchanged, ${s.newlyDenied} newly denied, ${s.newlyAllowed} newly allowed, ${s.newlyHeld} newly held` +
      (s.answersAsRecorded === 0 ? '' : `; ${s.answersAsRecorded} answer(s) to holds taken as recorded`) +
      (s.envelopeDenialsAsRecorded === 0 ? '' : `; ${s.envelopeDenialsAsRecorded} envelope denial(s) taken as recorded`),
  );
  return lines;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
