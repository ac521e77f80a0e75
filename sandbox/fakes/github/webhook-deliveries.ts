import crypto from 'node:crypto';

/** Where the App's webhook goes, as set on the App's settings page. */
export interface WebhookTarget {
  url: string;
  secret: string;
}

/** One delivery attempt as `GET /app/hook/deliveries/{id}` shows it (the list leaves out `request`/`response`). */
export interface FakeHookDelivery {
  id: number;
  /** Shared by every attempt of one event: a redelivery keeps it. */
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  /** Seconds. */
  duration: number;
  /** `OK`, `Invalid HTTP Response: 503`, `timed out`, `failed to connect to host`. */
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
  throttled_at: null;
  request: { headers: Record<string, string>; payload: unknown };
  response: { headers: Record<string, string>; payload: string | null };
  /** Not part of GitHub's answer: whether the fake dropped it on purpose instead of sending it. */
  dropped: boolean;
}

export interface DeliverySettings {
  /** Share of deliveries (0 to 1) recorded as failed without being sent: lost on the way. */
  dropShare: number;
  /** In [0, 1), like `Math.random`; decides which deliveries are dropped. */
  random: () => number;
  /** GitHub gives up after 10 s (https://docs.github.com/webhooks/using-webhooks/best-practices-for-using-webhooks). */
  timeoutMs: number;
}

/** GitHub-Hookshot's documented delivery headers (https://docs.github.com/webhooks/webhook-events-and-payloads#delivery-headers). */
function deliveryHeaders(
  event: string,
  guid: string,
  body: string,
  secret: string,
  appId: number,
): Record<string, string> {
  const hmac = (algorithm: string) => crypto.createHmac(algorithm, secret).update(body).digest('hex');
  return {
    Accept: '*/*',
    'Content-Type': 'application/json',
    'User-Agent': 'GitHub-Hookshot/fake',
    'X-GitHub-Delivery': guid,
    'X-GitHub-Event': event,
    'X-GitHub-Hook-ID': '424242',
    'X-GitHub-Hook-Installation-Target-ID': String(appId),
    'X-GitHub-Hook-Installation-Target-Type': 'integration',
    'X-Hub-Signature': `sha1=${hmac('sha1')}`,
    'X-Hub-Signature-256': `sha256=${hmac('sha256')}`,
  };
}

/**
 * The App's webhook: sends signed deliveries to the configured URL, records every attempt as GitHub's
 * delivery log does (newest first), and redelivers on request. GitHub counts an attempt as failed unless
 * the answer is 2xx within 10 s, and never redelivers by itself.
 */
export class WebhookDeliveries {
  target: WebhookTarget | undefined;
  readonly settings: DeliverySettings = { dropShare: 0, random: Math.random, timeoutMs: 10_000 };
  /** Every attempt, oldest first. */
  readonly log: FakeHookDelivery[] = [];
  private nextId = 90_000_000_001;
  private dropCount = 0;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly appId: number,
    private readonly now: () => number,
  ) {}

  /** Drops the next `count` deliveries (deterministic, for tests). */
  dropNext(count: number): void {
    this.dropCount += count;
  }

  /** Resolves once every attempt under way has been answered (or given up on). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  find(id: number): FakeHookDelivery | undefined {
    return this.log.find((d) => d.id === id);
  }

  /** Sends an event (a new guid). Without a target, nothing is sent or recorded, as with no webhook URL. */
  send(event: string, payload: Record<string, unknown>): FakeHookDelivery | undefined {
    if (!this.target) return undefined;
    return this.attempt(event, crypto.randomUUID(), payload, false);
  }

  /** `POST /app/hook/deliveries/{id}/attempts`: the same event again, same guid, marked as a redelivery. */
  redeliver(original: FakeHookDelivery): FakeHookDelivery | undefined {
    if (!this.target) return undefined;
    return this.attempt(
      original.event,
      original.guid,
      original.request.payload as Record<string, unknown>,
      true,
    );
  }

  private attempt(
    event: string,
    guid: string,
    payload: Record<string, unknown>,
    redelivery: boolean,
  ): FakeHookDelivery {
    const target = this.target!;
    const body = JSON.stringify(payload);
    const headers = deliveryHeaders(event, guid, body, target.secret, this.appId);
    const installation = payload.installation as { id?: number } | undefined;
    const repository = payload.repository as { id?: number } | undefined;
    const delivery: FakeHookDelivery = {
      id: this.nextId++,
      guid,
      delivered_at: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      redelivery,
      duration: 0,
      status: 'pending',
      status_code: 0,
      event,
      action: typeof payload.action === 'string' ? payload.action : null,
      installation_id: installation?.id ?? null,
      repository_id: repository?.id ?? null,
      throttled_at: null,
      request: { headers, payload },
      response: { headers: {}, payload: null },
      dropped: false,
    };
    this.log.push(delivery);
    const drop = this.dropCount > 0 || this.settings.random() < this.settings.dropShare;
    if (drop) {
      if (this.dropCount > 0) this.dropCount -= 1;
      delivery.dropped = true;
      delivery.status = 'failed to connect to host';
      return delivery;
    }
    const started = performance.now();
    const sending = fetch(target.url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(this.settings.timeoutMs),
    }).then(
      async (response) => {
        const text = await response.text().catch(() => '');
        delivery.status_code = response.status;
        delivery.status = response.ok ? 'OK' : `Invalid HTTP Response: ${response.status}`;
        delivery.response = { headers: Object.fromEntries(response.headers), payload: text.slice(0, 10_000) };
      },
      (error: unknown) => {
        delivery.status =
          (error as Error).name === 'TimeoutError' ? 'timed out' : 'failed to connect to host';
      },
    );
    const tracked = sending.finally(() => {
      delivery.duration = Math.round(performance.now() - started) / 1000;
      this.inFlight.delete(tracked);
    });
    this.inFlight.add(tracked);
    return delivery;
  }
}
