/**
 * Build step: fills the deleter's compile cache (compile-cache.ts) with every module its first answer
 * loads, by loading them as the function and the server do and building the deleter from a placeholder
 * configuration; nothing listens and nothing is called. Run after `tsc` by `npm run build` (so the image's
 * build stage fills it with the image's Node) and, for the Cloud Function, by Cloud Build as the staged
 * source's `gcp-build` script (deploy/instance-deleter.sh), with the function runtime's own Node.
 * https://cloud.google.com/run/docs/runtimes/nodejs (NPM build scripts)
 */
import { flushCompileCache, getCompileCacheDir } from 'node:module';
import path from 'node:path';
import { COMPILE_CACHE_DIR, useCompileCache } from './compile-cache.js';

const enabled = useCompileCache();
if (getCompileCacheDir() === undefined) {
  // Not fatal: the deleter works without it, only slower to start.
  process.stdout.write(`compile cache not written: ${enabled.message ?? `status ${enabled.status}`}\n`);
} else {
  await import('@google-cloud/functions-framework');
  const { loadConfig } = await import('./config.js');
  const { createInstanceDeleter } = await import('./create-instance-deleter.js');
  createInstanceDeleter(
    loadConfig({ ALLOWED_MIG_PATTERN: 'gh-runner-.*', AUTH_AUDIENCE: 'https://compile-cache.invalid' }),
  );
  flushCompileCache();
  process.stdout.write(
    `${path.relative(process.cwd(), COMPILE_CACHE_DIR)}: compiled code for Node ${process.version}\n`,
  );
}
