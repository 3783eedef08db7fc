// The line reader under `interlock check`: LF and CRLF endings wherever the chunks split them, the limit counted
// without the line ending, and a line past it reported by number, size and digest without being held.

import { createHash } from 'node:crypto';
import t from 'tap';
import { readBoundedLines, type BoundedLine } from '../../src/cli/bounded-lines.js';

async function lines(chunks: (string | Buffer)[], max = 8): Promise<BoundedLine[]> {
  const out: BoundedLine[] = [];
  for await (const line of readBoundedLines((async function* () {
    yield* chunks;
  })(), max)) out.push(line);
  return out;
}

const sha = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const ok = (lineNumber: number, text: string): BoundedLine => ({ lineNumber, ok: true, text });

t.test('LF and CRLF end a line; a lone CR is part of it; the last line needs no ending', async (t) => {
  t.same(await lines(['a\nb\r\nc']), [ok(1, 'a'), ok(2, 'b'), ok(3, 'c')]);
  t.same(await lines(['a\rb\n']), [ok(1, 'a\rb')], 'a lone CR stays in the line');
  t.same(await lines(['a\r']), [ok(1, 'a')], 'a CR at the very end is a line ending without its LF');
  t.same(await lines(['\n\n']), [ok(1, ''), ok(2, '')], 'empty lines are lines (check skips them but counts them)');
  t.same(await lines([]), [], 'no input, no lines');
  t.same(await lines(['x\n']), [ok(1, 'x')], 'a final LF does not make an extra line');
});

t.test('endings and characters split across chunks anywhere', async (t) => {
  const text = 'ab\r\ncdé\r\n\r\nfg\rh\n';
  const expected = [ok(1, 'ab'), ok(2, 'cdé'), ok(3, ''), ok(4, 'fg\rh')];
  const bytes = Buffer.from(text, 'utf8');
  for (let cut = 0; cut <= bytes.length; cut++) {
    t.same(await lines([bytes.subarray(0, cut), bytes.subarray(cut)], 16), expected, `split at byte ${cut}`);
  }
  t.same(await lines([...bytes].map((b) => Buffer.from([b])), 16), expected, 'one byte per chunk');
});

t.test('the limit counts the line without its ending; one byte more is reported, not read', async (t) => {
  t.same(await lines(['12345678\n', '12345678\r\n', '12345678']), [ok(1, '12345678'), ok(2, '12345678'), ok(3, '12345678')], 'exactly at the limit, with LF, CRLF and none');
  t.same(await lines(['123456789\nok\n']), [{ lineNumber: 1, ok: false, bytes: 9, digest: sha('123456789') }, ok(2, 'ok')], 'one over');
  t.same(await lines(['1234567\r\r\n']), [ok(1, '1234567\r')], 'a CR inside the line counts; only the one before LF is the ending');
  t.same(await lines(['12345678\r\r\n']), [{ lineNumber: 1, ok: false, bytes: 9, digest: sha('12345678\r') }], 'so it can push the line over');
  t.same(await lines(['12345678\r\n']), [ok(1, '12345678')], 'the CR of CRLF does not push a full line over');
});

t.test('a long line streams past: hashed, counted, and the next lines read', async (t) => {
  const long = 'x'.repeat(1000);
  const chunks = ['first\nxx', ...Array.from({ length: 99 }, () => 'x'.repeat(10)), '\r\nsecond\n'];
  t.same(await lines(chunks), [ok(1, 'first'), { lineNumber: 2, ok: false, bytes: 992, digest: sha(long.slice(0, 992)) }, ok(3, 'second')]);
  t.same(await lines([`${long}\r`, '\nafter']), [{ lineNumber: 1, ok: false, bytes: 1000, digest: sha(long) }, ok(2, 'after')], 'CRLF split after a long line');
  t.same(await lines([long]), [{ lineNumber: 1, ok: false, bytes: 1000, digest: sha(long) }], 'a long last line without an ending');
});

t.test('a source that reuses its buffer does not corrupt a kept line', async (t) => {
  const shared = Buffer.from('abc');
  async function* reusing(): AsyncGenerator<Buffer> {
    yield shared;
    shared.write('xyz');
    yield Buffer.from('\n');
  }
  const out: BoundedLine[] = [];
  for await (const line of readBoundedLines(reusing(), 8)) out.push(line);
  t.same(out, [ok(1, 'abc')]);
});
