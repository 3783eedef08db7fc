// Adversarial unit tests for the declaration loader: the demo cell loads with correctly converted limits and a
// content digest; every broken declaration (units, shape, duplicates, keys, paths, YAML tricks) is refused with
// a problem naming file, JSON pointer and line; several broken files are reported together. Real files only.

import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { ArmDeclaration } from '../../src/core/kinds/robot-arm.js';
import type { DeclarationProblem } from '../../src/core/problems.js';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { loadCell, type LoadResult } from '../../src/declarations/load.js';
import { DEMO_CELL, makeTestCell, type TestCell } from '../helpers/test-cell.js';

const DEG = Math.PI / 180;
const demoText = (file: string): string => readFileSync(join(DEMO_CELL, file), 'utf8');
const DEVICE = demoText('devices/arm-1.yaml');
const AGENTS = demoText('agents.yaml');
const CELL = demoText('cell.yaml');
const POLICY = demoText('policies/arm.cedar');

/** `text` with `from` replaced by `to`; throws when `from` is absent, so a stale fixture cannot pass silently. */
function edit(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`fixture text not found: ${from}`);
  return text.replace(from, to);
}

/** 1-based line of the first line containing `needle` (after the first occurrence of `after`, if given). */
function lineOf(text: string, needle: string, after?: string): number {
  const start = after === undefined ? 0 : text.indexOf(after);
  const index = text.indexOf(needle, Math.max(start, 0));
  if (index < 0) throw new Error(`needle not found: ${needle}`);
  return text.slice(0, index).split('\n').length;
}

function withCell(t: Test, files: Record<string, string | null> = {}, afterKeys?: (cell: TestCell) => void): LoadResult {
  const cell = makeTestCell(files);
  t.teardown(() => cell.cleanup());
  afterKeys?.(cell);
  return loadCell(cell.cellDir);
}

interface ExpectedProblem {
  readonly file: string;
  readonly path: string;
  /** An exact line, or an inclusive range of acceptable lines. */
  readonly line?: number | readonly [number, number];
  readonly message: RegExp;
}

function matches(problem: DeclarationProblem, e: ExpectedProblem): boolean {
  if (problem.file !== e.file || problem.path !== e.path || !e.message.test(problem.message)) return false;
  if (e.line === undefined) return true;
  if (problem.line === undefined) return false;
  return typeof e.line === 'number' ? problem.line === e.line : problem.line >= e.line[0] && problem.line <= e.line[1];
}

function assertProblems(t: Test, result: LoadResult, expected: readonly ExpectedProblem[], name: string): void {
  t.equal(result.ok, false, `${name}: refused`);
  const problems = result.ok ? [] : result.problems;
  for (const e of expected) {
    t.ok(
      problems.some((p) => matches(p, e)),
      `${name}: problem ${e.file}${e.line === undefined ? '' : `:${String(e.line)}`} at "${e.path}" ${String(e.message)}`,
      { found: problems },
    );
  }
}

