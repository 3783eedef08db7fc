// Builds a throw-away copy of the demo cell in a temp folder with freshly generated agent keys, optionally with
// files replaced, so tests run against real declarations, real keys and the real Cedar engine.

import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandSigner } from '../../src/agent-sdk/command-signer.js';
import { loadCell, type LoadedCell } from '../../src/declarations/load.js';
import { ensureCellAgentKeys, ensureCellDriverKeys, type AgentPrivateKey, type DriverPrivateKey } from '../../src/keys/cell-agent-keys.js';
import { DeviceReporter } from '../../src/driver-sdk/device-reporter.js';
import { formatProblem } from '../../src/core/problems.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEMO_CELL = join(REPO_ROOT, 'safety-bounds', 'demo-cell');

export interface TestCell {
  readonly root: string;
  readonly cellDir: string;
  readonly privateKeyDir: string;
  /** Each device driver's private key, by device id. */
  readonly driverKeys: Map<string, DriverPrivateKey>;
  /** The declared driver key of `deviceId` (for a simulated driver's driverKey option). */
  driverKey(deviceId: string): DriverPrivateKey;
  /** A new driver run for `deviceId` that signs state and outcomes with its declared key (clock default: now). */
  reporter(deviceId: string, nowMs?: () => number): DeviceReporter;
  readonly agentKeys: Map<string, AgentPrivateKey>;
  signer(agentId: string, nowMs?: () => number): CommandSigner;
  load(): LoadedCell;
  cleanup(): void;
}

export interface TestCellOptions {
  /**
   * Replaces every device's maxStateAge and the people report's maxAge with this many milliseconds. For rigs on the
   * real clock whose tests are not about freshness: on a loaded 2-core machine a 200 ms limit can lapse between a
   * driver's message and the decision while SQLite fsyncs on the same thread. Freshness itself is tested on an
   * injected clock.
   */
  readonly stateAgeMs?: number;
}

/** `files` maps paths relative to the cell folder to new contents (null deletes the file). */
export function makeTestCell(files: Record<string, string | null> = {}, options: TestCellOptions = {}): TestCell {
  const root = mkdtempSync(join(tmpdir(), 'interlock-cell-'));
  const cellDir = join(root, 'cell');
  const privateKeyDir = join(root, 'private');
  cpSync(DEMO_CELL, cellDir, { recursive: true, filter: (src) => !src.includes(`${DEMO_CELL}/keys`) });
  for (const [path, content] of Object.entries(files)) {
    const target = join(cellDir, path);
    if (content === null) rmSync(target, { force: true });
    else {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content);
    }
  }
  if (options.stateAgeMs !== undefined) relaxStateAge(cellDir, options.stateAgeMs);
  let agentKeys = new Map<string, AgentPrivateKey>();
  let driverKeys = new Map<string, DriverPrivateKey>();
  try {
    agentKeys = ensureCellAgentKeys(cellDir, privateKeyDir);
    driverKeys = ensureCellDriverKeys(cellDir, privateKeyDir);
  } catch {
    // A test that breaks agents.yaml on purpose gets no keys; the loader reports the problem.
  }
  return {
    root,
    cellDir,
    privateKeyDir,
    agentKeys,
    driverKeys,
    driverKey(deviceId) {
      const key = driverKeys.get(deviceId);
      if (key === undefined) throw new Error(`test cell has no driver key for ${deviceId}`);
      return key;
    },
    reporter(deviceId, nowMs) {
      return new DeviceReporter(deviceId, this.driverKey(deviceId), nowMs);
    },
    signer(agentId, nowMs) {
      const key = agentKeys.get(agentId);
      if (key === undefined) throw new Error(`test cell has no key for agent ${agentId}`);
      return new CommandSigner({ agentId, kid: key.kid, privateKey: key.privateKey, ...(nowMs === undefined ? {} : { nowMs }) });
    },
    load() {
      const result = loadCell(cellDir);
      if (!result.ok) throw new Error(`test cell does not load:\n${result.problems.map(formatProblem).join('\n')}`);
      return result.cell;
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Rewrites the state-age limits of a cell folder (see TestCellOptions.stateAgeMs); fails if there were none. */
function relaxStateAge(cellDir: string, ageMs: number): void {
  const quantity = `{ value: ${ageMs}, unit: ms }`;
  let replaced = 0;
  for (const name of readdirSync(join(cellDir, 'devices'))) {
    const path = join(cellDir, 'devices', name);
    const text = readFileSync(path, 'utf8');
    const next = text.replace(/^maxStateAge: \{[^}]*\}/m, `maxStateAge: ${quantity}`);
    if (next !== text) replaced += 1;
    writeFileSync(path, next);
  }
  const cellYaml = join(cellDir, 'cell.yaml');
  const text = readFileSync(cellYaml, 'utf8');
  const next = text.replace(/^(people:\n(?: {2}.*\n)*? {2}maxAge: )\{[^}]*\}/m, `$1${quantity}`);
  if (replaced === 0 || next === text) throw new Error(`stateAgeMs: found no maxStateAge or people maxAge to replace in ${cellDir}`);
  writeFileSync(cellYaml, next);
}
