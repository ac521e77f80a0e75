/** Collects requests for a while and hands them to one call. */
export interface Batcher<K, V, R> {
  /**
   * Adds `key` to the open batch (opening one if none is) and resolves with its result once the batch has
   * been flushed. The same key twice in one batch shares one entry and one result; the first value wins.
   */
  add(key: K, value: V): Promise<R>;
  /** Keys waiting in the open batch. */
  readonly pending: number;
}

export interface BatcherOptions<K, V, R> {
  /** How long a batch stays open after its first request, in ms. */
  windowMs: number;
  /** A batch this large is flushed at once. */
  maxSize: number;
  /** Waits `ms` (injected, so tests can drive time). */
  sleep: (ms: number) => Promise<void>;
  /** Handles one batch; a key missing from the answer, or a throw, rejects its requests. */
  flush: (entries: ReadonlyMap<K, V>) => Promise<ReadonlyMap<K, R>>;
}

interface Waiter<R> {
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * A batcher with a fixed window from the first request (not a debounce: a steady stream of requests cannot
 * hold a batch open, so no request waits longer than `windowMs` to be sent).
 */
export function createBatcher<K, V, R>(options: BatcherOptions<K, V, R>): Batcher<K, V, R> {
  let open: { entries: Map<K, V>; waiters: Map<K, Array<Waiter<R>>> } | undefined;

  const flush = (batch: NonNullable<typeof open>): void => {
    if (open === batch) open = undefined;
    options.flush(batch.entries).then(
      (results) => {
        for (const [key, waiters] of batch.waiters) {
          const result = results.get(key);
          for (const waiter of waiters) {
            if (result === undefined) waiter.reject(new Error('batch answered nothing for this request'));
            else waiter.resolve(result);
          }
        }
      },
      (error: unknown) => {
        for (const waiters of batch.waiters.values()) for (const waiter of waiters) waiter.reject(error);
      },
    );
  };

  return {
    add(key, value) {
      if (!open) {
        const batch = { entries: new Map<K, V>(), waiters: new Map<K, Array<Waiter<R>>>() };
        open = batch;
        // Flushed when the window ends, however the sleep ends: a batch left open would hang its callers.
        const flushIfOpen = () => {
          if (open === batch) flush(batch);
        };
        options.sleep(options.windowMs).then(flushIfOpen, flushIfOpen);
      }
      const batch = open;
      if (!batch.entries.has(key)) batch.entries.set(key, value);
      const result = new Promise<R>((resolve, reject) => {
        const waiters = batch.waiters.get(key) ?? [];
        waiters.push({ resolve, reject });
        batch.waiters.set(key, waiters);
      });
      if (batch.entries.size >= options.maxSize) flush(batch);
      return result;
    },
    get pending() {
      return open?.entries.size ?? 0;
    },
  };
}