t.test('the demo cell loads with its limits converted to internal units', async (t) => {
  const result = withCell(t);
  t.ok(result.ok, 'loads');
  if (!result.ok) return;
  const { declarations, policies } = result.cell;
  t.equal(declarations.cellId, 'demo-cell');
  t.match(declarations.digest, /^[0-9a-f]{64}$/);
  // Every device file of the demo cell is loaded, in file-name order.
  const deviceFiles = readdirSync(join(DEMO_CELL, 'devices')).filter((name) => name.endsWith('.yaml')).sort();
  t.equal(declarations.devices.size, deviceFiles.length);
  t.ok(declarations.devices.has('arm-1'));
  t.same([...declarations.agents.keys()], ['planner-1', 'trainee-1', 'observer-1']);
  t.same([...declarations.agents.values()].map((a) => a.autonomyScope), [4, 2, 1]);
  t.same([...declarations.operators.keys()], ['shift-lead']);
  t.same(declarations.operators.get('shift-lead')?.roles, ['approve', 'reset', 'restore', 'mode']);
  t.same([...declarations.keys.keys()], ['planner-1-k1', 'trainee-1-k1', 'observer-1-k1', 'shift-lead-k1']);
  t.same([...declarations.keys.values()].map((k) => [k.owner, k.agentId, k.publicKey.asymmetricKeyType, k.notBeforeMs, k.notAfterMs, k.revoked]), [
    ['agent', 'planner-1', 'ed25519', -Infinity, Infinity, undefined],
    ['agent', 'trainee-1', 'ed25519', -Infinity, Infinity, undefined],
    ['agent', 'observer-1', 'ed25519', -Infinity, Infinity, undefined],
    ['operator', 'shift-lead', 'ed25519', -Infinity, Infinity, undefined],
  ]);
  t.same(declarations.trust, { denials: 5, windowMs: 60_000, demoteTo: 'quarantine' });
  t.equal(declarations.approvals.pendingTtlMs, 120_000);
  t.equal(declarations.approvals.maxAnswerTtlMs, 60_000);
  t.equal(declarations.approvals.maxPendingPerAgentDevice, 3);
  t.same(declarations.approvals.drift.get('conveyor-1'), [{ field: 'speedMPerS', within: 0.02 }]);
  t.equal(declarations.approvals.drift.get('arm-1')?.[0]?.within, (0.5 * Math.PI) / 180, 'degrees converted to radians');
  // The arm policies are there, with their stable ids; other kinds' policy files add their own.
  t.ok(policies.policyIds.includes('arm-motion-scope-3-plus'));
  t.ok(policies.policyIds.includes('scope-1-never-actuates'));
  t.equal(new Set(policies.policyIds).size, policies.policyIds.length, 'ids are unique');
  t.same(declarations.commandLimits, { maxTtlMs: 5000, clockSkewMs: 1000, maxTokenBytes: 8192 });
  const arm = declarations.devices.get('arm-1') as ArmDeclaration | undefined;
  t.equal(arm?.maxStateAgeMs, 250);
  const expected: [string, number, number, number][] = [
    ['base', -170, 170, 120],
    ['shoulder', -180, 0, 120],
    ['elbow', -160, 160, 120],
    ['wrist1', -360, 360, 180],
    ['wrist2', -360, 360, 180],
    ['wrist3', -360, 360, 180],
  ];
  t.equal(arm?.joints.length, expected.length);
  expected.forEach(([name, min, max, velocity], i) => {
    const joint = arm?.joints[i];
    t.equal(joint?.name, name);
    t.ok(Math.abs((joint?.positionMinRad ?? NaN) - (min * Math.PI) / 180) < 1e-12, `${name} min ${min} deg in rad`);
    t.ok(Math.abs((joint?.positionMaxRad ?? NaN) - (max * Math.PI) / 180) < 1e-12, `${name} max ${max} deg in rad`);
    t.ok(Math.abs((joint?.velocityMaxRadPerS.normal ?? NaN) - (velocity * Math.PI) / 180) < 1e-12, `${name} ${velocity} deg/s in rad/s`);
  });
});

t.test('units other than the demo ones convert too (rad, rad/s, s, B)', async (t) => {
  const result = withCell(t, {
    'devices/arm-1.yaml': edit(
      edit(DEVICE, 'maxStateAge: { value: 250, unit: ms }', 'maxStateAge: { value: 0.5, unit: s }'),
      'position: { min: -170, max: 170, unit: deg }   # keeps',
      'position: { min: -2.5, max: 2.5, unit: rad }   # keeps',
    ),
    'cell.yaml': edit(CELL, 'maxTokenSize: { value: 8, unit: KiB }', 'maxTokenSize: { value: 4000, unit: B }'),
  });
  t.ok(result.ok);
  if (!result.ok) return;
  const arm = result.cell.declarations.devices.get('arm-1') as ArmDeclaration | undefined;
  t.equal(arm?.maxStateAgeMs, 500);
  t.equal(arm?.joints[0]?.positionMaxRad, 2.5);
  t.equal(result.cell.declarations.commandLimits.maxTokenBytes, 4000);
});

