// The component's native code for aarch64, built on this x86-64 machine and run under qemu-user: better-sqlite3
// compiled from source with Debian's cross toolchain and aws-crt's shipped arm64 binary, loaded by the official arm64
// Node 22 (and 24) runtime from a laid-out node_modules; the x64 build against Node 22 loads under x64 Node 22. Also
// that a missing cross toolchain or a wrong-architecture binary fails with a message that says what to do.
// Needs the Debian packages g++-aarch64-linux-gnu and qemu-user-static, and the npm registry (source, runtimes).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import t from 'tap';
import { addonAbi, assertBuiltFor, buildBetterSqlite3, fetchBetterSqlite3Source, lockCacheKey, NativeBuildError, parseElfMachine, readNodeRuntimeHeaders, type NodeArch } from '../../scripts/native-addons.js';
import { binfmtAarch64, writeArm64NodeWrapper } from '../helpers/arm64.js';
import { waitFor } from '../helpers/wait-for.js';

// Two compiles of about 100 s each on an idle 2-core machine, far slower when it is shared: beyond the per-file limit.
t.setTimeout(1_800_000);

const here = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(here, '../..');
const BETTER_SQLITE3 = '13.2.0';
// Kept between runs (gitignored): a build is keyed by better-sqlite3 version, architecture and ABI.
const CACHE = join(REPO_ROOT, '.cache', 'native-addons');
const PROBE = join(here, 'fixtures', 'native-probe.cjs');

function nodeRuntime(arch: NodeArch, major: 22 | 24): string {
  return execFileSync('bash', [join(REPO_ROOT, 'scripts', 'node-runtime.sh'), arch, String(major)], { encoding: 'utf8' }).trim();
}

function elapsedMs<T>(run: () => T): { value: T; ms: number } {
  const start = process.hrtime.bigint();
  const value = run();
  return { value, ms: Number(process.hrtime.bigint() - start) / 1e6 };
}

/** The folder of an installed package as Node would find it from `fromDir` (walking up node_modules folders). */
function packageDir(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === REPO_ROOT || dir === dirname(dir)) throw new Error(`${name} is not installed (looked up from ${fromDir})`);
  }
}

/**
 * A node_modules for one architecture: better-sqlite3's JavaScript with `addon` as build/Release/better_sqlite3.node
 * (no prebuilt binaries, so only the addon built here can load), and aws-iot-device-sdk-v2 with its dependency tree
 * copied from the project's node_modules, aws-crt keeping only this architecture's glibc binary.
 */
function layOutNodeModules(dir: string, arch: NodeArch, sourceDir: string, addon: string): void {
  const bs3 = join(dir, 'node_modules', 'better-sqlite3');
  mkdirSync(join(bs3, 'build', 'Release'), { recursive: true });
  cpSync(join(sourceDir, 'lib'), join(bs3, 'lib'), { recursive: true });
  cpSync(join(sourceDir, 'package.json'), join(bs3, 'package.json'));
  cpSync(addon, join(bs3, 'build', 'Release', 'better_sqlite3.node'));

  const keep = `linux-${arch}-glibc`;
  const copied = new Set<string>();
  const copyTree = (name: string, fromDir: string): void => {
    const source = packageDir(name, fromDir);
    if (copied.has(source)) return;
    copied.add(source);
    const target = join(dir, relative(REPO_ROOT, source));
    cpSync(source, target, {
      recursive: true,
      filter: (path) => !(basename(dirname(path)) === 'bin' && basename(dirname(dirname(path))) === 'dist' && name === 'aws-crt' && basename(path) !== keep),
    });
    const pkg = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dependency of Object.keys(pkg.dependencies ?? {})) copyTree(dependency, source);
  };
  copyTree('aws-iot-device-sdk-v2', REPO_ROOT);
  cpSync(PROBE, join(dir, 'native-probe.cjs'));
}

interface ProbeResult {
  readonly arch: string;
  readonly node: string;
  readonly modules: string;
  readonly journalMode: string;
  readonly row: { readonly id: number; readonly arch: string; readonly node: string };
  readonly sqliteVersion: string;
  readonly sha256?: string;
  readonly frame?: { readonly preludeCrcOk: boolean; readonly messageCrcOk: boolean; readonly carriesVersion: boolean; readonly carriesToken: boolean };
  readonly connect?: string;
  readonly nativeModules: readonly string[];
}

