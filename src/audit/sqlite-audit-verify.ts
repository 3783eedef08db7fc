// Verification of the SQLite audit log as stored: gapless seqs, each hash the sha256 of its body, each body linked
// to the previous hash, the indexed columns mirroring the body, the chain's base attested by a record, and every
// signed checkpoint reached by the records. It reads only; a record it cannot read back is a failure, never a pass.

import type { KeyObject } from 'node:crypto';
import { checkpointSignatureValid, type AuditCheckpoint } from './audit-checkpoint.js';
import { GENESIS_HASH, type AuditRecord, type VerifyResult } from './audit-log.js';
import { sha256Hex } from './sqlite-audit-entry.js';
import { messageOf, readMeta, type AuditStatements, type CheckpointRow, type IndexedColumns, type RecordRow } from './sqlite-audit-schema.js';

export const HASH_PATTERN = /^[0-9a-f]{64}$/;

/** Events whose detail attests where the chain in this file starts (retention, or a new segment after corruption). */
const BASE_EVENTS: readonly string[] = ['audit-retention', 'audit-segment-started'];

// Which body field each indexed column mirrors, in the order verify() reports mismatches.
const COLUMN_FIELDS: readonly (readonly [keyof IndexedColumns, string])[] = [
  ['time_ms', 'timeMs'],
  ['kind', 'kind'],
  ['command_id', 'commandId'],
  ['parent_seq', 'parentSeq'],
  ['agent_id', 'agentId'],
  ['device_id', 'deviceId'],
  ['action', 'action'],
  ['verdict', 'verdict'],
  ['prev_hash', 'prevHash'],
];

export interface RowProblem {
  readonly seq: number;
  readonly text: string;
}

interface ChainBase {
  readonly seq: number;
  readonly hash: string;
}

/** The parsed body, or a description of why it is not a record body. */
export function parseBody(text: string): Record<string, unknown> | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return `body is not JSON (${messageOf(error)})`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'body is not a JSON object';
  return parsed as Record<string, unknown>;
}

/** Records from `fromSeq`, at most `limit`, read back from their bodies (never from the columns). */
export function readRecords(statements: AuditStatements, path: string, fromSeq: number, limit: number): AuditRecord[] {
  const rows = statements.selectFrom.all(fromSeq, limit) as Pick<RecordRow, 'seq' | 'body' | 'hash'>[];
  return rows.map((row) => {
    const body = parseBody(row.body);
    if (typeof body === 'string') throw new Error(`audit log ${path}: record ${row.seq}: ${body}`);
    return { ...(body as unknown as Omit<AuditRecord, 'hash'>), hash: row.hash };
  });
}

/**
 * One link of the chain, for a record already known to sit at `expectedSeq`: its body parses, names that seq, hashes
 * to `hash`, and links to `prevHash`. Returns the parsed body, or the first problem. Shared with archive verification.
 */
export function checkChainLink(
  record: { readonly body: unknown; readonly hash: unknown },
  expectedSeq: number,
  prevHash: string,
  baseSeq: number,
): { readonly body: Record<string, unknown> } | { readonly problem: RowProblem } {
  const at = (text: string): { problem: RowProblem } => ({ problem: { seq: expectedSeq, text: `record ${expectedSeq}: ${text}` } });
  if (typeof record.body !== 'string') return at('body is not text');
  const body = parseBody(record.body);
  if (typeof body === 'string') return at(body);
  if (body['seq'] !== expectedSeq) return at(`body says seq ${JSON.stringify(body['seq'])} (reordered or moved?)`);
  if (typeof record.hash !== 'string' || !HASH_PATTERN.test(record.hash)) return at('hash column is not a sha256 hex digest');
  if (sha256Hex(record.body) !== record.hash) return at('hash does not match its body (edited?)');
  if (body['prevHash'] !== prevHash) {
    return expectedSeq === baseSeq + 1
      ? at(baseSeq === 0 ? 'prevHash is not the genesis hash (chain replaced?)' : `prevHash is not the base hash after record ${baseSeq} (chain replaced?)`)
      : at(`prevHash does not match the hash of record ${expectedSeq - 1} (record ${expectedSeq - 1} rewritten?)`);
  }
  return { body };
}

/** The first problem with one row, given the seq and prevHash the chain expects there. */
export function checkRow(row: RecordRow, expectedSeq: number, prevHash: string, baseSeq = 0): RowProblem | undefined {
  if (row.seq < expectedSeq) return { seq: expectedSeq, text: `record ${expectedSeq}: unexpected record with seq ${row.seq} before it` };
  if (row.seq !== expectedSeq) {
    const last = row.seq - 1;
    const missing = last === expectedSeq ? `record ${expectedSeq} missing` : `records ${expectedSeq}..${last} missing`;
    const where = expectedSeq === baseSeq + 1 ? `log starts at ${row.seq}` : `gap between ${expectedSeq - 1} and ${row.seq}`;
    return { seq: expectedSeq, text: `${missing} (${where})` };
  }
  const link = checkChainLink(row, expectedSeq, prevHash, baseSeq);
  if ('problem' in link) return link.problem;
  // Only now is the body trusted; the columns must mirror it so that queries on them tell the truth.
  for (const [column, field] of COLUMN_FIELDS) {
    const expected = link.body[field] ?? null;
    if (row[column] !== expected) {
      const says = `${JSON.stringify(row[column])} but the body says ${JSON.stringify(expected)}`;
      return { seq: expectedSeq, text: `record ${expectedSeq}: column ${column} is ${says} (column edited?)` };
    }
  }
  return undefined;
}

