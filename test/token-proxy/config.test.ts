import crypto from 'node:crypto';
import { ConfigError } from '#shared';
import { loadConfig } from '#token-proxy';

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const PKCS8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PKCS1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

const base = { AUTH_AUDIENCE: 'https://proxy.example', ALLOWED_SCOPES: 'my-org', POLICY: 'open' };

function problemsOf(env: Record<string, string | undefined>, readFile?: (path: string) => string): string {
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
      { ...base, POLICY: undefined, GITHUB_TOKEN: 't', POLICY_FILE: '/etc/policy.json' },
      { readFile: () => '{"rules":[{"name":"r","callers":{"projects":["p"]},"scopes":["my-org"]}]}' },
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
    [
      { GITHUB_TOKEN: 't', POLICY: undefined, POLICY_FILE: '/missing' },
      /POLICY_FILE: cannot read "\/missing"/,
    ],
  ])('refuses %#: the variables named in the message', (env, message) => {
    const text = problemsOf({ ...base, ...env }, (path) => {
      throw new Error(`ENOENT ${path}`);
    });
    expect(text).toMatch(message);
    expect(text).not.toContain('SECRETISH');
  });
});

// Issue 11 §3: configurations that started without a word and then refused every request.
describe('scope lists that could never match what they seem to mean', () => {
  const pat = { ...base, GITHUB_TOKEN: 't' };

  it('reads ALLOWED_SCOPES written with commas, as AUTH_AUDIENCE is, as two scopes', () => {
    const config = loadConfig({ ...pat, ALLOWED_SCOPES: 'my-org,my-other-org' });
    expect(config.allowedScopes.map((p) => p.source)).toEqual(['my-org', 'my-other-org']);
    expect(config.allowedScopes[1]!.test('my-other-org')).toBe(true);
  });

  it('keeps the upstream separator, and a comma inside a regex, as they are', () => {
    const config = loadConfig({
      ...pat,
      ALLOWED_SCOPES: 'my-org; match:my-org/(app|web){1,2}; enterprise:acme',
    });
    expect(config.allowedScopes.map((p) => p.source)).toEqual([
      'my-org',
      'match:my-org/(app|web){1,2}',
      'enterprise:acme',
    ]);
  });

  it.each([
    [
      'match:my-org/*',
      /"match:my-org\/\*" is written as a glob.*"\/\*" means zero or more "\/".*Write "match:my-org\/\.\*"/,
    ],
    ['match:my-*', /Write "match:my-\.\*"/],
    ['match:*', /invalid regular expression.*to allow every scope write "match:\.\*"/],
    [
      'my org',
      /"my org" can never be a scope \(ORG, OWNER\/REPO or enterprise:SLUG\): separate entries with ";"/,
    ],
    ['*', /"\*" can never be a scope.*to allow every scope write "match:\.\*" \(not recommended\)/],
    ['my-org/*', /"my-org\/\*" can never be a scope.*a wildcard needs "match:"/],
    ['my-org/app/extra', /"my-org\/app\/extra" can never be a scope/],
  ])('refuses ALLOWED_SCOPES=%j at start, saying what to write', (entry, message) => {
    expect(problemsOf({ ...pat, ALLOWED_SCOPES: `my-org;${entry}` })).toMatch(message);
  });

  it('refuses the same entries in DENIED_SCOPES', () => {
    expect(problemsOf({ ...pat, DENIED_SCOPES: 'match:my-org/secret-*' })).toMatch(
      /DENIED_SCOPES: "match:my-org\/secret-\*" is written as a glob/,
    );
  });

  it('keeps a literal in the canonical form requests are matched in', () => {
    const config = loadConfig({ ...pat, ALLOWED_SCOPES: '/my-org/app/' });
    expect(config.allowedScopes[0]!.test('my-org/app')).toBe(true);
  });

  it('starts with an empty allow list, with a warning that every request will be refused', () => {
    const config = loadConfig({ ...pat, ALLOWED_SCOPES: undefined });
    expect(config.allowedScopes).toEqual([]);
    expect(config.warnings).toContainEqual(
      expect.stringMatching(/^ALLOWED_SCOPES is empty: every request will be refused with 403/),
    );
  });

  it('warns of an enterprise scope a GitHub App cannot serve', () => {
    const config = loadConfig({
      ...base,
      ALLOWED_SCOPES: 'my-org;enterprise:acme',
      GITHUB_APP_ID: '1',
      GITHUB_APP_PRIVATE_KEY: PKCS8,
    });
    expect(config.warnings).toContainEqual(
      expect.stringMatching(/enterprise:acme is an enterprise, which a GitHub App cannot manage/),
    );
  });
});

