import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Express, NextFunction, Request, Response } from 'express';

/** One request as a fake received it. Tests assert on these. */
export interface RecordedCall {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** Raw body text ('' when there was none). */
  rawBody: string;
  /** Parsed JSON body, or undefined when the body was empty or not JSON. */
  body: unknown;
  time: number;
}

/**
 * A fault the fake injects instead of (or before) its normal answer. Faults are matched in the order they
 * were added; a fault with `times` is used up after that many matches.
 */
export interface Fault {
  method?: string;
  /** A string matches a path that contains it; a RegExp is tested against the path. */
  path?: string | RegExp;
  /** Answer with this status (and `body`, `headers`) instead of the normal answer. */
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long first. Without `status`, `reset` or `malformed`, the normal answer follows the delay. */
  delayMs?: number;
  /** Destroy the connection without answering. */
  reset?: boolean;
  /** Answer 200 with a body that is not valid JSON. */
  malformed?: boolean;
  /** How many requests this fault applies to (default: unlimited). */
  times?: number;
  /**
   * Runs when a matching request arrives, before anything is answered: how a test changes the fake's world
   * between two calls of a client (a job handed to a runner between a list and a re-read). Without
   * `status`, `reset` or `malformed`, the normal answer follows and sees the change.
   */
  before?: () => void;
}

/** The recording and fault injection every fake has. */
export interface FakeControls {
  readonly calls: RecordedCall[];
  /** Calls whose method and path match (path: substring or RegExp). */
  callsTo(method: string, path: string | RegExp): RecordedCall[];
  addFault(fault: Fault): void;
  clearFaults(): void;
  /** A fixed latency added to every request (for benchmarks standing in for a real API's round trip). */
  latencyMs: number;
}

/** A running fake: where it is and how to stop it. */
export interface RunningFake {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function pathMatches(pattern: string | RegExp | undefined, path: string): boolean {
  if (pattern === undefined) return true;
  return typeof pattern === 'string' ? path.includes(pattern) : pattern.test(path);
}

/**
 * Builds the shared part of a fake: an Express app that records every call, applies injected faults and
 * latency, and parses any body as text (then JSON when it is JSON), whatever its content type.
 */
export function createFakeApp(): { app: Express; controls: FakeControls } {
  const faults: Array<Fault & { used: number }> = [];
  const calls: RecordedCall[] = [];
  const controls: FakeControls = {
    calls,
    callsTo: (method, path) =>
      calls.filter((c) => c.method === method.toUpperCase() && pathMatches(path, c.path)),
    addFault: (fault) => {
      faults.push({ ...fault, used: 0 });
    },
    clearFaults: () => {
      faults.length = 0;
    },
    latencyMs: 0,
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(express.text({ type: () => true, limit: '10mb' }));
  app.use((req: Request, res: Response, next: NextFunction) => {
    const rawBody = typeof req.body === 'string' ? req.body : '';
    let body: unknown;
    if (rawBody !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
    }
    req.body = body;
    const query: Record<string, string> = {};
    for (const [key, value] of new URL(req.originalUrl, 'http://fake').searchParams) query[key] = value;
    calls.push({
      method: req.method,
      path: req.path,
      query,
      headers: req.headers,
      rawBody,
      body,
      time: Date.now(),
    });

    const fault = faults.find(
      (f) =>
        (f.times === undefined || f.used < f.times) &&
        (f.method === undefined || f.method.toUpperCase() === req.method) &&
        pathMatches(f.path, req.path),
    );
    if (fault) fault.used += 1;
    fault?.before?.();
    const delay = controls.latencyMs + (fault?.delayMs ?? 0);
    const proceed = (): void => {
      if (res.destroyed) return;
      if (fault?.reset) {
        req.socket.destroy();
        return;
      }
      if (fault?.malformed) {
        res.status(200).type('application/json').send('{"this is": not json');
        return;
      }
      if (fault?.status !== undefined) {
        res.status(fault.status).set(fault.headers ?? {});
        if (fault.body === undefined) res.end();
        else res.json(fault.body);
        return;
      }
      next();
    };
    // Unref'd: a long hang must not keep a test process alive after its servers closed.
    if (delay > 0) setTimeout(proceed, delay).unref();
    else proceed();
  });
  return { app, controls };
}

/** Starts an app on 127.0.0.1 (port 0 picks a free one). */
export async function listenOnLoopback(app: Express, port = 0): Promise<RunningFake> {
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
