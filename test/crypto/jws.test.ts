// Adversarial unit tests for the strict EdDSA-only JWS codec: every way to bend the compact serialization
// (algorithm, header, encoding, UTF-8, signature) must be refused, and only the pinned Ed25519 key verifies.

import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import t from 'tap';
import {
  decodeBase64Url,
  generateEd25519KeyPair,
  parseCompactJws,
  signCompactJws,
  verifyJws,
  type JwsParseResult,
  type ParsedJws,
} from '../../src/crypto/jws.js';

const pair = generateEd25519KeyPair();
const otherPair = generateEd25519KeyPair();
const KID = 'planner-1-k1';
const CLAIMS = { iss: 'planner-1', aud: 'arm-1', action: 'stop', params: {} };

const b64 = (value: string | Buffer): string => (typeof value === 'string' ? Buffer.from(value, 'utf8') : value).toString('base64url');
const json64 = (value: unknown): string => b64(JSON.stringify(value));

/** Signs exactly the given header and payload segments (already encoded) with the Ed25519 key. */
function signSegments(headerPart: string, payloadPart: string, key = pair.privateKey): string {
  return `${headerPart}.${payloadPart}.${sign(null, Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'), key).toString('base64url')}`;
}

/** A token with an arbitrary JSON header, correctly Ed25519-signed, so only the header can be the reason for a refusal. */
function withHeader(header: unknown): string {
  return signSegments(json64(header), json64(CLAIMS));
}

/** A token with arbitrary payload bytes, correctly Ed25519-signed. */
function withPayloadBytes(bytes: Buffer): string {
  return signSegments(json64({ alg: 'EdDSA', kid: KID }), b64(bytes));
}

/** An HMAC-signed token, the classic alg-confusion forgery: the "secret" is the public key PEM everyone knows. */
function hmacToken(alg: 'HS256' | 'HS512', headerAlg: string): string {
  const headerPart = json64({ alg: headerAlg, kid: KID });
  const payloadPart = json64(CLAIMS);
  const digest = alg === 'HS256' ? 'sha256' : 'sha512';
  const mac = createHmac(digest, pair.publicKeyPem).update(`${headerPart}.${payloadPart}`).digest('base64url');
  return `${headerPart}.${payloadPart}.${mac}`;
}

/** Replaces the last character by another that decodes to the same bytes (differs only in the unused trailing bits). */
function flipTrailingBits(segment: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = segment.at(-1) as string;
  const index = alphabet.indexOf(last);
  const usedBits = segment.length % 4 === 2 ? 2 : 4; // characters carrying 2 or 4 significant bits of the last byte
  const unusedMask = (1 << (6 - usedBits)) - 1;
  const alternative = alphabet[(index & ~unusedMask) | ((index & unusedMask) ^ 1)] as string;
  return `${segment.slice(0, -1)}${alternative}`;
}

function problemKind(result: JwsParseResult): string | undefined {
  return result.ok ? undefined : result.problem.kind;
}

const good = signCompactJws(CLAIMS, KID, pair.privateKey, 'interlock-command+jws');
const [goodHeader, goodPayload, goodSignature] = good.split('.') as [string, string, string];

t.test('round trip: a token signed with the key parses and verifies', async (t) => {
  const parsed = parseCompactJws(good);
  t.ok(parsed.ok);
  if (!parsed.ok) return;
  t.same(parsed.jws.header, { alg: 'EdDSA', kid: KID, typ: 'interlock-command+jws' });
  t.same(parsed.jws.payload, CLAIMS);
  t.equal(parsed.jws.signature.length, 64);
  t.equal(verifyJws(parsed.jws, pair.publicKey), true);
  // Without typ the header has exactly alg and kid.
  const noTyp = parseCompactJws(signCompactJws(CLAIMS, KID, pair.privateKey));
  t.ok(noTyp.ok && verifyJws(noTyp.jws, pair.publicKey));
  t.same(noTyp.ok ? noTyp.jws.header : undefined, { alg: 'EdDSA', kid: KID });
});