describe('AUTH_AUDIENCE', () => {
  const pat = { ...base, GITHUB_TOKEN: 't' };

  it('takes a list, with commas or semicolons', () => {
    expect(
      loadConfig({ ...pat, AUTH_AUDIENCE: 'https://a.run.app, https://b.example/;https://c.example' })
        .audiences,
    ).toEqual(['https://a.run.app', 'https://b.example/', 'https://c.example']);
  });

  it.each([
    [
      'https://proxy.example.run.app?x=1',
      /"https:\/\/proxy\.example\.run\.app\?x=1" has a query string.*use the service URL alone, such as "https:\/\/proxy\.example\.run\.app"/,
    ],
    ['https://proxy.example.run.app/#top', /has a fragment.*such as "https:\/\/proxy\.example\.run\.app"/],
    ['https://proxy.example/a+b', /contains "\+"/],
    ['proxy.example.run.app', /is not a URL/],
    ['ftp://proxy.example', /must be an http\(s\) URL/],
  ])('refuses %j at start, saying what was meant', (audience, message) => {
    expect(problemsOf({ ...pat, AUTH_AUDIENCE: audience })).toMatch(message);
  });

  it('never prints a password written into an audience', () => {
    const text = problemsOf({ ...pat, AUTH_AUDIENCE: 'https://user:SECRETISH@proxy.example' });
    expect(text).toMatch(/contains a user name or password/);
    expect(text).not.toContain('SECRETISH');
  });
});

// Issue 15 §2: without a policy, trust levels do not exist.
describe('POLICY', () => {
  const pat = { ...base, GITHUB_TOKEN: 't' };
  const rule = (callers: object) =>
    JSON.stringify({ rules: [{ name: 'runners', callers, scopes: ['my-org'] }] });

  it('is required: without one the proxy refuses to start, naming POLICY=open', () => {
    expect(problemsOf({ ...pat, POLICY: undefined })).toMatch(
      /POLICY: is required: set POLICY \(inline JSON\) or POLICY_FILE .* or POLICY=open to let every verified caller/,
    );
  });

  it('runs open only when told POLICY=open, with a warning', () => {
    const config = loadConfig(pat);
    expect(config.policyConfigured).toBe(false);
    expect(config.policy.rules).toHaveLength(1);
    expect(config.warnings).toContainEqual(expect.stringMatching(/^POLICY=open: there are no trust levels/));
  });

  it.each([
    ['no callers', undefined],
    ['instance names only', { instanceNames: ['match:gh-runner-.*'] }],
  ])(
    'refuses a rule that names neither serviceAccounts nor projects (%s), saying how to write it',
    (_, callers) => {
      const text = problemsOf({
        ...pat,
        POLICY: callers === undefined ? '{"rules":[{"name":"runners","scopes":["my-org"]}]}' : rule(callers),
      });
      expect(text).toMatch(
        /POLICY: policy is invalid: rules\[0\]\.callers: rule "runners" names neither serviceAccounts nor projects.*"serviceAccounts": \["runner@my-project\.iam\.gserviceaccount\.com"\].*POLICY=open/,
      );
    },
  );

  it.each([
    ['serviceAccounts', { serviceAccounts: ['r@p.iam.gserviceaccount.com'] }],
    ['projects', { projects: ['p'] }],
  ])('accepts a rule that names %s', (_, callers) => {
    expect(loadConfig({ ...pat, POLICY: rule(callers) }).policyConfigured).toBe(true);
  });

  it('refuses a policy that names a key twice', () => {
    const text = problemsOf({
      ...pat,
      POLICY:
        '{"rules":[{"name":"a","callers":{"projects":["p"]},"scopes":["my-org"],"scopes":["match:.*"]}]}',
    });
    expect(text).toMatch(/POLICY: policy is ambiguous: key "scopes" appears more than once in one object/);
  });

  it('refuses policy scopes as it refuses ALLOWED_SCOPES entries', () => {
    expect(
      problemsOf({
        ...pat,
        POLICY: JSON.stringify({
          rules: [{ name: 'a', callers: { projects: ['p'] }, scopes: ['match:my-org/*'] }],
        }),
      }),
    ).toMatch(/rules\[0\]\.scopes\[0\]: "match:my-org\/\*" is written as a glob/);
  });
});
