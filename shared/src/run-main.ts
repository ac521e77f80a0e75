import { ConfigError } from './config-error.js';

/**
 * Runs a service's `main`: a configuration problem is printed as the list it is and exits 1; any other
 * start-up failure prints its name only (its message could hold a secret) and exits 1.
 */
export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      const name = (error as Error | undefined)?.name ?? 'Error';
      const code = (error as { code?: unknown } | undefined)?.code;
      const detail = code === 'EADDRINUSE' ? ': the port is already in use' : '';
      process.stderr.write(`Failed to start (${name}${detail})\n`);
    }
    process.exit(1);
  });
}
