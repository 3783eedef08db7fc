// `interlock check` and `interlock validate` as documented in docs/cli.md: one decision per non-blank input line,
// the documented input forms, replay memory across lines, and bad lines turned into INPUT_INVALID, never lost.

import t from 'tap';
import { PassThrough, Readable } from 'node:stream';
import { runCheck, type CheckOutputLine } from '../../src/cli/check.js';
import { main } from '../../src/cli/main.js';
import { makeTestCell } from '../helpers/test-cell.js';

const NOW = 1_795_000_000_000;
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];

async function check(lines: string[]): Promise<CheckOutputLine[]> {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  return checkWith(cell.load(), lines);
}

async function checkWith(loaded: ReturnType<ReturnType<typeof makeTestCell>['load']>, lines: string[]): Promise<CheckOutputLine[]> {
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  await runCheck(loaded, Readable.from([lines.join('\n')]), output, () => NOW);
  return chunks
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as CheckOutputLine);
}

t.test('each documented input form gives one decision line, in order, with line numbers', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const planner = cell.signer('planner-1', () => NOW);
  const move = planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 });
  const tooFast = planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 9 });
  const stop = planner.sign('arm-1', 'stop', {});
  const bareMove = planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 });
  const bareBelt = planner.sign('conveyor-1', 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 });
  const state = { positionsRad: HOME, moving: false, ageMs: 20 };
  const lines = [
    JSON.stringify({ token: move, atMs: NOW, state }),
    '',
    JSON.stringify({ token: tooFast, atMs: NOW, state }),
    stop, // bare JWS, no state: a stop needs none
    bareBelt, // bare JWS, and the input never gave the belt's state: it cannot be checked, so it is denied
    JSON.stringify({ token: move, atMs: NOW, state }), // the same command again
    // bare JWS: checked against the arm state line 1 gave (20 ms old at NOW), which the session keeps. That state
    // names no command, so the move and the stop released since are not reported finished: the arm is checked as if
    // still moving at its top speed, and its run-out leaves the table's keep-in volume.
    bareMove,
  ];
  const out = await checkWith(cell.load(), lines);
  t.equal(out.length, 6, 'one output line per non-blank input line');
  t.same(
    out.map((o) => [o.line, o.verdict, o.reasons.find((r) => r.code !== 'SAFE_STATE_COMMAND')?.code ?? null]),
    [
      [1, 'allow', null],
      [3, 'deny', 'BOUNDS_JOINT_VELOCITY'],
      [4, 'allow', null],
      [5, 'deny', 'BOUNDS_STATE_MISSING'],
      [6, 'deny', 'ENVELOPE_REPLAYED'],
      [7, 'deny', 'BOUNDS_KEEP_IN'],
    ],
  );
  const first = out[0] as CheckOutputLine;
  t.equal(first.agentId, 'planner-1');
  t.equal(first.deviceId, 'arm-1');
  t.equal(first.action, 'move_joints');
  t.equal(first.decidedAtMs, NOW);
  t.match(first.commandDigest, /^[0-9a-f]{64}$/);
  t.equal(first.declarationsDigest, cell.load().declarations.digest);
});

t.test('stale state given with ageMs is denied; the device field is the arrival topic', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const planner = cell.signer('planner-1', () => NOW);
  const move = (): string => planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 });
  const out = await checkWith(cell.load(), [
    JSON.stringify({ token: move(), atMs: NOW, state: { positionsRad: HOME, moving: false, ageMs: 250 } }),
    JSON.stringify({ token: move(), atMs: NOW, state: { positionsRad: HOME, moving: false, ageMs: 251 } }),
    JSON.stringify({ token: move(), atMs: NOW, device: 'arm-2', state: { positionsRad: HOME, moving: false, ageMs: 0 } }),
  ]);
  t.same(
    out.map((o) => o.reasons[0]?.code ?? o.verdict),
    ['allow', 'BOUNDS_STATE_STALE', 'ENVELOPE_WRONG_AUDIENCE'],
  );
});

t.test('unreadable lines become INPUT_INVALID denies and nothing is lost', async (t) => {
  const out = await check([
    '{not json',
    JSON.stringify({ token: 'x', surprise: 1 }),
    JSON.stringify({ atMs: NOW }),
    JSON.stringify({ token: 'a.b.c', state: { positionsRad: HOME } }), // ageMs missing
    JSON.stringify({ token: 'a.b.c', atMs: -1 }),
    'plainly not a token',
  ]);
  t.equal(out.length, 6);
  t.same(
    out.map((o) => o.reasons[0]?.code),
    ['INPUT_INVALID', 'INPUT_INVALID', 'INPUT_INVALID', 'INPUT_INVALID', 'INPUT_INVALID', 'ENVELOPE_MALFORMED'],
  );
  t.ok(out.every((o) => o.verdict === 'deny'));
  t.match(out[1]?.reasons[0]?.message ?? '', /surprise/, 'the unknown field is named');
});

t.test('a malformed state snapshot for a declared device is INPUT_INVALID, not a silent missing state', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const planner = cell.signer('planner-1', () => NOW);
  const out = await checkWith(cell.load(), [
    JSON.stringify({ token: planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }), atMs: NOW, state: { positionsRad: [1, 2], ageMs: 0 } }),
  ]);
  t.equal(out[0]?.reasons[0]?.code, 'INPUT_INVALID');
  t.match(out[0]?.reasons[0]?.message ?? '', /state/);
});

t.test('validate reports ok with the digest, and every problem of a broken cell with exit 1', async (t) => {
  const good = makeTestCell();
  const broken = makeTestCell({
    'devices/arm-1.yaml': 'id: arm-1\nkind: robot_arm\nmaxStateAge: { value: 1, unit: fortnight }\njoints: []\n',
    'cell.yaml': 'cell: demo-cell\n',
  });
  t.teardown(() => {
    good.cleanup();
    broken.cleanup();
  });
  const written: string[] = [];
  const restore = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    written.push(chunk.toString());
    return true;
  }) as typeof process.stdout.write;
  let okCode: number;
  let brokenCode: number;
  try {
    okCode = await main(['validate', good.cellDir]);
    brokenCode = await main(['validate', broken.cellDir]);
  } finally {
    process.stdout.write = restore;
  }
  const text = written.join('');
  t.equal(okCode, 0);
  const loadedGood = good.load();
  t.match(
    text,
    new RegExp(
      `ok\\. cell demo-cell, ${loadedGood.declarations.devices.size} device\\(s\\), 3 agent\\(s\\), ${loadedGood.policies.policyIds.length} policies, digest ${loadedGood.declarations.digest}`,
    ),
  );
  t.equal(brokenCode, 1);
  t.match(text, /cell\.yaml:1: \(file\): missing required field "commands"/);
  t.match(text, /devices\/arm-1\.yaml:3: \/maxStateAge\/unit: must be equal to one of the allowed values: "s", "ms"/);
  t.match(text, /devices\/arm-1\.yaml:4: \/joints: must NOT have fewer than 1 items/);
});

t.test('usage errors exit 2', async (t) => {
  const restore = process.stderr.write.bind(process.stderr);
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    t.equal(await main(['frobnicate']), 2);
    t.equal(await main(['demo', '--duration', 'soon']), 2);
    t.equal(await main(['check', '--no-such-flag']), 2);
  } finally {
    process.stderr.write = restore;
  }
});
