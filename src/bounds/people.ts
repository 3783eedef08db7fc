// Where the people in the cell are, from the `people` reports of the declared source devices. If any source is
// missing or stale the answer is "unknown", never "nobody": an absent report is not an empty room.

import type { PeopleSources } from '../core/declarations.js';
import type { StateView } from '../core/device-state.js';
import type { Vec3 } from '../core/zones.js';

export type PeopleView =
  | { readonly known: true; readonly positions: readonly Vec3[] }
  | { readonly known: false; readonly why: string };

export function peopleInCell(sources: PeopleSources, states: StateView, nowMs: number): PeopleView {
  if (sources.devices.length === 0) return { known: false, why: 'no people sources are declared in cell.yaml' };
  const positions: Vec3[] = [];
  for (const id of sources.devices) {
    const observed = states.latest(id);
    if (observed === undefined) return { known: false, why: `no state from people source ${id}` };
    const ageMs = nowMs - observed.receivedAtMs;
    if (!(ageMs >= 0 && ageMs <= sources.maxAgeMs)) return { known: false, why: `people report of ${id} is ${ageMs} ms old (limit ${sources.maxAgeMs} ms)` };
    if (observed.people === undefined) return { known: false, why: `people source ${id} sent no people field` };
    positions.push(...observed.people);
  }
  return { known: true, positions };
}
