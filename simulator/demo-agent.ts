// A scripted demo agent: sends a mix of safe and unsafe signed commands through the interlock, over real MQTT,
// and waits for each decision. Some steps are deliberately hostile (forged, replayed, expired, bypassing). Steps
// that depend on the world (a person near the arm, a machine at rest) name it, and the demo sets it up first.

import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CommandSigner } from '../src/agent-sdk/command-signer.js';
import { COMMAND_TOKEN_TYPE } from '../src/core/command.js';
import type { DecisionReport } from '../src/pipeline/decision-report.js';
import type { TopicSet } from '../src/transport/topics.js';
import type { Transport } from '../src/transport/transport.js';

export interface DemoStep {
  readonly agentId: string;
  /** The device the step targets; defaults to the agent's default device (arm-1 in the demo). */
  readonly deviceId?: string;
  readonly label: string;
  /** What the step is meant to show: the verdict the interlock should reach. */
  readonly expect: 'allow' | 'deny' | 'hold' | 'bypass';
  /** For a step expected to be held: the demo's operator then approves it with a signed message. */
  readonly approve?: boolean;
  /** Produces the exact bytes to publish. */
  token(context: StepContext): string;
  /** Publish on this device's command topic instead of the token's own device. */
  readonly topicDevice?: string;
  /** Set up in this order before the token is made, so the verdict does not depend on chance or timing. */
  readonly before?: readonly DemoScene[];
}

/**
 * A change to the simulated world, or a wait for one, that the demo (src/cli/demo.ts) carries out before a step.
 * Each completes only once the interlock has seen its effect in the devices' state.
 */
export type DemoScene =
  /** The AMR's scanners report a person `name` at `atM` ([x, y], cell frame, metres). */
  | { readonly kind: 'person-enters'; readonly name: string; readonly atM: readonly [number, number] }
  /** The person is no longer reported, and every device that watches a zone for people is past its holdReduced. */
  | { readonly kind: 'person-leaves'; readonly name: string }
  /** The device reports that it is at rest (it has finished the motion it was released for). */
  | { readonly kind: 'device-at-rest'; readonly deviceId: string }
  /** A conveyor reports this belt speed: its ramp is over, so its state holds still while a person looks at it. */
  | { readonly kind: 'belt-at-speed'; readonly deviceId: string; readonly speedMPerS: number };

export interface StepContext {
  readonly signers: ReadonlyMap<string, CommandSigner>;
  readonly deviceId: string;
  /** Tokens sent earlier, by step label, for replay steps. */
  readonly sent: ReadonlyMap<string, string>;
  readonly nowMs: number;
}

const HOME = [0, -1.571, 1.571, -1.571, -1.571, 0];
const OVER_TABLE = [0.8, -1.2, 1.9, -2.2, -1.571, 0.3];
/** Over the tote on the transfer station, TCP at about (1.79, 1.13, 0.93): inside the shared zone transfer-station. */
const TRANSFER = [0, -0.8, 0.9, -1.671, -1.571, 0];
/** A pick on the table, TCP at about (1.37, 1.41, 0.80). Every joint within 45 deg of HOME (the reduced max step). */
const PICK = [0.6, -1.2, 1.9, -2.2, -1.571, 0.3];
/** Where the AMR docks to hand a tote to the arm (cell.yaml, zone transfer-station). */
const DOCK = { xM: 2.5, yM: 1.3, yawRad: Math.PI / 2 };
/** An operator at the loading station on the table's south side: inside the arm's watched zone table-surround. */
const AT_THE_TABLE: readonly [number, number] = [1.0, -0.4];

function signer(context: StepContext, agentId: string): CommandSigner {
  const s = context.signers.get(agentId);
  if (s === undefined) throw new Error(`demo has no key for ${agentId}`);
  return s;
}

function move(context: StepContext, agentId: string, positionsRad: number[], velocityRadPerS: number, options: Parameters<CommandSigner['sign']>[3] = {}): string {
  return signer(context, agentId).sign(context.deviceId, 'move_joints', { positionsRad, velocityRadPerS }, options);
}

