// npm run package end to end: the project is compiled, packaged, the artifact unzipped into a temporary folder as
// the nucleus would (decompressedPath), and the recipe's own Startup command started from there, against the test
// nucleus, with the environment the nucleus sets. It must reach RUNNING, decide a command, and stop on SIGTERM.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { PackageError, packageComponent } from '../../scripts/package.js';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { IpcTransport } from '../../src/transport/greengrass-ipc.js';
import { topicSet } from '../../src/transport/topics.js';
import { TestNucleus } from '../helpers/greengrass-nucleus.js';
import { COMPONENT_NAME, loadRecipe } from '../helpers/recipe.js';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'interlock-package-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const host = arch() === 'arm64' ? 'aarch64' : 'amd64';
const URI = 's3://example-artifacts/com.example.PhysicalAiInterlock/0.1.0/interlock.zip';

// Compile into a private folder, so the test never touches the repository's own dist/.
const buildDir = join(dir, 'build');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', buildDir], { stdio: 'pipe' });
const result = packageComponent({ arch: host, uri: URI, outDir: join(dir, 'out'), buildDir });
const unpacked = join(dir, 'artifacts-unarchived');
mkdirSync(unpacked);
execFileSync('unzip', ['-q', result.zipPath, '-d', unpacked]);
const top = join(unpacked, 'interlock');

/** The recipe's Startup command for the first manifest, pointed at the unpacked artifact, as the nucleus runs it. */
function startupScript(recipe: ReturnType<typeof loadRecipe>): string {
  const manifests = recipe.raw['Manifests'] as { Lifecycle: { Startup: { Script: string } } }[];
  return manifests[0]?.Lifecycle.Startup.Script.replaceAll('{artifacts:decompressedPath}', unpacked) ?? '';
}

