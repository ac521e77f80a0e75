import type { FakeControls } from '#fakes/fake-server';

/**
 * Makes a fake fail every `period`-th matching request, `cycles` times over: FakeControls matches faults
 * in the order they were added and uses each up after `times`, so a pass-through fault (no status, no
 * delay) for `period - 1` requests followed by a failing one for a single request gives the rhythm.
 * `phase` 0 fails the first request of each period, `period - 1` the last.
 */
export function failEvery(
  controls: FakeControls,
  options: {
    period: number;
    phase?: number;
    cycles: number;
    path: string | RegExp;
    status?: number;
    body?: unknown;
  },
): void {
  const phase = options.phase ?? options.period - 1;
  for (let cycle = 0; cycle < options.cycles; cycle += 1) {
    for (let i = 0; i < options.period; i += 1) {
      if (i === phase) {
        controls.addFault({
          path: options.path,
          status: options.status ?? 500,
          body: options.body ?? { message: 'Server Error' },
          times: 1,
        });
      } else {
        controls.addFault({ path: options.path, delayMs: 0, times: 1 });
      }
    }
  }
}
