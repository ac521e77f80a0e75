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
  // The package's `imports` (package.json) point at dist/ at run time; here they resolve to the sources, so
  // every test loads one copy of each module.
  moduleNameMapper: {
    '^#shared$': '<rootDir>/shared/src/index.ts',
    '^#token-proxy$': '<rootDir>/services/token-proxy/src/index.ts',
    '^#instance-deleter$': '<rootDir>/services/instance-deleter/src/index.ts',
    '^#entry-points$': '<rootDir>/services/entry-points.ts',
    '^#sandbox/(.*)$': '<rootDir>/sandbox/$1.ts',
    '^#fakes/(.*)$': '<rootDir>/sandbox/fakes/$1.ts',
    '^#bench/(.*)$': '<rootDir>/bench/$1.ts',
    '^#test-support/(.*)$': '<rootDir>/test/support/$1.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }],
  },
  testTimeout: 30000,
};
