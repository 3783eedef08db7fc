// The end-to-end bench's cell: many conveyors, one agent the policies permit to set their speed, and limits under
// which every command the bench sends is legitimate. Written to a folder of the caller's with fresh keys; it never
// touches the demo cell.

import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureCellAgentKeys, ensureCellDriverKeys, type AgentPrivateKey, type DriverPrivateKey } from '../src/keys/cell-agent-keys.js';

export const BENCH_AGENT = 'bench-agent';
/** What every bench command asks: forward at 0.1 m/s, within one step of standstill and of the last setpoint. */
export const BENCH_SPEED_M_PER_S = 0.1;
/**
 * The TTL of a bench command (and the cell's maxTtl). Longer than a run plus its grace period, so that a command
 * queued behind a slow interlock is still legitimate when it is decided: a bench of the decision path must never
 * measure denials of expired commands.
 */
export const BENCH_TTL_MS = 30_000;

/** The signed state a bench conveyor driver reports: at rest, every permissive true. */
export const CONVEYOR_AT_REST = {
  speedMPerS: 0,
  permissives: { guardClosed: true, estopReleased: true, downstreamReady: true },
  running: true,
  safeStopped: false,
} as const;

export interface BenchCell {
  readonly cellDir: string;
  readonly deviceIds: readonly string[];
  readonly agentKey: AgentPrivateKey;
  readonly driverKeys: ReadonlyMap<string, DriverPrivateKey>;
}

export function writeBenchCell(root: string, conveyors: number, repoRoot: string): BenchCell {
  const cellDir = join(root, 'cell');
  mkdirSync(join(cellDir, 'devices'), { recursive: true });
  mkdirSync(join(cellDir, 'policies'), { recursive: true });
  const deviceIds = Array.from({ length: conveyors }, (_, i) => `conv-${String(i).padStart(2, '0')}`);
  writeFileSync(
    join(cellDir, 'cell.yaml'),
    [
      'cell: bench-cell',
      'description: End-to-end bench cell (npm run bench), many conveyors and one agent.',
      'commands:',
      `  maxTtl: { value: ${BENCH_TTL_MS / 1000}, unit: s }`,
      '  clockSkew: { value: 1, unit: s }',
      '  maxTokenSize: { value: 8, unit: KiB }',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(cellDir, 'agents.yaml'),
    [
      'agents:',
      `  - id: ${BENCH_AGENT}`,
      '    owner: bench',
      '    autonomyScope: 4',
      '    keys:',
      `      - { kid: ${BENCH_AGENT}-k1, publicKeyFile: keys/${BENCH_AGENT}-k1.pub.pem }`,
      'drivers:',
      ...deviceIds.flatMap((id) => [`  - device: ${id}`, '    keys:', `      - { kid: ${id}-driver-k1, publicKeyFile: keys/${id}-driver-k1.pub.pem }`]),
      '',
    ].join('\n'),
  );
  for (const id of deviceIds) {
    // The rate limit is far above what the bench offers one device (5,000/s over 32 devices is 157/s each), and the
    // state may be 30 s old: a slow interlock makes commands late, never illegitimate.
    writeFileSync(
      join(cellDir, 'devices', `${id}.yaml`),
      [
        `id: ${id}`,
        'kind: conveyor',
        'maxStateAge: { value: 30, unit: s }',
        'rateLimit: { commands: 100000, per: { value: 1, unit: s } }',
        'maxSpeed: { normal: 0.5, reduced: 0.25, unit: m/s }',
        'reverse: { allowed: false }',
        'maxRamp: { normal: 0.5, reduced: 0.25, unit: m/s^2 }',
        'minRamp: { value: 0.05, unit: m/s^2 }',
        'standstill: { value: 10, unit: mm/s }',
        'maxStep: { value: 0.2, unit: m/s }',
        'permissives: [guardClosed, estopReleased, downstreamReady]',
        '',
      ].join('\n'),
    );
  }
  copyFileSync(join(repoRoot, 'safety-bounds', 'demo-cell', 'policies', 'schema.cedarschema'), join(cellDir, 'policies', 'schema.cedarschema'));
  writeFileSync(
    join(cellDir, 'policies', 'conveyor.cedar'),
    [
      '@id("bench-conveyor-speed")',
      'permit (',
      '  principal is Interlock::Agent,',
      '  action == Interlock::Action::"set_speed",',
      '  resource is Interlock::Device in Interlock::Cell::"bench-cell"',
      ')',
      'when { principal.autonomyScope >= 3 && resource.kind == "conveyor" };',
      '',
    ].join('\n'),
  );
  const privateDir = join(root, 'private');
  const agentKey = ensureCellAgentKeys(cellDir, privateDir).get(BENCH_AGENT);
  if (agentKey === undefined) throw new Error('bench cell: no key was made for the bench agent');
  const driverKeys = ensureCellDriverKeys(cellDir, privateDir);
  return { cellDir, deviceIds, agentKey, driverKeys };
}
