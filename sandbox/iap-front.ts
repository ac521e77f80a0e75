import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeIapIssuer } from './fakes/iap-issuer.js';

/** The header IAP adds to every request it lets through (https://cloud.google.com/iap/docs/signed-headers-howto). */
const IAP_ASSERTION_HEADER = 'x-goog-iap-jwt-assertion';
/** Where the front hands out a fresh assertion, for curl. Not an IAP path: the sandbox's own. */
export const IAP_ASSERTION_PATH = '/_sandbox/iap-assertion';

export interface IapFrontOptions {
  /** The fake IAP signer, whose published keys the status service trusts. */
  issuer: FakeIapIssuer;
  /** The status service's `IAP_AUDIENCE`. */
  audience: string;
  /** Who the front signs everyone in as. */
  email: string;
  /** The Workspace domain of that account (`hd`), if any. */
  hd?: string;
  /** The status service's base URL. */
  target: string;
  /** Default 0: a free port. */
  port?: number;
}

export interface IapFront {
  /** `http://127.0.0.1:PORT`: open `{url}/status` in a browser. */
  url: string;
  /** A fresh assertion for the front's user, as IAP signs it (ten minutes). */
  assertion(): string;
  close(): Promise<void>;
}

/**
 * A sandbox-only stand-in for Identity-Aware Proxy in front of the status service: every GET it forwards gets
 * the signed `x-goog-iap-jwt-assertion` header IAP would add for `email` after a Google sign-in, so a browser
 * on this machine can open the page. It listens on 127.0.0.1 only and forwards nothing but GET and HEAD of the
 * status service, dropping whatever assertion or credentials the browser sent. `GET /_sandbox/iap-assertion`
 * answers a fresh assertion, for curl.
 */
export async function startIapFront(options: IapFrontOptions): Promise<IapFront> {
  const assertion = () =>
    options.issuer.mintAssertion({
      audience: options.audience,
      email: options.email,
      ...(options.hd !== undefined && { hd: options.hd }),
    });
  const server = http.createServer((req, res) => {
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return fail(405, 'the sandbox IAP front forwards GET only');
    const path = req.url ?? '/';
    if (path === IAP_ASSERTION_PATH) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(assertion());
    }
    const headers: Record<string, string> = { [IAP_ASSERTION_HEADER]: assertion() };
    for (const name of ['accept', 'accept-language', 'user-agent']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    fetch(`${options.target}${path.startsWith('/') ? path : `/${path}`}`, {
      method: req.method,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
    }).then(
      async (answer) => {
        const body = Buffer.from(await answer.arrayBuffer());
        const forwarded: Record<string, string> = {};
        answer.headers.forEach((value, name) => {
          if (!['connection', 'content-encoding', 'content-length', 'transfer-encoding'].includes(name))
            forwarded[name] = value;
        });
        res.writeHead(answer.status, forwarded).end(req.method === 'HEAD' ? undefined : body);
      },
      () => fail(502, 'the status service did not answer'),
    );
    return undefined;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    assertion,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
