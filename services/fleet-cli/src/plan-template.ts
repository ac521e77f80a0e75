import type { protos } from '@google-cloud/compute';
import { parseRunnerVersion } from '#shared';
import { RUNNER_SHA256_KEY, RUNNER_VERSION_KEY } from '#fleet-status';

type InstanceTemplate = protos.google.cloud.compute.v1.IInstanceTemplate;

/** Compute Engine resource names (https://cloud.google.com/compute/docs/naming-resources). */
export const RESOURCE_NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/** Plain data: the decoded message without the client library's markers (`_key`, …) and empty leaves. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key.startsWith('_') || inner === null || inner === undefined) continue;
    out[key] = plain(inner);
  }
  return out;
}

/**
 * A new template from `base` whose VMs install actions/runner `version`: the base's properties with the
 * `github-runner-version` and `github-runner-sha256` metadata items set (deploy/runner-startup.sh reads them,
 * and installs that release unless the image already holds it). Instance templates cannot be changed, so a new
 * runner version is always a new template.
 * https://cloud.google.com/compute/docs/instance-templates#how_to_update_instance_templates
 */
export function templateFrom(
  base: InstanceTemplate,
  options: { name: string; version: string; sha256: string },
): InstanceTemplate {
  const properties = plain(base.properties ?? {}) as NonNullable<InstanceTemplate['properties']>;
  const items = (properties.metadata?.items ?? []).filter(
    (item) => item.key !== RUNNER_VERSION_KEY && item.key !== RUNNER_SHA256_KEY,
  );
  items.push(
    { key: RUNNER_VERSION_KEY, value: options.version },
    { key: RUNNER_SHA256_KEY, value: options.sha256.toLowerCase() },
  );
  return {
    name: options.name,
    description: `${base.name ?? 'base'} with actions/runner ${options.version} (npm run fleet -- templates create)`,
    properties: { ...properties, metadata: { ...properties.metadata, items } },
  };
}

/** Problems with `templates create` arguments, for a usage error (exit 2). */
export function templateArgumentProblems(options: {
  name: string;
  version: string;
  sha256: string;
}): string[] {
  const problems: string[] = [];
  if (!RESOURCE_NAME.test(options.name))
    problems.push(`--name ${JSON.stringify(options.name)} is not a Compute Engine resource name`);
  if (!parseRunnerVersion(options.version))
    problems.push(
      `--runner-version ${JSON.stringify(options.version)} is not a release version such as 2.331.0`,
    );
  if (!/^[0-9a-f]{64}$/i.test(options.sha256))
    problems.push('--runner-sha256 must be the SHA-256 of the release tarball (64 hex digits)');
  return problems;
}
