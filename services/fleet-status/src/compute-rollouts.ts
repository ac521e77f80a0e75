// The v1 clients alone: the package root also loads the beta clients and a 30 MB protobuf module.
import * as v1 from '@google-cloud/compute/build/src/v1/index.js';
import type { protos } from '@google-cloud/compute';
import type { CallOptions } from 'google-gax';
import { LRUCache } from 'lru-cache';
import { withDeadline } from '#shared';
import { formatMigRef } from './mig-ref.js';
import type { MigRef } from './mig-ref.js';

/** The options every `@google-cloud/compute` v1 client constructor takes. */
export type ComputeClientOptions = NonNullable<ConstructorParameters<typeof v1.InstancesClient>[0]>;

/** Instance metadata keys of the actions/runner release a template installs (deploy/instance-template.sh). */
export const RUNNER_VERSION_KEY = 'github-runner-version';
export const RUNNER_SHA256_KEY = 'github-runner-sha256';

/** One of a MIG's `versions`: a template and how many members should run it. */
export interface MigVersion {
  /** '' when unnamed. */
  name: string;
  instanceTemplate: string;
  fixed: number | null;
  percent: number | null;
  /** Compute's own count for the version, from the MIG's targetSize. */
  calculated: number | null;
}

/** A member with the template it runs. */
export interface MigMemberTemplate {
  name: string;
  zone: string;
  /** A uint64 as a string; null until the VM exists. */
  id: string | null;
  currentAction: string;
  instanceStatus: string | null;
  instanceTemplate: string | null;
}

/** What a MIG says about its templates and its update. */
export interface MigRollout {
  mig: string;
  ref: MigRef;
  targetSize: number;
  instanceTemplate: string | null;
  versions: MigVersion[];
  /** `OPPORTUNISTIC` or `PROACTIVE`. */
  updateType: string | null;
  /** `status.versionTarget.isReached`. */
  isReached: boolean | null;
  isStable: boolean | null;
  /** `currentActions` counters above zero. */
  currentActions: Record<string, number>;
  /** The regional MIG's zones (`distributionPolicy.zones`); [the zone] for a zonal MIG. */
  zones: string[];
  members: MigMemberTemplate[];
}

/** An instance template's runner release, from its metadata. */
export interface TemplateInfo {
  url: string;
  name: string;
  runnerVersion: string | null;
  runnerSha256: string | null;
}