t.test('algorithm and header attacks are refused before any signature check', async (t) => {
  const cases: { name: string; token: string; kind: 'algorithm' | 'malformed' }[] = [
    // alg none with an empty signature: the oldest JWT bypass.
    { name: 'alg none, empty signature', token: `${json64({ alg: 'none', kid: KID })}.${goodPayload}.`, kind: 'algorithm' },
    // alg none even when the token happens to carry a valid Ed25519 signature.
    { name: 'alg none, signed', token: withHeader({ alg: 'none', kid: KID }), kind: 'algorithm' },
    // HS256 whose secret is the Ed25519 public key PEM (alg confusion).
    { name: 'HS256 with the public key PEM as secret', token: hmacToken('HS256', 'HS256'), kind: 'algorithm' },
    { name: 'HS512 with the public key PEM as secret', token: hmacToken('HS512', 'HS512'), kind: 'algorithm' },
    { name: 'alg missing', token: withHeader({ kid: KID }), kind: 'algorithm' },
    { name: 'alg null', token: withHeader({ alg: null, kid: KID }), kind: 'algorithm' },
    { name: 'alg lower-case eddsa', token: withHeader({ alg: 'eddsa', kid: KID }), kind: 'algorithm' },
    { name: 'alg Ed25519 (not the JOSE name)', token: withHeader({ alg: 'Ed25519', kid: KID }), kind: 'algorithm' },
    { name: 'alg ES256', token: withHeader({ alg: 'ES256', kid: KID }), kind: 'algorithm' },
    { name: 'alg RS256', token: withHeader({ alg: 'RS256', kid: KID }), kind: 'algorithm' },
    { name: 'alg as array', token: withHeader({ alg: ['EdDSA'], kid: KID }), kind: 'algorithm' },
    // crit would oblige us to understand an extension; refused rather than ignored.
    { name: 'crit header', token: withHeader({ alg: 'EdDSA', kid: KID, crit: ['exp'], exp: 1 }), kind: 'algorithm' },
    // jwk/jku/x5u/x5c would let the token supply its own verification key.
    { name: 'embedded jwk', token: withHeader({ alg: 'EdDSA', kid: KID, jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AA' } }), kind: 'algorithm' },
    { name: 'jku URL', token: withHeader({ alg: 'EdDSA', kid: KID, jku: 'https://attacker.example/keys' }), kind: 'algorithm' },
    { name: 'x5u URL', token: withHeader({ alg: 'EdDSA', kid: KID, x5u: 'https://attacker.example/cert' }), kind: 'algorithm' },
    { name: 'x5c chain', token: withHeader({ alg: 'EdDSA', kid: KID, x5c: ['MIIB'] }), kind: 'algorithm' },
    { name: 'b64 false (RFC 7797 unencoded payload)', token: withHeader({ alg: 'EdDSA', kid: KID, b64: false }), kind: 'algorithm' },
    { name: '__proto__ key in the header', token: signSegments(b64(`{"alg":"EdDSA","kid":"${KID}","__proto__":{"x":1}}`), goodPayload), kind: 'algorithm' },
    { name: 'kid missing', token: withHeader({ alg: 'EdDSA' }), kind: 'malformed' },
    { name: 'kid empty', token: withHeader({ alg: 'EdDSA', kid: '' }), kind: 'malformed' },
    { name: 'kid a number', token: withHeader({ alg: 'EdDSA', kid: 1 }), kind: 'malformed' },
    { name: 'kid of 129 characters', token: withHeader({ alg: 'EdDSA', kid: 'k'.repeat(129) }), kind: 'malformed' },
    { name: 'typ not a string', token: withHeader({ alg: 'EdDSA', kid: KID, typ: 1 }), kind: 'malformed' },
    { name: 'header a JSON array', token: signSegments(json64(['EdDSA', KID]), goodPayload), kind: 'malformed' },
    { name: 'header JSON null', token: signSegments(json64(null), goodPayload), kind: 'malformed' },
    { name: 'header a JSON string', token: signSegments(json64('EdDSA'), goodPayload), kind: 'malformed' },
    { name: 'header not JSON', token: signSegments(b64('alg=EdDSA'), goodPayload), kind: 'malformed' },
  ];
  for (const c of cases) t.equal(problemKind(parseCompactJws(c.token)), c.kind, c.name);
  t.ok(parseCompactJws(withHeader({ alg: 'EdDSA', kid: 'k'.repeat(128) })).ok, 'kid of exactly 128 characters is accepted');
});

t.test('an HMAC "signature" in a token that claims EdDSA never verifies (alg confusion through the header)', async (t) => {
  // HS512 output is 64 bytes, the length of an Ed25519 signature, so it passes the structural checks.
  const forged = hmacToken('HS512', 'EdDSA');
  const parsed = parseCompactJws(forged);
  t.ok(parsed.ok, 'structurally a valid EdDSA token');
  if (parsed.ok) t.equal(verifyJws(parsed.jws, pair.publicKey), false);
});

t.test('structural and encoding attacks are malformed', async (t) => {
  // The non-canonical variants really decode to the same bytes in a lenient decoder: only canonicality refuses them.
  t.same(Buffer.from(flipTrailingBits(goodSignature), 'base64url'), Buffer.from(goodSignature, 'base64url'), 'fixture: same signature bytes');
  t.same(Buffer.from(flipTrailingBits(goodPayload), 'base64url'), Buffer.from(goodPayload, 'base64url'), 'fixture: same payload bytes');
  const sig63 = b64(Buffer.alloc(63, 1));
  const sig65 = b64(Buffer.alloc(65, 1));
  const cases: { name: string; token: string }[] = [
    { name: '2 parts', token: `${goodHeader}.${goodPayload}` },
    { name: '4 parts', token: `${good}.${goodSignature}` },
    { name: '5 parts (JWE shape)', token: `${goodHeader}.${goodPayload}.${goodSignature}.AAAA.AAAA` },
    { name: 'empty string', token: '' },
    { name: 'only dots', token: '..' },
    { name: 'JWS JSON serialization instead of compact', token: JSON.stringify({ protected: goodHeader, payload: goodPayload, signature: goodSignature }) },
    // Padding is not part of base64url in JWS (RFC 7515 section 2).
    { name: 'padding = on the signature', token: `${goodHeader}.${goodPayload}.${goodSignature}==` },
    { name: 'padding = on the header', token: `${b64('{"alg":"EdDSA","kid":"a"}')}=.${goodPayload}.${goodSignature}` },
    // Standard base64 alphabet (+ /) and other foreign characters.
    { name: '+ in the signature', token: `${goodHeader}.${goodPayload}.+${goodSignature.slice(1)}` },
    { name: '/ in the signature', token: `${goodHeader}.${goodPayload}./${goodSignature.slice(1)}` },
    { name: 'space inside the payload', token: `${goodHeader}.${goodPayload.slice(0, 4)} ${goodPayload.slice(4)}.${goodSignature}` },
    { name: 'non-ASCII letter in the header', token: `${goodHeader.slice(0, -1)}é.${goodPayload}.${goodSignature}` },
    { name: 'NUL in the signature', token: `${goodHeader}.${goodPayload}.${goodSignature}\u0000` },
    // A segment of length 4n+1 cannot be produced by any encoder.
    { name: 'impossible length 4n+1', token: `${goodHeader}.${goodPayload}.${goodSignature}A` },
    // Two encodings of the same bytes would give one command two digests.
    { name: 'non-canonical trailing bits in the signature', token: `${goodHeader}.${goodPayload}.${flipTrailingBits(goodSignature)}` },
    { name: 'non-canonical trailing bits in the payload', token: `${goodHeader}.${flipTrailingBits(goodPayload)}.${goodSignature}` },
    { name: 'signature of 63 bytes', token: `${goodHeader}.${goodPayload}.${sig63}` },
    { name: 'signature of 65 bytes', token: `${goodHeader}.${goodPayload}.${sig65}` },
    { name: 'signature of 32 bytes (HS256 size)', token: hmacToken('HS256', 'EdDSA') },
    { name: 'empty signature', token: `${goodHeader}.${goodPayload}.` },
    { name: 'empty payload', token: signSegments(goodHeader, '') },
    { name: 'payload not JSON', token: withPayloadBytes(Buffer.from('iss=planner-1')) },
    // Invalid UTF-8 must not be decoded to U+FFFD and parsed.
    { name: 'payload with a lone 0xFF byte', token: withPayloadBytes(Buffer.concat([Buffer.from('{"iss":"'), Buffer.from([0xff]), Buffer.from('"}')])) },
    { name: 'payload with an overlong encoding of "/"', token: withPayloadBytes(Buffer.concat([Buffer.from('{"iss":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])) },
    { name: 'payload with a CESU-8 surrogate', token: withPayloadBytes(Buffer.concat([Buffer.from('{"iss":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])) },
    { name: 'payload with a truncated multi-byte sequence', token: withPayloadBytes(Buffer.concat([Buffer.from('{"iss":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')])) },
    { name: 'payload starting with a UTF-8 BOM', token: withPayloadBytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(CLAIMS))])) },
  ];
  for (const c of cases) t.equal(problemKind(parseCompactJws(c.token)), 'malformed', c.name);
});

t.test('decodeBase64Url accepts only canonical unpadded base64url', async (t) => {
  const cases: { name: string; text: string; bytes: number[] | undefined }[] = [
    { name: 'empty', text: '', bytes: [] },
    { name: 'one byte', text: 'AA', bytes: [0] },
    { name: 'two bytes', text: '__8', bytes: [0xff, 0xff] },
    { name: 'url alphabet - and _', text: '-_-_', bytes: [0xfb, 0xff, 0xbf] },
    { name: 'padding', text: 'AA==', bytes: undefined },
    { name: 'non-canonical AB (trailing bits set)', text: 'AB', bytes: undefined },
    { name: 'non-canonical __9', text: '__9', bytes: undefined },
    { name: 'length 4n+1', text: 'AAAAA', bytes: undefined },
    { name: 'standard alphabet +', text: '+/8', bytes: undefined },
    { name: 'whitespace', text: 'AA AA', bytes: undefined },
    { name: 'newline', text: 'AAAA\n', bytes: undefined },
  ];
  for (const c of cases) {
    const decoded = decodeBase64Url(c.text);
    t.same(decoded === undefined ? undefined : [...decoded], c.bytes, c.name);
  }
});

t.test('signature verification fails closed', async (t) => {
  const parsed = parseCompactJws(good);
  if (!parsed.ok) throw new Error('fixture does not parse');
  // The original signature over a changed payload (aud switched to another device).
  const tamperedPayload = json64({ ...CLAIMS, aud: 'arm-2' });
  const tampered = parseCompactJws(`${goodHeader}.${tamperedPayload}.${goodSignature}`);
  t.ok(tampered.ok, 'structurally valid');
  if (tampered.ok) t.equal(verifyJws(tampered.jws, pair.publicKey), false, 'tampered payload with original signature');
  // The original signature with a changed header (typ removed).
  const headerSwap = parseCompactJws(`${json64({ alg: 'EdDSA', kid: KID })}.${goodPayload}.${goodSignature}`);
  if (headerSwap.ok) t.equal(verifyJws(headerSwap.jws, pair.publicKey), false, 'tampered header with original signature');
  // Every single-bit flip of the signature is caught.
  let flipsAccepted = 0;
  for (let bit = 0; bit < 512; bit += 1) {
    const signature = Buffer.from(parsed.jws.signature);
    signature[bit >> 3] = (signature[bit >> 3] as number) ^ (1 << (bit & 7));
    if (verifyJws({ ...parsed.jws, signature }, pair.publicKey)) flipsAccepted += 1;
  }
  t.equal(flipsAccepted, 0, 'no single-bit flip of the signature verifies');
  t.equal(verifyJws(parsed.jws, otherPair.publicKey), false, 'another Ed25519 key');
  // Keys of other types never verify, whatever the signature.
  const x25519 = generateKeyPairSync('x25519').publicKey;
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  t.equal(verifyJws(parsed.jws, x25519), false, 'X25519 key');
  t.equal(verifyJws(parsed.jws, rsa), false, 'RSA key');
  t.equal(verifyJws(parsed.jws, ec), false, 'EC P-256 key');
  // A zero signature and a signature of the right length but for other bytes.
  const zero: ParsedJws = { ...parsed.jws, signature: Buffer.alloc(64) };
  t.equal(verifyJws(zero, pair.publicKey), false, 'all-zero signature');
  const wrongLength: ParsedJws = { ...parsed.jws, signature: Buffer.alloc(63) };
  t.equal(verifyJws(wrongLength, pair.publicKey), false, 'short signature passed directly to verify');
});

t.test('signCompactJws refuses keys that are not Ed25519 private keys', async (t) => {
  t.throws(() => signCompactJws(CLAIMS, KID, generateKeyPairSync('x25519').privateKey));
  t.throws(() => signCompactJws(CLAIMS, KID, pair.publicKey));
});
