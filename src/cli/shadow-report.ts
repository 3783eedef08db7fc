// `interlock shadow-report`: how a candidate (shadow) policy set would have decided, beside what the enforced set
// decided, summarised from the audit log. It opens the database read-only and never writes to it.

import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { AUDIT_SCHEMA_VERSION } from '../audit/sqlite-audit-log.js';

/** Versions 1 to 3 have the same records table (2 adds signed checkpoints, 3 the meta table; the interlock migrates on open). */
const READABLE_VERSIONS: readonly number[] = [1, 2, AUDIT_SCHEMA_VERSION];
import type { CliIo } from './cli-io.js';

const VERDICTS = ['allow', 'hold', 'deny'] as const;
type ReportVerdict = (typeof VERDICTS)[number];

/** What a decision record carries in `detail.shadow`: the shadow set's verdict beside the enforced one. */
export interface ShadowVerdict {
  readonly verdict: ReportVerdict;
  readonly reasons: readonly { readonly code: string; readonly ruleId?: string }[];
  readonly policyVersion: string;
}

/** One decision record with a shadow verdict, as the summary needs it. */
export interface ShadowDecision {
  readonly seq: number;
  readonly agentId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly enforced: ReportVerdict;
  /** Rule ids (or codes, for reasons without one) of the enforced decision. */
  readonly enforcedRules: readonly string[];
  readonly shadow: ReportVerdict;
  readonly shadowRules: readonly string[];
  readonly policyVersion: string;
}

export interface VerdictPair {
  readonly enforced: ReportVerdict;
  readonly shadow: ReportVerdict;
  readonly count: number;
}

export interface RuleCount {
  readonly rule: string;
  readonly count: number;
}

export interface DifferenceGroup {
  readonly agentId: string;
  readonly deviceId: string;
  readonly action: string;
  /** Decisions of this group where enforced and shadow verdicts differ. */
  readonly count: number;
  readonly pairs: readonly VerdictPair[];
  /** Shadow rules the enforced decision did not name: what made the shadow set decide otherwise. */
  readonly shadowRules: readonly RuleCount[];
  /** Enforced rules the shadow set did not name (the shadow set is looser there). */
  readonly enforcedOnlyRules: readonly RuleCount[];
}

export interface ShadowReport {
  readonly database: string;
  readonly sinceMs: number | null;
  /** Decision records in the window, with or without a shadow verdict. */
  readonly decisions: number;
  readonly withShadow: number;
  readonly agree: number;
  readonly differ: number;
  /** Records whose `detail.shadow` is not of the documented shape; left out of every count but this one. */
  readonly malformed: number;
  readonly policyVersions: readonly { readonly policyVersion: string; readonly count: number }[];
  readonly pairs: readonly VerdictPair[];
  /** Agent/device/action groups with differences, most first: at most `TOP_GROUPS`. */
  readonly groups: readonly DifferenceGroup[];
  readonly groupsWithDifferences: number;
}

export const TOP_GROUPS = 10;

export interface ShadowReportOptions {
  readonly databasePath: string;
  readonly sinceMs?: number;
  readonly json: boolean;
}

/** Runs the report; returns the exit code (1 when the database cannot be read or a record is malformed). */
export function runShadowReport(options: ShadowReportOptions, io: CliIo): number {
  const read = readShadowDecisions(options.databasePath, options.sinceMs);
  if (!read.ok) {
    io.err(`interlock: ${read.problem}`);
    return 1;
  }
  for (const problem of read.problems.slice(0, 20)) io.err(`interlock: ${problem}`);
  if (read.problems.length > 20) io.err(`interlock: ... and ${read.problems.length - 20} more malformed shadow records`);
  const report = summariseShadow(read.decisions, { database: options.databasePath, sinceMs: options.sinceMs ?? null, decisionCount: read.decisionCount, malformed: read.problems.length });
  if (options.json) io.out(JSON.stringify(report));
  else for (const line of formatShadowReport(report)) io.out(line);
  return read.problems.length === 0 ? 0 : 1;
}

type ReadResult =
  | { readonly ok: true; readonly decisionCount: number; readonly decisions: readonly ShadowDecision[]; readonly problems: readonly string[] }
  | { readonly ok: false; readonly problem: string };

