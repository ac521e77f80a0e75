/**
 * Jest runs the TypeScript sources as ESM (ts-jest's ESM preset) because @octokit/app is ESM-only.
 * Type checking is `npm run typecheck`'s job; here ts-jest only transpiles, which keeps the suite fast.
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The log audit: after each test file, nothing its services logged may look like a secret.
  setupFilesAfterEnv: ['<rootDir>/test/support/log-audit.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  testTimeout: 30000,
};
