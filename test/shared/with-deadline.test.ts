import { HttpError, withDeadline } from '#shared';
import type { Deadline } from '#shared';

const timeout = () => new HttpError(504, 'too slow');

describe('withDeadline', () => {
  it('answers with the work when it finishes in time', async () => {
    await expect(withDeadline(1000, timeout, async () => 'done')).resolves.toBe('done');
  });

  it("passes the work's own failure on", async () => {
    await expect(
      withDeadline(1000, timeout, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
  });

  it('rejects with the timeout error once the time is up, and tells the work it has passed', async () => {
    let seen: Deadline | undefined;
    let release!: () => void;
    const work = (deadline: Deadline) => {
      seen = deadline;
      return new Promise<string>((resolve) => {
        release = () => resolve('late');
      });
    };
    await expect(withDeadline(10, timeout, work)).rejects.toMatchObject({ status: 504, message: 'too slow' });
    expect(seen?.passed).toBe(true);
    await expect(seen?.expired).rejects.toMatchObject({ status: 504 });
    release(); // a late result reaches no one
  });

  it('has not passed while the work runs in time', async () => {
    const passed = await withDeadline(1000, timeout, async (deadline) => deadline.passed);
    expect(passed).toBe(false);
  });
});
