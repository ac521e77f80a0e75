/**
 * Hostile requests against both services, over real sockets: forged and misdirected identity tokens,
 * replayed tokens of deleted VMs, hostile bodies, scopes and headers. Every one must be a 4xx with a clear
 * `{"error"}` message, never a 5xx or a hang, must not reach GitHub or delete anything, and the services
 * must go on serving. Nothing sent may appear in a log.
 */
import zlib from 'node:zlib';
import type { FakeInstance } from '#fakes/compute-api';
import type { FakeGoogleIssuer, IdentityTokenRequest } from '#fakes/google-issuer';
import {
  buildDeleter,
  DELETER_ACCESS_TOKEN,
  DELETER_AUDIENCE,
  DELETER_PROJECT,
  memberOf,
  regionalMig,
  startDeleterFakes,
} from '#test-support/deleter-harness';
import type { Deleter, DeleterFakes } from '#test-support/deleter-harness';
import { rawRequest } from '#test-support/raw-http';
import type { RawRequest, RawResponse } from '#test-support/raw-http';
import { createSecretAudit, secretShapes } from '#test-support/secret-audit';
import { serveApp } from '#test-support/serve-app';
import type { ServedApp } from '#test-support/serve-app';
import { buildProxy, PAT, PROXY_AUDIENCE, startProxyFakes, vm } from '#test-support/token-proxy-harness';
import type { Proxy, ProxyFakes } from '#test-support/token-proxy-harness';

const now = () => Math.floor(Date.now() / 1000);
const EMAIL = `runner@${DELETER_PROJECT.projectId}.iam.gserviceaccount.com`;

let proxyFakes: ProxyFakes;
let deleterFakes: DeleterFakes;
let issuer: FakeGoogleIssuer;
let proxy: Proxy;
let deleter: Deleter;
let proxyServer: ServedApp;
let deleterServer: ServedApp;
/** The VM the deleter tokens of a test name: a fresh one for every test, so one test's outcome cannot mask another's. */
let victim: FakeInstance;
/** A VM no token names: it must survive the whole barrage. */
let sentinel: FakeInstance;
const audit = createSecretAudit();

beforeAll(async () => {
  proxyFakes = await startProxyFakes();
  issuer = proxyFakes.issuer;
  // One issuer for both services, as in production, where Google signs the tokens of both.
  deleterFakes = await startDeleterFakes({ issuer });
  proxy = buildProxy(proxyFakes);
  deleter = buildDeleter(deleterFakes);
  proxyServer = await serveApp(proxy.app);
  deleterServer = await serveApp(deleter.app);
  const victims = regionalMig(deleterFakes, 'gh-runner-victim');
  sentinel = memberOf(deleterFakes, victims, 'gh-runner-victim-sentinel');
  audit.add(
    PAT,
    DELETER_ACCESS_TOKEN,
    proxyFakes.github.app.privateKeyPkcs1Pem,
    proxyFakes.github.app.privateKeyPem,
  );
});

beforeEach(() => {
  // Its own MIG, stable, so GET / answers at once and a deletion elsewhere cannot change its state.
  victim = memberOf(deleterFakes, regionalMig(deleterFakes));
});

afterAll(async () => {
  await Promise.all([proxyServer?.close(), deleterServer?.close()]);
  await deleterFakes?.close();
  await proxyFakes?.close();
});

const calls = () => ({
  github: proxyFakes.github.controls.calls.length,
  deletes: deleterFakes.compute.controls.callsTo('POST', /\/deleteInstances$/).length,
});

/** Mints and remembers a token for the audit. */
function mint(
  request: IdentityTokenRequest,
  options?: Parameters<FakeGoogleIssuer['mintIdentityToken']>[1],
): string {
  const token = issuer.mintIdentityToken(request, options);
  audit.add(token);
  return token;
}

