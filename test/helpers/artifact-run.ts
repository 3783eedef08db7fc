// Runs a packaged, laid-out artifact through what a deployment does to it, against the test nucleus: the recipe's
// Startup script as the nucleus starts it, RUNNING, a release and a denial over IPC (a simulated conveyor is another
// component), a deployment whose configuration the component refuses (it fails, the configuration stays), SIGTERM as
// the nucleus sends it, then a start on the shipped demo cell (no agent keys): ERRORED and exit 1.
// An aarch64 artifact runs under qemu-user: its Startup script's node is started through qemu-aarch64-static
// (no binfmt_misc here), everything else as for amd64.

import type { ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { openSqliteAuditLog } from '../../src/audit/sqlite-audit-log.js';
import { ed25519PublicKeyFromPem } from '../../src/crypto/jws.js';
import { topicSet } from '../../src/transport/topics.js';
import { TestNucleus, type AccessControl } from './greengrass-nucleus.js';
import { AGENT_ACCESS, CONVEYOR, DRIVER_ACCESS, startIpcConveyor } from './ipc-conveyor.js';
import { interpolateLifecycle, startLifecycle, terminateLikeNucleus, type ComponentUser, type NucleusPaths } from './nucleus-layout.js';
import { COMPONENT_NAME } from './recipe.js';
import type { TestCell } from './test-cell.js';
import { waitFor } from './wait-for.js';

export interface ArtifactRun {
  readonly arch: 'amd64' | 'aarch64';
  /** The recipe's Startup script, as built (recipe variables not yet replaced). */
  readonly startup: string;
  readonly paths: NucleusPaths;
  readonly owner: ComponentUser;
  readonly cell: TestCell;
  /** The recipe's DefaultConfiguration (accessControl included), as the nucleus keeps it: not interpolated. */
  readonly defaults: Record<string, unknown>;
  /** The deployment's configuration merge (docs/deploying.md's, with this test's cell folder and digest). */
  readonly merge: Record<string, unknown>;
}

export interface Started {
  readonly child: ChildProcess;
  readonly log: () => string;
  readonly exited: Promise<number | null>;
}

export function startArtifact(run: Pick<ArtifactRun, 'arch' | 'startup' | 'paths' | 'owner'>, nucleus: TestNucleus): Started {
  let script = interpolateLifecycle(run.startup, run.paths);
  if (run.arch === 'aarch64') {
    const node = `${run.paths.decompressedPath}/interlock-aarch64/runtime/bin/node`;
    if (!script.startsWith(`exec ${node} `)) throw new Error(`unexpected aarch64 Startup script: ${script}`);
    script = script.replace(`exec ${node} `, `exec qemu-aarch64-static -L /usr/aarch64-linux-gnu ${node} `);
  }
  // The work folder is <root>/work/<component>: the nucleus gives the socket relative to it when the absolute path
  // would be too long, and the component must cope with either.
  const child = startLifecycle(script, run.paths, run.owner, nucleus.environment(COMPONENT_NAME, { socketPathForComponent: '../../ipc.socket' }));
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, log: () => log, exited };
}

type Decision = { verdict: string; reasons: { code: string }[] };

