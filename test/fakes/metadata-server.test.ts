import { Compute, GoogleAuth, OAuth2Client } from 'google-auth-library';
import * as gcpMetadata from 'gcp-metadata';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';
import { startFakeMetadataServer } from '#fakes/metadata-server';
import type { FakeMetadataServer, SimulatedVm } from '#fakes/metadata-server';
import { isolateGoogleClientEnv } from '#test-support/google-client-env';

const AUDIENCE = 'https://token-proxy.example';
// Above 2^63, so any trip through a JS number or int64 would change it.
const INSTANCE_ID = '9223372036854775809';

const VM: SimulatedVm = {
  projectId: 'runners-prod',
  projectNumber: 123456789012,
  zone: 'us-central1-a',
  instanceId: INSTANCE_ID,
  instanceName: 'runner-7f3a',
  serviceAccountEmail: 'runner@runners-prod.iam.gserviceaccount.com',
  serviceAccountSub: '111111111111111111111',
  attributes: { 'runner-labels': 'linux-x64', 'enable-oslogin': 'TRUE' },
};

interface ComputeClaims {
  email: string;
  sub: string;
  google?: { compute_engine: Record<string, unknown> };
}

describe('fake metadata server', () => {
  let issuer: FakeGoogleIssuer;
  let metadata: FakeMetadataServer;
  let verifier: OAuth2Client;
  let restoreEnv: () => void;

  beforeAll(async () => {
    issuer = await startFakeGoogleIssuer();
    metadata = await startFakeMetadataServer({ issuer, vm: VM });
    verifier = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: issuer.certsUrl } });
    restoreEnv = isolateGoogleClientEnv(metadata.host);
  });
  afterAll(async () => {
    restoreEnv();
    await metadata.close();
    await issuer.close();
  });

  const claimsOf = async (idToken: string): Promise<ComputeClaims> => {
    const ticket = await verifier.verifyIdToken({ idToken, audience: AUDIENCE });
    return ticket.getPayload() as unknown as ComputeClaims;
  };

  describe('with google-auth-library and gcp-metadata', () => {
    it('is detected by gcp-metadata, which pings `instance`', async () => {
      gcpMetadata.resetIsAvailableCache();
      await expect(gcpMetadata.isAvailable()).resolves.toBe(true);
      expect(metadata.controls.callsTo('GET', /^\/computeMetadata\/v1\/instance$/).length).toBeGreaterThan(0);
    });

    it('gives GoogleAuth an access token and records it', async () => {
      const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
      const client = await auth.getClient();
      expect(client).toBeInstanceOf(Compute);
      const { token } = await client.getAccessToken();
      expect(token).toMatch(/^ya29\.fake-/);
      expect(metadata.accessTokens).toContain(token);
      const [call] = metadata.controls.callsTo('GET', '/service-accounts/default/token');
      expect(call?.query.scopes).toBe('https://www.googleapis.com/auth/cloud-platform');
      await expect(auth.getProjectId()).resolves.toBe('runners-prod');
    });

    it('gives GoogleAuth an identity token with the Compute claims (format=full)', async () => {
      const idClient = await new GoogleAuth().getIdTokenClient(AUDIENCE);
      const authorization = (await idClient.getRequestHeaders()).get('authorization') ?? '';
      const claims = await claimsOf(authorization.replace(/^Bearer /, ''));

      expect(claims).toMatchObject({ email: VM.serviceAccountEmail, sub: VM.serviceAccountSub });
      expect(claims.google?.compute_engine).toMatchObject({
        project_id: 'runners-prod',
        project_number: 123456789012,
        zone: 'us-central1-a',
        instance_id: INSTANCE_ID,
        instance_name: 'runner-7f3a',
      });
      const [call] = metadata.controls.callsTo('GET', '/identity');
      expect(call?.query).toEqual({ format: 'full', audience: AUDIENCE });
    });

    it('serves identity tokens for the VM email as well as `default`, and no other', async () => {
      const token = await new Compute({ serviceAccountEmail: VM.serviceAccountEmail }).fetchIdToken(AUDIENCE);
      await expect(claimsOf(token)).resolves.toMatchObject({ email: VM.serviceAccountEmail });
      await expect(
        new Compute({ serviceAccountEmail: 'other@p.iam.gserviceaccount.com' }).fetchIdToken(AUDIENCE),
      ).rejects.toMatchObject({ status: 404 });
    });

    it('receives the audience unencoded from Compute.fetchIdToken, so audiences must avoid & # +', async () => {
      const token = await new Compute().fetchIdToken('https://proxy.example/t?a=1&b=2');
      expect(token.split('.')).toHaveLength(3);
      const calls = metadata.controls.callsTo('GET', '/identity');
      expect(calls.at(-1)?.query).toEqual({
        format: 'full',
        audience: 'https://proxy.example/t?a=1',
        b: '2',
      });
    });

    it('answers gcp-metadata lookups (which parse text bodies as JSON with json-bigint)', async () => {
      // `instance/id` comes back as a BigNumber, not a string: only String() of it is exact.
      expect(String(await gcpMetadata.instance('id'))).toBe(INSTANCE_ID);
      await expect(gcpMetadata.project('numeric-project-id')).resolves.toBe(123456789012);
      await expect(gcpMetadata.instance('zone')).resolves.toBe('projects/123456789012/zones/us-central1-a');
      await expect(gcpMetadata.instance('service-accounts/default/email')).resolves.toBe(
        VM.serviceAccountEmail,
      );
      await expect(
        gcpMetadata.instance({ property: 'attributes/', params: { recursive: 'true' } }),
      ).resolves.toEqual(VM.attributes);
      metadata.setAttribute('shutdown', 'now');
      await expect(gcpMetadata.instance('attributes/shutdown')).resolves.toBe('now');
    });
  });

  describe('raw HTTP', () => {
    const get = (path: string, headers: Record<string, string> = { 'Metadata-Flavor': 'Google' }) =>
      fetch(`${metadata.url}${path}`, { headers });
    const v1 = '/computeMetadata/v1';

    it.each([
      ['no Metadata-Flavor header', `${v1}/instance/id`, {}, 403, /Missing Metadata-Flavor:Google header/],
      [
        'a wrong Metadata-Flavor',
        `${v1}/instance/id`,
        { 'Metadata-Flavor': 'Amazon' },
        403,
        /Metadata-Flavor/,
      ],
      [
        'an X-Forwarded-For header',
        `${v1}/instance/id`,
        { 'Metadata-Flavor': 'Google', 'X-Forwarded-For': '10.0.0.1' },
        403,
        /X-Forwarded-For/,
      ],
      [
        'no audience',
        `${v1}/instance/service-accounts/default/identity`,
        undefined,
        400,
        /non-empty audience/,
      ],
      ['an absent attribute', `${v1}/instance/attributes/nope`, undefined, 404, /Not Found/],
      ['an inherited property name', `${v1}/instance/attributes/constructor`, undefined, 404, /Not Found/],
      ['an unknown path', `${v1}/instance/nope`, undefined, 404, /Not Found/],
      ['the root, without the header', '/', {}, 200, /^computeMetadata\/\n$/],
      ['the v1 directory', `${v1}/`, undefined, 200, /^instance\/\nproject\/\n$/],
      ['the instance id', `${v1}/instance/id`, undefined, 200, new RegExp(`^${INSTANCE_ID}$`)],
      [
        'the hostname',
        `${v1}/instance/hostname`,
        undefined,
        200,
        /^runner-7f3a\.us-central1-a\.c\.runners-prod\.internal$/,
      ],
      [
        'the attribute keys',
        `${v1}/instance/attributes/`,
        undefined,
        200,
        /^runner-labels\nenable-oslogin\n/,
      ],
      ['one attribute', `${v1}/instance/attributes/runner-labels`, undefined, 200, /^linux-x64$/],
      [
        'the service accounts',
        `${v1}/instance/service-accounts/`,
        undefined,
        200,
        /^default\/\nrunner@.*\/\n$/,
      ],
    ])('answers %s', async (_name, path, headers, status, body) => {
      const res = await get(path, headers);
      expect(res.status).toBe(status);
      expect(res.headers.get('metadata-flavor')).toBe('Google');
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(await res.text()).toMatch(body);
    });

    it('serves the service account recursively as JSON', async () => {
      const res = await get(`${v1}/instance/service-accounts/default/?recursive=true`);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({
        aliases: ['default'],
        email: VM.serviceAccountEmail,
        scopes: ['https://www.googleapis.com/auth/cloud-platform'],
      });
    });

    it('mints format=standard tokens without the google claim', async () => {
      const res = await get(`${v1}/instance/service-accounts/default/identity?audience=${AUDIENCE}`);
      const claims = await claimsOf(await res.text());
      expect(claims.email).toBe(VM.serviceAccountEmail);
      expect(claims.google).toBeUndefined();
    });

    it('adds license ids when a full token is asked with licenses=TRUE', async () => {
      metadata.vm.licenseIds = ['1000201'];
      const res = await get(
        `${v1}/instance/service-accounts/default/identity?audience=${AUDIENCE}&format=full&licenses=TRUE`,
      );
      const claims = await claimsOf(await res.text());
      expect(claims.google?.compute_engine.license_id).toEqual(['1000201']);
    });
  });
});
