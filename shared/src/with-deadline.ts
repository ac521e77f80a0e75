/** A running deadline, as the work under it sees it. */
export interface Deadline {
  /** True once the time is up (the caller has then been answered with the timeout error). */
  readonly passed: boolean;
  /**
   * Rejects with the timeout error when the time is up and never resolves: race it against a step that
   * must not outlive the deadline, such as waiting for a lock.
   */
  readonly expired: Promise<never>;
}

/**
 * Runs `work` with at most `ms` to answer: past it, the returned promise rejects with `timeoutError()`.
 * The work is not cancelled (the clients have no cancellation worth trusting): it goes on, and may still
 * fill caches, but its late result or failure reaches no one. Work that must not act after the caller
 * was told it timed out checks `deadline.passed` before acting.
 */
export async function withDeadline<T>(
  ms: number,
  timeoutError: () => Error,
  work: (deadline: Deadline) => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const state: { passed: boolean; expired: Promise<never> } = {
    passed: false,
    expired: new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        state.passed = true;
        reject(timeoutError());
      }, ms);
    }),
  };
  // Observed through the race below, or by whoever races it inside `work`.
  state.expired.catch(() => {});
  try {
    const running = work(state);
    // A late failure after the timeout has no one left to answer.
    running.catch(() => {});
    return await Promise.race([running, state.expired]);
  } finally {
    clearTimeout(timer);
  }
}
