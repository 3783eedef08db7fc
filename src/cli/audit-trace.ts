// `interlock audit trace`: the chain of records of an id, then the story of each command in it: the plan it came
// from, what it told the machine (decoded from the recorded token, its signature re-verified when the cell's keys are
// at hand), the state it was checked against, the decision and why, the approval, the release and what the device did.
// It only reads: records come from the read-only audit reader.

import { createHash } from 'node:crypto';
import type { AgentKey } from '../core/declarations.js';
import { parseCompactJws, verifyJws } from '../crypto/jws.js';
import type { ProblemReport } from './audit.js';
import { formatRecordLine, isObject, printable } from './audit-format.js';
import type { AuditReader, AuditRow } from './audit-reader.js';
import type { CliIo } from './cli-io.js';

type AuditBody = Readonly<Record<string, unknown>>;

export interface StoryDecision {
  readonly seq: number;
  readonly timeMs: number;
  readonly verdict: string;
  readonly reasons: readonly { readonly code: string; readonly ruleId?: string; readonly message: string }[];
  readonly decisionUs: number | null;
  /** For a decision answering a hold: approved, rejected, expired, void, recheck-failed, declarations-changed. */
  readonly outcome?: string;
  readonly operatorId?: string;
}

export interface CommandStory {
  readonly commandId: string;
  readonly trace: { readonly session?: string; readonly plan?: string } | null;
  /** Decoded from the recorded token; null when no record of the command carries one (recorded before tokens were). */
  readonly command: {
    readonly agentId: unknown;
    readonly deviceId: unknown;
    readonly action: unknown;
    readonly params: unknown;
    readonly seq: unknown;
    readonly issuedAt: unknown;
    readonly expiresAt: unknown;
    readonly kid: string;
  } | null;
  /** Whether sha256(token) is the recorded commandDigest, and what became of the signature check. */
  readonly token: { readonly digestMatches: boolean; readonly signature: string } | null;
  readonly state: Readonly<Record<string, unknown>> | null;
  readonly decision: StoryDecision | null;
  /** The hold's answer (or null when the command was not held, or has no answer yet). */
  readonly held: { readonly approvalId: string | null; readonly answer: StoryDecision | null; readonly refusedAnswers: number } | null;
  readonly release: { readonly underSeq: number; readonly failed: string | null } | null;
  readonly outcomes: readonly { readonly seq: number; readonly status: unknown; readonly problem?: unknown; readonly deviceTimeMs: unknown }[];
}

/** Prints the chain of `id`; false (after saying so) when no record has that id. */
export function runTrace(reader: AuditReader, id: string, json: boolean, io: CliIo, problems: ProblemReport, keys?: ReadonlyMap<string, AgentKey>): boolean {
  const headSeq = reader.headSeq();
  // First pass: the records that carry the id, and what links to them. Only problems of this pass are reported,
  // so a damaged record is named once.
  const roots = new Set<number>();
  const commandIds = new Set<string>();
  const seeds: Readonly<Record<string, unknown>>[] = [];
  for (const row of reader.scan(0, headSeq)) {
    const record = problems.take(row);
    if (record !== undefined && carriesId(record, id)) seeds.push(record);
  }
  if (seeds.length === 0) {
    io.err(`interlock: no record in ${reader.path} has "${printable(id)}" as a command id, command digest, approval id (detail.approvalId) or agent session (trace.session)`);
    return false;
  }
  for (const seed of seeds) {
    // Up to the decision the chain starts from: a resolution names its hold through parentSeq.
    let record: Readonly<Record<string, unknown>> | undefined = seed;
    while (record !== undefined && typeof record['seq'] === 'number' && !roots.has(record['seq'])) {
      roots.add(record['seq']);
      if (typeof record['commandId'] === 'string') commandIds.add(record['commandId']);
      const parent: unknown = record['parentSeq'];
      // SAFETY: parents come before children; anything else (a loop, a forward link) ends the walk.
      const row: AuditRow | undefined = typeof parent === 'number' && parent < record['seq'] ? reader.get(parent) : undefined;
      record = row?.ok === true ? row.record : undefined;
    }
  }
  // Second pass, in seq order: the roots, every record of their commands, and whatever follows up an included one.
  const included = new Set<number>();
  const commands = new Set<string>();
  const chain: Readonly<Record<string, unknown>>[] = [];
  for (const row of reader.scan(0, headSeq)) {
    if (!row.ok) continue;
    const { record } = row;
    const commandId = record['commandId'];
    const parent = record['parentSeq'];
    const linked =
      roots.has(row.seq) ||
      (typeof commandId === 'string' && commandIds.has(commandId)) ||
      (typeof parent === 'number' && included.has(parent));
    if (!linked) continue;
    included.add(row.seq);
    chain.push(record);
    if (typeof commandId === 'string') commands.add(commandId);
    io.out(json ? JSON.stringify(record) : formatRecordLine(record));
  }
  if (!json) io.out(`trace ${printable(id)}: ${included.size} record(s), ${commands.size} command(s)`);
  // Then each command's story: plan -> command -> state -> decision -> approval -> release -> outcome.
  for (const commandId of commands) {
    const story = commandStory(commandId, chain, keys);
    if (json) io.out(JSON.stringify({ story }));
    else for (const line of ['', ...formatStory(story)]) io.out(line);
  }
  return true;
}

