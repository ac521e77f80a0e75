import { HttpError } from '#shared';

/**
 * Waits for `work` at most `ms`; past that the caller hears a 503 with `message` (and `work` carries on:
 * a VM request Compute accepts late is found by the next delivery of the same job).
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError(503, message, { 'Retry-After': '60' })), ms);
  });
  work.catch(() => {}); // a late failure has no one left to answer
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
