// Compiles better-sqlite3's native addon from source for x64 or arm64 (cross-compiled with Debian's aarch64 GNU
// toolchain) against the headers of the Node runtime the device runs, and caches it. It never returns a binary whose
// ELF header names another machine than the one asked for.

import { spawnSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch as hostArch, availableParallelism } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';

export type NodeArch = 'x64' | 'arm64';

/** What an addon must be built against: one NODE_MODULE_VERSION (classic V8 addons) or at least one Node-API version. */
export type AddonAbi = { readonly kind: 'node-api'; readonly napiVersion: number } | { readonly kind: 'node-abi'; readonly moduleVersion: number };

export interface NodeRuntimeHeaders {
  /** e.g. 22.23.5 */
  readonly version: string;
  /** NODE_MODULE_VERSION: 127 for Node 22, 137 for Node 24. */
  readonly moduleVersion: number;
  /** The highest Node-API version the runtime provides. */
  readonly napiMax: number;
}

export interface BuildBetterSqlite3Options {
  /** An unpacked better-sqlite3 package with its dependencies (node-addon-api) installed: see fetchBetterSqlite3Source. */
  readonly sourceDir: string;
  readonly arch: NodeArch;
  /** The target Node runtime's folder (bin/node, include/node): scripts/node-runtime.sh prints it. */
  readonly nodeDir: string;
  /** Built addons are kept here, one file per better-sqlite3 version, architecture and ABI. */
  readonly cacheDir: string;
  /** Where compilers, make and python3 are looked up; this process's PATH unless given. */
  readonly searchPath?: string;
  /** Prefix of the cross tools when the target is not this machine's architecture (default: Debian's triplet). */
  readonly crossPrefix?: string;
  readonly jobs?: number;
  readonly log?: (line: string) => void;
}

/** Broken or missing build infrastructure: the message says what is missing and how to get it. */
export class NativeBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NativeBuildError';
  }
}

const ELF_MACHINES: Readonly<Record<number, NodeArch>> = { 62: 'x64', 183: 'arm64' };
const ELF_NAMES: Readonly<Record<NodeArch, string>> = { x64: 'x86-64', arm64: 'AArch64' };
const CROSS: Readonly<Record<NodeArch, { prefix: string; apt: string }>> = {
  x64: { prefix: 'x86_64-linux-gnu-', apt: 'g++-x86-64-linux-gnu' },
  arm64: { prefix: 'aarch64-linux-gnu-', apt: 'g++-aarch64-linux-gnu' },
};

/** The machine an ELF file is built for, from its header (what `readelf -h` calls Machine). */
export function parseElfMachine(header: Buffer): NodeArch | { readonly unknown: string } {
  if (header.length < 20 || header.readUInt32BE(0) !== 0x7f454c46) return { unknown: 'not an ELF file' };
  if (header[4] !== 2 || header[5] !== 1) return { unknown: 'not a 64-bit little-endian ELF file' };
  const machine = header.readUInt16LE(18);
  return ELF_MACHINES[machine] ?? { unknown: `ELF machine ${machine}` };
}

/** Throws unless `file` is an ELF shared object for `arch`: a binary for another machine must never be shipped as this one. */
export function assertBuiltFor(file: string, arch: NodeArch): void {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  const found = parseElfMachine(header);
  if (found === arch) return;
  const what = typeof found === 'string' ? `${ELF_NAMES[found]} (${found})` : found.unknown;
  throw new NativeBuildError(`${file} is built for ${what}, not ${ELF_NAMES[arch]} (${arch}): refusing a native addon for the wrong architecture`);
}

/** NODE_MODULE_VERSION, the Node-API range and the version, from a runtime's include/node/node_version.h. */
export function parseNodeVersionHeader(text: string): NodeRuntimeHeaders {
  const define = (name: string): number => {
    const match = new RegExp(`^#define ${name} (\\d+)\\s*$`, 'm').exec(text);
    if (match?.[1] === undefined) throw new NativeBuildError(`node_version.h has no numeric #define ${name}`);
    return Number(match[1]);
  };
  return {
    version: `${define('NODE_MAJOR_VERSION')}.${define('NODE_MINOR_VERSION')}.${define('NODE_PATCH_VERSION')}`,
    moduleVersion: define('NODE_MODULE_VERSION'),
    napiMax: define('NODE_API_SUPPORTED_VERSION_MAX'),
  };
}

