import { spawn } from 'node:child_process';
import { freePort, probe } from '#sandbox/node-process';
import { SANDBOX_ORG } from '#sandbox/sandbox';
import type { Sandbox } from '#sandbox/sandbox';
import {
  bearer,
  forRepo,
  githubCallsBetween,
  hex,
  log,
  registerBody,
  sleep,
  timedLoad,
} from './bench-support.js';
import type { BenchOptions } from './parse-bench-options.js';
import type { LoadRow } from './render-report.js';

/** The concurrency of the upstream row, and of our `/register` row it is compared with. */
const UPSTREAM_CONNECTIONS = 64;

/**
 * The upstream Go token proxy (github.com/google-github-actions/github-runner-token-proxy, built by the
 * user; `--upstream-bin`) against the same fake GitHub as ours, with a fresh repository scope: `/register`
 * at 64 connections. It verifies no identity and calls GitHub on every request. The installation id is
 * given (the fake numbers installations from 1 and installs the App on the sandbox org only) and the
 * fake's rate limit is raised, since every upstream request spends some of it.
 */
export async function upstreamRow(sandbox: Sandbox, options: BenchOptions, binary: string): Promise<LoadRow> {
  const repo = `bench-upstream-${hex()}`;
  sandbox.github.addRepo(`${SANDBOX_ORG}/${repo}`);
  sandbox.github.setRateLimitRemaining(1_000_000_000);
  const port = await freePort();
  const child = spawn(binary, [], {
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      BIND: '127.0.0.1',
      GITHUB_API_URL: sandbox.github.baseUrl,
      GITHUB_APP_ID: String(sandbox.github.app.id),
      GITHUB_APP_PRIVATE_KEY: sandbox.github.app.privateKeyPkcs1Pem,
      GITHUB_INSTALLATION_ID: '1',
      ALLOWED_SCOPES: `${SANDBOX_ORG}/${repo}`,
    },
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    // Its readiness probe: GET / answers 404 once it listens.
    for (let waited = 0; (await probe(port, '/')) !== 404; waited += 20) {
      if (child.exitCode !== null || waited > 10_000)
        throw new Error(`the upstream proxy at ${binary} did not start`);
      await sleep(20);
    }
    const { load, from, to, cpuMs } = await timedLoad(
      `http://127.0.0.1:${port}`,
      UPSTREAM_CONNECTIONS,
      {
        method: 'POST',
        path: '/register',
        body: registerBody(`${SANDBOX_ORG}/${repo}`),
        // Upstream verifies nothing; the header only makes the requests the same size as ours.
        headers: bearer(`${'e'.repeat(36)}.${'p'.repeat(700)}.${'s'.repeat(342)}`),
      },
      options,
      undefined,
      child.pid,
    );
    const upstreamCalls = githubCallsBetween(sandbox, from, to, forRepo(repo));
    log(
      `upstream /register c${UPSTREAM_CONNECTIONS}: ${load.requestsPerSecond.toFixed(0)} req/s, ${upstreamCalls} GitHub calls`,
    );
    return {
      id: `register/upstream/c${UPSTREAM_CONNECTIONS}`,
      scenario: '/register, upstream Go proxy (no verification, GitHub on every request)',
      connections: UPSTREAM_CONNECTIONS,
      load,
      upstreamCalls,
      ...(cpuMs === undefined ? {} : { cpuMs }),
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** "ours / upstream" for the report's notes: our `/register` (reuse on) against upstream's, both at 64 connections. */
export function upstreamRatioNote(rows: readonly LoadRow[]): string | undefined {
  const upstream = rows.find((row) => row.id === `register/upstream/c${UPSTREAM_CONNECTIONS}`);
  const ours = rows.find((row) => row.id === `register/reuse-on/c${UPSTREAM_CONNECTIONS}`);
  if (!upstream || !ours || upstream.load.requestsPerSecond === 0) return undefined;
  const ratio = ours.load.requestsPerSecond / upstream.load.requestsPerSecond;
  return `/register at ${UPSTREAM_CONNECTIONS} connections: ours (reuse on) / upstream = ${ratio.toFixed(2)} (${ours.load.requestsPerSecond.toFixed(0)} / ${upstream.load.requestsPerSecond.toFixed(0)} req/s; the goal is 3).`;
}
