// The deployable recipe, made from greengrass/recipe.yaml for the artifacts `npm run package` built: the version
// filled in, one manifest per architecture built (a manifest without its artifact would fail on that device at
// download), each naming its own artifact and the Node its Startup script runs.

import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';

export type Arch = 'amd64' | 'aarch64';

export interface BuiltArtifact {
  readonly arch: Arch;
  /** Where Greengrass downloads it from: s3://bucket/key/interlock-<arch>.zip. */
  readonly uri: string;
  /** Whether it carries its own Node in runtime/bin/node (else the device's `node` on PATH runs it). */
  readonly bundledNode: boolean;
}

interface Manifest {
  Platform: { os: string; architecture: string };
  Lifecycle: { Startup: { Script: string; Timeout?: number } };
  Artifacts: { URI: string; Unarchive: string; Permission?: { Read: string; Execute: string } }[];
}

/** The artifact's folder name once the nucleus unpacked it: the archive's name without .zip. */
export function artifactFolder(arch: Arch): string {
  return `interlock-${arch}`;
}

export function makeRecipe(templatePath: string, version: string, artifacts: readonly BuiltArtifact[]): string {
  const recipe = parse(readFileSync(templatePath, 'utf8')) as Record<string, unknown> & { Manifests: Manifest[] };
  recipe['ComponentVersion'] = version;
  const manifests: Manifest[] = [];
  for (const artifact of artifacts) {
    const manifest = recipe.Manifests.find((m) => m.Platform.architecture === artifact.arch);
    if (manifest === undefined) throw new Error(`greengrass/recipe.yaml has no manifest for ${artifact.arch}`);
    const folder = `{artifacts:decompressedPath}/${artifactFolder(artifact.arch)}`;
    if (!manifest.Lifecycle.Startup.Script.includes('{NODE}') || !manifest.Lifecycle.Startup.Script.includes(`${folder}/`)) {
      throw new Error(`greengrass/recipe.yaml: the ${artifact.arch} manifest's Startup script must run {NODE} on ${folder}/...`);
    }
    manifests.push({
      ...manifest,
      Lifecycle: { ...manifest.Lifecycle, Startup: { ...manifest.Lifecycle.Startup, Script: manifest.Lifecycle.Startup.Script.replaceAll('{NODE}', artifact.bundledNode ? `${folder}/runtime/bin/node` : 'node') } },
      // A bundled Node must be executable once unpacked; nothing else in the artifact needs to be.
      Artifacts: [{ URI: artifact.uri, Unarchive: 'ZIP', ...(artifact.bundledNode ? { Permission: { Read: 'OWNER', Execute: 'OWNER' } } : {}) }],
    });
  }
  recipe.Manifests = manifests;
  const text = stringify(recipe, { lineWidth: 0 });
  if (/\{(NODE|COMPONENT_VERSION|ARTIFACT_URI)\}/.test(text)) throw new Error('a placeholder is left in the recipe');
  return `# Made by npm run package from greengrass/recipe.yaml (comments there); deploy this file, do not edit it.\n${text}`;
}
