import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessageOf, sendRequest } from './demo/http-recorder.js';
import type { HttpAnswer } from './demo/http-recorder.js';
import type { VmFate } from './soak/fleet-simulation.js';
import { VM_RETRY, vmRetries, vmRetryWaitMs } from './vm-retry.js';

/**
 * What becomes of an autoscaled VM, in the soak's terms: `works` lives a runner's life; `never-registers`
 * boots but its runner never connects (register.sh failed, say), so it sits there until the reaper deletes
 * it past its pool's `bootTimeoutSeconds`.
 */
export type AutoscaledVmFate = Extract<VmFate, 'works' | 'never-registers'>;

/** What a VM the autoscaler created needs to live: its metadata server and the fake GitHub's runner routes. */
export interface AutoscaledVmContext {
  /** `127.0.0.1:PORT`: the VM's `GCE_METADATA_HOST`. */
  metadataHost: string;
  /** Base URL of the fake GitHub; its `/_sandbox/runners/*` routes stand in for the runner binary. */
  githubUrl: string;
  /** How long the stand-in runs a job before it reports it done. */
  jobMs: number;
  /** A runner that gets no job within this long deregisters and deletes its VM. */
  idleTimeoutMs: number;
  /** Aborted when the sandbox stops: the VM's life ends where it is. */
  signal: AbortSignal;
  /** Default `works`. */
  fate?: AutoscaledVmFate;
  /** Aborted when Compute deleted the instance (whoever asked): the VM's life ends where it is. */
  deleted?: AbortSignal;
}

/** How one autoscaled VM's life went. */
export interface AutoscaledVmOutcome {
  name: string;
  /** The workflow job its runner ran, if it got one. */
  jobId?: number;
  fate: AutoscaledVmFate;
  /** The VM asked the instance deleter to delete it (after its job, or when it stayed idle). */
  deleted: boolean;
  /** Someone else (the reaper) deleted the VM while it lived. */
  deletedByOthers?: boolean;
  /** The step that failed, with the service's answer. */
  error?: string;
}

const METADATA = { 'Metadata-Flavor': 'Google' };
const POLL_MS = 100;

/**
 * Sends until an answer is final, as deploy/vm/lib.sh's `http_request` does (the rule in vm-retry.ts):
 * network errors, 429 and 5xx are tried again after its backoff, within its attempts and time budget, one
 * last attempt at the budget's end. (The demo's answers carry no headers, so Retry-After is not read.)
 */
async function withRetries(signal: AbortSignal, send: () => Promise<HttpAnswer>): Promise<HttpAnswer> {
  const deadline = Date.now() + VM_RETRY.budgetMs;
  for (let attempt = 1; ; attempt += 1) {
    let answer: HttpAnswer | undefined;
    let failure: unknown;
    try {
      answer = await send();
      if (!vmRetries(answer.status)) return answer;
    } catch (error) {
      failure = error;
    }
    signal.throwIfAborted();
    const remaining = deadline - Date.now();
    if (attempt >= VM_RETRY.attempts || remaining <= 0) {
      if (answer) return answer;
      throw failure;
    }
    await sleep(vmRetryWaitMs(attempt, 0, remaining), undefined, { signal });
  }
}

function expectOk(answer: HttpAnswer, what: string): HttpAnswer {
  if (answer.status >= 200 && answer.status < 300) return answer;
  throw new Error(`${what}: HTTP ${answer.status}: ${errorMessageOf(answer)}`);
}

/**
 * Lives the life of a VM the autoscaler created, following `deploy/vm/`'s steps (register.sh, the job
 * hooks, delete-self.sh) in TypeScript, which keeps a fleet of them fast: read the instance attributes,
 * get a JIT runner config from the token proxy, start the ephemeral runner (the fake GitHub hands it a
 * queued job whose labels it covers, sending `in_progress`), run the job for `jobMs`, report it completed
 * (GitHub removes the ephemeral runner and sends `completed`), deregister through the proxy, and ask the
 * instance deleter to delete the VM. A VM whose fate is `never-registers` reads its attributes and then
 * only waits until it is deleted. Never throws: a failed step ends the life and is in the outcome.
 */