/** Reads the decision records with a shadow verdict (read-only). Problems name the database, the record and the field. */
export function readShadowDecisions(path: string, sinceMs?: number): ReadResult {
  if (!existsSync(path)) return { ok: false, problem: `no audit database at ${path} (the interlock creates it in its --state-dir)` };
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    return { ok: false, problem: `cannot open the audit database ${path}: ${messageOf(error)}` };
  }
  try {
    const version = Number(db.pragma('user_version', { simple: true }));
    const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'records'").get();
    if (!READABLE_VERSIONS.includes(version) || table === undefined) {
      return { ok: false, problem: `${path} is not an audit log this build reads (schema version ${version}, records table ${table === undefined ? 'missing' : 'present'}; expected version ${AUDIT_SCHEMA_VERSION})` };
    }
    const from = sinceMs ?? Number.MIN_SAFE_INTEGER;
    const { n } = db.prepare("SELECT count(*) AS n FROM records WHERE kind = 'decision' AND time_ms >= ?").get(from) as { n: number };
    // A text pre-filter, not json_extract: one record with a broken body must be reported, not abort the query.
    const rows = db.prepare(`SELECT seq, body FROM records WHERE kind = 'decision' AND time_ms >= ? AND instr(body, '"shadow":') > 0 ORDER BY seq`).iterate(from) as IterableIterator<{ seq: number; body: string }>;
    const decisions: ShadowDecision[] = [];
    const problems: string[] = [];
    for (const row of rows) {
      const parsed = parseShadowDecision(row.seq, row.body);
      if (parsed === undefined) continue;
      if (typeof parsed === 'string') problems.push(`${path}: record ${row.seq}: ${parsed}`);
      else decisions.push(parsed);
    }
    return { ok: true, decisionCount: n, decisions, problems };
  } catch (error) {
    return { ok: false, problem: `cannot read the audit database ${path}: ${messageOf(error)}` };
  } finally {
    db.close();
  }
}

/** The decision with its shadow verdict; undefined when the record has none; a string names the field and why. */
export function parseShadowDecision(seq: number, body: string): ShadowDecision | string | undefined {
  let record: unknown;
  try {
    record = JSON.parse(body);
  } catch (error) {
    return `body is not JSON (${messageOf(error)})`;
  }
  if (!isRecord(record)) return 'body is not a JSON object';
  const detail = record['detail'];
  if (!isRecord(detail) || detail['shadow'] === undefined || detail['shadow'] === null) return undefined;
  const shadow = detail['shadow'];
  if (!isRecord(shadow)) return `/detail/shadow: must be an object, got ${show(shadow)}`;
  if (!isVerdict(shadow['verdict'])) return `/detail/shadow/verdict: must be allow, hold or deny, got ${show(shadow['verdict'])}`;
  if (typeof shadow['policyVersion'] !== 'string' || shadow['policyVersion'] === '') return `/detail/shadow/policyVersion: must be a non-empty string, got ${show(shadow['policyVersion'])}`;
  const shadowRules = rulesOf(shadow['reasons'], '/detail/shadow/reasons');
  if (typeof shadowRules === 'string') return shadowRules;
  if (!isVerdict(record['verdict'])) return `/verdict: the enforced verdict must be allow, hold or deny, got ${show(record['verdict'])}`;
  const enforcedRules = rulesOf(record['reasons'] ?? [], '/reasons');
  if (typeof enforcedRules === 'string') return enforcedRules;
  const text = (field: string, fallback: string): string => (typeof record[field] === 'string' ? (record[field] as string) : fallback);
  return {
    seq,
    agentId: text('agentId', '(unauthenticated)'),
    deviceId: text('deviceId', '?'),
    action: text('action', '?'),
    enforced: record['verdict'],
    enforcedRules,
    shadow: shadow['verdict'],
    shadowRules,
    policyVersion: shadow['policyVersion'],
  };
}

/** Rule ids of a reasons array; a reason without one counts by its code. A comma list (POLICY_FORBIDDEN) is split. */
function rulesOf(reasons: unknown, at: string): string[] | string {
  if (!Array.isArray(reasons)) return `${at}: must be an array, got ${show(reasons)}`;
  const rules: string[] = [];
  for (const [index, r] of reasons.entries()) {
    if (!isRecord(r) || typeof r['code'] !== 'string') return `${at}/${index}/code: must be a string, got ${show(isRecord(r) ? r['code'] : r)}`;
    const ruleId = r['ruleId'];
    if (ruleId !== undefined && typeof ruleId !== 'string') return `${at}/${index}/ruleId: must be a string when present, got ${show(ruleId)}`;
    const ids = ruleId === undefined ? [r['code']] : ruleId.split(',').map((id) => id.trim()).filter((id) => id !== '');
    for (const id of ids) if (!rules.includes(id)) rules.push(id);
  }
  return rules;
}

