import type { RecordedCall } from '../fakes/fake-server.js';
import type { IssuedTokens } from '../fakes/github-api.js';
import { ATTACK_DESCRIPTIONS, isRefused } from './attacks.js';
import type { AttackAttempt } from './attacks.js';
import type { FleetResult } from './fleet.js';

/** Latency of one endpoint, in milliseconds. */
export interface LatencyStats {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** What `npm run demo -- --attacks --json` prints; the table shows the same. */
export interface DemoSummary {
  /** True when every VM was served and deleted and every attack was refused with a 4xx. */
  ok: boolean;
  durationSeconds: number;
  vms: {
    total: number;
    byKind: Record<string, number>;
    attackers: number;
    served: number;
    failed: Array<{ vm: string; error: string }>;
  };
  /** What the token proxy handed to VMs, and what GitHub had to create for it. */
  issued: {
    jitConfigs: number;
    registrationTokens: number;
    githubJitConfigs: number;
    githubRegistrationTokens: number;
  };
  deregistered: { removed: number; alreadyGone: number };
  /** GitHub REST API calls the token proxy made, by kind (the runner binary's calls are apart). */
  github: { total: number; byKind: Record<string, number>; runnerService: number };
  deletions: {
    total: number;
    byMig: Record<string, number>;
    /** Members still in each MIG at the end: 0 when every VM is gone. */
    left: Record<string, number>;
    afterJob: number;
    idleScaleDown: number;
  };
  /** Idle VMs' `GET /` answers; `keptAfterYes`: the conditional DELETE then kept the VM after all. */
  scaleDownChecks: {
    yes: number;
    no: number;
    keptAfterYes: number;
    recommendedSizes: Record<string, number>;
  };
  attacks: {
    attempted: number;
    refused: number;
    byAttack: Record<string, { attempted: number; refused: number; statuses: number[]; description: string }>;
    notRefused: AttackAttempt[];
  };
  /** Refusals by status and message (VM names masked, so alike refusals count together). */
  refusals: Array<{ status: number; message: string; count: number }>;
  latencyMs: Record<string, LatencyStats>;
}

/** What a GitHub REST call was for, from its method and path. */
export function githubCallKind(call: Pick<RecordedCall, 'method' | 'path'>): string {
  const { method, path } = call;
  if (path.startsWith('/_sandbox/')) return 'runner service';
  if (/\/access_tokens$/.test(path)) return 'installation token';
  if (/\/installation$/.test(path)) return 'installation lookup';
  if (path.endsWith('/actions/runners/registration-token')) return 'registration token';
  if (path.endsWith('/actions/runners/remove-token')) return 'remove token';
  if (path.endsWith('/actions/runners/generate-jitconfig')) return 'jitconfig';
  if (/\/actions\/runner-groups/.test(path)) return 'runner groups';
  if (path.endsWith('/actions/runners')) return 'runners list';
  if (/\/actions\/runners\/\d+$/.test(path)) return method === 'DELETE' ? 'runner delete' : 'runner get';
  return `other (${method} ${path})`;
}

/** Nearest-rank percentiles, rounded to 0.1 ms. */
export function latencyStats(samples: readonly number[]): LatencyStats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    count: sorted.length,
    p50: round(rank(50)),
    p90: round(rank(90)),
    p99: round(rank(99)),
    max: round(sorted.at(-1) ?? 0),
  };
}

const count = <T>(items: readonly T[], key: (item: T) => string): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
};

/** Masks what differs between alike refusals: VM names and loopback ports. */
const maskMessage = (message: string) =>
  message
    .replace(/gh-runner-(presubmit|postsubmit)-[0-9a-z]+/g, 'gh-runner-$1-…')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:…');

/** What the summary reads besides the fleet's own record. */
export interface SummaryInputs {
  fleet: FleetResult;
  latencies: ReadonlyMap<string, readonly number[]>;
  githubCalls: readonly RecordedCall[];
  githubIssued: IssuedTokens;
  /** Members left in each MIG, by name. */
  migsLeft: Record<string, number>;
}

