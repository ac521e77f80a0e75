import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { retryAfterMsOf, VM_RETRY, vmRetries, vmRetryWaitMs } from '#sandbox/vm-retry';
import { VM_DIR } from './vm-harness.js';

/** Runs `body` in bash with deploy/vm/lib.sh sourced and RANDOM seeded; its stdout lines as numbers. */
function libSh(body: string, ...args: string[]): number[] {
  const script = `source "$1"; shift; RANDOM=5; ${body}`;
  const result = spawnSync('bash', ['-c', script, 'vm-retry-test', path.join(VM_DIR, 'lib.sh'), ...args], {
    encoding: 'utf8',
  });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return result.stdout.trim().split('\n').map(Number);
}

const lowest = () => 0;
const highest = () => 1 - Number.EPSILON;

// The simulated VMs (bench storms, the sandbox's autoscaled VMs) must retry as deploy/vm/lib.sh does.
describe('sandbox/vm-retry.ts follows deploy/vm/lib.sh', () => {
  it('picks backoffs from the same ranges as gcr_backoff_ms, attempt by attempt', () => {
    for (let attempt = 1; attempt <= 8; attempt += 1) {
      const picked = libSh(`for ((i = 0; i < 300; i++)); do gcr_backoff_ms ${attempt}; done`);
      const low = vmRetryWaitMs(attempt, 0, Infinity, lowest);
      const high = vmRetryWaitMs(attempt, 0, Infinity, highest);
      expect(Math.min(...picked)).toBeGreaterThanOrEqual(Math.floor(low));
      expect(Math.max(...picked)).toBeLessThanOrEqual(Math.ceil(high));
      // Both ends of the range are reached, so the ranges are the same, not one inside the other.
      expect(Math.min(...picked)).toBeLessThan(low + (high - low) * 0.1);
      expect(Math.max(...picked)).toBeGreaterThan(high - (high - low) * 0.1);
    }
    expect(vmRetryWaitMs(1, 0, Infinity, lowest)).toBe(VM_RETRY.baseMs / 2);
    expect(vmRetryWaitMs(20, 0, Infinity, highest)).toBeCloseTo(VM_RETRY.maxDelayMs);
  });

  it('waits a Retry-After longer than the backoff exactly, as http_request does', () => {
    expect(vmRetryWaitMs(1, 81_000, Infinity, lowest)).toBe(81_000);
    expect(vmRetryWaitMs(1, 81_000, Infinity, highest)).toBe(81_000);
    // Longer than the longest backoff, so never lengthened by it.
    expect(vmRetryWaitMs(20, 31_000, Infinity, highest)).toBe(31_000);
  });

  it('ignores a Retry-After shorter than the backoff, and cuts every wait to what is left of the budget', () => {
    expect(vmRetryWaitMs(6, 1000, Infinity, lowest)).toBe(15_000);
    expect(vmRetryWaitMs(1, 60_000, 2000, highest)).toBe(2000);
    expect(vmRetryWaitMs(3, 0, 700, highest)).toBe(700);
  });

  it('retries what lib.sh retries: network errors, 429 and 5xx', () => {
    expect([0, 429, 500, 502, 503, 504].every(vmRetries)).toBe(true);
    expect([400, 401, 403, 404, 409].some(vmRetries)).toBe(false);
  });

  it('reads Retry-After as gcr_retry_after_ms does: delta-seconds or an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMsOf('7', now)).toBe(7000);
    expect(retryAfterMsOf(' 60 ', now)).toBe(60_000);
    expect(retryAfterMsOf('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMsOf('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(retryAfterMsOf('soon', now)).toBe(0);
    expect(retryAfterMsOf(null, now)).toBe(0);
    const fromLib = libSh(
      'for header in "$@"; do printf "Retry-After: %s\\r\\n" "$header" >"$GCR_TMP/h"; gcr_retry_after_ms "$GCR_TMP/h"; done',
      '7',
      ' 60 ',
    );
    expect(fromLib).toEqual([7000, 60_000]);
  });
});
