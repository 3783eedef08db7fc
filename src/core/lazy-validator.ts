// A JSON Schema validator compiled on its first use, for the schemas off the start path (a Device Defender report,
// the Greengrass component's configuration, the offline checker's input lines). ajv's compiler is loaded then as
// well, synchronously (it is CommonJS), so a start that never needs these schemas never loads it. The schemas on
// the start and command paths are compiled at build time instead (scripts/compile-schemas.ts).

import { createRequire } from 'node:module';
import type { Ajv as AjvInstance, Options, ValidateFunction } from 'ajv';

const require = createRequire(import.meta.url);

export function lazyValidator<T = unknown>(schema: object, options: Options, setup?: (ajv: AjvInstance) => void): () => ValidateFunction<T> {
  let compiled: ValidateFunction<T> | undefined;
  return () => {
    if (compiled === undefined) {
      const { Ajv } = require('ajv') as typeof import('ajv');
      const ajv = new Ajv(options);
      setup?.(ajv);
      compiled = ajv.compile<T>(schema);
    }
    return compiled;
  };
}