t.test('the artifact holds the compiled code, production dependencies only, and no private key', async (t) => {
  t.ok(existsSync(join(top, 'dist', 'src', 'cli', 'main.js')), 'the CLI');
  t.ok(existsSync(join(top, 'safety-bounds', 'demo-cell', 'cell.yaml')), 'the example declarations');
  for (const dep of ['better-sqlite3', 'aws-iot-device-sdk-v2', 'aws-crt', '@cedar-policy/cedar-wasm', 'mqtt', 'ajv']) t.ok(existsSync(join(top, 'node_modules', dep)), `production dependency ${dep}`);
  for (const dev of ['tap', 'typescript', 'fast-check', '@types/better-sqlite3']) t.notOk(existsSync(join(top, 'node_modules', dev)), `no dev dependency ${dev}`);
  const crt = readdirSync(join(top, 'node_modules', 'aws-crt', 'dist', 'bin'));
  t.same(crt, [`linux-${arch()}-glibc`], "only this architecture's aws-crt build");
  const listing = execFileSync('zipinfo', ['-1', result.zipPath], { encoding: 'utf8' });
  t.notMatch(listing, /\.key\.pem/, 'no private key file');
  t.notMatch(listing, /^interlock\/safety-bounds\/.*\/keys\//m, "no cell's keys folder");
  t.notMatch(listing, /^interlock\/dist\/.*\.map$/m, 'no source maps of our own');
});

t.test('the recipe names this version and the artifact URI, and its Startup command points into the artifact', async (t) => {
  const recipe = parse(readFileSync(result.recipePath, 'utf8')) as { ComponentVersion: string; Manifests: { Platform: { architecture: string }; Lifecycle: { Startup: { Script: string } }; Artifacts: { URI: string; Unarchive: string }[] }[] };
  t.equal(recipe.ComponentVersion, result.version);
  t.same(recipe.Manifests.map((m) => m.Platform.architecture), ['amd64', 'aarch64']);
  for (const manifest of recipe.Manifests) {
    t.same(manifest.Artifacts, [{ URI, Unarchive: 'ZIP' }]);
    const script = manifest.Lifecycle.Startup.Script.replaceAll('{artifacts:decompressedPath}', unpacked);
    const main = script.split(' ').find((part) => part.endsWith('main.js'));
    t.ok(main !== undefined && existsSync(main), `the Startup script's main.js exists in the unpacked artifact: ${main}`);
  }
  t.notMatch(readFileSync(result.recipePath, 'utf8'), /\{COMPONENT_VERSION\}|\{ARTIFACT_URI\}/, 'no placeholder left');
});

t.test("gdk-config.json names the component and the version npm run package builds (the GDK's custom build reads greengrass-build/artifacts/<name>/<version>)", async (t) => {
  const gdk = JSON.parse(readFileSync(join(REPO_ROOT, 'greengrass', 'gdk-config.json'), 'utf8')) as { component: Record<string, { version: string; build: { build_system: string; custom_build_command: string[] } }> };
  t.same(Object.keys(gdk.component), [COMPONENT_NAME]);
  const component = gdk.component[COMPONENT_NAME];
  t.equal(component?.version, result.version, 'a fixed version equal to package.json (NEXT_PATCH would not match the artifact folder)');
  t.same(component?.build, { build_system: 'custom', custom_build_command: ['npm', 'run', 'package', '--', '--gdk'] });
});

t.test('bad package requests are refused with the reason', async (t) => {
  const other = host === 'amd64' ? 'aarch64' : 'amd64';
  t.throws(() => packageComponent({ arch: other, uri: URI, outDir: join(dir, 'x'), buildDir }), new RegExp(`better-sqlite3 is built for ${host}`));
  t.throws(() => packageComponent({ arch: 'armv7l' as never, uri: URI, outDir: join(dir, 'x'), buildDir }), /--arch must be amd64 or aarch64/);
  t.throws(() => packageComponent({ arch: host, uri: 'https://example.com/a.zip', outDir: join(dir, 'x'), buildDir }), /--uri must be an s3:\/\/bucket\/key\.zip/);
  t.throws(() => packageComponent({ arch: host, uri: URI, outDir: join(dir, 'x'), buildDir: join(dir, 'nothing') }), PackageError);
});

t.test('the unpacked artifact runs under the nucleus: RUNNING, a decision over IPC, a clean stop on SIGTERM', { timeout: 90_000 }, async (t) => {
  const cell = makeTestCell();
  t.teardown(() => cell.cleanup());
  const work = join(dir, 'work');
  mkdirSync(work);
  const recipe = loadRecipe({ decompressedPath: unpacked, workPath: work, thingName: 'test-thing' }, result.recipePath);
  const agentAccess = { 'aws.greengrass.ipc.pubsub': { a: { operations: ['*'], resources: ['interlock/conveyor-1/command', 'interlock/conveyor-1/decision'] } } };
  const nucleus = new TestNucleus(join(dir, 'nucleus.sock'), [
    // The cell of this test has agent keys; the shipped demo cell has none (its keys are made by npm start).
    { name: COMPONENT_NAME, accessControl: recipe.accessControl, configuration: { ...recipe.configuration, cellDirectory: cell.cellDir } },
    { name: 'agent', accessControl: agentAccess },
  ]);
  await nucleus.start();
  t.teardown(() => nucleus.stop());
  const script = startupScript(recipe);
  const stderr: string[] = [];
  // As the nucleus does: the script through a shell, with only the environment it sets (no repo, no NODE_PATH).
  const child = spawn('sh', ['-c', script], {
    cwd: work,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: work, ...nucleus.environment(COMPONENT_NAME) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  await waitFor(() => (nucleus.states.get(COMPONENT_NAME) ?? []).length > 0 || child.exitCode !== null, 'the component to report its state', 60_000);
  t.same(nucleus.states.get(COMPONENT_NAME), ['RUNNING'], `RUNNING; component log:\n${stderr.join('')}`);
  t.notMatch(stderr.join(''), new RegExp(nucleus.tokens.get(COMPONENT_NAME) as string), 'SVCUID is never logged');

  const agent = new IpcTransport({ socketPath: nucleus.socketPath, authToken: nucleus.tokens.get('agent') as string });
  await agent.start();
  t.teardown(() => agent.stop());
  const topics = topicSet();
  const decisions: { verdict: string; reasons: { code: string }[] }[] = [];
  await agent.subscribe(topics.decision('conveyor-1'), (_topic, payload) => decisions.push(JSON.parse(payload.toString()) as (typeof decisions)[number]));
  // No conveyor driver runs here: the interlock has no state for it, so a move is denied, naming why.
  await agent.publish(topics.command('conveyor-1'), cell.signer('planner-1').sign('conveyor-1', 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  await waitFor(() => decisions.length > 0, 'a decision from the packaged component', 20_000);
  t.equal(decisions[0]?.verdict, 'deny');
  t.ok(decisions[0]?.reasons.some((r) => r.code === 'BOUNDS_STATE_MISSING' || r.code.startsWith('BOUNDS_STATE')), JSON.stringify(decisions[0]?.reasons));

  child.kill('SIGTERM');
  const code = await exited;
  t.equal(code, 0, `a clean exit on SIGTERM; log:\n${stderr.join('').slice(-2000)}`);
  const audit = openSqliteAuditLog(join(work, 'state', 'audit.db'), { ballastBytes: 0 });
  t.teardown(() => audit.close());
  const events = audit.read(1, 1000).map((r) => r.detail?.['event']);
  t.equal(events.at(-1), 'interlock-stopped', 'the stop is the last record');
  t.match(audit.verify(), { ok: true });
});

t.test("the shipped demo cell has no agent keys: the component reports ERRORED and says which file is missing", { timeout: 60_000 }, async (t) => {
  const work = join(dir, 'work-demo');
  mkdirSync(work);
  const recipe = loadRecipe({ decompressedPath: unpacked, workPath: work, thingName: 'test-thing' }, result.recipePath);
  const nucleus = new TestNucleus(join(dir, 'nucleus-demo.sock'), [{ name: COMPONENT_NAME, accessControl: recipe.accessControl, configuration: recipe.configuration }]);
  await nucleus.start();
  t.teardown(() => nucleus.stop());
  const script = startupScript(recipe);
  let stderr = '';
  const child = spawn('sh', ['-c', script], { cwd: work, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...nucleus.environment(COMPONENT_NAME) }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 1, 'exits with 1');
  t.same(nucleus.states.get(COMPONENT_NAME), ['ERRORED']);
  t.match(stderr, /agents\.yaml.*keys\/planner-1-k1\.pub\.pem/, 'names the missing public key file');
});
