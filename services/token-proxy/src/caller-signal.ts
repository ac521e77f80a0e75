import type { Request, Response } from 'express';
import { HttpError } from '#shared';
import { CallerGoneError } from './mutation-scheduler.js';

/**
 * Aborts when the caller can no longer use the answer: its connection closed before the response was
 * sent ({@link CallerGoneError}), or its deadline passed (a 504, which it gets if the deadline of the
 * GitHub call itself has not answered it first). The mutation scheduler drops queued work on it.
 */
export function callerSignal(req: Request, res: Response, deadlineMs: number): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new HttpError(
          504,
          `GitHub did not answer within ${Math.round(deadlineMs / 1000)} s: the request was still waiting for its turn`,
        ),
      ),
    deadlineMs,
  );
  timer.unref();
  const gone = () => {
    clearTimeout(timer);
    if (!res.writableFinished) controller.abort(new CallerGoneError());
  };
  if (req.socket.destroyed) gone();
  res.on('close', gone);
  return controller.signal;
}
