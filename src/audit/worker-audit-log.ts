// Named so that every build that compiles this module compiles the writer thread's entry too: the entry is loaded
// by URL at run time, and tsc follows only imports and references. (test/crash builds from one entry file.)
/// <reference path="./audit-worker-host.ts" />

// The SQLite audit log run on a writer thread, so that its inserts, commits and fsyncs never hold the event loop that
// decides. The surface is SqliteAuditLog's; `record` still resolves only once the writer thread's log resolved it
// (committed and fsynced), and rejects whenever that is not certain: a writer thread that dies rejects every record
// it had not confirmed. The thread's side is audit-worker-host.ts.

import { existsSync } from 'node:fs';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { AuditWriteError, type AuditEntry, type AuditReceipt, type AuditRecord, type RecordOptions, type VerifyResult } from './audit-log.js';
import type { AuditCheckpoint } from './audit-checkpoint.js';
import { ANSWERED, fromWire, GONE, type CallReply, type ClosedState, type OpenRequest, type SyncMethod, type WriterData, type WriterEvent, type WriterOptions } from './audit-worker-protocol.js';
import type { SqliteAuditLogOptions, SqliteAuditStats } from './sqlite-audit-log.js';
import type { AuditHealth, RetentionResult } from './sqlite-audit-retention.js';
import type { AuditHead, SqliteAuditPragmas } from './sqlite-audit-schema.js';
import type { SqliteAuditSurface } from './sqlite-audit-surface.js';

export interface WorkerAuditLogOptions extends Omit<SqliteAuditLogOptions, 'nowMs'> {
  /**
   * The longest the main thread waits for a synchronous call (head, read, health, close...) before it throws.
   * Such a call may wait behind a commit and its fsync. Default 30,000 ms.
   */
  readonly callTimeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** The waiting is sliced so that a thread gone without a word is noticed (the GONE slot) within this. */
const WAIT_SLICE_MS = 250;

// Built code runs from dist/ (the .js beside this file); the test runner loads the TypeScript sources through its
// loader, which the worker inherits with the process's execArgv, so the .ts beside this file is the entry there.
function hostUrl(): URL {
  const js = new URL('./audit-worker-host.js', import.meta.url);
  return existsSync(js) ? js : new URL('./audit-worker-host.ts', import.meta.url);
}

// One writer thread per process serves every log opened here (the interlock has one; a restart reopens on the same
// thread instead of paying a thread's start again). It is unref'd: it never keeps the process alive by itself.
let writerThread: Worker | undefined;

function writer(): Worker {
  if (writerThread !== undefined) return writerThread;
  const worker = new Worker(hostUrl(), { name: 'audit-writer' });
  worker.unref();
  // Each open log listens for the thread's end; more than ten logs open at once is not a leak.
  worker.setMaxListeners(0);
  worker.on('exit', () => {
    if (writerThread === worker) writerThread = undefined;
  });
  // An 'error' without a listener would take the process down; each log handles it, this keeps that true with none.
  worker.on('error', () => {});
  writerThread = worker;
  return worker;
}

interface InFlight {
  readonly resolve: (receipt: AuditReceipt) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Opens the audit log at `path` on the process's writer thread (started on first use); resolves once it is open there (with its `notices`), or
 * rejects with the error openSqliteAuditLog would have thrown ("cannot open audit log at PATH: ..."). `log` and
 * `warn` are called on this thread. A clock (`nowMs`, `checkpoints.nowMs`, `checkpoints.setTimer`) cannot cross
 * to the thread and is refused: the writer thread uses the real clock.
 */
export async function openWorkerAuditLog(path: string, options: WorkerAuditLogOptions = {}): Promise<WorkerAuditLog> {
  const { log, warn, callTimeoutMs, ...rest } = options;
  if ('nowMs' in options) throw new RangeError('openWorkerAuditLog: nowMs is not supported (the writer thread uses the real clock); use openSqliteAuditLog for an injected clock');
  if (rest.checkpoints?.nowMs !== undefined || rest.checkpoints?.setTimer !== undefined) {
    throw new RangeError('openWorkerAuditLog: checkpoints.nowMs and checkpoints.setTimer are not supported (functions cannot cross to the writer thread)');
  }
  const timeoutMs = callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new RangeError(`openWorkerAuditLog: callTimeoutMs must be a positive integer, got ${timeoutMs}`);
  const requests = new MessageChannel();
  const events = new MessageChannel();
  const replies = new MessageChannel();
  const signal = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const data: WriterData = { path, options: rest satisfies WriterOptions, requests: requests.port2, events: events.port2, replies: replies.port2, signal };
  const worker = writer();
  const audit = new WorkerAuditLog(path, worker, { requests: requests.port1, events: events.port1, replies: replies.port1 }, signal, {
    log: log ?? (() => {}),
    warn: warn ?? log ?? (() => {}),
    timeoutMs,
  });
  worker.postMessage({ type: 'open', data } satisfies OpenRequest, [requests.port2, events.port2, replies.port2]);
  await audit.opened;
  return audit;
}

export class WorkerAuditLog implements SqliteAuditSurface {
  readonly path: string;
  #notices: readonly string[] = [];
  readonly #worker: Worker;
  readonly #requests: MessagePort;
  readonly #events: MessagePort;
  readonly #replies: MessagePort;
  readonly #signal: Int32Array;
  readonly #log: (msg: string) => void;
  readonly #warn: (msg: string) => void;
  readonly #timeoutMs: number;
  readonly #inFlight = new Map<number, InFlight>();
  #nextRecordId = 0;
  #lastCallId = 0;
  /** Set by close(): what the log said as it closed. */
  #closed: ClosedState | undefined;
  /** Set when the writer thread stopped without a close: why. */
  #gone: string | undefined;
  #open: { resolve: () => void; reject: (error: Error) => void } | undefined;
  /** Resolves once the log is open on the writer thread; rejects with the reason it could not be. */
  readonly opened: Promise<void>;
  // The writer thread is shared: these are removed again when this log is done with it.
  readonly #onError = (error: Error): void => this.#stopped(`it failed: ${error.message}`);
  readonly #onExit = (code: number): void => this.#stopped(`it exited with code ${code}`);

