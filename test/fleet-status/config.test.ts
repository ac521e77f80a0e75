import { ConfigError } from '#shared';
import { loadConfig } from '#fleet-status';

const BASE = {
  IAP_AUDIENCE: '/projects/123456789012/locations/us-central1/services/fleet-status',
  STATUS_VIEWERS: 'alice@example.com, domain:example.com',
  AUTOSCALER_URL: 'https://autoscaler-abc-uc.a.run.app/',
};

describe('fleet status configuration', () => {
  it('reads the minimum, with defaults', () => {
    const config = loadConfig(BASE);
    expect(config).toMatchObject({
      port: 8080,
      iapAudience: BASE.IAP_AUDIENCE,
      audiences: [BASE.IAP_AUDIENCE],
      iapKeysUrl: 'https://www.gstatic.com/iap/verify/public_key',
      autoscalerUrl: 'https://autoscaler-abc-uc.a.run.app',
      autoscalerAudience: 'https://autoscaler-abc-uc.a.run.app',
      githubApiUrl: 'https://api.github.com',
      releasesCacheMs: 6 * 3_600_000,
      snapshotTtlMs: 15_000,
    });
    expect([...config.viewers.emails]).toEqual(['alice@example.com']);
    expect([...config.viewers.domains]).toEqual(['example.com']);
    expect(config.computeEndpoint).toBeUndefined();
    expect(config.host).toBeUndefined();
  });

  it('listens on HOST when given, as the other services do, and refuses one that is not an address', () => {
    expect(loadConfig({ ...BASE, HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
    expect(() => loadConfig({ ...BASE, HOST: 'localhost' })).toThrow(/HOST: must be an IP address/);
  });

  it('takes a separate autoscaler audience and a Compute endpoint', () => {
    const config = loadConfig({
      ...BASE,
      AUTOSCALER_AUDIENCE: 'https://autoscaler.example',
      COMPUTE_API_ENDPOINT: 'http://127.0.0.1:8085',
    });
    expect(config.autoscalerAudience).toBe('https://autoscaler.example');
    expect(config.computeEndpoint).toEqual({ apiEndpoint: '127.0.0.1', port: 8085, protocol: 'http' });
  });

  it.each([
    ['IAP_AUDIENCE', { IAP_AUDIENCE: undefined }, /IAP_AUDIENCE: is required/],
    ['IAP_AUDIENCE', { IAP_AUDIENCE: 'https://fleet-status.run.app' }, /IAP_AUDIENCE: must be \/projects/],
    ['STATUS_VIEWERS', { STATUS_VIEWERS: undefined }, /STATUS_VIEWERS: is required/],
    [
      'STATUS_VIEWERS',
      { STATUS_VIEWERS: 'example.com' },
      /STATUS_VIEWERS: "example.com" is neither an email nor domain:NAME/,
    ],
    ['STATUS_VIEWERS', { STATUS_VIEWERS: ' , ' }, /STATUS_VIEWERS: must list at least one viewer/],
    ['AUTOSCALER_URL', { AUTOSCALER_URL: undefined }, /AUTOSCALER_URL/],
    ['AUTOSCALER_URL', { AUTOSCALER_URL: 'ftp://x' }, /AUTOSCALER_URL: must be an http\(s\) URL/],
    ['SNAPSHOT_TTL_SECONDS', { SNAPSHOT_TTL_SECONDS: '900' }, /SNAPSHOT_TTL_SECONDS/],
  ])('refuses a bad %s', (_name, change, message) => {
    expect(() => loadConfig({ ...BASE, ...change })).toThrow(ConfigError);
    expect(() => loadConfig({ ...BASE, ...change })).toThrow(message);
  });

  it('reports every problem at once', () => {
    try {
      loadConfig({});
      throw new Error('accepted');
    } catch (error) {
      expect((error as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual([
        'AUTOSCALER_URL',
        'IAP_AUDIENCE',
        'STATUS_VIEWERS',
      ]);
    }
  });
});
