/** Where the Compute clients connect, in the shape their constructors take. */
export interface ComputeEndpoint {
  apiEndpoint: string;
  port: number;
  protocol: 'http' | 'https';
}

/**
 * Parses `COMPUTE_API_ENDPOINT`: `host`, `host:port` (HTTPS), or `http(s)://host[:port]` for a loopback fake
 * such as `http://127.0.0.1:8085`. The port is always given explicitly: google-gax's HTTP transport parses a
 * port out of `apiEndpoint` but then overrides it with its default of 443. Throws on anything else.
 * (The same rules as the instance deleter's `COMPUTE_API_ENDPOINT`.)
 */
export function parseComputeEndpoint(value: string): ComputeEndpoint {
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
