import type { NextFunction, Request, Response } from 'express';

/** gRPC-style `status` of a Google error body, by HTTP status. */
const ERROR_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** The one error type of the fake Compute API; {@link fakeComputeErrorHandler} turns it into a Google error body. */
export class FakeComputeError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The legacy `errors[].reason`, e.g. `notFound`, `alreadyExists`. */
    readonly reason: string,
  ) {
    super(message);
    this.name = 'FakeComputeError';
  }
}

/**
 * A Google error body (https://cloud.google.com/apis/design/errors) with Compute's legacy `errors[]` array
 * too; also handy as a fault body: `addFault({ status, body })`.
 */
export function googleErrorBody(code: number, message: string, reason = 'backendError'): unknown {
  return {
    error: {
      code,
      message,
      errors: [{ message, domain: 'global', reason }],
      status: ERROR_STATUS[code] ?? 'UNKNOWN',
    },
  };
}

export const notFound = (resource: string): FakeComputeError =>
  new FakeComputeError(404, `The resource '${resource}' was not found`, 'notFound');
export const badRequest = (message: string): FakeComputeError =>
  new FakeComputeError(400, message, 'invalid');

/** The one place an error becomes a response; anything but a {@link FakeComputeError} is a bug in the fake. */
export function fakeComputeErrorHandler(
  err: unknown,
  _req: Request,
  res: Response,
  _next: NextFunction,
): void {
  // Unexpected errors keep their text: this is a test fake, and the text is what a failing test needs.
  const error =
    err instanceof FakeComputeError
      ? err
      : new FakeComputeError(500, `Internal error in fake: ${String(err)}`, 'backendError');
  if (error.status === 401) res.set('WWW-Authenticate', 'Bearer realm="https://accounts.google.com/"');
  res.status(error.status).json(googleErrorBody(error.status, error.message, error.reason));
}
