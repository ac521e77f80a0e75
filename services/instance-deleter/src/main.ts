// The instance deleter as a plain HTTP server: Cloud Run, the sandbox, local use. The compile cache is
// turned on before the service's modules load, so they come from it (compile-cache.ts).
import { useCompileCache } from './compile-cache.js';

useCompileCache();
await import('./serve.js');
