// The JSON Schema of each kind's state message (compiled at build time into src/generated/state-validators.ts by
// scripts/compile-schemas.ts, never at start).

import { kindSpec, type DeviceKind } from '../core/kinds/index.js';

/** Fields any device's state message may carry, whatever its kind. */
export const COMMON_STATE_PROPERTIES = {
  /** People the device's sensors see, in the cell frame: [x, y] or [x, y, z] in metres. */
  people: {
    type: 'array',
    maxItems: 64,
    items: { type: 'array', minItems: 2, maxItems: 3, items: { type: 'number' } },
  },
  /** The device's own clock; informational only (freshness uses the interlock's receive time). */
  timeMs: { type: 'number' },
} as const;

/** The JSON Schema of a kind's state message: its own fields plus the common ones, nothing else. */
export function stateSchemaOf(kind: DeviceKind): Record<string, unknown> {
  const spec = kindSpec(kind);
  return {
    type: 'object',
    additionalProperties: false,
    required: [...spec.stateRequired],
    properties: { ...COMMON_STATE_PROPERTIES, ...spec.stateProperties },
  };
}
