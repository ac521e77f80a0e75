import type { Logger } from '#shared';
import type { AutoscalerFleetApi } from './autoscaler-fleet.js';
import { templateName } from './compute-rollouts.js';
import type { ComputeRolloutReader, MigRollout, TemplateInfo } from './compute-rollouts.js';
import type {
  DeliveryRecord,
  FleetRow,
  FleetView,
  PoolView,
  ReaperDecision,
  RunnerView,
  ScaleDecision,
} from './fleet-view.js';
import type { RunnerReleasesApi } from '#shared';
import { parseMigRef } from './mig-ref.js';
import { compareRunnerVersions, oldestVersion, parseRunnerVersion, versionDeadline } from '#shared';
import type { RunnerRelease, VersionDeadline } from '#shared';

/**
 * Where a pool's runner version comes from, said on the page: the version each runner reported when it
 * connected (the runner object's `version`, https://docs.github.com/rest/actions/self-hosted-runners#list-self-hosted-runners-for-an-organization),
 * as the autoscaler's join of VMs and runners carries it; a template's `github-runner-version` is what new
 * VMs get.
 */
export const VERSION_SOURCE =
  "the version each runner reported to GitHub when it connected (the runner API's version field, carried by the autoscaler's join of VMs and runners); the 30-day window counts from the oldest of them. A template's github-runner-version metadata is what new VMs get, and is judged only when no runner reports a version.";

/** A template a MIG uses or aims at, with its role in a rollout. */
export interface TemplateUse {
  url: string;
  name: string;
  /** `canary`: a version with a target size; `stable`: the version taking the rest; `previous`: no version names it any more. */
  role: 'canary' | 'stable' | 'previous';
  runnerVersion: string | null;
  /** Compute's calculated target for the version; null for `previous`. */
  target: number | null;
  /** Members running it now (not being deleted). */
  members: number;
}

export interface MigStatus {
  mig: string;
  name: string;
  /** `zones/us-east1-b` or `regions/us-central1`. */
  location: string;
  targetSize: number | null;
  shortage: string | null;
  currentActions: Record<string, number>;
  updateType: string | null;
  /** Whether the rollout (if any) is done: `status.versionTarget.isReached`. */
  isReached: boolean | null;
  templates: TemplateUse[];
  /** Why Compute could not be read for this MIG. */
  error: string | null;
}

/** One VM of a pool, with its runner when the autoscaler joined one to it. */
export interface VmStatus {
  instance: string;
  mig: string;
  zone: string | null;
  currentAction: string | null;
  instanceStatus: string | null;
  template: string | null;
  /** The `github-runner-version` of the VM's template: what it was made to install. */
  templateVersion: string | null;
  /** The autoscaler's word for the row (`idle`, `busy`, `booting`, `runner-left`, …); null without its join. */
  state: string | null;
  runner: RunnerView | null;
  /** Seconds since the autoscaler first saw the VM; null when not known. */
  ageSeconds: number | null;
  keep: boolean | null;
}

export interface PoolStatus {
  name: string;
  labels: string[];
  maxRunners: number | null;
  inUse: number | null;
  queuedJobs: number | null;
  scaleUpBlockedReason: string | null;
  runnerVersion: VersionDeadline & {
    /** Runners per version they reported, oldest first; `null` counts runners that have not connected yet. */
    versions: Array<{ version: string | null; runners: number }>;
    /** The versions the MIGs' current templates (canary and stable) name: what new VMs get. */
    templateVersions: string[];
    /** True when no runner reports a version and the deadline judges the templates' versions instead. */
    fromTemplatesOnly: boolean;
  };
  migs: MigStatus[];
  vms: VmStatus[];
  /** Whether the autoscaler's fleet view carries the join of VMs and runners (runner columns are empty without it). */
  hasJoin: boolean;
  queuedWithoutCapacity: PoolView['queuedWithoutCapacity'];
  /** Newest first, at most 20. */
  recentDecisions: ScaleDecision[];
  /** Newest first, at most 20. */
  reaperDecisions: ReaperDecision[];
}

/** What `/status` renders and `/status.json` answers. */
export interface StatusView {
  generatedAt: string;
  autoscaler: {
    generatedAt: string | null;
    error: string | null;
    /**
     * Why the autoscaler could not read the actions/runner releases: it then stops no pool for its runner
     * version (fails open), and the page says so.
     */
    releasesError: string | null;
  };
  releases: { latest: RunnerRelease | null; fetchedAt: string | null; error: string | null };
  versionSource: string;
  pools: PoolStatus[];
  deliveries: { failed: DeliveryRecord[]; redelivered: DeliveryRecord[] };
}

export interface DescribeStatusDeps {
  fleet: AutoscalerFleetApi;
  compute: ComputeRolloutReader;
  releases: RunnerReleasesApi;
  logger: Logger;
  now: () => number;
}

const newestFirst = <T extends { at: string }>(list: readonly T[], max: number): T[] =>
  [...list].sort((a, b) => b.at.localeCompare(a.at)).slice(0, max);