/** Runs the probe the way a Greengrass lifecycle script does: `sh -c 'exec node ...'` with `node` found on PATH. */
function runProbe(cwd: string, env: NodeJS.ProcessEnv, args: readonly string[]): ProbeResult {
  const run = spawnSync('sh', ['-c', 'exec node native-probe.cjs "$@"', 'sh', ...args], { cwd, env: { ...env, SVCUID: 'probe-svcuid-token' }, encoding: 'utf8', timeout: 300_000 });
  if (run.status !== 0) throw new Error(`probe exited ${String(run.status ?? run.signal)}: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as ProbeResult;
}

const work = mkdtempSync(join(tmpdir(), 'native-addons-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const sourceDir = fetchBetterSqlite3Source(BETTER_SQLITE3, CACHE);
const arm64Node22 = nodeRuntime('arm64', 22);
const x64Node22 = nodeRuntime('x64', 22);
t.comment(`binfmt_misc for aarch64 on this machine: ${binfmtAarch64()} (the tests use an explicit qemu wrapper either way)`);

const logs: string[] = [];
const arm64 = elapsedMs(() => buildBetterSqlite3({ sourceDir, arch: 'arm64', nodeDir: arm64Node22, cacheDir: CACHE, log: (line) => logs.push(line) }));
t.comment(`arm64 build: ${(arm64.ms / 1000).toFixed(1)} s (${logs.at(-1) ?? ''}), ${statSync(arm64.value).size} bytes`);
const arm64Dir = join(work, 'arm64');
layOutNodeModules(arm64Dir, 'arm64', sourceDir, arm64.value);

t.test('the arm64 build is an AArch64 ELF file, and a second call returns the cached file without rebuilding', async (t) => {
  t.equal(parseElfMachine(readFileSync(arm64.value).subarray(0, 20)), 'arm64', 'ELF machine AArch64');
  t.match(basename(arm64.value), /^better-sqlite3-13\.2\.0-linux-arm64-napi10\.node$/, 'keyed by version, architecture and Node-API version');
  const before = statSync(arm64.value);
  const again = elapsedMs(() => buildBetterSqlite3({ sourceDir, arch: 'arm64', nodeDir: arm64Node22, cacheDir: CACHE, log: (line) => logs.push(line) }));
  t.comment(`arm64 build, cached: ${again.ms.toFixed(1)} ms`);
  t.equal(again.value, arm64.value, 'the same cached path');
  t.match(logs.at(-1), /^cached: /, 'reported as a cache hit');
  t.equal(statSync(again.value).mtimeMs, before.mtimeMs, 'the cached file was not rewritten');
});

t.test('under qemu, arm64 Node 22 runs a lifecycle-style `exec node` with a WAL SQLite file and aws-crt', async (t) => {
  const dir = arm64Dir;
  const wrapper = writeArm64NodeWrapper({ runtimeDir: arm64Node22, binDir: join(work, 'arm64-node22-bin') });
  const dbFile = join(dir, 'audit.db');
  const socket = join(dir, 'nucleus.sock');
  const probe = elapsedMs(() => runProbe(dir, wrapper.env(), [dbFile, socket]));
  t.comment(`arm64 probe under qemu (start, SQLite, aws-crt, IPC connect): ${probe.ms.toFixed(0)} ms`);
  const result = probe.value;
  t.equal(result.arch, 'arm64', 'process.arch under qemu');
  t.equal(result.modules, '127', 'Node 22 ABI');
  t.equal(result.journalMode, 'wal', 'WAL journal');
  t.same(result.row, { id: 1, arch: 'arm64', node: result.node }, 'the row written reads back');
  t.ok(existsSync(dbFile), 'a real database file on disk');
  t.ok(result.nativeModules.includes(join(dir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')), 'the addon built here was loaded');
  t.ok(result.nativeModules.includes(join(dir, 'node_modules', 'aws-crt', 'dist', 'bin', 'linux-arm64-glibc', 'aws-crt-nodejs.node')), "aws-crt's arm64 glibc binary was loaded");
  t.equal(result.sha256, createHash('sha256').update('interlock').digest('hex'), "aws-crt's native SHA-256 agrees with this machine's");
  t.match(result.frame, { preludeCrcOk: true, messageCrcOk: true, carriesVersion: true, carriesToken: true }, 'the IPC client sent a well-formed connect frame with the SVCUID');
  t.match(result.connect, /^refused: /, 'the stand-in nucleus hung up, and the client saw it');
  // The file written on arm64 reads back here with the project's own (x64) better-sqlite3.
  const db = new Database(dbFile, { readonly: true });
  t.teardown(() => db.close());
  t.same(db.prepare('SELECT id, arch, node FROM probe').all(), [result.row], 'the arm64-written row, read on x64');
});

t.test('the arm64 build against Node 22 headers also loads under arm64 Node 24 (Node-API, not one ABI)', async (t) => {
  const dir = arm64Dir;
  const wrapper = writeArm64NodeWrapper({ runtimeDir: nodeRuntime('arm64', 24), binDir: join(work, 'arm64-node24-bin') });
  const result = runProbe(dir, wrapper.env(), [join(work, 'node24.db')]);
  t.equal(result.arch, 'arm64', 'process.arch under qemu');
  t.equal(result.modules, '137', 'Node 24 ABI');
  t.equal(result.journalMode, 'wal', 'WAL journal');
  t.equal(result.row.arch, 'arm64', 'the row written reads back');
});

t.test('the x64 build against Node 22 (not this machine’s Node) loads under the x64 Node 22 runtime', async (t) => {
  const x64 = elapsedMs(() => buildBetterSqlite3({ sourceDir, arch: 'x64', nodeDir: x64Node22, cacheDir: CACHE, log: (line) => logs.push(line) }));
  t.comment(`x64 build: ${(x64.ms / 1000).toFixed(1)} s (${logs.at(-1) ?? ''}), ${statSync(x64.value).size} bytes`);
  t.equal(parseElfMachine(readFileSync(x64.value).subarray(0, 20)), 'x64', 'ELF machine x86-64');
  const dir = join(work, 'x64');
  layOutNodeModules(dir, 'x64', sourceDir, x64.value);
  const bin = join(work, 'x64-node22-bin');
  mkdirSync(bin);
  symlinkSync(join(x64Node22, 'bin', 'node'), join(bin, 'node'));
  const result = runProbe(dir, { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` }, [join(dir, 'audit.db'), join(dir, 'nucleus.sock')]);
  t.equal(result.arch, 'x64', 'process.arch');
  t.equal(result.modules, '127', 'Node 22 ABI, not the host’s Node 20');
  t.equal(result.journalMode, 'wal', 'WAL journal');
  t.equal(result.row.arch, 'x64', 'the row written reads back');
  t.ok(result.nativeModules.includes(join(dir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')), 'the addon built here was loaded');
  t.match(result.connect, /^refused: /, 'aws-crt x64 ran the IPC connect');
});

t.test('asking for arm64 without the cross toolchain names what is missing and the Debian package', async (t) => {
  // A PATH with this machine's own build tools but no aarch64 ones, as on a machine without g++-aarch64-linux-gnu.
  const bin = join(work, 'no-cross-bin');
  mkdirSync(bin);
  for (const tool of ['make', 'python3', 'gcc', 'g++', 'ar']) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    t.not(found, '', `${tool} is on this machine`);
    symlinkSync(found, join(bin, tool));
  }
  const cacheDir = join(work, 'empty-cache');
  t.throws(
    () => buildBetterSqlite3({ sourceDir, arch: 'arm64', nodeDir: arm64Node22, cacheDir, searchPath: bin }),
    { name: 'NativeBuildError', message: /missing aarch64-linux-gnu-gcc \(apt-get install g\+\+-aarch64-linux-gnu\), aarch64-linux-gnu-g\+\+ .*aarch64-linux-gnu-ar/ },
  );
  t.notOk(existsSync(cacheDir), 'nothing was built or cached');
  t.throws(() => buildBetterSqlite3({ sourceDir, arch: 'arm64', nodeDir: arm64Node22, cacheDir, crossPrefix: 'riscv-nonesuch-' }), {
    message: /missing riscv-nonesuch-gcc/,
  });
});

