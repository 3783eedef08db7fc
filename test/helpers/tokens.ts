// Hostile tokens for tests: a compact JWS signed over exact header and payload texts, for JSON that JSON.stringify
// would never write (1e400, -0, duplicate or __proto__ keys, odd headers). Well-formed tokens come from the
// product's own signers (CommandSigner, signOperatorMessage, signReleasedCommand, signCompactJws).

import { sign, type KeyObject } from 'node:crypto';
import { INTERLOCK_KID, RELEASED_COMMAND_TYPE } from '../../src/dispatch/released-command.js';

/** `header.payload.signature`, the Ed25519 signature made with `privateKey` over the two texts as given. */
export function signRawJws(headerText: string, payloadText: string, privateKey: KeyObject): string {
  const header = Buffer.from(headerText, 'utf8').toString('base64url');
  const payload = Buffer.from(payloadText, 'utf8').toString('base64url');
  return `${header}.${payload}.${sign(null, Buffer.from(`${header}.${payload}`), privateKey).toString('base64url')}`;
}

/** A release (as the interlock signs them) over an exact payload text, signed with `privateKey`. */
export function signRawRelease(payloadText: string, privateKey: KeyObject): string {
  return signRawJws(JSON.stringify({ alg: 'EdDSA', kid: INTERLOCK_KID, typ: RELEASED_COMMAND_TYPE }), payloadText, privateKey);
}
