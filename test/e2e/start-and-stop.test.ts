import path from 'node:path';
import { SERVICE_ENTRY_POINTS } from '#entry-points';
import { freePort, spawnNode, waitUntilAnswering } from '#sandbox/node-process';
import type { NodeProcess } from '#sandbox/node-process';
import { repoRoot } from '#sandbox/sandbox';

/** The built services as production starts them, with only what each needs to start. */
const entry = (service: keyof typeof SERVICE_ENTRY_POINTS) =>
  path.join(repoRoot(), SERVICE_ENTRY_POINTS[service].main);
const common = (port: number) => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  PORT: String(port),
  AUTH_AUDIENCE: `http://127.0.0.1:${port}`,
  // Nothing is called at start; a closed port makes sure nothing could be.
  ID_TOKEN_CERTS_URL: 'http://127.0.0.1:1/certs',
  LOG_LEVEL: 'info',
});
const proxyEnv = (port: number) => ({
  ...common(port),
  GITHUB_API_URL: 'http://127.0.0.1:1',
  GITHUB_TOKEN: 'ghp_startStopTestPersonalAccessToken012345',
  ALLOWED_SCOPES: 'my-org',
  POLICY: 'open',
});
const deleterEnv = (port: number) => ({
  ...common(port),
  ALLOWED_MIG_PATTERN: 'gh-runner-[a-z0-9-]+',
  COMPUTE_API_ENDPOINT: 'http://127.0.0.1:1',
  GCE_METADATA_HOST: '127.0.0.1:1',
});

/** The exit code, or 'still running' if the process has not exited within `ms` (then it is killed). */
async function exitWithin(service: NodeProcess, ms: number): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still running'>((resolve) => {
    timer = setTimeout(() => resolve('still running'), ms);
  });
  const result = await Promise.race([service.exited, timeout]);
  clearTimeout(timer);
  if (result === 'still running') service.child.kill('SIGKILL');
  return result;
}

// Issue 14 §6(a): the shutdown path wrote a log line to a stdout whose reader had gone (EPIPE), and the
// service never exited. Cloud Run kills 10 s after SIGTERM; the process must be gone before that.
describe.each([
  ['token-proxy', proxyEnv],
  ['instance-deleter', deleterEnv],
] as const)('%s', (service, env) => {
  it('exits on SIGTERM after the reader of its stdout has gone', async () => {
    const port = await freePort();
    const spawned = spawnNode(entry(service), env(port));
    try {
      await waitUntilAnswering(spawned, port, { path: '/healthz' });
      // Close our end of the stdout pipe: every line the service writes from now on meets EPIPE.
      spawned.child.stdout!.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      spawned.child.kill('SIGTERM');
      expect(await exitWithin(spawned, 9_000)).toBe(0);
    } finally {
      await spawned.stop(1000);
    }
  }, 30_000);
});

describe('token proxy start-up', () => {
  const start = async (env: Record<string, string | undefined>) => {
    const port = await freePort();
    const defined = Object.fromEntries(
      Object.entries({ ...proxyEnv(port), ...env }).filter((e): e is [string, string] => e[1] !== undefined),
    );
    return { port, spawned: spawnNode(entry('token-proxy'), defined) };
  };

  it('refuses to start without a policy, naming POLICY=open', async () => {
    const { spawned } = await start({ POLICY: undefined });
    expect(await exitWithin(spawned, 15_000)).toBe(1);
    expect(spawned.output()).toMatch(/POLICY: is required: .* or POLICY=open/);
  }, 30_000);

  it('refuses to start with an upstream-style glob, saying what to write', async () => {
    const { spawned } = await start({ ALLOWED_SCOPES: 'match:my-org/*' });
    expect(await exitWithin(spawned, 15_000)).toBe(1);
    expect(spawned.output()).toMatch(
      /ALLOWED_SCOPES: "match:my-org\/\*" is written as a glob.*"match:my-org\/\.\*"/,
    );
  }, 30_000);

  it('says at start, as a warning, that POLICY=open has no trust levels', async () => {
    const { port, spawned } = await start({});
    try {
      await waitUntilAnswering(spawned, port, { path: '/healthz' });
      const warning = spawned
        .output()
        .split('\n')
        .map((line) => JSON.parse(line) as { severity?: string; message?: string })
        .find((line) => line.message?.startsWith('POLICY=open'));
      expect(warning).toMatchObject({ severity: 'WARNING' });
      expect(warning!.message).toMatch(/there are no trust levels/);
    } finally {
      await spawned.stop(5000);
    }
  }, 30_000);
});
