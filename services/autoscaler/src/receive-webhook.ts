import type { Request, RequestHandler, Response } from 'express';
import { HttpError, requestLog } from '#shared';
import type { Logger } from '#shared';
import type { FleetState } from './fleet-state.js';
import { handleWorkflowJob } from './handle-workflow-job.js';
import type { WorkflowJobDeps } from './handle-workflow-job.js';
import type { WebhookSignatureVerifier } from './verify-webhook-signature.js';

export interface WebhookDeps extends Omit<WorkflowJobDeps, 'logger'> {
  verifySignature: WebhookSignatureVerifier;
  fleet: FleetState;
  logger: Logger;
}

/**
 * `POST /webhook`, behind `express.raw`: the signature is checked over the raw bytes before anything else
 * (missing or wrong: 401, nothing else happens), then `ping` is answered, `workflow_job` acted on and any
 * other event acknowledged. Every status is ours to choose: 200 only once the delivery's work is done,
 * 503 when a VM could not be requested, so GitHub records the delivery as failed.
 */
export function createWebhookHandler(deps: WebhookDeps): RequestHandler {
  return (req: Request, res: Response, next) => {
    receive(deps, req, res).catch(next);
  };
}

async function receive(deps: WebhookDeps, req: Request, res: Response): Promise<void> {
  const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const signature = req.get('x-hub-signature-256');
  if (signature === undefined || signature.trim() === '') {
    throw new HttpError(401, 'missing X-Hub-Signature-256: configure the webhook secret on the GitHub App');
  }
  if (!(await deps.verifySignature(body.toString('utf8'), signature.trim()))) {
    throw new HttpError(401, 'X-Hub-Signature-256 does not match the body and the webhook secret');
  }
  const event = req.get('x-github-event');
  const guid = req.get('x-github-delivery') ?? '';
  if (event === undefined || event === '') throw new HttpError(400, 'missing X-GitHub-Event');
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(
      400,
      'the delivery body is not JSON: set the webhook content type to application/json',
    );
  }
  const log = requestLog(res, deps.logger).child({ event, guid });
  if (event === 'ping') {
    log.info('webhook ping');
    res.json({ outcome: 'pong' });
    return;
  }
  if (event !== 'workflow_job') {
    res.json({ outcome: 'ignored', reason: `${event} events are not acted on` });
    return;
  }
  try {
    res.json(await handleWorkflowJob({ ...deps, logger: log }, payload));
  } catch (error) {
    if (error instanceof HttpError && error.status >= 500) {
      const jobId = (payload as { workflow_job?: { id?: unknown } } | null)?.workflow_job?.id;
      deps.fleet.recordFailedDelivery({
        at: new Date(deps.now()).toISOString(),
        guid,
        status: error.status,
        reason: error.message,
        ...(typeof jobId === 'number' && { jobId }),
      });
    }
    throw error;
  }
}
