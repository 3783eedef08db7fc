// npm run package end to end: the project is compiled and packaged for both architectures, each artifact is laid
// out exactly as the nucleus does it (test/helpers/nucleus-layout.ts: unpacked below decompressedPath/<archive name>,
// read-only, owned by ggc_user, started by the recipe's own Startup script through sudo and sh -c in the work folder
// with only the nucleus's environment), against the test nucleus with its default settings (no configuration
// interpolation). The amd64 artifact runs natively, the aarch64 one under qemu-user. Each must reach RUNNING,
// release one command and deny one over IPC, fail a deployment whose configuration it refuses, stop cleanly on
// SIGTERM, and, on the demo cell without keys, report ERRORED and exit 1.

import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { assertNativeArch, PackageError, packageComponent, parsePackageArgs, type PackageResult } from '../../scripts/package.js';
import { NATIVE_BUILD_FILE, nativeMismatch, type NativeBuild } from '../../src/greengrass/start.js';
import { COMPONENT_NAME } from '../helpers/recipe.js';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';
import { ensureComponentUser, layOutComponent, openPathTo } from '../helpers/nucleus-layout.js';
import { exerciseArtifact, startArtifact } from '../helpers/artifact-run.js';
import { TestNucleus } from '../helpers/greengrass-nucleus.js';

// Two artifacts built (a first compile of each addon takes 1.5-2 min here) and one run under qemu: far beyond the
// suite's default per-file limit on a busy 2-core machine.
t.setTimeout(1_200_000);
const dir = mkdtempSync(join(tmpdir(), 'interlock-package-test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const URI = 's3://my-artifacts/com.example.PhysicalAiInterlock/0.1.0';

// Compile into a private folder, so the test never touches the repository's own dist/.
const buildDir = join(dir, 'build');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', buildDir], { stdio: 'pipe' });
// docs/deploying.md's own command line, as written, with only the output folders pointed here.
const deploying = readFileSync(join(REPO_ROOT, 'docs', 'deploying.md'), 'utf8');
const documented = /^npm run package -- (.+)$/m.exec(deploying)?.[1]?.split(/\s+/) ?? [];
const parsedArgs = parsePackageArgs([...documented, '--out', join(dir, 'out'), '--build-dir', buildDir]);
if (!parsedArgs.ok) throw new Error(`docs/deploying.md's npm run package line does not parse: ${parsedArgs.message}`);
const result: PackageResult = packageComponent(parsedArgs.options);
// And its create-deployment merge: the cell folder and digest are the only things a reader replaces.
const mergeText = /"merge": "((?:[^"\\]|\\.)*)"/.exec(deploying)?.[1];
const documentedMerge = JSON.parse(JSON.parse(`"${mergeText ?? ''}"`) as string) as Record<string, unknown>;
const owner = ensureComponentUser();

type Recipe = {
  ComponentVersion: string;
  ComponentDependencies: Record<string, { VersionRequirement: string; DependencyType: string }>;
  ComponentConfiguration: { DefaultConfiguration: Record<string, unknown> };
  Manifests: { Platform: { architecture: string }; Lifecycle: { Startup: { Script: string } }; Artifacts: { URI: string; Unarchive: string; Permission?: unknown }[] }[];
};
const recipe = parse(readFileSync(result.recipePath, 'utf8')) as Recipe;

t.test("docs/deploying.md's commands are the ones tested: its npm run package line, its deployment's merge", async (t) => {
  t.same(documented, ['--uri', URI], 'the documented package command (both architectures, Node bundled)');
  t.same(Object.keys(documentedMerge).sort(), ['cellDirectory', 'expectedDigest'], 'the documented merge sets the cell folder and its digest');
  t.match(parsedArgs, { ok: true, options: { arches: ['amd64', 'aarch64'], nodeMajor: 22, bundleNode: true } });
});

