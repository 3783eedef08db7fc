// Reads greengrass/recipe.yaml's configuration the way a nucleus with its default settings keeps it: recipe
// variables in configuration (accessControl included) are NOT replaced (interpolateComponentConfiguration is off by
// default), so the default configuration and accessControl are taken as written.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { AccessControl } from './greengrass-nucleus.js';
import { REPO_ROOT } from './test-cell.js';

export const RECIPE_PATH = join(REPO_ROOT, 'greengrass', 'recipe.yaml');
export const COMPONENT_NAME = 'com.example.PhysicalAiInterlock';

export interface LoadedRecipe {
  readonly raw: Record<string, unknown>;
  /** DefaultConfiguration without accessControl, as written. */
  readonly configuration: Record<string, unknown>;
  readonly accessControl: AccessControl;
}

export function loadRecipe(path = RECIPE_PATH): LoadedRecipe {
  const raw = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const defaults = (raw['ComponentConfiguration'] as { DefaultConfiguration: Record<string, unknown> }).DefaultConfiguration;
  const { accessControl, ...configuration } = defaults;
  return { raw, configuration, accessControl: accessControl as AccessControl };
}
