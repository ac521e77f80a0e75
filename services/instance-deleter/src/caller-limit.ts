/** At most one request in flight per caller. */
export interface CallerLimit {
  /** A function that frees the caller's place, or `undefined` when the caller already has a request in flight. */
  tryEnter(caller: string): (() => void) | undefined;
  /** Callers with a request in flight (for tests). */
  readonly size: number;
}

/**
 * Creates a {@link CallerLimit}. A VM has no reason to ask twice at once: a second request would only
 * repeat the first's Compute calls (or, for a conditional delete, its decision), so it is refused
 * rather than queued.
 */
export function createCallerLimit(): CallerLimit {
  const inFlight = new Set<string>();
  return {
    tryEnter(caller) {
      if (inFlight.has(caller)) return undefined;
      inFlight.add(caller);
      let left = false;
      return () => {
        if (left) return;
        left = true;
        inFlight.delete(caller);
      };
    },
    get size() {
      return inFlight.size;
    },
  };
}
