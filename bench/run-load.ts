import autocannon from 'autocannon';

/** One request shape of a load run; `next` fills in what changes per request (a token, say). */
export interface LoadRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  body?: string;
  headers?: Record<string, string>;
  /** Headers for the next request, e.g. the next identity token of a pool. */
  next?: () => Record<string, string>;
}

export interface LoadOptions {
  url: string;
  connections: number;
  request: LoadRequest;
  /** Seconds; ignored when `amount` is given. */
  durationSeconds: number;
  /** Stop after exactly this many requests instead of after a duration. */
  amount?: number;
  /** Stop after this many requests or the duration, whichever comes first (at least `connections`). */
  maxRequests?: number;
  /** Seconds autocannon waits for one response before counting a timeout. */
  timeoutSeconds?: number;
}

/** What a run measured. Latencies in ms. */
export interface LoadResult {
  requests: number;
  durationSeconds: number;
  requestsPerSecond: number;
  p50: number;
  p99: number;
  /** Connection errors and timeouts. */
  errors: number;
  non2xx: number;
  statusCounts: Record<string, number>;
}

/** Runs autocannon programmatically against `url` and summarises the result. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { request } = options;
  const next = request.next;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount === undefined ? { duration: options.durationSeconds } : { amount: options.amount }),
    ...(options.amount === undefined && options.maxRequests !== undefined
      ? { maxOverallRequests: Math.max(options.maxRequests, options.connections) }
      : {}),
    timeout: options.timeoutSeconds ?? 40,
    // autocannon notices the end of a run at its next sample; sample often so short runs end on time.
    sampleInt: 100,
    requests: [
      {
        method: request.method,
        path: request.path,
        ...(request.body === undefined ? {} : { body: request.body }),
        headers: {
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...request.headers,
        },
        ...(next
          ? {
              setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, ...next() } }),
            }
          : {}),
      },
    ],
  });
  const statusCounts: Record<string, number> = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) {
    statusCounts[status] = Number(count);
  }
  const requests = Object.values(statusCounts).reduce((sum, count) => sum + count, 0);
  return {
    requests,
    durationSeconds: result.duration,
    requestsPerSecond: result.duration > 0 ? requests / result.duration : 0,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    statusCounts,
  };
}
