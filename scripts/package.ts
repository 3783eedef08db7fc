// `npm run package`: builds the Greengrass artifacts, one per architecture (the compiled code, the example
// declarations and the production dependencies, with better-sqlite3 compiled for that architecture and one Node
// major), and the deployable recipe naming each. The zip's entries sit at its root: the nucleus unpacks
// interlock-<arch>.zip into {artifacts:decompressedPath}/interlock-<arch>/. It never ships a private key, and never
// ships a native binary built for another architecture (every .node file's ELF machine is checked).

import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { addonAbi, buildBetterSqlite3, readNodeRuntimeHeaders } from './native-addons.js';
import { artifactFolder, makeRecipe, type Arch } from './package-recipe.js';
import { NATIVE_BUILD_FILE, type NativeBuild } from '../src/greengrass/start.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, here.split(/[\\/]/).includes('dist') ? '../..' : '..');
const COMPONENT = 'com.example.PhysicalAiInterlock';
/** The Greengrass architecture names and Node's. */
const ARCHES = { amd64: 'x64', aarch64: 'arm64' } as const;
/** ELF e_machine of each: a .node file for another machine would not load on the device. */
const ELF_MACHINE = { amd64: 0x3e, aarch64: 0xb7 } as const;
export const NODE_MAJORS = [22, 24] as const;
export type NodeMajor = (typeof NODE_MAJORS)[number];

export interface PackageOptions {
  readonly arches: readonly Arch[];
  /** Where the artifacts will be uploaded: s3://bucket/prefix; each is <prefix>/interlock-<arch>.zip. */
  readonly uriBase: string;
  readonly outDir: string;
  /** The compiled project (npm run build's output). */
  readonly buildDir: string;
  /** The Node major the native code is built for (and bundled, with bundleNode). */
  readonly nodeMajor: NodeMajor;
  /** Ship the official Node runtime in the artifact (runtime/bin/node, the default) instead of using the device's. */
  readonly bundleNode: boolean;
}

export interface ArtifactResult {
  readonly arch: Arch;
  readonly zipPath: string;
  readonly uri: string;
  readonly files: number;
  readonly bytes: number;
}

export interface PackageResult {
  readonly artifacts: readonly ArtifactResult[];
  readonly recipePath: string;
  readonly version: string;
}

export class PackageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PackageError';
  }
}

/** The component version: package.json's. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Every production dependency's folder, as npm resolves them (the dev tree is never shipped). */
function productionPackages(): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && resolve(line) !== ROOT);
}

function walkFiles(dir: string, visit: (path: string) => void): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walkFiles(path, visit);
    else visit(path);
  }
}

/** Refuses anything that looks like a private key (a demo key folder copied by mistake, a PEM pasted in). */
function assertNoPrivateKeys(dir: string): void {
  walkFiles(dir, (path) => {
    if (/\.key\.pem$/i.test(path)) throw new PackageError(`refusing to package a private key file: ${relative(dir, path)}`);
    if (statSync(path).size < 1_000_000 && readFileSync(path, 'latin1').includes('PRIVATE KEY-----')) {
      throw new PackageError(`refusing to package a file holding a private key: ${relative(dir, path)}`);
    }
  });
}

/** Every native addon (.node) in the staged artifact must be an ELF object for the artifact's architecture. */
export function assertNativeArch(dir: string, arch: Arch): number {
  let count = 0;
  walkFiles(dir, (path) => {
    if (!path.endsWith('.node')) return;
    const head = readFileSync(path).subarray(0, 20);
    const machine = head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46 ? head.readUInt16LE(18) : undefined;
    if (machine !== ELF_MACHINE[arch]) {
      throw new PackageError(`${relative(dir, path)} is not a native addon for ${arch} (ELF machine ${machine === undefined ? 'none' : `0x${machine.toString(16)}`}, expected 0x${ELF_MACHINE[arch].toString(16)}); it would not load on the device`);
    }
    count += 1;
  });
  return count;
}

/** The oldest Node major package.json's engines allow (">=22"). */
function minNodeMajor(): number {
  const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines?: { node?: string } }).engines?.node ?? '';
  const major = /^>=\s*(\d+)/.exec(engines)?.[1];
  if (major === undefined) throw new PackageError(`package.json engines.node must read ">=N", not "${engines}"`);
  return Number(major);
}

