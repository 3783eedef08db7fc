// Key files on disk: private keys (PKCS#8 PEM, mode 0600) in a private folder outside the declarations, public
// keys (SPKI PEM) where the cell's agents.yaml points. It never writes a private key into a cell folder.

import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { ed25519PrivateKeyFromPem, ed25519PublicKeyFromPem, generateEd25519KeyPair } from '../crypto/jws.js';

export interface KeyPairFiles {
  readonly privateKeyPath: string;
  readonly publicKeyPath: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** True when this call created the pair. */
  readonly created: boolean;
}

/**
 * Returns the key pair stored at the two paths, creating both when neither exists. One without the other is
 * an error: silently replacing half a pair would lock an agent out or, worse, mismatch it.
 */
export function ensureKeyPair(privateKeyPath: string, publicKeyPath: string): KeyPairFiles {
  const hasPrivate = existsSync(privateKeyPath);
  const hasPublic = existsSync(publicKeyPath);
  if (hasPrivate && hasPublic) {
    const privateKey = ed25519PrivateKeyFromPem(readFileSync(privateKeyPath, 'utf8'));
    const publicKey = ed25519PublicKeyFromPem(readFileSync(publicKeyPath, 'utf8'));
    // createPublicKey of a private KeyObject gives its public half; compare the encoded public keys.
    if (!publicKeyBytesEqual(publicKey, createPublicKey(privateKey))) {
      throw new Error(`${publicKeyPath} is not the public half of ${privateKeyPath}`);
    }
    return { privateKeyPath, publicKeyPath, privateKey, publicKey, created: false };
  }
  if (hasPrivate !== hasPublic) {
    throw new Error(`only one half of a key pair exists (${hasPrivate ? privateKeyPath : publicKeyPath}); remove it or restore the other half`);
  }
  const pair = generateEd25519KeyPair();
  mkdirSync(dirname(privateKeyPath), { recursive: true, mode: 0o700 });
  mkdirSync(dirname(publicKeyPath), { recursive: true });
  writeFileSync(privateKeyPath, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  chmodSync(privateKeyPath, 0o600);
  writeFileSync(publicKeyPath, pair.publicKeyPem, { flag: 'wx' });
  return { privateKeyPath, publicKeyPath, privateKey: pair.privateKey, publicKey: pair.publicKey, created: true };
}

function publicKeyBytesEqual(a: KeyObject, b: KeyObject): boolean {
  return a.export({ format: 'der', type: 'spki' }).equals(b.export({ format: 'der', type: 'spki' }));
}

export function privateKeyPathFor(keyDirectory: string, kid: string): string {
  return join(keyDirectory, `${kid}.key.pem`);
}
