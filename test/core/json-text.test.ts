// The JSON text scans: nesting depth before parsing, and repeated keys that JSON.parse would silently resolve to the
// last one. Exact cases, then properties over arbitrary JSON (fast-check) and hostile sizes, which must stay linear.

import fc from 'fast-check';
import t from 'tap';
import { jsonDepthProblem, jsonDuplicateKeyProblem } from '../../src/core/json-text.js';

/** Nesting depth of a parsed value, for comparison (recursive: only for small generated values). */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf));
  if (typeof value === 'object' && value !== null) return 1 + Math.max(0, ...Object.values(value).map(depthOf));
  return 0;
}

t.test('depth: brackets in strings and escapes do not count; the limit itself passes', async (t) => {
  t.equal(jsonDepthProblem('{"a":[1,{"b":2}]}', 3), undefined, 'depth 3 at limit 3');
  t.match(jsonDepthProblem('{"a":[1,{"b":2}]}', 2), /deeper than 2 levels/, 'depth 3 at limit 2');
  t.equal(jsonDepthProblem('{"a":"[[[[{{{{"}', 1), undefined, 'brackets inside a string');
  t.equal(jsonDepthProblem('{"a\\"[[[":"\\\\"}', 1), undefined, 'an escaped quote does not end the string; an escaped backslash does not escape the quote after it');
  t.equal(jsonDepthProblem('[][][][]', 1), undefined, 'siblings do not add up');
  t.equal(jsonDepthProblem('"just a string"', 0), undefined, 'a scalar has depth 0');
  t.match(jsonDepthProblem('[[[', 2), /deeper than 2/, 'not JSON: still refused at the limit');
});

t.test('depth: 10 000 and 1 000 000 levels are refused at the first bracket past the limit, without recursion', async (t) => {
  for (const depth of [10_000, 1_000_000]) {
    const arrays = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    t.match(jsonDepthProblem(arrays, 64), /deeper than 64 levels \(at character 64\)/, `${depth} nested arrays`);
    t.match(jsonDepthProblem(objects, 64), /deeper than 64 levels/, `${depth} nested objects`);
  }
});

t.test('depth: equals the parsed depth for arbitrary JSON', async (t) => {
  fc.assert(
    fc.property(fc.json({ depthSize: 'medium' }), (text) => {
      const depth = depthOf(JSON.parse(text));
      return jsonDepthProblem(text, depth) === undefined && (depth === 0 || jsonDepthProblem(text, depth - 1) !== undefined);
    }),
  );
  t.pass('property held');
});

t.test('duplicate keys: refused at any depth, compared after unescaping', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['top level', '{"alg":"none","alg":"EdDSA"}', /duplicate key "alg"/],
    ['nested object', '{"params":{"x":1,"y":2,"x":3}}', /duplicate key "x"/],
    ['object inside an array', '{"a":[1,{"k":1,"k":1}]}', /duplicate key "k"/],
    ['escaped spelling of the same key', '{"aud":"a","\\u0061ud":"b"}', /duplicate key "aud"/],
    ['after a value that is an object', '{"a":{"b":1},"c":2,"a":3}', /duplicate key "a"/],
    ['whitespace around the tokens', '{ "a" : 1 ,\n "a" : 2 }', /duplicate key "a"/],
    ['__proto__ twice', '{"__proto__":1,"__proto__":2}', /duplicate key "__proto__"/],
  ];
  for (const [name, text, problem] of cases) t.match(jsonDuplicateKeyProblem(text), problem, name);
});

t.test('duplicate keys: the same name in different objects, or as a value, is fine', async (t) => {
  const fine = [
    '{"a":{"a":{"a":1}}}',
    '{"a":[{"b":1},{"b":2}],"b":3}',
    '{"a":"a","b":"a"}',
    '[{"x":1},{"x":1}]',
    '{"a":"\\"a\\":1,","b":1}',
    '{"a\\"b":1,"a":2,"b":3}',
    '{}',
    '[]',
    '"a"',
  ];
  for (const text of fine) t.equal(jsonDuplicateKeyProblem(text), undefined, text);
  t.match(jsonDuplicateKeyProblem('{"a":"unterminated'), /not JSON/, 'text that is not JSON is refused, not passed');
});

t.test('duplicate keys: never reported for what JSON.stringify writes, always for an object given a repeated key', async (t) => {
  fc.assert(fc.property(fc.json(), (text) => jsonDuplicateKeyProblem(text) === undefined));
  fc.assert(
    fc.property(fc.dictionary(fc.string(), fc.json(), { minKeys: 1 }), fc.nat(), (entries, pick) => {
      const keys = Object.keys(entries);
      const repeated = keys[pick % keys.length] as string;
      const body = keys.map((k) => `${JSON.stringify(k)}:${entries[k] as string}`);
      const text = `{"wrap":[{${[...body, `${JSON.stringify(repeated)}:null`].join(',')}}]}`;
      return jsonDuplicateKeyProblem(text) !== undefined;
    }),
  );
  t.pass('properties held');
});

t.test('duplicate keys: linear in the text, no recursion (deep nesting, many keys, long escaped keys)', async (t) => {
  const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
  const deepObjects = `${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}`;
  const manyKeys = `{${Array.from({ length: 200_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`;
  const escaped = `{"${'\\u0041'.repeat(200_000)}":1,"${'A'.repeat(200_000)}":2}`;
  const started = performance.now();
  t.equal(jsonDuplicateKeyProblem(deep), undefined, 'a million nested arrays');
  t.equal(jsonDuplicateKeyProblem(deepObjects), undefined, '200 000 nested objects, each with key "a"');
  t.equal(jsonDuplicateKeyProblem(manyKeys), undefined, '200 000 keys in one object');
  t.match(jsonDuplicateKeyProblem(escaped), /duplicate key "A{200000}"/, 'a 200 000-character key, once escaped, once not');
  // About 5 MB in all: a quadratic scan would take minutes; a linear one well under a second here.
  t.ok(performance.now() - started < 5_000, `took ${(performance.now() - started).toFixed(0)} ms`);
});
