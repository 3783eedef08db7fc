// The `interlock replay` command line: reads --cell, --from, --to and --json, then runs the replay (replay.ts).

import type { CliIo } from './cli-io.js';
import { runReplay } from './replay.js';

export interface ReplayCommandOptions {
  readonly cell: string | undefined;
  /** The audit database: --db, or <state-dir>/audit.db. */
  readonly databasePath: string;
  readonly from: string | undefined;
  readonly to: string | undefined;
  readonly json: boolean;
}

/** Exit 0 when the replay ran (changes or not), 1 when an input cannot be read, 2 on a usage error. */
export function runReplayCommand(positionals: readonly string[], options: ReplayCommandOptions, io: CliIo): number {
  if (positionals.length > 0) return io.usageError(`replay takes no arguments (the cell is --cell <dir>), got ${positionals.join(' ')}`);
  if (options.cell === undefined) return io.usageError('replay needs --cell <dir>: the declarations to re-decide the recorded commands against');
  const seqOf = (flag: string, text: string | undefined): number | undefined | string => {
    if (text === undefined) return undefined;
    return /^[1-9]\d{0,14}$/.test(text) ? Number(text) : `${flag} must be a record seq (a whole number >= 1), not "${text}"`;
  };
  const fromSeq = seqOf('--from', options.from);
  const toSeq = seqOf('--to', options.to);
  if (typeof fromSeq === 'string') return io.usageError(fromSeq);
  if (typeof toSeq === 'string') return io.usageError(toSeq);
  if (fromSeq !== undefined && toSeq !== undefined && fromSeq > toSeq) return io.usageError(`--from ${fromSeq} is after --to ${toSeq}`);
  return runReplay(
    {
      cellDirectory: options.cell,
      databasePath: options.databasePath,
      json: options.json,
      ...(fromSeq === undefined ? {} : { fromSeq }),
      ...(toSeq === undefined ? {} : { toSeq }),
    },
    io,
  );
}