export async function exerciseArtifact(t: Test, run: ArtifactRun): Promise<void> {
  const { accessControl, ...defaults } = run.defaults as { accessControl: AccessControl } & Record<string, unknown>;
  const configuration: Record<string, unknown> = { ...defaults, ...run.merge };
  const nucleus = new TestNucleus(join(run.paths.root, 'ipc.socket'), [
    { name: COMPONENT_NAME, accessControl, configuration },
    { name: 'conveyor-driver', accessControl: DRIVER_ACCESS },
    { name: 'agent', accessControl: AGENT_ACCESS },
  ]);
  await nucleus.start();
  t.teardown(() => nucleus.stop());
  chmodSync(nucleus.socketPath, 0o666);

  const startedAt = Date.now();
  const component = startArtifact(run, nucleus);
  t.teardown(() => {
    if (component.child.exitCode === null) terminateLikeNucleus(component.child);
  });
  await waitFor(() => (nucleus.states.get(COMPONENT_NAME) ?? []).length > 0 || component.child.exitCode !== null, 'the component to report its state', run.arch === 'aarch64' ? 300_000 : 60_000);
  t.same(nucleus.states.get(COMPONENT_NAME), ['RUNNING'], 'RUNNING', { componentLog: component.log() });
  t.comment(`${run.arch}: start to RUNNING ${Date.now() - startedAt} ms`);
  t.notMatch(component.log(), new RegExp(nucleus.tokens.get(COMPONENT_NAME) as string), 'SVCUID is never logged');

  // The conveyor (another component) verifies releases with the interlock's key from the work folder's state/.
  const publicKey = ed25519PublicKeyFromPem(readFileSync(join(run.paths.workPath, 'state', 'keys', 'interlock.pub.pem'), 'utf8'));
  const { conveyor, agentBus } = await startIpcConveyor(t, nucleus, run.cell, publicKey);
  const topics = topicSet();
  const decisions: Decision[] = [];
  await agentBus.subscribe(topics.decision(CONVEYOR), (_topic, payload) => decisions.push(JSON.parse(payload.toString()) as Decision));
  const planner = run.cell.signer('planner-1');
  const send = async (params: Record<string, unknown>): Promise<Decision> => {
    const before = decisions.length;
    await agentBus.publish(topics.command(CONVEYOR), planner.sign(CONVEYOR, 'set_speed', params));
    await waitFor(() => decisions.length > before, 'a decision from the packaged component', 60_000);
    return decisions[before] as Decision;
  };
  // The conveyor's first state report must have reached the interlock before a move can be judged against it.
  let allowed = await send({ speedMPerS: 0.1, rampMPerS2: 0.2 });
  const deadline = Date.now() + 120_000;
  while (allowed.verdict !== 'allow' && allowed.reasons.every((r) => r.code === 'BOUNDS_STATE_MISSING') && Date.now() < deadline) {
    allowed = await send({ speedMPerS: 0.1, rampMPerS2: 0.2 });
  }
  t.equal(allowed.verdict, 'allow', JSON.stringify(allowed.reasons));
  // A release carries its command's expiry (the signer's 2 s). Under qemu on a loaded machine it can reach the conveyor
  // after that, and the conveyor rightly refuses it as expired: that is the safety design working, so send a fresh one.
  await waitFor(() => conveyor.received.length >= 1, 'the release at the conveyor', 60_000);
  while (conveyor.executed.length === 0 && conveyor.received.every((r) => r.problem === 'expired') && Date.now() < deadline) {
    t.comment(`${run.arch}: the release reached the conveyor after its expiry (a loaded machine); sending a fresh command`);
    const before = conveyor.received.length;
    const again = await send({ speedMPerS: 0.1, rampMPerS2: 0.2 });
    if (again.verdict !== 'allow') break;
    await waitFor(() => conveyor.received.length > before, 'the fresh release at the conveyor', 60_000);
  }
  await waitFor(() => conveyor.executed.length === 1, 'the conveyor to execute the release', 60_000).catch((error: unknown) => {
    t.fail(`${error instanceof Error ? error.message : String(error)}; the conveyor received: ${JSON.stringify(conveyor.received.map((r) => r.problem ?? 'accepted'))}`);
  });
  const receivedBefore = conveyor.received.length;
  const denied = await send({ speedMPerS: 2, rampMPerS2: 0.2 });
  t.equal(denied.verdict, 'deny');
  t.ok(denied.reasons.some((r) => r.code.startsWith('BOUNDS_')), JSON.stringify(denied.reasons));
  t.equal(conveyor.received.length, receivedBefore, 'the denied command never reached the conveyor');

  const refused = await nucleus.deploy(COMPONENT_NAME, { ...configuration, heartbeatPeriodMs: 5 });
  t.equal(refused.status, 'FAILED', 'a deployment with a configuration the component refuses fails');
  t.match(refused.message, /configuration \/heartbeatPeriodMs/, 'with the reason');
  t.equal(nucleus.configuration(COMPONENT_NAME)['heartbeatPeriodMs'], configuration['heartbeatPeriodMs'], 'the nucleus keeps the running configuration');

  const stopAt = Date.now();
  terminateLikeNucleus(component.child);
  t.equal(await component.exited, 0, 'a clean exit on SIGTERM', { componentLog: component.log().slice(-4000) });
  t.comment(`${run.arch}: SIGTERM to exit ${Date.now() - stopAt} ms (the nucleus kills after 5 s)`);
  // The recipe's defaults as they are: an empty cellDirectory is the demo cell shipped in the artifact, which has no
  // agent keys: ERRORED, the missing file named, exit 1.
  nucleus.setConfiguration(COMPONENT_NAME, defaults);
  const demo = startArtifact(run, nucleus);
  const code = await demo.exited;
  t.equal(code, 1, 'exits with 1', { componentLog: demo.log().slice(-4000) });
  t.same(nucleus.states.get(COMPONENT_NAME), ['RUNNING', 'ERRORED']);
  t.match(demo.log(), /agents\.yaml.*keys\/planner-1-k1\.pub\.pem/, 'names the missing public key file');

  // Read last: the component's own user owns state/, and this process (root) must not leave files of its own there.
  const audit = openSqliteAuditLog(join(run.paths.workPath, 'state', 'audit.db'), { ballastBytes: 0 });
  t.teardown(() => audit.close());
  const events = audit.read(1, 10_000).map((r) => r.detail?.['event']);
  t.equal(events.at(-1), 'interlock-stopped', 'the stop is the last record');
  t.ok(events.includes('configuration-update-rejected'), 'the refused deployment is audited');
  t.match(audit.verify(), { ok: true });
}