/** A Compute read failed; `message` is Compute's own error message or what did not answer, never a credential. */
export class ComputeReadError extends Error {
  override readonly name = 'ComputeReadError';

  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What the status page (and `npm run fleet -- rollout status`) reads from Compute Engine. */
export interface ComputeRolloutReader {
  /** `instanceGroupManagers.get` and `listManagedInstances` of one MIG (two calls, in parallel). */
  describeMig(mig: MigRef): Promise<MigRollout>;
  /** An instance template's runner release; kept once read (templates cannot change). */
  template(url: string): Promise<TemplateInfo>;
}

const TEMPLATE_URL =
  /^(?:https:\/\/[^/]+\/compute\/v1\/)?projects\/([^/]+)\/(?:global|regions\/([^/]+))\/instanceTemplates\/([^/]+)$/;
const MEMBER_URL = /\/zones\/([^/]+)\/instances\/([^/]+)$/;

/** The template name of a template URL (for display). */
export function templateName(url: string): string {
  return TEMPLATE_URL.exec(url)?.[3] ?? url;
}

/** Compute's `error.message` out of a client error (a GaxiosError's message is the response body), cut short. */
export function computeErrorMessage(error: unknown): { status: number; message: string } {
  const { status, code, message } = (error ?? {}) as { status?: unknown; code?: unknown; message?: unknown };
  const http = [status, code].find((v): v is number => typeof v === 'number' && v >= 100) ?? 0;
  let text = '';
  if (typeof message === 'string') {
    try {
      const parsed = (JSON.parse(message) as { error?: { message?: unknown } } | null)?.error?.message;
      text = typeof parsed === 'string' ? parsed : '';
    } catch {
      // gax's own messages (`13 INTERNAL: …`) name no credential, and Google's error messages neither.
      text = /^\d+ [A-Z_]+: /.test(message) || http !== 0 ? message : '';
    }
  }
  const errno = [code, (error as { cause?: { code?: unknown } } | null)?.cause?.code].find(
    (v): v is string => typeof v === 'string' && /^E[A-Z]+$/.test(v),
  );
  const fallback =
    http !== 0
      ? `Compute Engine answered ${http}`
      : `Compute Engine could not be reached${errno ? ` (${errno})` : ''}`;
  return { status: http, message: (text || fallback).slice(0, 300) };
}

function toVersion(version: protos.google.cloud.compute.v1.IInstanceGroupManagerVersion): MigVersion {
  const target = version.targetSize;
  return {
    name: version.name ?? '',
    instanceTemplate: version.instanceTemplate ?? '',
    fixed: target?.fixed ?? null,
    percent: target?.percent ?? null,
    calculated: target?.calculated ?? null,
  };
}

function metadataValue(items: ReadonlyArray<{ key?: string | null; value?: string | null }>, key: string) {
  return items.find((item) => item.key === key)?.value ?? null;
}

/**
 * A MIG's rollout as `instanceGroupManagers.get` (or an aggregated list) and `listManagedInstances` report it;
 * `members` empty when they were not listed.
 */
export function migRolloutOf(
  mig: MigRef,
  group: protos.google.cloud.compute.v1.IInstanceGroupManager,
  members: readonly protos.google.cloud.compute.v1.IManagedInstance[],
): MigRollout {
  const actions = Object.entries(group.currentActions ?? {}).filter(
    (entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] > 0,
  );
  return {
    mig: formatMigRef(mig),
    ref: mig,
    targetSize: group.targetSize ?? 0,
    instanceTemplate: group.instanceTemplate ?? null,
    versions: (group.versions ?? []).map(toVersion),
    updateType: group.updatePolicy?.type ?? null,
    isReached: group.status?.versionTarget?.isReached ?? null,
    isStable: group.status?.isStable ?? null,
    currentActions: Object.fromEntries(actions),
    zones:
      mig.scope === 'zones'
        ? [mig.location]
        : (group.distributionPolicy?.zones ?? []).map((z) => (z.zone ?? '').split('/').pop() ?? ''),
    members: members.flatMap((member): MigMemberTemplate[] => {
      const match = MEMBER_URL.exec(member.instance ?? '');
      if (!match) return [];
      return [
        {
          name: match[2]!,
          zone: match[1]!,
          id: member.id && member.id !== '0' ? String(member.id) : null,
          currentAction: member.currentAction ?? 'NONE',
          instanceStatus: member.instanceStatus || null,
          instanceTemplate: member.version?.instanceTemplate ?? null,
        },
      ];
    }),
  };
}

/**
 * The {@link ComputeRolloutReader} on the `@google-cloud/compute` v1 REST clients. Every call has a deadline
 * (`timeoutMs`, default 5 s) and no gax retries: the page is read again in 30 seconds anyway.
 */
export function createComputeRolloutReader(
  clientOptions: ComputeClientOptions = {},
  options: { timeoutMs?: number } = {},
): ComputeRolloutReader {
  const zoneMigs = new v1.InstanceGroupManagersClient(clientOptions);
  const regionMigs = new v1.RegionInstanceGroupManagersClient(clientOptions);
  const templates = new v1.InstanceTemplatesClient(clientOptions);
  const regionTemplates = new v1.RegionInstanceTemplatesClient(clientOptions);
  const timeoutMs = options.timeoutMs ?? 5000;
  const call: CallOptions = { timeout: timeoutMs, retry: null };
  const cache = new LRUCache<string, TemplateInfo>({ max: 500 });

  const run = <T>(what: string, work: () => Promise<T>): Promise<T> =>
    withDeadline(
      timeoutMs,
      () => new ComputeReadError(0, `${what}: no answer within ${timeoutMs} ms`),
      async () => {
        try {
          return await work();
        } catch (error) {
          if (error instanceof ComputeReadError) throw error;
          const { status, message } = computeErrorMessage(error);
          throw new ComputeReadError(status, `${what}: ${message}`);
        }
      },
    );

  return {
    describeMig: (mig) =>
      run(`reading ${formatMigRef(mig)}`, async () => {
        const zonal = { project: mig.project, zone: mig.location, instanceGroupManager: mig.name };
        const regional = { project: mig.project, region: mig.location, instanceGroupManager: mig.name };
        const [[group], [members]] =
          mig.scope === 'zones'
            ? await Promise.all([zoneMigs.get(zonal, call), zoneMigs.listManagedInstances(zonal, call)])
            : await Promise.all([
                regionMigs.get(regional, call),
                regionMigs.listManagedInstances(regional, call),
              ]);
        return migRolloutOf(mig, group, members);
      }),

    template: async (url) => {
      const cached = cache.get(url);
      if (cached) return cached;
      const match = TEMPLATE_URL.exec(url);
      if (!match) throw new ComputeReadError(0, `not an instance template URL: ${url.slice(0, 200)}`);
      const [, project = '', region, name = ''] = match;
      const info = await run(`reading instance template ${name}`, async () => {
        const [template] =
          region === undefined
            ? await templates.get({ project, instanceTemplate: name }, call)
            : await regionTemplates.get({ project, region, instanceTemplate: name }, call);
        const items = template.properties?.metadata?.items ?? [];
        return {
          url,
          name,
          runnerVersion: metadataValue(items, RUNNER_VERSION_KEY),
          runnerSha256: metadataValue(items, RUNNER_SHA256_KEY),
        };
      });
      cache.set(url, info);
      return info;
    },
  };
}
