import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Logger } from './logger.js';

export interface StartServerOptions {
  port: number;
  host?: string;
  logger: Logger;
  /** How long in-flight requests may take to finish after SIGTERM. Cloud Run kills at 10 s. */
  shutdownGraceMs?: number;
  /** Install SIGTERM/SIGINT handlers that close the server and exit (production entry points). */
  handleSignals?: boolean;
}

export interface RunningServer {
  server: http.Server;
  port: number;
  /** Stops accepting, lets in-flight requests finish (up to the grace period), then closes the rest. */
  close(): Promise<void>;
}

/**
 * Listens and arranges a graceful shutdown: on SIGTERM, stop accepting connections, let in-flight
 * requests finish, and exit before Cloud Run's 10-second SIGKILL.
 * https://cloud.google.com/run/docs/container-contract#instance-shutdown
 */
export async function startServer(
  handler: RequestListener,
  options: StartServerOptions,
): Promise<RunningServer> {
  const { logger } = options;
  const grace = options.shutdownGraceMs ?? 8000;
  const server = http.createServer(handler);
  // Requests Node refuses before Express sees them (headers over 16 KiB, a malformed request line) still
  // get a JSON body that says what is wrong, like every other refusal.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || (error as { code?: string }).code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify({
      error: tooLarge ? 'request headers are too large' : 'malformed HTTP request',
    });
    socket.end(
      `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  });
  // Keep idle sockets open a little longer than Google's front ends do, so they never reuse a closed one.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => server.closeAllConnections(), grace);
      timer.unref();
      // A keep-alive connection whose request finishes after close() would otherwise stay open until the
      // grace period ends: close connections as soon as they fall idle.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.close(() => {
        clearTimeout(timer);
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  if (options.handleSignals) {
    // A log line must never keep the process from exiting (stdout may be a pipe whose reader has gone).
    const log = (write: () => void) => {
      try {
        write();
      } catch {
        // Nothing to do: the line is lost, the shutdown goes on.
      }
    };
    const onSignal = (signal: string) => {
      log(() => logger.info({ signal }, 'shutting down: finishing in-flight requests'));
      close().then(
        () => {
          log(() => logger.info('shut down'));
          process.exit(0);
        },
        (error: unknown) => {
          log(() => logger.error({ errorName: (error as Error | undefined)?.name }, 'shutdown failed'));
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { server, port, close };
}
