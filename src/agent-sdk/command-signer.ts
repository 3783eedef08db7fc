// What an agent integrator uses to issue commands: signs claims as a compact JWS (EdDSA) with a fresh jti and
// a per-device increasing seq. It holds a private key; it never reads or writes key files itself.

import { randomUUID, type KeyObject } from 'node:crypto';
import { COMMAND_TOKEN_TYPE, type CommandClaims } from '../core/command.js';
import { signCompactJws } from '../crypto/jws.js';

export interface CommandSignerOptions {
  readonly agentId: string;
  readonly kid: string;
  readonly privateKey: KeyObject;
  /** Milliseconds since the epoch; injected for tests. */
  readonly nowMs?: () => number;
  /** Default time-to-live of a command. */
  readonly ttlMs?: number;
}

export interface SignOptions {
  readonly ttlMs?: number;
  readonly trace?: { readonly session?: string; readonly plan?: string };
  /** Overrides for tests and adversarial agents (e.g. a stale seq); normal agents never set these. */
  readonly override?: Partial<Record<keyof CommandClaims, unknown>>;
}

export class CommandSigner {
  private readonly seqs = new Map<string, number>();
  private readonly nowMs: () => number;
  private readonly ttlMs: number;

  constructor(private readonly options: CommandSignerOptions) {
    this.nowMs = options.nowMs ?? Date.now;
    this.ttlMs = options.ttlMs ?? 2000;
  }

  get agentId(): string {
    return this.options.agentId;
  }

  /** The next seq for a device; starts from the current time so a restarted agent does not go backwards. */
  private nextSeq(deviceId: string): number {
    const next = Math.max((this.seqs.get(deviceId) ?? 0) + 1, this.nowMs());
    this.seqs.set(deviceId, next);
    return next;
  }

  claims(deviceId: string, action: string, params: Record<string, unknown>, options: SignOptions = {}): Record<string, unknown> {
    const now = this.nowMs();
    const claims: Record<string, unknown> = {
      iss: this.options.agentId,
      aud: deviceId,
      jti: randomUUID(),
      seq: this.nextSeq(deviceId),
      iat: now / 1000,
      exp: (now + (options.ttlMs ?? this.ttlMs)) / 1000,
      action,
      params,
    };
    if (options.trace !== undefined) claims['trace'] = options.trace;
    return { ...claims, ...options.override };
  }

  sign(deviceId: string, action: string, params: Record<string, unknown>, options: SignOptions = {}): string {
    return signCompactJws(this.claims(deviceId, action, params, options), this.options.kid, this.options.privateKey, COMMAND_TOKEN_TYPE);
  }
}
