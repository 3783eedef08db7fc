// The validators compiled at build time (src/generated/*, scripts/compile-schemas.ts) are up to date with their
// schemas, and answer exactly as ajv compiling the same schema with the same options at run time: the same verdict
// and the same errors (the messages a bad declaration or command gets are built from them).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import t from 'tap';
import { parse } from 'yaml';
import { schemaGroups, staleFiles } from '../../scripts/compile-schemas.js';
import { DECLARATION_VALIDATORS } from '../../src/generated/declaration-validators.js';
import { ENVELOPE_VALIDATORS } from '../../src/generated/envelope-validators.js';
import { OPERATOR_VALIDATORS } from '../../src/generated/operator-validators.js';
import { STATE_VALIDATORS } from '../../src/generated/state-validators.js';
import { DEMO_CELL } from '../helpers/test-cell.js';

const GENERATED = {
  DECLARATION_VALIDATORS,
  ENVELOPE_VALIDATORS,
  OPERATOR_VALIDATORS,
  STATE_VALIDATORS,
} as Record<string, Readonly<Record<string, ((data: unknown) => boolean) & { errors?: unknown } | undefined>>>;

t.test('the generated validators are up to date (npm run schemas:compile rewrites them)', async (t) => {
  t.same(staleFiles(), [], 'no generated file differs from what its schemas give now');
});

t.test('every schema of every group has its generated validator, and only those', async (t) => {
  for (const group of schemaGroups()) {
    const record = GENERATED[group.exportName];
    t.ok(record, `${group.exportName} is exported`);
    t.same(Object.keys(record ?? {}).sort(), [...group.schemas.keys()].sort(), `${group.exportName}: one validator per schema`);
  }
});

/** Values to validate: good ones from the demo cell, and broken copies of them. */
function samples(key: string): unknown[] {
  const file = key === 'cell' ? 'cell.yaml' : key === 'agents' ? 'agents.yaml' : key === 'device' ? 'devices/arm-1.yaml' : undefined;
  const base: unknown[] = file === undefined ? [{}] : [parse(readFileSync(join(DEMO_CELL, file), 'utf8'))];
  const broken = base.flatMap((value) => (typeof value === 'object' && value !== null ? [{ ...value, unexpected: 1 }, Object.fromEntries(Object.entries(value).slice(1))] : []));
  return [...base, ...broken, null, 'text', 42, [], { params: {}, action: 'Bad Action', seq: 0 }];
}

t.test('generated and run-time compiled validators give the same verdicts and errors', async (t) => {
  for (const group of schemaGroups()) {
    const ajv = new Ajv(group.options);
    for (const [key, schema] of group.schemas) {
      const compiled = ajv.compile(schema);
      const generated = GENERATED[group.exportName]?.[key];
      if (generated === undefined) {
        t.fail(`${group.exportName}.${key} is missing`);
        continue;
      }
      for (const value of samples(key)) {
        const expected = compiled(value);
        t.equal(generated(value), expected, `${group.exportName}.${key}: same verdict for ${JSON.stringify(value).slice(0, 60)}`);
        t.same(generated.errors ?? null, compiled.errors ?? null, `${group.exportName}.${key}: same errors`);
      }
    }
  }
});
