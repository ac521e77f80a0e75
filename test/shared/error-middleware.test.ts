import express from 'express';
import request from 'supertest';
import { HttpError, createErrorMiddleware, createRequestLogger, methodNotAllowed } from '#shared';
import { captureLogs } from '#test-support/log-capture';

describe('error middleware and request log', () => {
  const logs = captureLogs();
  const app = express();
  app.use(createRequestLogger(logs.logger, { projectId: 'my-proj' }));
  app.get('/teapot', () => {
    throw new HttpError(418, 'short and stout', { 'Retry-After': '3' });
  });
  app.get('/boom', () => {
    throw new Error('ya29.SECRET-TOKEN-IN-A-LIBRARY-MESSAGE');
  });
  app.post('/json', express.json({ limit: 10 }), (_req, res) => {
    res.json({ ok: true });
  });
  app.all('/only-get', methodNotAllowed(['GET']));
  app.use(createErrorMiddleware(logs.logger));

  it('turns an HttpError into its status, headers and {error}', async () => {
    const res = await request(app).get('/teapot');
    expect(res.status).toBe(418);
    expect(res.body).toEqual({ error: 'short and stout' });
    expect(res.headers['retry-after']).toBe('3');
  });

  it('turns anything else into a bare 500 and keeps its message out of the response and log', async () => {
    const res = await request(app).get('/boom');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'internal error' });
    expect(logs.text()).not.toContain('SECRET-TOKEN');
    expect(logs.lines().some((line) => line.message === 'unhandled error' && line.severity === 'ERROR')).toBe(
      true,
    );
  });

  it('gives body parser errors fixed client statuses', async () => {
    const tooBig = await request(app)
      .post('/json')
      .set('Content-Type', 'application/json')
      .send('{"a":"0123456789"}');
    expect(tooBig.status).toBe(413);
    const bad = await request(app).post('/json').set('Content-Type', 'application/json').send('{x');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('request body is not valid JSON');
  });

  it('keeps the status but not the text of other body-reading client errors', async () => {
    const res = await request(app)
      .post('/json')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'gzip')
      .send('{"not":"gzip"}');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'request body could not be read' });
  });

  it('answers 405 with Allow', async () => {
    const res = await request(app).delete('/only-get');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET');
  });

  it('writes one Cloud Logging line per request with httpRequest, severity and trace, and no headers', async () => {
    await request(app)
      .get('/teapot?x=1')
      .set('X-Cloud-Trace-Context', '105445aa7843bc8bf206b12000100000/7;o=1')
      .set('Authorization', 'Bearer SHOULD-NOT-BE-LOGGED');
    const line = logs.lines().findLast((l) => l.message === 'GET /teapot 418');
    expect(line).toMatchObject({
      severity: 'WARNING',
      httpRequest: { requestMethod: 'GET', requestUrl: '/teapot?x=…', status: 418 },
      'logging.googleapis.com/trace': 'projects/my-proj/traces/105445aa7843bc8bf206b12000100000',
      'logging.googleapis.com/spanId': '7',
      'logging.googleapis.com/trace_sampled': true,
    });
    expect(String((line?.httpRequest as { latency: string }).latency)).toMatch(/^\d+\.\d{6}s$/);
    expect(logs.text()).not.toContain('SHOULD-NOT-BE-LOGGED');
  });

  it('redacts token-named fields whatever logs them', () => {
    logs.logger.info({ token: 'abc-secret', nested: { authorization: 'Bearer xyz-secret' } }, 'oops');
    expect(logs.text()).not.toContain('abc-secret');
    expect(logs.text()).not.toContain('xyz-secret');
  });
});
