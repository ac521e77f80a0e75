import { OAuth2Client } from 'google-auth-library';
import { startFakeGoogleIssuer } from '#fakes/google-issuer';
import type { FakeGoogleIssuer } from '#fakes/google-issuer';

describe('fake Google issuer', () => {
  let issuer: FakeGoogleIssuer;
  beforeAll(async () => {
    issuer = await startFakeGoogleIssuer();
  });
  afterAll(() => issuer.close());

  it('mints tokens that google-auth-library verifies against its PEM endpoint', async () => {
    const client = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: issuer.certsUrl } });
    const token = issuer.mintIdentityToken({
      audience: 'https://proxy.example',
      email: 'runner@p.iam.gserviceaccount.com',
      compute: {
        projectId: 'p',
        projectNumber: 123456789012,
        zone: 'us-central1-a',
        instanceId: '9223372036854775809',
        instanceName: 'runner-1',
      },
    });
    const ticket = await client.verifyIdToken({ idToken: token, audience: 'https://proxy.example' });
    const payload = ticket.getPayload() as unknown as { google: { compute_engine: { instance_id: string } } };
    expect(payload.google.compute_engine.instance_id).toBe('9223372036854775809');
    expect(issuer.controls.callsTo('GET', '/oauth2/v1/certs')).toHaveLength(1);
  });

  it('signs with a key it does not publish when asked to', async () => {
    const client = new OAuth2Client({ endpoints: { oauth2FederatedSignonPemCertsUrl: issuer.certsUrl } });
    const token = issuer.mintIdentityToken({ audience: 'a' }, { signing: 'rs256-other-key' });
    await expect(client.verifyIdToken({ idToken: token, audience: 'a' })).rejects.toThrow(/signature/);
  });
});