t.test("each architecture's artifact: entries at the zip's root, its own native code, production dependencies only, no private key", async (t) => {
  t.same(result.artifacts.map((a) => a.arch), ['amd64', 'aarch64']);
  for (const artifact of result.artifacts) {
    const listing = execFileSync('zipinfo', ['-1', artifact.zipPath], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n');
    t.ok(listing.includes('dist/src/greengrass/start.js'), `${artifact.arch}: the entry point at dist/src/greengrass/start.js, with no folder above it (the nucleus adds interlock-${artifact.arch}/)`);
    t.notOk(listing.some((l) => l.startsWith('interlock')), `${artifact.arch}: no entry starts with an interlock folder of its own`);
    t.ok(listing.includes('safety-bounds/demo-cell/cell.yaml'), 'the example declarations');
    t.ok(listing.includes('runtime/bin/node'), 'the Node runtime, bundled');
    t.ok(listing.includes(NATIVE_BUILD_FILE));
    for (const dev of ['tap', 'typescript', 'fast-check', '@types/better-sqlite3']) t.notOk(listing.some((l) => l.startsWith(`node_modules/${dev}/`)), `no dev dependency ${dev}`);
    t.notOk(listing.some((l) => /\.key\.pem$|^safety-bounds\/.*\/keys\//.test(l)), 'no private key, no keys folder');
    t.notOk(listing.some((l) => /^dist\/.*\.map$/.test(l)), 'no source maps of our own');
    t.notOk(listing.some((l) => l.startsWith('node_modules/better-sqlite3/deps/')), "better-sqlite3's C sources stay behind");
    const crt = [...new Set(listing.filter((l) => l.startsWith('node_modules/aws-crt/dist/bin/')).map((l) => l.split('/')[4]).filter((x) => x !== undefined && x !== ''))];
    t.same(crt, [`linux-${artifact.arch === 'amd64' ? 'x64' : 'arm64'}-glibc`], "only this architecture's aws-crt build");
    t.ok(artifact.bytes > 0 && artifact.files > 100, `${artifact.arch}: ${artifact.files} files, ${(artifact.bytes / 1048576).toFixed(1)} MiB`);
  }
});

t.test('the recipe: one manifest per artifact, each its own URI and bundled Node (executable), a nucleus dependency, no recipe variable in the configuration', async (t) => {
  t.equal(recipe.ComponentVersion, result.version);
  t.same(recipe.ComponentDependencies['aws.greengrass.Nucleus'], { VersionRequirement: '>=2.6.0 <3.0.0', DependencyType: 'SOFT' });
  t.same(recipe.Manifests.map((m) => m.Platform.architecture), ['amd64', 'aarch64']);
  for (const manifest of recipe.Manifests) {
    const arch = manifest.Platform.architecture;
    t.same(manifest.Artifacts, [{ URI: `${URI}/interlock-${arch}.zip`, Unarchive: 'ZIP', Permission: { Read: 'OWNER', Execute: 'OWNER' } }]);
    t.match(manifest.Lifecycle.Startup.Script, new RegExp(`^exec \\{artifacts:decompressedPath\\}/interlock-${arch}/runtime/bin/node .*--work-path \\{work:path\\} --artifact-path \\{artifacts:decompressedPath\\}/interlock-${arch}$`));
  }
  // With the nucleus's default settings a recipe variable in configuration stays literal: there must be none.
  t.notMatch(JSON.stringify(recipe.ComponentConfiguration), /\{[a-z]+:[^}]*\}/i, 'no {variable} anywhere in ComponentConfiguration, accessControl included');
  t.notMatch(readFileSync(result.recipePath, 'utf8'), /\{COMPONENT_VERSION\}|\{ARTIFACT_URI\}|\{NODE\}/, 'no placeholder left');
});

t.test('native code is checked: a .node file of the other architecture is refused, and start.js refuses a Node that cannot load it', async (t) => {
  const layout = join(dir, 'wrong-arch');
  const paths = layOutComponent(layout, COMPONENT_NAME, result.version, result.artifacts[1]?.zipPath as string, 'interlock-aarch64', true, owner);
  t.throws(() => assertNativeArch(join(paths.decompressedPath, 'interlock-aarch64', 'node_modules', 'better-sqlite3'), 'amd64'), /better_sqlite3\.node is not a native addon for amd64 \(ELF machine 0xb7/);
  const build = JSON.parse(readFileSync(join(paths.decompressedPath, 'interlock-aarch64', NATIVE_BUILD_FILE), 'utf8')) as NativeBuild;
  t.match(build, { arch: 'arm64', addon: { kind: 'node-api' }, minNodeMajor: 22, bundledNode: /^22\./ });
  t.match(nativeMismatch(build, { arch: 'x64', version: 'v22.23.5', modules: '127', napi: '10' }), /built for arm64, but this device runs x64/);
  t.match(nativeMismatch({ ...build, arch: 'x64', bundledNode: null }, { arch: 'x64', version: 'v20.20.2', modules: '115', napi: '10' }), /needs Node 22 or newer, but the Startup script found Node v20\.20\.2: install Node 22/);
  t.match(nativeMismatch({ ...build, arch: 'x64' }, { arch: 'x64', version: 'v22.1.0', modules: '127', napi: '9' }), /needs Node-API \d+, but Node v22\.1\.0 provides 9/);
  t.equal(nativeMismatch({ ...build, arch: 'x64' }, { arch: 'x64', version: 'v24.22.3', modules: '137', napi: '10' }), undefined, 'Node 24 runs a Node-API build made against Node 22');
});

t.test('bad package requests are refused with the reason', async (t) => {
  const base = { arches: ['amd64'] as const, uriBase: URI, outDir: join(dir, 'x'), buildDir, nodeMajor: 22 as const, bundleNode: true };
  t.throws(() => packageComponent({ ...base, arches: ['armv7l' as never] }), /--arch must be amd64, aarch64 or all/);
  t.throws(() => packageComponent({ ...base, nodeMajor: 20 as never }), /--node must be 22 or 24/);
  t.throws(() => packageComponent({ ...base, uriBase: 'https://example.com/a' }), /--uri must be an s3:\/\/bucket\/prefix URI/);
  t.throws(() => packageComponent({ ...base, uriBase: `${URI}/interlock.zip/` }), /--uri must be an s3:\/\/bucket\/prefix URI/);
  t.throws(() => packageComponent({ ...base, uriBase: `${URI}/interlock.zip` }), /--uri now names a prefix, not a zip/, "the old form's full .zip key is refused with what changed");
  t.throws(() => packageComponent({ ...base, buildDir: join(dir, 'nothing') }), PackageError);
});

t.test("gdk-config.json names the component and the version npm run package builds (the GDK's custom build reads greengrass-build/artifacts/<name>/<version>)", async (t) => {
  const gdk = JSON.parse(readFileSync(join(REPO_ROOT, 'greengrass', 'gdk-config.json'), 'utf8')) as { component: Record<string, { version: string; build: { build_system: string; custom_build_command: string[] } }> };
  t.same(Object.keys(gdk.component), [COMPONENT_NAME]);
  const component = gdk.component[COMPONENT_NAME];
  t.equal(component?.version, result.version, 'a fixed version equal to package.json (NEXT_PATCH would not match the artifact folder)');
  t.same(component?.build, { build_system: 'custom', custom_build_command: ['npm', 'run', 'package', '--', '--gdk'] });
});

for (const artifact of result.artifacts) {
  t.test(`the ${artifact.arch} artifact runs as the nucleus starts it${artifact.arch === 'aarch64' ? ' (under qemu-user)' : ''}: RUNNING, a release and a denial over IPC, a refused deployment, SIGTERM; ERRORED and exit 1 without keys`, { timeout: artifact.arch === 'aarch64' ? 600_000 : 180_000 }, async (t) => {
    const cell = makeTestCell({}, { stateAgeMs: 10_000 });
    t.teardown(() => cell.cleanup());
    // The cell folder is the integrator's, readable by the component's user (its public keys only).
    openPathTo(cell.cellDir);
    execFileSync('chmod', ['-R', 'a+rX', cell.cellDir]);
    const manifest = recipe.Manifests.find((m) => m.Platform.architecture === artifact.arch);
    if (manifest === undefined) throw new Error(`no ${artifact.arch} manifest`);
    const root = join(dir, `gg-${artifact.arch}`);
    mkdirSync(root);
    chmodSync(root, 0o755);
    const paths = layOutComponent(root, COMPONENT_NAME, result.version, artifact.zipPath, `interlock-${artifact.arch}`, true, owner);
    const top = join(paths.decompressedPath, `interlock-${artifact.arch}`);
    t.equal(statSync(join(top, 'dist', 'src', 'greengrass', 'start.js')).mode & 0o777, 0o550, 'files read-only, as the nucleus leaves them');
    t.ok(existsSync(join(top, 'runtime', 'bin', 'node')));
    const merge = { ...documentedMerge, cellDirectory: cell.cellDir, expectedDigest: cell.load().declarations.digest };
    await exerciseArtifact(t, { arch: artifact.arch, startup: manifest.Lifecycle.Startup.Script, paths, owner, cell, defaults: recipe.ComponentConfiguration.DefaultConfiguration, merge });
  });
}

t.test("--device-node: the Startup script runs the node sudo's secure_path finds, and start.js refuses one older than 22 in one line (exit 1)", { timeout: 300_000 }, async (t) => {
  const deviceNode = packageComponent({ ...parsedArgs.options, arches: ['amd64'], bundleNode: false, outDir: join(dir, 'out-device-node') });
  const [artifact] = deviceNode.artifacts;
  if (artifact === undefined) throw new Error('no amd64 artifact');
  const built = parse(readFileSync(deviceNode.recipePath, 'utf8')) as Recipe;
  const manifest = built.Manifests[0];
  t.match(manifest?.Lifecycle.Startup.Script, /^exec node --enable-source-maps /, "the Startup script runs the device's node");
  t.same(manifest?.Artifacts, [{ URI: `${URI}/interlock-amd64.zip`, Unarchive: 'ZIP' }], 'no Execute permission needed');
  const listing = execFileSync('zipinfo', ['-1', artifact.zipPath], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  t.notMatch(listing, /^runtime\//m, 'no runtime in the artifact');
  const root = join(dir, 'gg-device-node');
  mkdirSync(root);
  chmodSync(root, 0o755);
  const paths = layOutComponent(root, COMPONENT_NAME, deviceNode.version, artifact.zipPath, 'interlock-amd64', false, owner);
  // What the component's user finds as `node` through sudo (secure_path), and its version.
  const found = spawnSync('env', ['-i', 'PATH=/usr/bin:/bin', 'sudo', '-n', '-H', '-u', owner.user, '-g', owner.group, '--', 'sh', '-c', 'command -v node && node -v'], { encoding: 'utf8' });
  const [nodePath, nodeVersion] = found.stdout.trim().split('\n');
  t.comment(`node for ${owner.user}: ${nodePath ?? 'none'} ${nodeVersion ?? ''}`);
  const major = Number(/^v(\d+)/.exec(nodeVersion ?? '')?.[1] ?? 0);
  const nucleus = new TestNucleus(join(root, 'ipc.socket'), [{ name: COMPONENT_NAME, accessControl: {}, configuration: { ...built.ComponentConfiguration.DefaultConfiguration } }]);
  await nucleus.start();
  t.teardown(() => nucleus.stop());
  chmodSync(nucleus.socketPath, 0o666);
  const started = startArtifact({ arch: 'amd64', startup: manifest?.Lifecycle.Startup.Script ?? '', paths, owner }, nucleus);
  const code = await started.exited;
  if (major === 0) {
    t.equal(code, 127, 'no node for the component: the shell cannot start it', { componentLog: started.log() });
  } else if (major < 22) {
    t.equal(code, 1, 'exit 1', { componentLog: started.log() });
    t.match(started.log(), new RegExp(`refusing to start: .*Node 22 or newer.*found Node ${nodeVersion?.replace(/\./g, '\\.') ?? ''}: install Node 22 or newer on the device`), 'one line: which Node, what to install');
    t.same(nucleus.states.get(COMPONENT_NAME) ?? [], [], 'it never connected: the nucleus sees the exit (ERRORED)');
  } else {
    // A Node 22+ on this machine's PATH: the device-node artifact starts; its configuration (the keyless demo cell) then
    // reports ERRORED and exits 1, which is what a start on the shipped defaults does.
    t.equal(code, 1, 'exit 1 on the keyless demo cell', { componentLog: started.log() });
    t.same(nucleus.states.get(COMPONENT_NAME), ['ERRORED']);
    t.match(started.log(), /keys\/planner-1-k1\.pub\.pem/);
  }
});
