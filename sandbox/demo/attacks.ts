import type { FakeGoogleIssuer } from '../fakes/google-issuer.js';
import { RUNNER_LABELS, SANDBOX_ORG, SANDBOX_PROJECT, SERVICE_ACCOUNTS } from '../sandbox.js';
import { errorMessageOf, sendRequest } from './http-recorder.js';
import type { HttpAnswer } from './http-recorder.js';
import type { VmSession } from './vm-lifecycle.js';

/** One thing an attacker tried, and what the service answered. */
export interface AttackAttempt {
  attack: string;
  vm: string;
  /** `METHOD /path` at the service attacked. */
  endpoint: string;
  status: number;
  message: string;
}

/** An attempt is refused when the service answers 4xx: the caller's fault, and nothing was handed out. */
export const isRefused = (attempt: AttackAttempt): boolean => attempt.status >= 400 && attempt.status < 500;

/** What each attack tries, by name, for the summary. */
export const ATTACK_DESCRIPTIONS: Readonly<Record<string, string>> = {
  'postsubmit labels': 'a presubmit VM asks for a JIT config with the postsubmit labels',
  'postsubmit group': 'a presubmit VM asks for a JIT config in the postsubmit runner group',
  'other scope': `a presubmit VM asks for a JIT config in ${SANDBOX_ORG}/app, a scope only postsubmit may use`,
  'forged token': 'a token claiming a postsubmit VM, signed with a key Google never published',
  'unsigned token': 'the same claims with alg "none" and no signature',
  'tampered token': "the VM's own token with its service account and name edited to postsubmit",
  'wrong audience': "the VM's token for the instance deleter, presented to the token proxy",
  'registration token': 'a presubmit VM asks for a registration token (it is JIT-only)',
  'replayed token':
    "a deleted VM's token for the deleter, replayed to delete a VM (a token names only its own VM)",
};

/** The name a postsubmit VM would have, so forged claims pass the policy's instance-name pattern. */
const postsubmitName = (name: string) => name.replace('presubmit', 'postsubmit');

/** Edits a token's payload and keeps its signature, which no longer matches. */
function tamper(token: string, edit: (claims: Record<string, unknown>) => void): string {
  const [header = '', payload = '', signature = ''] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  edit(claims);
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

/**
 * Runs during a malicious job on a presubmit VM: it reaches the VM's metadata server like any job does,
 * and tries to get a more privileged runner or a token that could register any runner. `issuer` forges
 * tokens only with `rs256-other-key` or no signature: keys the attacker could make, not Google's. Returns
 * every attempt, and the deleter token it stole for {@link replayStolenToken}.
 */
export async function attackDuringJob(
  issuer: FakeGoogleIssuer,
  session: VmSession,
): Promise<{ attempts: AttackAttempt[]; stolenDeleterToken: string }> {
  const { vm, scope, proxyUrl, proxyToken } = session;
  const stolenDeleterToken = await session.identityToken(session.deleterUrl);
  const postsubmit = {
    ...SANDBOX_PROJECT,
    zone: vm.zone,
    instanceId: vm.instanceId,
    instanceName: postsubmitName(vm.name),
  };
  const claims = { audience: proxyUrl, email: SERVICE_ACCOUNTS.postsubmit, compute: postsubmit };
  const tampered = tamper(proxyToken, (payload) => {
    payload.email = SERVICE_ACCOUNTS.postsubmit;
    (payload.google as { compute_engine: Record<string, unknown> }).compute_engine.instance_name =
      postsubmit.instanceName;
  });
  const asPostsubmit = { scope, runner_group: 'postsubmit', labels: RUNNER_LABELS.postsubmit };

  const jitconfigAttacks: Array<[attack: string, token: string, body: Record<string, unknown>]> = [
    ['postsubmit labels', proxyToken, { scope, labels: RUNNER_LABELS.postsubmit }],
    ['postsubmit group', proxyToken, { scope, runner_group: 'postsubmit' }],
    ['other scope', proxyToken, { scope: `${SANDBOX_ORG}/app` }],
    ['forged token', issuer.mintIdentityToken(claims, { signing: 'rs256-other-key' }), asPostsubmit],
    ['unsigned token', issuer.mintIdentityToken(claims, { signing: 'none' }), asPostsubmit],
    ['tampered token', tampered, asPostsubmit],
    ['wrong audience', stolenDeleterToken, { scope }],
  ];
  const attempts: AttackAttempt[] = [];
  const attempt = (attack: string, endpoint: string, answer: HttpAnswer) =>
    attempts.push({ attack, vm: vm.name, endpoint, status: answer.status, message: errorMessageOf(answer) });
  for (const [attack, token, body] of jitconfigAttacks) {
    attempt(
      attack,
      'proxy: POST /jitconfig',
      await sendRequest(`${proxyUrl}/jitconfig`, { method: 'POST', token, body }),
    );
  }
  attempt(
    'registration token',
    'proxy: POST /register',
    await sendRequest(`${proxyUrl}/register`, { method: 'POST', token: proxyToken, body: { scope } }),
  );
  return { attempts, stolenDeleterToken };
}

/** After the attacker's VM is gone: replays its stolen deleter token, hoping to delete a VM with it. */
export async function replayStolenToken(
  vmName: string,
  deleterUrl: string,
  token: string,
): Promise<AttackAttempt> {
  const answer = await sendRequest(`${deleterUrl}/`, { method: 'DELETE', token });
  return {
    attack: 'replayed token',
    vm: vmName,
    endpoint: 'deleter: DELETE /',
    status: answer.status,
    message: errorMessageOf(answer),
  };
}
