// Ed25519 signature checks on worker threads, so that verification (the most expensive per-command step here)
// runs on the other core while the main thread decides and records earlier commands. The result is only a hint
// bound to the exact token and kid: the envelope uses it when both match and verifies itself otherwise, so a
// pool that is slow, broken or stopped can never make a command pass that would not pass without it.

import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** What a worker found for one token: the kid in its header and whether the signature verifies with that key. */
export interface PreVerified {
  readonly token: string;
  readonly kid: string;
  readonly ok: boolean;
}

// Plain JavaScript run with eval, so the worker needs no build step or loader. It gets the public keys once and
// then answers { id, token } with { id, kid, ok }; any parse problem is "not verified" (the main thread then
// decides on its own, with its strict parser).
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { verify } = require('node:crypto');
const keys = new Map(workerData.keys);
parentPort.on('message', ({ id, token }) => {
  let kid = '';
  let ok = false;
  try {
    const parts = token.split('.');
    if (parts.length === 3) {
      const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
      if (header && typeof header.kid === 'string' && header.alg === 'EdDSA') {
        kid = header.kid;
        const key = keys.get(kid);
        const signature = Buffer.from(parts[2], 'base64url');
        ok = key !== undefined && signature.length === 64 && verify(null, Buffer.from(parts[0] + '.' + parts[1], 'ascii'), key, signature);
      }
    }
  } catch {
    ok = false;
  }
  parentPort.postMessage({ id, kid, ok });
});
`;

interface Job {
  readonly token: string;
  readonly resolve: (result: PreVerified | undefined) => void;
}

export class VerifierPool {
  readonly #workers: { worker: Worker; jobs: Map<number, Job>; alive: boolean }[] = [];
  #nextId = 0;
  #next = 0;
  #closed = false;

  /** `keys`: every public key by kid (the cell's registry). `threads`: how many workers (at least 1). */
  constructor(keys: ReadonlyMap<string, { readonly publicKey: KeyObject }>, threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`VerifierPool: threads must be a positive integer, got ${threads}`);
    const keyList = [...keys].map(([kid, key]) => [kid, key.publicKey] as const);
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { keys: keyList } });
      const entry = { worker, jobs: new Map<number, Job>(), alive: true };
      // A worker must never keep the process alive, nor take it down.
      worker.unref();
      worker.on('message', (message: { id: number; kid: string; ok: boolean }) => {
        const job = entry.jobs.get(message.id);
        if (job === undefined) return;
        entry.jobs.delete(message.id);
        job.resolve({ token: job.token, kid: message.kid, ok: message.ok === true });
      });
      const fail = (): void => {
        entry.alive = false;
        // Pending jobs get no hint: the envelope verifies those itself.
        for (const job of entry.jobs.values()) job.resolve(undefined);
        entry.jobs.clear();
      };
      worker.on('error', fail);
      worker.on('exit', fail);
      this.#workers.push(entry);
    }
  }

  /** Starts verifying `token` on a worker; resolves with the hint, or undefined when no worker could do it. */
  verify(token: string): Promise<PreVerified | undefined> {
    const alive = this.#workers.filter((w) => w.alive);
    if (this.#closed || alive.length === 0) return Promise.resolve(undefined);
    const entry = alive[this.#next++ % alive.length];
    if (entry === undefined) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      entry.jobs.set(id, { token, resolve });
      entry.worker.postMessage({ id, token });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }
}

/** The envelope's signature check given a hint: the hint's answer when it is about this exact token and key. */
export function hintedVerifier(hint: PreVerified | undefined, token: string): ((kid: string) => boolean | undefined) | undefined {
  if (hint === undefined || hint.token !== token) return undefined;
  return (kid) => (kid === hint.kid ? hint.ok : undefined);
}
