import { AuthClient, gaxios } from 'google-auth-library';
import { withDeadline } from '#shared';
import { ComputeError } from './compute-error.js';

/** Where the deleter's own credentials come from: a `GoogleAuth` (Application Default Credentials), say. */
export interface CredentialSource {
  /** The client that signs requests; the first call may look credentials up (the metadata server). */
  getClient(): Promise<Pick<AuthClient, 'getRequestHeaders'>>;
}

export interface ComputeAuthClientOptions {
  /** Makes a fresh source: called at first use, and again after a source failed or did not answer. */
  createSource: () => CredentialSource;
  /** How long getting credentials (request headers) may take; past it, the call fails. */
  credentialsTimeoutMs: number;
  /** How long one HTTP request to Compute Engine may take before it is aborted. */
  requestTimeoutMs: number;
}

/**
 * The credentials the Compute clients sign their requests with, with a deadline on both halves of every
 * call. google-auth-library asks the metadata server for the service account's token with no timeout at
 * all on Cloud Run and Cloud Functions (gcp-metadata's `requestTimeout()` is 0 there,
 * https://github.com/googleapis/gcp-metadata/blob/main/src/index.ts), and `GoogleAuth` keeps the pending
 * look-up it started (`getClient`), so one metadata server that never answers would hang every later
 * request too. Here getting headers has `credentialsTimeoutMs`; when it fails or runs out, the source is
 * dropped, so the next call starts afresh with a new one. Each request to Compute is aborted after
 * `requestTimeoutMs`, so a Compute endpoint that never answers holds no socket forever.
 *
 * Failures to get credentials are {@link ComputeError}s of kind `credentials`, whose message names only
 * what went wrong (never a library's message, which may quote a token).
 */
export class ComputeAuthClient extends AuthClient {
  #source: CredentialSource | undefined;

  constructor(private readonly options: ComputeAuthClientOptions) {
    super();
  }

  override async getRequestHeaders(url?: string | URL): Promise<Headers> {
    const source = (this.#source ??= this.options.createSource());
    const seconds = this.options.credentialsTimeoutMs / 1000;
    try {
      return await withDeadline(
        this.options.credentialsTimeoutMs,
        () => new ComputeError(0, `no credentials within ${seconds} s`, 'credentials'),
        async () => (await source.getClient()).getRequestHeaders(url),
      );
    } catch (error) {
      // A source that failed or hangs may keep failing or hanging (GoogleAuth caches its pending look-up).
      if (this.#source === source) this.#source = undefined;
      throw error instanceof ComputeError
        ? error
        : new ComputeError(0, 'credentials could not be obtained', 'credentials');
    }
  }

  override async getAccessToken(): Promise<{ token?: string | null }> {
    const authorization = (await this.getRequestHeaders()).get('authorization') ?? '';
    return { token: /^Bearer (.+)$/i.exec(authorization)?.[1] ?? null };
  }

  override async request<T>(options: gaxios.GaxiosOptions): Promise<gaxios.GaxiosResponse<T>> {
    const headers = await this.getRequestHeaders(options.url);
    return this.transporter.request<T>({
      ...options,
      headers: gaxios.Gaxios.mergeHeaders(options.headers, headers),
      timeout: this.options.requestTimeoutMs,
    });
  }
}