function carriesId(record: Readonly<Record<string, unknown>>, id: string): boolean {
  const detail = record['detail'];
  const trace = record['trace'];
  return (
    record['commandId'] === id ||
    record['commandDigest'] === id ||
    (isObject(detail) && detail['approvalId'] === id) ||
    (isObject(trace) && trace['session'] === id)
  );
}

/**
 * The story of `commandId` from the records of its chain (in seq order). `keys`: the cell's pinned agent keys, to
 * re-verify the signature; without them the story says it was not re-verified.
 */
export function commandStory(commandId: string, records: readonly AuditBody[], keys?: ReadonlyMap<string, AgentKey>): CommandStory {
  const own = records.filter((r) => r['commandId'] === commandId);
  const decisions = own.filter((r) => r['kind'] === 'decision');
  const first = decisions.find((r) => r['parentSeq'] === undefined) ?? decisions[0];
  const token = decisions.map((r) => r['commandToken']).find((v): v is string => typeof v === 'string');
  const firstSeq = first === undefined ? undefined : seqOf(first);
  const answer = decisions.find((r) => firstSeq !== undefined && r['parentSeq'] === firstSeq);
  const approvalId = answer !== undefined && isObject(answer['detail']) && typeof answer['detail']['approvalId'] === 'string' ? answer['detail']['approvalId'] : null;
  const releasing = [answer, first].find((r) => r !== undefined && r['verdict'] === 'allow');
  const releasingSeq = releasing === undefined ? undefined : seqOf(releasing);
  const followUps = records.filter((r) => releasingSeq !== undefined && r['parentSeq'] === releasingSeq && r['kind'] === 'outcome');
  const failed = followUps.find((r) => isObject(r['detail']) && r['detail']['event'] === 'release-failed');
  return {
    commandId,
    trace: first !== undefined && isObject(first['trace']) ? (first['trace'] as CommandStory['trace']) : null,
    command: token === undefined ? null : decode(token),
    token: token === undefined ? null : { digestMatches: first?.['commandDigest'] === sha256(token), signature: signatureCheck(token, keys) },
    state: first !== undefined && isObject(first['state']) ? first['state'] : null,
    decision: first === undefined ? null : storyDecision(first),
    held:
      first?.['verdict'] !== 'hold'
        ? null
        : {
            approvalId,
            answer: answer === undefined ? null : storyDecision(answer),
            refusedAnswers: records.filter((r) => approvalId !== null && isObject(r['detail']) && r['detail']['approvalId'] === approvalId && r['detail']['event'] === 'approval-answer-refused').length,
          },
    release:
      releasingSeq === undefined
        ? null
        : { underSeq: releasingSeq, failed: failed === undefined ? null : String((failed['detail'] as AuditBody)['error'] ?? 'the release could not be published') },
    outcomes: followUps
      .filter((r) => isObject(r['detail']) && r['detail']['event'] === 'device-outcome')
      .map((r) => {
        const d = r['detail'] as AuditBody;
        return { seq: seqOf(r) ?? 0, status: d['status'], deviceTimeMs: d['deviceTimeMs'], ...(d['problem'] === undefined ? {} : { problem: d['problem'] }) };
      }),
  };
}

/** The story as text, one fact a line, every agent-given character visible (never a terminal control sequence). */
export function formatStory(story: CommandStory): string[] {
  return storyLines(story).map(printable);
}

