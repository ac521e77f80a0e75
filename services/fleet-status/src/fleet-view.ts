import { z } from 'zod';

/**
 * The autoscaler's `GET /fleet` as this service reads it: every field the autoscaler has documented, and the
 * ones being added (the reaper's join of VMs and runners, its decisions), each optional and each checked only
 * for the shape the page needs. Whatever else arrives is ignored, and a field of the wrong shape is dropped
 * rather than failing the page (`.catch`): the page shows what it can, as the autoscaler grows.
 */
const text = z.string().catch('');
const optionalText = z.string().nullable().optional().catch(null);
const optionalNumber = z.number().nullable().optional().catch(null);
const list = <T extends z.ZodType>(item: T) =>
  z
    .array(z.unknown())
    .catch([])
    .transform((items) =>
      items.flatMap((raw) => {
        const parsed = item.safeParse(raw);
        return parsed.success ? [parsed.data as z.output<T>] : [];
      }),
    );

/** A runner as a join row shows it. */
export const runnerViewSchema = z.object({
  id: z.number(),
  name: text,
  status: text,
  busy: z.boolean().catch(false),
  labels: z.array(z.string()).catch([]),
  /** The actions/runner version it reported when it connected; null before it has. */
  version: z.string().max(64).nullable().optional().catch(null),
});
export type RunnerView = z.output<typeof runnerViewSchema>;

/** One VM with its runner (or a runner whose VM is gone), from the autoscaler's join; times in ms. */
export const fleetRowSchema = z.object({
  state: text,
  mig: optionalText,
  instance: optionalText,
  instanceId: optionalText,
  zone: optionalText,
  currentAction: optionalText,
  /** The VM's status as the autoscaler's join reports it (`RUNNING`, …). */
  status: optionalText,
  instanceStatus: optionalText,
  keep: z.boolean().nullable().optional().catch(null),
  runner: runnerViewSchema.nullable().optional().catch(null),
  /** Seconds since the autoscaler first saw the VM (its join's `ageSeconds`). */
  ageSeconds: optionalNumber,
  firstSeenAt: optionalNumber,
  idleSince: optionalNumber,
});
export type FleetRow = z.output<typeof fleetRowSchema>;

export const scaleDecisionSchema = z.object({
  at: text,
  jobId: z.number().nullable().optional().catch(null),
  instance: text,
  outcome: text,
  mig: optionalText,
  reason: optionalText,
  source: text,
});
export type ScaleDecision = z.output<typeof scaleDecisionSchema>;

export const reaperDecisionSchema = z.object({
  at: text,
  kind: text,
  action: text,
  outcome: text,
  instance: optionalText,
  mig: optionalText,
  runnerName: optionalText,
  reason: text,
  detail: optionalText,
});
export type ReaperDecision = z.output<typeof reaperDecisionSchema>;

export const deliveryRecordSchema = z.object({
  at: text,
  guid: text,
  deliveryId: optionalNumber,
  jobId: optionalNumber,
  status: optionalNumber,
  reason: optionalText,
});
export type DeliveryRecord = z.output<typeof deliveryRecordSchema>;

export const poolViewSchema = z
  .object({
    name: z.string(),
    labels: z.array(z.string()).catch([]),
    maxRunners: optionalNumber,
    inUse: optionalNumber,
    migs: list(
      z.object({
        mig: z.string(),
        targetSize: optionalNumber,
        listedAt: optionalText,
        shortage: optionalText,
      }),
    ),
    queuedJobs: optionalNumber,
    queuedWithoutCapacity: list(
      z.object({ jobId: z.number(), repository: text, queuedAt: text, outcome: text }),
    ),
    recentDecisions: list(scaleDecisionSchema),
    // Being added by the reaper: the join and its decisions. Either name is read.
    rows: list(fleetRowSchema).optional(),
    rowsAt: z.union([z.number(), z.string()]).nullable().optional().catch(null),
    reaperDecisions: list(reaperDecisionSchema).optional(),
    reaping: list(reaperDecisionSchema).optional(),
    /** Why the autoscaler stopped scaling this pool up (a runner version past GitHub's deadline), if it did. */
    scaleUpBlockedReason: optionalText,
  })
  .transform(({ reaping, reaperDecisions, ...pool }) => ({
    ...pool,
    reaperDecisions: reaperDecisions ?? reaping ?? [],
  }));
export type PoolView = z.output<typeof poolViewSchema>;

export const fleetViewSchema = z.object({
  generatedAt: text,
  pools: list(poolViewSchema),
  deliveries: z
    .object({ failed: list(deliveryRecordSchema), redelivered: list(deliveryRecordSchema) })
    .catch({ failed: [], redelivered: [] }),
  /** The releases as the autoscaler's reconciler read them to judge runner versions (and stop pools). */
  runnerReleases: z
    .object({ fetchedAt: optionalText, error: optionalText })
    .nullable()
    .optional()
    .catch(null),
});
/** The fleet view, as parsed. */
export type FleetView = z.output<typeof fleetViewSchema>;
