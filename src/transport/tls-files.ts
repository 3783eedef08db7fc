// TLS material for an external broker (mqtts://), read from PEM files and checked before anything connects: a CA
// bundle to trust the broker by, and the client certificate and key the broker identifies us by
// (mosquitto's require_certificate + use_identity_as_username, AWS IoT Core's device certificates).
//
// Everything that would otherwise fail later, vaguely, inside the TLS handshake is refused here with the file and
// the reason: a missing or unreadable file, text that is not PEM, an expired or not-yet-valid certificate, an
// encrypted key (nothing could type its passphrase on an edge device), a key that does not belong to the
// certificate. TLS files next to an mqtt:// url are refused too: the connection would silently not be encrypted.

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { redactUrl } from './mqtt-transport.js';

export interface TlsFiles {
  /** PEM bundle of the CAs that may sign the broker's certificate. Default: Node's built-in root CAs. */
  readonly caFile?: string;
  /** PEM client certificate (with its chain, if any); needs keyFile. */
  readonly certFile?: string;
  /** PEM private key of the client certificate, unencrypted; needs certFile. */
  readonly keyFile?: string;
}

export interface TlsMaterial {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

// The schemes mqtt.js opens over TLS.
const TLS_SCHEMES = ['mqtts:', 'ssl:', 'wss:'];
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** True when any of the files is named. */
export function hasTlsFiles(files: TlsFiles): boolean {
  return files.caFile !== undefined || files.certFile !== undefined || files.keyFile !== undefined;
}

/**
 * Reads and checks the files for a connection to `url`. Returns nothing to pass on when no file is named (an
 * mqtts:// url then trusts Node's root CAs and presents no client certificate).
 */
export function loadTlsFiles(url: string, files: TlsFiles, nowMs: number = Date.now()): TlsMaterial {
  if (!hasTlsFiles(files)) return {};
  const scheme = schemeOf(url);
  if (scheme === undefined || !TLS_SCHEMES.includes(scheme)) {
    throw new TlsConfigError(`TLS files are given but the broker url ${redactUrl(url)} is not mqtts://: the connection would not be encrypted; use mqtts://host:8883`);
  }
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    throw new TlsConfigError(
      files.certFile === undefined
        ? `a client key (${files.keyFile ?? ''}) needs its certificate: give --tls-cert too`
        : `a client certificate (${files.certFile}) needs its private key: give --tls-key too`,
    );
  }
  const material: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  if (files.caFile !== undefined) {
    const ca = read(files.caFile, 'CA bundle');
    const certificates = certificatesIn(ca, files.caFile, 'CA bundle');
    for (const certificate of certificates) checkValidity(certificate, files.caFile, 'a CA certificate', nowMs);
    if (!certificates.some((certificate) => certificate.ca)) {
      throw new TlsConfigError(`${files.caFile}: no certificate in this CA bundle is a CA certificate (basicConstraints CA:TRUE)`);
    }
    material.ca = ca;
  }
  if (files.certFile !== undefined && files.keyFile !== undefined) {
    const cert = read(files.certFile, 'client certificate');
    const leaf = certificatesIn(cert, files.certFile, 'client certificate')[0] as X509Certificate;
    checkValidity(leaf, files.certFile, 'the client certificate', nowMs);
    const key = read(files.keyFile, 'client key');
    const privateKey = parseKey(key, files.keyFile);
    if (!leaf.checkPrivateKey(privateKey)) {
      throw new TlsConfigError(`${files.keyFile}: this key does not belong to the certificate in ${files.certFile} (subject ${leaf.subject.replaceAll('\n', ', ')})`);
    }
    material.cert = cert;
    material.key = key;
  }
  return material;
}

function schemeOf(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    return undefined;
  }
}

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a folder' : (error as Error).message;
    throw new TlsConfigError(`${path}: cannot read the ${what}: ${why}`);
  }
}

function certificatesIn(pem: Buffer, path: string, what: string): X509Certificate[] {
  const blocks = pem.toString('utf8').match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) throw new TlsConfigError(`${path}: the ${what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new TlsConfigError(`${path}: certificate ${index + 1} of the ${what} cannot be read: ${(error as Error).message}`);
    }
  });
}

function checkValidity(certificate: X509Certificate, path: string, what: string, nowMs: number): void {
  const subject = certificate.subject.replaceAll('\n', ', ');
  if (Date.parse(certificate.validTo) <= nowMs) throw new TlsConfigError(`${path}: ${what} (${subject}) expired on ${certificate.validTo}`);
  if (Date.parse(certificate.validFrom) > nowMs) throw new TlsConfigError(`${path}: ${what} (${subject}) is not valid before ${certificate.validFrom}`);
}

function parseKey(pem: Buffer, path: string): KeyObject {
  const text = pem.toString('utf8');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) {
    throw new TlsConfigError(`${path}: the client key is encrypted; an unattended interlock cannot type a passphrase, so give it an unencrypted key readable only by its user`);
  }
  try {
    return createPrivateKey(pem);
  } catch (error) {
    throw new TlsConfigError(`${path}: the client key cannot be read as a PEM private key: ${(error as Error).message}`);
  }
}
