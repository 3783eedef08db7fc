// The agent and operator registry (agents.yaml) as the loader reads it: key validity windows, revocations, the one
// id space of agents and operators, operator roles, and approval drift tolerances. Each broken registry is refused
// with a problem naming the file, the JSON pointer and the line; a valid window and a revoked key load as data.
// (test/declarations/load.test.ts covers scopes, duplicate agent ids, key files and paths.)

import t, { type Test } from 'tap';
import type { DeclarationProblem } from '../../src/core/problems.js';
import { loadCell, type LoadResult } from '../../src/declarations/load.js';
import { makeTestCell } from '../helpers/test-cell.js';

const FILE = 'agents.yaml';

interface RegistryParts {
  readonly plannerKey?: string;
  readonly operators?: string;
  readonly revoked?: string;
  readonly stateDrift?: string;
}

const SHIFT_LEAD = `  - id: shift-lead
    name: Demo shift lead
    roles: [approve, reset, restore, mode]
    keys:
      - kid: shift-lead-k1
        publicKeyFile: keys/shift-lead-k1.pub.pem
`;

const CONVEYOR_DRIFT = `    - device: conveyor-1
      tolerances:
        - field: speedMPerS
          within: { value: 0.02, unit: m/s }
`;

/** A complete agents.yaml; each part replaces one section (its lines are indented as in the file). */
function registry(parts: RegistryParts = {}): string {
  return `agents:
  - id: planner-1
    owner: cell-automation-team
    autonomyScope: 4
    keys:
      - kid: planner-1-k1
        publicKeyFile: keys/planner-1-k1.pub.pem
${parts.plannerKey ?? ''}  - id: trainee-1
    owner: cell-automation-team
    autonomyScope: 2
    keys:
      - kid: trainee-1-k1
        publicKeyFile: keys/trainee-1-k1.pub.pem
operators:
${parts.operators ?? SHIFT_LEAD}revoked:${parts.revoked ?? ' []\n'}trust:
  demoteAfter: { denials: 5, within: { value: 60, unit: s } }
  demoteTo: quarantine
approvals:
  pendingFor: { value: 120, unit: s }
  stateDrift:
${parts.stateDrift ?? CONVEYOR_DRIFT}`;
}

/** 1-based line of the first line containing `needle` at or after the first occurrence of `after`. */
function lineOf(text: string, needle: string, after?: string): number {
  const start = after === undefined ? 0 : text.indexOf(after);
  if (start < 0) throw new Error(`anchor not found: ${after ?? ''}`);
  const index = text.indexOf(needle, start);
  if (index < 0) throw new Error(`needle not found: ${needle}`);
  return text.slice(0, index).split('\n').length;
}

function load(t: Test, text: string): LoadResult {
  const cell = makeTestCell({ [FILE]: text });
  t.teardown(() => cell.cleanup());
  return loadCell(cell.cellDir);
}

interface Expected {
  readonly path: string;
  readonly line: number;
  readonly message: RegExp;
}

function assertProblem(t: Test, result: LoadResult, expected: Expected, name: string): void {
  t.equal(result.ok, false, `${name}: refused`);
  const problems: readonly DeclarationProblem[] = result.ok ? [] : result.problems;
  const match = problems.find((p) => p.file === FILE && p.path === expected.path && expected.message.test(p.message));
  t.ok(match, `${name}: a problem in ${FILE} at ${expected.path} matching ${String(expected.message)}`, { found: problems });
  t.equal(match?.line, expected.line, `${name}: on line ${expected.line}`);
}

t.test('the base registry of these tests loads', async (t) => {
  const result = load(t, registry());
  t.ok(result.ok, 'loads', { problems: result.ok ? [] : result.problems });
});

