// Writes the published JSON Schemas (safety-bounds/schema/*.json) from src/declarations/schemas.ts, the single
// source. Editors point at these files; a test fails when they are out of date.

import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DECLARATION_SCHEMAS, renderPublishedSchema } from '../src/declarations/schemas.js';

// dist/scripts/ or scripts/: the repository root is found from package.json's folder either way.
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.split(/[\\/]/).includes('dist') ? '../..' : '..');
const target = join(root, 'safety-bounds', 'schema');
mkdirSync(target, { recursive: true });
for (const [name, schema] of Object.entries(DECLARATION_SCHEMAS)) {
  writeFileSync(join(target, name), renderPublishedSchema(schema));
  process.stdout.write(`wrote ${join('safety-bounds', 'schema', name)}\n`);
}
