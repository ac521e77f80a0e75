import { Writable } from 'node:stream';
import { createLogger } from '#shared';
import type { Logger } from '#shared';

/** A logger whose JSON lines a test can read back. */
export interface CapturedLogger {
  logger: Logger;
  lines(): Array<Record<string, unknown>>;
  text(): string;
}

/** Everything any captured logger of this test file wrote: test/support/log-audit.ts scans it after the file. */
const everything: string[] = [];

/** All log text captured in this test file so far. */
export function allCapturedLogs(): string {
  return everything.join('');
}

export function captureLogs(level = 'debug'): CapturedLogger {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString('utf8');
      chunks.push(text);
      everything.push(text);
      callback();
    },
  });
  const logger = createLogger({ level, destination });
  const text = () => chunks.join('');
  return {
    logger,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
