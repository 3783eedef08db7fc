// `interlock audit verify|export|trace|tail`: reads the audit log for people and scripts. It opens the database
// read-only and never writes to it; every record it prints comes from the stored body, never from a column.

import { AUDIT_PAGE_SIZE, messageOf, openAuditReader, type AuditReader, type AuditRow } from './audit-reader.js';
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ed25519PublicKeyFromPem } from '../crypto/jws.js';
import { verifyAuditDatabase } from './audit-verify.js';
import { runTrace } from './audit-trace.js';
import { formatRecordLine } from './audit-format.js';
import type { AgentKey } from '../core/declarations.js';
import { formatProblem } from '../core/problems.js';
import { loadCell } from '../declarations/load.js';
import { parseAgainst } from './audit-against.js';
import type { AuditWatermark } from '../cloud/audit-batch.js';
import type { CliIo } from './cli-io.js';
import { runArchiveSubcommand } from './audit-archive.js';

export const AUDIT_SUBCOMMANDS = ['verify', 'export', 'trace', 'tail'] as const;
export type AuditSubcommand = (typeof AUDIT_SUBCOMMANDS)[number];

const VERDICTS = ['allow', 'hold', 'deny'] as const;
const KINDS = ['decision', 'outcome', 'event'] as const;
export const DEFAULT_TAIL_LINES = 20;
export const DEFAULT_FOLLOW_POLL_MS = 200;

/** The command line as given: strings still to be read. */
export interface AuditCommandOptions {
  readonly databasePath: string;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly agent?: string | undefined;
  readonly device?: string | undefined;
  readonly verdict?: string | undefined;
  readonly kind?: string | undefined;
  readonly lines?: string | undefined;
  readonly follow?: boolean | undefined;
  readonly json?: boolean | undefined;
  /** `trace`: the cell folder whose pinned keys re-verify the recorded command tokens. */
  readonly cell?: string | undefined;
  /** Ends `tail --follow`; default: the first SIGINT or SIGTERM. */
  readonly stop?: AbortSignal | undefined;
  readonly pollMs?: number | undefined;
  /** `archive`: where the archive goes; `--upto`: its last record at most; `verify --archive`: a file to check. */
  readonly out?: string | undefined;
  readonly upto?: string | undefined;
  readonly archive?: string | undefined;
  /** The interlock's public key file (archive and verify --archive). */
  readonly key?: string | undefined;
  /** `verify --against SEQ:HASH|FILE`: the cloud receiver's acknowledged head (audit-against.ts). */
  readonly against?: string | undefined;
}

type OptionName = 'since' | 'until' | 'agent' | 'device' | 'verdict' | 'kind' | 'lines' | 'follow' | 'json' | 'cell' | 'against';
const OPTION_FLAGS: Record<OptionName, string> = {
  since: '--since',
  until: '--until',
  agent: '--agent',
  device: '--device',
  verdict: '--verdict',
  kind: '--kind',
  lines: '-n/--lines',
  follow: '--follow',
  json: '--json',
  cell: '--cell',
  against: '--against',
};
const OPTIONS_OF: Record<AuditSubcommand, readonly OptionName[]> = {
  verify: ['against'],
  export: ['since', 'until', 'agent', 'device', 'verdict', 'kind'],
  trace: ['json', 'cell'],
  tail: ['lines', 'follow', 'json'],
};

/** Which records `export` prints; every field must match. `sinceMs` is inclusive, `untilMs` exclusive. */
export interface AuditFilter {
  readonly sinceMs?: number;
  readonly untilMs?: number;
  readonly agentId?: string;
  readonly deviceId?: string;
  readonly verdict?: (typeof VERDICTS)[number];
  readonly kind?: (typeof KINDS)[number];
}

