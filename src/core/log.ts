// Namespaced logging to stderr (stdout is for the live view and CLI output). It never logs secrets; callers
// pass messages, not raw configuration.

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  child(namespace: string): Logger;
}

export type LogLevel = 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { info: 0, warn: 1, error: 2, silent: 3 };

export function createLogger(namespace: string, level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Logger {
  const emit = (at: Exclude<LogLevel, 'silent'>, message: string): void => {
    if (ORDER[at] >= ORDER[level]) write(`${new Date().toISOString()} ${at.toUpperCase().padEnd(5)} [${namespace}] ${message}`);
  };
  return {
    info: (message) => emit('info', message),
    warn: (message) => emit('warn', message),
    error: (message) => emit('error', message),
    child: (child) => createLogger(`${namespace}:${child}`, level, write),
  };
}

export const silentLogger: Logger = createLogger('silent', 'silent');

/**
 * A warning at most once per `windowMs`, whatever its text (which an outside client may choose, so it is not a
 * key): the first line of a window is written, the rest are counted and the count goes out with the next line.
 */
export function throttledWarn(logger: Logger, windowMs: number, nowMs: () => number = Date.now): (message: string) => void {
  let lastAt = -Infinity;
  let held = 0;
  return (message) => {
    const now = nowMs();
    if (now - lastAt < windowMs) {
      held++;
      return;
    }
    lastAt = now;
    logger.warn(held === 0 ? message : `${message} (and ${held} more like it since the last line)`);
    held = 0;
  };
}
