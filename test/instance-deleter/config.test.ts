import { ConfigError } from '#shared';
import { parseComputeEndpoint } from '#shared';
import { loadConfig } from '#instance-deleter';

const REQUIRED = {
  AUTH_AUDIENCE: 'https://instance-deleter.example.run.app',
  ALLOWED_MIG_PATTERN: 'gh-runner-(presubmit|postsubmit)',
};

/** The problems `loadConfig` reports for `env`, or [] when it accepts it. */
function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('instance deleter config', () => {
  it('applies the defaults', () => {
    const config = loadConfig(REQUIRED);
    expect(config).toMatchObject({
      port: 8080,
      logLevel: 'info',
      audiences: [REQUIRED.AUTH_AUDIENCE],
      certsUrl: 'https://www.googleapis.com/oauth2/v1/certs',
      requestTimeoutMs: 30_000,
    });
    expect(config.computeEndpoint).toBeUndefined();
    expect(config.projectId).toBeUndefined();
  });

  it.each([
    ['gh-runner-presubmit', true],
    ['gh-runner-postsubmit', true],
    ['gh-runner-presubmit-canary', false],
    ['evil-gh-runner-presubmit', false],
    ['GH-RUNNER-PRESUBMIT', false],
  ])('compiles ALLOWED_MIG_PATTERN anchored and case-sensitive: %s → %p', (name, matches) => {
    expect(loadConfig(REQUIRED).allowedMigPattern.test(name)).toBe(matches);
  });

  it('reads every variable', () => {
    const config = loadConfig({
      ...REQUIRED,
      PORT: '9090',
      LOG_LEVEL: 'debug',
      ID_TOKEN_CERTS_URL: 'http://127.0.0.1:9000/oauth2/v1/certs',
      GOOGLE_CLOUD_PROJECT: 'runners-prod',
      REQUEST_TIMEOUT_SECONDS: '45',
      COMPUTE_API_ENDPOINT: 'http://127.0.0.1:8085',
    });
    expect(config).toMatchObject({
      port: 9090,
      logLevel: 'debug',
      certsUrl: 'http://127.0.0.1:9000/oauth2/v1/certs',
      projectId: 'runners-prod',
      requestTimeoutMs: 45_000,
      computeEndpoint: { apiEndpoint: '127.0.0.1', port: 8085, protocol: 'http' },
    });
  });

  it.each([
    ['missing', undefined],
    ['empty', '  '],
  ])('refuses to start with ALLOWED_MIG_PATTERN %s', (_, pattern) => {
    expect(problemsOf({ ...REQUIRED, ALLOWED_MIG_PATTERN: pattern })).toEqual([
      'ALLOWED_MIG_PATTERN: is required: a regular expression that whole MIG names must match',
    ]);
  });

  it.each(['gh-runner-[', '(unclosed', '*', 'a{2,1}'])(
    'refuses an invalid ALLOWED_MIG_PATTERN: %s',
    (pattern) => {
      const problems = problemsOf({ ...REQUIRED, ALLOWED_MIG_PATTERN: pattern });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^ALLOWED_MIG_PATTERN: invalid regular expression /);
    },
  );

  it('reports every problem at once', () => {
    expect(
      problemsOf({
        ALLOWED_MIG_PATTERN: '[',
        REQUEST_TIMEOUT_SECONDS: '601',
        COMPUTE_API_ENDPOINT: 'ftp://compute.example',
      }).map((problem) => problem.split(':')[0]),
    ).toEqual(['AUTH_AUDIENCE', 'ALLOWED_MIG_PATTERN', 'REQUEST_TIMEOUT_SECONDS', 'COMPUTE_API_ENDPOINT']);
  });

  it.each([
    ['1', 1000],
    ['30', 30_000],
    ['600', 600_000],
  ])('accepts REQUEST_TIMEOUT_SECONDS=%s', (value, ms) => {
    expect(loadConfig({ ...REQUIRED, REQUEST_TIMEOUT_SECONDS: value }).requestTimeoutMs).toBe(ms);
  });

  it.each(['0', '-1', '1.5', '601', 'ten'])('refuses REQUEST_TIMEOUT_SECONDS=%s', (value) => {
    expect(problemsOf({ ...REQUIRED, REQUEST_TIMEOUT_SECONDS: value })).toEqual([
      'REQUEST_TIMEOUT_SECONDS: must be a whole number of seconds from 1 to 600',
    ]);
  });

  it('refuses STABILIZE_TIMEOUT_SECONDS, which no longer does anything', () => {
    expect(problemsOf({ ...REQUIRED, STABILIZE_TIMEOUT_SECONDS: '100' })).toEqual([
      'STABILIZE_TIMEOUT_SECONDS: is no longer used: the deleter answers "not now" instead of waiting for a stable MIG; set REQUEST_TIMEOUT_SECONDS for its deadline',
    ]);
  });
});

describe('COMPUTE_API_ENDPOINT', () => {
  it.each([
    ['http://127.0.0.1:8085', { apiEndpoint: '127.0.0.1', port: 8085, protocol: 'http' }],
    ['127.0.0.1:8085', { apiEndpoint: '127.0.0.1', port: 8085, protocol: 'https' }],
    ['compute.googleapis.com', { apiEndpoint: 'compute.googleapis.com', port: 443, protocol: 'https' }],
    ['https://compute.example:8443/', { apiEndpoint: 'compute.example', port: 8443, protocol: 'https' }],
    ['http://localhost', { apiEndpoint: 'localhost', port: 80, protocol: 'http' }],
    ['http://[::1]:9000', { apiEndpoint: '[::1]', port: 9000, protocol: 'http' }],
  ])('parses %s', (value, endpoint) => {
    expect(parseComputeEndpoint(value)).toEqual(endpoint);
  });

  it.each([
    'ftp://compute.example',
    'http://127.0.0.1:8085/compute/v1',
    'http://user:pw@127.0.0.1',
    'http://',
    'a b',
  ])('refuses %s', (value) => {
    expect(problemsOf({ ...REQUIRED, COMPUTE_API_ENDPOINT: value })).toEqual([
      expect.stringMatching(/^COMPUTE_API_ENDPOINT: must be host\[:port\] or http\(s\):\/\/host\[:port\]/),
    ]);
  });
});
