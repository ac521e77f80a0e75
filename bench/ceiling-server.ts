/**
 * The benchmark's ceiling for `/register`: a bare Express 5 route on the same Node that does only the work
 * no token proxy can skip. It reads the JSON body, verifies the caller's RS256 identity token with
 * node:crypto (signature with the issuer's key by `kid`, `iss`, `aud`, `exp`), and answers a JSON object
 * the size of a registration token reply. No caller policy, no cache, no logging, no GitHub.
 *
 * The issuer's keys are fetched once, before it listens, from the same certificate URL the proxy uses
 * (Google's PEM map shape, https://www.googleapis.com/oauth2/v1/certs) and kept as KeyObjects. Run as its
 * own process, like the services, so it competes for the same CPU:
 * `PORT=... ID_TOKEN_CERTS_URL=... AUTH_AUDIENCE=... node dist/bench/ceiling-server.js`.
 */
import crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';

const ISSUERS = new Set(['https://accounts.google.com', 'accounts.google.com']);
const BEARER = /^Bearer +([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;

async function fetchKeys(url: string): Promise<Map<string, KeyObject>> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`certificates: HTTP ${res.status}`);
  const pems = (await res.json()) as Record<string, string>;
  return new Map(Object.entries(pems).map(([kid, pem]) => [kid, crypto.createPublicKey(pem)]));
}

/** The token's claims when its signature, issuer, audience and expiry hold; undefined otherwise. */
function verify(
  authorization: string | undefined,
  keys: ReadonlyMap<string, KeyObject>,
  audience: string,
): Record<string, unknown> | undefined {
  const match = BEARER.exec(authorization ?? '');
  if (!match) return undefined;
  const [, head, body, signature] = match as unknown as [string, string, string, string];
  try {
    const header = JSON.parse(Buffer.from(head, 'base64url').toString()) as { alg?: unknown; kid?: unknown };
    const key = header.alg === 'RS256' && typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
    if (!key) return undefined;
    const signed = Buffer.from(`${head}.${body}`);
    if (!crypto.verify('sha256', signed, key, Buffer.from(signature, 'base64url'))) return undefined;
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    const ok =
      typeof claims.iss === 'string' &&
      ISSUERS.has(claims.iss) &&
      claims.aud === audience &&
      typeof claims.exp === 'number' &&
      claims.exp > Date.now() / 1000;
    return ok ? claims : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const audience = process.env.AUTH_AUDIENCE ?? '';
  const keys = await fetchKeys(process.env.ID_TOKEN_CERTS_URL ?? '');
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.post('/register', express.json({ type: () => true }), (req: Request, res: Response) => {
    const claims = verify(req.headers.authorization, keys, audience);
    if (!claims) {
      res.status(401).json({ error: 'identity token could not be verified' });
      return;
    }
    const scope = (req.body as { scope?: unknown } | undefined)?.scope;
    if (typeof scope !== 'string') {
      res.status(400).json({ error: 'scope is required' });
      return;
    }
    res.json({ token: 'A'.repeat(29), expires_at: expiresAt });
  });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    res.status((error as { status?: number }).status ?? 500).json({ error: 'bad request' });
  });
  const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  server.keepAliveTimeout = 65_000;
  process.once('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((error: unknown) => {
  process.stderr.write(`ceiling server: ${(error as Error).message}\n`);
  process.exit(1);
});
