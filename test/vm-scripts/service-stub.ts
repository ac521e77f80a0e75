import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIdTokenVerifier } from '#shared';
import type { IdTokenVerifier } from '#shared';

/** One request as the stub received it. */
export interface StubCall {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON body, or undefined when empty or not JSON. */
  body: unknown;
  rawBody: string;
  /** `none` without an Authorization header, `valid` when the token verified for this stub's audience, else why not. */
  auth: string;
  /** The calling instance's name, from a verified token's Compute Engine claims. */
  instanceName?: string;
  /** Milliseconds since the epoch. */
  time: number;
}

/** What the stub answers. */
export interface StubReply {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  /** Close the connection without answering: a network error for the client. */
  destroy?: boolean;
}

export type StubRoute = [method: string, path: string | RegExp, handler: (call: StubCall) => StubReply];

export interface ServiceStub {
  readonly url: string;
  readonly calls: StubCall[];
  /** Every bearer token received, so a test can check that none was printed. */
  readonly tokens: string[];
  /** Processes whose command line held a secret while a request carrying it was in flight. */
  readonly argvLeaks: string[];
  /** Answers the next requests to `method path` with these replies, in order, before its route. */
  queue(method: string, path: string, ...replies: StubReply[]): void;
  /** Forgets the calls, argv leaks and queued replies of the last test (tokens stay: a leak check needs them). */
  reset(): void;
  close(): Promise<void>;
}

/** Command lines (NUL-separated argv) of every process holding `secret` in its argv. Linux only. */
export function processesWithArgvContaining(secret: string): string[] {
  if (!fs.existsSync('/proc/self/cmdline')) return [];
  const found: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // the process ended meanwhile
    }
    if (cmdline.includes(secret)) found.push(`${entry}: ${cmdline.replaceAll('\0', ' ').slice(0, 80)}...`);
  }
  return found;
}

/**
 * A loopback HTTP server standing in for the token proxy, the instance deleter or the fake GitHub's sandbox
 * routes. It records every request, verifies bearer tokens against the fake issuer for its own URL (or
 * `audiences`), answers queued replies first and routes otherwise, and while a request that carries a
 * secret is in flight it looks for that secret in every process's argv.
 */
export async function startServiceStub(options: {
  routes: StubRoute[];
  certsUrl?: string;
  /** Accepted token audiences, given the stub's URL; default `[url]`. */
  audiences?: (url: string) => string[];
  /** Secrets in a request body to look for in argv (e.g. the JIT config sent to the fake GitHub). */
  bodySecrets?: (body: unknown) => string[];
}): Promise<ServiceStub> {
  const calls: StubCall[] = [];
  const tokens: string[] = [];
  const argvLeaks: string[] = [];
  const queued = new Map<string, StubReply[]>();
  let verifier: IdTokenVerifier | undefined;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://stub');
    let body: unknown;
    try {
      body = rawBody === '' ? undefined : JSON.parse(rawBody);
    } catch {
      body = undefined;
    }
    const call: StubCall = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
      rawBody,
      auth: 'none',
      time: Date.now(),
    };
    const secrets = options.bodySecrets?.(body) ?? [];
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      const token = /^Bearer (.+)$/.exec(authorization)?.[1];
      if (token === undefined || !verifier) {
        call.auth = 'not a bearer token';
      } else {
        tokens.push(token);
        secrets.push(token);
        try {
          const identity = await verifier.verify(token);
          call.auth = 'valid';
          if (identity.compute) call.instanceName = identity.compute.instanceName;
        } catch (error) {
          call.auth = (error as Error).message;
        }
      }
    }
    // The client is still waiting for this answer: its argv (curl's, the script's) must not hold the secret.
    for (const secret of secrets) argvLeaks.push(...processesWithArgvContaining(secret));
    calls.push(call);

    const key = `${call.method} ${call.path}`;
    let reply = queued.get(key)?.shift();
    if (!reply) {
      const route = options.routes.find(
        ([method, path]) =>
          method === call.method && (typeof path === 'string' ? path === call.path : path.test(call.path)),
      );
      reply = route ? route[2](call) : { status: 404, json: { error: `no route for ${key}` } };
    }
    if (reply.destroy) {
      req.socket.destroy();
      return;
    }
    res.writeHead(reply.status ?? 200, {
      'Content-Type': reply.json !== undefined ? 'application/json' : 'text/plain',
      ...reply.headers,
    });
    res.end(reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? ''));
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.certsUrl !== undefined) {
    verifier = createIdTokenVerifier({
      audiences: options.audiences?.(url) ?? [url],
      certsUrl: options.certsUrl,
    });
  }
  return {
    url,
    calls,
    tokens,
    argvLeaks,
    queue: (method, path, ...replies) => {
      const key = `${method} ${path}`;
      queued.set(key, [...(queued.get(key) ?? []), ...replies]);
    },
    reset: () => {
      calls.length = 0;
      argvLeaks.length = 0;
      queued.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
