import { HttpError } from '#shared';

/**
 * How a Compute Engine call failed: Compute answered with an error (`http`), did not answer within the
 * call's deadline (`timeout`), or the deleter could not get its own credentials to ask (`credentials`:
 * the metadata server, or whatever Application Default Credentials use, failed or did not answer).
 */
export type ComputeFailureKind = 'http' | 'timeout' | 'credentials';

/**
 * A Compute Engine call failed. `status` is the HTTP status Compute answered (or an operation's
 * `httpErrorStatusCode`), 0 when there was none; `computeMessage` is Compute's own `error.message`, which
 * names resources but never a credential; `retryAfterSeconds` is Compute's `Retry-After`, when it sent one.
 */
export class ComputeError extends Error {
  override readonly name = 'ComputeError';

  constructor(
    readonly status: number,
    readonly computeMessage: string,
    readonly kind: ComputeFailureKind = 'http',
    readonly retryAfterSeconds?: number,
  ) {
    super(`Compute Engine ${status || 'request'} failed: ${computeMessage}`);
  }
}

/** Long messages are cut: they end up in responses and logs. */
const MAX_MESSAGE_LENGTH = 300;

/** What a caller is told to wait after a 503 that came with no `Retry-After` of Compute's. */
const DEFAULT_RETRY_AFTER_SECONDS = 10;

/** Compute's `{"error":{"message"}}` from a response body, or '' when the body is not that shape. */
function googleErrorMessage(body: unknown): string {
  if (typeof body !== 'string') return '';
  try {
    const message: unknown = (JSON.parse(body) as { error?: { message?: unknown } } | null)?.error?.message;
    if (typeof message !== 'string') return '';
    return message.length > MAX_MESSAGE_LENGTH ? `${message.slice(0, MAX_MESSAGE_LENGTH)}…` : message;
  } catch {
    return '';
  }
}

/** A `Retry-After` header in whole seconds (delay-seconds form only), from a GaxiosError's response. */
function retryAfterOf(response: unknown): number | undefined {
  const headers = (response as { headers?: { get?: unknown } } | undefined)?.headers;
  if (typeof headers?.get !== 'function') return undefined;
  const value: unknown = (headers as { get(name: string): unknown }).get('retry-after');
  return typeof value === 'string' && /^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

/**
 * Classifies an error thrown by an `@google-cloud/compute` client. Those are GaxiosErrors whose `status`
 * is the HTTP status and whose `message` is the raw response body (google-gax's REST transport,
 * https://github.com/googleapis/gax-nodejs/blob/main/gax/src/fallbackServiceStub.ts), so only the body's
 * `error.message` (https://cloud.google.com/apis/design/errors#http_mapping) and a `Retry-After` are
 * kept; the rest of the error, request and headers included, is dropped.
 */
export function toComputeError(error: unknown): ComputeError {
  if (error instanceof ComputeError) return error;
  const { status, code, message, response } = (error ?? {}) as {
    status?: unknown;
    code?: unknown;
    message?: unknown;
    response?: unknown;
  };
  // gax reports its own failures (deadlines, say) with a gRPC `code` below 100: that is no HTTP status.
  const http = [status, code].find((value): value is number => typeof value === 'number' && value >= 100);
  return new ComputeError(http ?? 0, googleErrorMessage(message), 'http', retryAfterOf(response));
}

/**
 * What a Compute failure means to the caller, with `action` for context: Compute's 403 and 404 pass
 * through (the deleter's service account lacks a permission, or a resource is gone); Compute's 429 and
 * a failure to get the deleter's own credentials are a 503 with `Retry-After` (the caller did nothing
 * wrong and should ask again); no answer in time is a 504; anything else is a 502.
 */
export function computeFailure(error: ComputeError, action: string): HttpError {
  const detail = error.computeMessage === '' ? '' : ` (${error.computeMessage})`;
  const retryAfter = { 'Retry-After': String(error.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS) };
  if (error.kind === 'timeout') {
    return new HttpError(504, `Compute Engine did not answer in time to ${action}; ask again later`);
  }
  if (error.kind === 'credentials') {
    return new HttpError(
      503,
      `the instance deleter could not get its own credentials to ${action}${detail}; ask again later`,
      retryAfter,
    );
  }
  switch (error.status) {
    case 403:
      return new HttpError(403, `Compute Engine refused to ${action}: permission denied${detail}`);
    case 404:
      return new HttpError(404, `Compute Engine could not ${action}: not found${detail}`);
    case 429:
      return new HttpError(
        503,
        `Compute Engine is rate-limiting the instance deleter, which could not ${action}${detail}; ask again later`,
        retryAfter,
      );
    default: {
      const status = error.status === 0 ? '' : `: HTTP ${error.status}`;
      return new HttpError(502, `Compute Engine failed to ${action}${status}${detail}`);
    }
  }
}

/** Runs `work`, turning a {@link ComputeError} into the {@link HttpError} the caller should see. */
export async function withComputeContext<T>(action: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw error instanceof ComputeError ? computeFailure(error, action) : error;
  }
}
