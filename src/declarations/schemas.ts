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
    audit: {
      type: 'object',
      description: 'The audit log: how long acknowledged records are kept, and how large the log may grow.',
      additionalProperties: false,
      properties: {
        retention: quantity('duration', 'Records the cloud has acknowledged are deleted once older than this. Without it, nothing is ever deleted.', { exclusiveMinimum: 0 }),
        maxSize: quantity('size', 'Size cap of the audit database (at least 256 KiB); at the cap with unacknowledged records only safe-state commands pass.', { exclusiveMinimum: 0 }),
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

const TIMESTAMP = {
  type: 'string',
  // RFC 3339 with an explicit offset: a validity window in local time would move with the device's time zone.
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2})$',
} as const;

const KEYS_SCHEMA = {
  type: 'array',
  minItems: 1,
  description: 'Ed25519 keys; several may be valid at once while a key is rotated.',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['kid', 'publicKeyFile'],
    properties: {
      kid: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:#-]+$', description: 'Key id: the kid header of signed messages. Unique in the cell.' },
      publicKeyFile: { type: 'string', minLength: 1, description: 'Ed25519 public key (SPKI PEM), relative to the cell folder.' },
      notBefore: { ...TIMESTAMP, description: 'The key is valid from this time (RFC 3339 with offset). Absent: since ever.' },
      notAfter: { ...TIMESTAMP, description: 'The key is valid until just before this time (RFC 3339 with offset). Absent: no end.' },
    },
  },
} as const;

export const AGENTS_SCHEMA = {
  $id: `${SCHEMA_BASE}/agents.schema.json`,
  title: 'Interlock agent and operator registry',
  description: 'agents.yaml: every AI agent allowed to send commands and every human operator, each with their own keys; revoked keys; demotion and approval settings.',
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
            description: 'AWS Agentic AI Security Scoping Matrix scope 1-4: 1 never actuates, 2 needs approval for every actuation, 3 acts in the reduced limit set, 4 in the normal set.',
          },
          keys: KEYS_SCHEMA,
        },
      },
    },
    operators: {
      type: 'array',
      description: 'Humans who approve held commands, reset trips, restore demoted agents and switch modes.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'name', 'roles', 'keys'],
        properties: {
          id: { ...identifier, description: 'The operator id; the iss claim of their signed messages; Interlock::Operator in Cedar.' },
          name: { type: 'string', minLength: 1, description: 'The person, for audit records.' },
          roles: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: { enum: ['approve', 'reset', 'restore', 'mode'] },
            description: 'approve: answer held commands; reset: send reset_trip; restore: restore demoted agents; mode: force a device into its reduced limit set.',
          },
          keys: KEYS_SCHEMA,
        },
      },
    },
    drivers: {
      type: 'array',
      description:
        "Device drivers: the keys each device's driver signs its state and outcomes with. The interlock acts on no state or outcome a declared driver key did not sign; a device without a driver here never has trusted state (only safe-state commands pass).",
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['device', 'keys'],
        properties: {
          device: { ...identifier, description: 'The device id, as declared in devices/.' },
          keys: KEYS_SCHEMA,
        },
      },
    },
    revoked: {
      type: 'array',
      description: 'Revoked keys: every message signed with one is denied, whatever its validity window says.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['kid', 'reason'],
        properties: {
          kid: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:#-]+$', description: 'A kid listed under agents, operators or drivers.' },
          reason: { type: 'string', minLength: 1, description: 'Why; shown in every deny.' },
        },
      },
    },
    trust: {
      type: 'object',
      additionalProperties: false,
      required: ['demoteAfter', 'demoteTo'],
      description: 'Automatic demotion of an agent that keeps being denied. Absent: 10 denials within 60 s quarantine the agent.',
      properties: {
        demoteAfter: {
          type: 'object',
          additionalProperties: false,
          required: ['denials', 'within'],
          properties: {
            denials: { type: 'integer', minimum: 1, description: 'Denied commands (safe-state commands do not count).' },
            within: quantity('duration', 'The sliding window.', { exclusiveMinimum: 0 }),
          },
        },
        demoteTo: { enum: ['reduced', 'quarantine'], description: 'reduced: the reduced limit set everywhere; quarantine: every actuation denied. Until an operator restores the agent.' },
      },
    },
    approvals: {
      type: 'object',
      additionalProperties: false,
      description: 'Human approval of held commands. Absent: defaults below, and no drift allowed at all.',
      properties: {
        pendingFor: quantity('duration', 'How long a held command waits for an answer (default 120 s).', { exclusiveMinimum: 0 }),
        maxAnswerTtl: quantity('duration', 'The longest validity (exp - iat) an operator\'s signed answer may have (default 60 s).', { exclusiveMinimum: 0 }),
        maxPendingPerAgentDevice: { type: 'integer', minimum: 1, description: 'Pending approvals one agent may have on one device (default 3).' },
        stateDrift: {
          type: 'array',
          description: 'Per device: how far a state field may move between the hold and the approval. Any field not listed must not change at all.',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['device', 'tolerances'],
            properties: {
              device: identifier,
              tolerances: {
                type: 'array',
                minItems: 1,
                items: {
                  type: 'object',
                  additionalProperties: false,
                  required: ['field', 'within'],
                  properties: {
                    field: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)?$', description: 'A numeric state field: positionsRad, pose.xM, measurements.discharge_pressure.' },
                    within: {
                      type: 'object',
                      additionalProperties: false,
                      required: ['value', 'unit'],
                      properties: { value: { type: 'number', minimum: 0 }, unit: { type: 'string', minLength: 1 } },
                      description: 'The tolerance, in a unit of the field\'s dimension.',
                    },
                  },
                },
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
