// The `interlock provision` command line: registered in main (a dry run and a JSON run through main against an IoT
// account in memory), usage errors are exit 2 naming the option, a missing @aws-sdk/client-iot is one line and exit
// 1, and so are a missing region, missing credentials (the real client, no network) and an unreadable cell id.

import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { runProvisionCommand, SDK_MISSING, type ProvisionCliOptions } from '../../src/cli/provision.js';
import { METRICS } from '../../src/cloud/metric-catalog.js';
import { DEMO_CELL } from '../helpers/test-cell.js';
import { FakeIotAccount, REGION } from '../cloud/provision/fake-iot-account.js';

const GROUP = 'cell-7-interlocks';

async function viaMain(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['provision', ...args], { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

async function direct(options: Partial<ProvisionCliOptions>, positionals: string[] = []): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runProvisionCommand(positionals, { cellDirectory: DEMO_CELL, region: REGION, thingGroup: GROUP, ...options }, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    usageError: (message) => (err.push(message), 2),
  });
  return { code, out, err };
}

t.test('through main: --dry-run prints the plan and writes nothing; --json prints one object', async (t) => {
  const account = new FakeIotAccount();
  t.teardown(() => account.restore());
  account.addGroup(GROUP);
  const dry = await viaMain(['--thing-group', GROUP, '--region', REGION, '--dry-run', '--max-denied', '5']);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, `provision: region ${REGION}, security profile interlock-demo-cell, thing group ${GROUP} (dry run: read calls only)`);
  t.match(dry.stdout, 'nothing written');
  t.equal(account.metrics.size, 0, 'nothing created');

  const real = await viaMain(['--thing-group', GROUP, '--region', REGION, '--profile', 'line-3', '--json']);
  t.equal(real.code, 0, real.stderr);
  const lines = real.stdout.trim().split('\n');
  t.equal(lines.length, 1, 'one JSON object');
  const report = JSON.parse(lines[0] ?? '') as { ok: boolean; securityProfile: string; applied: { outcome: string }[] };
  t.equal(report.ok, true);
  t.equal(report.securityProfile, 'line-3');
  t.equal(report.applied.filter((s) => s.outcome === 'created').length, Object.keys(METRICS).length + 2);
  t.ok(account.profiles.has('line-3'));
});

t.test('usage errors are exit 2 and name the option', async (t) => {
  const cases: [string[], string][] = [
    [['--region', REGION], 'provision needs --thing-group NAME'],
    [['--thing-group', 'a b'], '--thing-group "a b" is not 1-128 characters'],
    [['--thing-group', GROUP, '--profile', 'x/y'], '--profile "x/y" is not'],
    [['--thing-group', GROUP, '--region', 'Europe'], '--region "Europe" is not an AWS region name'],
    [['--thing-group', GROUP, '--max-denied', '1e3'], '--max-denied must be a whole number, not "1e3"'],
    [['--thing-group', GROUP, '--max-audit-backlog=-1'], '--max-audit-backlog must be a whole number, not "-1"'],
    [['--thing-group', GROUP, '--max-audit-space', '101'], '--max-audit-space must be a whole number from 0 to 100, not 101'],
    [['--thing-group', GROUP, 'extra'], 'provision takes no arguments, got extra'],
  ];
  for (const [args, message] of cases) {
    const r = await viaMain(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message, args.join(' '));
  }
});

t.test('without @aws-sdk/client-iot: one line saying where to run it, exit 1', async (t) => {
  const r = await direct({
    loadSdk: () => Promise.reject(Object.assign(new Error("Cannot find package '@aws-sdk/client-iot'"), { code: 'ERR_MODULE_NOT_FOUND' })),
  });
  t.equal(r.code, 1);
  t.same(r.err, [`interlock provision: ${SDK_MISSING}`]);
  t.same(r.out, []);
});

t.test('the default profile name needs a readable cell.yaml; otherwise it says to give --profile', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'provision-cell-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const r = await direct({ cellDirectory: empty });
  t.equal(r.code, 1);
  t.match(r.err[0], 'cannot read the cell id from');
  t.match(r.err[0], 'give --profile NAME');
});

t.test('the real client with no region, and with no credentials: one line each, exit 1, no network', async (t) => {
  const saved = { ...process.env };
  t.teardown(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });
  for (const key of Object.keys(process.env)) if (key.startsWith('AWS_')) delete process.env[key];
  const nowhere = mkdtempSync(join(tmpdir(), 'provision-aws-'));
  t.teardown(() => rmSync(nowhere, { recursive: true, force: true }));
  process.env.AWS_CONFIG_FILE = join(nowhere, 'config');
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(nowhere, 'credentials');
  process.env.AWS_EC2_METADATA_DISABLED = 'true';

  const noRegion = await direct({ region: undefined });
  t.equal(noRegion.code, 1);
  t.same(noRegion.err, ['interlock provision: no AWS region: give --region (e.g. eu-west-1) or set AWS_REGION']);

  const noCredentials = await direct({});
  t.equal(noCredentials.code, 1);
  t.equal(noCredentials.err.length, 1, noCredentials.err.join(' | '));
  t.match(noCredentials.err[0], /^interlock provision: no AWS credentials for iot:DescribeCustomMetric: the SDK's default chain/);
});
