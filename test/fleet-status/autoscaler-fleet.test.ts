import express from 'express';
import type { GoogleAuth } from 'google-auth-library';
import { AutoscalerFleetError, createAutoscalerFleetApi, createStatusSnapshots } from '#fleet-status';
import type { StatusView } from '#fleet-status';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';

/** google-auth-library's IdTokenClient, reduced to what the adapter uses. */
const auth = (token = 'eyJ.test.token'): Pick<GoogleAuth, 'getIdTokenClient'> => ({
  getIdTokenClient: (async () => ({
    getRequestHeaders: async () => new Headers({ authorization: `Bearer ${token}` }),
  })) as unknown as GoogleAuth['getIdTokenClient'],
});

describe('reading the autoscaler fleet view', () => {
  let served: ServedApp;
  let answer: (res: express.Response) => void = () => {};
  const seen: Array<string | undefined> = [];

  beforeAll(async () => {
    const app = express();
    app.get('/fleet', (req, res) => {
      seen.push(req.get('authorization'));
      answer(res);
    });
    served = await serveApp(app);
  });
  afterAll(() => served.close());

  it('sends its identity token and keeps fields of the wrong shape out rather than failing', async () => {
    answer = (res) =>
      res.json({
        generatedAt: '2026-11-29T12:00:00.000Z',
        pools: [
          {
            name: 'linux-cpu',
            labels: ['x'],
            maxRunners: 'many',
            migs: [{ mig: 'projects/p/zones/z/instanceGroupManagers/m', targetSize: 2 }, { nope: 1 }],
            recentDecisions: 'none',
          },
          { noName: true },
        ],
      });
    const view = await createAutoscalerFleetApi({
      url: served.url,
      audience: 'https://a',
      auth: auth(),
    }).readFleet();
    expect(seen.at(-1)).toBe('Bearer eyJ.test.token');
    expect(view.pools).toHaveLength(1);
    expect(view.pools[0]).toMatchObject({
      name: 'linux-cpu',
      maxRunners: null,
      recentDecisions: [],
      reaperDecisions: [],
    });
    expect(view.pools[0]!.migs).toEqual([
      { mig: 'projects/p/zones/z/instanceGroupManagers/m', targetSize: 2 },
    ]);
    expect(view.pools[0]!.rows).toBeUndefined();
    expect(view.deliveries).toEqual({ failed: [], redelivered: [] });
  });

  it.each([
    [
      'a refusal',
      (res: express.Response) => res.status(403).json({ error: 'this caller may not use GET /fleet' }),
      /answered 403: this caller may not use GET \/fleet/,
    ],
    ['something else', (res: express.Response) => res.type('html').send('<html>'), /not a fleet view/],
    ['no answer in time', () => {}, /did not answer GET \/fleet within 200 ms/],
  ])('reports %s', async (_name, handler, message) => {
    answer = handler;
    const api = createAutoscalerFleetApi({
      url: served.url,
      audience: 'https://a',
      auth: auth(),
      timeoutMs: 200,
    });
    await expect(api.readFleet()).rejects.toThrow(AutoscalerFleetError);
    await expect(api.readFleet()).rejects.toThrow(message);
  });

  it('names the failure of the token, never its text', async () => {
    const failing: Pick<GoogleAuth, 'getIdTokenClient'> = {
      getIdTokenClient: (async () => {
        throw Object.assign(new Error('secret ya29.abc'), { name: 'GaxiosError' });
      }) as unknown as GoogleAuth['getIdTokenClient'],
    };
    const api = createAutoscalerFleetApi({ url: served.url, audience: 'https://a', auth: failing });
    await expect(api.readFleet()).rejects.toThrow(
      'could not get an identity token for the autoscaler (GaxiosError)',
    );
  });
});

describe('status snapshots', () => {
  it('shares one build among concurrent requests and serves it for the TTL', async () => {
    let builds = 0;
    let now = 0;
    const view = { generatedAt: 'x' } as StatusView;
    const snapshots = createStatusSnapshots(
      async () => {
        builds += 1;
        await new Promise((resolve) => setTimeout(resolve, 10));
        return view;
      },
      15_000,
      () => now,
    );
    await Promise.all([snapshots.current(), snapshots.current(), snapshots.current()]);
    expect(builds).toBe(1);
    now = 14_999;
    await snapshots.current();
    expect(builds).toBe(1);
    now = 15_000;
    await snapshots.current();
    expect(builds).toBe(2);
  });
});
