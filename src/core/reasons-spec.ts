// The shape of a reason-code catalog entry; apart from the catalog so that device kinds can declare their own
// codes without importing the catalog that merges them.

export type Stage = 'input' | 'envelope' | 'policy' | 'trust' | 'approval' | 'bounds' | 'decide' | 'audit' | 'internal';

export interface ReasonSpec {
  readonly stage: Stage;
  /** What the code means, in one sentence; the reason table in docs/reason-codes.md is checked against these. */
  readonly summary: string;
}