function swapPayload(token: string, change: (payload: Record<string, unknown>) => void): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  change(payload);
  return `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
}
const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

type Service = 'proxy' | 'deleter';
const audienceOf = (service: Service) => (service === 'proxy' ? PROXY_AUDIENCE : DELETER_AUDIENCE);
/** The claims of a token that would be valid for `service` (the deleter's names the victim VM). */
const claimsFor = (service: Service, extra: Partial<IdentityTokenRequest> = {}): IdentityTokenRequest => ({
  audience: audienceOf(service),
  email: EMAIL,
  compute:
    service === 'deleter'
      ? {
          projectId: DELETER_PROJECT.projectId,
          projectNumber: Number(DELETER_PROJECT.projectNumber),
          zone: victim.zone,
          instanceId: victim.id,
          instanceName: victim.name,
        }
      : vm('gh-runner-hostile'),
  ...extra,
});

/** Sends a request to a service: the proxy's `POST /register` for my-org, or the deleter's `DELETE /`. */
function send(
  service: Service,
  request: Partial<RawRequest> & { authorization?: string | undefined },
): Promise<RawResponse> {
  const { authorization, ...rest } = request;
  const headers: Array<[string, string]> = [
    ...(authorization === undefined ? [] : [['Authorization', authorization] as [string, string]]),
    ...(rest.headers ?? []),
  ];
  if (service === 'proxy') {
    return rawRequest(proxyServer.port, {
      method: 'POST',
      path: '/register',
      body: '{"scope": "my-org"}',
      ...rest,
      headers,
    });
  }
  return rawRequest(deleterServer.port, { method: 'DELETE', path: '/', ...rest, headers });
}

/** What every hostile request must get: a 4xx with a JSON `error` that echoes nothing secret. */
function expectClientError(
  res: RawResponse,
  status: number | undefined,
  message: RegExp | undefined,
  sent: string[] = [],
) {
  const summary = `${res.status} ${res.body.slice(0, 300)}`;
  expect({ status: res.status >= 400 && res.status < 500, summary }).toEqual({ status: true, summary });
  if (status !== undefined) expect({ status: res.status, summary }).toEqual({ status, summary });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const error = (res.json as { error?: unknown } | undefined)?.error;
  expect(typeof error).toBe('string');
  expect((error as string).length).toBeGreaterThan(10);
  if (message) expect(error).toMatch(message);
  for (const secret of sent) {
    for (const part of secret.split('.').filter((p) => p.length >= 12)) expect(res.body).not.toContain(part);
  }
}

// --- Forged and misdirected identity tokens ---------------------------------------------------------

type Forgery = [name: string, forge: (service: Service) => string, reason: RegExp];

const forgeries: Forgery[] = [
  ['alg none', (s) => mint(claimsFor(s), { signing: 'none' }), /must be signed with RS256/],
  [
    'alg none, capitalised',
    (s) => mint(claimsFor(s), { signing: 'none', header: { alg: 'None' } }),
    /must be signed with RS256/,
  ],
  [
    'HS256 keyed with the public key',
    (s) => mint(claimsFor(s), { signing: 'hs256-public-key' }),
    /must be signed with RS256/,
  ],
  [
    'RS256 header over an HS256-with-public-key signature',
    (s) => {
      const [, p, sig] = mint(claimsFor(s), { signing: 'hs256-public-key' }).split('.');
      return `${b64({ alg: 'RS256', typ: 'JWT', kid: issuer.kid })}.${p}.${sig}`;
    },
    /signature is invalid/,
  ],
  ['RS512', (s) => mint(claimsFor(s), { header: { alg: 'RS512' } }), /must be signed with RS256/],
  [
    'an unknown kid',
    (s) => mint(claimsFor(s), { header: { kid: 'f'.repeat(40) } }),
    /not among the issuer.s current signing keys/,
  ],
  [
    'no kid',
    (s) => mint(claimsFor(s), { header: { kid: undefined } }),
    /not among the issuer.s current signing keys/,
  ],
  [
    'a numeric kid',
    (s) => mint(claimsFor(s), { header: { kid: 1 } }),
    /not among the issuer.s current signing keys/,
  ],
  [
    'kid __proto__',
    (s) => mint(claimsFor(s), { header: { kid: '__proto__' } }),
    /not among the issuer.s current signing keys/,
  ],
  [
    'kid constructor',
    (s) => mint(claimsFor(s), { header: { kid: 'constructor' } }),
    /not among the issuer.s current signing keys/,
  ],
  [
    'kid with a path',
    (s) => mint(claimsFor(s), { header: { kid: '../../../etc/passwd' } }),
    /not among the issuer.s current signing keys/,
  ],
  [
    'a jku header pointing elsewhere',
    (s) => mint(claimsFor(s), { signing: 'rs256-other-key', header: { jku: 'http://127.0.0.1:1/certs' } }),
    /signature is invalid/,
  ],
  [
    'an embedded jwk',
    (s) =>
      mint(claimsFor(s), {
        signing: 'rs256-other-key',
        header: { jwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } },
      }),
    /signature is invalid/,
  ],
  [
    'another key, same kid',
    (s) => mint(claimsFor(s), { signing: 'rs256-other-key' }),
    /signature is invalid/,
  ],
  [
    'a tampered instance name',
    (s) =>
      swapPayload(
        mint(claimsFor(s)),
        (p) =>
          ((p.google as { compute_engine: { instance_name: string } }).compute_engine.instance_name =
            'gh-runner-other'),
      ),
    /signature is invalid/,
  ],
  [
    'a tampered audience',
    (s) =>
      swapPayload(
        mint(claimsFor(s, { audience: 'https://elsewhere.example' })),
        (p) => (p.aud = audienceOf(s)),
      ),
    /signature is invalid/,
  ],
  [
    'a tampered expiry',
    (s) =>
      swapPayload(
        mint(claimsFor(s, { iat: now() - 7200, exp: now() - 3600 })),
        (p) => (p.exp = now() + 3600),
      ),
    /signature is invalid/,
  ],
  [
    'an empty signature',
    (s) => `${mint(claimsFor(s)).split('.').slice(0, 2).join('.')}.`,
    /signature is invalid|malformed/,
  ],
  [
    'a signature of another token',
    (s) => {
      const [h, p] = mint(claimsFor(s)).split('.');
      return `${h}.${p}.${mint(claimsFor(s, { email: 'other@x.iam.gserviceaccount.com' })).split('.')[2]}`;
    },
    /signature is invalid/,
  ],
  [
    'expired beyond the 5-minute skew',
    (s) => mint(claimsFor(s, { iat: now() - 3600 - 400, exp: now() - 400 })),
    /has expired/,
  ],
  [
    'expired a day ago',
    (s) => mint(claimsFor(s, { iat: now() - 90_000, exp: now() - 86_400 })),
    /has expired/,
  ],
  [
    'issued in the future',
    (s) => mint(claimsFor(s, { iat: now() + 900, exp: now() + 4500 })),
    /not valid yet/,
  ],
  [
    'a lifetime of three hours',
    (s) => mint(claimsFor(s, { iat: now() - 10, exp: now() + 3 * 3600 })),
    /lifetime exceeds/,
  ],
  [
    'a lifetime of ten years',
    (s) => mint(claimsFor(s, { iat: now(), exp: now() + 10 * 365 * 86_400 })),
    /lifetime exceeds|expiration|lifetime/i,
  ],
  [
    'exp before iat',
    (s) => mint(claimsFor(s, { iat: now(), exp: now() - 10 })),
    /has expired|claims|malformed/,
  ],
  [
    'iat and exp as strings',
    (s) => {
      const t = issuer.sign({
        iss: 'https://accounts.google.com',
        aud: audienceOf(s),
        sub: '1',
        iat: String(now()),
        exp: String(now() + 3600),
      });
      audit.add(t);
      return t;
    },
    /claims|malformed/,
  ],
  [
    'no sub',
    (s) => {
      const t = issuer.sign({
        iss: 'https://accounts.google.com',
        aud: audienceOf(s),
        iat: now(),
        exp: now() + 3600,
      });
      audit.add(t);
      return t;
    },
    /claims are missing or malformed/,
  ],
  [
    'a wrong audience',
    (s) => mint(claimsFor(s, { audience: 'https://elsewhere.example' })),
    /audience is not accepted/,
  ],
  [
    'the audience with a suffix',
    (s) => mint(claimsFor(s, { audience: `${audienceOf(s)}.evil.example` })),
    /audience is not accepted/,
  ],
  [
    'the audience as a list',
    (s) => {
      const t = issuer.sign({
        iss: 'https://accounts.google.com',
        aud: [audienceOf(s)],
        sub: '1',
        iat: now(),
        exp: now() + 3600,
      });
      audit.add(t);
      return t;
    },
    /audience|claims|malformed/,
  ],
  [
    'a wrong issuer',
    (s) => mint(claimsFor(s, { issuer: 'https://evil.example.com' })),
    /not issued by Google/,
  ],
  [
    'an issuer with a trailing slash',
    (s) => mint(claimsFor(s, { issuer: 'https://accounts.google.com/' })),
    /not issued by Google/,
  ],
  ['a two-part token', () => 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0', /malformed/],
  ['a four-part token', (s) => `${mint(claimsFor(s))}.AAAA`, /malformed/],
  ['garbage segments', () => 'a.b.c', /malformed/],
  ['a header that is not JSON', () => `${b64('not json')}.${b64({ sub: '1' })}.AAAA`, /malformed/],
  ['a header that is a JSON array', () => `${b64([1, 2])}.${b64({ sub: '1' })}.AAAA`, /malformed/],
  [
    'a payload that is not JSON',
    () => `${b64({ alg: 'RS256', kid: issuer.kid })}.${b64('{{{')}.AAAA`,
    /malformed|signature/,
  ],
  ['base64 with padding and plus signs', () => 'eyJh+GciOiJSUzI1NiJ9==.e30=.AA+/', /malformed|not a Bearer/],
  [
    'a 15 KB token',
    () => `${b64({ alg: 'RS256', kid: issuer.kid })}.${'A'.repeat(15_000)}.AAAA`,
    /malformed|signature/,
  ],
];

describe.each(['proxy', 'deleter'] as const)('forged identity tokens at the %s', (service) => {
  it.each(forgeries)('refuses %s with a 401 naming the reason', async (_, forge, reason) => {
    const before = calls();
    const token = forge(service);
    audit.add(token);
    const res = await send(service, { authorization: `Bearer ${token}` });
    expectClientError(res, 401, reason, [token]);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(calls()).toEqual(before);
  });
});

describe('tokens for another service, another VM, or a VM that is gone', () => {
  it('refuses a token minted for the deleter at the proxy, and one minted for the proxy at the deleter', async () => {
    const before = calls();
    const forDeleter = mint(claimsFor('deleter'));
    const forProxy = mint(claimsFor('proxy', { compute: claimsFor('deleter').compute! }));
    expectClientError(await send('proxy', { authorization: `Bearer ${forDeleter}` }), 401, /audience/, [
      forDeleter,
    ]);
    expectClientError(await send('deleter', { authorization: `Bearer ${forProxy}` }), 401, /audience/, [
      forProxy,
    ]);
    expect(calls()).toEqual(before);
  });

  it('refuses at the deleter a token without Compute Engine claims', async () => {
    const token = mint({ audience: DELETER_AUDIENCE, email: EMAIL });
    expectClientError(await send('deleter', { authorization: `Bearer ${token}` }), 401, /format=full/, [
      token,
    ]);
  });

  it.each([
    [
      'another VM’s name with this VM’s id',
      (other: FakeInstance) => ({ instanceName: other.name }),
      403,
      /its id differs/,
    ],
    [
      'this VM’s name with another VM’s id',
      (other: FakeInstance) => ({ instanceId: other.id }),
      403,
      /its id differs/,
    ],
    ['this VM’s name in another zone', () => ({ zone: 'us-central1-b' }), 404, /not found/],
    ['another project', () => ({ projectId: 'someone-elses-project' }), 404, /not found/],
    ['another project number', () => ({ projectNumber: 999 }), 403, /outside its own project/],
  ])('never deletes anything for a token naming %s', async (_, override, status, message) => {
    const mig = regionalMig(deleterFakes);
    const me = memberOf(deleterFakes, mig);
    const other = memberOf(deleterFakes, mig);
    const token = deleter.token(me, override(other));
    audit.add(token);
    const before = calls();
    expectClientError(await send('deleter', { authorization: `Bearer ${token}` }), status, message, [token]);
    expect(calls().deletes).toBe(before.deletes);
    expect([...mig.members.values()].map((m) => m.currentAction)).toEqual(['NONE', 'NONE']);
  });

  it('answers a replayed token of a deleted VM with 404, and of a reused name with 403, deleting nothing else', async () => {
    const mig = regionalMig(deleterFakes);
    const gone = memberOf(deleterFakes, mig);
    const bystander = memberOf(deleterFakes, mig);
    const token = deleter.token(gone);
    audit.add(token);
    const first = await send('deleter', { authorization: `Bearer ${token}` });
    expect(first.status).toBe(200);
    deleterFakes.compute.completeDeletions();
    const deletesAfterFirst = calls().deletes;

    const replayed = await send('deleter', { authorization: `Bearer ${token}` });
    expectClientError(replayed, 404, /not found/, [token]);

    // The MIG recreates a VM of the same name (it does, for stateful names): a new id.
    const reborn = memberOf(deleterFakes, mig, gone.name);
    const again = await send('deleter', { authorization: `Bearer ${token}` });
    expectClientError(again, 403, /its id differs/, [token]);

    expect(calls().deletes).toBe(deletesAfterFirst);
    expect(mig.members.get(reborn.name)?.currentAction).toBe('NONE');
    expect(mig.members.get(bystander.name)?.currentAction).toBe('NONE');
  });
});

// --- Hostile bodies, scopes and headers at the proxy ---------------------------------------------------

type BodyCase = [
  name: string,
  body: string | Buffer,
  headers: Array<[string, string]>,
  status: number,
  message: RegExp,
];

const nested = (depth: number) => `{"scope": ${'['.repeat(depth)}${']'.repeat(depth)}}`;
const gzipBomb = zlib.gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
const deflateBomb = zlib.deflateSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
const brotliBomb = zlib.brotliCompressSync(Buffer.alloc(10 * 1024 * 1024, 0x20));
const json: Array<[string, string]> = [['Content-Type', 'application/json']];

const bodyCases: BodyCase[] = [
  ['a 70 KiB body', JSON.stringify({ scope: 'my-org', pad: 'x'.repeat(70 * 1024) }), json, 413, /too large/],
  ['a 5 MiB body', Buffer.alloc(5 * 1024 * 1024, 0x41), json, 413, /too large/],
  ['100 000 nested [', '['.repeat(100_000), json, 413, /too large/],
  ['30 000 nested arrays inside 64 KiB', nested(30_000), json, 400, /scope must be a string/],
  [
    '10 000 nested objects',
    `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`,
    json,
    400,
    /unknown field|scope is required/,
  ],
  ['a gzip bomb (10 MiB inflated)', gzipBomb, [...json, ['Content-Encoding', 'gzip']], 413, /too large/],
  ['a deflate bomb', deflateBomb, [...json, ['Content-Encoding', 'deflate']], 413, /too large/],
  ['a brotli bomb', brotliBomb, [...json, ['Content-Encoding', 'br']], 413, /too large/],
  ['gzip that is not gzip', 'not gzip at all', [...json, ['Content-Encoding', 'gzip']], 400, /./],
  [
    'an unknown content encoding',
    '{"scope":"my-org"}',
    [...json, ['Content-Encoding', 'x-evil']],
    415,
    /unsupported content encoding/,
  ],
  [
    'an unknown charset',
    '{"scope":"my-org"}',
    [['Content-Type', 'text/plain; charset=x-evil']],
    415,
    /unsupported charset/,
  ],
  [
    'a form body',
    'scope=my-org',
    [['Content-Type', 'application/x-www-form-urlencoded']],
    400,
    /not valid JSON/,
  ],
  ['XML', '<scope>my-org</scope>', [['Content-Type', 'application/xml']], 400, /not valid JSON/],
  ['binary garbage', Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x81]), json, 400, /not valid JSON/],
  ['JSON followed by garbage', '{"scope":"my-org"} trailing', json, 400, /not valid JSON/],
  ['JSON with a comment', '{"scope":"my-org" /* hi */}', json, 400, /not valid JSON/],
  ['single-quoted JSON', "{'scope':'my-org'}", json, 400, /not valid JSON/],
  ['NaN', 'NaN', json, 400, /not valid JSON/],
  ['only whitespace', ' \n\t ', json, 400, /empty/],
  [
    'a __proto__ key',
    '{"scope":"my-org","__proto__":{"polluted":true}}',
    json,
    400,
    /unknown field: "__proto__"/,
  ],
  [
    'only a __proto__ key carrying the scope',
    '{"__proto__":{"scope":"my-org"}}',
    json,
    400,
    /scope is required|unknown field/,
  ],
  [
    'a constructor.prototype key',
    '{"scope":"my-org","constructor":{"prototype":{"polluted":true}}}',
    json,
    400,
    /unknown field: "constructor"/,
  ],
  [
    'a prototype key',
    '{"scope":"my-org","prototype":{"polluted":true}}',
    json,
    400,
    /unknown field: "prototype"/,
  ],
  ['a scope that is a number', '{"scope":42}', json, 400, /scope must be a string/],
  ['a scope that is an array', '{"scope":["my-org"]}', json, 400, /scope must be a string/],
  ['a scope that is an object', '{"scope":{"toString":"my-org"}}', json, 400, /scope must be a string/],
  ['a scope that is null', '{"scope":null}', json, 400, /scope must be a string/],
  ['a scope that is true', '{"scope":true}', json, 400, /scope must be a string/],
  ['a body that is an array', '[{"scope":"my-org"}]', json, 400, /must be a JSON object/],
  ['a body that is a string', '"my-org"', json, 400, /must be a JSON object/],
];

const trickScopes: Array<[string, RegExp]> = [
  ['../my-org', /not a valid organization name|OWNER\/REPO|invalid/],
  ['my-org/..', /invalid repository name/],
  ['my-org/.', /invalid repository name/],
  ['my-org/../../admin', /expected ORG, OWNER\/REPO/],
  ['my-org/app/../../../user', /expected ORG, OWNER\/REPO/],
  ['my-org/%2e%2e', /invalid repository name/],
  ['my-org%2fapp', /not a valid organization name/],
  ['my-org/app%3fx=1', /invalid repository name/],
  ['my-org/app?per_page=100', /invalid repository name/],
  ['my-org/app#fragment', /invalid repository name/],
  ['my-org#x', /not a valid organization name/],
  ['my-org\\app', /not a valid organization name/],
  ['my-org/app\n', /invalid repository name/],
  ['my-org\u0000', /not a valid organization name/],
  [' my-org', /not a valid organization name/],
  ['my-org ', /not a valid organization name/],
  ['my org', /not a valid organization name/],
  ['my-org\t', /not a valid organization name/],
  ['mу-org', /not a valid organization name/], // Cyrillic у
  ['ｍy-org', /not a valid organization name/],
  ['my\u200d-org', /not a valid organization name/],
  ['my-org\u202e', /not a valid organization name/],
  ['my-org/app\u0301', /invalid repository name/],
  ['my--org', /not a valid organization name/],
  ['-my-org', /not a valid organization name/],
  ['{org}', /not a valid organization name/],
  ['my-org/{repo}', /invalid repository name/],
  ['my-org/app:8080', /invalid repository name/],
  ['https://github.com/my-org', /expected ORG, OWNER\/REPO|invalid/],
  ['//my-org//app', /expected ORG, OWNER\/REPO/],
  ['my-org//app', /expected ORG, OWNER\/REPO/],
  ['enterprise:../acme', /invalid enterprise slug/],
  ['enterprise:acme/x', /invalid enterprise slug/],
  ['enterprise:', /invalid enterprise slug/],
  ['Enterprise:acme', /not a valid organization name/],
  ['x'.repeat(300), /longer than 256 characters/],
  ['a'.repeat(40), /not a valid organization name/],
  ['my-org/' + 'r'.repeat(101), /invalid repository name/],
  // Well-formed but not allowed: a 403, still without a GitHub call.
  ['orgs/my-org', /is not allowed/],
  ['other-org', /is not allowed/],
  ['enterprise:acme-other', /is not allowed/],
];

describe('hostile bodies at the proxy', () => {
  it.each(bodyCases)(
    'answers %s with a clear 4xx, without calling GitHub',
    async (_, body, headers, status, message) => {
      const token = proxy.token();
      audit.add(token);
      const before = calls();
      const res = await send('proxy', { authorization: `Bearer ${token}`, body, headers });
      expectClientError(res, status, message, [token]);
      expect(calls()).toEqual(before);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    },
  );

  it.each(trickScopes)('refuses scope %j with a 4xx and no GitHub call', async (scope, message) => {
    const token = proxy.token();
    audit.add(token);
    const before = calls();
    const res = await send('proxy', {
      authorization: `Bearer ${token}`,
      body: JSON.stringify({ scope }),
      headers: json,
    });
    expectClientError(res, undefined, message, [token]);
    expect(calls()).toEqual(before);
  });

  it.each([
    ['labels that are not an array', { scope: 'my-org', labels: 'self-hosted' }, /labels must be an array/],
    ['a label with a comma', { scope: 'my-org', labels: ['self-hosted,gpu'] }, /each label/],
    [
      '101 labels',
      { scope: 'my-org', labels: Array.from({ length: 101 }, (_, i) => `l${i}`) },
      /at most 100/,
    ],
    [
      'a runner group that is a number',
      { scope: 'my-org', runner_group: 2 },
      /runner_group must be a string/,
    ],
    ['a runner group with a newline', { scope: 'my-org', runner_group: 'a\nb' }, /runner_group/],
    ['a work folder escaping upwards', { scope: 'my-org', work_folder: '../../etc' }, /work_folder/],
    ['an absolute work folder', { scope: 'my-org', work_folder: '/etc' }, /work_folder/],
    [
      'a runner name (it comes from the token)',
      { scope: 'my-org', name: 'someone-else' },
      /unknown field: "name"/,
    ],
  ])('refuses a /jitconfig body with %s', async (_, body, message) => {
    const token = proxy.token({ compute: vm('gh-runner-jit-hostile') });
    audit.add(token);
    const before = calls();
    const res = await rawRequest(proxyServer.port, {
      method: 'POST',
      path: '/jitconfig',
      headers: [['Authorization', `Bearer ${token}`], ...json],
      body: JSON.stringify(body),
    });
    expectClientError(res, 400, message, [token]);
    expect(calls()).toEqual(before);
  });
});

describe('hostile headers, methods and paths', () => {
  const valid = (service: Service) => (service === 'proxy' ? proxy.token() : mint(claimsFor('deleter')));

  type HeaderCase = [name: string, headers: (token: string) => Array<[string, string]>, reason: RegExp];
  const headerCases: HeaderCase[] = [
    [
      'two Authorization headers',
      (t) => [
        ['Authorization', `Bearer ${t}`],
        ['Authorization', `Bearer ${t}`],
      ],
      /more than one Authorization header/,
    ],
    [
      'Authorization and authorization',
      (t) => [
        ['Authorization', `Bearer ${t}`],
        ['authorization', 'Bearer x.y.z'],
      ],
      /more than one Authorization header/,
    ],
    [
      'lowercase bearer with a forged token',
      (t) => [['Authorization', `bearer ${t.slice(0, -4)}AAAA`]],
      /signature is invalid/,
    ],
    [
      'extra spaces around a forged token',
      (t) => [['Authorization', `Bearer    ${t.slice(0, -4)}AAAA   `]],
      /signature is invalid/,
    ],
    ['a tab after Bearer', (t) => [['Authorization', `Bearer\t${t}`]], /not a Bearer token/],
    [
      'a tab inside the token',
      (t) => [['Authorization', `Bearer ${t.slice(0, 20)}\t${t.slice(20)}`]],
      /not a Bearer token|malformed/,
    ],
    ['Bearer with two tokens', (t) => [['Authorization', `Bearer ${t} ${t}`]], /not a Bearer token/],
    [
      'two credentials joined by a comma',
      (t) => [['Authorization', `Bearer ${t}, Bearer ${t}`]],
      /not a Bearer token/,
    ],
    ['Bearer and nothing else', () => [['Authorization', 'Bearer']], /the Bearer token is empty/],
    ['Bearer and spaces', () => [['Authorization', 'Bearer     ']], /missing Authorization header|empty/],
    ['an empty Authorization header', () => [['Authorization', '']], /missing Authorization header/],
    ['Basic credentials', () => [['Authorization', 'Basic dXNlcjpwYXNz']], /not a Bearer token/],
    ['the token without a scheme', (t) => [['Authorization', t]], /not a Bearer token/],
    ['a Token scheme', (t) => [['Authorization', `Token ${t}`]], /not a Bearer token/],
    ['BearerX', (t) => [['Authorization', `BearerX ${t}`]], /not a Bearer token/],
    [
      'Latin-1 bytes in the token',
      () => [['Authorization', 'Bearer \u00e9\u00e9\u00e9.\u00e9.\u00e9']],
      /malformed/,
    ],
    [
      'a 15 KB Authorization header',
      () => [['Authorization', `Bearer ${'A'.repeat(15 * 1024)}`]],
      /malformed/,
    ],
    [
      'no Authorization but the token in a cookie',
      (t) => [['Cookie', `token=${t}`]],
      /missing Authorization header/,
    ],
    [
      'no Authorization but X-Forwarded-Authorization',
      (t) => [['X-Forwarded-Authorization', `Bearer ${t}`]],
      /missing Authorization header/,
    ],
  ];

  describe.each(['proxy', 'deleter'] as const)('at the %s', (service) => {
    it.each(headerCases)('refuses %s with a 401', async (_, headersOf, reason) => {
      const token = valid(service);
      audit.add(token);
      const before = calls();
      const res = await send(service, {
        headers: [...headersOf(token), ...(service === 'proxy' ? json : [])],
      });
      expectClientError(res, 401, reason, [token]);
      expect(calls()).toEqual(before);
    });

    it('accepts lowercase bearer and extra spaces with a valid token, as RFC 7235 allows', async () => {
      const res = await send(service, {
        method: service === 'proxy' ? 'POST' : 'GET',
        authorization: `bearer   ${valid(service)}  `,
        headers: service === 'proxy' ? json : [],
      });
      expect(res.status).toBe(200);
    });

    it('answers a 20 KB header (beyond Node’s 16 KiB limit) with 431 and keeps serving', async () => {
      // Node's HTTP parser answers this itself, before Express: a bare 431 without a JSON body.
      const res = await send(service, { authorization: `Bearer ${'A'.repeat(20 * 1024)}` });
      expect(res.status).toBe(431);
      const ok = await send(service, {
        method: service === 'proxy' ? 'POST' : 'GET',
        authorization: `Bearer ${valid(service)}`,
        headers: service === 'proxy' ? json : [],
      });
      expect(ok.status).toBe(200);
    });
  });

  it.each([
    ['proxy', 'GET', '/register', 405],
    ['proxy', 'TRACE', '/register', 405],
    ['proxy', 'PUT', '/jitconfig', 405],
    ['proxy', 'POST', '//register', 404],
    ['proxy', 'POST', '/register%00', 404],
    ['proxy', 'POST', '/%zz', 404],
    ['proxy', 'POST', '/..%2fregister', 404],
    ['proxy', 'POST', '/register/..%2f..%2fadmin', 404],
    ['proxy', 'GET', '/healthz/../register', 404],
    ['deleter', 'DELETE', '/x', 404],
    ['deleter', 'DELETE', '//', 404],
    ['deleter', 'DELETE', '/%2e%2e/', 404],
    ['deleter', 'DELETE', '/%zz', 404],
  ] as const)('answers %s %s %s with %i and a JSON error', async (service, method, path, status) => {
    const token = valid(service);
    audit.add(token);
    const before = calls();
    const res = await send(service, {
      method,
      path,
      authorization: `Bearer ${token}`,
      ...(service === 'proxy' ? { headers: json } : {}),
    });
    expectClientError(res, status, undefined, [token]);
    expect(calls()).toEqual(before);
  });

  it.each([
    ['POST', '/', 405, /not allowed/],
    ['PUT', '/', 405, /not allowed/],
    ['PATCH', '/', 405, /not allowed/],
    ['DELETE', '/?if=now', 400, /unknown condition/],
    ['DELETE', '/?if=scale-down&if=scale-down', 400, /unknown condition/],
    ['DELETE', '/?if=scale-down%00', 400, /unknown condition/],
    ['DELETE', '/?if=SCALE-DOWN', 400, /unknown condition/],
    // A conditional delete whose condition is misspelt must not turn into an unconditional one.
    ['DELETE', '/?If=scale-down', 400, /unknown|condition|parameter/],
    ['DELETE', '/?if[]=scale-down', 400, /unknown|condition|parameter/],
    ['DELETE', '/?if%20=scale-down', 400, /unknown|condition|parameter/],
  ] as const)(
    'answers the deleter’s %s %s with %i, deleting nothing',
    async (method, path, status, message) => {
      const token = mint(claimsFor('deleter'));
      const before = calls();
      const res = await send('deleter', { method, path, authorization: `Bearer ${token}` });
      expectClientError(res, status, message, [token]);
      expect(calls().deletes).toBe(before.deletes);
    },
  );

  it.each([
    ['a byte-order mark before the JSON', '\ufeff{"scope":"my-org"}', json],
    [
      'UTF-7, which iconv-lite decodes',
      '{"scope":"my-org"}',
      [['Content-Type', 'text/plain; charset=utf-7']],
    ],
    [
      'UTF-16LE with its charset',
      Buffer.from('{"scope":"my-org"}', 'utf16le'),
      [['Content-Type', 'application/json; charset=utf-16le']],
    ],
    ['a gzip-encoded body', zlib.gzipSync('{"scope":"my-org"}'), [...json, ['Content-Encoding', 'gzip']]],
  ] as Array<[string, string | Buffer, Array<[string, string]>]>)(
    'tolerates %s at the proxy (decoded, then validated as usual)',
    async (_, body, headers) => {
      const res = await send('proxy', { authorization: `Bearer ${proxy.token()}`, body, headers });
      expect(res.status).toBe(200);
    },
  );

  it('ignores a body sent to the deleter, however large, and answers without a 5xx', async () => {
    const token = mint(claimsFor('deleter'));
    const res = await send('deleter', {
      method: 'GET',
      authorization: `Bearer ${token}`,
      headers: json,
      body: Buffer.alloc(1024 * 1024, 0x5b),
    });
    // The deleter takes no body: it answers GET / as it would without one.
    expect(res.status).toBe(200);
    expect(res.body).toBe('false');
  });
});

describe('a token sent where it does not belong', () => {
  it.each(['proxy', 'deleter'] as const)(
    'is refused at the %s when sent in the query string, and not written to its log',
    async (service) => {
      // Kept out of the suite-wide audit, so this finding is reported here alone.
      const token =
        service === 'proxy'
          ? issuer.mintIdentityToken(claimsFor('proxy'))
          : issuer.mintIdentityToken(claimsFor('deleter'));
      const logs = service === 'proxy' ? proxy.logs : deleter.logs;
      const res = await send(service, {
        path: `/${service === 'proxy' ? 'register' : ''}?access_token=${token}`,
      });
      expectClientError(res, 401, /missing Authorization header/, [token]);
      const [, payload, signature] = token.split('.');
      expect({
        payloadLogged: logs.text().includes(payload!),
        signatureLogged: logs.text().includes(signature!),
      }).toEqual({
        payloadLogged: false,
        signatureLogged: false,
      });
    },
  );
});

describe('after the barrage', () => {
  it('the proxy still issues registration tokens and the deleter still deletes', async () => {
    const token = proxy.token();
    const res = await send('proxy', { authorization: `Bearer ${token}`, headers: json });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ token: expect.any(String), expires_at: expect.any(String) });
    audit.add((res.json as { token: string }).token);

    expect(sentinel.mig!.members.get(sentinel.name)?.currentAction).toBe('NONE');
    const del = await send('deleter', { authorization: `Bearer ${mint(claimsFor('deleter'))}` });
    expect(del.status).toBe(200);
    expect(del.body).toMatch(/is deleting instance gh-runner-/);
  });

  it('no log line of either service contains a token, key or Authorization value', () => {
    audit.add(...proxyFakes.github.issuedTokens.runner.map((t) => t.token));
    audit.add(...proxyFakes.github.issuedTokens.installation.map((t) => t.token));
    const proxyLog = proxy.logs.text();
    const deleterLog = deleter.logs.text();
    expect(proxyLog.length).toBeGreaterThan(1000);
    expect(deleterLog.length).toBeGreaterThan(1000);
    expect(audit.leaks(proxyLog, deleterLog)).toEqual([]);
    expect(secretShapes(proxyLog, deleterLog)).toEqual([]);
    expect(`${proxyLog}\n${deleterLog}`).not.toMatch(/Bearer [A-Za-z0-9_-]{20}/);
  });

  it('no request of the barrage was answered with a 5xx', () => {
    const serverErrors = [...proxy.logs.lines(), ...deleter.logs.lines()]
      .map(
        (line) =>
          line.httpRequest as { status: number; requestMethod: string; requestUrl: string } | undefined,
      )
      .filter((request) => request !== undefined && request.status >= 500)
      .map((request) => `${request!.status} ${request!.requestMethod} ${request!.requestUrl}`);
    expect(serverErrors).toEqual([]);
  });
});
