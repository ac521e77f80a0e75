#!/usr/bin/env bash
# Reproduces the Dockerfile's runtime stage without Docker, then measures what matters for cold starts: the
# installed size of the production node_modules, and the time from spawning `node <service main>` to its
# first answered GET (`/healthz`; `/` for the deleter, which answers 401), with its resident memory then.
#
# Usage: scripts/measure-image.sh [--runs N] [--use-dist] [--keep] [--help]
#
# Needs node and npm (it runs `npm ci --omit=dev` in a temporary directory; the repository is not touched).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/measure-image.sh [--runs N] [--use-dist] [--keep]

Reproduces the Dockerfile's runtime stage in a temporary directory (package.json, package-lock.json,
dist/services, dist/shared, `npm ci --omit=dev --ignore-scripts` and deploy/container/prune-node-modules.sh),
then starts each service whose entry point exists N times and reports, as medians (min-max):
  - ms from spawning node to the "listening" log line,
  - ms from spawning node to the first answered GET (/healthz; the deleter's / answers 401),
  - resident memory (RSS) right after that first answer.

  --runs N     start each service N times (default 5)
  --use-dist   use the repository's existing dist/ instead of compiling into the temporary directory
  --keep       keep the temporary directory and print its path
  --help       show this help
EOF
}

runs=5
use_dist=false
keep=false
while (($# > 0)); do
  case "$1" in
    --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
    --use-dist) use_dist=true; shift ;;
    --keep) keep=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/measure-image.XXXXXX")"
if [[ "$keep" == true ]]; then
  echo "work directory: $work"
else
  trap 'rm -rf "$work"' EXIT
fi

# 1. The build stage: compile into the work directory so the repository's dist/ is left as it is.
if [[ "$use_dist" == true ]]; then
  build="$repo/dist"
else
  build="$work/build"
  echo "compiling (tsc -p tsconfig.build.json) ..."
  if ! (cd "$repo" && node_modules/.bin/tsc -p tsconfig.build.json --outDir "$build" >"$work/tsc.log" 2>&1); then
    # tsc still emits on type errors; a service that did not compile is skipped below.
    echo "warning: tsc reported errors (first lines follow); measuring whatever was emitted" >&2
    head -n 5 "$work/tsc.log" >&2
  fi
fi

# 2. The runtime stage: production dependencies and the compiled services, nothing else.
app="$work/app"
mkdir -p "$app/dist"
cp "$repo/package.json" "$repo/package-lock.json" "$app/"
for dir in services shared; do
  if [[ -d "$build/$dir" ]]; then cp -R "$build/$dir" "$app/dist/$dir"; fi
done
echo "installing production dependencies (npm ci --omit=dev --ignore-scripts) ..."
start_ns=$(date +%s%N)
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
install_ms=$((($(date +%s%N) - start_ns) / 1000000))

unpruned_human=$(du -sh "$app/node_modules" | cut -f1)
# The Dockerfile's prod-deps stage prunes with the same script.
sh "$repo/deploy/container/prune-node-modules.sh" "$app/node_modules"
modules_bytes=$(du -sb "$app/node_modules" | cut -f1)
modules_human=$(du -sh "$app/node_modules" | cut -f1)
packages=$(node -e 'const l = require(process.argv[1]); console.log(Object.keys(l.packages).length)' \
  "$app/node_modules/.package-lock.json")
dist_human=$(du -sh "$app/dist" | cut -f1)
echo
echo "node_modules (production, as in the image): $modules_human ($modules_bytes bytes, $packages packages)"
echo "  before pruning TypeScript files and source maps: $unpruned_human; npm ci took ${install_ms} ms"
echo "dist/services + dist/shared: $dist_human"
echo "node: $(node --version); load average $(cut -d" " -f1-3 /proc/loadavg) on $(nproc) CPUs (other work on the machine skews the timings)"
echo

# 3. Start each service and time it. A throwaway RSA key is not needed: the proxy runs in PAT mode.
harness="$work/harness.mjs"
cat >"$harness" <<'EOF'
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';

const [main, runs, listeningMessage, path, envJson] = process.argv.slice(2);
const env = { ...JSON.parse(envJson), PATH: process.env.PATH, NODE_ENV: 'production' };

const get = (port) =>
  new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
  });

const rssKiB = (pid) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
};

async function once() {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const port = await new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      for (const line of buffered.split('\n')) {
        try {
          const entry = JSON.parse(line);
          if (entry.message === listeningMessage) resolve(entry.port);
        } catch {
          /* not a whole line yet */
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code} before listening: ${stderr.trim()}`)));
  });
  const listening = Number(process.hrtime.bigint() - t0) / 1e6;
  // Any HTTP answer counts (the deleter has no /healthz: its unauthenticated GET / is a 401).
  let status = 0;
  const deadline = Date.now() + 30_000;
  while (status === 0) {
    if (Date.now() > deadline) throw new Error('no answer within 30 s');
    status = await get(port);
  }
  const answered = Number(process.hrtime.bigint() - t0) / 1e6;
  const rss = rssKiB(child.pid);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  return { listening, answered, rss, status };
}

const results = [];
for (let i = 0; i < Number(runs); i++) results.push(await once());
const summary = (key, unit, scale = 1) => {
  const values = results.map((r) => r[key] / scale).sort((a, b) => a - b);
  const median = values[Math.floor(values.length / 2)];
  return `${median.toFixed(0)} ${unit} (${values[0].toFixed(0)}-${values.at(-1).toFixed(0)})`;
};
console.log(`  spawn -> listening log:      ${summary('listening', 'ms')}`);
console.log(`  spawn -> first GET ${path} (${results[0].status}): ${summary('answered', 'ms')}`);
console.log(`  RSS after first answer:      ${summary('rss', 'MiB', 1024)}`);
EOF

measure() {
  local name="$1" message="$2" path="$3" env_json="$4"
  local main="$app/dist/services/$name/src/main.js"
  if [[ ! -f "$main" ]]; then
    echo "$name: $main not built; skipped"
    return
  fi
  echo "$name ($runs runs, median (min-max)):"
  (cd "$app" && node "$harness" "$main" "$runs" "$message" "$path" "$env_json") || echo "  $name failed to start"
}

# Cloud Run sets PORT; 0 lets the kernel choose, and the service logs the port it got.
measure token-proxy 'token proxy listening' /healthz \
  '{"PORT":"0","LOG_LEVEL":"info","AUTH_AUDIENCE":"https://token-proxy.example.run.app","GITHUB_TOKEN":"dummy","ALLOWED_SCOPES":"my-org","POLICY":"open"}'
measure instance-deleter 'instance deleter listening' / \
  '{"PORT":"0","LOG_LEVEL":"info","AUTH_AUDIENCE":"https://instance-deleter.example.run.app","ALLOWED_MIG_PATTERN":"gh-runner-.*","GOOGLE_CLOUD_PROJECT":"example-project"}'
