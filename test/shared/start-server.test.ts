import net from 'node:net';
import { createLogger, startServer } from '#shared';
import type { RunningServer } from '#shared';

/** Sends raw bytes and returns the status line and body of the answer. */
function raw(port: number, payload: string): Promise<{ statusLine: string; body: string }> {
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      resolve({ statusLine: head.split('\r\n')[0]!, body });
    });
  });
}

describe('startServer', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer((_req, res) => res.end('ok'), {
      port: 0,
      host: '127.0.0.1',
      logger: createLogger({ level: 'silent' }),
    });
  });
  afterAll(() => server.close());

  it('answers headers over 16 KiB with a JSON 431', async () => {
    const answer = await raw(
      server.port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(answer).toEqual({
      statusLine: 'HTTP/1.1 431 Request Header Fields Too Large',
      body: '{"error":"request headers are too large"}',
    });
  });

  it('answers a malformed request with a JSON 400', async () => {
    const answer = await raw(server.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(answer).toEqual({
      statusLine: 'HTTP/1.1 400 Bad Request',
      body: '{"error":"malformed HTTP request"}',
    });
  });

  it('keeps serving afterwards', async () => {
    expect(await (await fetch(`http://127.0.0.1:${server.port}/`)).text()).toBe('ok');
  });
});
