import { parseTraceContext } from '#shared';

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