export function readNodeRuntimeHeaders(nodeDir: string): NodeRuntimeHeaders {
  const file = join(nodeDir, 'include', 'node', 'node_version.h');
  if (!existsSync(file) || !existsSync(join(nodeDir, 'include', 'node', 'common.gypi'))) {
    throw new NativeBuildError(`${nodeDir} is not a Node runtime with headers (no include/node/node_version.h or common.gypi): get one with scripts/node-runtime.sh <x64|arm64> <22|24>`);
  }
  return parseNodeVersionHeader(readFileSync(file, 'utf8'));
}

/** Node-API addons (NAPI_VERSION defined in binding.gyp) run on every runtime that has that version; others on one ABI only. */
export function addonAbi(bindingGyp: string, runtime: NodeRuntimeHeaders): AddonAbi {
  const napi = /NAPI_VERSION=(\d+)/.exec(bindingGyp);
  if (napi?.[1] !== undefined) return { kind: 'node-api', napiVersion: Number(napi[1]) };
  return { kind: 'node-abi', moduleVersion: runtime.moduleVersion };
}

function abiKey(abi: AddonAbi): string {
  return abi.kind === 'node-api' ? `napi${abi.napiVersion}` : `abi${abi.moduleVersion}`;
}

function findOnPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** node-gyp as bundled with npm (npm's own install folder, then `npm prefix -g`): nothing new to depend on. */
export function findNodeGyp(): string {
  const tail = join('node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const candidates: string[] = [];
  const npmExec = process.env['npm_execpath'];
  if (npmExec !== undefined && basename(npmExec) === 'npm-cli.js') candidates.push(resolve(dirname(npmExec), '..', tail));
  candidates.push(resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', tail));
  for (const candidate of candidates) if (existsSync(candidate)) return candidate;
  const prefix = spawnSync('npm', ['prefix', '-g'], { encoding: 'utf8' });
  if (prefix.status === 0) {
    const candidate = join(prefix.stdout.trim(), 'lib', 'node_modules', 'npm', tail);
    if (existsSync(candidate)) return candidate;
    candidates.push(candidate);
  }
  throw new NativeBuildError(`node-gyp not found (it comes with npm; looked in ${candidates.join(', ')}): install npm (apt-get install npm) or run npm install -g node-gyp`);
}

/**
 * Fetches a better-sqlite3 release's package from the npm registry (npm checks its integrity) into cacheDir and
 * installs its production dependencies without running any install script. Returns the package folder.
 */
export function fetchBetterSqlite3Source(version: string, cacheDir: string): string {
  const dir = join(cacheDir, 'src', `better-sqlite3-${version}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  mkdirSync(join(cacheDir, 'src'), { recursive: true });
  const work = mkdtempSync(join(cacheDir, 'src', 'fetch-'));
  try {
    const pack = spawnSync('npm', ['pack', '--silent', `better-sqlite3@${version}`], { cwd: work, encoding: 'utf8' });
    if (pack.status !== 0) throw new NativeBuildError(`npm pack better-sqlite3@${version} failed: ${pack.stderr.trim().split('\n').slice(-3).join(' ')}`);
    const tarball = pack.stdout.trim().split('\n').pop() ?? '';
    const untar = spawnSync('tar', ['-xzf', tarball], { cwd: work, encoding: 'utf8' });
    if (untar.status !== 0) throw new NativeBuildError(`could not unpack ${tarball}: ${untar.stderr.trim()} (apt-get install tar gzip)`);
    const pkg = join(work, 'package');
    const install = spawnSync('npm', ['install', '--omit=dev', '--ignore-scripts', '--no-package-lock', '--no-audit', '--no-fund'], { cwd: pkg, encoding: 'utf8' });
    if (install.status !== 0) throw new NativeBuildError(`installing better-sqlite3@${version}'s dependencies failed: ${install.stderr.trim().split('\n').slice(-3).join(' ')}`);
    writeFileSync(join(pkg, '.complete'), `${version}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(pkg, dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return dir;
}

interface Toolchain {
  readonly env: Readonly<Record<string, string>>;
}

/** The compilers for `arch`, or an error naming the Debian package that has them. */
function findToolchain(arch: NodeArch, searchPath: string, crossPrefix: string | undefined): Toolchain {
  const missing: string[] = [];
  if (findOnPath('make', searchPath) === undefined) missing.push('make (apt-get install make)');
  if (findOnPath('python3', searchPath) === undefined) missing.push('python3 (apt-get install python3), which node-gyp runs');
  const native = arch === hostArch();
  const prefix = native ? '' : (crossPrefix ?? CROSS[arch].prefix);
  const tools = { CC: `${prefix}gcc`, CXX: `${prefix}g++`, AR: `${prefix}ar` };
  const found: Record<string, string> = {};
  for (const [variable, name] of Object.entries(tools)) {
    const path = findOnPath(name, searchPath);
    if (path === undefined) {
      const how = native ? 'apt-get install g++ (build-essential)' : `apt-get install ${CROSS[arch].apt}`;
      missing.push(`${name} (${how})`);
    } else {
      found[variable] = path;
    }
  }
  if (missing.length > 0) {
    const target = native ? `${arch}` : `${arch} on this ${hostArch()} machine (cross-compiling)`;
    throw new NativeBuildError(`cannot build better-sqlite3 for ${target}: missing ${missing.join(', ')}`);
  }
  const cc = found['CC'] ?? '';
  const cxx = found['CXX'] ?? '';
  const ar = found['AR'] ?? '';
  // gyp's make generator takes the target toolset from CC/CXX/LINK/AR and the host one from the *_host variables.
  return { env: { CC: cc, CXX: cxx, LINK: cxx, AR: ar, CC_host: 'gcc', CXX_host: 'g++', LINK_host: 'g++', AR_host: 'ar' } };
}

/** The environment node-gyp runs in: npm's npm_config_* variables would become gyp variables (arch, nodedir, target). */
function buildEnv(searchPath: string, toolchain: Toolchain): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(config|package)_/i.test(key) || ['CC', 'CXX', 'LINK', 'AR', 'CFLAGS', 'CXXFLAGS', 'LDFLAGS'].includes(key)) continue;
    env[key] = value;
  }
  // binding.gyp runs `node` for helper scripts at configure and build time: this machine's node, whatever the target.
  env['PATH'] = [dirname(process.execPath), searchPath].join(delimiter);
  return { ...env, ...toolchain.env };
}

/**
 * Compiles better-sqlite3's addon for `arch` against the runtime in nodeDir, or returns the cached build. Returns the
 * path of better_sqlite3.node, checked to be an ELF file for `arch`. Throws NativeBuildError when a tool, the source
 * or the runtime is missing, when the runtime lacks the Node-API version the addon needs, or when a binary for another
 * architecture turns up.
 */
export function buildBetterSqlite3(options: BuildBetterSqlite3Options): string {
  const log = options.log ?? ((): void => undefined);
  if (options.arch !== 'x64' && options.arch !== 'arm64') throw new NativeBuildError(`arch must be x64 or arm64, not ${String(options.arch)}`);
  const packageJson = join(options.sourceDir, 'package.json');
  const bindingGyp = join(options.sourceDir, 'binding.gyp');
  if (!existsSync(packageJson) || !existsSync(bindingGyp)) {
    throw new NativeBuildError(`${options.sourceDir} is not better-sqlite3's source (no package.json or binding.gyp): unpack it with npm pack better-sqlite3@<version>, or use fetchBetterSqlite3Source`);
  }
  const pkg = JSON.parse(readFileSync(packageJson, 'utf8')) as { name?: string; version?: string; dependencies?: Record<string, string> };
  if (pkg.name !== 'better-sqlite3' || pkg.version === undefined) throw new NativeBuildError(`${options.sourceDir} holds ${pkg.name ?? 'an unnamed package'}, not better-sqlite3`);
  const runtime = readNodeRuntimeHeaders(options.nodeDir);
  const abi = addonAbi(readFileSync(bindingGyp, 'utf8'), runtime);
  if (abi.kind === 'node-api' && runtime.napiMax < abi.napiVersion) {
    throw new NativeBuildError(`better-sqlite3 ${pkg.version} needs Node-API ${abi.napiVersion}; Node ${runtime.version} in ${options.nodeDir} provides up to ${runtime.napiMax}: use a newer runtime`);
  }

  const cached = join(options.cacheDir, `better-sqlite3-${pkg.version}-linux-${options.arch}-${abiKey(abi)}.node`);
  if (existsSync(cached)) {
    assertBuiltFor(cached, options.arch);
    log(`cached: ${cached}`);
    return cached;
  }

  const searchPath = options.searchPath ?? process.env['PATH'] ?? '';
  const toolchain = findToolchain(options.arch, searchPath, options.crossPrefix);
  if (pkg.dependencies?.['node-addon-api'] !== undefined) {
    try {
      createRequire(packageJson).resolve('node-addon-api');
    } catch {
      throw new NativeBuildError(`node-addon-api is not installed in ${options.sourceDir}: run npm install --omit=dev --ignore-scripts there (fetchBetterSqlite3Source does)`);
    }
  }
  const nodeGyp = findNodeGyp();

  mkdirSync(options.cacheDir, { recursive: true });
  // One build per cache key at a time, across processes (test files run in parallel): whoever holds the lock builds,
  // the others wait for its result instead of compiling the same thing beside it.
  const release = lockCacheKey(`${cached}.lock`);
  try {
    if (existsSync(cached)) {
      assertBuiltFor(cached, options.arch);
      log(`cached (built meanwhile by another process): ${cached}`);
      return cached;
    }
    return compile(options, { cached, nodeGyp, toolchain, abi, runtime, version: pkg.version, searchPath, log });
  } finally {
    release();
  }
}

/** Takes a lock folder (mkdir is atomic); waits while a live process holds it, takes over one whose holder died. */
export function lockCacheKey(lock: string): () => void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      return () => rmSync(lock, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder = Number.NaN;
    try {
      holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
    } catch {
      // the holder has not written its pid yet, or just released the lock
    }
    if (Number.isInteger(holder) && holder > 0 && !alive(holder)) rmSync(lock, { recursive: true, force: true });
    else Atomics.wait(pause, 0, 0, 200);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface CompileJob {
  readonly cached: string;
  readonly nodeGyp: string;
  readonly toolchain: ReturnType<typeof findToolchain>;
  readonly abi: AddonAbi;
  readonly runtime: NodeRuntimeHeaders;
  readonly version: string;
  readonly searchPath: string;
  readonly log: (line: string) => void;
}

function compile(options: BuildBetterSqlite3Options, job: CompileJob): string {
  const { cached, nodeGyp, toolchain, abi, runtime, searchPath, log } = job;
  const pkg = { version: job.version };
  const work = mkdtempSync(join(options.cacheDir, `work-${options.arch}-`));
  const logFile = join(options.cacheDir, `build-${pkg.version}-${options.arch}-${abiKey(abi)}.log`);
  try {
    // A private copy: builds for two architectures never share a build/ folder, and the upstream prebuilt binaries
    // stay out, so what is returned is what was compiled here.
    cpSync(options.sourceDir, work, { recursive: true, filter: (source) => dirname(resolve(source)) !== resolve(options.sourceDir) || !['build', 'prebuilds'].includes(basename(source)) });
    const jobs = options.jobs ?? availableParallelism();
    const args = [nodeGyp, 'rebuild', '--release', `--nodedir=${options.nodeDir}`, `--arch=${options.arch}`, '--force_build=1', `--jobs=${jobs}`];
    log(`building better-sqlite3 ${pkg.version} for ${options.arch} against Node ${runtime.version} (${abiKey(abi)}) with ${toolchain.env['CXX']}`);
    const result = spawnSync(process.execPath, args, { cwd: work, env: buildEnv(searchPath, toolchain), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    writeFileSync(logFile, `${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
    if (result.status !== 0) {
      const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-15).join('\n');
      throw new NativeBuildError(`node-gyp failed to build better-sqlite3 ${pkg.version} for ${options.arch} (exit ${String(result.status ?? result.signal)}; full log ${logFile}):\n${tail}`);
    }
    const built = join(work, 'build', 'Release', 'better_sqlite3.node');
    if (!existsSync(built)) throw new NativeBuildError(`node-gyp succeeded but left no build/Release/better_sqlite3.node (log ${logFile})`);
    assertBuiltFor(built, options.arch);
    const partial = `${cached}.${process.pid}.partial`;
    copyFileSync(built, partial);
    renameSync(partial, cached);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  log(`built: ${cached}`);
  return cached;
}
