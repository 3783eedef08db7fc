// A problem found in an operator's declarations: which file, which field, why. Load returns every problem it
// finds; the interlock refuses to start while there is any.

export interface DeclarationProblem {
  /** Path of the file, relative to the cell folder where possible. */
  readonly file: string;
  /** JSON pointer inside the file (`/joints/2/velocity/max`), or the Cedar policy id. Empty for the whole file. */
  readonly path: string;
  readonly message: string;
  /** 1-based line in the file, when known. */
  readonly line?: number;
}

export function formatProblem(problem: DeclarationProblem): string {
  const where = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return `${where}: ${problem.path || '(file)'}: ${problem.message}`;
}

export class DeclarationError extends Error {
  constructor(readonly problems: readonly DeclarationProblem[]) {
    super(`declarations rejected (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'DeclarationError';
  }
}
