import { loadConfig } from '#instance-deleter';

/**
 * HOST, one of the settings every service shares (`commonEnvShape`): where the plain server listens. The
 * sandbox sets 127.0.0.1; unset means every interface, as Cloud Run needs. Read through the deleter's
 * `loadConfig`, the smaller of the two.
 */
const env = { AUTH_AUDIENCE: 'https://deleter.example', ALLOWED_MIG_PATTERN: 'gh-runner-.*' };

describe('HOST', () => {
  it('is absent unless set (an empty variable is unset), so the server listens on every interface', () => {
    expect(loadConfig(env).host).toBeUndefined();
    expect(loadConfig({ ...env, HOST: '' }).host).toBeUndefined();
  });

  it.each(['127.0.0.1', '::1', '0.0.0.0'])('accepts the IP address %s', (host) => {
    expect(loadConfig({ ...env, HOST: host }).host).toBe(host);
  });

  it.each(['localhost', 'my-laptop', '127.0.0.1:8080'])('refuses %j, naming the variable', (host) => {
    expect(() => loadConfig({ ...env, HOST: host })).toThrow(/HOST: must be an IP address/);
  });
});
