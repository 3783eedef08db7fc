// The device kinds the interlock knows, their actions, and the JSON Schema of each action's parameters.
// Command fields carry their unit in their name (positionsRad); an action not listed here is denied.

export interface ActionSpec {
  /** A safe-state action (stop) passes policy and bounds for any authenticated agent. */
  readonly safeState: boolean;
  /** JSON Schema (ajv strict) for the command's `params`. */
  readonly paramsSchema: Readonly<Record<string, unknown>>;
}

const finiteNumber = { type: 'number' } as const;

export const DEVICE_KINDS = {
  robot_arm: {
    actions: {
      move_joints: {
        safeState: false,
        paramsSchema: {
          type: 'object',
          additionalProperties: false,
          required: ['positionsRad', 'velocityRadPerS'],
          properties: {
            /** Target position for every joint, in declaration order. */
            positionsRad: { type: 'array', minItems: 1, maxItems: 16, items: finiteNumber },
            /** The speed each moving joint travels at. */
            velocityRadPerS: { type: 'number', exclusiveMinimum: 0 },
          },
        },
      },
      stop: {
        safeState: true,
        paramsSchema: { type: 'object', additionalProperties: false, properties: {} },
      },
    },
  },
} as const satisfies Record<string, { readonly actions: Readonly<Record<string, ActionSpec>> }>;

export type DeviceKind = keyof typeof DEVICE_KINDS;

export const DEVICE_KIND_NAMES = Object.keys(DEVICE_KINDS) as DeviceKind[];

export function actionSpec(kind: DeviceKind, action: string): ActionSpec | undefined {
  const actions: Readonly<Record<string, ActionSpec>> = DEVICE_KINDS[kind].actions;
  return Object.hasOwn(actions, action) ? actions[action] : undefined;
}

/** Every action name across all kinds, for the Cedar schema check. */
export function allActionNames(): string[] {
  return [...new Set(DEVICE_KIND_NAMES.flatMap((kind) => Object.keys(DEVICE_KINDS[kind].actions)))].sort();
}
