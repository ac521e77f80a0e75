/**
 * The one error type a handler throws to answer a client. The error middleware turns it into
 * `{"error": message}` with `status`; anything else becomes a bare 500.
 *
 * The message is shown to the caller, so it must never contain a token, key or library error text.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers, such as `Retry-After` on a 503 or `Allow` on a 405. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}
