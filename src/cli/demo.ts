// `npm start`: the interlock with an embedded broker, four simulated machines and a scripted demo agent, all on this
// machine, with a live view of every decision. Agent keys are created on first run in a git-ignored folder.

import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { signOperatorMessage, type OperatorParams } from '../operator/operator-message.js';
import { DemoAgent, DEMO_STEPS, rogueSigner, type DemoScene, type StepOutcome } from '../../simulator/demo-agent.js';
import { SimulatedArm } from '../../simulator/arm-driver.js';
import { SimulatedConveyor } from '../../simulator/conveyor-driver.js';
import { SimulatedMobileRobot } from '../../simulator/mobile-robot-driver.js';
import { SimulatedProcessUnit } from '../../simulator/process-unit-driver.js';
import { ScriptedPeople } from '../../simulator/scripted-people.js';
import { CommandSigner } from '../agent-sdk/command-signer.js';
import { startRuntime, type Runtime } from '../app/compose.js';
import type { Logger } from '../core/log.js';
import { ensureCellAgentKeys, ensureCellDriverKeys, type DriverPrivateKey } from '../keys/cell-agent-keys.js';
import { brokerLogin } from '../transport/broker-clients.js';
import { MqttTransport } from '../transport/mqtt-transport.js';
import { topicSet } from '../transport/topics.js';
import { describeReason, formatDecision } from './live-view.js';

export interface DemoOptions {
  readonly cellDirectory: string;
  readonly stateDirectory: string;
  /** Stop after this long; undefined runs until Ctrl-C. */
  readonly durationMs?: number;
  /** Stop after this many rounds of the script; undefined runs until Ctrl-C or the duration. */
  readonly rounds?: number;
  /** Pause between steps, so the arm visibly moves. */
  readonly stepPauseMs: number;
  readonly colour: boolean;
  readonly out: (line: string) => void;
  readonly log: Logger;
  /** Resolves when the user asks to stop (Ctrl-C). */
  readonly interrupted: Promise<void>;
  /** How long the demo waits for a decision, a scene or an operator's answer before it counts a surprise. Default 3000. */
  readonly waitMs?: number;
}

export interface DemoResult {
  readonly outcomes: readonly StepOutcome[];
  /** Steps whose verdict differed from what the script expects: should be none. */
  readonly surprises: number;
  /** Commands the arm executed that the audit log does not show as allowed: must be none. */
  readonly unauthorisedExecutions: number;
  readonly chainOk: boolean;
}

