// The lifecycle and configuration calls a component makes to the nucleus, on the same IPC connection as its
// transports: UpdateState, GetConfiguration, SubscribeToConfigurationUpdate (after a deployment applied a change) and
// SubscribeToValidateConfigurationUpdates with SendConfigurationValidityReport (before it does: a REJECTED report
// fails the deployment, and the nucleus keeps the configuration in force).

import { eventstream_rpc, greengrasscoreipc } from 'aws-iot-device-sdk-v2';
import type { IpcConnection } from '../transport/greengrass-ipc.js';

const { model } = greengrasscoreipc;

/** A deployment's proposed configuration for this component, before the nucleus applies it. */
export interface ProposedConfiguration {
  readonly deploymentId: string;
  /** The whole configuration the deployment would leave this component with. */
  readonly configuration: unknown;
}

export type ValidityVerdict = { readonly valid: true } | { readonly valid: false; readonly message: string };

/** Streams stay open across reconnects: each is re-opened on every new client (IpcConnection.restore). */
async function subscribeStream<Event>(
  connection: IpcConnection,
  what: string,
  open: (client: greengrasscoreipc.Client, options: eventstream_rpc.OperationOptions) => {
    on(event: 'message', listener: (event: Event) => void): unknown;
    activate(): Promise<unknown>;
    close(): Promise<void>;
  },
  listener: (event: Event) => void,
): Promise<() => void> {
  let operation: { close(): Promise<void> } | undefined;
  let active = true;
  const remove = await connection.restore(async (client) => {
    if (!active) return;
    await connection.call(
      what,
      async (c, options) => {
        const stream = open(c, options);
        stream.on('message', (event) => {
          if (!active) return;
          try {
            listener(event);
          } catch {
            // The listener reports its own problems; the subscription stays.
          }
        });
        operation = stream;
        await stream.activate();
      },
      client,
    );
  });
  return () => {
    active = false;
    remove();
    void operation?.close().catch(() => undefined);
  };
}

export class ComponentIpc {
  readonly connection: IpcConnection;

  constructor(connection: IpcConnection) {
    this.connection = connection;
  }

  /** Reports RUNNING or ERRORED to the nucleus (what `greengrass-cli component list` shows). */
  async updateState(state: 'RUNNING' | 'ERRORED'): Promise<void> {
    const reported = state === 'RUNNING' ? model.ReportedLifecycleState.RUNNING : model.ReportedLifecycleState.ERRORED;
    await this.connection.call(`greengrass ipc: updateState ${state}`, (client, options) => client.updateState({ state: reported }, options));
  }

  /** This component's configuration under `keyPath` (all of it for []). */
  async getConfiguration(keyPath: readonly string[] = []): Promise<unknown> {
    const response = await this.connection.call('greengrass ipc: getConfiguration', (client, options) => client.getConfiguration({ keyPath: [...keyPath] }, options));
    return response.value;
  }

  /** Calls `listener` after each configuration change under `keyPath`, across reconnects. Returns the cancel. */
  subscribeToConfigurationUpdate(keyPath: readonly string[], listener: (changedKeyPath: readonly string[]) => void): Promise<() => void> {
    return subscribeStream<greengrasscoreipc.model.ConfigurationUpdateEvents>(
      this.connection,
      'greengrass ipc: subscribeToConfigurationUpdate',
      (client, options) => client.subscribeToConfigurationUpdate({ keyPath: [...keyPath] }, options),
      (event) => listener(event.configurationUpdateEvent?.keyPath ?? []),
    );
  }

  /**
   * Calls `judge` with each configuration a deployment proposes for this component, before the nucleus applies it,
   * and sends its verdict back (SendConfigurationValidityReport). A judge that throws, or a proposal without a
   * deployment id, is answered REJECTED: nothing unjudged is accepted. Returns the cancel.
   */
  subscribeToValidateConfigurationUpdates(judge: (proposed: ProposedConfiguration) => Promise<ValidityVerdict>, onReportFailed: (why: string) => void): Promise<() => void> {
    return subscribeStream<greengrasscoreipc.model.ValidateConfigurationUpdateEvents>(
      this.connection,
      'greengrass ipc: subscribeToValidateConfigurationUpdates',
      (client, options) => client.subscribeToValidateConfigurationUpdates({}, options),
      (event) => {
        const deploymentId = event.validateConfigurationUpdateEvent?.deploymentId;
        const configuration: unknown = event.validateConfigurationUpdateEvent?.configuration;
        void (async () => {
          if (typeof deploymentId !== 'string' || deploymentId === '') {
            onReportFailed('a configuration validation event without a deployment id cannot be answered; ignored');
            return;
          }
          let verdict: ValidityVerdict;
          try {
            verdict = await judge({ deploymentId, configuration });
          } catch (error) {
            verdict = { valid: false, message: `the configuration could not be checked: ${error instanceof Error ? error.message : String(error)}` };
          }
          await this.sendConfigurationValidityReport(deploymentId, verdict).catch((error: unknown) =>
            onReportFailed(`validity report for deployment ${deploymentId} not sent: ${error instanceof Error ? error.message : String(error)}`),
          );
        })();
      },
    );
  }

  async sendConfigurationValidityReport(deploymentId: string, verdict: ValidityVerdict): Promise<void> {
    const configurationValidityReport = verdict.valid
      ? { status: model.ConfigurationValidityStatus.ACCEPTED, deploymentId }
      : { status: model.ConfigurationValidityStatus.REJECTED, deploymentId, message: verdict.message };
    await this.connection.call('greengrass ipc: sendConfigurationValidityReport', (client, options) => client.sendConfigurationValidityReport({ configurationValidityReport }, options));
  }
}