t.test('the digest is stable for the same files and changes when any file changes', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const digestNow = (): string => {
    const result = loadCell(cell.cellDir);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    return result.cell.declarations.digest;
  };
  const first = digestNow();
  t.equal(digestNow(), first, 'stable across loads');
  const seen = new Set([first]);
  const changes: { name: string; file: string; content: () => string | Buffer }[] = [
    { name: 'a device file (comment only)', file: 'devices/arm-1.yaml', content: () => `${DEVICE}# reviewed\n` },
    { name: 'a device limit', file: 'devices/arm-1.yaml', content: () => edit(DEVICE, 'min: -170, max: 170', 'min: -169, max: 170') },
    { name: 'a policy', file: 'policies/arm.cedar', content: () => `${POLICY}\n// reviewed\n` },
    { name: 'the Cedar schema (comment only)', file: 'policies/schema.cedarschema', content: () => `${demoText('policies/schema.cedarschema')}\n// reviewed\n` },
    { name: 'cell.yaml', file: 'cell.yaml', content: () => `${CELL}# reviewed\n` },
    { name: 'agents.yaml', file: 'agents.yaml', content: () => `${AGENTS}# reviewed\n` },
    { name: 'a public key (another Ed25519 key)', file: 'keys/trainee-1-k1.pub.pem', content: () => generateEd25519KeyPair().publicKeyPem },
  ];
  for (const change of changes) {
    writeFileSync(join(cell.cellDir, change.file), change.content());
    const digest = digestNow();
    t.notOk(seen.has(digest), `${change.name} changes the digest`);
    t.equal(digestNow(), digest, `${change.name}: then stable again`);
    seen.add(digest);
  }
  // Two cells with the same YAML but different keys are different declarations.
  const other = makeTestCell();
  t.teardown(() => other.cleanup());
  t.not(other.load().declarations.digest, first, 'different agent keys, different digest');
});

