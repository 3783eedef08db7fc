// `interlock run`'s cloud and metrics options: every bad combination is refused with one usage line (exit 2) before
// anything starts, the 300 s floor is refused, not clamped, and the options are refused on other commands.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main, parseDuration } from '../../src/cli/main.js';
import { readCloudOptions } from '../../src/cli/cloud-options.js';
import { silentLogger } from '../../src/core/log.js';
import { REPO_ROOT } from '../helpers/test-cell.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { loadTlsFiles } from '../../src/transport/tls-files.js';
import { inbox } from '../transport/transport-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'cloud-options-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
execFileSync(join(REPO_ROOT, 'greengrass', 'standalone', 'make-certs.sh'), [dir, 'localhost', 'cell-7', 'iot-core'], { stdio: 'pipe' });
const CERT = join(dir, 'cell-7.crt');
const KEY = join(dir, 'cell-7.key');
const CA = join(dir, 'ca.crt');
const GOOD = ['--cloud-url', 'mqtts://example-ats.iot.eu-west-1.amazonaws.com:8883', '--thing-name', 'cell-7', '--cloud-cert', CERT, '--cloud-key', KEY, '--cloud-ca', CA];

async function usage(args: string[]): Promise<{ code: number; line: string }> {
  let stderr = '';
  const code = await main(args, { stdout: () => undefined, stderr: (text) => (stderr += text) });
  return { code, line: stderr.split('\n')[0] ?? '' };
}

t.test('bad combinations: one usage line each, exit 2, nothing started', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--thing-name', 'cell-7'], /^interlock: --thing-name need a cloud link: give --cloud-url mqtts:\/\/ENDPOINT:8883 and --thing-name NAME$/],
    [['--no-defender', '--metrics-topic', 'm'], /--no-defender.*--metrics-topic need a cloud link|--metrics-topic, --no-defender need a cloud link/],
    [['--cloud-url', 'mqtt://endpoint:1883', '--thing-name', 'cell-7'], /--cloud-url must be mqtts:\/\/ENDPOINT:8883 \(AWS IoT Core takes TLS only\)/],
    [['--cloud-url', 'mqtts://endpoint:8883'], /--cloud-url needs --thing-name NAME/],
    [['--cloud-url', 'mqtts://endpoint:8883', '--thing-name', 'cell 7!'], /--thing-name: thing name "cell 7!" is not 1-128 characters/],
    [['--cloud-url', 'mqtts://endpoint:8883', '--thing-name', 'cell-7', '--cloud-cert', CERT], /needs --cloud-cert FILE and --cloud-key FILE/],
    [['--cloud-url', 'mqtts://endpoint:8883', '--thing-name', 'cell-7', '--cloud-cert', CERT, '--cloud-key', join(dir, 'missing.key')], /^interlock: cloud link: .*missing\.key: cannot read the client key: no such file$/],
    [[...GOOD, '--metrics-interval', '299s'], /metrics interval 299 s is under the minimum of 300 s/],
    [[...GOOD, '--metrics-interval', '1m'], /metrics interval 60 s is under the minimum of 300 s/],
    [[...GOOD, '--metrics-interval', 'often'], /--metrics-interval: cannot read "often"/],
    [[...GOOD, '--no-defender'], /metrics go nowhere.*\(--no-defender needs --metrics-topic TOPIC\)$/],
    [[...GOOD, '--metrics-topic', 'interlock/+/metrics'], /metrics topic "interlock\/\+\/metrics": wildcards are not allowed/],
    [[...GOOD, '--audit-forward-rate', '0'], /--audit-forward-rate must be a whole number of records per second >= 1, not "0"$/],
    [[...GOOD, '--audit-forward-rate', '2.5'], /--audit-forward-rate must be a whole number/],
    [[...GOOD, '--audit-forward-rate', '10', '--no-audit-forwarding'], /--audit-forward-rate and --no-audit-forwarding contradict each other/],
    [['--no-audit-forwarding'], /--no-audit-forwarding need a cloud link/],
  ];
  for (const [args, expected] of cases) {
    const { code, line } = await usage(['run', '--state-dir', join(dir, 'state'), ...args]);
    t.equal(code, 2, `exit 2 for ${args.join(' ')}`);
    t.match(line, expected, args.join(' '));
  }
  const other = await usage(['validate', '--thing-name', 'cell-7']);
  t.equal(other.code, 2);
  t.match(other.line, /the cloud and metrics options apply to run, not to validate/);
});

