// Numeric fields of a device's state message, by path, and the physical dimension of each: what an approval's
// drift tolerance may name. Dimensions come from the unit suffix of the field name (positionsRad, pose.xM,
// speedMPerS) or, for a process unit's measurements and setpoints, from their declaration.

import type { DeviceDeclaration } from './kinds/index.js';
import { kindSpec } from './kinds/index.js';
import type { Dimension } from './units.js';

/** Longest suffix first, so that "MPerS" is not read as "S" and "RadPerS2" not as "RadPerS". */
const SUFFIX_DIMENSIONS: readonly (readonly [string, Dimension])[] = [
  ['RadPerS2', 'angularAcceleration'],
  ['RadPerS', 'angularVelocity'],
  ['MPerS2', 'linearAcceleration'],
  ['MPerS', 'linearVelocity'],
  ['Rad', 'angle'],
  ['Nm', 'torque'],
  ['Kg', 'mass'],
  ['Ms', 'duration'],
  ['M', 'length'],
  ['N', 'force'],
];

/** Fields that describe the message, not the machine: never compared for drift. */
export const VOLATILE_STATE_FIELDS: readonly string[] = ['timeMs', 'people', 'lastCommandId'];

interface SchemaNode {
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
}

function isNumeric(node: SchemaNode | undefined): boolean {
  if (node === undefined) return false;
  const types = Array.isArray(node.type) ? node.type : [node.type];
  if (types.includes('number') || types.includes('integer')) return true;
  return types.includes('array') && node.items !== undefined && isNumeric(node.items);
}

/**
 * The dimension of a numeric state field of `device`, or a sentence saying why the path names none: an unknown
 * field, a field that is not a number, or a name without a unit suffix.
 */
export function stateFieldDimension(device: DeviceDeclaration, field: string): { ok: true; dimension: Dimension } | { ok: false; problem: string } {
  const [first, second, ...rest] = field.split('.');
  if (first === undefined || rest.length > 0) return { ok: false, problem: `"${field}" is not a state field path (one or two names)` };
  if (VOLATILE_STATE_FIELDS.includes(first)) return { ok: false, problem: `${first} is not physical state and is never compared` };
  if (device.kind === 'process_unit' && (first === 'measurements' || first === 'setpoints') && second !== undefined) {
    if (first === 'setpoints') {
      const setpoint = device.setpoints.find((s) => s.name === second);
      return setpoint === undefined ? { ok: false, problem: `${device.id} declares no setpoint "${second}"` } : { ok: true, dimension: setpoint.dimension };
    }
    const measurement = device.measurements.find((m) => m.name === second);
    if (measurement === undefined) return { ok: false, problem: `${device.id} declares no measurement "${second}"` };
    if (measurement.type === 'boolean') return { ok: false, problem: `${field} is a boolean: it must not change at all, so it takes no tolerance` };
    return { ok: true, dimension: measurement.dimension };
  }
  const properties = kindSpec(device.kind).stateProperties as Readonly<Record<string, SchemaNode>>;
  let node: SchemaNode | undefined = Object.hasOwn(properties, first) ? properties[first] : undefined;
  if (node !== undefined && second !== undefined) node = node.properties !== undefined && Object.hasOwn(node.properties, second) ? node.properties[second] : undefined;
  if (node === undefined) return { ok: false, problem: `a ${device.kind} state has no field ${field}` };
  if (!isNumeric(node)) return { ok: false, problem: `${field} is not numeric: it must not change at all, so it takes no tolerance` };
  const name = second ?? first;
  const suffix = SUFFIX_DIMENSIONS.find(([s]) => name.endsWith(s));
  if (suffix === undefined) return { ok: false, problem: `${field} names no unit, so no tolerance can be converted for it` };
  return { ok: true, dimension: suffix[1] };
}
