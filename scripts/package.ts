// `npm run package`: builds the Greengrass artifact (a zip of the compiled code, the example declarations and the
// production dependencies) and the deployable recipe with the artifact URI and version filled in. It never ships a
// private key, and never ships a native addon built for one architecture under the name of another.

import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { arch, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(here, here.split(/[\\/]/).includes('dist') ? '../..' : '..');
const COMPONENT = 'com.example.PhysicalAiInterlock';
const ARCHES = { amd64: 'x64', aarch64: 'arm64' } as const;
type Arch = keyof typeof ARCHES;

export interface PackageOptions {
  readonly arch: Arch;
  /** Where the artifact will be uploaded (s3://bucket/key.zip); written into the recipe. */
  readonly uri: string;
  readonly outDir: string;
  /** The compiled project (npm run build's output). */
  readonly buildDir: string;
}

export interface PackageResult {
  readonly zipPath: string;
  readonly recipePath: string;
  readonly version: string;
  readonly files: number;
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

function hostArch(): Arch {
  const host = Object.entries(ARCHES).find(([, node]) => node === arch());
  if (host === undefined) throw new PackageError(`this machine's architecture (${arch()}) is not one the component supports (amd64, aarch64)`);
  return host[0] as Arch;
}

/** Every production dependency's folder, as npm resolves them (the dev tree is never shipped). */
function productionPackages(): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && resolve(line) !== ROOT);
}

/** Refuses anything that looks like a private key (a demo key folder copied by mistake, a PEM pasted in). */
function assertNoPrivateKeys(dir: string): void {
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      if (/\.key\.pem$/i.test(name)) throw new PackageError(`refusing to package a private key file: ${relative(dir, path)}`);
      if (statSync(path).size < 1_000_000 && readFileSync(path, 'latin1').includes('PRIVATE KEY-----')) {
        throw new PackageError(`refusing to package a file holding a private key: ${relative(dir, path)}`);
      }
    }
  };
  walk(dir);
}

export function packageComponent(options: PackageOptions): PackageResult {
  if (!(options.arch in ARCHES)) throw new PackageError(`--arch must be amd64 or aarch64, not ${String(options.arch)}`);
  const host = hostArch();
  // SAFETY: better-sqlite3 is compiled on this machine; under another architecture's name it would not load there.
  if (options.arch !== host) {
    throw new PackageError(`--arch ${options.arch} on a ${host} machine: the native addon better-sqlite3 is built for ${host}; build the ${options.arch} package on an ${options.arch} machine`);
  }
  if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/\S+\.zip$/.test(options.uri)) {
    throw new PackageError(`--uri must be an s3://bucket/key.zip URI (the artifact Greengrass downloads), not "${options.uri}"`);
  }
  const main = join(options.buildDir, 'src', 'cli', 'main.js');
  if (!existsSync(main)) throw new PackageError(`no compiled code at ${main}: run npm run build first (npm run package does)`);
  const version = packageVersion();

  const staging = mkdtempSync(join(tmpdir(), 'interlock-package-'));
  try {
    // The zip holds one folder, `interlock/`: the recipe runs {artifacts:decompressedPath}/interlock/dist/src/cli/main.js.
    const top = join(staging, 'interlock');
    mkdirSync(top);
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
      cpSync(dir, join(top, rel), { recursive: true });
    }
    // aws-crt ships native builds for every platform; the artifact needs only this architecture's glibc one.
    const crtBin = join(top, 'node_modules', 'aws-crt', 'dist', 'bin');
    if (existsSync(crtBin)) {
      const keep = `linux-${ARCHES[options.arch]}-glibc`;
      if (!existsSync(join(crtBin, keep))) throw new PackageError(`aws-crt has no ${keep} build: the IPC client could not load on the device`);
      for (const name of readdirSync(crtBin)) if (name !== keep) rmSync(join(crtBin, name), { recursive: true, force: true });
    }
    assertNoPrivateKeys(join(top, 'safety-bounds'));
    const outDir = resolve(options.outDir);
    mkdirSync(outDir, { recursive: true });
    const zipPath = join(outDir, 'interlock.zip');
    rmSync(zipPath, { force: true });
    execFileSync('zip', ['-q', '-r', '-X', zipPath, 'interlock'], { cwd: staging, stdio: ['ignore', 'ignore', 'pipe'] });
    const recipe = readFileSync(join(ROOT, 'greengrass', 'recipe.yaml'), 'utf8').replaceAll('{COMPONENT_VERSION}', version).replaceAll('{ARTIFACT_URI}', options.uri);
    const recipePath = join(outDir, 'recipe.yaml');
    writeFileSync(recipePath, recipe);
    const files = execFileSync('zipinfo', ['-1', zipPath], { encoding: 'utf8' }).split('\n').filter((l) => l !== '' && !l.endsWith('/')).length;
    return { zipPath, recipePath, version, files };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { arch: { type: 'string' }, uri: { type: 'string' }, out: { type: 'string' }, 'build-dir': { type: 'string' }, gdk: { type: 'boolean' } } }));
  } catch (error) {
    process.stderr.write(`package: ${(error as Error).message}\nusage: npm run package -- [--arch amd64|aarch64] [--uri s3://bucket/key.zip] [--out dir] [--gdk]\n`);
    return 2;
  }
  const version = packageVersion();
  const gdk = values.gdk === true;
  // GDK's custom build reads greengrass-build/ next to gdk-config.json (recipes/ and artifacts/<name>/<version>/).
  const outDir = values.out ?? (gdk ? join(ROOT, 'greengrass', 'greengrass-build', 'artifacts', COMPONENT, version) : join(ROOT, 'greengrass', 'build'));
  try {
    const result = packageComponent({
      arch: (values.arch ?? hostArch()) as Arch,
      uri: values.uri ?? `s3://replace-with-your-bucket/${COMPONENT}/${version}/interlock.zip`,
      outDir,
      buildDir: values['build-dir'] ?? join(ROOT, 'dist'),
    });
    if (gdk) {
      const recipes = join(ROOT, 'greengrass', 'greengrass-build', 'recipes');
      mkdirSync(recipes, { recursive: true });
      cpSync(result.recipePath, join(recipes, 'recipe.yaml'));
      rmSync(result.recipePath);
    }
    process.stdout.write(`artifact ${result.zipPath} (${result.files} files), recipe ${gdk ? 'greengrass/greengrass-build/recipes/recipe.yaml' : result.recipePath}, version ${result.version}\n`);
    if (values.uri === undefined) process.stdout.write('note: the recipe names a placeholder bucket; pass --uri s3://your-bucket/... (the GDK publish step sets its own)\n');
    return 0;
  } catch (error) {
    process.stderr.write(`package: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
