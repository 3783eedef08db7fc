// The cloud half's connection: a Transport that reaches AWS IoT Core (the nucleus's MQTT proxy under Greengrass, or
// an mqtts connection with the thing's certificate standalone) and the thing name its topics are keyed on. What
// travels over it (Device Defender metrics, audit batches and their acknowledgements) is built on this; the
// interlock never needs it to decide.

import type { Transport } from '../transport/transport.js';

export interface CloudLink {
  /** Not yet started: startRuntime starts it after the local transport and stops it last. */
  readonly transport: Transport;
  /** The AWS IoT thing this interlock reports as ($aws/things/{thing}/..., interlock/{thing}/audit). */
  readonly thingName: string;
}

/** A thing name AWS IoT accepts: 1-128 of [a-zA-Z0-9:_-]. */
export const THING_NAME_PATTERN = /^[a-zA-Z0-9:_-]{1,128}$/;

export function thingNameProblem(name: string): string | undefined {
  return THING_NAME_PATTERN.test(name) ? undefined : `thing name ${JSON.stringify(name)} is not 1-128 characters of a-z, A-Z, 0-9, ':', '_' and '-'`;
}

export interface CloudConnectionOptions {
  readonly log: (msg: string) => void;
  /** Backoff between start attempts: doubles from the first to the second. Default 1 s and 60 s. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/**
 * Starts the cloud transport in the background and keeps trying until it starts or is stopped, so an unreachable
 * cloud never delays or stops the interlock. `started` resolves once the transport is up (the transport itself then
 * reconnects); users of the link (metrics, audit forwarding) begin then.
 */
export class CloudConnection {
  readonly #link: CloudLink;
  readonly #options: CloudConnectionOptions;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #resolveStarted: () => void = () => undefined;
  /** Resolves when the transport has started; never rejects (it stays pending if stopped first). */
  readonly started: Promise<void>;

  constructor(link: CloudLink, options: CloudConnectionOptions) {
    this.#link = link;
    this.#options = options;
    this.started = new Promise((resolve) => {
      this.#resolveStarted = resolve;
    });
  }

  get link(): CloudLink {
    return this.#link;
  }

  start(): void {
    this.#attempt(this.#options.retryMinMs ?? 1_000);
  }

  #attempt(delayMs: number): void {
    if (this.#stopped) return;
    this.#link.transport.start().then(
      () => {
        if (this.#stopped) return;
        this.#options.log(`cloud link up (${this.#link.transport.name}, thing ${this.#link.thingName})`);
        this.#resolveStarted();
      },
      (error: unknown) => {
        if (this.#stopped) return;
        const max = this.#options.retryMaxMs ?? 60_000;
        this.#options.log(`cloud link not up (${error instanceof Error ? error.message : String(error)}); retrying in ${Math.round(delayMs / 1000)} s; decisions go on meanwhile`);
        this.#timer = setTimeout(() => this.#attempt(Math.min(delayMs * 2, max)), delayMs);
        this.#timer.unref();
      },
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#link.transport.stop();
  }
}