/** The demo script. Labels name what each step tries; the live view prints them beside each decision. */
export const DEMO_STEPS: readonly DemoStep[] = [
  { agentId: 'planner-1', label: 'move to the home pose', expect: 'allow', token: (c) => move(c, 'planner-1', HOME, 1.0) },
  { agentId: 'planner-1', label: 'reach over the table', expect: 'allow', token: (c) => move(c, 'planner-1', OVER_TABLE, 1.0) },
  {
    agentId: 'planner-1',
    label: 'elbow 90 meant as degrees, sent as radians',
    expect: 'deny',
    token: (c) => move(c, 'planner-1', [0.8, -1.2, 90, -2.2, -1.571, 0.3], 1.0),
  },
  { agentId: 'planner-1', label: 'same pose, far too fast (3 rad/s)', expect: 'deny', token: (c) => move(c, 'planner-1', HOME, 3.0) },
  {
    agentId: 'planner-1',
    label: 'shoulder below the table plane',
    expect: 'deny',
    token: (c) => move(c, 'planner-1', [0, 0.35, 1.571, -1.571, -1.571, 0], 0.5),
  },
  { agentId: 'trainee-1', label: 'safe move, but no policy grants it', expect: 'deny', token: (c) => move(c, 'trainee-1', HOME, 0.5) },
  { agentId: 'observer-1', label: 'monitoring agent tries to move', expect: 'deny', token: (c) => move(c, 'observer-1', HOME, 0.5) },
  { agentId: 'rogue-1', label: 'agent with an unregistered key', expect: 'deny', token: (c) => move(c, 'rogue-1', HOME, 0.5) },
  {
    agentId: 'planner-1',
    label: 'replay of the "reach over the table" command',
    expect: 'deny',
    token: (c) => c.sent.get('reach over the table') ?? 'missing',
  },
  {
    agentId: 'planner-1',
    label: 'command that expired in transit',
    expect: 'deny',
    token: (c) => move(c, 'planner-1', HOME, 0.5, { override: { iat: (c.nowMs - 6000) / 1000, exp: (c.nowMs - 3000) / 1000 } }),
  },
  {
    agentId: 'attacker',
    label: 'unsigned token (alg "none")',
    expect: 'deny',
    token: (c) => unsignedToken({ iss: 'planner-1', aud: c.deviceId, action: 'move_joints', params: { positionsRad: HOME, velocityRadPerS: 3 } }),
  },
  {
    agentId: 'planner-1',
    label: 'signed for arm-2, sent to arm-1',
    expect: 'deny',
    token: (c) => signer(c, 'planner-1').sign('arm-2', 'move_joints', { positionsRad: HOME, velocityRadPerS: 0.5 }),
    topicDevice: 'arm-1',
  },
  { agentId: 'attacker', label: 'publishes straight to the actuator topic', expect: 'bypass', token: () => 'forged-release' },
  { agentId: 'observer-1', label: 'stop: safe state passes for any authenticated agent', expect: 'allow', token: (c) => signer(c, 'observer-1').sign(c.deviceId, 'stop', {}) },
  { agentId: 'planner-1', label: 'back to the home pose', expect: 'allow', token: (c) => move(c, 'planner-1', HOME, 1.0) },
  // The transfer station is a shared zone: the arm and the AMR may not both be in it.
  {
    agentId: 'planner-1',
    label: 'reach into the tote at the AMR transfer station',
    expect: 'allow',
    before: [{ kind: 'device-at-rest', deviceId: 'arm-1' }],
    token: (c) => move(c, 'planner-1', TRANSFER, 1.0),
  },
  {
    agentId: 'planner-1',
    deviceId: 'amr-1',
    label: 'dock at the transfer station while the arm works in it',
    expect: 'deny',
    token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'go_to', { ...DOCK, speedMPerS: 0.3 }),
  },
  {
    agentId: 'planner-1',
    label: 'out of the transfer station, back to home',
    expect: 'allow',
    before: [{ kind: 'device-at-rest', deviceId: 'arm-1' }],
    token: (c) => move(c, 'planner-1', HOME, 1.0),
  },
  // A person at the table: the arm checks every command in its reduced limits, and for holdReduced after they leave.
  {
    agentId: 'planner-1',
    label: 'pick at 1 rad/s while a person stands at the table',
    expect: 'deny',
    before: [
      { kind: 'device-at-rest', deviceId: 'arm-1' },
      { kind: 'person-enters', name: 'operator', atM: AT_THE_TABLE },
    ],
    token: (c) => move(c, 'planner-1', PICK, 1.0),
  },
  { agentId: 'planner-1', label: 'the same pick at 0.3 rad/s, within the reduced limits', expect: 'allow', token: (c) => move(c, 'planner-1', PICK, 0.3) },
  {
    agentId: 'planner-1',
    label: 'person gone and the hold over: home at 1 rad/s again',
    expect: 'allow',
    before: [
      { kind: 'person-leaves', name: 'operator' },
      { kind: 'device-at-rest', deviceId: 'arm-1' },
    ],
    token: (c) => move(c, 'planner-1', HOME, 1.0),
  },
  // The infeed conveyor.
  { agentId: 'planner-1', deviceId: 'conveyor-1', label: 'start the belt at 0.2 m/s', expect: 'allow', token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'set_speed', { speedMPerS: 0.2 }) },
  { agentId: 'planner-1', deviceId: 'conveyor-1', label: 'reverse the belt while it runs', expect: 'deny', token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'set_speed', { speedMPerS: -0.1 }) },
  { agentId: 'planner-1', deviceId: 'conveyor-1', label: 'jump to 0.9 m/s', expect: 'deny', token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'set_speed', { speedMPerS: 0.9 }) },
  {
    agentId: 'trainee-1',
    deviceId: 'conveyor-1',
    label: 'agent under evaluation (scope 2) asks for 0.25 m/s: held until a person approves',
    expect: 'hold',
    approve: true,
    // The approval is void if the belt's speed moves more than the declared 0.02 m/s between hold and approval.
    before: [{ kind: 'belt-at-speed', deviceId: 'conveyor-1', speedMPerS: 0.2 }],
    token: (c) => signer(c, 'trainee-1').sign(c.deviceId, 'set_speed', { speedMPerS: 0.25 }),
  },
  { agentId: 'observer-1', deviceId: 'conveyor-1', label: 'stop the belt (safe state)', expect: 'allow', token: (c) => signer(c, 'observer-1').sign(c.deviceId, 'stop', {}) },
  // The AMR: people walk in the far end of the hall, well away from its route.
  { agentId: 'planner-1', deviceId: 'amr-1', label: 'drive 2 m down the aisle at 0.5 m/s', expect: 'allow', token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'go_to', { xM: 5, yM: -0.5, speedMPerS: 0.5 }) },
  {
    agentId: 'planner-1',
    deviceId: 'amr-1',
    label: 'path that cuts under the storage rack',
    expect: 'deny',
    token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'follow_path', { waypoints: [[4, 1], [4, 3]], speedMPerS: 0.5 }),
  },
  {
    agentId: 'planner-1',
    deviceId: 'amr-1',
    label: 'dock at the arm table at 0.8 m/s (zone limit 0.3)',
    expect: 'deny',
    // 0.9 m short of the table: even a robot still rolling at 0.5 m/s (its run-out widens the path) stays clear of it.
    token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'go_to', { xM: 1.2, yM: -0.8, speedMPerS: 0.8 }),
  },
  { agentId: 'observer-1', deviceId: 'amr-1', label: 'stop the AMR (safe state)', expect: 'allow', token: (c) => signer(c, 'observer-1').sign(c.deviceId, 'stop', {}) },
  // The transfer pump.
  { agentId: 'planner-1', deviceId: 'pump-1', label: 'start the pump (permissives hold)', expect: 'allow', token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'start', {}) },
  {
    agentId: 'planner-1',
    deviceId: 'pump-1',
    label: 'pump speed 0 -> 150 rad/s in one step',
    expect: 'deny',
    token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'set_setpoint', { name: 'pump_speed', value: 150, unit: 'rad/s' }),
  },
  {
    agentId: 'planner-1',
    deviceId: 'pump-1',
    label: 'pump speed given in rpm, not rad/s',
    expect: 'deny',
    token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'set_setpoint', { name: 'pump_speed', value: 30, unit: 'rpm' }),
  },
  { agentId: 'planner-1', deviceId: 'pump-1', label: 'pump to its declared safe state', expect: 'allow', token: (c) => signer(c, 'planner-1').sign(c.deviceId, 'go_safe', {}) },
];

