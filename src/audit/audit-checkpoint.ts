// Signed checkpoints of the audit log: "the first `size` records end in hash `head`", signed with the interlock's
// Ed25519 key, so dropping the newest records is detectable. A checkpoint whose signature does not verify is never
// trusted.

import { sign, verify, type KeyObject } from 'node:crypto';

export interface AuditCheckpoint {
  /** The checkpoint's own number, gapless from 1. */
  readonly seq: number;
  /** How many records it covers: records 1..size. */
  readonly size: number;
  /** The hash of record `size`. */
  readonly head: string;
  /** Who signed it (the interlock's thing or cell name). */
  readonly origin: string;
  readonly timeMs: number;
  /** Ed25519 over `checkpointMessage`, base64url. */
  readonly signature: string;
}

export type UnsignedCheckpoint = Omit<AuditCheckpoint, 'signature'>;

export interface AuditCheckpointOptions {
  /** The interlock's own Ed25519 private key. */
  readonly privateKey: KeyObject;
  /** Names the signer in every checkpoint (e.g. the thing name); no line breaks. */
  readonly origin: string;
  /** Write a checkpoint once this many records are not yet covered. Default 100. */
  readonly everyRecords?: number;
  /**
   * Or once this long has passed since the last checkpoint, at the next write; and this long after the last write
   * if records are still uncovered then (so an idle log is covered too). Default 10,000 ms.
   */
  readonly everyMs?: number;
  /** The clock for `timeMs` and `everyMs`. Default Date.now. */
  readonly nowMs?: () => number;
  /** Starts the idle timer; returns its cancel. Default an unref'd setTimeout (it never keeps the process alive). */
  readonly setTimer?: (callback: () => void, ms: number) => () => void;
}

export interface CheckpointSettings {
  readonly privateKey: KeyObject;
  readonly origin: string;
  readonly everyRecords: number;
  readonly everyMs: number;
  readonly nowMs: () => number;
  readonly setTimer: (callback: () => void, ms: number) => () => void;
}

function unrefTimer(callback: () => void, ms: number): () => void {
  const handle = setTimeout(callback, ms);
  handle.unref();
  return () => clearTimeout(handle);
}

/** Checks the options at open time, so a wrong key fails the start rather than the first checkpoint. */
export function checkpointSettings(options: AuditCheckpointOptions): CheckpointSettings {
  const { privateKey, origin } = options;
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new TypeError('checkpoints: privateKey must be an Ed25519 private key');
  }
  // SAFETY: the signed message is line-based; a line break in the origin could make two checkpoints' texts collide.
  if (origin === '' || /[\r\n]/.test(origin)) throw new TypeError('checkpoints: origin must be non-empty, one line');
  const everyRecords = options.everyRecords ?? 100;
  const everyMs = options.everyMs ?? 10_000;
  if (!Number.isSafeInteger(everyRecords) || everyRecords < 1) {
    throw new RangeError(`checkpoints: everyRecords must be a positive integer, got ${everyRecords}`);
  }
  if (!Number.isSafeInteger(everyMs) || everyMs < 1) {
    throw new RangeError(`checkpoints: everyMs must be a positive integer, got ${everyMs}`);
  }
  return { privateKey, origin, everyRecords, everyMs, nowMs: options.nowMs ?? Date.now, setTimer: options.setTimer ?? unrefTimer };
}

/** The exact bytes signed: one field per line, with a fixed first line so the signature means nothing else. */
export function checkpointMessage(checkpoint: UnsignedCheckpoint): Buffer {
  const { origin, seq, size, head, timeMs } = checkpoint;
  const text = `physical-ai-interlock audit checkpoint v1\norigin ${origin}\ncheckpoint ${seq}\nsize ${size}\nhead ${head}\ntime ${timeMs}\n`;
  return Buffer.from(text, 'utf8');
}

export function signCheckpoint(checkpoint: UnsignedCheckpoint, privateKey: KeyObject): AuditCheckpoint {
  return { ...checkpoint, signature: sign(null, checkpointMessage(checkpoint), privateKey).toString('base64url') };
}

/** Whether the signature verifies under `publicKey`; any error (bad encoding, wrong key type) is false. */
export function checkpointSignatureValid(checkpoint: AuditCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, checkpointMessage(checkpoint), publicKey, Buffer.from(checkpoint.signature, 'base64url'));
  } catch {
    return false;
  }
}
