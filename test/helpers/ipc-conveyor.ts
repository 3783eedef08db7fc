// The other components of a Greengrass test: a simulated conveyor driver (it may publish only its own state and
// outcomes, and subscribe to its releases and the heartbeat) and an agent (its own command and decision topics), each
// with the accessControl its recipe would grant, connected to the test nucleus over IPC.

import type { Test } from 'tap';
import { SimulatedConveyor } from '../../simulator/conveyor-driver.js';
import type { KeyObject } from 'node:crypto';
import { IpcTransport } from '../../src/transport/greengrass-ipc.js';
import type { AccessControl, TestNucleus } from './greengrass-nucleus.js';
import type { TestCell } from './test-cell.js';

export const CONVEYOR = 'conveyor-1';

export const DRIVER_ACCESS: AccessControl = {
  'aws.greengrass.ipc.pubsub': {
    'driver:1': { operations: ['aws.greengrass#PublishToTopic'], resources: ['actuator/conveyor-1/state', 'actuator/conveyor-1/outcome'] },
    'driver:2': { operations: ['aws.greengrass#SubscribeToTopic'], resources: ['actuator/conveyor-1/command', 'interlock/heartbeat'] },
  },
};

export const AGENT_ACCESS: AccessControl = {
  'aws.greengrass.ipc.pubsub': {
    'agent:1': { operations: ['aws.greengrass#PublishToTopic'], resources: ['interlock/conveyor-1/command'] },
    'agent:2': { operations: ['aws.greengrass#SubscribeToTopic'], resources: ['interlock/conveyor-1/decision'] },
  },
};

export interface IpcConveyorCell {
  readonly conveyor: SimulatedConveyor;
  readonly driverBus: IpcTransport;
  readonly agentBus: IpcTransport;
}

/**
 * Connects the `conveyor-driver` and `agent` components and starts the conveyor, which verifies releases with the
 * interlock's public key (all stopped at teardown).
 */
export async function startIpcConveyor(t: Test, nucleus: TestNucleus, cell: TestCell, interlockPublicKey: KeyObject, timing: { reconnectMinMs?: number; reconnectMaxMs?: number; connectTimeoutMs?: number } = {}): Promise<IpcConveyorCell> {
  const bus = (component: string): IpcTransport => new IpcTransport({ socketPath: nucleus.socketPath, authToken: nucleus.tokens.get(component) as string, ...timing });
  const driverBus = bus('conveyor-driver');
  await driverBus.start();
  const conveyor = new SimulatedConveyor({
    deviceId: CONVEYOR,
    transport: driverBus,
    interlockPublicKey,
    driverKey: cell.driverKey(CONVEYOR),
    defaultRampMPerS2: 0.25,
    heartbeatTimeoutMs: 0,
    permissives: { guardClosed: true, estopReleased: true, downstreamReady: true },
  });
  await conveyor.start();
  const agentBus = bus('agent');
  await agentBus.start();
  t.teardown(async () => {
    await conveyor.stop();
    await driverBus.stop();
    await agentBus.stop();
  });
  return { conveyor, driverBus, agentBus };
}