t.test('device file problems name file, JSON pointer and line', async (t) => {
  const cases: { name: string; text: string; expected: (text: string) => ExpectedProblem[] }[] = [
    {
      name: 'unknown unit (furlong)',
      text: edit(DEVICE, 'maxStateAge: { value: 250, unit: ms }', 'maxStateAge: { value: 250, unit: furlong }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/maxStateAge/unit', line: lineOf(x, 'furlong'), message: /allowed values/ }],
    },
    {
      name: 'a length unit (mm) for a joint position',
      text: edit(DEVICE, 'position: { min: -180, max: 0, unit: deg }', 'position: { min: -180, max: 0, unit: mm }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/1/position/unit', line: lineOf(x, 'unit: mm'), message: /allowed values/ }],
    },
    {
      name: 'an angle unit (deg) for a velocity',
      text: edit(DEVICE, 'velocity: { max: 120, unit: deg/s }            #', 'velocity: { max: 120, unit: deg }            #'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/0/velocity/unit', line: lineOf(x, 'max: 120, unit: deg }'), message: /allowed values/ }],
    },
    {
      name: 'an angle unit for maxStateAge',
      text: edit(DEVICE, 'maxStateAge: { value: 250, unit: ms }', 'maxStateAge: { value: 250, unit: rad }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/maxStateAge/unit', line: lineOf(x, 'maxStateAge:'), message: /allowed values/ }],
    },
    {
      name: 'a number without a unit',
      text: edit(DEVICE, 'maxStateAge: { value: 250, unit: ms }', 'maxStateAge: 250'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/maxStateAge', line: lineOf(x, 'maxStateAge: 250'), message: /object/ }],
    },
    {
      name: 'a numeric string limit',
      text: edit(DEVICE, 'position: { min: -160, max: 160, unit: deg }', 'position: { min: -160, max: "160", unit: deg }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/2/position/max', line: lineOf(x, '"160"'), message: /number/ }],
    },
    {
      name: 'missing required field (a joint without velocity)',
      text: edit(DEVICE, '  - name: elbow\n    position: { min: -160, max: 160, unit: deg }   # avoids self-collision of the forearm\n    velocity: { max: 120, unit: deg/s }\n', '  - name: elbow\n    position: { min: -160, max: 160, unit: deg }\n'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/2', line: lineOf(x, 'name: elbow'), message: /missing required field "velocity"/ }],
    },
    {
      name: 'missing required field (kind)',
      text: edit(DEVICE, 'kind: robot_arm\n', ''),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '', line: lineOf(x, 'id: arm-1'), message: /missing required field "kind"/ }],
    },
    {
      name: 'unknown field in a joint position',
      text: edit(DEVICE, 'position: { min: -170, max: 170, unit: deg }', 'position: { min: -170, max: 170, unit: deg, soft: true }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/0/position/soft', line: lineOf(x, 'soft: true'), message: /unknown field "soft"/ }],
    },
    {
      name: 'unknown top-level field (a misspelt limit is not silently ignored)',
      text: edit(DEVICE, 'kind: robot_arm\n', 'kind: robot_arm\nmaxStateAgeMs: 100\n'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/maxStateAgeMs', line: lineOf(x, 'maxStateAgeMs: 100'), message: /unknown field "maxStateAgeMs"/ }],
    },
    {
      name: 'unknown device kind',
      text: edit(DEVICE, 'kind: robot_arm', 'kind: laser_cutter'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/kind', line: lineOf(x, 'laser_cutter'), message: /robot_arm/ }],
    },
    {
      name: 'min > max',
      text: edit(DEVICE, 'position: { min: -160, max: 160, unit: deg }', 'position: { min: 160, max: -160, unit: deg }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/2/position', line: lineOf(x, 'min: 160, max: -160'), message: /min .* less than max/ }],
    },
    {
      name: 'min == max',
      text: edit(DEVICE, 'position: { min: -180, max: 0, unit: deg }', 'position: { min: 0, max: 0, unit: deg }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/1/position', line: lineOf(x, 'min: 0, max: 0'), message: /less than max/ }],
    },
    {
      name: 'zero velocity limit',
      text: edit(DEVICE, 'velocity: { max: 120, unit: deg/s }            #', 'velocity: { max: 0, unit: deg/s }            #'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/0/velocity/max', line: lineOf(x, 'max: 0, unit: deg/s'), message: /> 0/ }],
    },
    {
      name: 'duplicate joint names',
      text: edit(DEVICE, '  - name: wrist3', '  - name: wrist2'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/5/name', line: lineOf(x, 'name: wrist2', 'name: wrist2\n') + 3, message: /used twice/ }],
    },
    {
      name: 'YAML syntax error (bad indentation)',
      text: edit(DEVICE, '    velocity: { max: 120, unit: deg/s }            #', '      velocity: { max: 120, unit: deg/s }            #'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '', line: lineOf(x, '      velocity'), message: /^YAML:/ }],
    },
    {
      name: 'YAML syntax error (unclosed flow map)',
      text: edit(DEVICE, 'maxStateAge: { value: 250, unit: ms }', 'maxStateAge: { value: 250, unit: ms'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '', line: [lineOf(x, 'maxStateAge'), lineOf(x, 'joints:')], message: /^YAML:/ }],
    },
    {
      // Last-key-wins would let a second id silently rename the device.
      name: 'duplicate YAML keys',
      text: edit(DEVICE, 'kind: robot_arm\n', 'kind: robot_arm\nid: arm-2\n'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '', line: lineOf(x, 'id: arm-2'), message: /unique/ }],
    },
    {
      name: 'YAML __proto__ key at the top level',
      text: edit(DEVICE, 'kind: robot_arm\n', 'kind: robot_arm\n__proto__: { polluted: true }\n'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/__proto__', line: lineOf(x, '__proto__'), message: /unknown field "__proto__"/ }],
    },
    {
      name: 'YAML __proto__ key inside a joint',
      text: edit(DEVICE, '  - name: base\n', '  - name: base\n    __proto__: { velocity: { max: 1000, unit: deg/s } }\n'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/0/__proto__', line: lineOf(x, '__proto__'), message: /unknown field "__proto__"/ }],
    },
    {
      name: 'a non-finite limit (.inf)',
      text: edit(DEVICE, 'position: { min: -360, max: 360, unit: deg }', 'position: { min: -.inf, max: .inf, unit: deg }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/3/position/min', line: lineOf(x, '.inf'), message: /number/ }],
    },
    {
      name: 'a NaN limit (.nan)',
      text: edit(DEVICE, 'velocity: { max: 120, unit: deg/s }\n  - name: elbow', 'velocity: { max: .nan, unit: deg/s }\n  - name: elbow'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/1/velocity/max', line: lineOf(x, '.nan'), message: /number/ }],
    },
    {
      name: 'a limit that overflows to Infinity (1e400)',
      text: edit(DEVICE, 'position: { min: -160, max: 160, unit: deg }', 'position: { min: -160, max: 1e400, unit: deg }'),
      expected: (x) => [{ file: 'devices/arm-1.yaml', path: '/joints/2/position/max', line: lineOf(x, '1e400'), message: /number/ }],
    },
    {
      name: 'an empty file',
      text: '',
      expected: () => [{ file: 'devices/arm-1.yaml', path: '', message: /object/ }],
    },
  ];
  for (const c of cases) {
    assertProblems(t, withCell(t, { 'devices/arm-1.yaml': c.text }), c.expected(c.text), c.name);
    t.equal((Object.prototype as Record<string, unknown>)['polluted'], undefined, `${c.name}: Object.prototype not polluted`);
    t.equal(({} as Record<string, unknown>)['velocity'], undefined, `${c.name}: no inherited velocity`);
  }
});

