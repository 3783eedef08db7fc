// Hostile tokens for tests: a compact JWS signed over exact header and payload texts, for JSON that JSON.stringify
// would never write (1e400, -0, duplicate or __proto__ keys, odd headers). Well-formed tokens come from the
// product's own signers (CommandSigner, signOperatorMessage, signReleasedCommand, signCompactJws).

import { sign, type KeyObject } from 'node:crypto';

/** `header.payload.signature`, the Ed25519 signature made with `privateKey` over the two texts as given. */
export function signRawJws(headerText: string, payloadText: string, privateKey: KeyObject): string {
  const header = Buffer.from(headerText, 'utf8').toString('base64url');
  const payload = Buffer.from(payloadText, 'utf8').toString('base64url');
  return `${header}.${payload}.${sign(null, Buffer.from(`${header}.${payload}`), privateKey).toString('base64url')}`;
}
