/**
 * Jest runs the TypeScript sources as ESM (ts-jest's ESM preset) because @octokit/app is ESM-only.
 * Type checking is `npm run typecheck`'s job; here ts-jest only transpiles, which keeps the suite fast.
 *
 * Two projects: `unit` runs in this process against the sources and loopback fakes, with no build
 * (`npm run test:unit`, the fast loop); `integration` starts built programs from dist/ (the services,
 * the sandbox, the bench, the deploy and VM scripts) or runs long adversarial loads. `npm test` builds,
 * then runs both.
 */

/** Folders of test/ whose tests need dist/, child processes or long loads. */
const INTEGRATION = ['adversarial', 'bench', 'deploy', 'e2e', 'sandbox', 'vm-scripts'];
// The status page in Debian's chromium (a child process), apart from the rest of test/fleet-status.
INTEGRATION.push('fleet-status/browser');

/** @type {import('jest').Config} */
const base = {
  testTimeout: 30000,
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/test'],
  // The log audit: after each test file, nothing its services logged may look like a secret.
  setupFilesAfterEnv: ['<rootDir>/test/support/log-audit.ts'],
  // The package's `imports` (package.json) point at dist/ at run time; here they resolve to the sources, so
  // every test loads one copy of each module.
  moduleNameMapper: {
    '^#shared$': '<rootDir>/shared/src/index.ts',
    '^#token-proxy$': '<rootDir>/services/token-proxy/src/index.ts',
    '^#instance-deleter$': '<rootDir>/services/instance-deleter/src/index.ts',
    '^#autoscaler$': '<rootDir>/services/autoscaler/src/index.ts',
    '^#fleet-status$': '<rootDir>/services/fleet-status/src/index.ts',
    '^#fleet-cli$': '<rootDir>/services/fleet-cli/src/index.ts',
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
};

const integrationFolders = `(${INTEGRATION.join('|')})`;

/** @type {import('jest').Config} */
export default {
  testTimeout: 30000,
  projects: [
    {
      ...base,
      displayName: 'unit',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: [`/test/${integrationFolders}/`],
    },
    {
      ...base,
      displayName: 'integration',
      testMatch: [`**/test/${integrationFolders}/**/*.test.ts`],
      // Their longer default time limit (jest reads `testTimeout` only globally, not per project).
      setupFilesAfterEnv: [...base.setupFilesAfterEnv, '<rootDir>/test/support/integration-timeout.ts'],
    },
  ],
};
