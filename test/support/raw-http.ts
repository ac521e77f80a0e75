import net from 'node:net';

/** A response read off the wire. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface RawRequest {
  method: string;
  path: string;
  /** Sent exactly as given, in order, duplicates and odd spellings included. */
  headers?: Array<[string, string]>;
  body?: string | Buffer;
  /** Give up after this long (ms): a hang is a failure the test should see. Default 10 s. */
  timeoutMs?: number;
}

function decodeChunked(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = data.indexOf('\r\n', offset);
    if (lineEnd < 0) break;
    const size = parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * Sends one HTTP/1.1 request byte for byte over a fresh socket (`Connection: close`), so tests can send
 * what `fetch` and supertest refuse or merge: duplicate headers, tabs, odd schemes, huge headers.
 */
export function rawRequest(port: number, request: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no complete answer to ${request.method} ${request.path} within ${request.timeoutMs ?? 10_000} ms`,
        ),
      );
    }, request.timeoutMs ?? 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearTimeout(timer);
      // A server may answer and close before it read the whole body: what it sent still counts.
      if (chunks.length > 0) finish();
      else reject(error);
    });
    const finish = () => {
      clearTimeout(timer);
      const data = Buffer.concat(chunks);
      const headEnd = data.indexOf('\r\n\r\n');
      const head = data.subarray(0, headEnd < 0 ? data.length : headEnd).toString('latin1');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      let bodyBytes: Buffer = headEnd < 0 ? Buffer.alloc(0) : data.subarray(headEnd + 4);
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) bodyBytes = decodeChunked(bodyBytes);
      const body = bodyBytes.toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body, json });
    };
    socket.on('end', finish);
    socket.on('connect', () => {
      const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(request.body);
      const headers = request.headers ?? [];
      const names = new Set(headers.map(([name]) => name.toLowerCase()));
      const lines = [
        `${request.method} ${request.path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Connection: close',
      ];
      for (const [name, value] of headers) lines.push(`${name}: ${value}`);
      if (!names.has('content-length') && !names.has('transfer-encoding') && body.length > 0) {
        lines.push(`Content-Length: ${body.length}`);
      }
      socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]));
    });
  });
}
