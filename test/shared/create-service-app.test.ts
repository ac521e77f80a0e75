import request from 'supertest';
import { createServiceApp, HttpError } from '#shared';
import { captureLogs } from '#test-support/log-capture';

function app() {
  const logs = captureLogs();
  return {
    logs,
    app: createServiceApp({
      logger: logs.logger,
      routes: {
        '/thing': {
          get: [(_req, res) => void res.send('got')],
          post: [
            () => {
              throw new HttpError(409, 'taken');
            },
          ],
        },
        '/any': { all: [(req, res) => void res.send(req.method)] },
        '/broken': {
          get: [
            () => {
              throw new Error('internal detail ghp_secret');
            },
          ],
        },
      },
    }),
  };
}

describe('createServiceApp', () => {
  it('routes by the table and sends no X-Powered-By or ETag', async () => {
    const res = await request(app().app).get('/thing');
    expect(res.status).toBe(200);
    expect(res.text).toBe('got');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers.etag).toBeUndefined();
  });

  it('answers 405 with Allow for another method on a known path', async () => {
    const res = await request(app().app).delete('/thing');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, POST');
    expect(res.body).toEqual({ error: 'method DELETE is not allowed here; use GET or POST' });
  });

  it('leaves every method to an `all` path', async () => {
    const res = await request(app().app).patch('/any');
    expect(res.status).toBe(200);
    expect(res.text).toBe('PATCH');
  });

  it('answers 404 for an unknown path', async () => {
    const res = await request(app().app).get('/nothing');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'no such endpoint: GET /nothing' });
  });

  // Issue 15 §7: a 15 KB path or User-Agent was logged whole and echoed whole.
  it('echoes and logs a 15 KB path only up to 200 characters, with an ellipsis', async () => {
    const { app: served, logs } = app();
    const path = `/${'p'.repeat(15 * 1024)}`;
    const res = await request(served).get(`${path}?q=1`);
    expect(res.status).toBe(404);
    expect(res.body.error).toBe(`no such endpoint: GET ${path.slice(0, 200)}…`);
    const [line] = logs.lines().filter((l) => l.httpRequest !== undefined);
    expect((line!.httpRequest as Record<string, string>).requestUrl).toBe(`${path.slice(0, 200)}…`);
    expect(line!.message).toBe(`GET ${path.slice(0, 200)}… 404`);
    expect(logs.text().length).toBeLessThan(2000);
  });

  it('logs a 15 KB User-Agent only up to 200 characters, with an ellipsis', async () => {
    const { app: served, logs } = app();
    const userAgent = 'u'.repeat(15 * 1024);
    const res = await request(served).get('/thing').set('User-Agent', userAgent);
    expect(res.status).toBe(200);
    const [line] = logs.lines().filter((l) => l.httpRequest !== undefined);
    expect((line!.httpRequest as Record<string, string>).userAgent).toBe(`${userAgent.slice(0, 200)}…`);
    expect(logs.text().length).toBeLessThan(2000);
  });

  it('turns an HttpError into its status and anything else into a bare 500', async () => {
    const { app: service, logs } = app();
    const refused = await request(service).post('/thing');
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({ error: 'taken' });
    const broken = await request(service).get('/broken');
    expect(broken.status).toBe(500);
    expect(broken.body).toEqual({ error: 'internal error' });
    expect(logs.text()).not.toContain('ghp_secret');
  });

  it('logs one line per request', async () => {
    const { app: service, logs } = app();
    await request(service).get('/thing');
    expect(logs.lines().filter((line) => line.httpRequest !== undefined)).toHaveLength(1);
  });
});
