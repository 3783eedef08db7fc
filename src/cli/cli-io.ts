// Where a CLI command writes, injected so that commands run in-process (tests) as they do from a terminal.

export interface CliIo {
  /** One result line to stdout. */
  out(line: string): void;
  /** One problem line to stderr. */
  err(line: string): void;
  /** Prints the problem and the usage text; returns the usage exit code, 2. */
  usageError(message: string): number;
}