const DEVICE = 'arm-1';
/** The cell's people source in the demo (cell.yaml, people): the AMR's scanners. */
const PEOPLE_SOURCE = 'amr-1';
const INDENT = ' '.repeat(14);

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { out, log } = options;
  const waitMs = options.waitMs ?? 3000;
  const cellDirectory = resolve(options.cellDirectory);
  const agentKeys = ensureCellAgentKeys(cellDirectory, join(resolve(options.stateDirectory), 'agent-keys'));
  // The simulated drivers sign their reports with the keys agents.yaml declares for them (created on first run).
  const driverKeys = ensureCellDriverKeys(cellDirectory, join(resolve(options.stateDirectory), 'driver-keys'));
  const driverKey = (deviceId: string): DriverPrivateKey => {
    const key = driverKeys.get(deviceId);
    if (key === undefined) throw new Error(`the demo cell's agents.yaml declares no driver key for ${deviceId}`);
    return key;
  };
  const runtime: Runtime = await startRuntime({ cellDirectory, stateDirectory: options.stateDirectory, log: log.child('runtime') });
  const topics = topicSet();
  const busLog = (name: string) => (message: string) => log.child(name).info(message);
  // One connection per identity, each with its own broker password (the embedded broker gives a driver only its own
  // device's topics and an agent only the command topics); with an external broker, no password here.
  const bus = (identity: string, name: string): MqttTransport => {
    const login = runtime.brokerClientsPath === undefined ? { clientId: `${identity}-${name}` } : brokerLogin(runtime.brokerClientsPath, identity, name);
    return new MqttTransport({ url: runtime.brokerUrl, ...login, log: busLog(`${identity}:${name}`) });
  };
  // The demo's operator: approves held commands and restores demoted agents with signed operator messages.
  const operatorKey = [...agentKeys.values()].find((k) => runtime.cell.declarations.operators.get(k.agentId)?.roles.includes('approve') === true);
  const armBus = bus(DEVICE, 'sim');
  const agentBus = bus('planner-1', 'demo-agent');
  // A compromised agent host: it holds a real agent login, and the broker still refuses it the actuator topics.
  const attackerBus = bus('trainee-1', 'attacker');
  const operatorBus = operatorKey === undefined ? undefined : bus(operatorKey.agentId, 'demo-operator');
  const device = runtime.cell.declarations.devices.get(DEVICE);
  if (device?.kind !== 'robot_arm') throw new Error(`the demo cell must declare ${DEVICE} as a robot_arm`);
  const arm = new SimulatedArm({
    deviceId: DEVICE,
    transport: armBus,
    interlockPublicKey: runtime.interlockPublicKey,
    driverKey: driverKey(DEVICE),
    jointCount: device.joints.length,
    initialPositionsRad: [0, -1.571, 1.571, -1.571, -1.571, 0],
  });
  const conveyorBus = bus('conveyor-1', 'sim');
  const amrBus = bus(PEOPLE_SOURCE, 'sim');
  const pumpBus = bus('pump-1', 'sim');
  const conveyor = new SimulatedConveyor({ deviceId: 'conveyor-1', transport: conveyorBus, interlockPublicKey: runtime.interlockPublicKey, driverKey: driverKey('conveyor-1'), defaultRampMPerS2: 0.25,
    permissives: { guardClosed: true, estopReleased: true, downstreamReady: true },
  });
  // Three people walk at the far end of the hall; the AMR's scanners report them (the cell's people source). The
  // script places one more person by name when a step is about someone near a machine.
  const people = new ScriptedPeople({ room: { minXM: 10, maxXM: 14, minYM: 2, maxYM: 6 }, count: 3, seed: 7, startMs: Date.now() });
  const amr = new SimulatedMobileRobot({
    deviceId: PEOPLE_SOURCE,
    transport: amrBus,
    interlockPublicKey: runtime.interlockPublicKey,
    driverKey: driverKey(PEOPLE_SOURCE),
    initialPose: { xM: 3, yM: -0.5, yawRad: 0 },
    people,
  });
  const pump = new SimulatedProcessUnit({ deviceId: 'pump-1', transport: pumpBus, interlockPublicKey: runtime.interlockPublicKey, driverKey: driverKey('pump-1') });
  const labels = new Map<string, string>();
  const outcomes: StepOutcome[] = [];
  let surprises = 0;
  runtime.interlock.onDecision((event) => out(formatDecision(event, { colour: options.colour, labelOf: (d) => labels.get(d) })));
  // The command the script last had allowed (so released) to each device, so "at rest" can mean "done with it".
  const lastAllowed = new Map<string, string>();
  const { declarations } = runtime.cell;
  // After a person leaves, the person-watching devices stay reduced this long (their modes' holdReduced).
  const holdReducedMs = Math.max(0, ...[...declarations.devices.values()].filter((d) => d.modes.reducedWhenPersonInZones.length > 0).map((d) => d.modes.holdReducedForMs));
  const reportsPersonAt = ([x, y]: readonly [number, number]): boolean =>
    runtime.interlock.states.latest(PEOPLE_SOURCE)?.people?.some((p) => p[0] === x && p[1] === y) === true;
  const placed = new Map<string, readonly [number, number]>();
  let stop = false;
  /** Polls until `condition` holds; false when it did not within `timeoutMs` or the demo is stopping. */
  const waitUntil = async (condition: () => boolean, timeoutMs: number): Promise<boolean> => {
    const end = Date.now() + timeoutMs;
    while (!condition()) {
      if (stop || Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  };
  /** Sets up one scene and waits until the interlock has seen it; false (and a line saying so) when it did not. */
  const setScene = async (scene: DemoScene): Promise<boolean> => {
    switch (scene.kind) {
      case 'person-enters': {
        people.place(scene.name, scene.atM);
        placed.set(scene.name, scene.atM);
        out(`${INDENT}(scene: ${scene.name} steps up to (${scene.atM.join(', ')}); ${PEOPLE_SOURCE}'s scanners report them)`);
        if (await waitUntil(() => reportsPersonAt(scene.atM), waitMs)) return true;
        out(`${INDENT}(scene: the interlock did not see ${scene.name} within ${waitMs} ms)`);
        return false;
      }
      case 'person-leaves': {
        const at = placed.get(scene.name);
        people.remove(scene.name);
        placed.delete(scene.name);
        out(`${INDENT}(scene: ${scene.name} walks away; reduced limits hold for ${holdReducedMs} ms after the last report of them)`);
        if (at !== undefined && !(await waitUntil(() => runtime.interlock.states.latest(PEOPLE_SOURCE)?.people !== undefined && !reportsPersonAt(at), waitMs))) {
          out(`${INDENT}(scene: ${PEOPLE_SOURCE} still reports ${scene.name} after ${waitMs} ms)`);
          return false;
        }
        // The last report with them in it was received before now: once the hold has run from now, it is over.
        const goneAtMs = Date.now();
        return waitUntil(() => Date.now() - goneAtMs > holdReducedMs + 50, holdReducedMs + 5000);
      }
      case 'device-at-rest': {
        // At rest as the bounds stage judges it (not moving, every reported speed 0), and done with the last command
        // released to it: a state sent before that release arrived says "at rest" too.
        const atRest = (): boolean => {
          const state = runtime.interlock.states.latest(scene.deviceId)?.state;
          if (state === undefined || !('moving' in state) || state.moving !== false) return false;
          if ('velocitiesRadPerS' in state && !(state.velocitiesRadPerS ?? []).every((v) => v === 0)) return false;
          if ('velocity' in state && !(state.velocity.linearMPerS === 0 && state.velocity.angularRadPerS === 0)) return false;
          const expected = lastAllowed.get(scene.deviceId);
          return expected === undefined || ('lastCommandId' in state && state.lastCommandId === expected);
        };
        if (await waitUntil(atRest, 15_000)) return true;
        out(`${INDENT}(scene: ${scene.deviceId} did not come to rest within 15 s)`);
        return false;
      }
      case 'belt-at-speed': {
        const atSpeed = (): boolean => {
          const state = runtime.interlock.states.latest(scene.deviceId)?.state;
          return state?.kind === 'conveyor' && Math.abs(state.speedMPerS - scene.speedMPerS) < 1e-9;
        };
        if (await waitUntil(atSpeed, 15_000)) return true;
        out(`${INDENT}(scene: ${scene.deviceId} did not reach ${scene.speedMPerS} m/s within 15 s)`);
        return false;
      }
    }
  };

  try {
    await armBus.start();
    await agentBus.start();
    await attackerBus.start();
    await operatorBus?.start();
    await conveyorBus.start();
    await amrBus.start();
    await pumpBus.start();
    await arm.start();
    await conveyor.start();
    await amr.start();
    await pump.start();
    const signers = new Map<string, CommandSigner>([...agentKeys.values()].map((k) => [k.agentId, new CommandSigner({ agentId: k.agentId, kid: k.kid, privateKey: k.privateKey, ttlMs: 4000 })]));
    signers.set('rogue-1', rogueSigner());
    const operatorResults = new Map<string, Record<string, unknown>>();
    await operatorBus?.subscribe(topics.operatorResult, (_topic, payload) => {
      try {
        const result = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
        if (typeof result['messageDigest'] === 'string') operatorResults.set(result['messageDigest'], result);
      } catch {
        // not an answer the demo can read; ignored
      }
    });
    let operatorSeq = 0;
    const operatorSays = async (request: OperatorParams): Promise<Record<string, unknown> | undefined> => {
      if (operatorKey === undefined || operatorBus === undefined) return undefined;
      operatorSeq = Math.max(operatorSeq + 1, Date.now());
      const token = signOperatorMessage({ operatorId: operatorKey.agentId, kid: operatorKey.kid, privateKey: operatorKey.privateKey, cellId: declarations.cellId, request, nowMs: Date.now(), ttlMs: 10_000, seq: operatorSeq });
      const digest = createHash('sha256').update(token, 'utf8').digest('hex');
      await operatorBus.publish(topics.operator, token, { qos: 1 });
      await waitUntil(() => operatorResults.has(digest), waitMs);
      return operatorResults.get(digest);
    };
    const approveHeld = async (commandDigest: string): Promise<void> => {
      const pending = runtime.interlock.approvals.list().find((p) => p.commandDigest === commandDigest);
      if (pending === undefined) return;
      out(`${INDENT}(pending approval ${pending.id} published on ${topics.approvalPending(pending.id)}; \`interlock approve ${pending.id}\` answers it)`);
      const answer = await operatorSays({ action: 'approve', approvalId: pending.id, commandDigest, note: 'demo operator: belt checked' });
      out(`${INDENT}(operator ${operatorKey?.agentId ?? '?'} approves with a signed message: ${answer?.['released'] === true ? 're-checked against the current state and released' : `nothing released: ${String(answer?.['problem'] ?? 'no answer')}`})`);
    };
    // The script sends unsafe commands on purpose; when that gets an agent demoted, the demo's operator shows the
    // restore an integrator would do after looking into it.
    const restoreDemoted = async (): Promise<void> => {
      for (const demoted of runtime.interlock.trust.all()) {
        out(`${INDENT}(trust: ${demoted.agentId} ${demoted.demotedTo === 'quarantine' ? 'quarantined' : 'demoted to reduced limits'} after ${demoted.reason}; every actuation is denied until an operator restores it)`);
        const answer = await operatorSays({ action: 'restore_agent', agent: demoted.agentId, note: 'demo: the denials were scripted' });
        out(`${INDENT}(operator ${operatorKey?.agentId ?? '?'} restores ${demoted.agentId} with a signed message: ${answer?.['ok'] === true ? 'restored' : `refused: ${String(answer?.['problem'] ?? 'no answer')}`})`);
      }
    };
    const agent = new DemoAgent({ transport: agentBus, attackerTransport: attackerBus, deviceIds: ['amr-1', 'conveyor-1', 'pump-1'], topics, deviceId: DEVICE, signers, decisionTimeoutMs: waitMs });
    await agent.start();
    await waitFor(() => ['arm-1', PEOPLE_SOURCE, 'conveyor-1', 'pump-1'].every((id) => runtime.interlock.states.latest(id) !== undefined), waitMs);
    // Until the people source's first report, people were unknown, which is a reduced trigger like any other: the
    // hold runs from that report, so a person who stood at the table just before a restart is still covered.
    const peopleKnownAtMs = Date.now();

    out(`Interlock up: cell ${runtime.cell.declarations.cellId}, declarations ${runtime.cell.declarations.digest.slice(0, 12)}, broker ${runtime.brokerUrl}`);
    out(`Audit log: ${runtime.audit.path}. Simulated ${DEVICE} connected over MQTT. Demo agents: ${[...signers.keys()].join(', ')}.`);
    out(`Operator CLI, from another terminal: interlock approvals --broker ${runtime.brokerUrl} --state-dir ${options.stateDirectory} --cell ${options.cellDirectory}`);
    const limits = [
      ...(options.durationMs === undefined ? [] : [`${options.durationMs / 1000} s`]),
      ...(options.rounds === undefined ? [] : [`${options.rounds} round(s)`]),
    ];
    out(limits.length === 0 ? 'Running the scenario until Ctrl-C.\n' : `Running for ${limits.join(' or ')} (Ctrl-C stops sooner).\n`);
    out(`${INDENT}(start-up: people were unknown until ${PEOPLE_SOURCE}'s first report; reduced limits hold for ${holdReducedMs} ms after it)`);
    await waitUntil(() => Date.now() - peopleKnownAtMs > holdReducedMs + 50, holdReducedMs + 5000);

    const deadline = options.durationMs === undefined ? Infinity : Date.now() + options.durationMs;
    void options.interrupted.then(() => {
      stop = true;
    });
    const pause = (ms: number): Promise<void> => Promise.race([new Promise<void>((r) => setTimeout(r, ms)), options.interrupted]);
    let round = 0;
    while (!stop && Date.now() < deadline && round < (options.rounds ?? Infinity)) {
      round += 1;
      out(`--- round ${round}: ${DEMO_STEPS.length} commands from ${new Set(DEMO_STEPS.map((s) => s.agentId)).size} agents ---`);
      for (const step of DEMO_STEPS) {
        if (stop || Date.now() >= deadline) break;
        // Also before the first step: a demotion from an earlier demo run is kept in identity.db.
        await restoreDemoted();
        let sceneSet = true;
        for (const scene of step.before ?? []) sceneSet = (await setScene(scene)) && sceneSet;
        if (stop) break;
        // A scene that did not happen makes the step's outcome meaningless: count it, and still show the step.
        if (!sceneSet) surprises += 1;
        // As an agent should: the next command to a device goes once the device has reported the last one released to
        // it. Until then the interlock must assume it may be anywhere that release could take it, and denies motion.
        const target = step.deviceId ?? DEVICE;
        const expected = lastAllowed.get(target);
        if (expected !== undefined) {
          const reported = (): boolean => {
            const state = runtime.interlock.states.latest(target)?.state;
            return state !== undefined && 'lastCommandId' in state && state.lastCommandId === expected;
          };
          if (!(await waitUntil(reported, waitMs))) out(`${INDENT}(${target} did not report command ${expected} within ${waitMs} ms)`);
        }
        const before = arm.received.length;
        const outcome = await agent.run(step, (_token, digest) => labels.set(digest, `${step.label}`));
        outcomes.push(outcome);
        const decided = outcome.decision;
        if (decided?.verdict === 'allow' && decided.commandId !== null) lastAllowed.set(decided.deviceId ?? step.deviceId ?? DEVICE, decided.commandId);
        if (decided?.verdict === 'hold' && step.approve === true) await approveHeld(outcome.commandDigest);
        await restoreDemoted();
        if (step.expect === 'bypass') {
          await pause(300);
          const reached = arm.received.length - before;
          out(`${INDENT}${step.agentId} ${step.label}: ${reached === 0 ? 'refused by the broker ACL, the arm received nothing' : `ARM RECEIVED ${reached} MESSAGE(S)`}`);
          if (reached !== 0) surprises += 1;
        } else if (outcome.decision === undefined) {
          out(`${INDENT}no decision within the timeout for: ${step.label}`);
          surprises += 1;
        } else if (outcome.decision.verdict !== step.expect && sceneSet) {
          surprises += 1;
        }
        await pause(options.stepPauseMs);
      }
    }
  } finally {
    for (const name of placed.keys()) people.remove(name);
    await runtime.interlock.idle();
    await arm.stop();
    await conveyor.stop();
    await amr.stop();
    await pump.stop();
    await conveyorBus.stop();
    await amrBus.stop();
    await pumpBus.stop();
    await operatorBus?.stop();
    await agentBus.stop();
    await attackerBus.stop();
    await armBus.stop();
    await runtime.stop();
  }

  // Cross-check, independent of the live view: every command the arm executed has an allow record.
  const { openSqliteAuditLog } = await import('../audit/sqlite-audit-log.js');
  const audit = openSqliteAuditLog(runtime.audit.path);
  const allowed = new Set<string>();
  for (let from = 1; ; ) {
    const batch = audit.read(from, 1000);
    if (batch.length === 0) break;
    for (const record of batch) if (record.kind === 'decision' && record.verdict === 'allow' && record.commandId) allowed.add(record.commandId);
    from = (batch.at(-1)?.seq ?? from) + 1;
  }
  // With the interlock's public key: the signed checkpoints are checked too (no newest record dropped).
  const verify = audit.verify(runtime.interlockPublicKey);
  audit.close();
  const executed = [...arm.executed, ...amr.executed, ...conveyor.executed, ...pump.executed];
  const unauthorisedExecutions = executed.filter((c) => !allowed.has(c.commandId)).length;

  const decided = outcomes.filter((o) => o.decision !== undefined);
  const counts = { allow: 0, hold: 0, deny: 0 };
  const byCode = new Map<string, number>();
  let reduced = 0;
  for (const o of decided) {
    counts[o.decision!.verdict] += 1;
    if (o.decision!.mode === 'reduced') reduced += 1;
    for (const r of o.decision!.reasons) if (o.decision!.verdict !== 'allow') byCode.set(r.code, (byCode.get(r.code) ?? 0) + 1);
  }
  out('\n=== Summary ===');
  out(`${decided.length} commands decided: ${counts.allow} allowed, ${counts.deny} denied, ${counts.hold} held; ${reduced} checked in the reduced limits.`);
  out(`Reasons given for denials and holds (a command can have several): ${[...byCode].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} x${n}`).join(', ') || 'nothing'}`);
  const rejected = arm.received.filter((r) => !r.accepted);
  out(`The simulated devices executed ${executed.length} released commands (arm ${arm.executed.length}, AMR ${amr.executed.length}, conveyor ${conveyor.executed.length}, pump ${pump.executed.length}); ${unauthorisedExecutions} without an allow record; the arm rejected ${rejected.length} unverifiable messages.`);
  out(`Audit chain: ${verify.ok ? `verified, ${verify.records} records` : `BROKEN at record ${verify.seq}: ${verify.problem}`}.`);
  if (surprises > 0) out(`${surprises} step(s) did not go as scripted (another verdict, no decision, or a scene that did not happen).`);
  const example = decided.find((o) => o.decision?.verdict === 'deny' && o.decision.reasons[0]?.stage === 'bounds')?.decision?.reasons[0];
  if (example) out(`An agent receives reasons as data, e.g. ${describeReason(example)}`);
  return { outcomes, surprises, unauthorisedExecutions, chainOk: verify.ok };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting for the simulated devices to report their state');
    await new Promise((r) => setTimeout(r, 10));
  }
}
