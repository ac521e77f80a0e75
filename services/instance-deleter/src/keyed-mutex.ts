/** Runs tasks one at a time per key; tasks under different keys run concurrently. */
export interface KeyedMutex {
  /** Runs `task` once every task queued before it under `key` is done. */
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /**
   * Runs `task` only if nothing runs or waits under `key` now; `undefined` (and `task` not run) otherwise.
   * For work that must not wait: its inputs would be stale by the time its turn came.
   */
  tryRun<T>(key: string, task: () => Promise<T>): Promise<T> | undefined;
  /** Keys with a task running or queued (for tests). */
  readonly size: number;
}

/** Creates a {@link KeyedMutex}: a promise chain per key, dropped when its last task is done. */
export function createKeyedMutex(): KeyedMutex {
  const tails = new Map<string, Promise<void>>();
  const run = async <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The chain only ever resolves, so one failed task does not fail the ones queued behind it.
    const tail = previous.then(() => done);
    tails.set(key, tail);
    await previous;
    try {
      return await task();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
  return {
    run,
    tryRun: (key, task) => (tails.has(key) ? undefined : run(key, task)),
    get size() {
      return tails.size;
    },
  };
}
