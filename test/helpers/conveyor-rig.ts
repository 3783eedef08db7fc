// A running interlock on an in-memory bus with real Cedar, real SQLite and real keys, and the conveyor's and the AMR's
// state published by the test at driver rate; every release to the conveyor is verified and checked against the
// committed records as it arrives. For tests of the interlock's own ordering, recording and reconfiguration.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Test } from 'tap';
import { openSqliteAuditLog, type SqliteAuditLog, type SqliteAuditLogOptions } from '../../src/audit/sqlite-audit-log.js';
import { systemClock } from '../../src/core/clock.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { verifyReleasedCommand, type ReleasedCommand } from '../../src/dispatch/released-command.js';
import { Interlock, type DecisionEvent } from '../../src/interlock/interlock.js';
import { topicSet } from '../../src/transport/topics.js';
import { InMemoryBus } from './memory-bus.js';
import { makeTestCell, type TestCell } from './test-cell.js';
import { waitFor } from './wait-for.js';

export const topics = topicSet();
export const CONVEYOR = 'conveyor-1';

export interface ConveyorRig {
  readonly interlock: Interlock;
  readonly bus: InMemoryBus;
  readonly audit: SqliteAuditLog;
  readonly dbPath: string;
  readonly cell: TestCell;
  readonly decisions: DecisionEvent[];
  /** Each release as the conveyor got it, and whether its record was readable from another connection then. */
  readonly releases: { command: ReleasedCommand; committedBefore: boolean }[];
  /** Publishes the given commands to the conveyor in one go (one event-loop turn); resolves with their decisions. */
  burst(tokens: readonly string[]): Promise<DecisionEvent[]>;
}

export async function conveyorRig(t: Test, files: Record<string, string | null> = {}, auditOptions: SqliteAuditLogOptions = {}): Promise<ConveyorRig> {
  const cell = makeTestCell(files);
  const stateDir = mkdtempSync(join(tmpdir(), 'interlock-group-commit-'));
  const dbPath = join(stateDir, 'audit.db');
  const audit = openSqliteAuditLog(dbPath, { ballastBytes: 0, ...auditOptions });
  const reader = new Database(dbPath, { readonly: true });
  const bus = new InMemoryBus();
  const keys = generateEd25519KeyPair();
  const interlock = new Interlock({ cell: cell.load(), transport: bus, audit, signingKey: keys.privateKey, clock: systemClock, heartbeatPeriodMs: 0, metricsPeriodMs: 0 });
  const decisions: DecisionEvent[] = [];
  interlock.onDecision((event) => decisions.push(event));
  const releases: ConveyorRig['releases'] = [];
  const committed = reader.prepare('SELECT 1 FROM records WHERE seq = ?');
  await bus.subscribe(topics.actuatorCommand(CONVEYOR), (_topic, payload) => {
    const verified = verifyReleasedCommand(payload.toString('utf8'), keys.publicKey, { deviceId: CONVEYOR, nowMs: Date.now(), lastAuditSeq: releases.at(-1)?.command.auditSeq ?? 0 });
    if (!verified.ok) throw new Error(`the interlock released something that does not verify: ${verified.problem}`);
    releases.push({ command: verified.command, committedBefore: committed.get(verified.command.auditSeq) !== undefined });
  });
  await interlock.start();
  const publishStates = (): void => {
    const conveyor = { speedMPerS: 0, permissives: { guardClosed: true, estopReleased: true, downstreamReady: true }, running: true, safeStopped: false };
    const amr = { pose: { xM: 4, yM: -0.5, yawRad: 0 }, velocity: { linearMPerS: 0, angularRadPerS: 0 }, localization: { ok: true, ageMs: 20 }, moving: false, safeStopped: false, people: [] };
    void bus.publish(topics.actuatorState(CONVEYOR), JSON.stringify(conveyor));
    void bus.publish(topics.actuatorState('amr-1'), JSON.stringify(amr));
  };
  const timer = setInterval(publishStates, 20);
  publishStates();
  await waitFor(() => interlock.states.latest(CONVEYOR) !== undefined && interlock.states.latest('amr-1') !== undefined, 'state to arrive');
  t.teardown(async () => {
    clearInterval(timer);
    await interlock.stop();
    reader.close();
    audit.close();
    await bus.stop();
    cell.cleanup();
    rmSync(stateDir, { recursive: true, force: true });
  });
  return {
    interlock,
    bus,
    audit,
    dbPath,
    cell,
    decisions,
    releases,
    async burst(tokens) {
      const before = decisions.length;
      await Promise.all(tokens.map((token) => bus.publish(topics.command(CONVEYOR), token)));
      await waitFor(() => decisions.length >= before + tokens.length, `${tokens.length} decisions`);
      await interlock.idle();
      return decisions.slice(before);
    },
  };
}
