// `interlock check` on hostile input: a state nested 10 000 deep, a line far past the line limit, CRLF endings.
// Each bad line is one INPUT_INVALID output line with its line number, and every line after it is still decided.

import { createHash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import t from 'tap';
import { MAX_LINE_BYTES, runCheck, type CheckOutputLine } from '../../src/cli/check.js';
import { MAX_LINE_DEPTH } from '../../src/cli/check-input.js';
import { makeTestCell } from '../helpers/test-cell.js';

const NOW = 1_795_000_000_000;
const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
const STATE = { positionsRad: HOME, moving: false, ageMs: 20 };

const cell = makeTestCell();
t.teardown(() => cell.cleanup());
const loaded = cell.load();
const planner = cell.signer('planner-1', () => NOW);
/** A fresh allowed move of arm-1, as an input line with its state. */
const goodLine = (): string => JSON.stringify({ token: planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }), atMs: NOW, state: STATE });
/** A fresh stop of arm-1: allowed whatever came before, so it shows that a line was decided. */
const stopLine = (): string => JSON.stringify({ token: planner.sign('arm-1', 'stop', {}), atMs: NOW });

async function run(input: Readable): Promise<CheckOutputLine[]> {
  const output = new PassThrough();
  const chunks: string[] = [];
  output.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  await runCheck(loaded, input, output, () => NOW);
  return chunks
    .join('')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as CheckOutputLine);
}

const summary = (out: CheckOutputLine[]): [number, string][] => out.map((o) => [o.line, o.reasons.find((r) => r.code !== 'SAFE_STATE_COMMAND')?.code ?? o.verdict]);

/** `{"a":...{"a":1}...}` nested `depth` objects deep. */
const nestedObject = (depth: number): string => `${'{"a":'.repeat(depth - 1)}{"a":1}${'}'.repeat(depth - 1)}`;

t.test('a state nested 10 000 deep is INPUT_INVALID before anything recurses into it; later lines are decided', async (t) => {
  const token = planner.sign('arm-1', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 });
  const deepState = `{"token":"${token}","atMs":${NOW},"state":{"positionsRad":${JSON.stringify(HOME)},"moving":false,"ageMs":20,"x":${nestedObject(10_000)}}}`;
  const deepHistory = `{"token":"${token}","atMs":${NOW},"history":{"states":{"arm-1":[{"ageMs":50,"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}]}}}`;
  const out = await run(Readable.from([[deepState, deepHistory, goodLine()].join('\n')]));
  t.same(summary(out), [[1, 'INPUT_INVALID'], [2, 'INPUT_INVALID'], [3, 'allow']]);
  t.match(out[0]?.reasons[0]?.message, /nests deeper than 64 levels/, 'says why');
  t.match(out[1]?.reasons[0]?.message, /nests deeper than 64 levels/, 'in history too');
});

t.test('the depth limit is the nesting of the line itself: at the limit it is read, one more is refused', async (t) => {
  t.equal(MAX_LINE_DEPTH, 64);
  const withExtra = (depth: number): string => goodLine().replace(/}$/, `,"x":${nestedObject(depth)}}`);
  // The line object is level 1, so an extra field nested depth - 1 deep reaches exactly `depth`.
  const out = await run(Readable.from([[withExtra(MAX_LINE_DEPTH - 1), withExtra(MAX_LINE_DEPTH)].join('\n')]));
  t.match(out[0]?.reasons[0], { code: 'INPUT_INVALID', message: /additional properties "x"/ }, 'at the limit: parsed, then refused for the unknown field');
  t.match(out[1]?.reasons[0], { code: 'INPUT_INVALID', message: /deeper than 64/ }, 'one level more: refused unparsed');
});

/** Memory a held line would show in: the JS heap (strings) and buffers. */
function heldBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** Streams `bytes` of 'x' in 64 KiB chunks from one reused buffer, recording the largest growth of memory seen. */
function longLine(bytes: number, memory: { peakGrowth: number }): AsyncGenerator<Buffer> {
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  const base = heldBytes();
  return (async function* () {
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      if (sent % (1024 * 1024) === 0) memory.peakGrowth = Math.max(memory.peakGrowth, heldBytes() - base);
      yield bytes - sent >= chunk.length ? chunk : chunk.subarray(0, bytes - sent);
    }
  })();
}

t.test('a 64 MiB line is one INPUT_INVALID line, never held in memory, and the lines after it are decided', async (t) => {
  const memory = { peakGrowth: 0 };
  const size = 64 * 1024 * 1024;
  const first = goodLine();
  const after = [stopLine(), stopLine()];
  const input = Readable.from(
    (async function* () {
      yield `${first}\n`;
      yield* longLine(size, memory);
      yield `\r\n${after.join('\n')}\n`;
    })(),
  );
  const out = await run(input);
  t.same(summary(out), [[1, 'allow'], [2, 'INPUT_INVALID'], [3, 'allow'], [4, 'allow']]);
  t.match(out[1]?.reasons[0]?.message, new RegExp(`line is ${size} bytes, longer than the ${MAX_LINE_BYTES} bytes read`));
  const digest = createHash('sha256').update(Buffer.alloc(size, 0x78)).digest('hex');
  t.equal(out[1]?.commandDigest, digest, 'the digest is of the line as it streamed past');
  // Holding the line would take 64 MiB (readline: 128 MiB as a UTF-16 string); the limit plus chunks is about 1 MiB.
  t.ok(memory.peakGrowth < 24 * 1024 * 1024, `heap and buffer memory grew by at most ${(memory.peakGrowth / 2 ** 20).toFixed(1)} MiB`);
});

t.test('a line of exactly MAX_LINE_BYTES is read and decided; one byte more is not', async (t) => {
  t.equal(MAX_LINE_BYTES, 1024 * 1024);
  // JSON whitespace inside the object pads a valid line to an exact length.
  const padded = (bytes: number): string => {
    const line = stopLine();
    return `${line.slice(0, -1)}${' '.repeat(bytes - Buffer.byteLength(line))}}`;
  };
  const atLimit = padded(MAX_LINE_BYTES);
  const over = padded(MAX_LINE_BYTES + 1);
  t.equal(Buffer.byteLength(atLimit), MAX_LINE_BYTES, 'fixture: at the limit');
  const out = await run(Readable.from([`${atLimit}\n${over}\n${padded(MAX_LINE_BYTES)}\r\n`]));
  t.same(summary(out), [[1, 'allow'], [2, 'INPUT_INVALID'], [3, 'allow']], 'at the limit (LF and CRLF): read; one byte over: refused');
});

t.test('CRLF line endings give the same decisions as LF, wherever the chunks split them', async (t) => {
  const move = goodLine();
  const stop = planner.sign('arm-1', 'stop', {});
  const lines = [move, '', stop, move, '{not json'];
  const lf = summary(await run(Readable.from([lines.join('\n')])));
  t.same(lf, [[1, 'allow'], [3, 'allow'], [4, 'ENVELOPE_REPLAYED'], [5, 'INPUT_INVALID']], 'fixture: LF');
  const crlf = Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8');
  t.same(summary(await run(Readable.from([crlf]))), lf, 'CRLF in one chunk');
  const cr = crlf.indexOf('\r');
  t.same(summary(await run(Readable.from([crlf.subarray(0, cr + 1), crlf.subarray(cr + 1)]))), lf, 'a chunk ending between CR and LF');
});