t.test('a wrong-architecture binary is refused with a clear message', async (t) => {
  const x64 = buildBetterSqlite3({ sourceDir, arch: 'x64', nodeDir: x64Node22, cacheDir: CACHE });
  t.throws(() => assertBuiltFor(x64, 'arm64'), { name: 'NativeBuildError', message: /is built for x86-64 \(x64\), not AArch64 \(arm64\): refusing a native addon for the wrong architecture/ });
  t.throws(() => assertBuiltFor(arm64.value, 'x64'), { message: /is built for AArch64 \(arm64\), not x86-64 \(x64\)/ });
  const notElf = join(work, 'not-elf.node');
  writeFileSync(notElf, '#!/bin/sh\necho this is no shared object\n');
  t.throws(() => assertBuiltFor(notElf, 'arm64'), { message: /not an ELF file, not AArch64/ });
  // An x64 file planted under the arm64 cache key (a mix-up, a bad copy) is never handed out as arm64.
  const cacheDir = join(work, 'poisoned-cache');
  mkdirSync(cacheDir);
  cpSync(x64, join(cacheDir, basename(arm64.value)));
  t.throws(() => buildBetterSqlite3({ sourceDir, arch: 'arm64', nodeDir: arm64Node22, cacheDir }), NativeBuildError);
});