function unsignedToken(claims: Record<string, unknown>): string {
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: COMMAND_TOKEN_TYPE })).toString('base64url');
  return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
}

/** A signer for an agent the cell does not know: a real key, never registered. */
export function rogueSigner(nowMs?: () => number): CommandSigner {
  const { privateKey } = generateKeyPairSync('ed25519');
  return new CommandSigner({ agentId: 'rogue-1', kid: 'rogue-1-k1', privateKey: privateKey as KeyObject, ...(nowMs === undefined ? {} : { nowMs }) });
}

export interface DemoAgentOptions {
  readonly transport: Transport;
  /** Every device the steps may target, so that their decision topics are watched. */
  readonly deviceIds?: readonly string[];
  /** A separate connection for bypass steps: a broker refuses the publish and may drop that connection. */
  readonly attackerTransport: Transport;
  readonly topics: TopicSet;
  readonly deviceId: string;
  readonly signers: ReadonlyMap<string, CommandSigner>;
  readonly decisionTimeoutMs?: number;
  readonly nowMs?: () => number;
}

export interface StepOutcome {
  readonly step: DemoStep;
  readonly commandDigest: string;
  /** The decision received on the decision topic; undefined for bypass steps or on timeout. */
  readonly decision?: DecisionReport;
}

/** Runs steps in order over the transport, waiting for each decision before the next step. */
export class DemoAgent {
  private readonly waiting = new Map<string, (report: DecisionReport) => void>();
  private readonly sent = new Map<string, string>();