const leaving = (action: string | null | undefined) => action === 'DELETING' || action === 'ABANDONING';
const message = (error: unknown) => (error instanceof Error ? error.message : 'internal error');

function templateUses(rollout: MigRollout, info: ReadonlyMap<string, TemplateInfo>): TemplateUse[] {
  const live = rollout.members.filter((m) => !leaving(m.currentAction));
  const count = (url: string) => live.filter((m) => m.instanceTemplate === url).length;
  const uses: TemplateUse[] = rollout.versions
    .filter((v) => v.instanceTemplate !== '')
    .map((v) => ({
      url: v.instanceTemplate,
      name: templateName(v.instanceTemplate),
      role: v.fixed !== null || v.percent !== null ? 'canary' : 'stable',
      runnerVersion: info.get(v.instanceTemplate)?.runnerVersion ?? null,
      target: v.calculated,
      members: count(v.instanceTemplate),
    }));
  const named = new Set(uses.map((u) => u.url));
  for (const url of new Set(live.map((m) => m.instanceTemplate))) {
    if (url === null || named.has(url)) continue;
    uses.push({
      url,
      name: templateName(url),
      role: 'previous',
      runnerVersion: info.get(url)?.runnerVersion ?? null,
      target: null,
      members: count(url),
    });
  }
  return uses;
}

/**
 * Builds the status: the autoscaler's fleet view (pools, MIGs, its join of VMs and runners, decisions and
 * deliveries), each MIG's templates and members from Compute, each template's runner release, and the
 * actions/runner releases; then each pool's runner version against GitHub's 30-day window. A part that cannot
 * be read is reported in its place; the rest is still shown.
 */
export async function describeStatus(deps: DescribeStatusDeps): Promise<StatusView> {
  const now = deps.now();
  const [fleetResult, releasesResult] = await Promise.allSettled([
    deps.fleet.readFleet(),
    deps.releases.releases(),
  ]);
  const releases =
    releasesResult.status === 'fulfilled'
      ? {
          list: releasesResult.value.releases,
          latest: versionDeadline(null, releasesResult.value.releases, now).latest,
          fetchedAt: new Date(releasesResult.value.fetchedAt).toISOString(),
          error: releasesResult.value.staleBecause ?? null,
        }
      : { list: null, latest: null, fetchedAt: null, error: message(releasesResult.reason) };
  const view: StatusView = {
    generatedAt: new Date(now).toISOString(),
    autoscaler: { generatedAt: null, error: null, releasesError: null },
    releases: { latest: releases.latest, fetchedAt: releases.fetchedAt, error: releases.error },
    versionSource: VERSION_SOURCE,
    pools: [],
    deliveries: { failed: [], redelivered: [] },
  };
  if (fleetResult.status === 'rejected') {
    view.autoscaler.error = message(fleetResult.reason);
    deps.logger.warn({ error: view.autoscaler.error }, 'fleet view unavailable');
    return view;
  }
  const fleet: FleetView = fleetResult.value;
  view.autoscaler.generatedAt = fleet.generatedAt || null;
  view.autoscaler.releasesError = fleet.runnerReleases?.error ?? null;
  view.deliveries = {
    failed: newestFirst(fleet.deliveries.failed, 50),
    redelivered: newestFirst(fleet.deliveries.redelivered, 50),
  };

  // Every MIG of every pool at once: two Compute calls each, then each template not yet known.
  const migNames = [...new Set(fleet.pools.flatMap((pool) => pool.migs.map((m) => m.mig)))];
  const rollouts = new Map<string, MigRollout | Error>();
  await Promise.all(
    migNames.map(async (name) => {
      const ref = parseMigRef(name);
      try {
        if (!ref) throw new Error(`not a MIG URL: ${name.slice(0, 200)}`);
        rollouts.set(name, await deps.compute.describeMig(ref));
      } catch (error) {
        rollouts.set(name, error instanceof Error ? error : new Error('internal error'));
      }
    }),
  );
  const templateUrls = new Set<string>();
  for (const rollout of rollouts.values()) {
    if (rollout instanceof Error) continue;
    for (const v of rollout.versions) if (v.instanceTemplate) templateUrls.add(v.instanceTemplate);
    for (const m of rollout.members) if (m.instanceTemplate) templateUrls.add(m.instanceTemplate);
  }
  const templates = new Map<string, TemplateInfo>();
  await Promise.all(
    [...templateUrls].map(async (url) => {
      try {
        templates.set(url, await deps.compute.template(url));
      } catch (error) {
        deps.logger.warn(
          { template: templateName(url), error: message(error) },
          'instance template unreadable',
        );
      }
    }),
  );

  view.pools = fleet.pools.map((pool) => describePool(pool, rollouts, templates, releases.list, now));
  // The warnings and errors an alert watches are the autoscaler's reconciler's, one line per pool per run
  // (reconcile.ts): this page is built only while someone looks at it.
  return view;
}

