// A command that passed the envelope: authenticated, fresh, addressed to a declared device, with parameters of
// the right shape. Only the envelope stage produces one; later stages trust its shape, never its physics.

import type { DeviceDeclaration, Principal } from './declarations.js';

export interface VerifiedCommand {
  /** The jti claim. */
  readonly commandId: string;
  readonly kid: string;
  readonly seq: number;
  /** Who signed it: an agent, or an operator (a human acting directly, e.g. a stop or a trip reset). */
  readonly agent: Principal;
  readonly device: DeviceDeclaration;
  readonly action: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly safeState: boolean;
  readonly issuedAtMs: number;
  readonly expiresAtMs: number;
  readonly trace?: { readonly session?: string; readonly plan?: string };
}

/** The claims an agent signs. Times are JWT NumericDates (seconds since the epoch). */
export interface CommandClaims {
  readonly iss: string;
  readonly aud: string;
  readonly jti: string;
  readonly seq: number;
  readonly iat: number;
  readonly exp: number;
  readonly action: string;
  readonly params: Record<string, unknown>;
  readonly trace?: { readonly session?: string; readonly plan?: string };
}

export const COMMAND_TOKEN_TYPE = 'interlock-command+jws';
