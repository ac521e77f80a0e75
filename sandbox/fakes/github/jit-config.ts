import type { FakeRunner, RunnerScope } from './github-state.js';
import { gitHubUrlOf } from './github-state.js';

const encodeJson = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64');

function decodeJson(base64: unknown): Record<string, unknown> | undefined {
  if (typeof base64 !== 'string') return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Builds an `encoded_jit_config` laid out like the real one: base64 of a JSON map from the runner's config
 * file names to base64 file contents. `.runner` carries readable settings a stand-in runner may use;
 * `.credentials` carries the random secret the fake remembers, so a config cannot be guessed or forged.
 */
export function encodeJitConfig(options: {
  runner: FakeRunner;
  scope: RunnerScope;
  secret: string;
  workFolder: string;
  serverUrl: string;
}): string {
  const { runner, scope, secret, workFolder, serverUrl } = options;
  return encodeJson({
    '.runner': encodeJson({
      AgentId: runner.id,
      AgentName: runner.name,
      PoolId: runner.runner_group_id,
      ServerUrl: serverUrl,
      GitHubUrl: gitHubUrlOf(scope),
      WorkFolder: workFolder,
      Ephemeral: true,
    }),
    '.credentials': encodeJson({ Scheme: 'SandboxJitSecret', Data: { secret } }),
  });
}

/** The secret inside an `encoded_jit_config`, or undefined when the text is not shaped like one. */
export function secretFromJitConfig(encoded: unknown): string | undefined {
  const credentials = decodeJson(decodeJson(encoded)?.['.credentials']);
  const data = credentials?.Data as Record<string, unknown> | undefined;
  return typeof data?.secret === 'string' ? data.secret : undefined;
}
