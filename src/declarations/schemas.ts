// JSON Schemas for the declaration files, the single source for both the loader (ajv, strict) and the published
// copies in safety-bounds/schema/ that editors use (regenerate with `npm run schemas`; a test keeps them equal).

import { DEVICE_KIND_NAMES } from '../core/device-kinds.js';
import { unitsOf, type Dimension } from './units.js';

const SCHEMA_BASE = 'https://schemas.physical-ai-interlock.dev/declarations/v1';

const identifier = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;

function quantity(dimension: Dimension, description: string, valueBounds: Record<string, number> = {}): Record<string, unknown> {
  return {
    type: 'object',
    description,
    additionalProperties: false,
    required: ['value', 'unit'],
    properties: {
      value: { type: 'number', ...valueBounds },
      unit: { enum: unitsOf(dimension), description: `A ${dimension} unit: ${unitsOf(dimension).join(', ')}.` },
    },
  };
}

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
      },
    },
  },
} as const;

export const DEVICE_SCHEMA = {
  $id: `${SCHEMA_BASE}/device.schema.json`,
  title: 'Interlock device',
  description: 'devices/*.yaml: one device, its kind and its physical safety bounds.',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'kind', 'maxStateAge', 'joints'],
  properties: {
    id: { ...identifier, description: 'The device id; also its topic segment and the commands\' aud.' },
    kind: { enum: DEVICE_KIND_NAMES },
    description: { type: 'string' },
    maxStateAge: quantity('duration', 'Older live state than this is stale: stateful checks deny.', { exclusiveMinimum: 0 }),
    joints: {
      type: 'array',
      minItems: 1,
      maxItems: 16,
      description: 'The arm\'s joints, base first; command targets are given in this order.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'position', 'velocity'],
        properties: {
          name: identifier,
          position: {
            type: 'object',
            description: 'Allowed joint position range (inclusive).',
            additionalProperties: false,
            required: ['min', 'max', 'unit'],
            properties: {
              min: { type: 'number' },
              max: { type: 'number' },
              unit: { enum: unitsOf('angle') },
            },
          },
          velocity: {
            type: 'object',
            description: 'Largest allowed joint speed (inclusive).',
            additionalProperties: false,
            required: ['max', 'unit'],
            properties: {
              max: { type: 'number', exclusiveMinimum: 0 },
              unit: { enum: unitsOf('angularVelocity') },
            },
          },
        },
      },
    },
  },
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
