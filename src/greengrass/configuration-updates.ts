// Whether a configuration a deployment proposes can be put in force while the component runs. The same judgement
// answers the nucleus's validation request (before the deployment applies anything: a refusal fails the deployment
// with the reason) and guards the update itself (after it applied; a refusal then keeps the running configuration
// in force and is audited). Nothing is changed here: the caller swaps the returned cell in.

import { canonicalJson } from '../core/canonical-json.js';
import { formatProblem } from '../core/problems.js';
import { formatConfigurationProblems, parseComponentConfiguration, planSettingsChange, type ComponentPlaces, type ComponentSettings } from '../app/component-config.js';
import { loadCell, type LoadedCell } from '../declarations/load.js';

export type UpdateAssessment =
  | { readonly ok: true; readonly next: ComponentSettings; readonly changedKeys: readonly (keyof ComponentSettings)[]; readonly cell: LoadedCell }
  | { readonly ok: false; readonly problem: string };

export interface RunningState {
  readonly settings: ComponentSettings;
  readonly cell: LoadedCell;
  readonly places: ComponentPlaces;
}

/**
 * Judges a proposed configuration (the whole object under the component) against what runs now: strict schema,
 * only live keys changed, the whole declaration set loaded and validated (schemas, Cedar strict validation,
 * digest), the same cell id and an unchanged audit section.
 */
export function assessConfiguration(raw: unknown, running: RunningState): UpdateAssessment {
  const parsed = parseComponentConfiguration(raw, running.places);
  if (!parsed.ok) return { ok: false, problem: formatConfigurationProblems(parsed.problems) };
  const plan = planSettingsChange(running.settings, parsed.settings);
  if (!plan.ok) return { ok: false, problem: formatConfigurationProblems(plan.problems) };
  const next = plan.next;
  // SAFETY: the whole declaration set is loaded and validated before anything changes; any problem leaves the
  // running set in force.
  const loaded = loadCell(next.cellDirectory);
  if (!loaded.ok) return { ok: false, problem: `declarations in ${next.cellDirectory}: ${loaded.problems.map(formatProblem).join('; ')}` };
  const digest = loaded.cell.declarations.digest;
  if (next.expectedDigest !== undefined && next.expectedDigest !== digest) {
    return { ok: false, problem: `declarations in ${next.cellDirectory} have digest ${digest}, but ${next.expectedDigest} is expected` };
  }
  const current = running.cell.declarations;
  if (loaded.cell.declarations.cellId !== current.cellId) {
    return { ok: false, problem: `declarations in ${next.cellDirectory} are for cell ${loaded.cell.declarations.cellId}, but this component runs cell ${current.cellId}; a different cell needs its own state folder and a restart` };
  }
  if (canonicalJson(current.audit) !== canonicalJson(loaded.cell.declarations.audit)) {
    return { ok: false, problem: "cell.yaml's audit section (retention, maxSize) cannot change while the component runs; restart the component to apply it" };
  }
  return { ok: true, next, changedKeys: plan.changedKeys, cell: loaded.cell };
}
