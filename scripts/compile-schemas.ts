// Compiles the JSON Schemas the interlock validates with on its start and command paths into standalone validator
// code (ajv's standalone generation), written to src/generated/*.ts and checked in: start-up then neither loads ajv's
// compiler nor compiles, and the code is the same under tap (TypeScript sources), in dist/ and in the Greengrass
// artifact. `npm run schemas:compile` rewrites the files; test/scripts/compile-schemas.test.ts fails when one is
// out of date. The validators are ajv's own code for the same schema and options, so their errors are unchanged.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type Options } from 'ajv';
import standaloneModule from 'ajv/dist/standalone/index.js';
import { DEVICE_KIND_NAMES, kindSpec } from '../src/core/kinds/index.js';
import { AGENTS_SCHEMA, CELL_SCHEMA, DEVICE_SCHEMA } from '../src/declarations/schemas.js';
import { CLAIMS_SCHEMA as COMMAND_CLAIMS_SCHEMA } from '../src/envelope/claims-schema.js';
import { stateSchemaOf } from '../src/interlock/state-schema.js';
import { CLAIMS_SCHEMA as OPERATOR_CLAIMS_SCHEMA, PARAMS_SCHEMAS as OPERATOR_PARAMS_SCHEMAS } from '../src/operator/operator-schemas.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.split(/[\\/]/).includes('dist') ? '../..' : '..');
// The module is CommonJS with a default export; under NodeNext its default import is the exports object.
const standaloneCode = (standaloneModule as unknown as { default: (ajv: Ajv, refs: Record<string, string>) => string }).default;

interface Group {
  /** Path of the generated file, from the repository root. */
  readonly file: string;
  /** The exported record's name. */
  readonly exportName: string;
  /** Where the schemas come from (for the file's header). */
  readonly sources: string;
  /** ajv's options, exactly as the consumer compiled with them before. */
  readonly options: Options;
  /** Key in the exported record -> schema. */
  readonly schemas: ReadonlyMap<string, object>;
}

export function schemaGroups(): Group[] {
  return [
    {
      file: 'src/generated/declaration-validators.ts',
      exportName: 'DECLARATION_VALIDATORS',
      sources: 'src/declarations/schemas.ts',
      // discriminator: a device file is checked against its own kind's schema only, so errors name real fields.
      options: { strict: true, allErrors: true, discriminator: true, verbose: true },
      schemas: new Map<string, object>([
        ['cell', CELL_SCHEMA],
        ['device', DEVICE_SCHEMA],
        ['agents', AGENTS_SCHEMA],
      ]),
    },
    {
      file: 'src/generated/envelope-validators.ts',
      exportName: 'ENVELOPE_VALIDATORS',
      sources: 'src/envelope/claims-schema.ts and each kind\'s action params (src/core/kinds)',
      options: { strict: true, allErrors: false },
      schemas: new Map<string, object>([
        ['claims', COMMAND_CLAIMS_SCHEMA],
        ...DEVICE_KIND_NAMES.flatMap((kind) => Object.entries(kindSpec(kind).actions).map(([action, spec]): [string, object] => [`params:${kind}/${action}`, spec.paramsSchema])),
      ]),
    },
    {
      file: 'src/generated/state-validators.ts',
      exportName: 'STATE_VALIDATORS',
      sources: 'src/interlock/state-schema.ts',
      options: { strict: true, allowUnionTypes: true },
      schemas: new Map<string, object>(DEVICE_KIND_NAMES.map((kind): [string, object] => [kind, stateSchemaOf(kind)])),
    },
    {
      file: 'src/generated/operator-validators.ts',
      exportName: 'OPERATOR_VALIDATORS',
      sources: 'src/operator/operator-schemas.ts',
      options: { strict: true, allErrors: false },
      schemas: new Map<string, object>([['claims', OPERATOR_CLAIMS_SCHEMA], ...Object.entries(OPERATOR_PARAMS_SCHEMAS).map(([action, schema]): [string, object] => [`params:${action}`, schema])]),
    },
  ];
}

/** The text of one generated file. */
export function generateGroup(group: Group): string {
  const ajv = new Ajv({ ...group.options, code: { source: true, esm: true } });
  const refs: Record<string, string> = {};
  // Equal schemas (actions sharing one params shape) are compiled once: ajv would emit the same function twice.
  const local = new Map<string, string>();
  const byText = new Map<string, string>();
  for (const [key, schema] of group.schemas) {
    const text = JSON.stringify(schema);
    let name = byText.get(text);
    if (name === undefined) {
      name = `v${byText.size}`;
      byText.set(text, name);
      ajv.addSchema(schema, key);
      refs[name] = key;
    }
    local.set(key, name);
  }
  const code = standaloneCode(ajv, refs)
    .replace(/^"use strict";/, '')
    // The exported names become locals: the module's one export is the record below.
    .replace(/export const (v\d+) = /g, 'const $1 = ')
    // One top-level declaration per line, so a schema change shows as a readable diff.
    .replace(/;(function validate\d+\(|const (?:schema|func|pattern|formats)\d+ = )/g, ';\n$1');
  const entries = [...local].map(([key, name]) => `  ${JSON.stringify(key)}: ${name},`).join('\n');
  return `// Generated by scripts/compile-schemas.ts from ${group.sources} (ajv standalone code, options ${JSON.stringify(group.options)}).
// Do not edit: \`npm run schemas:compile\` rewrites it; test/scripts/compile-schemas.test.ts fails when it is out of date.
// @ts-nocheck
import type { ValidateFunction } from 'ajv';
import { createRequire } from 'node:module';

// ajv's standalone code loads its small runtime helpers (string length, deep equality) with require.
const require = createRequire(import.meta.url);
${code}

export const ${group.exportName}: Readonly<Record<string, ValidateFunction | undefined>> = Object.freeze({
  __proto__: null,
${entries}
});
`;
}

/** Every generated file: path from the repository root -> text. */
export function generatedFiles(): Map<string, string> {
  return new Map(schemaGroups().map((group) => [group.file, generateGroup(group)]));
}

/** The generated files whose checked-in text differs from what the schemas give now. */
export function staleFiles(): string[] {
  const stale: string[] = [];
  for (const [file, text] of generatedFiles()) {
    let current: string | undefined;
    try {
      current = readFileSync(join(root, file), 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== text) stale.push(file);
  }
  return stale;
}

const invokedAs = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAs) {
  for (const [file, text] of generatedFiles()) {
    writeFileSync(join(root, file), text);
    console.log(`wrote ${file} (${(text.length / 1024).toFixed(0)} KiB)`);
  }
}