/**
 * Checks sequence and hash chain, then every checkpoint: numbered from 1, sizes never shrinking, each size
 * reached by the records with the signed head hash there (so dropped newest records show). With `publicKey`,
 * a checkpoint whose signature does not verify is a problem; without it signatures are not checked.
 */
export function verifyStored(statements: AuditStatements, publicKey?: KeyObject): VerifyResult {
  // Where the chain in this file starts, as stored: after retention or a new segment, some record must attest it.
  let base: ChainBase;
  try {
    const seq = readMeta(statements, 'base_seq');
    const hash = readMeta(statements, 'base_hash');
    base = seq === undefined && hash === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: Number(seq), hash: String(hash) };
  } catch (error) {
    return { ok: false, seq: 1, problem: `the chain's base could not be read (${messageOf(error)})` };
  }
  if (!Number.isSafeInteger(base.seq) || base.seq < 0 || !HASH_PATTERN.test(base.hash)) {
    return { ok: false, seq: 1, problem: `the chain's base (seq ${base.seq}, hash ${base.hash}) is malformed (edited?)` };
  }
  let attested = base.seq === 0 && base.hash === GENESIS_HASH;
  let expectedSeq = base.seq + 1;
  let prevHash = base.hash;
  try {
    for (const row of statements.selectAll.iterate() as IterableIterator<RecordRow>) {
      const problem = checkRow(row, expectedSeq, prevHash, base.seq);
      if (problem !== undefined) return { ok: false, seq: problem.seq, problem: problem.text };
      if (!attested && row.kind === 'event') {
        const detail = (JSON.parse(row.body) as { detail?: Record<string, unknown> }).detail;
        attested = BASE_EVENTS.includes(String(detail?.['event'])) && detail?.['baseSeq'] === base.seq && detail?.['baseHash'] === base.hash;
      }
      expectedSeq += 1;
      prevHash = row.hash;
    }
  } catch (error) {
    // SAFETY: a log that cannot be read back is not verified.
    return { ok: false, seq: expectedSeq, problem: `record ${expectedSeq}: could not be read (${messageOf(error)})` };
  }
  // SAFETY: a base moved without a retention (or segment) record in the chain means records were deleted.
  if (!attested) {
    return { ok: false, seq: base.seq + 1, problem: `the chain starts after record ${base.seq}, but no retention or segment record attests that (records deleted?)` };
  }
  const records = expectedSeq - 1;
  const problem = checkCheckpoints(statements, records, publicKey, base);
  if (problem !== undefined) return { ok: false, seq: problem.seq, problem: problem.text };
  return { ok: true, records, headHash: prevHash };
}

export function checkpointOfRow(row: CheckpointRow): AuditCheckpoint {
  return { seq: row.seq, size: row.size, head: row.head, origin: row.origin, timeMs: row.time_ms, signature: row.signature };
}

function checkCheckpoints(statements: AuditStatements, records: number, publicKey: KeyObject | undefined, base: ChainBase): RowProblem | undefined {
  let expectedSeq = 1;
  let lastSize = 0;
  try {
    for (const row of statements.selectCheckpoints.iterate() as IterableIterator<CheckpointRow>) {
      const checkpoint = checkpointOfRow(row);
      const at = (text: string): RowProblem => ({ seq: Math.min(row.size, records + 1), text: `checkpoint ${row.seq}: ${text}` });
      if (row.seq !== expectedSeq) return at(`expected checkpoint ${expectedSeq} here (checkpoints deleted or reordered?)`);
      // SAFETY: the signature first, so a forged checkpoint is reported as forged and nothing it claims is used.
      if (publicKey !== undefined && !checkpointSignatureValid(checkpoint, publicKey)) {
        return at('signature does not verify (forged or edited?)');
      }
      if (!Number.isSafeInteger(row.size) || row.size < lastSize) return at(`size ${row.size} is below the previous ${lastSize}`);
      if (row.size > records) {
        const missing = row.size === records + 1 ? `record ${row.size} missing` : `records ${records + 1}..${row.size} missing`;
        return { seq: records + 1, text: `${missing}: checkpoint ${row.seq} covers ${row.size} records (truncated?)` };
      }
      // A checkpoint of records retention has deleted can only be checked at the base itself.
      const stored = row.size === base.seq ? { hash: base.hash } : (statements.selectHashAt.get(row.size) as { hash: string } | undefined);
      if (row.size > 0 && row.size >= base.seq && stored?.hash !== row.head) {
        return at(`record ${row.size} has hash ${stored?.hash ?? 'none'}, not the checkpoint head ${row.head} (records replaced?)`);
      }
      expectedSeq += 1;
      lastSize = row.size;
    }
  } catch (error) {
    // SAFETY: checkpoints that cannot be read back are not verified.
    return { seq: records + 1, text: `checkpoint ${expectedSeq}: could not be read (${messageOf(error)})` };
  }
  return undefined;
}
