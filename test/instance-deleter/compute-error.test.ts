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

  it('cuts long messages', () => {
    const error = toComputeError({ status: 400, message: body('x'.repeat(1000)) });
    expect(error.computeMessage).toHaveLength(301);
  });
});

describe('computeFailure', () => {
  it.each([
    [403, 403, 'Compute Engine refused to read MIG m: permission denied (why)'],
    [404, 404, 'Compute Engine could not read MIG m: not found (why)'],
    [429, 502, 'Compute Engine failed to read MIG m: HTTP 429 (why)'],
    [0, 502, 'Compute Engine failed to read MIG m (why)'],
  ])('maps Compute %i to %i', (computeStatus, status, message) => {
    expect(computeFailure(new ComputeError(computeStatus, 'why'), 'read MIG m')).toMatchObject({
      status,
      message,
    });
  });
});
