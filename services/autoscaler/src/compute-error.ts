import { HttpError } from '#shared';

/**
 * What a failed Compute call means for the VMs it asked for:
 * - `already-exists`: a listed name exists (in a batch, which one is not said);
 * - `no-capacity`: the MIG cannot create VMs now (a quota, a stock-out): another MIG may;
 * - `refused`: Compute refused the request and created nothing (a bad name, a missing MIG, a permission);
 * - `unavailable`: no answer, a timeout or a 5xx: the request may or may not have been carried out.
 */
export type ComputeFailure = 'already-exists' | 'no-capacity' | 'refused' | 'unavailable';

/**
 * A Compute Engine call failed. `computeMessage` is Compute's own `error.message` (or an Operation's first
 * error), which names resources but never a credential.
 */
export class ComputeError extends Error {
  override readonly name = 'ComputeError';

  constructor(
    readonly failure: ComputeFailure,
    /** The HTTP status, or an Operation's `httpErrorStatusCode`; 0 when there was none. */
    readonly status: number,
    readonly computeMessage: string,
    /** An Operation error's `code`, e.g. `QUOTA_EXCEEDED`. */
    readonly code?: string,
  ) {
    super(`Compute Engine ${status || 'request'} failed (${failure}): ${computeMessage}`);
  }
}

const MAX_MESSAGE_LENGTH = 300;
const cut = (text: string): string =>
  text.length > MAX_MESSAGE_LENGTH ? `${text.slice(0, MAX_MESSAGE_LENGTH)}…` : text;

/**
 * Error codes of a MIG that cannot create VMs where it is: a zone out of a resource, or a quota. Seen in
 * `lastAttempt.errors` and Operation errors; kubernetes/autoscaler's GCE provider treats the same codes as
 * out of resources (cluster-autoscaler/cloudprovider/gce/autoscaling_gce_client.go).
 */
export const NO_CAPACITY_CODES = new Set([
  'ZONE_RESOURCE_POOL_EXHAUSTED',
  'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
  'RESOURCE_POOL_EXHAUSTED',
  'QUOTA_EXCEEDED',
]);

function classify(status: number, message: string, code?: string): ComputeFailure {
  if ((code !== undefined && /ALREADY_EXISTS/.test(code)) || /already exists/i.test(message))
    return 'already-exists';
  if (
    (code !== undefined && NO_CAPACITY_CODES.has(code)) ||
    /quota|resource pool exhausted|does not have enough resources/i.test(message)
  ) {
    return 'no-capacity';
  }
  if (status === 0 || status === 429 || status >= 500) return 'unavailable';
  return 'refused';
}

/** Compute's `{"error":{"message"}}` from a response body, or '' when the body is not that shape. */
function googleErrorMessage(body: unknown): string {
  if (typeof body !== 'string') return '';
  try {
    const message: unknown = (JSON.parse(body) as { error?: { message?: unknown } } | null)?.error?.message;
    return typeof message === 'string' ? cut(message) : '';
  } catch {
    return '';
  }
}

/**
 * Classifies an error thrown by an `@google-cloud/compute` client: GaxiosErrors carry the HTTP status and
 * the raw response body as their message, so only the body's `error.message` is kept (never the request or
 * its headers). gax's own failures (a deadline) carry a gRPC code below 100, which is no HTTP status.
 */
export function toComputeError(error: unknown): ComputeError {
  if (error instanceof ComputeError) return error;
  const { status, code, message } = (error ?? {}) as { status?: unknown; code?: unknown; message?: unknown };
  const http =
    [status, code].find((value): value is number => typeof value === 'number' && value >= 100) ?? 0;
  const text = googleErrorMessage(message);
  return new ComputeError(classify(http, text), http, text || (http === 0 ? 'no answer in time' : ''));
}

/** A failed Operation (status DONE with `error`): the request was refused and changed nothing. */
export function operationError(operation: {
  error?: { errors?: Array<{ code?: string | null; message?: string | null }> | null } | null;
  httpErrorStatusCode?: number | null;
  httpErrorMessage?: string | null;
}): ComputeError {
  const first = operation.error?.errors?.[0];
  const message = cut(first?.message ?? operation.httpErrorMessage ?? 'operation failed');
  const status = operation.httpErrorStatusCode ?? 0;
  const code = first?.code ?? undefined;
  // The Operation is DONE: whatever it says, it was answered, so a 5xx in it is still a refusal.
  const failure = classify(status === 0 || status >= 500 ? 400 : status, message, code);
  return new ComputeError(failure, status, message, code);
}

/** What a Compute failure means to whoever asked (a webhook delivery, the reconciler): always retry later. */
export function computeFailure(error: ComputeError, action: string): HttpError {
  const detail = error.computeMessage === '' ? '' : ` (${error.computeMessage})`;
  return new HttpError(503, `Compute Engine could not ${action}${detail}; it will be tried again`, {
    'Retry-After': '60',
  });
}