export type AuditRequest =
  | { readonly subcommand: 'verify'; readonly against?: AuditWatermark }
  | { readonly subcommand: 'export'; readonly filter: AuditFilter }
  | { readonly subcommand: 'trace'; readonly id: string; readonly json: boolean }
  | { readonly subcommand: 'tail'; readonly lines: number; readonly follow: boolean; readonly json: boolean };

/** Reads the subcommand and its options; a string says which argument or option is wrong and why. */
export function parseAuditRequest(positionals: readonly string[], options: AuditCommandOptions): AuditRequest | string {
  const [subcommand, ...rest] = positionals;
  if (subcommand === undefined) return `audit needs a subcommand: ${AUDIT_SUBCOMMANDS.join(', ')}`;
  if (!isOneOf(AUDIT_SUBCOMMANDS, subcommand)) return `unknown audit subcommand "${subcommand}" (expected ${AUDIT_SUBCOMMANDS.join(', ')}, archive)`;
  for (const name of Object.keys(OPTION_FLAGS) as OptionName[]) {
    if (options[name] !== undefined && options[name] !== false && !OPTIONS_OF[subcommand].includes(name)) {
      return `${OPTION_FLAGS[name]} does not apply to audit ${subcommand}${subcommand === 'export' && name === 'json' ? ' (export always writes JSON lines)' : ''}`;
    }
  }
  const extra = subcommand === 'trace' ? rest.slice(1) : rest;
  if (extra.length > 0) return `audit ${subcommand} takes ${subcommand === 'trace' ? 'one id' : 'no arguments'}, got extra: ${extra.join(' ')}`;
  switch (subcommand) {
    case 'verify': {
      if (options.against === undefined) return { subcommand };
      const against = parseAgainst(options.against);
      return typeof against === 'string' ? against : { subcommand, against };
    }
    case 'export': {
      const filter = parseFilter(options);
      return typeof filter === 'string' ? filter : { subcommand, filter };
    }
    case 'trace': {
      const id = rest[0];
      if (id === undefined || id.trim() === '') return 'audit trace needs an id: a command id, a command digest, an approval id or an agent session id';
      return { subcommand, id, json: options.json === true };
    }
    case 'tail': {
      let lines = DEFAULT_TAIL_LINES;
      if (options.lines !== undefined) {
        if (!/^\d{1,9}$/.test(options.lines)) return `-n/--lines must be a whole number >= 0, not "${options.lines}"`;
        lines = Number(options.lines);
      }
      return { subcommand, lines, follow: options.follow === true, json: options.json === true };
    }
  }
}

function parseFilter(options: AuditCommandOptions): AuditFilter | string {
  const sinceMs = options.since === undefined ? undefined : parseIsoTime(options.since);
  if (sinceMs === null) return `--since: cannot read "${options.since ?? ''}" as an ISO 8601 time with a zone (e.g. 2026-11-22T08:00:00Z, or a date: 2026-11-22)`;
  const untilMs = options.until === undefined ? undefined : parseIsoTime(options.until);
  if (untilMs === null) return `--until: cannot read "${options.until ?? ''}" as an ISO 8601 time with a zone (e.g. 2026-11-22T09:00:00Z, or a date: 2026-11-23)`;
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs >= untilMs) {
    return `--since (${options.since ?? ''}) must be before --until (${options.until ?? ''}): --since is inclusive, --until exclusive`;
  }
  for (const name of ['agent', 'device'] as const) {
    if (options[name] !== undefined && options[name].trim() === '') return `--${name} must not be empty`;
  }
  if (options.verdict !== undefined && !isOneOf(VERDICTS, options.verdict)) return `--verdict must be ${VERDICTS.join(', ')}, not "${options.verdict}"`;
  if (options.kind !== undefined && !isOneOf(KINDS, options.kind)) return `--kind must be ${KINDS.join(', ')}, not "${options.kind}"`;
  return {
    ...(sinceMs === undefined ? {} : { sinceMs }),
    ...(untilMs === undefined ? {} : { untilMs }),
    ...(options.agent === undefined ? {} : { agentId: options.agent }),
    ...(options.device === undefined ? {} : { deviceId: options.device }),
    ...(options.verdict === undefined ? {} : { verdict: options.verdict }),
    ...(options.kind === undefined ? {} : { kind: options.kind }),
  };
}

