import crypto from 'node:crypto';
import { ConfigError } from '#shared';
import { loadConfig } from '#autoscaler';

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PKCS1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const SECRET = 'webhook-secret-0123456789';
const PREVIOUS = 'webhook-secret-previous-0123';

const POOL = {
  name: 'linux-cpu',
  scopes: ['my-org', 'match:my-org/.*'],
  labels: ['self-hosted', 'linux', 'x64', 'cpu'],
  migs: [
    'projects/my-proj/regions/us-central1/instanceGroupManagers/gh-linux-cpu',
    'projects/my-proj/zones/us-east1-b/instanceGroupManagers/gh-linux-cpu-east',
  ],
  runnerScope: 'my-org',
  runnerGroup: 'linux',
  maxRunners: 50,
  instanceNamePrefix: 'gh-linux-cpu',
};

const base = {
  AUTH_AUDIENCE: 'https://autoscaler.example.run.app',
  GITHUB_APP_ID: '4242',
  GITHUB_APP_PRIVATE_KEY: PKCS1,
  GITHUB_WEBHOOK_SECRET: SECRET,
  POOLS: JSON.stringify({ pools: [POOL] }),
  RECONCILE_CALLERS: 'scheduler@my-proj.iam.gserviceaccount.com',
};

function problemsOf(env: Record<string, string>, readFile?: (path: string) => string): string {
  try {
    loadConfig(env, readFile ? { readFile } : {});
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('autoscaler loadConfig', () => {
  it('reads the example configuration of the issue with its defaults', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      port: 8080,
      logLevel: 'info',
      githubApiUrl: 'https://api.github.com',
      app: { appId: '4242' },
      webhookSecrets: [SECRET],
      reconcileCallers: ['scheduler@my-proj.iam.gserviceaccount.com'],
      fleetViewers: [],
      stuckCreatingMs: 600_000,
      batchWindowMs: 1000,
      maxRedeliveriesPerRun: 50,
      githubWriteIntervalMs: 350,
      reaper: { mode: 'enforce', maxDeletePercent: 25, defaultTimeZone: 'UTC' },
    });
    expect(config.app.installationId).toBeUndefined();
    expect(config.computeEndpoint).toBeUndefined();
    const [pool] = config.pools;
    expect(pool).toMatchObject({
      name: 'linux-cpu',
      labels: POOL.labels,
      runnerScope: { kind: 'org', org: 'my-org' },
      runnerGroup: 'linux',
      maxRunners: 50,
      instanceNamePrefix: 'gh-linux-cpu',
      minIdle: 0,
      minIdleSchedules: [],
      timeZone: 'UTC',
      bootTimeoutMs: 600_000,
      idleTimeoutMs: 300_000,
      migs: [
        { project: 'my-proj', scope: 'regions', location: 'us-central1', name: 'gh-linux-cpu' },
        { project: 'my-proj', scope: 'zones', location: 'us-east1-b', name: 'gh-linux-cpu-east' },
      ],
    });
    expect(pool!.scopes.map((s) => s.source)).toEqual(POOL.scopes);
  });

  it('reads every optional variable', () => {
    const config = loadConfig({
      ...base,
      PORT: '9090',
      GITHUB_API_URL: 'http://127.0.0.1:9999/',
      GITHUB_INSTALLATION_ID: '77',
      GITHUB_WEBHOOK_SECRET_PREVIOUS: PREVIOUS,
      GITHUB_APP_PRIVATE_KEY: PKCS1.replace(/\n/g, '\\n'),
      COMPUTE_API_ENDPOINT: 'http://127.0.0.1:8085',
      RECONCILE_CALLERS: 'A@x.iam.gserviceaccount.com, b@x.iam.gserviceaccount.com',
      FLEET_VIEWERS: 'status@x.iam.gserviceaccount.com',
      STUCK_CREATING_SECONDS: '120',
      BATCH_WINDOW_MS: '0',
      MAX_REDELIVERIES_PER_RUN: '10',
      GITHUB_WRITE_INTERVAL_MS: '2000',
      REAPER_MODE: 'dry-run',
      REAPER_MAX_DELETE_PERCENT: '10',
      WARM_POOL_TIME_ZONE: 'Europe/Berlin',
    });
    expect(config).toMatchObject({
      port: 9090,
      githubApiUrl: 'http://127.0.0.1:9999',
      app: { installationId: 77 },
      webhookSecrets: [SECRET, PREVIOUS],
      computeEndpoint: { apiEndpoint: '127.0.0.1', port: 8085, protocol: 'http' },
      reconcileCallers: ['a@x.iam.gserviceaccount.com', 'b@x.iam.gserviceaccount.com'],
      fleetViewers: ['status@x.iam.gserviceaccount.com'],
      stuckCreatingMs: 120_000,
      batchWindowMs: 0,
      maxRedeliveriesPerRun: 10,
      githubWriteIntervalMs: 2000,
      reaper: { mode: 'dry-run', maxDeletePercent: 10, defaultTimeZone: 'Europe/Berlin' },
    });
    // Pools without a time zone of their own read their schedules in WARM_POOL_TIME_ZONE.
    expect(config.pools[0]!.timeZone).toBe('Europe/Berlin');
    expect(config.app.privateKey).toBe(PKCS1);
  });

  it('reads POOLS_FILE', () => {
    const { POOLS: _, ...rest } = base;
    const config = loadConfig({ ...rest, POOLS_FILE: '/etc/pools.json' }, { readFile: () => base.POOLS });
    expect(config.pools.map((p) => p.name)).toEqual(['linux-cpu']);
    expect(
      problemsOf({ ...rest, POOLS_FILE: '/nope' }, () => {
        throw new Error('ENOENT');
      }),
    ).toContain('POOLS_FILE: cannot read "/nope"');
  });

  it('reports every problem at once, naming variables and never their secret values', () => {
    const message = problemsOf({
      AUTH_AUDIENCE: 'not a url',
      GITHUB_APP_PRIVATE_KEY: 'not-a-key-SECRETVALUE',
      GITHUB_WEBHOOK_SECRET: 'short-SECRET',
      POOLS: '{"pools": []}',
      RECONCILE_CALLERS: 'not-an-email',
      BATCH_WINDOW_MS: '60000',
      STUCK_CREATING_SECONDS: 'soon',
    });
    for (const expected of [
      'AUTH_AUDIENCE',
      'GITHUB_APP_ID: is required',
      'GITHUB_APP_PRIVATE_KEY: is not an RSA private key',
      'GITHUB_WEBHOOK_SECRET: must be at least 16 characters',
      'POOLS: pools: must list at least one pool',
      'RECONCILE_CALLERS: each entry must be an email address',
      'BATCH_WINDOW_MS: must be a whole number from 0 to 5000',
      'STUCK_CREATING_SECONDS: must be a whole number from 60 to 86400',
    ]) {
      expect(message).toContain(expected);
    }
    expect(message).not.toContain('SECRETVALUE');
    expect(message).not.toContain('short-SECRET');
  });

  it.each([
    [{ POOLS: undefined }, 'POOLS: is required'],
    [{ POOLS_FILE: '/x' }, 'POOLS: set POOLS or POOLS_FILE, not both'],
    [{ RECONCILE_CALLERS: undefined }, 'RECONCILE_CALLERS: is required'],
    [{ GITHUB_WEBHOOK_SECRET: undefined }, 'GITHUB_WEBHOOK_SECRET: is required'],
    [{ GITHUB_WEBHOOK_SECRET_PREVIOUS: 'tiny' }, 'GITHUB_WEBHOOK_SECRET_PREVIOUS: must be at least 16'],
    [{ COMPUTE_API_ENDPOINT: 'http://x/path' }, 'COMPUTE_API_ENDPOINT: must be host[:port]'],
    [{ POOLS: 'not json' }, 'POOLS: is not valid JSON'],
    [{ FLEET_VIEWERS: 'x' }, 'FLEET_VIEWERS: each entry must be an email address'],
    [{ REAPER_MODE: 'on' }, 'REAPER_MODE: must be enforce, dry-run or off'],
    [{ REAPER_MAX_DELETE_PERCENT: '0' }, 'REAPER_MAX_DELETE_PERCENT: must be a whole number from 1 to 100'],
    [{ WARM_POOL_TIME_ZONE: 'Mars/Base' }, 'WARM_POOL_TIME_ZONE: must be an IANA time zone'],
  ])('refuses %j', (overrides, expected) => {
    const env: Record<string, string> = { ...base };
    for (const [key, value] of Object.entries(overrides)) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    expect(problemsOf(env)).toContain(expected);
  });
});