function storyLines(story: CommandStory): string[] {
  const lines = [`command ${story.commandId}`];
  const trace = story.trace;
  lines.push(`  from: ${trace === null ? 'no plan/prompt hash or session given' : `plan ${trace.plan ?? '(none)'}, session ${trace.session ?? '(none)'}`}`);
  if (story.command === null) lines.push('  command: no record carries the command token (recorded before tokens were)');
  else {
    const c = story.command;
    lines.push(`  command: ${String(c.agentId)} -> ${String(c.deviceId)} ${String(c.action)} ${JSON.stringify(c.params)}`);
    lines.push(`  signed: kid ${c.kid}, seq ${String(c.seq)}, issued ${timeText(c.issuedAt)}, expires ${timeText(c.expiresAt)}`);
  }
  if (story.token !== null) lines.push(`  token: sha256 ${story.token.digestMatches ? 'matches' : 'DOES NOT MATCH'} the recorded commandDigest; signature ${story.token.signature}`);
  if (story.state === null) lines.push('  state used: none recorded (the decision read no device state)');
  else {
    lines.push('  state used:');
    for (const [field, entry] of Object.entries(story.state)) {
      const e = isObject(entry) ? entry : {};
      lines.push(`    ${field} = ${JSON.stringify(e['value'])} (age ${String(e['ageMs'])} ms)`);
    }
  }
  if (story.decision === null) lines.push('  decision: none recorded');
  else lines.push(...decisionLines('decision', story.decision));
  if (story.held !== null) {
    lines.push(`  held: approval ${story.held.approvalId ?? '(id not recorded)'}${story.held.refusedAnswers === 0 ? '' : `, ${story.held.refusedAnswers} answer(s) refused`}`);
    if (story.held.answer === null) lines.push('  answer: none recorded (still pending, or the interlock stopped first)');
    else lines.push(...decisionLines(`answer (${story.held.answer.outcome ?? '?'}${story.held.answer.operatorId === undefined ? '' : ` by ${story.held.answer.operatorId}`})`, story.held.answer));
  }
  if (story.release === null) lines.push('  release: none (never allowed)');
  else lines.push(`  release: ${story.release.failed === null ? `under record #${story.release.underSeq}` : `FAILED under record #${story.release.underSeq}: ${story.release.failed}`}`);
  if (story.outcomes.length === 0) lines.push(`  outcome: ${story.release === null ? '-' : 'none recorded from the device'}`);
  for (const o of story.outcomes) lines.push(`  outcome: record #${o.seq}: ${String(o.status)}${o.problem === undefined ? '' : ` (${String(o.problem)})`}, device time ${timeText(typeof o.deviceTimeMs === 'number' ? o.deviceTimeMs / 1000 : undefined)}`);
  return lines;
}

function decisionLines(label: string, d: StoryDecision): string[] {
  const lines = [`  ${label}: record #${d.seq} ${d.verdict} at ${new Date(d.timeMs).toISOString()}${d.decisionUs === null ? '' : `, ${d.decisionUs} us after arrival`}`];
  for (const r of d.reasons) lines.push(`    ${r.code}${r.ruleId === undefined ? '' : ` [${r.ruleId}]`}: ${r.message}`);
  return lines;
}

function storyDecision(record: AuditBody): StoryDecision {
  const detail = isObject(record['detail']) ? record['detail'] : {};
  const reasons = Array.isArray(record['reasons']) ? record['reasons'].filter(isObject) : [];
  return {
    seq: seqOf(record) ?? 0,
    timeMs: typeof record['timeMs'] === 'number' ? record['timeMs'] : 0,
    verdict: String(record['verdict']),
    reasons: reasons.map((r) => ({ code: String(r['code']), message: String(r['message']), ...(typeof r['ruleId'] === 'string' ? { ruleId: r['ruleId'] } : {}) })),
    decisionUs: typeof record['decisionUs'] === 'number' ? record['decisionUs'] : null,
    ...(typeof detail['outcome'] === 'string' ? { outcome: detail['outcome'] } : {}),
    ...(typeof detail['operatorId'] === 'string' ? { operatorId: detail['operatorId'] } : {}),
  };
}

function decode(token: string): CommandStory['command'] {
  const parsed = parseCompactJws(token);
  if (!parsed.ok) return null;
  const claims = isObject(parsed.jws.payload) ? parsed.jws.payload : {};
  return {
    agentId: claims['iss'],
    deviceId: claims['aud'],
    action: claims['action'],
    params: claims['params'],
    seq: claims['seq'],
    issuedAt: claims['iat'],
    expiresAt: claims['exp'],
    kid: parsed.jws.header.kid,
  };
}

/** What became of re-checking the token's signature with the cell's pinned key. */
function signatureCheck(token: string, keys: ReadonlyMap<string, AgentKey> | undefined): string {
  if (keys === undefined) return 'not re-verified (give --cell <dir> to check it against the cell\'s keys)';
  const parsed = parseCompactJws(token);
  if (!parsed.ok) return `NOT VERIFIED: the token does not parse (${parsed.problem.message})`;
  const key = keys.get(parsed.jws.header.kid);
  if (key === undefined) return `not re-verified: kid ${parsed.jws.header.kid} is not among the cell's keys`;
  return verifyJws(parsed.jws, key.publicKey) ? `verified with ${key.kid} (${key.owner} ${key.agentId})` : `DOES NOT VERIFY with ${key.kid}: the record is not what ${key.agentId} signed`;
}

function timeText(seconds: unknown): string {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : String(seconds);
}

function seqOf(record: AuditBody): number | undefined {
  return typeof record['seq'] === 'number' ? record['seq'] : undefined;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
