import type { GoogleAuth } from 'google-auth-library';
import { withDeadline } from '#shared';
import { fleetViewSchema } from './fleet-view.js';
import type { FleetView } from './fleet-view.js';

/** The autoscaler's fleet view could not be read; the message says why, never with a token. */
export class AutoscalerFleetError extends Error {
  override readonly name = 'AutoscalerFleetError';
}

/** What this service asks the autoscaler. */
export interface AutoscalerFleetApi {
  /** `GET {autoscalerUrl}/fleet`, with this service's identity token for the autoscaler's audience. */
  readFleet(): Promise<FleetView>;
}

export interface AutoscalerFleetApiOptions {
  /** The autoscaler's base URL. */
  url: string;
  /** The audience of the identity token (the autoscaler's `AUTH_AUDIENCE`). */
  audience: string;
  /**
   * Whose identity tokens: Application Default Credentials, on Cloud Run the service's own account through the
   * metadata server (https://cloud.google.com/run/docs/authenticating/service-to-service).
   */
  auth: Pick<GoogleAuth, 'getIdTokenClient'>;
  /** Deadline of one read, token included, in ms. Default 5000. */
  timeoutMs?: number;
  fetch?: typeof globalThis.fetch;
}

/**
 * Reads the fleet view over HTTP. google-auth-library's `IdTokenClient` fetches the identity token from the
 * metadata server and keeps it until shortly before it expires, so a read costs one request to the autoscaler.
 */
export function createAutoscalerFleetApi(options: AutoscalerFleetApiOptions): AutoscalerFleetApi {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const timeoutMs = options.timeoutMs ?? 5000;
  const url = `${options.url}/fleet`;
  let client: ReturnType<GoogleAuth['getIdTokenClient']> | undefined;

  return {
    readFleet: () =>
      withDeadline(
        timeoutMs,
        () => new AutoscalerFleetError(`the autoscaler did not answer GET /fleet within ${timeoutMs} ms`),
        async () => {
          let authorization: string | null;
          try {
            client ??= options.auth.getIdTokenClient(options.audience);
            authorization = (await (await client).getRequestHeaders(url)).get('authorization');
          } catch (error) {
            client = undefined;
            // google-auth-library's messages can quote a token: keep only the error's name.
            throw new AutoscalerFleetError(
              `could not get an identity token for the autoscaler (${(error as Error | undefined)?.name ?? 'Error'})`,
            );
          }
          if (!authorization)
            throw new AutoscalerFleetError('could not get an identity token for the autoscaler');
          let response: Response;
          try {
            response = await fetchImpl(url, {
              headers: { authorization, accept: 'application/json' },
              redirect: 'error',
              signal: AbortSignal.timeout(timeoutMs),
            });
          } catch (error) {
            throw new AutoscalerFleetError(
              `GET /fleet failed: ${(error as Error | undefined)?.name === 'TimeoutError' ? 'no answer in time' : 'the autoscaler could not be reached'}`,
            );
          }
          if (!response.ok) {
            const body = (await response.json().catch(() => undefined)) as { error?: unknown } | undefined;
            const reason = typeof body?.error === 'string' ? `: ${body.error.slice(0, 200)}` : '';
            throw new AutoscalerFleetError(`GET /fleet answered ${response.status}${reason}`);
          }
          const parsed = fleetViewSchema.safeParse(await response.json().catch(() => undefined));
          if (!parsed.success)
            throw new AutoscalerFleetError('GET /fleet answered something that is not a fleet view');
          return parsed.data;
        },
      ),
  };
}
