// Documentation is part of the contract: every reason code is in the README with its stage, every CLI command is
// documented, and the published JSON Schemas equal the ones the loader uses.

import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REASON_CATALOG, REASON_CODES } from '../../src/core/reasons.js';
import { USAGE } from '../../src/cli/main.js';
import { DECLARATION_SCHEMAS, renderPublishedSchema } from '../../src/declarations/schemas.js';
import { REPO_ROOT } from '../helpers/test-cell.js';

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

t.test('the README starts with the install-and-run and the test commands', async (t) => {
  const head = readme.split('\n').slice(0, 10).join('\n');
  t.match(head, /npm ci && npm start/);
  t.match(head, /npm ci && npm test/);
});

t.test('every reason code is documented in the README table with its stage', async (t) => {
  for (const code of REASON_CODES) {
    const row = new RegExp(`^\\| \`${code}\` \\| ${REASON_CATALOG[code].stage} \\|`, 'm');
    t.match(readme, row, `${code} is in the reason table as stage ${REASON_CATALOG[code].stage}`);
  }
  const documented = [...readme.matchAll(/^\| `([A-Z_]+)` \| [a-z]+ \|/gm)].map((m) => m[1]);
  t.same(documented.filter((code) => !REASON_CODES.includes(code as never)), [], 'the README lists no code that does not exist');
});

t.test('no reason code is defined twice (the catalog merges each kind\'s codes; a duplicate would silently win)', async (t) => {
  const sources = ['src/core/reasons.ts', ...readdirSync(join(REPO_ROOT, 'src/core/kinds')).map((f) => `src/core/kinds/${f}`)];
  const seen = new Map<string, string>();
  for (const source of sources) {
    const text = readFileSync(join(REPO_ROOT, source), 'utf8');
    for (const match of text.matchAll(/^ {2}([A-Z][A-Z0-9_]+): \{$/gm)) {
      const code = match[1] as string;
      t.notOk(seen.has(code), `${code} is defined in ${source}${seen.has(code) ? ` and in ${seen.get(code) ?? ''}` : ''}`);
      seen.set(code, source);
    }
  }
  t.same([...seen.keys()].sort(), [...REASON_CODES].sort(), 'the catalog holds exactly the codes defined in the sources');
});

t.test('every CLI command in the usage text is documented in the README', async (t) => {
  const commands = [...USAGE.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]);
  t.ok(commands.length >= 5, `found commands: ${commands.join(', ')}`);
  for (const command of commands) t.match(readme, new RegExp(`\`interlock ${command}`), `interlock ${command} is documented`);
});

t.test('every option in the usage text is documented in the README', async (t) => {
  const options = [...new Set([...USAGE.matchAll(/--[a-z][a-z-]+/g)].map((m) => m[0]))];
  t.ok(options.length >= 10, `found options: ${options.join(' ')}`);
  for (const option of options) t.ok(readme.includes(`${option} `) || readme.includes(`${option}\``), `${option} is documented`);
});

t.test('the published JSON Schemas are the ones the loader uses (run `npm run schemas` after a change)', async (t) => {
  for (const [name, schema] of Object.entries(DECLARATION_SCHEMAS)) {
    const published = readFileSync(join(REPO_ROOT, 'safety-bounds', 'schema', name), 'utf8');
    t.equal(published, renderPublishedSchema(schema), `safety-bounds/schema/${name} is current`);
  }
});
