import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** A server on loopback that accepts connections, reads what it is sent, and never answers. */
export interface SilentServer {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Connections it accepted so far. */
  readonly connections: number;
  /**
   * Stops it. Requests still waiting get a 404 first, so that clients which retry a request that got no
   * answer (gcp-metadata does, with backoff) stop instead of retrying past the end of the test.
   */
  close(): Promise<void>;
}

/** Starts a {@link SilentServer}: what a hung upstream looks like to a client with no deadline. */
export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) {
          socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        }
        server.close(() => resolve());
      }),
  };
}
