// The artifact's entry point, what the recipe's Startup script runs: it checks that this Node can run the artifact
// (the architecture and Node-API version its native code was built for, recorded in native.json by `npm run
// package`, and the oldest Node supported) and says so in one line if not, before a native module fails to load with
// a linker error; then it runs `interlock greengrass` with the folders the lifecycle script passes.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeBuild {
  /** Node's name for the architecture: x64 or arm64. */
  readonly arch: string;
  /**
   * What the native code needs of the Node that loads it: a Node-API version (better-sqlite3 13 and aws-crt are
   * Node-API addons: any Node with that version loads them) or, for a classic addon, one exact module ABI.
   */
  readonly addon: { readonly kind: 'node-api'; readonly napiVersion: number } | { readonly kind: 'node-abi'; readonly moduleVersion: number };
  /** The oldest Node major the code supports (package.json engines). */
  readonly minNodeMajor: number;
  /** Whether the artifact carries its own Node runtime in runtime/bin/node, and which version. */
  readonly bundledNode: string | null;
}

export const NATIVE_BUILD_FILE = 'native.json';

export interface RunningNode {
  readonly arch: string;
  /** process.version, e.g. v22.23.5. */
  readonly version: string;
  /** process.versions.modules */
  readonly modules: string;
  /** process.versions.napi (undefined on a Node without Node-API) */
  readonly napi: string | undefined;
}

/** Why this Node cannot run the artifact, or undefined when it can. */
export function nativeMismatch(build: NativeBuild, running: RunningNode): string | undefined {
  if (build.arch !== running.arch) return `this artifact's native code is built for ${build.arch}, but this device runs ${running.arch}: deploy the recipe's own manifest for this architecture`;
  const major = Number(/^v?(\d+)/.exec(running.version)?.[1] ?? 0);
  const remedy = build.bundledNode === null ? `install Node ${build.minNodeMajor} or newer on the device (on the PATH sudo gives components), or package without --device-node (the artifact then carries its own)` : 'the bundled runtime/bin/node should have been used: check the Startup script';
  if (major < build.minNodeMajor) return `the interlock needs Node ${build.minNodeMajor} or newer, but the Startup script found Node ${running.version}: ${remedy}`;
  if (build.addon.kind === 'node-api' && !(Number(running.napi ?? 0) >= build.addon.napiVersion)) {
    return `this artifact's native code needs Node-API ${build.addon.napiVersion}, but Node ${running.version} provides ${running.napi ?? 'none'}: ${remedy}`;
  }
  if (build.addon.kind === 'node-abi' && String(build.addon.moduleVersion) !== running.modules) {
    return `this artifact's native code is built for Node module ABI ${build.addon.moduleVersion}, but Node ${running.version} has ABI ${running.modules}: ${remedy}`;
  }
  return undefined;
}

async function start(): Promise<number> {
  // dist/src/greengrass/start.js -> the artifact's top folder.
  const artifact = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  let build: NativeBuild;
  try {
    build = JSON.parse(readFileSync(join(artifact, NATIVE_BUILD_FILE), 'utf8')) as NativeBuild;
  } catch (error) {
    process.stderr.write(`interlock: ${join(artifact, NATIVE_BUILD_FILE)} cannot be read (${error instanceof Error ? error.message : String(error)}): start.js runs from an artifact made by npm run package\n`);
    return 1;
  }
  const mismatch = nativeMismatch(build, { arch: process.arch, version: process.version, modules: process.versions.modules, napi: process.versions.napi });
  if (mismatch !== undefined) {
    process.stderr.write(`interlock: refusing to start: ${mismatch}\n`);
    return 1;
  }
  process.stderr.write(`${new Date().toISOString()} INFO  [interlock] Node ${process.version} (${build.bundledNode === null ? "the device's, from PATH" : 'bundled in the artifact'}) on ${process.arch}\n`);
  const { main } = await import('../cli/main.js');
  return main(['greengrass', ...process.argv.slice(2)]);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await start();
}
