import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';

/** An app listening on loopback for tests that need real sockets (raw requests, many concurrent ones). */
export interface ServedApp {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function serveApp(app: RequestListener): Promise<ServedApp> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
