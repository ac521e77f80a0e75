import { createKeyedMutex } from '#instance-deleter';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('createKeyedMutex', () => {
  it('runs tasks under one key one at a time, in arrival order', async () => {
    const mutex = createKeyedMutex();
    const events: string[] = [];
    const task = (name: string) => async () => {
      events.push(`${name} start`);
      await tick();
      events.push(`${name} end`);
      return name;
    };

    const results = await Promise.all([
      mutex.run('a', task('1')),
      mutex.run('a', task('2')),
      mutex.run('a', task('3')),
    ]);

    expect(results).toEqual(['1', '2', '3']);
    expect(events).toEqual(['1 start', '1 end', '2 start', '2 end', '3 start', '3 end']);
    expect(mutex.size).toBe(0);
  });

  it('runs tasks under different keys concurrently', async () => {
    const mutex = createKeyedMutex();
    const events: string[] = [];
    const task = (name: string) => async () => {
      events.push(`${name} start`);
      await tick();
      events.push(`${name} end`);
    };

    await Promise.all([mutex.run('a', task('a')), mutex.run('b', task('b'))]);

    expect(events).toEqual(['a start', 'b start', 'a end', 'b end']);
  });

  it('goes on with the queue after a task fails', async () => {
    const mutex = createKeyedMutex();
    const failed = mutex.run('a', async () => {
      throw new Error('boom');
    });
    const next = mutex.run('a', async () => 'next');

    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('next');
    expect(mutex.size).toBe(0);
  });

  it('tryRun runs a task only when nothing runs or waits under its key', async () => {
    const mutex = createKeyedMutex();
    let finish!: () => void;
    const first = mutex.run('a', () => new Promise<string>((resolve) => (finish = () => resolve('first'))));

    const refused = mutex.tryRun('a', async () => 'second');
    const other = mutex.tryRun('b', async () => 'other key');

    expect(refused).toBeUndefined();
    await expect(other).resolves.toBe('other key');
    finish();
    await expect(first).resolves.toBe('first');
    await expect(mutex.tryRun('a', async () => 'after')).resolves.toBe('after');
    expect(mutex.size).toBe(0);
  });

  it('makes run wait behind a task started with tryRun', async () => {
    const mutex = createKeyedMutex();
    const events: string[] = [];
    const tried = mutex.tryRun('a', async () => {
      events.push('tried start');
      await tick();
      events.push('tried end');
    });
    const queued = mutex.run('a', async () => {
      events.push('queued');
    });

    await Promise.all([tried, queued]);

    expect(events).toEqual(['tried start', 'tried end', 'queued']);
  });
});
