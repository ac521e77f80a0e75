import { ComputeAuthClient, ComputeError } from '#instance-deleter';
import type { CredentialSource } from '#instance-deleter';

const TOKEN = 'ya29.compute-auth-client-test-token';

/** A source whose client answers with `headers`, fails with `error`, or never answers. */
function source(behaviour: { headers?: Headers; error?: Error; hang?: boolean }): CredentialSource {
  return {
    getClient: async () => ({
      getRequestHeaders: () => {
        if (behaviour.hang) return new Promise<Headers>(() => {});
        if (behaviour.error) return Promise.reject(behaviour.error);
        return Promise.resolve(behaviour.headers ?? new Headers());
      },
    }),
  };
}

describe('ComputeAuthClient', () => {
  it('signs with the source’s headers and keeps using the same source', async () => {
    const created: CredentialSource[] = [];
    const client = new ComputeAuthClient({
      createSource: () => {
        const made = source({ headers: new Headers({ authorization: `Bearer ${TOKEN}` }) });
        created.push(made);
        return made;
      },
      credentialsTimeoutMs: 1000,
      requestTimeoutMs: 1000,
    });

    const first = await client.getRequestHeaders();
    const token = await client.getAccessToken();

    expect(first.get('authorization')).toBe(`Bearer ${TOKEN}`);
    expect(token.token).toBe(TOKEN);
    expect(created).toHaveLength(1);
  });

  it('fails a source that never answers at its deadline, and makes a new one for the next call', async () => {
    const behaviours = [{ hang: true }, { headers: new Headers({ authorization: `Bearer ${TOKEN}` }) }];
    const client = new ComputeAuthClient({
      createSource: () => source(behaviours.shift()!),
      credentialsTimeoutMs: 50,
      requestTimeoutMs: 1000,
    });

    const failure = await client.getRequestHeaders().catch((error: unknown) => error);
    const next = await client.getRequestHeaders();

    expect(failure).toBeInstanceOf(ComputeError);
    expect(failure).toMatchObject({ kind: 'credentials', computeMessage: 'no credentials within 0.05 s' });
    expect(next.get('authorization')).toBe(`Bearer ${TOKEN}`);
    expect(behaviours).toEqual([]);
  });

  it('reports a failed source without its message, which may quote a token, and drops it', async () => {
    const behaviours = [
      { error: new Error(`Could not refresh access token: ${TOKEN}`) },
      { headers: new Headers({ authorization: 'Bearer fresh' }) },
    ];
    const client = new ComputeAuthClient({
      createSource: () => source(behaviours.shift()!),
      credentialsTimeoutMs: 1000,
      requestTimeoutMs: 1000,
    });

    const failure = await client.getRequestHeaders().catch((error: unknown) => error);

    expect(failure).toMatchObject({
      kind: 'credentials',
      computeMessage: 'credentials could not be obtained',
    });
    expect(String((failure as Error).message)).not.toContain(TOKEN);
    expect((await client.getRequestHeaders()).get('authorization')).toBe('Bearer fresh');
  });
});