t.test('the ABI a build is keyed by: Node-API for better-sqlite3 13, NODE_MODULE_VERSION for a classic addon', async (t) => {
  const node22 = readNodeRuntimeHeaders(x64Node22);
  t.match(node22, { moduleVersion: 127, napiMax: 10 }, 'Node 22: ABI 127, Node-API up to 10');
  t.match(readNodeRuntimeHeaders(nodeRuntime('x64', 24)), { moduleVersion: 137 }, 'Node 24: ABI 137');
  t.same(addonAbi(readFileSync(join(sourceDir, 'binding.gyp'), 'utf8'), node22), { kind: 'node-api', napiVersion: 10 }, 'better-sqlite3 13 is a Node-API addon');
  // A classic V8 addon (better-sqlite3 12 was one: no NAPI_VERSION in its binding.gyp) is tied to one Node ABI.
  const classic = "{ 'targets': [{ 'target_name': 'better_sqlite3', 'sources': ['src/better_sqlite3.cpp'] }] }";
  t.same(addonAbi(classic, node22), { kind: 'node-abi', moduleVersion: 127 }, 'a classic addon is tied to one ABI');
});

t.test('a runtime without the Node-API version the addon needs is refused before compiling', async (t) => {
  // Node 20's headers as far as this check reads them: Node-API up to 9; better-sqlite3 13 declares NAPI_VERSION=10.
  const nodeDir = join(work, 'node20-headers');
  mkdirSync(join(nodeDir, 'include', 'node'), { recursive: true });
  writeFileSync(join(nodeDir, 'include', 'node', 'common.gypi'), '{}\n');
  writeFileSync(
    join(nodeDir, 'include', 'node', 'node_version.h'),
    '#define NODE_MAJOR_VERSION 20\n#define NODE_MINOR_VERSION 20\n#define NODE_PATCH_VERSION 2\n#define NODE_MODULE_VERSION 115\n#define NODE_API_SUPPORTED_VERSION_MAX 9\n',
  );
  t.throws(() => buildBetterSqlite3({ sourceDir, arch: 'x64', nodeDir, cacheDir: join(work, 'node20-cache') }), {
    message: /better-sqlite3 13\.2\.0 needs Node-API 10; Node 20\.20\.2 in .* provides up to 9/,
  });
  t.throws(() => buildBetterSqlite3({ sourceDir, arch: 'x64', nodeDir: work, cacheDir: join(work, 'node20-cache') }), {
    message: /not a Node runtime with headers .* scripts\/node-runtime\.sh/,
  });
});

t.test('one build per cache key at a time: a second process waits for the lock, and a dead holder\'s lock is taken over', async (t) => {
  const lockDir = mkdtempSync(join(tmpdir(), 'addon-lock-'));
  t.teardown(() => rmSync(lockDir, { recursive: true, force: true }));
  const lock = join(lockDir, 'key.node.lock');
  const release = lockCacheKey(lock);
  t.ok(existsSync(join(lock, 'pid')), 'held, with the holder named');
  // Another process asks for the same lock. It says so, then reports whether the marker this process writes just
  // before releasing was there when it got the lock: only after the release can it have been.
  const marker = join(lockDir, 'released');
  const script = `import { existsSync } from 'node:fs'; import { lockCacheKey } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'scripts', 'native-addons.ts')).href)};
process.stdout.write('trying;'); const r = lockCacheKey(${JSON.stringify(lock)}); process.stdout.write(existsSync(${JSON.stringify(marker)}) ? 'after-release' : 'while-held'); r();`;
  const loader = process.execArgv.filter((arg) => arg.includes('@tapjs/typescript'));
  t.ok(loader.length > 0, 'the TypeScript loader this test runs under, for the child');
  const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => out.includes('trying;') || child.exitCode !== null, 'the second process to ask for the lock', 60_000);
  writeFileSync(marker, '');
  release();
  t.equal(await exited, 0);
  t.equal(out, 'trying;after-release', 'the second process got the lock only once it was released');
  // A lock left by a process that died (a killed build) does not block for ever.
  mkdirSync(lock);
  writeFileSync(join(lock, 'pid'), '999999999');
  const again = lockCacheKey(lock);
  t.equal(readFileSync(join(lock, 'pid'), 'utf8'), String(process.pid), "the dead holder's lock was taken over");
  again();
  t.notOk(existsSync(lock), 'released');
});
