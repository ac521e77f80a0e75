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

const CENSOR = '[redacted]';

/**
 * Paths pino blanks out whatever a caller logs. Defence in depth: no code here logs these on purpose.
 * Literal paths only: with any wildcard path, pino's redaction (@pinojs/redact) clones every logged object
 * and parses its paths again on every line, which doubled the logging cost of a request. The wildcard
 * level, `*.key`, is {@link redactOneLevel}'s. See https://getpino.io/#/docs/redaction.
 */
const REDACTED_PATHS = [
  'authorization',
  'token',
  'idToken',
  'privateKey',
  'encoded_jit_config',
  'req.headers.authorization',
  'headers.authorization',
];

/** Keys blanked one level down in whatever a caller logs (what the `*.key` redaction paths did). */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'Authorization',
  'token',
  'idToken',
  'privateKey',
  'encoded_jit_config',
]);

/**
 * pino's `formatters.log` (https://getpino.io/#/docs/api?id=formatters-object): blanks a
 * {@link SECRET_KEYS} key of any object one level down. Copies only an object that holds one, keeping its
 * prototype and non-enumerable fields (an Error's message and stack) for the serializers; the caller's
 * object is never changed.
 */
function redactOneLevel(object: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in object) {
    const value = object[key];
    if (value === null || typeof value !== 'object') continue;
    for (const inner in value) {
      if (!SECRET_KEYS.has(inner)) continue;
      copy ??= { ...object };
      const current = copy[key] as object;
      if (current === value) {
        const censored = Object.create(
          Object.getPrototypeOf(current) as object | null,
          Object.getOwnPropertyDescriptors(current),
        ) as object;
        // V8's `stack` accessor reads the stack only on the original Error.
        if (current instanceof Error) {
          Object.defineProperty(censored, 'stack', {
            value: current.stack,
            writable: true,
            configurable: true,
          });
        }
        copy[key] = censored;
      }
      (copy[key] as Record<string, unknown>)[inner] = CENSOR;
    }
  }
  return copy ?? object;
}

let timeMs = Number.NaN;
let timeField = '';
/** pino's `stdTimeFunctions.isoTime`, formatted once per millisecond rather than once per line. */
function isoTime(): string {
  const now = Date.now();
  if (now !== timeMs) {
    timeMs = now;
    timeField = `,"time":"${new Date(now).toISOString()}"`;
  }
  return timeField;
}

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
      timestamp: isoTime,
      formatters: {
        level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }),
        log: redactOneLevel,
      },
      redact: { paths: REDACTED_PATHS, censor: CENSOR },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
