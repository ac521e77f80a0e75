import { setTimeout as sleep } from 'node:timers/promises';
import type { RunnerKind, SandboxVm } from '../sandbox.js';
import { errorMessageOf, sendRequest } from './http-recorder.js';
import type { HttpAnswer, HttpRecorder } from './http-recorder.js';

/** How a runner VM registers: a JIT config, or a registration token and `config.sh`. */
export type RegistrationMode = 'jit' | 'token';

/** One VM of the fleet and the part it plays. */
export interface PlannedVm {
  vm: SandboxVm;
  mode: RegistrationMode;
  /** Its runner gets no job at first, so its idle check asks whether the MIG should shrink. */
  idle: boolean;
  /** Its job is malicious pull-request code. */
  attacker: boolean;
}

/** What the fleet shares: the recorder, GitHub's runner-service stand-in, and the job length. */
export interface FleetContext {
  http: HttpRecorder;
  /** Base URL of the fake GitHub; its `/_sandbox/runners/*` routes stand in for the runner binary. */
  githubUrl: string;
  jobMs: number;
  random: () => number;
}

/** What a job can reach on its VM: the instance attributes, and identity tokens from the metadata server. */
export interface VmSession {
  vm: SandboxVm;
  scope: string;
  proxyUrl: string;
  deleterUrl: string;
  /** The token the VM registered with (audience: the token proxy). */
  proxyToken: string;
  identityToken(audience: string): Promise<string>;
}

/** How one VM's life went. */
export interface VmOutcome {
  name: string;
  kind: RunnerKind;
  mode: RegistrationMode;
  attacker: boolean;
  registered: boolean;
  /** For idle VMs: whether `GET /` said the MIG should shrink, and whether the VM then left without a job. */
  idleCheck?: { scaleDown: boolean; deleted: boolean };
  /** `removed`: DELETE /runner deleted it; `already gone`: GitHub had removed the ephemeral runner itself. */
  deregistered?: 'removed' | 'already gone';
  deletedBy?: 'DELETE /' | 'DELETE /?if=scale-down';
  /** The step that failed, with the service's answer. */
  error?: string;
}

/** Called while the VM's runner is busy: the job itself. */
export type Job = (session: VmSession) => Promise<void>;

const METADATA = { 'Metadata-Flavor': 'Google' };

function expectOk(answer: HttpAnswer, what: string): HttpAnswer {
  if (answer.status >= 200 && answer.status < 300) return answer;
  throw new Error(`${what}: HTTP ${answer.status}: ${errorMessageOf(answer)}`);
}

/**
 * Lives one VM's life as `deploy/vm/` does it: read the instance attributes, get an identity token,
 * register a runner (JIT config, or registration token and `config.sh`), run one job, deregister, and ask
 * the instance deleter to delete the VM. An idle VM first asks `GET /` whether its MIG should shrink and,
 * if so, leaves through `DELETE /?if=scale-down` without running a job. Never throws: a failed step ends
 * the life and is reported in the outcome.
 */
export async function runVm(ctx: FleetContext, plan: PlannedVm, job: Job): Promise<VmOutcome> {
  const { vm } = plan;
  const outcome: VmOutcome = {
    name: vm.name,
    kind: vm.kind,
    mode: plan.mode,
    attacker: plan.attacker,
    registered: false,
  };
  try {
    await live(ctx, plan, job, outcome);
  } catch (error) {
    outcome.error = error instanceof Error ? error.message : String(error);
  }
  return outcome;
}

