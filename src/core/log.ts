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