t.test('a YAML alias is refused as a problem, not thrown', async (t) => {
  // Aliases are disabled (billion-laughs); the loader must still return problems as data naming the file.
  const text = edit(DEVICE, 'velocity: { max: 120, unit: deg/s }            # controller', 'velocity: &fast { max: 120, unit: deg/s }            # controller').replace(
    '  - name: shoulder\n    position: { min: -180, max: 0, unit: deg }     # never below the table plane\n    velocity: { max: 120, unit: deg/s }',
    '  - name: shoulder\n    position: { min: -180, max: 0, unit: deg }     # never below the table plane\n    velocity: *fast',
  );
  t.ok(text.includes('*fast'), 'fixture uses an alias');
  let result: LoadResult | undefined;
  let thrown: unknown;
  try {
    result = withCell(t, { 'devices/arm-1.yaml': text });
  } catch (error) {
    thrown = error;
  }
  t.equal(thrown, undefined, 'loadCell does not throw', { thrown: thrown instanceof Error ? thrown.message : thrown });
  if (result !== undefined) assertProblems(t, result, [{ file: 'devices/arm-1.yaml', path: '', message: /alias/i }], 'alias');
});

t.test('device set problems', async (t) => {
  // A second file declaring the same id: the later file (sorted) is the duplicate.
  assertProblems(
    t,
    withCell(t, { 'devices/zz-arm.yaml': DEVICE }),
    [{ file: 'devices/zz-arm.yaml', path: '/id', line: lineOf(DEVICE, 'id: arm-1'), message: /already declared in devices\/arm-1\.yaml/ }],
    'duplicate device ids',
  );
  assertProblems(
    t,
    withCell(t, {}, (cell) => {
      for (const name of readdirSync(join(cell.cellDir, 'devices'))) rmSync(join(cell.cellDir, 'devices', name));
    }),
    [{ file: 'devices', path: '', message: /no device declared/ }],
    'empty devices folder',
  );
  assertProblems(t, withCell(t, { 'cell.yaml': null }), [{ file: 'cell.yaml', path: '', message: /file not found/ }], 'missing cell.yaml');
  assertProblems(
    t,
    withCell(t, { 'cell.yaml': edit(CELL, 'maxTokenSize: { value: 8, unit: KiB }', 'maxTokenSize: { value: 8, unit: MB }') }),
    [{ file: 'cell.yaml', path: '/commands/maxTokenSize/unit', line: lineOf(CELL, 'maxTokenSize:'), message: /allowed values/ }],
    'unknown size unit in cell.yaml',
  );
  assertProblems(
    t,
    withCell(t, { 'cell.yaml': edit(CELL, 'maxTtl: { value: 5, unit: s }', 'maxTtl: { value: 0, unit: s }') }),
    [{ file: 'cell.yaml', path: '/commands/maxTtl/value', line: lineOf(CELL, 'maxTtl:'), message: /> 0/ }],
    'zero maxTtl',
  );
});

