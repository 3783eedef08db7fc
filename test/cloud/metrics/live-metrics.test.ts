// Metrics from the interlock as `interlock run` composes it (the live rig: startRuntime with a cloud link and metrics
// settings, the embedded broker, real SQLite), with mosquitto standing in for IoT Core and a fake Device Defender
// checking each report: the counts of an interval equal the decisions made through the rig (the aggregated
// unauthenticated denials included), and across a restart none is lost or counted twice and report_id increases.

import t from 'tap';
import type { Runtime } from '../../../src/app/compose.js';
import { MqttTransport } from '../../../src/transport/mqtt-transport.js';
import type { DecisionEvent } from '../../../src/interlock/interlock.js';
import { serveFakeDeviceDefender, type ReceivedReport } from '../../helpers/fake-device-defender.js';
import { liveInterlock, topics } from '../../helpers/live-interlock.js';
import { startMosquitto } from '../../helpers/mosquitto.js';
import { required } from '../../helpers/required.js';
import { waitFor } from '../../helpers/wait-for.js';

const CONVEYOR = 'conveyor-1';
const THING = 'cell-live';

const number = (report: ReceivedReport | undefined, name: string): number | undefined => (report?.report.custom_metrics[name]?.[0] as { number?: number } | undefined)?.number;
const tally = (decisions: readonly DecisionEvent[], verdict: string): number => decisions.filter((d) => d.report.verdict === verdict).length;

t.test('the counts of an interval are the decisions made through the rig; a restart loses none and doubles none', async (t) => {
  const cloudBroker = await startMosquitto();
  t.teardown(() => cloudBroker.stop());
  const cloud = new MqttTransport({ url: cloudBroker.url, clientId: 'fake-iot-core', log: () => undefined });
  await cloud.start();
  t.teardown(() => cloud.stop());
  const dd = await serveFakeDeviceDefender(cloud);
  let links = 0;
  const r = await liveInterlock(t, {
    runtimeOptions: () => ({
      cloud: { transport: new MqttTransport({ url: cloudBroker.url, clientId: `${THING}-${++links}`, log: () => undefined }), thingName: THING },
      metrics: { intervalMs: 300_000, defender: true, topic: undefined },
    }),
  });
  const metrics = (runtime: Runtime) => required(runtime.metrics, 'the metrics reporter startRuntime made');
  await waitFor(() => metrics(r.runtime).ready, 'the reporter to be up');
  const planner = r.cell.signer('planner-1');
  const observer = r.cell.signer('observer-1');
  const first = planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.15, rampMPerS2: 0.2 });
  // The rig's send finds a decision by the command's digest, which a replay shares: wait for the next decision instead.
  const replay = async (token: string): Promise<DecisionEvent> => {
    const n = r.decisions.length;
    await r.client.publish(topics.command(CONVEYOR), token, { qos: 1 });
    await waitFor(() => r.decisions.length > n, 'the decision on the replay');
    return required(r.decisions[n], 'the decision on the replay');
  };
  const made = [
    await r.send(CONVEYOR, first),
    await r.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 5, rampMPerS2: 0.2 })),
    await r.send(CONVEYOR, observer.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 })),
    await replay(first),
    await r.send(CONVEYOR, 'not-a-jws'),
    await r.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {})),
  ];
  t.same(made.map((d) => d.report.verdict), ['allow', 'deny', 'deny', 'deny', 'deny', 'allow']);
  t.match(made[3]?.report.reasons[0], { code: 'ENVELOPE_REPLAYED' });
  // The unauthenticated denial is only in its window's aggregate record, written at the window's end.
  await waitFor(() => r.audit.read(1, 10_000).some((rec) => rec.detail?.['event'] === 'unauthenticated-denials'), 'the aggregate record of the window', 20_000);
  await r.interlock.idle();

  const [outcome] = await metrics(r.runtime).reportNow();
  t.match(outcome, { destination: 'defender', status: 'published' });
  await waitFor(() => dd.reports.length === 1, 'the report at Device Defender');
  const report = dd.reports[0];
  t.equal(report?.status, 'ACCEPTED');
  t.equal(number(report, 'interlock_commands_allowed'), tally(r.decisions, 'allow'), 'allowed as decided');
  t.equal(number(report, 'interlock_commands_denied'), tally(r.decisions, 'deny'), 'denied as decided, the aggregated one included');
  t.equal(number(report, 'interlock_commands_held'), 0);
  t.equal(number(report, 'interlock_replay_attempts'), 1);
  t.equal(number(report, 'interlock_auth_failures'), 1, 'the token that is no JWS');
  t.equal(number(report, 'interlock_denied_policy'), 1, 'the observer');
  t.equal(number(report, 'interlock_denied_envelope'), 2, 'the replay and the garbage');
  t.equal(number(report, 'interlock_denied_bounds'), 1);
  const boundsReasons = made[1]?.report.reasons.filter((reason) => reason.stage === 'bounds').length ?? 0;
  t.ok(boundsReasons >= 1);
  t.equal(number(report, 'interlock_bounds_violations_conveyor'), boundsReasons, 'every bounds reason of the conveyor denial');
  const latencies = r.audit.read(1, 10_000).flatMap((rec) => (rec.kind === 'decision' && rec.decisionUs !== undefined ? [rec.decisionUs] : []));
  t.equal(latencies.length, 5, 'every recorded decision carries decisionUs (the garbage is only counted in aggregate)');
  t.equal(number(report, 'interlock_decision_latency_p99_us'), Math.max(...latencies), 'p99 of five decisions, nearest rank: the slowest');
  t.equal(number(report, 'interlock_declaration_digest_changes'), 0);
  t.same(r.interlock.metrics().decisions, { allow: tally(r.decisions, 'allow'), hold: 0, deny: tally(r.decisions, 'deny') }, "the interlock's own counters agree");

  // Decided after the report, then a restart, then more: the next report has exactly those.
  await r.send(CONVEYOR, planner.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.15, rampMPerS2: 0.2 }));
  const before = r.decisions.length;
  await r.restart();
  await waitFor(() => metrics(r.runtime).ready, 'the reporter to be up after the restart');
  await r.send(CONVEYOR, planner.sign(CONVEYOR, 'stop', {}));
  await r.send(CONVEYOR, observer.sign(CONVEYOR, 'set_speed', { speedMPerS: 0.1, rampMPerS2: 0.2 }));
  await r.interlock.idle();
  await metrics(r.runtime).reportNow();
  await waitFor(() => dd.reports.length === 2, 'the report after the restart');
  const second = dd.reports[1];
  const since = r.decisions.slice(before - 1);
  t.equal(number(second, 'interlock_commands_allowed'), tally(since, 'allow'), 'the allow before the restart and the stop after it');
  t.equal(number(second, 'interlock_commands_allowed'), 2);
  t.equal(number(second, 'interlock_commands_denied'), 1);
  t.equal(second?.status, 'ACCEPTED');
  t.ok((second?.report.header.report_id ?? 0) > (report?.report.header.report_id ?? 0), 'report_id increases across the restart');
});
