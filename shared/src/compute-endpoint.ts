/**
 * Where the Compute clients connect, in the shape their constructors take (`apiEndpoint`, `port`,
 * `protocol`: google-gax's `createStub`, https://github.com/googleapis/gax-nodejs/blob/main/gax/src/fallback.ts).
 */
export interface ComputeClientEndpoint {
  apiEndpoint: string;
  port: number;
  protocol: 'http' | 'https';
}

/**
 * Parses `COMPUTE_API_ENDPOINT`: `host`, `host:port` (HTTPS), or `http(s)://host[:port]` for a loopback fake
 * such as `http://127.0.0.1:8085`. The port is always given explicitly: the clients parse a port out of the
 * endpoint but then override it with their default of 443 (google-gax's `createStub`, linked above). Throws
 * on anything else.
 */
export function parseComputeEndpoint(value: string): ComputeClientEndpoint {
  const text = value.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error('must be host[:port] or http(s)://host[:port]');
  }
  const protocol = url.protocol === 'http:' ? 'http' : url.protocol === 'https:' ? 'https' : undefined;
  const bare = url.pathname === '/' && url.search === '' && url.hash === '';
  if (!protocol || !bare || url.username !== '' || url.password !== '' || url.hostname === '') {
    throw new Error('must be host[:port] or http(s)://host[:port], without a path');
  }
  const port = url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port);
  return { apiEndpoint: url.hostname, port, protocol };
}
