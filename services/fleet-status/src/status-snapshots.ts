import type { StatusView } from './describe-status.js';

/** The latest status, shared by every viewer for a few seconds. */
export interface StatusSnapshots {
  current(): Promise<StatusView>;
}

/**
 * Serves one build of the status to every request within `ttlMs` of it, and one build to all requests that
 * arrive while it runs: ten people with the page open cost the autoscaler and Compute what one does (two
 * Compute calls per MIG, one fleet read, every 30 seconds at most per `ttlMs`).
 */
export function createStatusSnapshots(
  build: () => Promise<StatusView>,
  ttlMs: number,
  now: () => number,
): StatusSnapshots {
  let latest: { view: StatusView; at: number } | undefined;
  let inFlight: Promise<StatusView> | undefined;
  return {
    current() {
      if (latest && now() - latest.at < ttlMs) return Promise.resolve(latest.view);
      inFlight ??= build()
        .then((view) => {
          latest = { view, at: now() };
          return view;
        })
        .finally(() => {
          inFlight = undefined;
        });
      return inFlight;
    },
  };
}
