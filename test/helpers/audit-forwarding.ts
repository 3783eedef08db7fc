// Shared pieces of the audit forwarding tests: a real SQLite audit log with signed checkpoints filled with records,
// its records in wire form, and an MQTT audit receiver on a SQLite store (the cloud peer). Not a test file.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Test } from 'tap';
import { openSqliteAuditLog, type SqliteAuditLog, type SqliteAuditLogOptions } from '../../src/audit/sqlite-audit-log.js';
import { canonicalJson } from '../../src/core/canonical-json.js';
import { silentLogger } from '../../src/core/log.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import type { WireRecord } from '../../src/cloud/audit-batch.js';
import { MqttAuditReceiver } from '../../src/cloud/receiver/mqtt-audit-receiver.js';
import { SqliteReceiverStore } from '../../src/cloud/receiver/sqlite-receiver-store.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';

export interface FilledLog {
  readonly log: SqliteAuditLog;
  readonly path: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Appends `n` more records (padding each body to about `bytes`). */
  add(n: number, bytes?: number): Promise<void>;
}

export function tempDir(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function filledLog(t: Test, n: number, options: SqliteAuditLogOptions = {}, keys = generateEd25519KeyPair()): Promise<FilledLog> {
  const path = join(tempDir(t, 'audit-forward-'), 'audit.db');
  const log = openSqliteAuditLog(path, { checkpoints: { privateKey: keys.privateKey, origin: 'test-cell', everyRecords: 10 }, ballastBytes: 0, ...options });
  t.teardown(() => log.close());
  let i = 0;
  const add = async (count: number, bytes = 200): Promise<void> => {
    const pending: Promise<unknown>[] = [];
    for (let k = 0; k < count; k++) {
      i += 1;
      pending.push(log.record({ kind: 'decision', timeMs: Date.now(), commandId: `cmd-${i}`, verdict: 'allow', detail: { pad: 'x'.repeat(bytes) } }));
    }
    await Promise.all(pending);
  };
  await add(n);
  return { log, path, privateKey: keys.privateKey, publicKey: keys.publicKey, add };
}

/** The log's records from `from`, as the forwarder sends them. */
export function wireRecords(log: SqliteAuditLog, from: number, n: number): WireRecord[] {
  return log.read(from, n).map(({ hash, ...fields }) => ({ seq: fields.seq, body: canonicalJson(fields), hash }));
}

export interface CloudPeer {
  readonly store: SqliteReceiverStore;
  readonly receiver: MqttAuditReceiver;
  readonly transport: MqttTransport;
}

/** A receiver on `url` with a SQLite store in its own folder, knowing `things` (thing → interlock public key). */
export async function cloudPeer(t: Test, url: string, things: ReadonlyMap<string, KeyObject>): Promise<CloudPeer> {
  const store = new SqliteReceiverStore(join(tempDir(t, 'audit-receiver-'), 'receiver.db'));
  const transport = new MqttTransport({ url, clientId: `receiver-${Math.random().toString(16).slice(2, 10)}`, reconnectPeriodMs: 100, log: () => undefined });
  await transport.start();
  const receiver = new MqttAuditReceiver({ transport, store, things: { publicKey: (thing) => things.get(thing) }, logger: silentLogger });
  await receiver.start();
  t.teardown(async () => {
    await receiver.stop();
    await transport.stop();
    store.close();
  });
  return { store, receiver, transport };
}
