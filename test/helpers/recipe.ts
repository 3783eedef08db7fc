// Reads greengrass/recipe.yaml the way a nucleus would for a test: the default configuration and accessControl with
// the recipe variables ({artifacts:decompressedPath}, {work:path}, {iot:thingName}) replaced by the given values.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { AccessControl } from './greengrass-nucleus.js';
import { REPO_ROOT } from './test-cell.js';

export const RECIPE_PATH = join(REPO_ROOT, 'greengrass', 'recipe.yaml');
export const COMPONENT_NAME = 'com.example.PhysicalAiInterlock';

export interface RecipeVariables {
  readonly decompressedPath: string;
  readonly workPath: string;
  readonly thingName: string;
}

export interface LoadedRecipe {
  readonly raw: Record<string, unknown>;
  /** DefaultConfiguration without accessControl, variables replaced. */
  readonly configuration: Record<string, unknown>;
  readonly accessControl: AccessControl;
}

function substitute(value: unknown, vars: RecipeVariables): unknown {
  if (typeof value === 'string') {
    return value
      .replaceAll('{artifacts:decompressedPath}', vars.decompressedPath)
      .replaceAll('{work:path}', vars.workPath)
      .replaceAll('{iot:thingName}', vars.thingName);
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  return value;
}

export function loadRecipe(vars: RecipeVariables, path = RECIPE_PATH): LoadedRecipe {
  const raw = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const defaults = (raw['ComponentConfiguration'] as { DefaultConfiguration: Record<string, unknown> }).DefaultConfiguration;
  const { accessControl, ...configuration } = substitute(defaults, vars) as Record<string, unknown>;
  return { raw, configuration, accessControl: accessControl as AccessControl };
}
