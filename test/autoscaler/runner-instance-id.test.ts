import { instanceIdOfLabels } from '#autoscaler';
import { instanceIdLabel } from '#token-proxy';

// The reaper joins runners to VMs on the label the token proxy writes: the two must agree.
describe('the instance-id label, as the autoscaler reads it', () => {
  it.each(['1234567890123456789', '9223372036854775809', '1'])('reads the id the proxy wrote: %s', (id) => {
    expect(instanceIdOfLabels(['self-hosted', instanceIdLabel(id)])).toBe(id);
    expect(instanceIdOfLabels(['self-hosted', instanceIdLabel(id).toUpperCase()])).toBe(id);
  });

  it('reads no id from a runner with none, a malformed one, or two different ones', () => {
    expect(instanceIdOfLabels(['self-hosted', 'linux'])).toBeUndefined();
    expect(instanceIdOfLabels([`${instanceIdLabel('1')}x`])).toBeUndefined();
    expect(instanceIdOfLabels([instanceIdLabel('1'), instanceIdLabel('2')])).toBeUndefined();
  });
});
