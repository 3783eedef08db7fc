// `interlock audit archive --out PATH [--upto SEQ]` and `interlock audit verify --archive FILE [--key PEM]`: the
// archive for sites without cloud (src/audit/audit-archive.ts does the work), and its standalone verification.
// The archive is the one audit subcommand that writes: one event record and the acknowledgement cursor.

import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { archiveAuditLog, verifyAuditArchive } from '../audit/audit-archive.js';
import { ed25519PublicKeyFromPem } from '../crypto/jws.js';
import { messageOf } from './audit-reader.js';
import type { CliIo } from './cli-io.js';

export interface AuditArchiveOptions {
  readonly databasePath: string;
  /** `verify --archive`: the archive file to check. */
  readonly archive?: string | undefined;
  readonly out?: string | undefined;
  readonly upto?: string | undefined;
  /** The interlock's public key file; default `<state-dir>/keys/interlock.pub.pem`. */
  readonly key?: string | undefined;
}

/** The public key from `keyFile`, or the state folder's when none is named; undefined when neither exists. */
function loadPublicKey(databasePath: string, keyFile: string | undefined, io: CliIo): KeyObject | undefined | 'failed' {
  const path = keyFile ?? join(dirname(databasePath), 'keys', 'interlock.pub.pem');
  if (!existsSync(path)) {
    if (keyFile === undefined) return undefined;
    io.err(`interlock: --key ${keyFile}: no such file`);
    return 'failed';
  }
  try {
    return ed25519PublicKeyFromPem(readFileSync(path, 'utf8'));
  } catch (error) {
    io.err(`interlock: ${path} is not the interlock's Ed25519 public key: ${messageOf(error)}`);
    return 'failed';
  }
}

/** `interlock audit archive`: exit 0 archived, 1 nothing archivable or a failure, 2 usage. */
export function runAuditArchive(extra: readonly string[], options: AuditArchiveOptions, io: CliIo): number {
  if (extra.length > 0) return io.usageError(`audit archive takes no arguments, got extra: ${extra.join(' ')}`);
  if (options.out === undefined || options.out.trim() === '') return io.usageError('audit archive needs --out <file or existing folder>');
  let uptoSeq: number | undefined;
  if (options.upto !== undefined) {
    if (!/^[1-9]\d{0,14}$/.test(options.upto)) return io.usageError(`--upto must be a record seq (a whole number >= 1), not "${options.upto}"`);
    uptoSeq = Number(options.upto);
  }
  const publicKey = loadPublicKey(options.databasePath, options.key, io);
  if (publicKey === 'failed') return 1;
  if (publicKey === undefined) io.err(`interlock: no public key (--key or <state-dir>/keys/interlock.pub.pem): the checkpoint's signature is not checked before archiving`);
  const outcome = archiveAuditLog(options.databasePath, options.out, { ...(uptoSeq === undefined ? {} : { uptoSeq }), ...(publicKey === undefined ? {} : { publicKey }) });
  if (!outcome.ok) {
    io.err(`interlock: ${outcome.problem}`);
    return 1;
  }
  io.out(
    `archived records ${outcome.firstSeq}..${outcome.lastSeq} (checkpoint ${outcome.checkpointSeq}) to ${outcome.file}; acknowledged up to ${outcome.acknowledgedSeq}; event record ${outcome.eventSeq}`,
  );
  return 0;
}

/** `interlock audit verify --archive FILE`: exit 0 ok, 1 broken or unreadable. A public key is required. */
export function runArchiveVerify(file: string, options: AuditArchiveOptions, io: CliIo): number {
  const publicKey = loadPublicKey(options.databasePath, options.key, io);
  if (publicKey === 'failed') return 1;
  if (publicKey === undefined) {
    // SAFETY: without the key a forged checkpoint would pass; an archive is never "ok" unchecked.
    io.err(`interlock: verifying an archive needs the interlock's public key: --key <interlock.pub.pem> (or <state-dir>/keys/interlock.pub.pem)`);
    return 1;
  }
  const result = verifyAuditArchive(file, publicKey);
  if (result.ok) {
    io.out(`ok: ${result.records} records, head ${result.headHash}`);
    return 0;
  }
  io.out(`broken at seq ${result.seq}: ${result.problem.replace(new RegExp(`^record ${result.seq}: `), '')}`);
  return 1;
}

/**
 * `audit archive` and `audit verify --archive` apart from the readers: the exit code when the command line is one of
 * them (or misuses their options), undefined when it is for the readers. `readerFlags`: the readers' options given.
 */
export function runArchiveSubcommand(positionals: readonly string[], options: AuditArchiveOptions, readerFlags: readonly string[], io: CliIo): number | undefined {
  const archiving = positionals[0] === 'archive' || options.archive !== undefined;
  if (archiving && readerFlags.length > 0) return io.usageError(`${readerFlags[0] ?? ''} does not apply to audit archive or verify --archive`);
  if (positionals[0] === 'archive') return runAuditArchive(positionals.slice(1), options, io);
  if (options.out !== undefined || options.upto !== undefined) return io.usageError('--out and --upto apply to audit archive only');
  if (options.archive === undefined) return undefined;
  if (positionals[0] !== 'verify') return io.usageError('--archive applies to audit verify only');
  if (positionals.length > 1) return io.usageError(`audit verify takes no arguments, got extra: ${positionals.slice(1).join(' ')}`);
  return runArchiveVerify(options.archive, options, io);
}
