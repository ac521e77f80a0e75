import { createCallerLimit } from '#instance-deleter';

describe('createCallerLimit', () => {
  it('lets a caller in once at a time, and other callers meanwhile', () => {
    const limit = createCallerLimit();

    const leave = limit.tryEnter('vm-1');
    expect(leave).toBeDefined();
    expect(limit.tryEnter('vm-1')).toBeUndefined();
    const other = limit.tryEnter('vm-2');
    expect(other).toBeDefined();
    expect(limit.size).toBe(2);

    leave!();
    other!();
    expect(limit.size).toBe(0);
    expect(limit.tryEnter('vm-1')).toBeDefined();
  });

  it('frees a place once however many times it is left', () => {
    const limit = createCallerLimit();
    const leave = limit.tryEnter('vm-1')!;
    leave();
    const again = limit.tryEnter('vm-1');

    leave();

    expect(again).toBeDefined();
    expect(limit.tryEnter('vm-1')).toBeUndefined();
  });
});
