// The interlock refuses to start on a Node older than 22 (better-sqlite3 13 crashes there when it opens a database),
// saying which version it found and why, and the minimum is the one package.json declares in engines.node.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../src/cli/main.js';
import { MINIMUM_NODE_MAJOR, nodeVersionProblem } from '../../src/cli/node-version.js';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';

t.test('Node 22 and newer are accepted; older, and versions that cannot be read, are refused with the reason', async (t) => {
  for (const version of ['22.0.0', '22.23.5', '24.22.3', '25.1.0-pre']) t.equal(nodeVersionProblem(version), undefined, `Node ${version} accepted`);
  t.equal(
    nodeVersionProblem('20.20.2'),
    'needs Node 22 or newer, this is Node 20.20.2: better-sqlite3 13 (the audit log and the identity store) crashes the process when it opens a database on Node 20',
  );
  t.match(nodeVersionProblem('21.7.3'), /^needs Node 22 or newer, this is Node 21\.7\.3: /);
  for (const unreadable of ['', 'v22.1.0', 'twenty-two', '22']) {
    t.equal(nodeVersionProblem(unreadable), `cannot read the Node version "${unreadable}"; the interlock needs Node 22 or newer`, `"${unreadable}" refused`);
  }
});

t.test('the CLI refuses a command on Node 20 before doing anything, and runs it on this runtime', async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const written: string[] = [];
  const output = { stdout: (text: string) => written.push(`out:${text}`), stderr: (text: string) => written.push(`err:${text}`) };
  const restore = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => {
    written.push(`stdout:${chunk.toString()}`);
    return true;
  }) as typeof process.stdout.write;
  let onNode20: number;
  let onThisNode: number;
  let writtenOnNode20: string[];
  try {
    onNode20 = await main(['validate', cell.cellDir], output, '20.20.2');
    writtenOnNode20 = written.splice(0);
    onThisNode = await main(['validate', cell.cellDir], output);
  } finally {
    process.stdout.write = restore;
  }
  t.equal(onNode20, 1, 'exit 1 on Node 20');
  t.same(writtenOnNode20, [`err:interlock: refusing to start: ${nodeVersionProblem('20.20.2') ?? ''}\n`], 'one line on stderr, nothing else');
  t.equal(onThisNode, 0, `validate runs on Node ${process.versions.node}`);
  t.match(written.join(''), /^stdout:.*: ok\. cell demo-cell, /, 'and reports the cell');
});

t.test('the minimum is the one package.json declares in engines.node', async (t) => {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { engines?: { node?: string } };
  t.equal(manifest.engines?.node, `>=${MINIMUM_NODE_MAJOR}`);
});
