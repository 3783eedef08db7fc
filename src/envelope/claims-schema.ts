// The JSON Schema of a command token's claims: the envelope stage validates with it (compiled at build time into
// src/generated/envelope-validators.ts by scripts/compile-schemas.ts, never at start).

const identifier = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } as const;

export const CLAIMS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['iss', 'aud', 'jti', 'seq', 'iat', 'exp', 'action', 'params'],
  properties: {
    iss: identifier,
    aud: identifier,
    jti: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{8,128}$' },
    seq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    iat: { type: 'number', minimum: 0 },
    exp: { type: 'number', minimum: 0 },
    action: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
    params: { type: 'object' },
    trace: {
      type: 'object',
      additionalProperties: false,
      properties: {
        session: { type: 'string', minLength: 1, maxLength: 128 },
        plan: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      },
    },
  },
} as const;
