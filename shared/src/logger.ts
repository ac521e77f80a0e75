import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

/** pino level names mapped to Cloud Logging's `severity` values. */
const SEVERITY: Readonly<Record<string, string>> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

/**
 * Paths pino blanks out whatever a caller logs. Defence in depth: no code here logs these on purpose.
 * See https://getpino.io/#/docs/redaction.
 */
const REDACTED_PATHS = [
  'authorization',
  'token',
  'idToken',
  'privateKey',
  'encoded_jit_config',
  '*.authorization',
  '*.Authorization',
  '*.token',
  '*.idToken',
  '*.privateKey',
  '*.encoded_jit_config',
  'req.headers.authorization',
  'headers.authorization',
];

export interface LoggerOptions {
  level?: string;
  /**
   * Where lines go; by default stdout, written synchronously. Tests pass a stream to read them back.
   *
   * Synchronous because of shutdown: pino's default asynchronous stdout flushes what is pending when the
   * process exits, and sonic-boom retries a write that fails with EPIPE forever, so a service whose stdout
   * reader had gone never exited on SIGTERM (its shutdown lines were still pending). A synchronous write
   * fails at once, and pino then stops writing to the broken pipe. Cloud Run reads stdout as lines arrive.
   */
  destination?: DestinationStream;
  /** Fields on every line, such as the service name. */
  base?: Record<string, unknown>;
}

/**
 * A logger that writes one JSON object per line in the shape Cloud Logging reads as structured logs:
 * `severity`, `message`, `time`, and whatever fields a call adds (`httpRequest`, trace).
 * https://cloud.google.com/logging/docs/structured-logging
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      messageKey: 'message',
      base: options.base ?? null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }),
      },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