t.test('key validity windows: real RFC 3339 instants with an offset, notAfter after notBefore', async (t) => {
  // planner-1-k1 with extra lines (notBefore, notAfter) under it.
  const window = (lines: string): string => registry().replace('publicKeyFile: keys/planner-1-k1.pub.pem\n', `publicKeyFile: keys/planner-1-k1.pub.pem\n${lines}`);
  const cases: { name: string; text: string; expected: (x: string) => Expected }[] = [
    {
      // Date.parse rolls 30 February over to 2 March; the loader must not.
      name: 'notBefore on 30 February',
      text: window('        notBefore: "2026-02-30T00:00:00Z"\n'),
      expected: (x) => ({ path: '/agents/0/keys/0/notBefore', line: lineOf(x, '2026-02-30'), message: /"2026-02-30T00:00:00Z" is not a real date and time/ }),
    },
    {
      name: 'notAfter on 31 April with an offset',
      text: window('        notAfter: "2026-04-31T10:00:00+02:00"\n'),
      expected: (x) => ({ path: '/agents/0/keys/0/notAfter', line: lineOf(x, '2026-04-31'), message: /is not a real date and time/ }),
    },
    {
      // Without an offset the time would move with the machine's time zone.
      name: 'notBefore without an offset',
      text: window('        notBefore: "2026-01-01T00:00:00"\n'),
      expected: (x) => ({ path: '/agents/0/keys/0/notBefore', line: lineOf(x, 'notBefore:'), message: /must match pattern/ }),
    },
    {
      name: 'notBefore as a date only',
      text: window('        notBefore: "2026-01-01"\n'),
      expected: (x) => ({ path: '/agents/0/keys/0/notBefore', line: lineOf(x, 'notBefore:'), message: /must match pattern/ }),
    },
    {
      name: 'notAfter before notBefore',
      text: window('        notBefore: "2026-06-01T00:00:00Z"\n        notAfter: "2026-01-01T00:00:00Z"\n'),
      expected: (x) => ({ path: '/agents/0/keys/0/notAfter', line: lineOf(x, '- kid: planner-1-k1'), message: /notAfter must be later than notBefore/ }),
    },
    {
      // 01:00 at +01:00 is 00:00Z: the same instant written two ways is an empty window.
      name: 'notAfter the same instant as notBefore, written with another offset',
      text: window('        notBefore: "2026-01-01T01:00:00+01:00"\n        notAfter: "2026-01-01T00:00:00Z"\n'),
      expected: (x) => ({ path: '/agents/0/keys/0/notAfter', line: lineOf(x, '- kid: planner-1-k1'), message: /notAfter must be later than notBefore/ }),
    },
  ];
  for (const c of cases) assertProblem(t, load(t, c.text), c.expected(c.text), c.name);
});

t.test('a key with a valid window loads with its bounds in ms; a revoked key loads with its reason', async (t) => {
  const text = registry({
    plannerKey: '      - kid: planner-1-k2\n        publicKeyFile: keys/planner-1-k2.pub.pem\n        notBefore: "2026-01-01T01:00:00+01:00"\n        notAfter: "2026-12-31T23:59:59.5Z"\n',
    revoked: '\n  - kid: trainee-1-k1\n    reason: key found in a public repository\n',
  });
  const result = load(t, text);
  t.ok(result.ok, 'loads', { problems: result.ok ? [] : result.problems });
  if (!result.ok) return;
  const { keys } = result.cell.declarations;
  const k2 = keys.get('planner-1-k2');
  t.equal(k2?.notBeforeMs, Date.UTC(2026, 0, 1, 0, 0, 0), 'notBefore with its +01:00 offset, in ms since the epoch');
  t.equal(k2?.notAfterMs, Date.UTC(2026, 11, 31, 23, 59, 59, 500), 'notAfter with its fraction of a second');
  t.equal(k2?.agentId, 'planner-1', 'the second key belongs to planner-1 too');
  t.equal(k2?.revoked, undefined, 'not revoked');
  const k1 = keys.get('planner-1-k1');
  t.same([k1?.notBeforeMs, k1?.notAfterMs], [-Infinity, Infinity], 'a key without a window is valid always');
  const revoked = keys.get('trainee-1-k1');
  t.equal(revoked?.revoked, 'key found in a public repository', 'the revoked key is kept, with its reason');
  t.equal(revoked?.owner, 'agent');
  t.equal(revoked?.agentId, 'trainee-1');
  t.equal(result.cell.declarations.agents.has('trainee-1'), true, 'its agent is still registered');
});

