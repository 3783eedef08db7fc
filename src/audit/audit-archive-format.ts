// The audit archive file and its standalone verification. One JSON object per line: a header (format, version,
// origin, first and last seq, the hash before the first record, the signed checkpoint that covers the last record),
// then each record's stored body and hash verbatim. Verification trusts nothing in the file but what the public key
// and sha256 prove: a record edited, dropped, added or reordered, or a checkpoint forged, fails it.

import type { KeyObject } from 'node:crypto';
import { checkpointSignatureValid, type AuditCheckpoint } from './audit-checkpoint.js';
import type { VerifyResult } from './audit-log.js';
import { checkChainLink, HASH_PATTERN } from './sqlite-audit-verify.js';

export const ARCHIVE_FORMAT = 'interlock-audit-archive';
export const ARCHIVE_VERSION = 1;

export interface ArchiveHeader {
  readonly format: typeof ARCHIVE_FORMAT;
  readonly version: typeof ARCHIVE_VERSION;
  /** Who signed the checkpoint (the interlock's thing or cell name). */
  readonly origin: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** The hash of record firstSeq - 1 (the genesis hash when firstSeq is 1): the first record's prevHash. */
  readonly baseHash: string;
  /** The signed checkpoint whose size is lastSeq and whose head is the last record's hash. */
  readonly checkpoint: AuditCheckpoint;
  readonly createdMs: number;
}

/** One archived record: the stored body text and hash, exactly as in the database. */
export interface ArchiveLine {
  readonly seq: number;
  readonly hash: string;
  readonly body: string;
}

/** The archive's file name for a seq range, zero-padded so that names sort in seq order. */
export function archiveFileName(firstSeq: number, lastSeq: number): string {
  const pad = (n: number): string => String(n).padStart(12, '0');
  return `audit-${pad(firstSeq)}-${pad(lastSeq)}.jsonl`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function problemOfCheckpoint(value: unknown): string | undefined {
  if (!isObject(value)) return 'header.checkpoint is not an object';
  for (const key of ['seq', 'size', 'timeMs'] as const) {
    if (!Number.isSafeInteger(value[key])) return `header.checkpoint.${key} is not an integer`;
  }
  for (const key of ['head', 'origin', 'signature'] as const) {
    if (typeof value[key] !== 'string') return `header.checkpoint.${key} is not a string`;
  }
  return undefined;
}

/** Reads and checks the header line; a string says which field is wrong. */
export function parseArchiveHeader(line: string | undefined): ArchiveHeader | string {
  if (line === undefined || line.trim() === '') return 'the archive is empty (no header line)';
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return `the header line is not JSON (${error instanceof Error ? error.message : String(error)})`;
  }
  if (!isObject(value)) return 'the header line is not a JSON object';
  if (value['format'] !== ARCHIVE_FORMAT) return `header.format is ${JSON.stringify(value['format'])}, not "${ARCHIVE_FORMAT}" (not an audit archive)`;
  if (value['version'] !== ARCHIVE_VERSION) return `header.version is ${JSON.stringify(value['version'])}; this build reads version ${ARCHIVE_VERSION}`;
  for (const key of ['firstSeq', 'lastSeq', 'createdMs'] as const) {
    if (!Number.isSafeInteger(value[key]) || (value[key] as number) < 0) return `header.${key} is not a non-negative integer`;
  }
  if ((value['firstSeq'] as number) < 1 || (value['lastSeq'] as number) < (value['firstSeq'] as number)) {
    return `header.firstSeq (${String(value['firstSeq'])}) and lastSeq (${String(value['lastSeq'])}) are not a range of records`;
  }
  if (typeof value['baseHash'] !== 'string' || !HASH_PATTERN.test(value['baseHash'])) return 'header.baseHash is not a sha256 hex digest';
  if (typeof value['origin'] !== 'string') return 'header.origin is not a string';
  const checkpointProblem = problemOfCheckpoint(value['checkpoint']);
  if (checkpointProblem !== undefined) return checkpointProblem;
  return value as unknown as ArchiveHeader;
}

/**
 * Verifies an archive's text on its own: the header, the checkpoint's signature under `publicKey`, the records
 * firstSeq..lastSeq each exactly once and in order, each hash the sha256 of its body, the chain linked from
 * baseHash, and the checkpoint covering exactly the last record (size lastSeq, head its hash).
 */
export function verifyArchiveText(text: string, publicKey: KeyObject): VerifyResult {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const header = parseArchiveHeader(lines[0]);
  if (typeof header === 'string') return { ok: false, seq: 0, problem: header };
  const { checkpoint, firstSeq, lastSeq } = header;
  // SAFETY: the signature first; nothing a forged checkpoint claims is used.
  if (!checkpointSignatureValid(checkpoint, publicKey)) return { ok: false, seq: lastSeq, problem: `checkpoint ${checkpoint.seq}: signature does not verify (forged or edited, or not this interlock's key?)` };
  if (checkpoint.origin !== header.origin) return { ok: false, seq: lastSeq, problem: `header.origin "${header.origin}" is not the checkpoint's signer "${checkpoint.origin}"` };
  if (checkpoint.size !== lastSeq) {
    return { ok: false, seq: Math.min(lastSeq, checkpoint.size) + 1, problem: `the checkpoint covers ${checkpoint.size} records but the archive says it ends at record ${lastSeq} (records dropped or added?)` };
  }
  let expectedSeq = firstSeq;
  let prevHash = header.baseHash;
  for (const [index, line] of lines.slice(1).entries()) {
    const at = (text: string): VerifyResult => ({ ok: false, seq: expectedSeq, problem: `line ${index + 2}: ${text}` });
    if (expectedSeq > lastSeq) return at(`a record after the last one (${lastSeq}) the header names (added?)`);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      return at('not JSON');
    }
    if (!isObject(value)) return at('not a JSON object');
    if (value['seq'] !== expectedSeq) {
      return at(typeof value['seq'] === 'number' && value['seq'] > expectedSeq ? `record ${expectedSeq} missing (next line is record ${value['seq']})` : `record ${String(value['seq'])} where record ${expectedSeq} belongs (reordered or repeated?)`);
    }
    const link = checkChainLink({ body: value['body'], hash: value['hash'] }, expectedSeq, prevHash, firstSeq - 1);
    if ('problem' in link) return { ok: false, seq: link.problem.seq, problem: link.problem.text.replace(/prevHash is not the (genesis|base) hash.*$/, 'prevHash is not the archive\'s baseHash (chain replaced?)') };
    prevHash = value['hash'] as string;
    expectedSeq += 1;
  }
  if (expectedSeq <= lastSeq) {
    const missing = expectedSeq === lastSeq ? `record ${lastSeq} missing` : `records ${expectedSeq}..${lastSeq} missing`;
    return { ok: false, seq: expectedSeq, problem: `${missing}: the checkpoint covers ${lastSeq} records (truncated?)` };
  }
  if (prevHash !== checkpoint.head) return { ok: false, seq: lastSeq, problem: `record ${lastSeq} has hash ${prevHash}, not the checkpoint head ${checkpoint.head} (records replaced?)` };
  return { ok: true, records: lastSeq - firstSeq + 1, headHash: prevHash };
}