  /** Use `openWorkerAuditLog`. */
  constructor(
    path: string,
    worker: Worker,
    ports: { readonly requests: MessagePort; readonly events: MessagePort; readonly replies: MessagePort },
    signal: SharedArrayBuffer,
    settings: { readonly log: (msg: string) => void; readonly warn: (msg: string) => void; readonly timeoutMs: number },
  ) {
    this.path = path;
    this.#worker = worker;
    this.#requests = ports.requests;
    this.#events = ports.events;
    this.#replies = ports.replies;
    this.#signal = new Int32Array(signal);
    this.#log = settings.log;
    this.#warn = settings.warn;
    this.#timeoutMs = settings.timeoutMs;
    this.opened = new Promise<void>((resolve, reject) => (this.#open = { resolve, reject }));
    this.#events.on('message', (event: WriterEvent) => this.#onEvent(event));
    // The writer thread never keeps the process alive; the events port does so only while records wait for it
    // (and while it opens), so an awaited record is never abandoned by an exiting process.
    worker.on('error', this.#onError);
    worker.on('exit', this.#onExit);
  }

  #unlisten(): void {
    this.#worker.off('error', this.#onError);
    this.#worker.off('exit', this.#onExit);
  }

  get notices(): readonly string[] {
    return this.#notices;
  }

  #onEvent(event: WriterEvent): void {
    switch (event.type) {
      case 'settled':
        for (const result of event.results) {
          const waiting = this.#inFlight.get(result.id);
          if (waiting === undefined) continue;
          this.#inFlight.delete(result.id);
          if ('receipt' in result) waiting.resolve(result.receipt);
          else waiting.reject(fromWire(result.error));
        }
        this.#refWhileWaiting();
        return;
      case 'log':
        this.#note(event.message, event.warn);
        return;
      case 'opened':
        this.#notices = event.notices;
        this.#open?.resolve();
        this.#open = undefined;
        this.#refWhileWaiting();
        return;
      case 'open-failed':
        this.#gone = 'the log could not be opened';
        this.#open?.reject(fromWire(event.error));
        this.#open = undefined;
        this.#events.close();
        this.#unlisten();
        return;
    }
  }

  #note(message: string, warn: boolean): void {
    try {
      (warn ? this.#warn : this.#log)(message);
    } catch {
      // A throwing logger must not leave records unsettled; the line is lost.
    }
  }

  #refWhileWaiting(): void {
    if (this.#inFlight.size > 0 || this.#open !== undefined) this.#events.ref();
    else this.#events.unref();
  }

  /** Everything the writer thread posted and this thread has not read yet, handled now (in order). */
  #drainEvents(): void {
    for (let message = receiveMessageOnPort(this.#events); message !== undefined; message = receiveMessageOnPort(this.#events)) {
      this.#onEvent(message.message as WriterEvent);
    }
  }

  /** The writer thread is gone without a close: every record it had not confirmed rejects, every later call fails. */
  #stopped(why: string): void {
    if (this.#closed !== undefined || this.#gone !== undefined) return;
    // Outcomes it posted before it stopped are true: settle those first.
    this.#drainEvents();
    if (this.#closed !== undefined) return;
    this.#gone = `the audit log writer thread for ${this.path} stopped: ${why}`;
    this.#open?.reject(new Error(`cannot open audit log at ${this.path}: ${this.#gone}`));
    this.#open = undefined;
    // SAFETY: a record the thread did not confirm may or may not be stored; it is refused, never assumed written.
    const error = new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path}: not confirmed, ${this.#gone}; the record may or may not be stored`);
    for (const waiting of this.#inFlight.values()) waiting.reject(error);
    this.#inFlight.clear();
    this.#events.close();
    this.#unlisten();
    this.#note(`worker-audit-log: ${this.#gone}`, true);
  }

  /**
   * Queues the entry for the writer thread's next group commit; resolves once the transaction holding it is
   * committed there. Entries get seqs in call order. The entry is copied now (structured clone): a value that cannot
   * be copied rejects this call at once, and later changes by the caller do not reach the record.
   */
  record(entry: AuditEntry, options: RecordOptions = {}): Promise<AuditReceipt> {
    if (this.#closed !== undefined) return Promise.reject(new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path} is closed`));
    if (this.#gone !== undefined) return Promise.reject(new AuditWriteError('AUDIT_UNAVAILABLE', `audit log ${this.path} refuses writes: ${this.#gone}`));
    const id = this.#nextRecordId++;
    return new Promise<AuditReceipt>((resolve, reject) => {
      try {
        this.#requests.postMessage({ type: 'record', id, entry, safeState: options.safeState === true });
      } catch (error) {
        reject(new TypeError(`audit entry cannot be recorded: ${error instanceof Error ? error.message : String(error)}`));
        return;
      }
      this.#inFlight.set(id, { resolve, reject });
      if (this.#inFlight.size === 1) this.#events.ref();
    });
  }

  /** Asks the writer thread and waits for its answer (Atomics.wait), at most the call timeout. */
  #call<T>(method: SyncMethod, ...args: unknown[]): T {
    if (this.#gone !== undefined) throw new Error(`audit log ${this.path}: ${this.#gone}`);
    if (this.#closed !== undefined) throw new Error(`audit log ${this.path} is closed`);
    // Ids stay within int32 (the shared slot); one wrap after two billion calls is harmless, as only equality counts.
    const id = (this.#lastCallId % 0x7fff_ffff) + 1;
    this.#lastCallId = id;
    this.#requests.postMessage({ type: 'call', id, method, args });
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const answered = Atomics.load(this.#signal, ANSWERED);
      if (answered === id) break;
      if (Atomics.load(this.#signal, GONE) === 1) {
        this.#stopped('it exited while answering');
        throw new Error(`audit log ${this.path}: ${method} not answered, ${this.#gone ?? 'the writer thread stopped'}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`audit log ${this.path}: the writer thread did not answer ${method} within ${this.#timeoutMs} ms`);
      Atomics.wait(this.#signal, ANSWERED, answered, Math.min(left, WAIT_SLICE_MS));
    }
    for (;;) {
      const message = receiveMessageOnPort(this.#replies);
      if (message === undefined) throw new Error(`audit log ${this.path}: the writer thread answered ${method} but the answer is missing`);
      const reply = message.message as CallReply;
      // An answer to an earlier call that timed out here is dropped.
      if (reply.id !== id) continue;
      if ('error' in reply) throw fromWire(reply.error);
      return reply.value as T;
    }
  }

  head(): AuditHead {
    return this.#call('head');
  }

  read(fromSeq: number, limit: number): AuditRecord[] {
    return this.#call('read', fromSeq, limit);
  }

  verify(publicKey?: KeyObject): VerifyResult {
    return publicKey === undefined ? this.#call('verify') : this.#call('verify', publicKey);
  }

  health(): AuditHealth {
    return this.#closed?.health ?? this.#call('health');
  }

  /** The writer's commit counters; `pending` counts the records this thread still waits on. */
  stats(): SqliteAuditStats {
    if (this.#closed !== undefined) return this.#closed.stats;
    return { ...this.#call<SqliteAuditStats>('stats'), pending: this.#inFlight.size };
  }

  acknowledge(uptoSeq: number): number {
    return this.#call('acknowledge', uptoSeq);
  }

  acknowledgedSeq(): number {
    return this.#closed?.acknowledgedSeq ?? this.#call('acknowledgedSeq');
  }

  unacknowledged(limit: number): AuditRecord[] {
    return this.#call('unacknowledged', limit);
  }

  applyRetention(): RetentionResult {
    return this.#call('applyRetention');
  }

  latestCheckpoint(): AuditCheckpoint | undefined {
    return this.#call('latestCheckpoint');
  }

  pragmas(): SqliteAuditPragmas {
    return this.#call('pragmas');
  }

  /**
   * Commits every record requested before it (or rejects it, if its batch fails), closes the database on the writer
   * thread and lets the thread end; every record's promise is settled by the time this returns. Idempotent.
   */
  close(): void {
    // A writer thread that stopped has nothing left to flush: its records were rejected when it stopped.
    if (this.#closed !== undefined || this.#gone !== undefined) return;
    let closed: ClosedState;
    try {
      closed = this.#call<ClosedState>('close');
    } finally {
      // The outcomes of the records close() committed were posted before its answer.
      this.#drainEvents();
    }
    this.#closed = closed;
    this.#events.close();
    this.#unlisten();
  }

  /**
   * Stops the writer thread at once, as a crash would (for fault tests): nothing more is committed or confirmed, on
   * this log or any other served by the same thread.
   */
  async terminateWriter(): Promise<void> {
    await this.#worker.terminate();
  }
}