function nodeRuntime(arch: Arch, major: NodeMajor): string {
  try {
    return execFileSync('bash', [join(ROOT, 'scripts', 'node-runtime.sh'), ARCHES[arch], String(major)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new PackageError(`the Node ${major} runtime for ${arch} could not be fetched: ${stderr || (error as Error).message}`);
  }
}

function stageArtifact(options: PackageOptions, arch: Arch, top: string): void {
  for (const part of ['src', 'simulator']) cpSync(join(options.buildDir, part), join(top, 'dist', part), { recursive: true, filter: (src) => !src.endsWith('.map') });
  cpSync(join(ROOT, 'safety-bounds'), join(top, 'safety-bounds'), {
    recursive: true,
    // The demo's keys/ folders are created by npm start and git-ignored: never part of an artifact.
    filter: (src) => !src.split(/[\\/]/).includes('keys'),
  });
  writeFileSync(join(top, 'package.json'), readFileSync(join(ROOT, 'package.json')));
  for (const dir of productionPackages()) {
    const rel = relative(ROOT, dir);
    if (!rel.startsWith('node_modules')) throw new PackageError(`unexpected dependency location ${dir}`);
    // A package's nested node_modules are its own dependencies, production ones too; copying them twice is harmless.
    // better-sqlite3's own build, C sources and the SQLite amalgamation stay behind: its addon is built below.
    cpSync(dir, join(top, rel), { recursive: true, filter: (src) => !/node_modules[\\/]better-sqlite3[\\/](build|deps|src|prebuilds)$/.test(src) });
  }
  // SAFETY: native code loads only on the architecture it was compiled for (checked for every .node file below), and
  // only on a Node with the Node-API version (or, for a classic addon, the exact ABI) it was built against.
  const nodeDir = nodeRuntime(arch, options.nodeMajor);
  const sourceDir = join(ROOT, 'node_modules', 'better-sqlite3');
  const addon = buildBetterSqlite3({ sourceDir, arch: ARCHES[arch], nodeDir, cacheDir: join(ROOT, '.cache', 'native-addons') });
  const runtime = readNodeRuntimeHeaders(nodeDir);
  const abi = addonAbi(readFileSync(join(sourceDir, 'binding.gyp'), 'utf8'), runtime);
  mkdirSync(join(top, 'node_modules', 'better-sqlite3', 'build', 'Release'), { recursive: true });
  cpSync(addon, join(top, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'));
  // aws-crt ships native builds for every platform; the artifact needs only this architecture's glibc one.
  const crtBin = join(top, 'node_modules', 'aws-crt', 'dist', 'bin');
  if (existsSync(crtBin)) {
    const keep = `linux-${ARCHES[arch]}-glibc`;
    if (!existsSync(join(crtBin, keep))) throw new PackageError(`aws-crt has no ${keep} build: the IPC client could not load on the device`);
    for (const name of readdirSync(crtBin)) if (name !== keep) rmSync(join(crtBin, name), { recursive: true, force: true });
  }
  if (options.bundleNode) {
    mkdirSync(join(top, 'runtime', 'bin'), { recursive: true });
    cpSync(join(nodeDir, 'bin', 'node'), join(top, 'runtime', 'bin', 'node'));
    chmodSync(join(top, 'runtime', 'bin', 'node'), 0o755);
    cpSync(join(nodeDir, 'LICENSE'), join(top, 'runtime', 'LICENSE'));
  }
  const build: NativeBuild = { arch: ARCHES[arch], addon: abi, minNodeMajor: minNodeMajor(), bundledNode: options.bundleNode ? runtime.version : null };
  writeFileSync(join(top, NATIVE_BUILD_FILE), `${JSON.stringify(build, null, 2)}\n`);
  assertNoPrivateKeys(join(top, 'safety-bounds'));
  if (assertNativeArch(join(top, 'node_modules'), arch) === 0) throw new PackageError('no native addon found in the staged artifact: better-sqlite3 and aws-crt are missing');
}

export function packageComponent(options: PackageOptions): PackageResult {
  if (options.arches.length === 0) throw new PackageError('no architecture to package');
  for (const arch of options.arches) if (!(arch in ARCHES)) throw new PackageError(`--arch must be amd64, aarch64 or all, not ${String(arch)}`);
  if (!NODE_MAJORS.includes(options.nodeMajor)) throw new PackageError(`--node must be ${NODE_MAJORS.join(' or ')}, not ${String(options.nodeMajor)}`);
  if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[^\s/]+)*$/.test(options.uriBase)) {
    throw new PackageError(`--uri must be an s3://bucket/prefix URI (each artifact is uploaded as <prefix>/interlock-<arch>.zip), not "${options.uriBase}"`);
  }
  if (/\.zip$/i.test(options.uriBase)) {
    throw new PackageError(`--uri now names a prefix, not a zip: each architecture's artifact is uploaded as <prefix>/interlock-<arch>.zip (got "${options.uriBase}")`);
  }
  const main = join(options.buildDir, 'src', 'greengrass', 'start.js');
  if (!existsSync(main)) throw new PackageError(`no compiled code at ${main}: run npm run build first (npm run package does)`);
  const version = packageVersion();
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const staging = mkdtempSync(join(tmpdir(), 'interlock-package-'));
  try {
    const artifacts: ArtifactResult[] = [];
    for (const arch of options.arches) {
      const top = join(staging, artifactFolder(arch));
      mkdirSync(top);
      stageArtifact(options, arch, top);
      const zipPath = join(outDir, `${artifactFolder(arch)}.zip`);
      rmSync(zipPath, { force: true });
      // Entries at the zip's root: the nucleus adds the interlock-<arch>/ folder itself.
      execFileSync('zip', ['-q', '-r', '-X', zipPath, '.'], { cwd: top, stdio: ['ignore', 'ignore', 'pipe'] });
      const files = execFileSync('zipinfo', ['-1', zipPath], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n').filter((l) => l !== '' && !l.endsWith('/')).length;
      artifacts.push({ arch, zipPath, uri: `${options.uriBase}/${artifactFolder(arch)}.zip`, files, bytes: statSync(zipPath).size });
    }
    const recipePath = join(outDir, 'recipe.yaml');
    writeFileSync(recipePath, makeRecipe(join(ROOT, 'greengrass', 'recipe.yaml'), version, artifacts.map((a) => ({ arch: a.arch, uri: a.uri, bundledNode: options.bundleNode }))));
    return { artifacts, recipePath, version };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

const USAGE = 'usage: npm run package -- [--arch amd64|aarch64|all] [--node 22|24] [--device-node] [--uri s3://bucket/prefix] [--out dir] [--gdk]';

export type ParsedPackageArgs = { readonly ok: true; readonly options: PackageOptions; readonly gdk: boolean; readonly placeholderUri: boolean } | { readonly ok: false; readonly message: string };

/** The command line of `npm run package -- ...` as PackageOptions (the test runs docs/deploying.md's line through it). */
export function parsePackageArgs(argv: readonly string[]): ParsedPackageArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { arch: { type: 'string' }, node: { type: 'string' }, 'device-node': { type: 'boolean' }, uri: { type: 'string' }, out: { type: 'string' }, 'build-dir': { type: 'string' }, gdk: { type: 'boolean' } },
    }));
  } catch (error) {
    return { ok: false, message: (error as Error).message };
  }
  const arch = values.arch ?? 'all';
  if (arch !== 'all' && !(arch in ARCHES)) return { ok: false, message: `--arch must be amd64, aarch64 or all, not ${arch}` };
  const nodeMajor = Number(values.node ?? NODE_MAJORS[0]);
  if (!(NODE_MAJORS as readonly number[]).includes(nodeMajor)) return { ok: false, message: `--node must be ${NODE_MAJORS.join(' or ')}, not ${values.node}` };
  const version = packageVersion();
  const gdk = values.gdk === true;
  return {
    ok: true,
    gdk,
    placeholderUri: values.uri === undefined,
    options: {
      arches: arch === 'all' ? (Object.keys(ARCHES) as Arch[]) : [arch as Arch],
      uriBase: values.uri ?? `s3://replace-with-your-bucket/${COMPONENT}/${version}`,
      // GDK's custom build reads greengrass-build/ next to gdk-config.json (recipes/ and artifacts/<name>/<version>/).
      outDir: values.out ?? (gdk ? join(ROOT, 'greengrass', 'greengrass-build', 'artifacts', COMPONENT, version) : join(ROOT, 'greengrass', 'build')),
      buildDir: values['build-dir'] ?? join(ROOT, 'dist'),
      nodeMajor: nodeMajor as NodeMajor,
      // The Node the tests ran on ships with the code, unless the device's own is asked for.
      bundleNode: values['device-node'] !== true,
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const parsed = parsePackageArgs(argv);
  if (!parsed.ok) {
    process.stderr.write(`package: ${parsed.message}\n${USAGE}\n`);
    return 2;
  }
  try {
    const result = packageComponent(parsed.options);
    if (parsed.gdk) {
      const recipes = join(ROOT, 'greengrass', 'greengrass-build', 'recipes');
      mkdirSync(recipes, { recursive: true });
      cpSync(result.recipePath, join(recipes, 'recipe.yaml'));
      rmSync(result.recipePath);
    }
    for (const artifact of result.artifacts) {
      process.stdout.write(`artifact ${artifact.zipPath}: ${artifact.arch}, ${artifact.files} files, ${(artifact.bytes / 1048576).toFixed(1)} MiB -> ${artifact.uri}\n`);
    }
    process.stdout.write(`recipe ${parsed.gdk ? 'greengrass/greengrass-build/recipes/recipe.yaml' : result.recipePath}, version ${result.version}, Node ${parsed.options.nodeMajor} ${parsed.options.bundleNode ? 'bundled in each artifact' : "from the device's PATH"}\n`);
    if (parsed.placeholderUri) process.stdout.write('note: the recipe names a placeholder bucket; pass --uri s3://your-bucket/prefix (the GDK publish step sets its own)\n');
    return 0;
  } catch (error) {
    process.stderr.write(`package: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
