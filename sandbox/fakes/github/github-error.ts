import type { NextFunction, Request, Response } from 'express';

export const DOCS_URL = 'https://docs.github.com/rest';
export const RATE_LIMIT_DOCS_URL =
  'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api';

/** An error answer of the fake GitHub, turned into GitHub's body shape (reference §1.2) in one place. */
export class GitHubError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly documentationUrl: string = DOCS_URL,
  ) {
    super(message);
    this.name = 'GitHubError';
  }
}

/** GitHub's "Basic Error" body; 422s use the same fields ("Validation Error Simple" adds optional `errors`). */
export function gitHubErrorBody(status: number, message: string, documentationUrl = DOCS_URL): object {
  return { message, documentation_url: documentationUrl, status: String(status) };
}

/** The one place a {@link GitHubError} becomes a response; anything else is a bug in the fake, so a 500. */
export function gitHubErrorHandler(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  if (res.headersSent) {
    next(err);
    return;
  }
  if (err instanceof GitHubError) {
    res.status(err.status).json(gitHubErrorBody(err.status, err.message, err.documentationUrl));
    return;
  }
  res.status(500).json(gitHubErrorBody(500, `fake GitHub failed: ${String(err)}`));
}
