// The shared-zone race (issue 12, item 5), through the interlock as `interlock run` builds it (embedded broker, SQLite
// audit log), on a manual clock with the declared state ages. arm-1 is released on a swing through the transfer
// station; a state it sent before its driver had that release (at rest where it was, naming the command before)
// arrives after the release. amr-1's request to dock in the station must be denied until the arm's own state names
// the swing and shows it at rest outside the station. Both devices are played by the test; nothing waits on time.

import t from 'tap';
import { manualClock } from '../helpers/clocks.js';
import { liveInterlock } from '../helpers/live-interlock.js';
import { ARM_NORTH, ARM_SOUTH, raceTrial, SharedZoneRace } from '../helpers/shared-zone-race.js';

const STATION_RULE = 'cell/sharedZones/transfer-station';
const codes = (event: { report: { reasons: readonly { code: string; ruleId?: string }[] } }) => event.report.reasons.map((r) => [r.code, r.ruleId]);

t.test('a state sent before the driver had the release does not free the station; the arm naming it at rest does', async (t) => {
  const clock = manualClock(1_800_000_000_000);
  const rig = await liveInterlock(t, { clock, stateAgeMs: null, feed: false });
  const race = new SharedZoneRace(rig, clock);
  await race.settleModes();
  t.same(race.arm, { positionsRad: ARM_NORTH, names: null }, 'the arm at rest outside the station, having executed nothing yet');

  const trial = await raceTrial(race);
  const swingId = trial.swing.report.commandId;
  t.equal(trial.swing.report.verdict, 'allow', 'the swing through the station is released');
  t.ok(trial.staleReceivedAtMs > trial.swingReleasedAtMs, 'the stale state reached the interlock after the release went out');

  const denied = trial.whileUnreported;
  t.same(codes(denied), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'docking is denied for the shared zone alone');
  t.match(
    denied.report.reasons[0]?.message ?? '',
    `amr-1 would enter shared zone transfer-station, which arm-1 has been released into (command ${swingId} not yet reported finished: its latest state names no command)`,
    'and says which release is not yet reported finished',
  );
  t.notOk(race.wasReleased(denied.report.commandId), 'nothing went to amr-1');

  t.same(race.arm, { positionsRad: ARM_SOUTH, names: swingId }, 'then the arm reports the swing done, at rest outside the station');
  t.equal(trial.afterReported.report.verdict, 'allow', `docking is allowed (${codes(trial.afterReported).join(' | ')})`);
  t.ok(race.wasReleased(trial.afterReported.report.commandId), 'and released to amr-1');
  t.same(rig.badReleases, [], 'every release verified');
});

t.test('the same race the other way round, with stale states that name the command before, or none at all', async (t) => {
  const clock = manualClock(1_800_000_000_000);
  const rig = await liveInterlock(t, { clock, stateAgeMs: null, feed: false });
  const race = new SharedZoneRace(rig, clock);
  await race.settleModes();
  const first = await raceTrial(race);
  t.equal(first.afterReported.report.verdict, 'allow', 'first swing, north to south: docking allowed once reported');

  const olderId = first.swing.report.commandId;
  const back = await raceTrial(race, { stale: 3 });
  t.same(codes(back.whileUnreported), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'south to north, three stale states naming the first swing: denied');
  t.match(back.whileUnreported.report.reasons[0]?.message ?? '', `its latest state names command ${olderId}`, 'the stale state named the first swing');
  t.equal(back.afterReported.report.verdict, 'allow', 'allowed once the arm names the second swing at rest');

  const blind = await raceTrial(race, { staleNames: 'omitted' });
  t.same(codes(blind.whileUnreported), [['BOUNDS_SHARED_ZONE_OCCUPIED', STATION_RULE]], 'a state that does not name any command: denied');
  t.match(blind.whileUnreported.report.reasons[0]?.message ?? '', 'so it can never show a command finished', 'says a state without lastCommandId proves nothing');
  t.equal(blind.afterReported.report.verdict, 'allow', 'allowed once a state names the swing at rest');
});
