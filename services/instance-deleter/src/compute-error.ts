import { HttpError } from '#shared';

/**
 * A Compute Engine call failed. `status` is the HTTP status Compute answered (or an operation's
 * `httpErrorStatusCode`), 0 when there was none; `computeMessage` is Compute's own `error.message`, which
 * names resources but never a credential.
 */
export class ComputeError extends Error {
  override readonly name = 'ComputeError';

  constructor(
    readonly status: number,
    readonly computeMessage: string,
  ) {
    super(`Compute Engine ${status || 'request'} failed: ${computeMessage}`);
  }
}

/** Long messages are cut: they end up in responses and logs. */
const MAX_MESSAGE_LENGTH = 300;

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

/**
 * Classifies an error thrown by an `@google-cloud/compute` client. Those are GaxiosErrors whose `status`
 * is the HTTP status and whose `message` is the raw response body (google-gax's REST transport,
 * https://github.com/googleapis/gax-nodejs/blob/main/gax/src/fallbackServiceStub.ts), so only the body's
 * `error.message` (https://cloud.google.com/apis/design/errors#http_mapping) is kept; the rest of the
 * error, request and headers included, is dropped.
 */
export function toComputeError(error: unknown): ComputeError {
  if (error instanceof ComputeError) return error;
  const { status, code, message } = (error ?? {}) as { status?: unknown; code?: unknown; message?: unknown };
  // gax reports its own failures (deadlines, say) with a gRPC `code` below 100: that is no HTTP status.
  const http = [status, code].find((value): value is number => typeof value === 'number' && value >= 100);
  return new ComputeError(http ?? 0, googleErrorMessage(message));
}

/**
 * What a Compute failure means to the caller, with `action` for context: Compute's 403 and 404 pass
 * through (the deleter's service account lacks a permission, or a resource is gone); anything else is a
 * 502, since it is neither the caller's fault nor ours to explain.
 */
export function computeFailure(error: ComputeError, action: string): HttpError {
  const detail = error.computeMessage === '' ? '' : ` (${error.computeMessage})`;
  switch (error.status) {
    case 403:
      return new HttpError(403, `Compute Engine refused to ${action}: permission denied${detail}`);
    case 404:
      return new HttpError(404, `Compute Engine could not ${action}: not found${detail}`);
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
