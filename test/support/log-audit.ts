import { allCapturedLogs } from './log-capture.js';
import { secretShapes } from './secret-audit.js';

/**
 * Runs after every test file (jest `setupFilesAfterEnv`): whatever the services logged through a captured
 * logger in that file — every request, refusal and failure the file provoked — must hold nothing shaped
 * like a token, key or Authorization value. Tests that check particular secrets do so themselves; this
 * catches the ones nobody thought to check.
 */
afterAll(() => {
  expect(secretShapes(allCapturedLogs())).toEqual([]);
});
