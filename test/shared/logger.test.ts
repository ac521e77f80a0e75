import { PassThrough } from 'node:stream';
import { createLogger } from '#shared';

function capture(): { lines: () => Record<string, unknown>[]; logger: ReturnType<typeof createLogger> } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const logger = createLogger({ destination: stream });
  const lines = () =>
    text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { lines, logger };
}

describe('createLogger redaction', () => {
  it('blanks secrets at the top level and one level down, without changing what the caller logged', () => {
    const { lines, logger } = capture();
    const call = {
      token: 'ghs_top',
      nested: { idToken: 'eyJ.a.b', Authorization: 'Bearer x', kept: 1 },
      n: 2,
    };
    logger.info(call, 'message');
    const [line] = lines();
    expect(line).toMatchObject({
      token: '[redacted]',
      nested: { idToken: '[redacted]', Authorization: '[redacted]', kept: 1 },
      n: 2,
      message: 'message',
      severity: 'INFO',
    });
    expect(call.nested.idToken).toBe('eyJ.a.b');
    expect(call.token).toBe('ghs_top');
    expect(JSON.stringify(line)).not.toMatch(/ghs_top|eyJ|Bearer/);
  });

  it('keeps an Error’s message and stack when it blanks a secret on it', () => {
    const { lines, logger } = capture();
    const error = Object.assign(new Error('boom'), { token: 'ghs_secret' });
    logger.error({ err: error }, 'failed');
    const err = lines()[0]!.err as Record<string, unknown>;
    expect(err).toMatchObject({ type: 'Error', message: 'boom', token: '[redacted]' });
    expect(String(err.stack)).toContain('boom');
    expect(error.token).toBe('ghs_secret');
  });

  it('writes an ISO time on every line', () => {
    const { lines, logger } = capture();
    logger.info('one');
    logger.info('two');
    for (const line of lines()) expect(new Date(String(line.time)).toISOString()).toBe(line.time);
  });
});