function describePool(
  pool: PoolView,
  rollouts: ReadonlyMap<string, MigRollout | Error>,
  templates: ReadonlyMap<string, TemplateInfo>,
  releases: readonly RunnerRelease[] | null,
  now: number,
): PoolStatus {
  const rows: readonly FleetRow[] = pool.rows ?? [];
  const rowOf = new Map(rows.filter((r) => r.instance).map((r) => [r.instance!, r]));
  const vms: VmStatus[] = [];
  const migs: MigStatus[] = pool.migs.map((entry) => {
    const ref = parseMigRef(entry.mig);
    const rollout = rollouts.get(entry.mig);
    const base = {
      mig: entry.mig,
      name: ref?.name ?? entry.mig,
      location: ref ? `${ref.scope}/${ref.location}` : '',
      shortage: entry.shortage ?? null,
    };
    if (!rollout || rollout instanceof Error) {
      return {
        ...base,
        targetSize: entry.targetSize ?? null,
        currentActions: {},
        updateType: null,
        isReached: null,
        templates: [],
        error: rollout?.message ?? 'not read',
      };
    }
    for (const member of rollout.members) {
      const row = rowOf.get(member.name);
      rowOf.delete(member.name);
      const template = member.instanceTemplate;
      vms.push({
        instance: member.name,
        mig: base.name,
        zone: member.zone,
        currentAction: member.currentAction,
        instanceStatus: member.instanceStatus,
        template: template === null ? null : templateName(template),
        templateVersion: template === null ? null : (templates.get(template)?.runnerVersion ?? null),
        state: row?.state || null,
        runner: row?.runner ?? null,
        ageSeconds: row ? ageOf(row, now) : null,
        keep: row?.keep ?? null,
      });
    }
    return {
      ...base,
      targetSize: rollout.targetSize,
      currentActions: rollout.currentActions,
      updateType: rollout.updateType,
      isReached: rollout.isReached,
      templates: templateUses(rollout, templates),
      error: null,
    };
  });
  // Rows of the join Compute no longer lists: runners whose VM is gone.
  for (const row of rowOf.values()) {
    vms.push({
      instance: row.instance!,
      mig: (row.mig && parseMigRef(row.mig)?.name) || '',
      zone: row.zone ?? null,
      currentAction: row.currentAction ?? null,
      instanceStatus: row.status ?? row.instanceStatus ?? null,
      template: null,
      templateVersion: null,
      state: row.state || null,
      runner: row.runner ?? null,
      ageSeconds: ageOf(row, now),
      keep: row.keep ?? null,
    });
  }

  // What the runners reported when they connected (every runner of the join: one whose VM is gone still
  // takes jobs while online); runners that have not connected yet have no version.
  const counts = new Map<string | null, number>();
  for (const vm of vms) {
    if (!vm.runner || leaving(vm.currentAction)) continue;
    const version = vm.runner.version ?? null;
    counts.set(version, (counts.get(version) ?? 0) + 1);
  }
  const reported = [...counts.keys()].filter((v): v is string => v !== null);
  const templateVersions = [
    ...new Set(
      migs.flatMap((m) =>
        m.templates
          .filter((t) => t.role !== 'previous' && t.runnerVersion !== null)
          .map((t) => t.runnerVersion!),
      ),
    ),
  ];
  const fromTemplatesOnly = oldestVersion(reported) === null;
  const deadline = versionDeadline(
    oldestVersion(fromTemplatesOnly ? templateVersions : reported),
    releases,
    now,
  );
  const byVersion = (a: string | null, b: string | null) =>
    a === null
      ? 1
      : b === null
        ? -1
        : parseRunnerVersion(a) && parseRunnerVersion(b)
          ? compareRunnerVersions(a, b)
          : a.localeCompare(b);
  return {
    name: pool.name,
    labels: pool.labels,
    maxRunners: pool.maxRunners ?? null,
    inUse: pool.inUse ?? null,
    queuedJobs: pool.queuedJobs ?? null,
    scaleUpBlockedReason: pool.scaleUpBlockedReason ?? null,
    runnerVersion: {
      ...deadline,
      versions: [...counts]
        .sort(([a], [b]) => byVersion(a, b))
        .map(([version, n]) => ({ version, runners: n })),
      templateVersions: templateVersions.sort(byVersion),
      fromTemplatesOnly,
    },
    migs,
    vms,
    hasJoin: pool.rows !== undefined,
    queuedWithoutCapacity: pool.queuedWithoutCapacity,
    recentDecisions: newestFirst(pool.recentDecisions, 20),
    reaperDecisions: newestFirst(pool.reaperDecisions, 20),
  };
}

/** A row's age in seconds: the join's `ageSeconds`, or counted from `firstSeenAt` (ms since the epoch). */
function ageOf(row: FleetRow, now: number): number | null {
  if (typeof row.ageSeconds === 'number') return Math.max(0, Math.round(row.ageSeconds));
  if (typeof row.firstSeenAt === 'number') return Math.max(0, Math.round((now - row.firstSeenAt) / 1000));
  return null;
}
