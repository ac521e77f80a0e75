/**
 * The retry rule of deploy/vm/lib.sh's `http_request`, for the simulated VMs (the bench's JIT boot storms,
 * the sandbox's autoscaled VMs) that must retry exactly as the real ones do. lib.sh is the source; change
 * both together (test/vm-scripts/vm-retry.test.ts checks that they agree).
 */

/** lib.sh's defaults: RETRY_MAX_ATTEMPTS 20, RETRY_BASE_SECONDS 1, RETRY_MAX_DELAY_SECONDS 30, RETRY_DEADLINE_SECONDS 300. */
export const VM_RETRY = { attempts: 20, baseMs: 1000, maxDelayMs: 30_000, budgetMs: 300_000 } as const;

/**
 * Whether lib.sh tries an answer again: a network error (`status` 0), 429, or any 5xx (the token proxy
 * answers 429 when its queue of GitHub writes is full, 503 for GitHub's rate limits, 504 past its
 * deadline). Every other 4xx is final.
 */
export function vmRetries(status: number): boolean {
  return status === 0 || status === 429 || status >= 500;
}

/**
 * How long, in ms, a VM waits after `attempt` failed attempts (1 for the first) before the next one, as
 * lib.sh's `http_request` does:
 * - the backoff (`gcr_backoff_ms`): `baseMs` doubled per attempt up to `maxDelayMs`, with "equal jitter"
 *   (half of it fixed, half random);
 * - when the answer's Retry-After (`retryAfterMs`, 0 without one) is longer than that backoff, Retry-After;
 * - cut to `remainingMs`, what is left of the budget: lib.sh then makes one last attempt at its end.
 * `random` returns a number in [0, 1), as Math.random does.
 */
export function vmRetryWaitMs(
  attempt: number,
  retryAfterMs: number,
  remainingMs: number,
  random: () => number = Math.random,
): number {
  const delay = Math.min(VM_RETRY.maxDelayMs, VM_RETRY.baseMs * 2 ** (attempt - 1));
  let wait = delay / 2 + random() * (delay / 2);
  if (retryAfterMs > wait) wait = retryAfterMs;
  return Math.max(0, Math.min(wait, remainingMs));
}

/** A Retry-After header in ms, as lib.sh's `gcr_retry_after_ms` reads it (delta-seconds or an HTTP date); 0 when absent or unreadable. */
export function retryAfterMsOf(header: string | null, now = Date.now()): number {
  if (header === null) return 0;
  const value = header.trim();
  if (/^\d{1,6}$/.test(value)) return Number(value) * 1000;
  const when = Date.parse(value);
  return Number.isNaN(when) ? 0 : Math.max(0, Math.ceil((when - now) / 1000)) * 1000;
}