// A time without a zone would be read in the local zone of whoever runs the export; refuse the ambiguity.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** Milliseconds since the epoch, or null when `text` is not an ISO 8601 date or a time with a zone. */
export function parseIsoTime(text: string): number | null {
  if (!ISO_TIME.test(text)) return null;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : null;
}

export function matchesFilter(record: Readonly<Record<string, unknown>>, filter: AuditFilter): boolean {
  const timeMs = record['timeMs'];
  if (filter.sinceMs !== undefined && !(typeof timeMs === 'number' && timeMs >= filter.sinceMs)) return false;
  if (filter.untilMs !== undefined && !(typeof timeMs === 'number' && timeMs < filter.untilMs)) return false;
  if (filter.agentId !== undefined && record['agentId'] !== filter.agentId) return false;
  if (filter.deviceId !== undefined && record['deviceId'] !== filter.deviceId) return false;
  if (filter.verdict !== undefined && record['verdict'] !== filter.verdict) return false;
  if (filter.kind !== undefined && record['kind'] !== filter.kind) return false;
  return true;
}

/** Runs one `interlock audit` subcommand; returns the exit code: 0 ok, 1 broken, unreadable or unknown, 2 usage. */
export async function runAuditCommand(positionals: readonly string[], options: AuditCommandOptions, io: CliIo): Promise<number> {
  const readerFlags = (Object.keys(OPTION_FLAGS) as OptionName[]).filter((n) => options[n] !== undefined && options[n] !== false).map((n) => OPTION_FLAGS[n]);
  const archived = runArchiveSubcommand(positionals, options, readerFlags, io);
  if (archived !== undefined) return archived;
  const request = parseAuditRequest(positionals, options);
  if (typeof request === 'string') return io.usageError(request);
  if (request.subcommand === 'verify') return runVerify(options.databasePath, io, request.against);
  const opened = openAuditReader(options.databasePath);
  if (!opened.ok) {
    io.err(`interlock: ${opened.problem}`);
    return 1;
  }
  const { reader } = opened;
  const problems = new ProblemReport(reader.path, io);
  try {
    switch (request.subcommand) {
      case 'export':
        runExport(reader, request.filter, io, problems);
        break;
      case 'trace': {
        let keys: ReadonlyMap<string, AgentKey> | undefined;
        if (options.cell !== undefined) {
          const loaded = loadCell(options.cell);
          if (!loaded.ok) {
            io.err(`interlock: cannot read the keys of ${options.cell}: ${loaded.problems.length} problem(s) in its declarations`);
            for (const problem of loaded.problems) io.err(`  ${formatProblem(problem)}`);
            return 1;
          }
          keys = loaded.cell.declarations.keys;
        }
        if (!runTrace(reader, request.id, request.json, io, problems, keys)) return 1;
        break;
      }
      case 'tail':
        await runTail(reader, request, options, io, problems);
        break;
    }
  } catch (error) {
    io.err(`interlock: cannot read the audit database ${reader.path}: ${messageOf(error)}`);
    return 1;
  } finally {
    reader.close();
  }
  return problems.count === 0 ? 0 : 1;
}

