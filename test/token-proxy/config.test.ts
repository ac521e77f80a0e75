import crypto from 'node:crypto';
import { ConfigError } from '#shared';
import { loadConfig } from '#token-proxy';

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PKCS8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PKCS1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

const base = { AUTH_AUDIENCE: 'https://proxy.example', ALLOWED_SCOPES: 'my-org' };

function problemsOf(env: Record<string, string>, readFile?: (path: string) => string): string {
  try {
    loadConfig(env, readFile ? { readFile } : {});
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('token proxy loadConfig', () => {
  it('reads a PAT configuration with upstream defaults', () => {
    const config = loadConfig({ ...base, GITHUB_TOKEN: 'ghp_x' });
    expect(config).toMatchObject({
      port: 8080,
      githubApiUrl: 'https://api.github.com',
      credentials: { kind: 'pat', token: 'ghp_x' },
      tokenReuseMinRemainingSeconds: 900,
      policyConfigured: false,
      githubDeadlineMs: 30_000,
    });
    expect(config.allowedScopes.map((p) => p.source)).toEqual(['my-org']);
  });

  it.each([
    ['PKCS#8', PKCS8],
    ['PKCS#1', PKCS1],
    ['PKCS#1 with literal \\n', PKCS1.replace(/\n/g, '\\n')],
  ])('reads a GitHub App with a %s key', (_, key) => {
    const config = loadConfig({
      ...base,
      GITHUB_APP_ID: '123',
      GITHUB_APP_PRIVATE_KEY: key,
      GITHUB_INSTALLATION_ID: '77',
    });
    expect(config.credentials).toMatchObject({ kind: 'app', appId: '123', installationId: 77 });
  });

  it('accepts GITHUB_APP_INSTALLATION_ID, as upstream documents it', () => {
    const config = loadConfig({
      ...base,
      GITHUB_APP_ID: '1',
      GITHUB_APP_PRIVATE_KEY: PKCS8,
      GITHUB_APP_INSTALLATION_ID: '9',
    });
    expect(config.credentials).toMatchObject({ installationId: 9 });
  });

  it('leaves the installation to be looked up when none is configured', () => {
    const config = loadConfig({ ...base, GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: PKCS8 });
    expect(config.credentials).not.toHaveProperty('installationId');
  });

  it('splits scope lists on semicolons and compiles match: entries case-insensitively', () => {
    const config = loadConfig({
      ...base,
      GITHUB_TOKEN: 't',
      ALLOWED_SCOPES: 'my-org; match:my-org/.* ;',
      DENIED_SCOPES: 'my-org/secret',
    });
    expect(config.allowedScopes.map((p) => p.source)).toEqual(['my-org', 'match:my-org/.*']);
    expect(config.allowedScopes[1]!.test('MY-ORG/Repo')).toBe(true);
    expect(config.deniedScopes[0]!.test('My-Org/Secret')).toBe(true);
  });

  it('reads the policy from POLICY_FILE', () => {
    const config = loadConfig(
      { ...base, GITHUB_TOKEN: 't', POLICY_FILE: '/etc/policy.json' },
      { readFile: () => '{"rules":[{"name":"r","scopes":["my-org"]}]}' },
    );
    expect(config.policyConfigured).toBe(true);
    expect(config.policy.rules.map((r) => r.name)).toEqual(['r']);
  });

  it('reports every problem at once and never a secret', () => {
    const message = problemsOf({
      GITHUB_TOKEN: 'ghp_SECRET',
      GITHUB_APP_ID: '1',
      ALLOWED_SCOPES: 'match:([',
      TOKEN_REUSE_MIN_REMAINING_SECONDS: '-1',
      POLICY: '{"rules": []}',
    });
    expect(message).toMatch(/AUTH_AUDIENCE: is required/);
    expect(message).toMatch(/GITHUB_TOKEN: set either GITHUB_TOKEN or GITHUB_APP_ID/);
    expect(message).toMatch(/ALLOWED_SCOPES: invalid regular expression "\(\["/);
    expect(message).toMatch(/TOKEN_REUSE_MIN_REMAINING_SECONDS: must be a whole number/);
    expect(message).toMatch(/POLICY: policy is invalid: rules: must contain at least one rule/);
    expect(message).not.toContain('ghp_SECRET');
  });

  it.each([
    [{ GITHUB_APP_ID: '1' }, /GITHUB_APP_PRIVATE_KEY: is required with GITHUB_APP_ID/],
    [{ GITHUB_APP_PRIVATE_KEY: PKCS8 }, /GITHUB_APP_ID: is required/],
    [
      { GITHUB_APP_ID: '1', GITHUB_APP_PRIVATE_KEY: 'not a key SECRETISH' },
      /GITHUB_APP_PRIVATE_KEY: is not an RSA private key/,
    ],
    [{}, /set GITHUB_TOKEN \(a PAT\) or GITHUB_APP_ID/],
    [{ GITHUB_TOKEN: 't', GITHUB_API_URL: 'not a url' }, /GITHUB_API_URL/],
    [{ GITHUB_TOKEN: 't', POLICY: '{}', POLICY_FILE: '/x' }, /POLICY: set POLICY or POLICY_FILE, not both/],
    [{ GITHUB_TOKEN: 't', POLICY_FILE: '/missing' }, /POLICY_FILE: cannot read "\/missing"/],
  ])('refuses %j', (env, message) => {
    const text = problemsOf({ ...base, ...env }, (path) => {
      throw new Error(`ENOENT ${path}`);
    });
    expect(text).toMatch(message);
    expect(text).not.toContain('SECRETISH');
  });
});
