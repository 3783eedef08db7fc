// The metrics reporter's memory across restarts: per destination, the last audit seq a published report covered (its
// cursor) and the last report_id used. Written atomically (temp file, fsync, rename, fsync of the folder), so a crash
// leaves the old state or the new one, never a torn file. It never holds a count: counts come from the audit log.

import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export type Destination = 'defender' | 'topic';

export interface DestinationCursor {
  /** Every record up to this seq is in a published report. */
  readonly seq: number;
  /** The last report_id used (published or attempted): the next one is above it. */
  readonly reportId: number;
}

export interface ReporterState {
  readonly version: 1;
  readonly destinations: Partial<Record<Destination, DestinationCursor>>;
}

export const REPORTER_STATE_FILE = 'metrics-reporter.json';

export type LoadedReporterState = { readonly ok: true; readonly state: ReporterState | undefined } | { readonly ok: false; readonly problem: string };

function cursorProblem(value: unknown, where: string): string | undefined {
  if (typeof value !== 'object' || value === null) return `${where} is not an object`;
  const { seq, reportId, ...rest } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(seq) || (seq as number) < 0) return `${where}.seq is not a non-negative integer`;
  if (!Number.isSafeInteger(reportId) || (reportId as number) < 0) return `${where}.reportId is not a non-negative integer`;
  if (Object.keys(rest).length > 0) return `${where} has unknown fields ${Object.keys(rest).join(', ')}`;
  return undefined;
}

/** Reads the state; a missing file is no state (first start), anything unreadable is a problem naming the file and why. */
export function loadReporterState(path: string): LoadedReporterState {
  if (!existsSync(path)) return { ok: true, state: undefined };
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return { ok: false, problem: `${path}: not readable JSON (${error instanceof Error ? error.message : String(error)})` };
  }
  const record = value as { version?: unknown; destinations?: unknown } | null;
  if (typeof record !== 'object' || record === null || record.version !== 1) return { ok: false, problem: `${path}: version is not 1` };
  if (typeof record.destinations !== 'object' || record.destinations === null) return { ok: false, problem: `${path}: destinations is not an object` };
  const destinations: Partial<Record<Destination, DestinationCursor>> = {};
  for (const [name, cursor] of Object.entries(record.destinations)) {
    if (name !== 'defender' && name !== 'topic') return { ok: false, problem: `${path}: unknown destination ${JSON.stringify(name)}` };
    const problem = cursorProblem(cursor, `destinations.${name}`);
    if (problem !== undefined) return { ok: false, problem: `${path}: ${problem}` };
    destinations[name] = cursor as DestinationCursor;
  }
  return { ok: true, state: { version: 1, destinations } };
}

/** Replaces the state file atomically and durably. Throws if it could not (the caller keeps its cursor unmoved). */
export function saveReporterState(path: string, state: ReporterState): void {
  const temp = `${path}.tmp`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  // The rename itself is durable only once the folder is synced.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
