import { runService } from '#shared';
import { loadConfig } from './config.js';
import { createService } from './create-service.js';

// The fleet status page from the environment: the production entry point (Cloud Run behind IAP, the sandbox).
runService({
  name: 'fleet-status',
  loadConfig: () => loadConfig(),
  create: (config, overrides) => createService(config, overrides).app,
  describe: (config) => ({
    iapAudience: config.iapAudience,
    viewers: { emails: config.viewers.emails.size, domains: [...config.viewers.domains] },
    autoscalerUrl: config.autoscalerUrl,
    autoscalerAudience: config.autoscalerAudience,
    githubApiUrl: config.githubApiUrl,
    computeEndpoint: config.computeEndpoint ?? 'compute.googleapis.com',
  }),
});