t.test('agent registry problems name file, JSON pointer and line', async (t) => {
  const extraAgent = '  - id: planner-1\n    owner: someone-else\n    autonomyScope: 4\n    keys:\n      - kid: planner-1-k2\n        publicKeyFile: keys/planner-1-k1.pub.pem\n';
  const cases: { name: string; text: string; expected: (text: string) => ExpectedProblem[] }[] = [
    {
      name: 'autonomyScope 5',
      text: edit(AGENTS, 'autonomyScope: 2', 'autonomyScope: 5'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/1/autonomyScope', line: lineOf(x, 'autonomyScope: 5'), message: /<= 4/ }],
    },
    {
      name: 'autonomyScope 2.5',
      text: edit(AGENTS, 'autonomyScope: 2', 'autonomyScope: 2.5'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/1/autonomyScope', line: lineOf(x, 'autonomyScope: 2.5'), message: /integer/ }],
    },
    {
      name: 'autonomyScope "4" (string)',
      text: edit(AGENTS, 'autonomyScope: 4 ', 'autonomyScope: "4" '),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/0/autonomyScope', line: lineOf(x, 'autonomyScope: "4"'), message: /integer/ }],
    },
    {
      name: 'autonomyScope 0',
      text: edit(AGENTS, 'autonomyScope: 1', 'autonomyScope: 0'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/2/autonomyScope', line: lineOf(x, 'autonomyScope: 0'), message: />= 1/ }],
    },
    {
      name: 'duplicate agent id',
      text: edit(AGENTS, '\n# Humans who answer', `${extraAgent}\n# Humans who answer`),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/3/id', line: lineOf(x, '- id: planner-1', 'observer-1'), message: /listed twice/ }],
    },
    {
      name: 'duplicate kid (another agent registers planner-1-k1)',
      text: edit(AGENTS, '- kid: trainee-1-k1\n        publicKeyFile: keys/trainee-1-k1.pub.pem', '- kid: planner-1-k1\n        publicKeyFile: keys/planner-1-k1.pub.pem'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/1/keys/0/kid', line: lineOf(x, 'kid: planner-1-k1', 'trainee-1'), message: /already registered to agent planner-1/ }],
    },
    {
      name: 'publicKeyFile outside the cell (../../etc/passwd)',
      text: edit(AGENTS, 'publicKeyFile: keys/planner-1-k1.pub.pem', 'publicKeyFile: ../../etc/passwd'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/0/keys/0/publicKeyFile', line: [lineOf(x, 'kid: planner-1-k1'), lineOf(x, '../../etc/passwd')], message: /inside the cell/ }],
    },
    {
      name: 'publicKeyFile absolute (/etc/passwd)',
      text: edit(AGENTS, 'publicKeyFile: keys/trainee-1-k1.pub.pem', 'publicKeyFile: /etc/passwd'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/1/keys/0/publicKeyFile', line: [lineOf(x, 'kid: trainee-1-k1'), lineOf(x, '/etc/passwd')], message: /inside the cell/ }],
    },
    {
      name: 'unknown field on an agent',
      text: edit(AGENTS, '    owner: quality-team\n', '    owner: quality-team\n    role: admin\n'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/2/role', line: lineOf(x, 'role: admin'), message: /unknown field "role"/ }],
    },
    {
      name: 'agent without keys',
      text: edit(AGENTS, '    keys:\n      - kid: observer-1-k1\n        publicKeyFile: keys/observer-1-k1.pub.pem\n', ''),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/2', line: lineOf(x, '- id: observer-1'), message: /missing required field "keys"/ }],
    },
    {
      name: 'YAML __proto__ key on an agent',
      text: edit(AGENTS, '    owner: quality-team\n', '    owner: quality-team\n    __proto__: { autonomyScope: 4 }\n'),
      expected: (x) => [{ file: 'agents.yaml', path: '/agents/2/__proto__', line: lineOf(x, '__proto__'), message: /unknown field "__proto__"/ }],
    },
  ];
  for (const c of cases) {
    assertProblems(t, withCell(t, { 'agents.yaml': c.text }), c.expected(c.text), c.name);
    t.equal(({} as Record<string, unknown>)['autonomyScope'], undefined, `${c.name}: Object.prototype not polluted`);
  }
});

t.test('public key file problems', async (t) => {
  const keyLine = (kid: string): readonly [number, number] => [lineOf(AGENTS, `kid: ${kid}`), lineOf(AGENTS, `kid: ${kid}`) + 1];
  assertProblems(
    t,
    withCell(t, {}, (cell) => rmSync(join(cell.cellDir, 'keys', 'trainee-1-k1.pub.pem'))),
    [{ file: 'agents.yaml', path: '/agents/1/keys/0/publicKeyFile', line: keyLine('trainee-1-k1'), message: /cannot be read/ }],
    'missing public key file',
  );
  const foreignKeys: { name: string; pem: () => string }[] = [
    { name: 'RSA', pem: () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString() },
    { name: 'X25519', pem: () => generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' }).toString() },
    { name: 'EC P-256', pem: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString() },
    { name: 'not PEM at all', pem: () => 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ test\n' },
  ];
  for (const key of foreignKeys) {
    const result = withCell(t, {}, (cell) => writeFileSync(join(cell.cellDir, 'keys', 'trainee-1-k1.pub.pem'), key.pem()));
    // As for a missing key file, the problem is located by JSON pointer and line at the agents.yaml entry that
    // declares the key (a PEM has no JSON pointer or meaningful line of its own), and the key file is named.
    assertProblems(
      t,
      result,
      [{ file: 'agents.yaml', path: '/agents/1/keys/0/publicKeyFile', line: keyLine('trainee-1-k1'), message: /keys\/trainee-1-k1\.pub\.pem is not an Ed25519 public key/ }],
      `${key.name} key: names the key file`,
    );
    const problems = result.ok ? [] : result.problems;
    t.ok(
      problems.some((p) => matches(p, { file: 'agents.yaml', path: '/agents/1/keys/0/publicKeyFile', line: keyLine('trainee-1-k1'), message: /trainee-1-k1\.pub\.pem/ })),
      `${key.name} key: a problem locates the agents.yaml entry (/agents/1/keys/0/publicKeyFile, with line)`,
      { found: problems },
    );
  }
});

t.test('an Ed25519 PRIVATE key where the public key belongs is refused', async (t) => {
  // createPublicKey() happily derives a public key from a private PEM. Accepting it would leave an agent's
  // signing key in the declaration folder (which is committed and distributed) without any warning.
  const pair = generateEd25519KeyPair();
  const result = withCell(t, {}, (cell) => writeFileSync(join(cell.cellDir, 'keys', 'trainee-1-k1.pub.pem'), pair.privateKeyPem));
  assertProblems(
    t,
    result,
    [{ file: 'agents.yaml', path: '/agents/1/keys/0/publicKeyFile', message: /trainee-1-k1\.pub\.pem is not an Ed25519 public key.*PRIVATE key/ }],
    'private key PEM in the cell',
  );
});

t.test('all problems are reported at once when several files are broken', async (t) => {
  const brokenCell = edit(CELL, 'maxTtl: { value: 5, unit: s }', 'maxTtl: { value: 5, unit: fortnight }');
  const brokenDevice = edit(DEVICE, 'position: { min: -160, max: 160, unit: deg }', 'position: { min: 160, max: -160, unit: deg }');
  const brokenAgents = edit(AGENTS, 'autonomyScope: 2', 'autonomyScope: 5');
  const secondDevice = edit(edit(DEVICE, 'id: arm-1', 'id: arm-2'), 'maxStateAge: { value: 250, unit: ms }', 'maxStateAge: { value: 250, unit: furlong }');
  const yamlOnly = withCell(t, { 'cell.yaml': brokenCell, 'devices/arm-1.yaml': brokenDevice, 'devices/arm-2.yaml': secondDevice, 'agents.yaml': brokenAgents });
  assertProblems(
    t,
    yamlOnly,
    [
      { file: 'cell.yaml', path: '/commands/maxTtl/unit', line: lineOf(brokenCell, 'fortnight'), message: /allowed values/ },
      { file: 'devices/arm-1.yaml', path: '/joints/2/position', line: lineOf(brokenDevice, 'min: 160, max: -160'), message: /less than max/ },
      { file: 'devices/arm-2.yaml', path: '/maxStateAge/unit', line: lineOf(secondDevice, 'furlong'), message: /allowed values/ },
      { file: 'agents.yaml', path: '/agents/1/autonomyScope', line: lineOf(brokenAgents, 'autonomyScope: 5'), message: /<= 4/ },
    ],
    'four broken YAML files',
  );
  // Two problems inside one file are both reported.
  const twoInOne = edit(edit(DEVICE, 'unit: ms }', 'unit: furlong }'), 'kind: robot_arm\n', 'kind: robot_arm\nextra: 1\n');
  assertProblems(
    t,
    withCell(t, { 'devices/arm-1.yaml': twoInOne }),
    [
      { file: 'devices/arm-1.yaml', path: '/maxStateAge/unit', message: /allowed values/ },
      { file: 'devices/arm-1.yaml', path: '/extra', message: /unknown field/ },
    ],
    'two problems in one file',
  );
});

t.test('a broken policy is reported together with broken YAML files', async (t) => {
  // The operator should see the Cedar error in the same run as the YAML errors, not after fixing them.
  const brokenDevice = edit(DEVICE, 'position: { min: -160, max: 160, unit: deg }', 'position: { min: 160, max: -160, unit: deg }');
  const brokenPolicy = `${POLICY}\n@id("typo")\npermit (principal is Interlock::Agent, action, resource) when { principal.autonomyScop >= 3 };\n`;
  assertProblems(
    t,
    withCell(t, { 'devices/arm-1.yaml': brokenDevice, 'policies/arm.cedar': brokenPolicy }),
    [
      { file: 'devices/arm-1.yaml', path: '/joints/2/position', message: /less than max/ },
      { file: 'policies/arm.cedar', path: 'typo', message: /autonomyScop/ },
    ],
    'device and policy',
  );
  // For reference: the policy problem alone is found.
  assertProblems(t, withCell(t, { 'policies/arm.cedar': brokenPolicy }), [{ file: 'policies/arm.cedar', path: 'typo', message: /autonomyScop/ }], 'policy alone');
});

t.test('a cell folder that does not exist', async (t) => {
  const result = loadCell(join(DEMO_CELL, 'no-such-cell'));
  t.equal(result.ok, false);
  t.match(result.ok ? '' : result.problems[0]?.message, /cell folder not found/);
});

t.test('a public key file that is a symlink to a file outside the cell is refused', async (t) => {
  const result = withCell(t, {}, (cell) => {
    // A valid Ed25519 public key, but outside the cell folder and reached through a link inside it.
    const outside = join(cell.root, 'outside.pub.pem');
    writeFileSync(outside, generateEd25519KeyPair().publicKeyPem);
    rmSync(join(cell.cellDir, 'keys', 'trainee-1-k1.pub.pem'));
    symlinkSync(outside, join(cell.cellDir, 'keys', 'trainee-1-k1.pub.pem'));
  });
  assertProblems(t, result, [{ file: 'agents.yaml', path: '/agents/1/keys/0/publicKeyFile', message: /inside the cell folder/ }], 'symlink escape');
});

t.test('files that would be silently ignored are problems: a .yml device, a policy saved as .txt', async (t) => {
  const result = withCell(t, {
    'devices/arm-2.yml': 'id: arm-2\n',
    'policies/extra-forbid.txt': '@id("x") forbid (principal, action, resource);\n',
  });
  assertProblems(
    t,
    result,
    [
      { file: 'devices/arm-2.yml', path: '', message: /unexpected file: only \*\.yaml files belong in devices\// },
      { file: 'policies/extra-forbid.txt', path: '', message: /unexpected file: only \*\.cedar, \*\.cedarschema files belong in policies\// },
    ],
    'unexpected files',
  );
  t.ok(withCell(t, { 'devices/.gitkeep': '' }).ok, 'dotfiles such as .gitkeep are ignored');
});

t.test("cell.yaml's audit section: retention and size cap in internal units, and a cap too small to hold its reserve refused", async (t) => {
  const result = withCell(t);
  t.ok(result.ok);
  if (result.ok) t.same(result.cell.declarations.audit, { retentionMs: 90 * 86_400_000, maxBytes: 256 * 1_048_576 });
  assertProblems(
    t,
    withCell(t, { 'cell.yaml': edit(CELL, 'maxSize: { value: 256, unit: MiB }', 'maxSize: { value: 100, unit: KiB }') }),
    [{ file: 'cell.yaml', path: '/audit/maxSize', message: /at least 256 KiB/ }],
    'a 100 KiB cap',
  );
  assertProblems(
    t,
    withCell(t, { 'cell.yaml': edit(CELL, 'retention: { value: 90, unit: d }', 'retention: { value: 0, unit: d }') }),
    [{ file: 'cell.yaml', path: '/audit/retention/value', message: /must be > 0/ }],
    'a zero retention',
  );
  const without = withCell(t, { 'cell.yaml': CELL.replace(/^audit:\n(?: {2}.*\n)+/m, '') });
  t.ok(without.ok);
  if (without.ok) t.same(without.cell.declarations.audit, {}, 'without the section: keep everything, no cap');
});
