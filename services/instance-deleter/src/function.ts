/**
 * The instance deleter as a Cloud Function (Node.js 24, 2nd gen): an HTTP function registered with the
 * Functions Framework under the target {@link FUNCTION_TARGET}, `deleteInstance`. Configuration is read
 * when the module loads, so a bad one fails the deployment's start-up rather than the first request.
 *
 * ```sh
 * gcloud functions deploy instance-deleter --gen2 --runtime=nodejs24 --region=us-central1 \
 *   --source=. --entry-point=deleteInstance --trigger-http --no-allow-unauthenticated \
 *   --service-account=instance-deleter@PROJECT.iam.gserviceaccount.com --timeout=60s \
 *   --max-instances=1 --concurrency=80 --cpu=1 \
 *   --set-env-vars='AUTH_AUDIENCE=https://REGION-PROJECT.cloudfunctions.net/instance-deleter,ALLOWED_MIG_PATTERN=gh-runner-.*'
 * ```
 *
 * One instance serving concurrent requests: the per-MIG lock of `DELETE /?if=scale-down` is in-process
 * (deploy/instance-deleter.sh does the same). The function timeout must exceed `REQUEST_TIMEOUT_SECONDS`
 * (default 30). `package.json`'s `main` must name this file's compiled form
 * (`SERVICE_ENTRY_POINTS['instance-deleter'].function`).
 * https://cloud.google.com/functions/docs/writing#directory-structure
 */
import { useCompileCache } from './compile-cache.js';

/** The Functions Framework target, `--entry-point` of `gcloud functions deploy`. */
export const FUNCTION_TARGET = 'deleteInstance';

// The compile cache first, so the deleter's modules come from it (compile-cache.ts).
useCompileCache();
const { http } = await import('@google-cloud/functions-framework');
const { loadConfig } = await import('./config.js');
const { createInstanceDeleter } = await import('./create-instance-deleter.js');

// Logs go to stdout at LOG_LEVEL, tagged `service: instance-deleter` (createInstanceDeleter's default).
http(FUNCTION_TARGET, createInstanceDeleter(loadConfig()));
