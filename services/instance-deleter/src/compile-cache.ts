import { enableCompileCache } from 'node:module';
import type { EnableCompileCacheResult } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Where the deleter keeps V8's compiled code for its modules: `dist/services/instance-deleter/.node-compile-cache`,
 * written at build time by `prime-compile-cache.js` (`npm run build`, the image's build stage, and Cloud Build's
 * `gcp-build` step for the function), so a new instance compiles none of the modules its first answer needs.
 * Node keeps one subdirectory per Node version and V8 flags, so a cache from another Node is ignored, never
 * wrong; and it checks each entry against the file's contents.
 * https://nodejs.org/docs/latest-v24.x/api/module.html#module-compile-cache
 */
export const COMPILE_CACHE_DIR = fileURLToPath(new URL('../.node-compile-cache', import.meta.url));

/**
 * Turns Node's compile cache on for every module loaded after this call. Portable: entries are keyed by
 * paths relative to the cache, so a cache written in the build stage serves the tree wherever it is
 * deployed, as long as `node_modules` sits beside `dist` as it does in the repository, the image and the
 * function's source. Failing to enable it (a read-only or missing directory) only costs time.
 */
export function useCompileCache(): EnableCompileCacheResult {
  return enableCompileCache({ directory: COMPILE_CACHE_DIR, portable: true });
}
