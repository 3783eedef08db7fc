// The end-to-end bench's agent signs on this worker thread, so that signing 5,000 commands/s does not share the
// event loop that stamps send and receipt times. Two halves: the worker (run when loaded as one) and TokenSupply,
// which the bench uses on the main thread. It signs only with the bench agent's key it is handed.

import { createPrivateKey } from 'node:crypto';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { CommandSigner } from '../src/agent-sdk/command-signer.js';
import type { AgentPrivateKey } from '../src/keys/cell-agent-keys.js';

interface SignerData {
  readonly agentId: string;
  readonly kid: string;
  readonly privateKeyPem: string;
  readonly ttlMs: number;
  readonly speedMPerS: number;
}

/** One signed command: its token and its command id (the jti), which the driver side reads back from the payload. */
export interface SignedCommand {
  readonly deviceId: string;
  readonly token: string;
  readonly commandId: string;
}

if (!isMainThread && parentPort !== null && (workerData as { benchSigner?: SignerData } | undefined)?.benchSigner !== undefined) {
  const data = (workerData as { benchSigner: SignerData }).benchSigner;
  // One signer for the whole bench: its per-device seq only rises, in the order the commands will be sent.
  const signer = new CommandSigner({ agentId: data.agentId, kid: data.kid, privateKey: createPrivateKey(data.privateKeyPem), ttlMs: data.ttlMs });
  const port = parentPort;
  port.on('message', (devices: string[]) => {
    const batch: SignedCommand[] = devices.map((deviceId) => {
      const token = signer.sign(deviceId, 'set_speed', { speedMPerS: data.speedMPerS });
      const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti: string };
      return { deviceId, token, commandId: claims.jti };
    });
    port.postMessage(batch);
  });
}

/**
 * Signed commands for devices in round-robin order, signed ahead on the worker in batches of about 100 ms of load.
 * Each command is signed (its iat) shortly before its slot, well within its TTL.
 */
export class TokenSupply {
  readonly #worker: Worker;
  /** Signed and not yet taken: #ready[#head..]. An index, not shift(): this queue holds thousands at 5,000/s. */
  #ready: SignedCommand[] = [];
  #head = 0;
  #requested = 0;
  #next = 0;
  #waiters: (() => void)[] = [];
  /** The worker's error, if it died: the bench fails with it instead of waiting for signatures that never come. */
  #failed: Error | undefined;

  constructor(
    private readonly deviceIds: readonly string[],
    key: AgentPrivateKey,
    options: { readonly ttlMs: number; readonly speedMPerS: number },
  ) {
    const benchSigner: SignerData = { agentId: key.agentId, kid: key.kid, privateKeyPem: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), ...options };
    this.#worker = new Worker(new URL(import.meta.url), { workerData: { benchSigner } });
    this.#worker.on('message', (batch: SignedCommand[]) => {
      for (const command of batch) this.#ready.push(command);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.#worker.on('error', (error) => {
      this.#failed = error;
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Asks for signatures so that at least `ahead` commands are ready or on their way. */
  request(ahead: number): void {
    const outstanding = this.#requested - this.#next;
    if (outstanding >= ahead) return;
    const devices: string[] = [];
    for (let i = outstanding; i < ahead; i++) devices.push(this.deviceIds[(this.#requested + devices.length) % this.deviceIds.length] ?? '');
    this.#requested += devices.length;
    this.#worker.postMessage(devices);
  }

  /** The next signed command if one is ready (undefined: the signer is behind). */
  take(): SignedCommand | undefined {
    if (this.#failed !== undefined) throw new Error(`bench: the signing worker failed: ${this.#failed.message}`);
    const command = this.#ready[this.#head];
    if (command === undefined) return undefined;
    this.#head += 1;
    this.#next += 1;
    if (this.#head >= 4096) {
      this.#ready = this.#ready.slice(this.#head);
      this.#head = 0;
    }
    return command;
  }

  /** Resolves once at least `count` commands are ready (bounded by the caller). */
  async waitReady(count: number): Promise<void> {
    while (this.#ready.length - this.#head < count) {
      if (this.#failed !== undefined) throw new Error(`bench: the signing worker failed: ${this.#failed.message}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  async close(): Promise<void> {
    await this.#worker.terminate();
  }
}
