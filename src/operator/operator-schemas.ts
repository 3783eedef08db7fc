// The JSON Schemas of an operator message's claims and of each action's params (compiled at build time into
// src/generated/operator-validators.ts by scripts/compile-schemas.ts, never at start).

import type { OperatorAction } from './operator-message.js';

const id = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;
const note = { type: 'string', maxLength: 500 } as const;
export const CLAIMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['iss', 'aud', 'jti', 'seq', 'iat', 'exp', 'action', 'params'],
  properties: {
    iss: id,
    aud: id,
    jti: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{8,128}$' },
    seq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    iat: { type: 'number', minimum: 0 },
    exp: { type: 'number', minimum: 0 },
    action: { enum: ['approve', 'reject', 'restore_agent', 'quarantine_agent', 'set_mode'] },
    params: { type: 'object' },
  },
} as const;
export const PARAMS_SCHEMAS: Record<OperatorAction, object> = {
  approve: { type: 'object', additionalProperties: false, required: ['approvalId', 'commandDigest'], properties: { approvalId: id, commandDigest: { type: 'string', pattern: '^[0-9a-f]{64}$' }, note } },
  reject: { type: 'object', additionalProperties: false, required: ['approvalId', 'commandDigest'], properties: { approvalId: id, commandDigest: { type: 'string', pattern: '^[0-9a-f]{64}$' }, note } },
  restore_agent: { type: 'object', additionalProperties: false, required: ['agent'], properties: { agent: id, note } },
  quarantine_agent: { type: 'object', additionalProperties: false, required: ['agent', 'reason'], properties: { agent: id, reason: { type: 'string', minLength: 1, maxLength: 500 } } },
  set_mode: { type: 'object', additionalProperties: false, required: ['device', 'mode'], properties: { device: id, mode: { enum: ['reduced', 'auto'] } } },
};
