/**
 * The sandbox and the bench pick a port, release it, and start a child process on it. A port from the
 * kernel's ephemeral range could meanwhile go to any `listen(0)`: a concurrent test's sandbox once got
 * another's status page answering on its proxy's port (every request 403). freePort stays below that range.
 */
import fs from 'node:fs';
import net from 'node:net';
import { freePort } from '#sandbox/node-process';

const ephemeralFrom = (() => {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
})();

it('picks free ports below the ephemeral range, where listen(0) never hands them out', async () => {
  for (let i = 0; i < 20; i += 1) {
    const port = await freePort();
    expect(port).toBeGreaterThanOrEqual(10_000);
    expect(port).toBeLessThan(ephemeralFrom);
    // Free: a child can bind it.
    await new Promise<void>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
    });
  }
});