t.test('revocations must name a registered kid, once', async (t) => {
  const cases: { name: string; revoked: string; expected: (x: string) => Expected }[] = [
    {
      // A typo in a revocation would leave the key it meant in force.
      name: 'a revoked kid that is not registered',
      revoked: '\n  - kid: planner-1-k0\n    reason: lost laptop\n',
      expected: (x) => ({ path: '/revoked/0/kid', line: lineOf(x, 'kid: planner-1-k0'), message: /kid "planner-1-k0" is not registered under agents, operators or drivers/ }),
    },
    {
      name: 'a kid differing only in case',
      revoked: '\n  - kid: PLANNER-1-K1\n    reason: lost laptop\n',
      expected: (x) => ({ path: '/revoked/0/kid', line: lineOf(x, 'kid: PLANNER-1-K1'), message: /not registered/ }),
    },
    {
      name: 'the same kid revoked twice',
      revoked: '\n  - kid: planner-1-k1\n    reason: lost laptop\n  - kid: planner-1-k1\n    reason: lost again\n',
      expected: (x) => ({ path: '/revoked/1/kid', line: lineOf(x, 'kid: planner-1-k1', 'reason: lost laptop'), message: /kid "planner-1-k1" is revoked twice/ }),
    },
  ];
  for (const c of cases) {
    const text = registry({ revoked: c.revoked });
    assertProblem(t, load(t, text), c.expected(text), c.name);
  }
});

t.test('operators: one id space with agents, unique kids, known roles', async (t) => {
  const operator = (id: string, roles: string, kid = `${id}-k1`, keyFile = `keys/${kid}.pub.pem`): string =>
    `  - id: ${id}\n    name: ${id} (test)\n    roles: ${roles}\n    keys:\n      - kid: ${kid}\n        publicKeyFile: ${keyFile}\n`;
  const cases: { name: string; operators: string; expected: (x: string) => Expected }[] = [
    {
      // An operator with an agent's id would make every audit record ambiguous.
      name: 'an operator id equal to an agent id',
      operators: operator('planner-1', '[approve]', 'planner-1-op-k1'),
      expected: (x) => ({ path: '/operators/0/id', line: lineOf(x, '- id: planner-1', 'operators:'), message: /id "planner-1" is already used by an agent/ }),
    },
    {
      name: 'two operators with the same id',
      operators: `${SHIFT_LEAD}${operator('shift-lead', '[mode]', 'shift-lead-k2')}`,
      expected: (x) => ({ path: '/operators/1/id', line: lineOf(x, '- id: shift-lead', 'shift-lead-k1'), message: /id "shift-lead" is already used by another operator/ }),
    },
    {
      // The agent's key registered again under an operator: who signed would be ambiguous.
      name: 'a kid shared by an agent and an operator',
      operators: operator('night-lead', '[approve]', 'planner-1-k1', 'keys/planner-1-k1.pub.pem'),
      expected: (x) => ({ path: '/operators/0/keys/0/kid', line: lineOf(x, '- kid: planner-1-k1', 'operators:'), message: /kid "planner-1-k1" is already registered to agent planner-1/ }),
    },
    {
      name: 'an unknown role',
      operators: operator('night-lead', '[approve, admin]'),
      expected: (x) => ({ path: '/operators/0/roles/1', line: lineOf(x, 'roles: [approve, admin]'), message: /must be equal to one of the allowed values: "approve", "reset", "restore", "mode"/ }),
    },
    {
      name: 'empty roles',
      operators: operator('night-lead', '[]'),
      expected: (x) => ({ path: '/operators/0/roles', line: lineOf(x, 'roles: []'), message: /must NOT have fewer than 1 items/ }),
    },
    {
      name: 'a role listed twice',
      operators: operator('night-lead', '[approve, approve]'),
      expected: (x) => ({ path: '/operators/0/roles', line: lineOf(x, 'roles: [approve, approve]'), message: /duplicate items/ }),
    },
  ];
  for (const c of cases) {
    const text = registry({ operators: c.operators });
    assertProblem(t, load(t, text), c.expected(text), c.name);
  }
});

