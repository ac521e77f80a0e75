import { ConfigError } from '#shared';
import { loadConfig } from '#token-proxy';

// The abuse limits of issue 15, apart from config.test.ts so that each set of variables has its table.
const base = {
  AUTH_AUDIENCE: 'https://proxy.example',
  ALLOWED_SCOPES: 'my-org',
  GITHUB_TOKEN: 'ghp_x',
  POLICY: 'open',
};

function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
}

describe('token proxy limits configuration', () => {
  it('has defaults: a bounded queue, two JIT configs per instance and hour, no Compute check', () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      githubWriteIntervalMs: 350,
      mutationQueueLimit: 80,
      mutationQueueLimitPerCaller: 4,
      jitConfigsPerInstancePerHour: 2,
      verifyInstanceExists: false,
    });
    expect(config.computeEndpoint).toBeUndefined();
  });

  it('reads every limit and the Compute Engine check', () => {
    const config = loadConfig({
      ...base,
      MUTATION_QUEUE_LIMIT: '250',
      MUTATION_QUEUE_LIMIT_PER_CALLER: '1',
      JIT_CONFIGS_PER_INSTANCE_PER_HOUR: '3',
      VERIFY_INSTANCE_EXISTS: 'true',
      COMPUTE_API_ENDPOINT: 'http://127.0.0.1:8085',
    });
    expect(config).toMatchObject({
      mutationQueueLimit: 250,
      mutationQueueLimitPerCaller: 1,
      jitConfigsPerInstancePerHour: 3,
      verifyInstanceExists: true,
      computeEndpoint: { apiEndpoint: '127.0.0.1', port: 8085, protocol: 'http' },
    });
  });

  it.each([
    ['MUTATION_QUEUE_LIMIT', '0', 'MUTATION_QUEUE_LIMIT: must be a whole number from 1 to 100000'],
    [
      'MUTATION_QUEUE_LIMIT_PER_CALLER',
      '-1',
      'MUTATION_QUEUE_LIMIT_PER_CALLER: must be a whole number from 1 to 1000',
    ],
    [
      'JIT_CONFIGS_PER_INSTANCE_PER_HOUR',
      'many',
      'JIT_CONFIGS_PER_INSTANCE_PER_HOUR: must be a whole number from 1 to 1000',
    ],
    ['VERIFY_INSTANCE_EXISTS', 'yes', 'VERIFY_INSTANCE_EXISTS: must be true or false'],
    [
      'COMPUTE_API_ENDPOINT',
      'https://compute.example/v1',
      'COMPUTE_API_ENDPOINT: must be host[:port] or http(s)://host[:port], without a path',
    ],
  ])('refuses %s=%s', (name, value, problem) => {
    expect(problemsOf({ ...base, [name]: value })).toContain(problem);
  });
});
