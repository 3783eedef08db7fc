// Releases are pipelined: the interlock hands a release to the broker and goes on deciding and releasing other
// devices' commands without waiting for its PUBACK; only the same device's next command waits for the release's
// outcome (it is decided against it). Through the interlock as `interlock run` composes it, on a real mosquitto,
// with the acknowledgement of one device's releases held back by the test (fault injection in the interlock's own
// broker connection: the message goes out, the interlock hears of the PUBACK only when the test says so).

import t, { type Test } from 'tap';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import type { PublishOptions, Transport } from '../../src/transport/transport.js';
import { DelegatingTransport } from '../helpers/delegating-transport.js';
import { liveInterlock, topics } from '../helpers/live-interlock.js';
import { waitFor } from '../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const ARM = 'arm-1';

/**
 * A real transport that holds back the outcome of publishes to one actuator topic until the test settles them. With
 * `sendHeld` the message goes to the broker at once and only its acknowledgement waits (a slow PUBACK); without, it
 * is sent only if the test settles it as a success (a refusal then means the device never got it, as with a broker's
 * refusal).
 */
class HeldAcknowledgements extends DelegatingTransport {
  holding = false;
  sendHeld = true;
  readonly held: { topic: string; settle: (error?: Error) => void }[] = [];
  constructor(
    inner: Transport,
    private readonly heldTopic: string,
  ) {
    super(inner);
  }
  override publish(topic: string, payload: Buffer | string, options?: PublishOptions): Promise<void> {
    if (!this.holding || topic !== this.heldTopic) return this.inner.publish(topic, payload, options);
    const sent = this.sendHeld ? this.inner.publish(topic, payload, options) : undefined;
    // Never an unhandled rejection while held; the outcome is passed on when the test settles it.
    sent?.catch(() => undefined);
    return new Promise<void>((resolve, reject) => {
      this.held.push({
        topic,
        settle: (error) => {
          if (error !== undefined) reject(error);
          else (sent ?? this.inner.publish(topic, payload, options)).then(resolve, reject);
        },
      });
    });
  }
}

const rigWithHeldConveyor = async (t: Test): Promise<{ rig: Awaited<ReturnType<typeof liveInterlock>>; held: HeldAcknowledgements; events: DecisionEvent[] }> => {
  let held: HeldAcknowledgements | undefined;
  const rig = await liveInterlock(t, { broker: 'mosquitto', wrapTransport: (inner) => (held = new HeldAcknowledgements(inner, topics.actuatorCommand(CONVEYOR))) });
  if (held === undefined) throw new Error('the rig did not wrap the transport');
  const events: DecisionEvent[] = [];
  rig.interlock.onDecision((event) => events.push(event));
  return { rig, held, events };
};

const decisionOn = (events: readonly DecisionEvent[], commandId: string): DecisionEvent | undefined => events.find((e) => e.report.commandId === commandId);

const commandIdOf = (token: string): string => {
  const body = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { commandId?: unknown; jti?: unknown };
  const id = body.commandId ?? body.jti;
  if (typeof id !== 'string') throw new Error('the signed command has no commandId');
  return id;
};

t.test("another device's command is decided and released while one release waits for its PUBACK", async (t) => {
  const { rig, held, events } = await rigWithHeldConveyor(t);
  const planner = rig.cell.signer('planner-1');
  held.holding = true;
  const belt = planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 });
  const stop = planner.sign(ARM, 'stop', {});
  await rig.client.publish(topics.command(CONVEYOR), belt, { qos: 1 });
  await waitFor(() => held.held.length === 1, "the conveyor's release handed to the broker");
  await rig.client.publish(topics.command(ARM), stop, { qos: 1 });
  await waitFor(() => decisionOn(events, commandIdOf(stop)) !== undefined, "the arm's decision");
  const armDecision = decisionOn(events, commandIdOf(stop));
  t.equal(armDecision?.report.verdict, 'allow');
  t.equal(armDecision?.released, true, "the arm's stop is released");
  t.equal(decisionOn(events, commandIdOf(belt)), undefined, "the conveyor's decision waits for its own PUBACK, which is still held");
  t.equal(held.held.length, 1, 'and its acknowledgement is still held');
  await waitFor(() => rig.releases.some((r) => r.command.commandId === commandIdOf(stop)), "the arm's release at the arm");
  t.ok(
    rig.releases.some((r) => r.command.commandId === commandIdOf(belt)),
    "the conveyor's release went out first (the broker has it; only its acknowledgement is held)",
  );

  held.holding = false;
  held.held.shift()?.settle();
  await waitFor(() => decisionOn(events, commandIdOf(belt)) !== undefined, "the conveyor's decision");
  t.equal(decisionOn(events, commandIdOf(belt))?.released, true, 'released once acknowledged');
  const beltSeq = decisionOn(events, commandIdOf(belt))?.auditSeq ?? Infinity;
  t.ok(beltSeq < (armDecision?.auditSeq ?? -Infinity), 'recorded in decision order: the conveyor first');
  await rig.interlock.idle();
  t.same(rig.badReleases, [], 'each driver accepts its releases (per-device order kept)');
  t.ok(rig.audit.verify().ok);
});

t.test("the same device's next command is decided against its previous release's outcome, not before it", async (t) => {
  const { rig, held, events } = await rigWithHeldConveyor(t);
  const planner = rig.cell.signer('planner-1');
  held.holding = true;
  held.sendHeld = false;
  // Forward, then reverse. The forward release fails at the broker (its publish outcome, held back, is a refusal):
  // decided against that outcome the reversal is allowed (the belt never got the forward setpoint); decided before
  // it, against the forward setpoint reserved in the meantime, it would be denied BOUNDS_CONVEYOR_REVERSAL.
  const forward = planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 });
  const stop = planner.sign(ARM, 'stop', {});
  const reverse = planner.sign(CONVEYOR, 'set_speed', { speedMPerS: -0.1, rampMPerS2: 0.2 });
  await rig.client.publish(topics.command(CONVEYOR), forward, { qos: 1 });
  await waitFor(() => held.held.length === 1, 'the forward release handed to the broker');
  await rig.client.publish(topics.command(ARM), stop, { qos: 1 });
  await rig.client.publish(topics.command(CONVEYOR), reverse, { qos: 1 });
  await waitFor(() => decisionOn(events, commandIdOf(stop)) !== undefined, "the arm's decision (the queue moved past the forward command)");
  held.holding = false;
  held.held.shift()?.settle(new Error('injected fault: the broker refused the forward release'));
  await waitFor(() => decisionOn(events, commandIdOf(reverse)) !== undefined, 'the reverse decision');
  const forwardDecision = decisionOn(events, commandIdOf(forward));
  t.equal(forwardDecision?.released, false, 'the forward release failed');
  t.match(forwardDecision?.releaseProblem, /injected fault/);
  const reverseDecision = decisionOn(events, commandIdOf(reverse));
  t.equal(reverseDecision?.report.verdict, 'allow', `decided against no release: ${reverseDecision?.report.reasons.map((r) => r.code).join(',')}`);
  t.equal(reverseDecision?.released, true);
  await rig.interlock.idle();
  t.same(
    rig.releases.map((r) => r.command.commandId).filter((id) => id !== commandIdOf(stop)),
    [commandIdOf(reverse)],
    'the conveyor got only the reversal',
  );
  t.same(rig.badReleases, []);
  t.ok(rig.audit.verify().ok);
});