t.test('good options: a cloud link over MQTT with the thing as client id, metrics to Device Defender and the topic', async (t) => {
  const read = readCloudOptions(
    { 'cloud-url': 'mqtts://endpoint:8883', 'thing-name': 'cell-7', 'cloud-cert': CERT, 'cloud-key': KEY, 'metrics-interval': '15m', 'metrics-topic': 'fleet/{thing}/metrics' },
    parseDuration,
    silentLogger,
  );
  if (!read.ok) return t.fail(read.problem);
  t.equal(read.cloud?.thingName, 'cell-7');
  t.equal(read.cloud?.transport.name, 'mqtt');
  t.same(read.metrics, { intervalMs: 900_000, defender: true, topic: 'fleet/{thing}/metrics' });
  t.same(read.auditForwarding, { enabled: true }, 'audit forwarding on with a cloud link, at the default rate');
  const slow = readCloudOptions({ 'cloud-url': 'mqtts://endpoint:8883', 'thing-name': 'cell-7', 'cloud-cert': CERT, 'cloud-key': KEY, 'audit-forward-rate': '50' }, parseDuration, silentLogger);
  t.match(slow, { ok: true, auditForwarding: { enabled: true, recordsPerSecond: 50 } });
  const off = readCloudOptions({ 'cloud-url': 'mqtts://endpoint:8883', 'thing-name': 'cell-7', 'cloud-cert': CERT, 'cloud-key': KEY, 'no-audit-forwarding': true }, parseDuration, silentLogger);
  t.match(off, { ok: true, auditForwarding: { enabled: false } });
  const none = readCloudOptions({}, parseDuration, silentLogger);
  t.same(none, { ok: true }, 'no option: nothing leaves the device');
  const plainOnly = readCloudOptions({ 'cloud-url': 'mqtts://endpoint:8883', 'thing-name': 'cell-7', 'cloud-cert': CERT, 'cloud-key': KEY, 'no-defender': true, 'metrics-topic': 'm/{thing}' }, parseDuration, silentLogger);
  t.match(plainOnly, { ok: true, metrics: { defender: false, topic: 'm/{thing}', intervalMs: 300_000 } });
});

t.test("the link the options build connects over TLS with the thing's certificate (the broker requires one) and publishes", async (t) => {
  // A TLS broker that requires a client certificate and names each client by it, standing in for IoT Core.
  const broker = await startMosquitto({
    config: ['listener {port} 127.0.0.1', `cafile ${CA}`, `certfile ${join(dir, 'broker.crt')}`, `keyfile ${join(dir, 'broker.key')}`, 'require_certificate true', 'use_identity_as_username true', 'allow_anonymous false', 'persistence false'],
  });
  t.teardown(() => broker.stop());
  const url = `mqtts://localhost:${broker.port}`;
  const cloudSide = new MqttTransport({ url, clientId: 'iot-core-side', ...loadTlsFiles(url, { caFile: CA, certFile: join(dir, 'iot-core.crt'), keyFile: join(dir, 'iot-core.key') }), log: () => undefined });
  await cloudSide.start();
  t.teardown(() => cloudSide.stop());
  const box = inbox();
  await cloudSide.subscribe('$aws/things/+/defender/metrics/json', box.handler);
  const read = readCloudOptions({ 'cloud-url': url, 'thing-name': 'cell-7', 'cloud-cert': CERT, 'cloud-key': KEY, 'cloud-ca': CA }, parseDuration, silentLogger);
  if (!read.ok || read.cloud === undefined) return t.fail(read.ok ? 'no link' : read.problem);
  const link = read.cloud.transport;
  t.teardown(() => link.stop());
  await link.start();
  await link.publish('$aws/things/cell-7/defender/metrics/json', '{"probe":true}', { qos: 1 });
  await box.until((m) => m.length === 1, 'the publish at the broker');
  t.same(box.payloads(), ['{"probe":true}']);
});