  constructor(private readonly options: DemoAgentOptions) {}

  async start(): Promise<void> {
    const devices = new Set([this.options.deviceId, ...(this.options.deviceIds ?? [])]);
    for (const deviceId of devices) {
      await this.options.transport.subscribe(this.options.topics.decision(deviceId), (_topic, payload) => {
        let report: DecisionReport;
        try {
          report = JSON.parse(payload.toString('utf8')) as DecisionReport;
        } catch {
          return;
        }
        this.waiting.get(report.commandDigest)?.(report);
      });
    }
  }

  /** Digest and label of the token a step will send, so a live view can label decisions. */
  static digestOf(token: string): string {
    return createHash('sha256').update(token, 'utf8').digest('hex');
  }

  async run(step: DemoStep, onSent?: (token: string, digest: string) => void): Promise<StepOutcome> {
    const { transport, topics } = this.options;
    const deviceId = step.deviceId ?? this.options.deviceId;
    const context: StepContext = { signers: this.options.signers, deviceId, sent: this.sent, nowMs: (this.options.nowMs ?? Date.now)() };
    const token = step.token(context);
    const digest = DemoAgent.digestOf(token);
    onSent?.(token, digest);
    if (step.expect === 'bypass') {
      // Straight to the actuator topic: the broker must refuse it, so no driver ever sees it.
      await this.options.attackerTransport.publish(topics.actuatorCommand(deviceId), token, { qos: 0 }).catch(() => undefined);
      return { step, commandDigest: digest };
    }
    this.sent.set(step.label, token);
    const decided = new Promise<DecisionReport | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(digest);
        resolve(undefined);
      }, this.options.decisionTimeoutMs ?? 3000);
      this.waiting.set(digest, (report) => {
        clearTimeout(timer);
        this.waiting.delete(digest);
        resolve(report);
      });
    });
    await transport.publish(topics.command(step.topicDevice ?? deviceId), token, { qos: 1 });
    const decision = await decided;
    return decision === undefined ? { step, commandDigest: digest } : { step, commandDigest: digest, decision };
  }
}
