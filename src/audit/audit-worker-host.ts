// The writer thread's entry: owns the SQLite audit logs opened through WorkerAuditLog (their connections, group
// commits and fsyncs) and serves each on its own ports. It must never report a record as stored before the log
// itself resolved it: replies are the log's own outcomes, passed on in batches.

import { isMainThread, parentPort } from 'node:worker_threads';
import { ANSWERED, GONE, toWire, type CallReply, type ClosedState, type OpenRequest, type RecordResult, type SyncMethod, type WriterData, type WriterEvent, type WriterRequest } from './audit-worker-protocol.js';
import { openSqliteAuditLog, type SqliteAuditLog } from './sqlite-audit-log.js';

/** The shared slots of every log served, told when this thread exits. */
const signals = new Set<Int32Array>();

function serve(data: WriterData): void {
  const { path, options, requests, events, replies } = data;
  const signal = new Int32Array(data.signal);
  signals.add(signal);
  const emit = (event: WriterEvent): void => events.postMessage(event);

  let log: SqliteAuditLog;
  try {
    log = openSqliteAuditLog(path, {
      ...options,
      log: (message) => emit({ type: 'log', warn: false, message }),
      warn: (message) => emit({ type: 'log', warn: true, message }),
    });
  } catch (error) {
    signals.delete(signal);
    emit({ type: 'open-failed', error: toWire(error) });
    return;
  }
  emit({ type: 'opened', notices: [...log.notices] });

  // Outcomes are collected and posted once per turn: a batch of 1,000 records costs one message, not 1,000.
  let settled: RecordResult[] = [];
  const postSettled = (): void => {
    if (settled.length === 0) return;
    emit({ type: 'settled', results: settled });
    settled = [];
  };
  const settle = (result: RecordResult): void => {
    if (settled.length === 0) queueMicrotask(postSettled);
    settled.push(result);
  };
  const answer = (reply: CallReply): void => {
    replies.postMessage(reply);
    // The reply is already in the main thread's queue when it wakes: postMessage enqueues synchronously.
    Atomics.store(signal, ANSWERED, reply.id);
    Atomics.notify(signal, ANSWERED);
  };

  const onRequest = (request: WriterRequest): void => {
    if (request.type === 'record') {
      // While a commit and its fsync run, later requests wait on this port and all join the next transaction.
      log.record(request.entry, { safeState: request.safeState }).then(
        (receipt) => settle({ id: request.id, receipt }),
        (error: unknown) => settle({ id: request.id, error: toWire(error) }),
      );
      return;
    }
    if (request.method === 'close') {
      closeAndAnswer(request.id);
      return;
    }
    try {
      answer({ id: request.id, value: call(log, request.method, request.args) });
    } catch (error) {
      answer({ id: request.id, error: toWire(error) });
    }
  };

  const closeAndAnswer = (id: number): void => {
    try {
      log.close();
    } catch (error) {
      signals.delete(signal);
      answer({ id, error: toWire(error) });
      requests.close();
      return;
    }
    // The records close() committed settle in microtasks; setImmediate runs after all of them, so their outcomes are
    // posted before the answer and the main thread finds them all once close() returns there.
    setImmediate(() => {
      postSettled();
      const closed: ClosedState = { health: log.health(), stats: log.stats(), acknowledgedSeq: log.acknowledgedSeq() };
      signals.delete(signal);
      answer({ id, value: closed });
      requests.close();
    });
  };

  requests.on('message', onRequest);
}

function call(log: SqliteAuditLog, method: Exclude<SyncMethod, 'close'>, args: readonly unknown[]): unknown {
  switch (method) {
    case 'head':
      return log.head();
    case 'read':
      return log.read(args[0] as number, args[1] as number);
    case 'verify':
      return log.verify(args[0] as Parameters<SqliteAuditLog['verify']>[0]);
    case 'health':
      return log.health();
    case 'stats':
      return log.stats();
    case 'acknowledge':
      return log.acknowledge(args[0] as number);
    case 'acknowledgedSeq':
      return log.acknowledgedSeq();
    case 'unacknowledged':
      return log.unacknowledged(args[0] as number);
    case 'applyRetention':
      return log.applyRetention();
    case 'latestCheckpoint':
      return log.latestCheckpoint();
    case 'pragmas':
      return log.pragmas();
  }
}

// Loaded on the main thread by mistake, it opens nothing: it serves only as a worker's entry.
if (!isMainThread && parentPort !== null) {
  parentPort.on('message', (request: OpenRequest) => serve(request.data));
  // If this thread dies while the main thread waits for an answer, the waiting ends at once instead of at its limit.
  process.on('exit', () => {
    for (const signal of signals) {
      Atomics.store(signal, GONE, 1);
      Atomics.notify(signal, ANSWERED);
    }
  });
}
