// loadTlsFiles and the CLI's --tls-* options: every bad file is refused before anything connects, naming the file
// and the reason. Certificates come from the shipped make-certs.sh; openssl makes the odd ones.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../src/cli/main.js';
import { hasTlsFiles, loadTlsFiles, TlsConfigError } from '../../src/transport/tls-files.js';
import { REPO_ROOT } from '../helpers/test-cell.js';

const dir = mkdtempSync(join(tmpdir(), 'interlock-tls-files-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const certs = join(dir, 'certs');
const other = join(dir, 'other');
execFileSync(join(REPO_ROOT, 'greengrass', 'standalone', 'make-certs.sh'), [certs, 'localhost', 'interlock', 'planner-1'], { stdio: 'pipe' });
execFileSync(join(REPO_ROOT, 'greengrass', 'standalone', 'make-certs.sh'), [other, 'localhost', 'interlock'], { stdio: 'pipe' });
const ca = join(certs, 'ca.crt');
const cert = join(certs, 'interlock.crt');
const key = join(certs, 'interlock.key');
const url = 'mqtts://broker.cell.local:8883';

t.test('good files load: the CA bundle, the certificate and its key', async (t) => {
  const material = loadTlsFiles(url, { caFile: ca, certFile: cert, keyFile: key });
  t.match(material.ca?.toString(), /BEGIN CERTIFICATE/);
  t.match(material.cert?.toString(), /BEGIN CERTIFICATE/);
  t.match(material.key?.toString(), /PRIVATE KEY/);
  t.same(loadTlsFiles(url, {}), {}, 'no files: nothing (Node root CAs, no client certificate)');
  t.same(Object.keys(loadTlsFiles(url, { caFile: ca })), ['ca'], 'a CA alone is fine (a broker that needs no client certificate)');
  t.equal(hasTlsFiles({}), false);
  t.equal(hasTlsFiles({ keyFile: key }), true);
  for (const scheme of ['ssl', 'wss']) t.ok(loadTlsFiles(`${scheme}://h:1`, { caFile: ca }).ca, `${scheme}:// is TLS too`);
});

t.test('refusals name the file and the reason', async (t) => {
  const refuse = (files: Parameters<typeof loadTlsFiles>[1], pattern: RegExp, what: string, nowMs?: number, at = url): void => {
    t.throws(() => loadTlsFiles(at, files, nowMs), pattern, what);
  };
  refuse({ caFile: ca }, /is not mqtts:\/\/: the connection would not be encrypted/, 'TLS files with mqtt://', undefined, 'mqtt://user:pw@h:1883');
  t.notMatch(refusalOf(() => loadTlsFiles('mqtt://user:s3cret@h:1883', { caFile: ca })), /s3cret/, 'the password is not repeated');
  refuse({ caFile: ca }, /not mqtts/, 'not a url at all', undefined, 'nonsense');
  refuse({ certFile: cert }, /needs its private key: give --tls-key/, 'a certificate without its key');
  refuse({ keyFile: key }, /needs its certificate: give --tls-cert/, 'a key without its certificate');
  refuse({ caFile: join(dir, 'missing.crt') }, /missing\.crt: cannot read the CA bundle: no such file/, 'a missing CA file');
  refuse({ caFile: dir }, /cannot read the CA bundle: is a folder/, 'a folder');
  const text = join(dir, 'not-pem.crt');
  writeFileSync(text, 'hello');
  refuse({ caFile: text }, /not-pem\.crt: the CA bundle holds no PEM certificate/, 'not PEM');
  const garbled = join(dir, 'garbled.crt');
  writeFileSync(garbled, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  refuse({ caFile: garbled }, /garbled\.crt: certificate 1 of the CA bundle cannot be read/, 'a garbled certificate');
  refuse({ caFile: cert }, /interlock\.crt: no certificate in this CA bundle is a CA certificate/, 'a leaf certificate given as the CA');
  refuse({ certFile: cert, keyFile: join(other, 'interlock.key') }, /other\/interlock\.key: this key does not belong to the certificate in .*interlock\.crt \(subject CN=interlock\)/, "another certificate's key");
  refuse({ certFile: cert, keyFile: cert }, /interlock\.crt: the client key cannot be read as a PEM private key/, 'a certificate given as the key');
  refuse({ certFile: cert, keyFile: key }, /interlock\.crt: the client certificate \(CN=interlock\) expired on/, 'an expired certificate', Date.now() + 900 * 86_400_000);
  refuse({ certFile: cert, keyFile: key }, /is not valid before/, 'a certificate not valid yet', Date.now() - 86_400_000);
  refuse({ caFile: ca }, /a CA certificate \(CN=interlock cell CA\) expired on/, 'an expired CA', Date.now() + 4_000 * 86_400_000);
  const encrypted = join(dir, 'encrypted.key');
  execFileSync('openssl', ['pkey', '-in', key, '-aes256', '-passout', 'pass:secret', '-out', encrypted], { stdio: 'pipe' });
  refuse({ certFile: cert, keyFile: encrypted }, /encrypted\.key: the client key is encrypted/, 'an encrypted key');
  t.throws(() => loadTlsFiles(url, { certFile: cert }), TlsConfigError, 'a TlsConfigError');
});

function refusalOf(load: () => unknown): string {
  try {
    load();
    return 'loaded';
  } catch (error) {
    return (error as Error).message;
  }
}

t.test('interlock run and the operator commands refuse bad TLS options as usage errors, before connecting', async (t) => {
  let stderr = '';
  const output = { stdout: () => undefined, stderr: (text: string) => void (stderr += text) };
  const run = async (args: string[]): Promise<number> => {
    stderr = '';
    return main(args, output);
  };
  const state = join(dir, 'state');
  mkdirSync(state);
  t.equal(await run(['run', '--state-dir', state, '--tls-ca', ca]), 2, 'TLS files without --broker');
  t.match(stderr, /--tls-ca, --tls-cert and --tls-key are for an external broker: give --broker mqtts:\/\/host:8883/);
  t.equal(await run(['run', '--state-dir', state, '--broker', 'mqtt://127.0.0.1:1883', '--tls-ca', ca]), 2, 'TLS files with mqtt://');
  t.match(stderr, /not mqtts:\/\//);
  t.equal(await run(['run', '--state-dir', state, '--broker', url, '--tls-cert', cert]), 2, 'a certificate without its key');
  t.match(stderr, /needs its private key/);
  t.equal(await run(['approvals', '--state-dir', state, '--broker', url, '--tls-cert', cert, '--tls-key', join(other, 'interlock.key')]), 2, 'an operator command with a mismatched key');
  t.match(stderr, /does not belong to the certificate/);
  t.equal(await run(['demo', '--tls-ca', ca]), 2, 'a command that would ignore them');
  t.match(stderr, /--tls-ca, --tls-cert and --tls-key apply to run and the operator commands, not to demo/);
});
