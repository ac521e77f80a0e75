/**
 * A fetch whose every call has a deadline of `timeoutMs` that starts when the call is made, on top of any
 * signal the caller passes. Give it to a client as its fetch (Octokit's `request.fetch`) rather than a
 * signal made when the client's method is called: a request that waits in the client's queues first
 * (plugin-throttling's write limiter, a mutation scheduler) would otherwise spend its deadline waiting and
 * fail unsent once its turn came, and a queue that spaces writes would have spent that turn on nothing.
 *
 * A call past its deadline rejects with an `AbortError` DOMException naming the deadline, which
 * @octokit/plugin-retry does not repeat (https://github.com/octokit/plugin-retry.js#options).
 */
export function createDeadlineFetch(
  timeoutMs: number,
  service: string,
  fetchImpl: typeof fetch = globalThis.fetch,
): typeof fetch {
  return async (input, init = {}) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    try {
      return await fetchImpl(input, { ...init, signal });
    } catch (error) {
      if ((error as Error | undefined)?.name === 'TimeoutError') {
        throw new DOMException(`${service} did not answer within ${timeoutMs} ms`, 'AbortError');
      }
      throw error;
    }
  };
}