/** Builds the summary from what the fleet did and what the fakes saw. */
export function summarize({
  fleet,
  latencies,
  githubCalls,
  githubIssued,
  migsLeft,
}: SummaryInputs): DemoSummary {
  const { vms, attacks } = fleet;
  const failed = vms.filter((vm) => vm.error !== undefined).map((vm) => ({ vm: vm.name, error: vm.error! }));
  const apiCalls = githubCalls.filter((call) => githubCallKind(call) !== 'runner service');
  const notRefused = attacks.filter((attempt) => !isRefused(attempt));
  const idle = vms.filter((vm) => vm.idleCheck !== undefined);
  const deletedTotal = Object.values(fleet.deletedByMig).reduce((sum, n) => sum + n, 0);

  const byAttack: DemoSummary['attacks']['byAttack'] = {};
  for (const attempt of attacks) {
    const entry = (byAttack[attempt.attack] ??= {
      attempted: 0,
      refused: 0,
      statuses: [],
      description: ATTACK_DESCRIPTIONS[attempt.attack] ?? '',
    });
    entry.attempted += 1;
    if (isRefused(attempt)) entry.refused += 1;
    if (!entry.statuses.includes(attempt.status)) entry.statuses.push(attempt.status);
  }
  const refusalCounts = new Map<string, { status: number; message: string; count: number }>();
  for (const attempt of attacks.filter(isRefused)) {
    const message = maskMessage(attempt.message);
    const key = `${attempt.status} ${message}`;
    const entry = refusalCounts.get(key) ?? { status: attempt.status, message, count: 0 };
    entry.count += 1;
    refusalCounts.set(key, entry);
  }

  const summary: DemoSummary = {
    ok: false,
    durationSeconds: Math.round(fleet.durationMs / 100) / 10,
    vms: {
      total: vms.length,
      byKind: count(vms, (vm) => vm.kind),
      attackers: vms.filter((vm) => vm.attacker).length,
      served: vms.filter((vm) => vm.registered && vm.deletedBy !== undefined && vm.error === undefined)
        .length,
      failed,
    },
    issued: {
      jitConfigs: vms.filter((vm) => vm.registered && vm.mode === 'jit').length,
      registrationTokens: vms.filter((vm) => vm.registered && vm.mode === 'token').length,
      githubJitConfigs: githubIssued.jitConfigs.length,
      githubRegistrationTokens: githubIssued.runner.filter((token) => token.kind === 'registration').length,
    },
    deregistered: {
      removed: vms.filter((vm) => vm.deregistered === 'removed').length,
      alreadyGone: vms.filter((vm) => vm.deregistered === 'already gone').length,
    },
    github: {
      total: apiCalls.length,
      byKind: count(apiCalls, githubCallKind),
      runnerService: githubCalls.length - apiCalls.length,
    },
    deletions: {
      total: deletedTotal,
      // In the MIGs' order, with a 0 for a MIG that lost no VM.
      byMig: { ...Object.fromEntries(Object.keys(migsLeft).map((mig) => [mig, 0])), ...fleet.deletedByMig },
      left: migsLeft,
      afterJob: vms.filter((vm) => vm.deletedBy === 'DELETE /').length,
      idleScaleDown: vms.filter((vm) => vm.deletedBy === 'DELETE /?if=scale-down').length,
    },
    scaleDownChecks: {
      yes: idle.filter((vm) => vm.idleCheck!.scaleDown).length,
      no: idle.filter((vm) => !vm.idleCheck!.scaleDown).length,
      keptAfterYes: idle.filter((vm) => vm.idleCheck!.scaleDown && !vm.idleCheck!.deleted).length,
      recommendedSizes: fleet.recommendedSizes,
    },
    attacks: { attempted: attacks.length, refused: attacks.length - notRefused.length, byAttack, notRefused },
    refusals: [...refusalCounts.values()].sort((a, b) => a.status - b.status || b.count - a.count),
    latencyMs: Object.fromEntries(
      [...latencies]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([endpoint, samples]) => [endpoint, latencyStats(samples)]),
    ),
  };
  summary.ok =
    failed.length === 0 &&
    summary.vms.served === vms.length &&
    Object.values(migsLeft).every((left) => left === 0) &&
    notRefused.length === 0;
  return summary;
}

