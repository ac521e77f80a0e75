import { jest } from '@jest/globals';

/**
 * Runs before every integration test file (the `integration` project's `setupFilesAfterEnv`). Jest reads
 * `testTimeout` only from the global configuration, not from a project's, so the integration tests' longer
 * default is set here: they start processes and sandboxes, and a machine busy with other work is slow, not
 * broken. A test that fails, fails on its own assertion long before this.
 */
jest.setTimeout(300_000);
