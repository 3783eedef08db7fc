// JSON Schemas for the declaration files, the single source for both the loader (ajv, strict) and the published
// copies in safety-bounds/schema/ that editors use (regenerate with `npm run schemas`; a test keeps them equal).

import { DEVICE_KIND_NAMES, KINDS } from '../core/kinds/index.js';
import { IDENTIFIER_SCHEMA, quantitySchema, zoneSchema } from '../core/kinds/kind-spec.js';

const SCHEMA_BASE = 'https://schemas.physical-ai-interlock.dev/declarations/v1';

const identifier = IDENTIFIER_SCHEMA;
const quantity = quantitySchema;

const RATE_LIMIT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['commands', 'per'],
  properties: {
    commands: { type: 'integer', minimum: 1, description: 'How many commands are accepted per window.' },
    per: quantity('duration', 'The window.', { exclusiveMinimum: 0 }),
  },
} as const;

export const CELL_SCHEMA = {
  $id: `${SCHEMA_BASE}/cell.schema.json`,
  title: 'Interlock cell',
  description: 'cell.yaml: the cell\'s identity and the limits every command in it must meet.',
  type: 'object',
  additionalProperties: false,
  required: ['cell', 'commands'],
  properties: {
    cell: { ...identifier, description: 'The cell id; appears in Cedar as Interlock::Cell.' },
    description: { type: 'string' },
    commands: {
      type: 'object',
      additionalProperties: false,
      required: ['maxTtl', 'clockSkew', 'maxTokenSize'],
      properties: {
        maxTtl: quantity('duration', 'Longest allowed exp - iat of a command.', { exclusiveMinimum: 0 }),
        clockSkew: quantity('duration', 'How far in the future an iat may lie (agent clocks drift).', { minimum: 0 }),
        maxTokenSize: quantity('size', 'Largest signed command accepted.', { exclusiveMinimum: 0 }),
        ratePerAgent: { ...RATE_LIMIT_SCHEMA, description: 'Commands one agent may send per window, over all devices.' },
      },
    },
    zones: {
      type: 'array',
      maxItems: 256,
      description: 'Named regions of the cell frame (metres, z up), used by modes (person in zone) and shared zones.',
      items: zoneSchema('A named region of the cell.'),
    },
    sharedZones: {
      type: 'array',
      description: 'Zones that at most one of the listed devices may occupy at a time.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['zone', 'devices'],
        properties: { zone: identifier, devices: { type: 'array', minItems: 2, items: identifier } },
      },
    },
    people: {
      type: 'object',
      description: 'Where the positions of people in the cell come from (the people field of these devices\' state).',
      additionalProperties: false,
      required: ['sources', 'maxAge'],
      properties: {
        sources: { type: 'array', items: identifier },
        maxAge: quantity('duration', 'Older people reports do not count; with none fresh, people are unknown.', { exclusiveMinimum: 0 }),
      },
    },
  },
} as const;

/** Properties every device file has, whatever its kind. */
const COMMON_DEVICE_PROPERTIES = {
  id: { ...identifier, description: 'The device id; also its topic segment and the commands\' aud.' },
  description: { type: 'string' },
  maxStateAge: quantity('duration', 'Older live state than this is stale: stateful checks deny.', { exclusiveMinimum: 0 }),
  rateLimit: { ...RATE_LIMIT_SCHEMA, description: 'Commands this device accepts per window, from all agents together.' },
  modes: {
    type: 'object',
    description: 'When the reduced limit set applies. Without this section: for agents of scope 3 or lower.',
    additionalProperties: false,
    properties: {
      reducedWhen: {
        type: 'object',
        additionalProperties: false,
        properties: {
          personInZones: { type: 'array', items: identifier, description: 'Cell zone ids: a person inside any of them selects reduced.' },
          autonomyScopeAtMost: { type: 'integer', minimum: 0, maximum: 4, description: 'Agents of this scope or lower get reduced (0: none).' },
        },
      },
      holdReduced: quantity('duration', 'Hysteresis: reduced stays in force this long after its triggers clear.', { minimum: 0 }),
    },
  },
} as const;

export const DEVICE_SCHEMA = {
  $id: `${SCHEMA_BASE}/device.schema.json`,
  title: 'Interlock device',
  description: `devices/*.yaml: one device, its kind (${DEVICE_KIND_NAMES.join(', ')}) and its physical safety bounds.`,
  type: 'object',
  required: ['kind'],
  properties: { kind: { enum: DEVICE_KIND_NAMES } },
  discriminator: { propertyName: 'kind' },
  oneOf: DEVICE_KIND_NAMES.map((kind) => ({
    type: 'object',
    additionalProperties: false,
    required: ['id', 'kind', 'maxStateAge', ...KINDS[kind].deviceRequired],
    properties: { ...COMMON_DEVICE_PROPERTIES, kind: { const: kind }, ...KINDS[kind].deviceProperties },
  })),
} as const;

export const AGENTS_SCHEMA = {
  $id: `${SCHEMA_BASE}/agents.schema.json`,
  title: 'Interlock agent registry',
  description: 'agents.yaml: every AI agent allowed to send commands, with its own keys.',
  type: 'object',
  additionalProperties: false,
  required: ['agents'],
  properties: {
    agents: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'owner', 'autonomyScope', 'keys'],
        properties: {
          id: { ...identifier, description: 'The agent id; the iss claim of its commands; Interlock::Agent in Cedar.' },
          owner: { type: 'string', minLength: 1, description: 'The accountable human or team.' },
          description: { type: 'string' },
          autonomyScope: {
            type: 'integer',
            minimum: 1,
            maximum: 4,
            description: 'AWS Agentic AI Security Scoping Matrix scope 1-4; passed to Cedar as principal.autonomyScope.',
          },
          keys: {
            type: 'array',
            minItems: 1,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['kid', 'publicKeyFile'],
              properties: {
                kid: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:#-]+$' },
                publicKeyFile: { type: 'string', minLength: 1, description: 'Ed25519 public key (SPKI PEM), relative to the cell folder.' },
              },
            },
          },
        },
      },
    },
  },
} as const;

export const DECLARATION_SCHEMAS = {
  'cell.schema.json': CELL_SCHEMA,
  'device.schema.json': DEVICE_SCHEMA,
  'agents.schema.json': AGENTS_SCHEMA,
} as const;

/** The text of a published schema file: draft-07 (what ajv validates by default), pretty-printed. */
export function renderPublishedSchema(schema: object): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2)}\n`;
}