async function live(ctx: FleetContext, plan: PlannedVm, job: Job, outcome: VmOutcome): Promise<void> {
  const { http, githubUrl } = ctx;
  const { vm } = plan;
  const metadata = `http://${vm.metadataHost}/computeMetadata/v1/instance`;
  const attributes = expectOk(
    await http.send('metadata: attributes', `${metadata}/attributes/?recursive=true`, { headers: METADATA }),
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

  const identityToken = async (audience: string): Promise<string> =>
    expectOk(
      await http.send(
        'metadata: identity token',
        `${metadata}/service-accounts/default/identity?audience=${encodeURIComponent(audience)}&format=full`,
        { headers: METADATA },
      ),
      `get an identity token for ${audience}`,
    ).text;
  const proxyToken = await identityToken(proxyUrl);
  let deleterToken: string | undefined;
  const deleterTokenOnce = async () => (deleterToken ??= await identityToken(deleterUrl));

  // The runner binary's side (config.sh, run.sh) goes to GitHub's runner service: here the fake's routes.
  const runner = async (path: string, body: unknown, what: string) =>
    expectOk(await sendRequest(`${githubUrl}/_sandbox/runners/${path}`, { method: 'POST', body }), what);

  let runnerId: number;
  if (plan.mode === 'jit') {
    const config = expectOk(
      await http.send('proxy: POST /jitconfig', `${proxyUrl}/jitconfig`, {
        method: 'POST',
        token: proxyToken,
        body: { scope, labels, runner_group: group },
      }),
      'get a JIT config',
    ).json as { encoded_jit_config: string };
    runnerId = ((await runner('jit', config, 'start the runner (run.sh --jitconfig)')).json as { id: number })
      .id;
  } else {
    const { token } = expectOk(
      await http.send('proxy: POST /register', `${proxyUrl}/register`, {
        method: 'POST',
        token: proxyToken,
        body: { scope },
      }),
      'get a registration token',
    ).json as { token: string };
    // As register.sh does in token mode: the VM labels its runner with its own instance id (the form of
    // services/token-proxy/src/derived-labels.ts), which DELETE /runner and GET /runner look for.
    const registration = {
      url: `${attribute('github-url')}/${scope}`,
      token,
      name: vm.name,
      labels: [...labels, `gce-instance-id-${vm.instanceId}`],
    };
    const answer = await runner(
      'register',
      { ...registration, runner_group: group, ephemeral: true },
      'register the runner (config.sh --ephemeral)',
    );
    runnerId = (answer.json as { id: number }).id;
  }
  outcome.registered = true;

  const deregister = async () => {
    const answer = expectOk(
      await http.send('proxy: DELETE /runner', `${proxyUrl}/runner`, {
        method: 'DELETE',
        token: proxyToken,
        body: { scope },
      }),
      'deregister the runner',
    );
    outcome.deregistered =
      (answer.json as { deleted?: unknown }).deleted === true ? 'removed' : 'already gone';
  };

  if (plan.idle) {
    // GET / takes no lock at the deleter, so idle VMs may poll it freely; only when it says yes does the VM
    // ask to leave, through the conditional DELETE that re-checks under the deleter's per-MIG lock.
    const token = await deleterTokenOnce();
    const answer = expectOk(
      await http.send('deleter: GET /', `${deleterUrl}/`, { token }),
      'ask whether the MIG should shrink',
    );
    outcome.idleCheck = { scaleDown: answer.text.trim() === 'true', deleted: false };
    if (outcome.idleCheck.scaleDown) {
      const deletion = expectOk(
        await http.send('deleter: DELETE /?if=scale-down', `${deleterUrl}/?if=scale-down`, {
          method: 'DELETE',
          token,
        }),
        'delete this idle VM',
      );
      // "…: keeping instance …" when other VMs of the MIG took the places above the recommendation first.
      if (!deletion.text.includes('keeping')) {
        outcome.idleCheck.deleted = true;
        outcome.deletedBy = 'DELETE /?if=scale-down';
        // The VM shuts down; its shutdown unit deregisters the idle runner.
        await deregister();
        return;
      }
    }
  }

  await runner(`${runnerId}/busy`, { busy: true }, 'take a job');
  const jobDone = sleep(ctx.jobMs * (0.5 + ctx.random()));
  await job({ vm, scope, proxyUrl, deleterUrl, proxyToken, identityToken });
  await jobDone;
  // An ephemeral runner exits after its job, and GitHub removes it: DELETE /runner then finds nothing.
  await runner(`${runnerId}/exit`, {}, 'finish the job');
  await deregister();
  expectOk(
    await http.send('deleter: DELETE /', `${deleterUrl}/`, {
      method: 'DELETE',
      token: await deleterTokenOnce(),
    }),
    'delete this VM',
  );
  outcome.deletedBy = 'DELETE /';
}
