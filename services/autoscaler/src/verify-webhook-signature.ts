import { Webhooks } from '@octokit/webhooks';

/** Checks `X-Hub-Signature-256` against the raw body, with every configured secret. */
export type WebhookSignatureVerifier = (payload: string, signature: string) => Promise<boolean>;

/**
 * Verifies with `@octokit/webhooks`' own `verify` (HMAC-SHA256, compared in constant time), called from our
 * route rather than through its middleware, which answers with statuses of its own. During a secret
 * rotation both the current and the previous secret are tried.
 * https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
 */
export function createWebhookSignatureVerifier(secrets: readonly string[]): WebhookSignatureVerifier {
  const verifiers = secrets.map((secret) => new Webhooks({ secret }));
  return async (payload, signature) => {
    // verify() throws on an empty payload or signature; neither can be a valid delivery.
    if (payload === '' || signature === '') return false;
    for (const webhooks of verifiers) {
      if (await webhooks.verify(payload, signature).catch(() => false)) return true;
    }
    return false;
  };
}