t.test('approval drift tolerances: a declared device, a numeric field, a unit of its dimension, once', async (t) => {
  const drift = (device: string, tolerances: string): string => `    - device: ${device}\n      tolerances:\n${tolerances}`;
  const tolerance = (field: string, value: number | string, unit: string): string => `        - field: ${field}\n          within: { value: ${value}, unit: ${unit} }\n`;
  const cases: { name: string; stateDrift: string; expected: (x: string) => Expected }[] = [
    {
      name: 'an undeclared device',
      stateDrift: drift('arm-9', tolerance('positionsRad', 0.5, 'deg')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/device', line: lineOf(x, 'device: arm-9'), message: /no device "arm-9" is declared/ }),
    },
    {
      name: 'an unknown field (a misspelt unit suffix)',
      stateDrift: drift('conveyor-1', tolerance('speedMps', 0.02, 'm/s')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/field', line: lineOf(x, '- field: speedMps'), message: /a conveyor state has no field speedMps/ }),
    },
    {
      name: 'a field of another kind (pose.xM on a conveyor)',
      stateDrift: drift('conveyor-1', tolerance('pose.xM', 0.02, 'm')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/field', line: lineOf(x, '- field: pose.xM'), message: /a conveyor state has no field pose\.xM/ }),
    },
    {
      name: 'a boolean field (running)',
      stateDrift: drift('conveyor-1', tolerance('running', 1, 'm/s')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/field', line: lineOf(x, '- field: running'), message: /running is not numeric: it must not change at all/ }),
    },
    {
      name: 'a boolean measurement of a process unit',
      stateDrift: drift('pump-1', tolerance('measurements.suction_valve_open', 1, 'm')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/field', line: lineOf(x, '- field: measurements.suction_valve_open'), message: /is a boolean: it must not change at all/ }),
    },
    {
      name: 'a field that describes the message, not the machine (timeMs)',
      stateDrift: drift('conveyor-1', tolerance('timeMs', 100, 'ms')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/field', line: lineOf(x, '- field: timeMs'), message: /timeMs is not physical state/ }),
    },
    {
      name: 'a unit of the wrong dimension (deg for a speed)',
      stateDrift: drift('conveyor-1', tolerance('speedMPerS', 0.5, 'deg')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/within/unit', line: lineOf(x, '- field: speedMPerS'), message: /speedMPerS is a linearVelocity; its unit must be one of m\/s, mm\/s, m\/min/ }),
    },
    {
      name: 'a length unit for joint positions',
      stateDrift: drift('arm-1', tolerance('positionsRad', 5, 'mm')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/within/unit', line: lineOf(x, '- field: positionsRad'), message: /positionsRad is a angle; its unit must be one of rad, deg/ }),
    },
    {
      name: 'a negative tolerance',
      stateDrift: drift('conveyor-1', tolerance('speedMPerS', -0.01, 'm/s')),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/0/within/value', line: lineOf(x, 'value: -0.01'), message: /must be >= 0/ }),
    },
    {
      name: 'the same field twice',
      stateDrift: drift('conveyor-1', `${tolerance('speedMPerS', 0.02, 'm/s')}${tolerance('speedMPerS', 0.5, 'm/s')}`),
      expected: (x) => ({ path: '/approvals/stateDrift/0/tolerances/1/field', line: lineOf(x, '- field: speedMPerS', 'value: 0.02'), message: /speedMPerS is listed twice/ }),
    },
    {
      name: 'the same device twice',
      stateDrift: `${CONVEYOR_DRIFT}${drift('conveyor-1', tolerance('speedMPerS', 0.5, 'm/s'))}`,
      expected: (x) => ({ path: '/approvals/stateDrift/1/device', line: lineOf(x, 'device: conveyor-1', 'value: 0.02'), message: /conveyor-1 is listed twice/ }),
    },
  ];
  for (const c of cases) {
    const text = registry({ stateDrift: c.stateDrift });
    assertProblem(t, load(t, text), c.expected(text), c.name);
  }
});

t.test('drift tolerances are converted to the field\'s internal unit', async (t) => {
  const text = registry({
    stateDrift: `    - device: conveyor-1
      tolerances:
        - field: speedMPerS
          within: { value: 20, unit: mm/s }
    - device: arm-1
      tolerances:
        - field: positionsRad
          within: { value: 0.5, unit: deg }
    - device: pump-1
      tolerances:
        - field: measurements.discharge_pressure
          within: { value: 0.1, unit: bar }
`,
  });
  const result = load(t, text);
  t.ok(result.ok, 'loads', { problems: result.ok ? [] : result.problems });
  if (!result.ok) return;
  const { drift } = result.cell.declarations.approvals;
  t.same(drift.get('conveyor-1'), [{ field: 'speedMPerS', within: 0.02 }], 'mm/s to m/s');
  t.same(drift.get('arm-1'), [{ field: 'positionsRad', within: (0.5 * Math.PI) / 180 }], 'deg to rad');
  t.same(drift.get('pump-1'), [{ field: 'measurements.discharge_pressure', within: 10_000 }], 'bar to Pa');
  t.equal(drift.has('amr-1'), false, 'a device without tolerances has none (no drift allowed)');
});
