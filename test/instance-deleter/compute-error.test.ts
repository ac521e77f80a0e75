import { ComputeError, computeFailure, toComputeError } from '#instance-deleter';

const body = (message: string) =>
  JSON.stringify({ error: { code: 403, message, errors: [{ message, reason: 'forbidden' }] } });

describe('toComputeError', () => {
  it.each([
    ['a GaxiosError with a Google body', { status: 403, code: 403, message: body('denied') }, 403, 'denied'],
    ['a body that is not JSON', { status: 502, message: '<html>Bad Gateway</html>' }, 502, ''],
    ['a JSON body of another shape', { status: 500, message: '{"message":"x"}' }, 500, ''],
    ['a network error', { code: 'ECONNRESET', message: 'socket hang up' }, 0, ''],
    ['a gax deadline (gRPC code 4)', { code: 4, message: 'Total timeout exceeded' }, 0, ''],
    ['nothing', undefined, 0, ''],
  ])('classifies %s', (_, error, status, message) => {
    expect(toComputeError(error)).toMatchObject({ status, computeMessage: message });
  });

  it("keeps Compute's Retry-After, in seconds", () => {
    const response = { headers: new Headers({ 'Retry-After': '7' }) };
    expect(toComputeError({ status: 429, message: body('slow down'), response })).toMatchObject({
      status: 429,
      retryAfterSeconds: 7,
    });
    const date = { headers: new Headers({ 'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT' }) };
    expect(toComputeError({ status: 429, response: date }).retryAfterSeconds).toBeUndefined();
  });

  it('cuts long messages', () => {
    const error = toComputeError({ status: 400, message: body('x'.repeat(1000)) });
    expect(error.computeMessage).toHaveLength(301);
  });
});

describe('computeFailure', () => {
  it.each([
    [403, 403, 'Compute Engine refused to read MIG m: permission denied (why)'],
    [404, 404, 'Compute Engine could not read MIG m: not found (why)'],
    [
      429,
      503,
      'Compute Engine is rate-limiting the instance deleter, which could not read MIG m (why); ask again later',
    ],
    [500, 502, 'Compute Engine failed to read MIG m: HTTP 500 (why)'],
    [0, 502, 'Compute Engine failed to read MIG m (why)'],
  ])('maps Compute %i to %i', (computeStatus, status, message) => {
    expect(computeFailure(new ComputeError(computeStatus, 'why'), 'read MIG m')).toMatchObject({
      status,
      message,
    });
  });

  it('tells the caller when to ask again after a 503', () => {
    expect(computeFailure(new ComputeError(429, '', 'http', 30), 'read MIG m').headers).toEqual({
      'Retry-After': '30',
    });
    expect(computeFailure(new ComputeError(429, ''), 'read MIG m').headers).toEqual({ 'Retry-After': '10' });
  });

  it.each([
    ['timeout', 504, 'Compute Engine did not answer in time to read MIG m; ask again later', {}],
    [
      'credentials',
      503,
      'the instance deleter could not get its own credentials to read MIG m (no credentials within 5 s); ask again later',
      { 'Retry-After': '10' },
    ],
  ] as const)('maps a failure of kind %s to %i', (kind, status, message, headers) => {
    const error = new ComputeError(
      0,
      kind === 'timeout' ? 'no answer within 10 s' : 'no credentials within 5 s',
      kind,
    );
    expect(computeFailure(error, 'read MIG m')).toMatchObject({ status, message, headers });
  });
});
