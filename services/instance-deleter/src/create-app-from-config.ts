import type { Express } from 'express';
import { GoogleAuth } from 'google-auth-library';
import { createIdTokenVerifier } from '#shared';
import type { Logger } from '#shared';
import { createApp } from './app.js';
import { createGoogleComputeApi } from './compute-api.js';
import type { InstanceDeleterConfig } from './config.js';

/**
 * Builds the deleter with its production clients, for both entry points (the plain server and the Cloud
 * Function). Compute credentials are Application Default Credentials: the service account of the Cloud
 * Run service or function, which needs the custom role listed in deploy/deleter-role-permissions.txt.
 */
export function createAppFromConfig(config: InstanceDeleterConfig, logger: Logger): Express {
  // One GoogleAuth for all seven clients, so they share one access token instead of fetching seven.
  const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
  return createApp({
    verifier: createIdTokenVerifier({ audiences: config.audiences, certsUrl: config.certsUrl }),
    compute: createGoogleComputeApi({ ...config.computeEndpoint, auth }),
    migPattern: config.allowedMigPattern,
    logger,
    stabilizeTimeoutMs: config.stabilizeTimeoutMs,
    ...(config.projectId === undefined ? {} : { projectId: config.projectId }),
  });
}
