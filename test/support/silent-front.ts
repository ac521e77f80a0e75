import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A loopback server in front of another that can stop answering chosen requests. */
export interface SilentFront {
  /** Point the client here instead of at the server behind. */
  url: string;
  /** Requests matching this (method, path) are accepted and never answered; `undefined` passes all on. */
  silence(match: ((method: string, path: string) => boolean) | undefined): void;
  /** How many requests it has left unanswered so far. */
  readonly silenced: number;
  close(): Promise<void>;
}

/**
 * Forwards every request to `target` unchanged, except those `silence` names: their connection is accepted,
 * their request read, and no answer ever comes (until {@link SilentFront.close}). That is an outside
 * service that hangs, the case every deadline exists for; a delay fault would answer eventually.
 */
export async function startSilentFront(target: string): Promise<SilentFront> {
  const upstream = new URL(target);
  let match: ((method: string, path: string) => boolean) | undefined;
  let silenced = 0;
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://front').pathname;
    if (match?.(req.method ?? 'GET', path)) {
      silenced += 1;
      req.resume();
      return;
    }
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    silence: (next) => {
      match = next;
    },
    get silenced() {
      return silenced;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
