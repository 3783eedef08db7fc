// (d) Retention after acknowledgement: with a small audit cap and a short retention declared in cell.yaml, a flood of
// commands fills the log. Without forwarding the interlock is then locked out (every non-stop command denied
// AUDIT_LOG_FULL); with forwarding to a receiver on a real mosquitto, acknowledged records are deleted by retention,
// the receiver holds every record (the deleted ones too), and the next command is decided on its merits.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { CommandSigner } from '../../src/agent-sdk/command-signer.js';
import type { DecisionEvent } from '../../src/interlock/interlock.js';
import { MqttTransport } from '../../src/transport/mqtt-transport.js';
import { liveInterlock, type LiveInterlock, type LiveInterlockOptions } from '../helpers/live-interlock.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { DEMO_CELL } from '../helpers/test-cell.js';
import { waitFor } from '../helpers/wait-for.js';
import { cloudPeer } from '../helpers/audit-forwarding.js';

const THING = 'retention-cell';
const RETENTION_MS = 1_000;
const FLOOD = 1_500;

/** The demo cell.yaml with a 512 KiB cap and a 1 s retention. */
function smallAuditCell(): string {
  const text = readFileSync(join(DEMO_CELL, 'cell.yaml'), 'utf8');
  const edited = text.replace(/retention: \{ value: 90, unit: d \}/, 'retention: { value: 1, unit: s }').replace(/maxSize: \{ value: 256, unit: MiB \}/, 'maxSize: { value: 512, unit: KiB }');
  if (edited === text || !edited.includes('512, unit: KiB') || !edited.includes('value: 1, unit: s')) throw new Error('the demo cell.yaml audit section changed: update this test');
  return edited;
}

const codes = (event: DecisionEvent): string[] => event.report.reasons.map((r) => r.code);

/** FLOOD set_speed commands in bursts of 50; returns how many were denied AUDIT_LOG_FULL. */
async function flood(rig: LiveInterlock, planner: CommandSigner): Promise<number> {
  let full = 0;
  for (let i = 0; i < FLOOD; i += 50) {
    const tokens = Array.from({ length: 50 }, () => planner.sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }));
    for (const d of await rig.burst('conveyor-1', tokens)) if (codes(d).includes('AUDIT_LOG_FULL')) full += 1;
  }
  return full;
}

async function rig(t: Test, extra: Partial<LiveInterlockOptions> = {}): Promise<LiveInterlock> {
  return liveInterlock(t, { files: { 'cell.yaml': smallAuditCell() }, ...extra });
}

t.test('without forwarding a flood fills the capped log and locks the interlock out', async (t) => {
  const live = await rig(t);
  const planner = live.cell.signer('planner-1');
  const full = await flood(live, planner);
  t.ok(full > 0, `${full} of ${FLOOD} commands denied AUDIT_LOG_FULL`);
  t.equal(live.audit.health().state, 'full');
  const next = await live.send('conveyor-1', planner.sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }));
  t.ok(codes(next).includes('AUDIT_LOG_FULL'), 'the next command is denied AUDIT_LOG_FULL');
});

t.test('with forwarding, retention deletes what the receiver acknowledged and the interlock is not locked out', async (t) => {
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const live = await rig(t, {
    cloud: () => ({ transport: new MqttTransport({ url: broker.url, clientId: `thing-${THING}`, reconnectPeriodMs: 100, log: () => undefined }), thingName: THING }),
    auditForwarding: { idlePollMs: 20, ackTimeoutMs: 3_000 },
  });
  const peer = await cloudPeer(t, broker.url, new Map([[THING, live.runtime.interlockPublicKey]]));
  const planner = live.cell.signer('planner-1');
  const full = await flood(live, planner);
  t.comment(`${full} of ${FLOOD} flood commands met a full log while the drain caught up`);
  await live.interlock.idle();
  const head = live.audit.head();
  await waitFor(() => live.audit.acknowledgedSeq() >= head.seq, 'the receiver to acknowledge the flood', 60_000, 20);
  const newest = live.audit.read(head.seq, 1)[0];
  await waitFor(() => Date.now() - (newest?.timeMs ?? 0) > RETENTION_MS, 'the flood to be older than the retention');
  // A full log tries retention at the next refusal, at most once a second (sooner after a new watermark): commands
  // are sent one after another, each after the last one's decision, until one is decided on its merits.
  const deadline = Date.now() + 10_000;
  let refused = 0;
  let next: DecisionEvent;
  for (;;) {
    next = await live.send('conveyor-1', planner.sign('conveyor-1', 'set_speed', { speedMPerS: 0.1 }));
    // Until a command is recorded and the log has room again (retention has run), or the bound passes.
    if ((!codes(next).includes('AUDIT_LOG_FULL') && live.audit.health().state !== 'full') || Date.now() > deadline) break;
    if (codes(next).includes('AUDIT_LOG_FULL')) refused += 1;
  }
  // Decided on its merits and recorded: planner-1 may by now be quarantined for the flood's rate-limit denials.
  t.notOk(codes(next).includes('AUDIT_LOG_FULL'), `the interlock is not locked out (${codes(next).join(', ') || 'allowed'}; ${refused} refused before retention ran)`);
  t.not(live.audit.health().state, 'full');
  const firstStored = live.audit.read(0, 1)[0]?.seq ?? 0;
  t.ok(firstStored > 1, `retention deleted records 1..${firstStored - 1}`);
  // Every record, the deleted ones too, is held by the receiver, once.
  await waitFor(() => live.audit.acknowledgedSeq() === live.audit.head().seq, 'the last records to be acknowledged too', 30_000, 20);
  const held = peer.store.records(THING);
  t.equal(held.length, live.audit.head().seq);
  t.ok(held.every((r, i) => r.seq === i + 1), 'gapless from 1');
  t.ok(held.some((r) => r.body.includes('"event":"audit-retention"')), 'the retention record itself was forwarded');
});
