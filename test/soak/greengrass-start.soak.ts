// Figures for docs/benchmarks.md (npm run soak, or npx tap test/soak/greengrass-start.soak.ts): each architecture's
// artifact size, and the time from the nucleus starting the Startup script to the component's RUNNING, median of
// 5 starts, laid out and started as the nucleus does (amd64 natively, aarch64 under qemu-user). Only RUNNING is
// asserted; the times are printed.

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { packageComponent } from '../../scripts/package.js';
import { startArtifact } from '../helpers/artifact-run.js';
import { TestNucleus, type AccessControl } from '../helpers/greengrass-nucleus.js';
import { ensureComponentUser, layOutComponent, openPathTo, terminateLikeNucleus } from '../helpers/nucleus-layout.js';
import { COMPONENT_NAME } from '../helpers/recipe.js';
import { makeTestCell, REPO_ROOT } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';

const RUNS = 5;
const dir = mkdtempSync(join(tmpdir(), 'interlock-start-soak-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const buildDir = join(dir, 'build');
execFileSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', buildDir], { stdio: 'pipe' });
const result = packageComponent({ arches: ['amd64', 'aarch64'], uriBase: 's3://my-artifacts/x', outDir: join(dir, 'out'), buildDir, nodeMajor: 22, bundleNode: true });
const recipe = parse(readFileSync(result.recipePath, 'utf8')) as { ComponentConfiguration: { DefaultConfiguration: Record<string, unknown> }; Manifests: { Platform: { architecture: string }; Lifecycle: { Startup: { Script: string } } }[] };
const owner = ensureComponentUser();
const cell = makeTestCell({}, { stateAgeMs: 10_000 });
t.teardown(() => cell.cleanup());
openPathTo(cell.cellDir);
execFileSync('chmod', ['-R', 'a+rX', cell.cellDir]);

for (const artifact of result.artifacts) {
  t.test(`${artifact.arch}: ${(artifact.bytes / 1048576).toFixed(1)} MiB, ${artifact.files} files; start to RUNNING, median of ${RUNS}`, { timeout: 1_800_000 }, async (t) => {
    const root = join(dir, `gg-${artifact.arch}`);
    mkdirSync(root);
    chmodSync(root, 0o755);
    const paths = layOutComponent(root, COMPONENT_NAME, result.version, artifact.zipPath, `interlock-${artifact.arch}`, true, owner);
    const { accessControl, ...defaults } = recipe.ComponentConfiguration.DefaultConfiguration as { accessControl: AccessControl } & Record<string, unknown>;
    const startup = recipe.Manifests.find((m) => m.Platform.architecture === artifact.arch)?.Lifecycle.Startup.Script ?? '';
    const times: number[] = [];
    for (let run = 0; run < RUNS; run += 1) {
      const nucleus = new TestNucleus(join(root, 'ipc.socket'), [{ name: COMPONENT_NAME, accessControl, configuration: { ...defaults, cellDirectory: cell.cellDir } }]);
      await nucleus.start();
      chmodSync(nucleus.socketPath, 0o666);
      const started = Date.now();
      const component = startArtifact({ arch: artifact.arch, startup, paths, owner }, nucleus);
      await waitFor(() => (nucleus.states.get(COMPONENT_NAME) ?? []).length > 0 || component.child.exitCode !== null, 'RUNNING', 600_000);
      times.push(Date.now() - started);
      t.same(nucleus.states.get(COMPONENT_NAME), ['RUNNING'], 'RUNNING', { componentLog: component.log().slice(-4000) });
      terminateLikeNucleus(component.child);
      t.equal(await component.exited, 0, 'exit 0 on SIGTERM', { componentLog: component.log().slice(-4000) });
      await nucleus.stop();
    }
    const sorted = [...times].sort((a, b) => a - b);
    t.comment(`${artifact.arch}: artifact ${artifact.bytes} bytes (${(artifact.bytes / 1048576).toFixed(1)} MiB), ${artifact.files} files; start to RUNNING ${times.join(', ')} ms; median ${sorted[Math.floor(RUNS / 2)]} ms`);
  });
}
