import express from 'express';
import request from 'supertest';
import { z } from 'zod';
import {
  ConfigError,
  HttpError,
  commonEnvShape,
  compilePattern,
  createErrorMiddleware,
  createRequestLogger,
  matchesAny,
  methodNotAllowed,
  parseEnv,
  parseTraceContext,
  PatternError,
} from '#shared';
import { captureLogs } from '#test-support/log-capture';

describe('compilePattern', () => {
  it.each([
    ['my-org', 'my-org', true],
    ['my-org', 'MY-ORG', false],
    ['my-org', 'my-org2', false],
    ['match:my-org/.*', 'my-org/repo', true],
    ['match:my-org/.*', 'evil-my-org/repo', false],
    ['match:my-org/.*', 'my-org/repo\nx', false],
    ['match:a|b', 'a', true],
    ['match:a|b', 'xb', false],
    ['match:a|b', 'ab', false],
  ])('%s against %j (case-sensitive) is %s', (entry, value, expected) => {
    expect(compilePattern(entry).test(value)).toBe(expected);
  });

  it('folds case when asked, for literals and regexes', () => {
    expect(compilePattern('My-Org', { caseInsensitive: true }).test('my-org')).toBe(true);
    expect(compilePattern('match:my-org/.*', { caseInsensitive: true }).test('MY-ORG/Repo')).toBe(true);
  });

  it('names an invalid regex', () => {
    expect(() => compilePattern('match:([a-z')).toThrow(PatternError);
    expect(() => compilePattern('match:([a-z')).toThrow(/"\(\[a-z"/);
  });

  it('matchesAny is false for an empty list (nothing allowed by default)', () => {
    expect(matchesAny([], 'anything')).toBe(false);
  });
});

describe('parseEnv with the common settings', () => {
  const schema = z.object(commonEnvShape);

  it('applies defaults and splits audiences', () => {
    const config = parseEnv(schema, { AUTH_AUDIENCE: 'https://a.example, https://b.example/' });
    expect(config).toEqual({
      PORT: 8080,
      LOG_LEVEL: 'info',
      AUTH_AUDIENCE: ['https://a.example', 'https://b.example/'],
      ID_TOKEN_CERTS_URL: 'https://www.googleapis.com/oauth2/v1/certs',
    });
  });

  it('reports every problem at once, naming variables and not values', () => {
    let thrown: unknown;
    try {
      parseEnv(schema, { PORT: '99999', LOG_LEVEL: 'loud', ID_TOKEN_CERTS_URL: 'ftp://secret-value' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const { problems, message } = thrown as ConfigError;
    expect(problems).toHaveLength(4);
    expect(message).toMatch(/PORT: must be a port number/);
    expect(message).toMatch(/LOG_LEVEL/);
    expect(message).toMatch(/AUTH_AUDIENCE: is required/);
    expect(message).toMatch(/ID_TOKEN_CERTS_URL/);
    expect(message).not.toContain('secret-value');
  });

  it('treats an empty variable as unset', () => {
    expect(() => parseEnv(schema, { AUTH_AUDIENCE: ' ' })).toThrow(/AUTH_AUDIENCE: is required/);
  });
});

describe('parseTraceContext', () => {
  it.each([
    [
      '105445aa7843bc8bf206b12000100000/1;o=1',
      { traceId: '105445aa7843bc8bf206b12000100000', spanId: '1', sampled: true },
    ],
    ['105445aa7843bc8bf206b12000100000', { traceId: '105445aa7843bc8bf206b12000100000' }],
    [
      '105445aa7843bc8bf206b12000100000/123;o=0',
      { traceId: '105445aa7843bc8bf206b12000100000', spanId: '123', sampled: false },
    ],
    ['nonsense', undefined],
    ['105445aa7843bc8bf206b12000100000/abc', undefined],
    [undefined, undefined],
  ])('%s', (header, expected) => {
    expect(parseTraceContext(header)).toEqual(expected);
  });
});

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