/** Pure: the counts and the groups where enforced and shadow verdicts differ. */
export function summariseShadow(
  decisions: readonly ShadowDecision[],
  context: { readonly database: string; readonly sinceMs: number | null; readonly decisionCount: number; readonly malformed: number },
): ShadowReport {
  const versions = new Map<string, number>();
  const pairs = new Map<string, VerdictPair>();
  const groups = new Map<string, { agentId: string; deviceId: string; action: string; count: number; pairs: Map<string, VerdictPair>; shadowRules: Map<string, number>; enforcedOnly: Map<string, number> }>();
  const bump = <K>(map: Map<K, number>, key: K): void => {
    map.set(key, (map.get(key) ?? 0) + 1);
  };
  const bumpPair = (map: Map<string, VerdictPair>, d: ShadowDecision): void => {
    const key = `${d.enforced}>${d.shadow}`;
    map.set(key, { enforced: d.enforced, shadow: d.shadow, count: (map.get(key)?.count ?? 0) + 1 });
  };
  let agree = 0;
  for (const d of decisions) {
    bump(versions, d.policyVersion);
    bumpPair(pairs, d);
    if (d.enforced === d.shadow) {
      agree += 1;
      continue;
    }
    const key = JSON.stringify([d.agentId, d.deviceId, d.action]);
    let group = groups.get(key);
    if (group === undefined) {
      group = { agentId: d.agentId, deviceId: d.deviceId, action: d.action, count: 0, pairs: new Map(), shadowRules: new Map(), enforcedOnly: new Map() };
      groups.set(key, group);
    }
    group.count += 1;
    bumpPair(group.pairs, d);
    for (const rule of d.shadowRules) if (!d.enforcedRules.includes(rule)) bump(group.shadowRules, rule);
    for (const rule of d.enforcedRules) if (!d.shadowRules.includes(rule)) bump(group.enforcedOnly, rule);
  }
  const byCount = (a: RuleCount, b: RuleCount): number => b.count - a.count || a.rule.localeCompare(b.rule);
  const counted = (map: Map<string, number>): RuleCount[] => [...map].map(([rule, count]) => ({ rule, count })).sort(byCount);
  const pairOrder = (a: VerdictPair, b: VerdictPair): number => b.count - a.count || VERDICTS.indexOf(a.enforced) - VERDICTS.indexOf(b.enforced) || VERDICTS.indexOf(a.shadow) - VERDICTS.indexOf(b.shadow);
  const ranked = [...groups.values()].sort((a, b) => b.count - a.count || a.agentId.localeCompare(b.agentId) || a.deviceId.localeCompare(b.deviceId) || a.action.localeCompare(b.action));
  return {
    database: context.database,
    sinceMs: context.sinceMs,
    decisions: context.decisionCount,
    withShadow: decisions.length,
    agree,
    differ: decisions.length - agree,
    malformed: context.malformed,
    policyVersions: [...versions].map(([policyVersion, count]) => ({ policyVersion, count })).sort((a, b) => b.count - a.count || a.policyVersion.localeCompare(b.policyVersion)),
    pairs: [...pairs.values()].sort(pairOrder),
    groups: ranked.slice(0, TOP_GROUPS).map((g) => ({
      agentId: g.agentId,
      deviceId: g.deviceId,
      action: g.action,
      count: g.count,
      pairs: [...g.pairs.values()].sort(pairOrder),
      shadowRules: counted(g.shadowRules),
      enforcedOnlyRules: counted(g.enforcedOnly),
    })),
    groupsWithDifferences: groups.size,
  };
}

export function formatShadowReport(report: ShadowReport): string[] {
  const window = report.sinceMs === null ? 'all records' : `since ${new Date(report.sinceMs).toISOString()}`;
  const lines = [`Shadow policy report: ${report.database} (${window})`];
  if (report.withShadow === 0) {
    lines.push(`no decision carries a shadow verdict (${report.decisions} decision(s) in the window${report.malformed > 0 ? `, ${report.malformed} malformed shadow record(s)` : ''}); is a shadow policy set loaded?`);
    return lines;
  }
  const percent = (n: number): string => `${((100 * n) / report.withShadow).toFixed(1)}%`;
  lines.push(
    `${report.decisions} decision(s), ${report.withShadow} with a shadow verdict (policy version ${report.policyVersions.map((v) => `${v.policyVersion}: ${v.count}`).join(', ')})`,
    `agree: ${report.agree} (${percent(report.agree)})   differ: ${report.differ} (${percent(report.differ)})${report.malformed > 0 ? `   malformed, left out: ${report.malformed}` : ''}`,
    '',
    ...table(
      ['ENFORCED', 'SHADOW', 'COUNT', ''],
      report.pairs.map((p) => [p.enforced, p.shadow, String(p.count), p.enforced === p.shadow ? '' : 'differ']),
    ),
  );
  if (report.groups.length === 0) return lines;
  const shown = report.groups.length < report.groupsWithDifferences ? `top ${report.groups.length} of ${report.groupsWithDifferences}` : `${report.groups.length}`;
  lines.push('', `Where they differ (${shown} agent/device/action groups):`);
  lines.push(
    ...table(
      ['COUNT', 'AGENT', 'DEVICE', 'ACTION', 'ENFORCED -> SHADOW', 'SHADOW RULES THAT DIFFER'],
      report.groups.map((g) => [
        String(g.count),
        g.agentId,
        g.deviceId,
        g.action,
        g.pairs.map((p) => `${p.enforced} -> ${p.shadow} (${p.count})`).join(', '),
        [
          g.shadowRules.length === 0 ? '(none)' : g.shadowRules.map((r) => `${r.rule} (${r.count})`).join(', '),
          ...(g.enforcedOnlyRules.length === 0 ? [] : [`enforced only: ${g.enforcedOnlyRules.map((r) => `${r.rule} (${r.count})`).join(', ')}`]),
        ].join('; '),
      ]),
    ),
  );
  return lines;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].map((text) => text.trimEnd());
}

function isVerdict(value: unknown): value is ReportVerdict {
  return typeof value === 'string' && (VERDICTS as readonly string[]).includes(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 40 ? text : `${text.slice(0, 39)}…`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
