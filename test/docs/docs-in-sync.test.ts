// Documentation is part of the contract: the README starts with the two commands and maps every page in docs/,
// every reason code is in docs/reason-codes.md with its stage, every CLI command and option is in docs/cli.md,
// every Greengrass configuration key is in docs/deploying.md,
// every relative link in README.md and docs/*.md reaches a file (and heading) that exists, and the published JSON
// Schemas equal the ones the loader uses.

import t from 'tap';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { REASON_CATALOG, REASON_CODES } from '../../src/core/reasons.js';
import { USAGE } from '../../src/cli/main.js';
import { CONFIGURATION_KEYS } from '../../src/app/component-config.js';
import { DECLARATION_SCHEMAS, renderPublishedSchema } from '../../src/declarations/schemas.js';
import { REPO_ROOT } from '../helpers/test-cell.js';

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
const docPages = readdirSync(join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort();
const reasonCodesPage = readFileSync(join(REPO_ROOT, 'docs', 'reason-codes.md'), 'utf8');
const cliPage = readFileSync(join(REPO_ROOT, 'docs', 'cli.md'), 'utf8');
const deployingPage = readFileSync(join(REPO_ROOT, 'docs', 'deploying.md'), 'utf8');

t.test('the README starts with the install-and-run and the test commands', async (t) => {
  const head = readme.split('\n').slice(0, 10).join('\n');
  t.match(head, /npm ci && npm start/);
  t.match(head, /npm ci && npm test/);
});

t.test('every reason code is documented in the docs/reason-codes.md table with its stage', async (t) => {
  for (const code of REASON_CODES) {
    const row = new RegExp(`^\\| \`${code}\` \\| ${REASON_CATALOG[code].stage} \\|`, 'm');
    t.match(reasonCodesPage, row, `${code} is in the reason table as stage ${REASON_CATALOG[code].stage}`);
  }
  const documented = [...reasonCodesPage.matchAll(/^\| `([A-Z_]+)` \| [a-z]+ \|/gm)].map((m) => m[1]);
  t.same(documented.filter((code) => !REASON_CODES.includes(code as never)), [], 'docs/reason-codes.md lists no code that does not exist');
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

t.test('every CLI command in the usage text is documented in docs/cli.md', async (t) => {
  const commands = [...USAGE.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]);
  t.ok(commands.length >= 5, `found commands: ${commands.join(', ')}`);
  for (const command of commands) t.match(cliPage, new RegExp(`\`interlock ${command}`), `interlock ${command} is documented`);
});

t.test('every option in the usage text is documented in docs/cli.md', async (t) => {
  const options = [...new Set([...USAGE.matchAll(/--[a-z][a-z-]+/g)].map((m) => m[0]))];
  t.ok(options.length >= 10, `found options: ${options.join(' ')}`);
  for (const option of options) t.ok(cliPage.includes(`${option} `) || cliPage.includes(`${option}\``), `${option} is documented`);
});

t.test('every Greengrass configuration key is in the docs/deploying.md table, and no other', async (t) => {
  const lines = deployingPage.split('\n');
  const header = lines.indexOf('| key | default | what | on update |');
  t.ok(header >= 0, 'docs/deploying.md has the configuration key table');
  const rows = lines.slice(header + 2);
  const table = rows.slice(0, rows.findIndex((line) => !line.startsWith('|')));
  const documented = table.map((row) => /^\| `([A-Za-z]+)` \|/.exec(row)?.[1]);
  t.same(documented.slice().sort(), Object.keys(CONFIGURATION_KEYS).sort(), 'the table lists exactly CONFIGURATION_KEYS');
});

t.test('the README maps every page in docs/, and every page it maps exists', async (t) => {
  t.ok(docPages.length >= 5, `found docs pages: ${docPages.join(', ')}`);
  for (const page of docPages) t.match(readme, new RegExp(`\\]\\(docs/${page.replace('.', '\\.')}\\)`), `README.md links docs/${page}`);
});

/** GitHub's heading anchor: lower case, punctuation other than '-' and '_' dropped, spaces to '-'. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

t.test('every relative link in README.md and docs/*.md reaches a file that exists, and a heading in it', async (t) => {
  const sources = ['README.md', ...docPages.map((page) => `docs/${page}`)];
  let checked = 0;
  for (const source of sources) {
    const text = readFileSync(join(REPO_ROOT, source), 'utf8');
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1] as string;
      if (/^[a-z]+:/.test(target)) continue;
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const path = file === '' ? join(REPO_ROOT, source) : join(REPO_ROOT, dirname(source), file);
      const where = `${source}: (${target})`;
      checked++;
      if (!t.ok(existsSync(path) && relative(REPO_ROOT, path).split('/')[0] !== '..', `${where}: the file exists in the repository`)) continue;
      if (anchor === undefined) continue;
      t.ok(statSync(path).isFile() && anchorsOf(readFileSync(path, 'utf8')).has(anchor), `${where}: the heading #${anchor} exists`);
    }
  }
  t.ok(checked >= 20, `checked ${checked} links`);
});

t.test('the published JSON Schemas are the ones the loader uses (run `npm run schemas` after a change)', async (t) => {
  for (const [name, schema] of Object.entries(DECLARATION_SCHEMAS)) {
    const published = readFileSync(join(REPO_ROOT, 'safety-bounds', 'schema', name), 'utf8');
    t.equal(published, renderPublishedSchema(schema), `safety-bounds/schema/${name} is current`);
  }
});