/** Lays rows out in columns; a column of numbers (under an optional heading) is right-aligned. */
function columns(rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = rows.map((row) => row.map(String));
  const width = Math.max(...cells.map((row) => row.length));
  const numeric = Array.from({ length: width }, (_, i) =>
    cells.slice(1).every((row) => row[i] === undefined || /^[\d.,]+$/.test(row[i]!)),
  );
  const widths = numeric.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  return cells
    .map((row) => {
      const padded = row.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)));
      return `  ${padded.join('  ')}`.trimEnd();
    })
    .join('\n');
}

const list = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');

/** Long messages (Compute's quote the whole resource path) are cut in the table; the JSON has them whole. */
const cut = (text: string, length = 120) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);

/** The summary as the table people read at the end of `npm run demo -- --attacks`. */
export function formatSummary(s: DemoSummary): string {
  const verdict = s.ok
    ? 'every VM served and deleted, every attack refused'
    : 'FAILED: see the VM failures and attacks below';
  const sections = [
    `Fleet of ${s.vms.total} VMs (${list(s.vms.byKind)}; ${s.vms.attackers} attacker${s.vms.attackers === 1 ? '' : 's'}) in ${s.durationSeconds} s: ${verdict}`,
    columns([
      ['VMs served', `${s.vms.served} of ${s.vms.total}`],
      ['JIT configs issued', `${s.issued.jitConfigs} (GitHub generated ${s.issued.githubJitConfigs})`],
      [
        'registration tokens issued',
        `${s.issued.registrationTokens} (GitHub created ${s.issued.githubRegistrationTokens}, reused by the proxy)`,
      ],
      [
        'runners deregistered',
        `${s.deregistered.removed} removed, ${s.deregistered.alreadyGone} already gone (ephemeral)`,
      ],
      [
        'instances deleted',
        `${s.deletions.total}: ${list(s.deletions.byMig)}; ` +
          (Object.values(s.deletions.left).some((n) => n > 0)
            ? `LEFT ${list(s.deletions.left)}`
            : 'none left'),
      ],
      ['  after their job', `${s.deletions.afterJob} (DELETE /)`],
      ['  idle, MIG above target', `${s.deletions.idleScaleDown} (DELETE /?if=scale-down)`],
      [
        'scale-down checks (GET /)',
        `${s.scaleDownChecks.yes} yes, ${s.scaleDownChecks.no} no, ${s.scaleDownChecks.keptAfterYes} kept after yes; ` +
          `recommended size set half-way: ${list(s.scaleDownChecks.recommendedSizes)}`,
      ],
    ]),
    `GitHub API calls: ${s.github.total} (plus ${s.github.runnerService} by the runners themselves)\n` +
      columns(Object.entries(s.github.byKind).sort(([, a], [, b]) => b - a)),
    s.attacks.attempted === 0
      ? 'Attacks: none tried'
      : `Attacks: ${s.attacks.refused} of ${s.attacks.attempted} refused\n` +
        columns(
          Object.entries(s.attacks.byAttack).map(([name, a]) => [
            name,
            `${a.refused}/${a.attempted}`,
            a.statuses.join(','),
            a.description,
          ]),
        ) +
        `\n\nRequests refused, and why:\n` +
        columns([
          ['count', 'status', 'message'],
          ...s.refusals.map((r) => [r.count, r.status, cut(r.message)]),
        ]),
    `Latency (ms)\n` +
      columns([
        ['endpoint', 'count', 'p50', 'p90', 'p99', 'max'],
        ...Object.entries(s.latencyMs).map(([endpoint, l]) => [
          endpoint,
          l.count,
          ...[l.p50, l.p90, l.p99, l.max].map((ms) => ms.toFixed(1)),
        ]),
      ]),
  ];
  if (s.vms.failed.length > 0) {
    sections.push(`VM failures:\n${s.vms.failed.map((f) => `  ${f.vm}: ${f.error}`).join('\n')}`);
  }
  if (s.attacks.notRefused.length > 0) {
    sections.push(
      `Attacks NOT refused:\n${s.attacks.notRefused.map((a) => `  ${a.attack} by ${a.vm}: ${a.endpoint} → HTTP ${a.status}`).join('\n')}`,
    );
  }
  return sections.join('\n\n');
}