async function runVerify(path: string, io: CliIo, against?: AuditWatermark): Promise<number> {
  // The interlock's public key beside the database (<state-dir>/keys/interlock.pub.pem) lets verify check the
  // signed checkpoints too; without it the chain and the checkpoints' sizes and heads are still checked.
  const keyPath = join(dirname(path), 'keys', 'interlock.pub.pem');
  let publicKey: KeyObject | undefined;
  if (existsSync(keyPath)) {
    try {
      publicKey = ed25519PublicKeyFromPem(readFileSync(keyPath, 'utf8'));
    } catch (error) {
      io.err(`interlock: ${keyPath} is not the interlock's Ed25519 public key: ${messageOf(error)}`);
      return 1;
    }
  }
  const outcome = await verifyAuditDatabase(path, publicKey, against);
  switch (outcome.status) {
    case 'ok':
      io.out(`ok: ${outcome.records} records, head ${outcome.headHash}${outcome.against === undefined ? '' : `; ${outcome.against}`}`);
      return 0;
    case 'broken': {
      // verify() names the record in its text already; say the seq once, up front.
      const why = outcome.problem.replace(new RegExp(`^record ${outcome.seq}: `), '');
      io.out(`broken at seq ${outcome.seq}: ${why}`);
      return 1;
    }
    case 'unreadable':
      io.err(`interlock: ${outcome.problem}`);
      return 1;
  }
}

/** Names each record whose body cannot be read (on stderr, the first few); any makes the exit code 1. */
export class ProblemReport {
  static readonly SHOWN = 20;
  count = 0;
  readonly #path: string;
  readonly #io: CliIo;

  constructor(path: string, io: CliIo) {
    this.#path = path;
    this.#io = io;
  }

  /** The record, or undefined after reporting why it cannot be read. */
  take(row: AuditRow): Readonly<Record<string, unknown>> | undefined {
    if (row.ok) return row.record;
    this.count += 1;
    if (this.count <= ProblemReport.SHOWN) this.#io.err(`interlock: ${this.#path}: record ${row.seq}: ${row.problem}`);
    else if (this.count === ProblemReport.SHOWN + 1) this.#io.err(`interlock: ${this.#path}: more unreadable records; run interlock audit verify`);
    return undefined;
  }
}

function runExport(reader: AuditReader, filter: AuditFilter, io: CliIo, problems: ProblemReport): void {
  // The records present when the export starts: a running interlock may append meanwhile.
  for (const row of reader.scan(0, reader.headSeq())) {
    const record = problems.take(row);
    if (record !== undefined && matchesFilter(record, filter)) io.out(JSON.stringify(record));
  }
}

async function runTail(
  reader: AuditReader,
  request: { readonly lines: number; readonly follow: boolean; readonly json: boolean },
  options: AuditCommandOptions,
  io: CliIo,
  problems: ProblemReport,
): Promise<void> {
  const print = (row: AuditRow): void => {
    const record = problems.take(row);
    if (record !== undefined) io.out(request.json ? JSON.stringify(record) : formatRecordLine(record));
  };
  let last = reader.headSeq();
  for (const row of reader.scan(reader.beforeLast(request.lines), last)) print(row);
  if (!request.follow) return;
  const stop = options.stop === undefined ? processStop() : { signal: options.stop, dispose: () => {} };
  const pollMs = options.pollMs ?? DEFAULT_FOLLOW_POLL_MS;
  try {
    while (!stop.signal.aborted) {
      await pause(pollMs, stop.signal);
      if (stop.signal.aborted) break;
      // One short read per page: the connection holds no transaction while it waits.
      for (;;) {
        const rows = reader.page(last);
        for (const row of rows) {
          print(row);
          last = row.seq;
        }
        if (rows.length < AUDIT_PAGE_SIZE) break;
      }
    }
  } finally {
    stop.dispose();
  }
}

function processStop(): { readonly signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  process.on('SIGINT', abort);
  process.on('SIGTERM', abort);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', abort);
      process.off('SIGTERM', abort);
    },
  };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * One record as one readable line: time, seq, kind, verdict, agent -> device, action (or event name), then what
 * is present of reason codes, approval id, approver or operator, parent seq and command id.
 */
function isOneOf<T extends string>(values: readonly T[], value: string): value is T {
  return (values as readonly string[]).includes(value);
}
