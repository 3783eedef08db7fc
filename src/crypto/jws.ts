// Strict JWS compact serialization with Ed25519 (alg EdDSA) only: parse, verify, sign.
// It never accepts another algorithm, never falls back to an unverified payload, and never trusts header keys.

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { jsonDuplicateKeyProblem } from '../core/json-text.js';

const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** Header fields we understand. Anything else (crit, jku, jwk, x5u, ...) is refused rather than ignored. */
const ALLOWED_HEADER_KEYS = new Set(['alg', 'kid', 'typ']);

export interface JwsHeader {
  readonly alg: 'EdDSA';
  readonly kid: string;
  readonly typ?: string;
}

export interface ParsedJws {
  readonly header: JwsHeader;
  /** The payload parsed as JSON; not yet verified when returned by parseCompactJws. */
  readonly payload: unknown;
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

export type JwsProblem =
  | { readonly kind: 'malformed'; readonly message: string }
  | { readonly kind: 'algorithm'; readonly message: string };

export type JwsParseResult = { readonly ok: true; readonly jws: ParsedJws } | { readonly ok: false; readonly problem: JwsProblem };

/** Decodes base64url, refusing padding, foreign characters and non-canonical encodings. */
export function decodeBase64Url(text: string): Buffer | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  // SAFETY: Node ignores stray trailing bits; a re-encode mismatch means two encodings for one token.
  return bytes.toString('base64url') === text ? bytes : undefined;
}

function parseJsonSegment(segment: string): { ok: true; value: unknown } | { ok: false; duplicate?: string } {
  const bytes = decodeBase64Url(segment);
  if (bytes === undefined) return { ok: false };
  const text = bytes.toString('utf8');
  // SAFETY: reject bytes that are not valid UTF-8 instead of parsing their replacement characters.
  if (!Buffer.from(text, 'utf8').equals(bytes)) return { ok: false };
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return { ok: false };
  }
  // SAFETY: JSON.parse keeps the last of two equal keys, so {"alg":"none","alg":"EdDSA"} would read as EdDSA while
  // another parser reads none. A signed text must have one meaning: any repeated key, at any depth, is malformed.
  const duplicate = jsonDuplicateKeyProblem(text);
  return duplicate === undefined ? { ok: true, value } : { ok: false, duplicate };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a compact JWS. Checks structure and header only; the signature is checked by verifyJws. */
export function parseCompactJws(token: string): JwsParseResult {
  const parts = token.split('.');
  if (parts.length !== 3) return { ok: false, problem: { kind: 'malformed', message: `expected 3 dot-separated parts, got ${parts.length}` } };
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = parseJsonSegment(headerPart);
  if (!header.ok && header.duplicate !== undefined) return { ok: false, problem: { kind: 'malformed', message: `header: ${header.duplicate}` } };
  if (!header.ok || !isPlainObject(header.value)) {
    return { ok: false, problem: { kind: 'malformed', message: 'header is not base64url-encoded JSON object' } };
  }
  const h = header.value;
  if (h['alg'] !== 'EdDSA') {
    return { ok: false, problem: { kind: 'algorithm', message: `alg ${JSON.stringify(h['alg'])} is not accepted; only EdDSA` } };
  }
  const unknownKeys = Object.keys(h).filter((key) => !ALLOWED_HEADER_KEYS.has(key));
  if (unknownKeys.length > 0) {
    return { ok: false, problem: { kind: 'algorithm', message: `header carries unsupported fields: ${unknownKeys.join(', ')}` } };
  }
  if (typeof h['kid'] !== 'string' || h['kid'].length === 0 || h['kid'].length > 128) {
    return { ok: false, problem: { kind: 'malformed', message: 'header kid must be a non-empty string of at most 128 characters' } };
  }
  if (h['typ'] !== undefined && typeof h['typ'] !== 'string') {
    return { ok: false, problem: { kind: 'malformed', message: 'header typ must be a string' } };
  }
  const payload = parseJsonSegment(payloadPart);
  if (!payload.ok && payload.duplicate !== undefined) return { ok: false, problem: { kind: 'malformed', message: `payload: ${payload.duplicate}` } };
  if (!payload.ok) return { ok: false, problem: { kind: 'malformed', message: 'payload is not base64url-encoded JSON' } };
  const signature = decodeBase64Url(signaturePart);
  // Ed25519 signatures are exactly 64 bytes; anything else cannot verify and is malformed.
  if (signature === undefined || signature.length !== 64) {
    return { ok: false, problem: { kind: 'malformed', message: 'signature is not a base64url-encoded 64-byte Ed25519 signature' } };
  }
  const jwsHeader: JwsHeader = typeof h['typ'] === 'string' ? { alg: 'EdDSA', kid: h['kid'], typ: h['typ'] } : { alg: 'EdDSA', kid: h['kid'] };
  return {
    ok: true,
    jws: { header: jwsHeader, payload: payload.value, signingInput: Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'), signature },
  };
}

/** True only if the signature verifies with this Ed25519 public key. */
export function verifyJws(jws: ParsedJws, publicKey: KeyObject): boolean {
  if (publicKey.asymmetricKeyType !== 'ed25519') return false;
  try {
    return verify(null, jws.signingInput, publicKey, jws.signature);
  } catch {
    return false;
  }
}

/** Signs `payload` as a compact JWS with alg EdDSA. The payload is serialized with JSON.stringify. */
export function signCompactJws(payload: unknown, kid: string, privateKey: KeyObject, typ?: string): string {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('signCompactJws: key is not an Ed25519 private key');
  const header = typ === undefined ? { alg: 'EdDSA', kid } : { alg: 'EdDSA', kid, typ };
  const headerPart = Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
  const payloadPart = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  const signingInput = Buffer.from(`${headerPart}.${payloadPart}`, 'ascii');
  return `${headerPart}.${payloadPart}.${sign(null, signingInput, privateKey).toString('base64url')}`;
}

export interface Ed25519KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
}

export function generateEd25519KeyPair(): Ed25519KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKey,
    privateKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Parses a PEM public key and insists it is Ed25519; throws with the reason otherwise. */
export function ed25519PublicKeyFromPem(pem: string): KeyObject {
  // SAFETY: createPublicKey also accepts a private key and derives its public half; a private key in a
  // declarations folder is a leaked key, so only an SPKI "PUBLIC KEY" block is accepted.
  const blocks = pem.match(/-----BEGIN ([A-Z0-9 ]+)-----/g) ?? [];
  if (blocks.length !== 1 || blocks[0] !== '-----BEGIN PUBLIC KEY-----') {
    throw new Error(blocks.some((b) => b.includes('PRIVATE')) ? 'this is a PRIVATE key: never put a private key in declarations' : 'expected exactly one "BEGIN PUBLIC KEY" PEM block');
  }
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`key type is ${key.asymmetricKeyType ?? 'unknown'}, expected ed25519`);
  return key;
}

export function ed25519PrivateKeyFromPem(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`key type is ${key.asymmetricKeyType ?? 'unknown'}, expected ed25519`);
  return key;
}
