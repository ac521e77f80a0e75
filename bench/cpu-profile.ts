import fs from 'node:fs';
import path from 'node:path';

/** The parts of a V8 `.cpuprofile` (what `node --cpu-prof` writes) that self time is computed from. */
interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }>;
  samples: number[];
  timeDeltas: number[];
}

/** One line of a profile's summary: a function and the time spent in it, not in what it called. */
export interface SelfTimeEntry {
  /** `name (file:line)`, the file relative to node_modules or the repository. */
  where: string;
  selfMs: number;
  /** Share of the sampled time the process was busy (not idle), in percent. */
  percent: number;
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/** The V8 profiles in `dir` (`CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`), none if it is missing. */
export function profilesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((name) => /^CPU\..*\.cpuprofile$/.test(name));
  } catch {
    return [];
  }
}

/** The `top` entries of a profile by self time, functions of the same name and place added together. */
export function topSelfTime(profile: CpuProfile, top = 10): SelfTimeEntry[] {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, number>();
  let busyUs = 0;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    const frame = byNode.get(id)?.callFrame;
    // Waiting for work is not work: shares are of the time the process was busy.
    if (!frame || frame.functionName === '(idle)') return;
    busyUs += delta;
    const name = frame.functionName || '(anonymous)';
    const where = frame.url === '' ? name : `${name} (${shortUrl(frame.url)}:${frame.lineNumber + 1})`;
    selfUs.set(where, (selfUs.get(where) ?? 0) + delta);
  });
  return [...selfUs]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([where, us]) => ({ where, selfMs: us / 1000, percent: (100 * us) / Math.max(1, busyUs) }));
}

/** Removes the V8 profiles written into `dir` since `before` ({@link profilesIn}) that nobody kept. */
export function removeNewProfiles(dir: string, before: ReadonlySet<string>): void {
  for (const name of profilesIn(dir)) if (!before.has(name)) fs.rmSync(path.join(dir, name), { force: true });
}

/**
 * Keeps the profile process `pid` wrote into `dir` as `<name>.cpuprofile` (every service of a sandbox
 * inherits NODE_OPTIONS and writes one; {@link removeNewProfiles} removes the rest). Returns the kept
 * file's path and its top self-time entries, or undefined when `pid` wrote none.
 */
export function keepProfileOf(dir: string, pid: number, name: string): string | undefined {
  const own = profilesIn(dir).find((file) => file.split('.')[3] === String(pid));
  if (own === undefined) return undefined;
  const kept = path.join(dir, `${name}.cpuprofile`);
  fs.renameSync(path.join(dir, own), kept);
  const top = topSelfTime(JSON.parse(fs.readFileSync(kept, 'utf8')) as CpuProfile, 12);
  const lines = top.map((e) => `${e.percent.toFixed(1)}% ${e.selfMs.toFixed(0)} ms ${e.where}`);
  process.stderr.write(`Top self time of the ${name} (${kept}):\n  ${lines.join('\n  ')}\n`);
  return `${kept}; top self time: ${top
    .slice(0, 10)
    .map((e) => `${e.where} ${e.percent.toFixed(1)}%`)
    .join(', ')}`;
}
