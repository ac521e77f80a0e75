import { runService } from '#shared';
import { loadConfig } from './config.js';
import { createTokenProxy } from './create-token-proxy.js';

// The token proxy from the environment: the production entry point (Cloud Run, the sandbox).
runService({
  name: 'token-proxy',
  loadConfig: () => loadConfig(),
  create: createTokenProxy,
  describe: (config) => ({
    githubApiUrl: config.githubApiUrl,
    credentials: config.credentials.kind,
    allowedScopes: config.allowedScopes.map((p) => p.source),
    deniedScopes: config.deniedScopes.map((p) => p.source),
    policyRules: config.policyConfigured
      ? config.policy.rules.map((r) => r.name)
      : 'none (any verified caller)',
    tokenReuseMinRemainingSeconds: config.tokenReuseMinRemainingSeconds,
  }),
});
