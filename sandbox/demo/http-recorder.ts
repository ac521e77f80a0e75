/** An HTTP answer, read whole. */
export interface HttpAnswer {
  status: number;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** What to send: a bearer token and a JSON body are all the demo's requests need. */
export interface HttpRequest {
  method?: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** Sends requests and keeps the latency of each under the endpoint it names. */
export interface HttpRecorder {
  send(endpoint: string, url: string, request?: HttpRequest): Promise<HttpAnswer>;
  /** Milliseconds, per endpoint, in the order the answers came. */
  readonly latencies: ReadonlyMap<string, readonly number[]>;
}

/** Sends one request without recording it (the attacks' requests are counted as refusals instead). */
export async function sendRequest(url: string, request: HttpRequest = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...request.headers };
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method: request.method ?? 'GET',
    headers,
    ...(request.body !== undefined && { body: JSON.stringify(request.body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json };
}

/** The service's `{"error": message}`, or the start of the body when it has no such field. */
export function errorMessageOf(answer: HttpAnswer): string {
  const error = (answer.json as { error?: unknown } | undefined)?.error;
  return typeof error === 'string' ? error : answer.text.trim().slice(0, 200);
}

/** Creates a recorder; only requests that get an answer are timed. */
export function createHttpRecorder(): HttpRecorder {
  const latencies = new Map<string, number[]>();
  return {
    latencies,
    send: async (endpoint, url, request) => {
      const start = performance.now();
      const answer = await sendRequest(url, request);
      const list = latencies.get(endpoint) ?? [];
      list.push(performance.now() - start);
      latencies.set(endpoint, list);
      return answer;
    },
  };
}