export async function runAutoscaledVm(name: string, ctx: AutoscaledVmContext): Promise<AutoscaledVmOutcome> {
  const outcome: AutoscaledVmOutcome = { name, fate: ctx.fate ?? 'works', deleted: false };
  // A deleted VM stops where it is, as the sandbox stopping stops every VM.
  const deleted = ctx.deleted ?? new AbortController().signal;
  const steps = { deletingItself: false };
  try {
    await live({ ...ctx, signal: AbortSignal.any([ctx.signal, deleted]) }, outcome, steps);
  } catch (error) {
    if (ctx.signal.aborted) return outcome;
    if (deleted.aborted && steps.deletingItself) outcome.deleted = true;
    else if (deleted.aborted) outcome.deletedByOthers = true;
    else outcome.error = error instanceof Error ? error.message : String(error);
  }
  return outcome;
}

async function live(
  ctx: AutoscaledVmContext,
  outcome: AutoscaledVmOutcome,
  steps: { deletingItself: boolean },
): Promise<void> {
  const { githubUrl, signal } = ctx;
  const metadata = `http://${ctx.metadataHost}/computeMetadata/v1/instance`;
  const attributes = expectOk(
    await sendRequest(`${metadata}/attributes/?recursive=true`, { headers: METADATA }),
    'read the instance attributes',
  ).json as Record<string, string | undefined>;
  const attribute = (key: string): string => {
    const value = attributes[key];
    if (!value) throw new Error(`instance attribute ${key} is missing`);
    return value;
  };
  const scope = attribute('github-runner-scope');
  const labels = attribute('github-runner-labels').split(',');
  const group = attribute('github-runner-group');
  const proxyUrl = attribute('token-proxy-url');
  const deleterUrl = attribute('instance-deleter-url');
  if (outcome.fate === 'never-registers') {
    // No runner ever connects: the VM waits to be deleted (or for the sandbox to stop).
    if (!signal.aborted) await once(signal, 'abort');
    signal.throwIfAborted();
  }
  const identityToken = async (audience: string): Promise<string> =>
    expectOk(
      await sendRequest(
        `${metadata}/service-accounts/default/identity?audience=${encodeURIComponent(audience)}&format=full`,
        { headers: METADATA },
      ),
      `get an identity token for ${audience}`,
    ).text;
  const runner = async (path: string, body?: unknown, what = path) =>
    expectOk(
      await sendRequest(`${githubUrl}/_sandbox/${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        ...(body !== undefined && { body }),
      }),
      what,
    );

  // register.sh: a JIT config from the proxy, then run.sh --jitconfig.
  const proxyToken = await identityToken(proxyUrl);
  const config = expectOk(
    await withRetries(signal, () =>
      sendRequest(`${proxyUrl}/jitconfig`, {
        method: 'POST',
        token: proxyToken,
        body: { scope, labels, runner_group: group },
      }),
    ),
    'get a JIT config',
  ).json as { encoded_jit_config: string };
  // The runner connects with the release its template installed (the fake GitHub reports it as `version`).
  const version = attributes['github-runner-version'];
  const started = { ...config, ...(version && { version }) };
  const runnerId = (
    (await runner('runners/jit', started, 'start the runner (run.sh --jitconfig)')).json as {
      id: number;
    }
  ).id;

  // The runner waits for GitHub to hand it a job.
  const idleUntil = Date.now() + ctx.idleTimeoutMs;
  let jobId: number | undefined;
  while (jobId === undefined && Date.now() < idleUntil) {
    signal.throwIfAborted();
    const answer = await runner(`runners/${runnerId}/job`, undefined, 'ask for a job');
    if (answer.status === 200) jobId = (answer.json as { id: number }).id;
    else await sleep(POLL_MS, undefined, { signal });
  }
  if (jobId !== undefined) {
    outcome.jobId = jobId;
    await sleep(ctx.jobMs, undefined, { signal });
    // The job is done (already, if GitHub completed it by itself): GitHub removes the ephemeral runner.
    await runner(`jobs/${jobId}/complete`, { conclusion: 'success' }, 'finish the job');
  }

  // deregister.sh (the ephemeral runner is usually gone already), then delete-self.sh.
  expectOk(
    await withRetries(signal, () =>
      sendRequest(`${proxyUrl}/runner`, { method: 'DELETE', token: proxyToken, body: { scope } }),
    ),
    'deregister the runner',
  );
  const deleterToken = await identityToken(deleterUrl);
  steps.deletingItself = true;
  expectOk(
    await withRetries(signal, () => sendRequest(`${deleterUrl}/`, { method: 'DELETE', token: deleterToken })),
    'delete this VM',
  );
  outcome.deleted = true;
}
