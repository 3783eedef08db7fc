// Key files: a pair is created once and then reused; a mismatched or half pair is an error, never replaced.

import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEd25519KeyPair } from '../../src/crypto/jws.js';
import { ensureKeyPair } from '../../src/keys/key-files.js';

function folder(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'interlock-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('creates a pair with a private key only its owner can read, then reuses it', async (t) => {
  const dir = folder(t);
  const priv = join(dir, 'private', 'a.key.pem');
  const pub = join(dir, 'cell', 'keys', 'a.pub.pem');
  const first = ensureKeyPair(priv, pub);
  t.equal(first.created, true);
  t.equal(statSync(priv).mode & 0o777, 0o600, 'private key is mode 0600');
  const second = ensureKeyPair(priv, pub);
  t.equal(second.created, false, 'the second call reuses the pair (this is what every later npm start does)');
  t.ok(second.publicKey.equals(first.publicKey), 'same public key');
});

t.test('a public key that is not the private key\'s half is an error', async (t) => {
  const dir = folder(t);
  const priv = join(dir, 'a.key.pem');
  const pub = join(dir, 'a.pub.pem');
  ensureKeyPair(priv, pub);
  writeFileSync(pub, generateEd25519KeyPair().publicKeyPem);
  t.throws(() => ensureKeyPair(priv, pub), /is not the public half of/);
});

t.test('half a pair is an error and is left as it is', async (t) => {
  const dir = folder(t);
  const priv = join(dir, 'a.key.pem');
  const pub = join(dir, 'a.pub.pem');
  ensureKeyPair(priv, pub);
  rmSync(pub);
  t.throws(() => ensureKeyPair(priv, pub), /only one half of a key pair exists/);
  t.ok(statSync(priv).isFile(), 'the private key was not replaced');
});
