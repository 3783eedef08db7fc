// The messages between the main thread's WorkerAuditLog and the writer thread's host (audit-worker-host.ts), and how
// an error crosses between them. An error must arrive with its AuditWriteError code intact: the interlock turns that
// code into the deny reason, so a code lost on the way would change why a command was refused.

import type { MessagePort } from 'node:worker_threads';
import { AuditWriteError, type AuditEntry, type AuditFailureCode, type AuditReceipt } from './audit-log.js';
import type { SqliteAuditLogOptions } from './sqlite-audit-log.js';
import type { SqliteAuditSurface } from './sqlite-audit-surface.js';

/** The methods answered while the main thread waits (the rare ones: start-up, metrics, forwarding, close). */
export type SyncMethod = 'head' | 'read' | 'verify' | 'health' | 'stats' | 'acknowledge' | 'acknowledgedSeq' | 'unacknowledged' | 'applyRetention' | 'latestCheckpoint' | 'pragmas' | 'close';

/** Main → writer, on one port so that every request is served in call order (a close after records flushes them). */
export type WriterRequest =
  | { readonly type: 'record'; readonly id: number; readonly entry: AuditEntry; readonly safeState: boolean }
  | { readonly type: 'call'; readonly id: number; readonly method: SyncMethod; readonly args: readonly unknown[] };

/** One record's outcome: its receipt once committed, or why not. */
export type RecordResult = { readonly id: number; readonly receipt: AuditReceipt } | { readonly id: number; readonly error: WireError };

/** Writer → main, read by the main thread's event loop. */
export type WriterEvent =
  | { readonly type: 'opened'; readonly notices: readonly string[] }
  | { readonly type: 'open-failed'; readonly error: WireError }
  | { readonly type: 'settled'; readonly results: readonly RecordResult[] }
  | { readonly type: 'log'; readonly warn: boolean; readonly message: string };

/** What close() hands back, so health and counters can still be read after the writer thread is gone. */
export interface ClosedState {
  readonly health: ReturnType<SqliteAuditSurface['health']>;
  readonly stats: ReturnType<SqliteAuditSurface['stats']>;
  readonly acknowledgedSeq: number;
}

/** Writer → main, the answer to one `call`, read while the main thread waits for it. */
export type CallReply = { readonly id: number; readonly value: unknown } | { readonly id: number; readonly error: WireError };

/** The options that can cross to the writer thread (functions cannot). */
export type WriterOptions = Omit<SqliteAuditLogOptions, 'log' | 'warn' | 'nowMs'>;

/** Main → writer thread (its parentPort): serve one more log, on the ports given. */
export interface OpenRequest {
  readonly type: 'open';
  readonly data: WriterData;
}

export interface WriterData {
  readonly path: string;
  readonly options: WriterOptions;
  readonly requests: MessagePort;
  readonly events: MessagePort;
  readonly replies: MessagePort;
  /**
   * Int32 slots shared with the main thread: [0] the id of the last call answered, [1] set to 1 when the writer
   * thread exits. The main thread waits on them (Atomics.wait) instead of its event loop while a call is answered.
   */
  readonly signal: SharedArrayBuffer;
}

/** Slot indexes in `signal`. */
export const ANSWERED = 0;
export const GONE = 1;

export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

const FAILURE_CODES: readonly AuditFailureCode[] = ['AUDIT_LOG_FULL', 'AUDIT_DISK_FULL', 'AUDIT_OUTCOME_UNKNOWN', 'AUDIT_UNAVAILABLE'];

export function toWire(error: unknown): WireError {
  if (error instanceof AuditWriteError) return { name: error.name, message: error.message, code: error.code };
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/** The error as the in-thread log would have thrown it: an AuditWriteError keeps its code, the usual types their type. */
export function fromWire(wire: WireError): Error {
  const code = FAILURE_CODES.find((c) => c === wire.code);
  if (wire.name === 'AuditWriteError' && code !== undefined) return new AuditWriteError(code, wire.message);
  if (wire.name === 'RangeError') return new RangeError(wire.message);
  if (wire.name === 'TypeError') return new TypeError(wire.message);
  const error = new Error(wire.message);
  if (wire.name !== 'Error') error.name = wire.name;
  return error;
}
