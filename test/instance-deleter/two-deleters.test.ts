import request from 'supertest';
import type { FakeInstance, FakeMig } from '#fakes/compute-api';
import {
  buildDeleter,
  DELETER_PROJECT,
  DELETER_REGION,
  DELETER_ZONE,
  startDeleterFakes,
} from '#test-support/deleter-harness';
import type { Deleter, DeleterFakes } from '#test-support/deleter-harness';
import type { ComputeClient } from '#instance-deleter';

/** A promise and the function that settles it: a test holds a Compute call until something has happened. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

// Issue 15 §6: the per-MIG lock of DELETE /?if=scale-down lives in one process. Two deleters built here
// stand for two instances of the service: separate locks and shared reads, one Compute Engine. The
// deployment runs a single instance (deploy/instance-deleter.sh: --max-instances=1, --concurrency); these
// tests show what still holds between two processes and what does not.
describe('two instance deleter processes against one Compute Engine', () => {
  let fakes: DeleterFakes;
  let mig: FakeMig;
  let vms: FakeInstance[];

  beforeEach(async () => {
    // Deleted VMs stay DELETING (the MIG unstable) until the test finishes their deletion.
    fakes = await startDeleterFakes({ deletionDelayMs: Infinity });
    // Three idle VMs; the autoscaler wants two.
    mig = fakes.compute.addMig({
      project: DELETER_PROJECT.projectId,
      region: DELETER_REGION,
      name: 'gh-runner-presubmit',
      autoscaler: { recommendedSize: 2 },
    });
    vms = ['a', 'b', 'c'].map((name) =>
      fakes.compute.addInstance({
        project: DELETER_PROJECT.projectId,
        zone: DELETER_ZONE,
        name: `gh-runner-presubmit-${name}`,
        mig,
      }),
    );
  });
  afterEach(() => fakes.close());

  const ifScaleDown = (deleter: Deleter, vm: FakeInstance) =>
    request(deleter.app)
      .delete('/?if=scale-down')
      .set('Authorization', `Bearer ${deleter.token(vm)}`);
  const deleteCalls = () => fakes.compute.controls.callsTo('POST', /\/deleteInstances$/);

  it('once one process has deleted a VM, the other keeps its VMs: of three idle VMs asking at once, one goes', async () => {
    const firstDeleted = gate();
    const first = buildDeleter(fakes, {
      wrapCompute: (compute): ComputeClient => ({
        ...compute,
        deleteInstance: async (...args) => {
          await compute.deleteInstance(...args);
          firstDeleted.open();
        },
      }),
    });
    // The second process reads the MIG only after the first process's deletion was accepted.
    const second = buildDeleter(fakes, {
      wrapCompute: (compute): ComputeClient => ({
        ...compute,
        getMig: async (ref) => {
          await firstDeleted.opened;
          return compute.getMig(ref);
        },
      }),
    });
    const [a, b, c] = vms as [FakeInstance, FakeInstance, FakeInstance];

    const answers = await Promise.all([
      ifScaleDown(first, a),
      ifScaleDown(second, b),
      ifScaleDown(second, c),
    ]);

    expect(answers.map((res) => res.status)).toEqual([200, 200, 200]);
    expect(answers[0]!.body).toMatchObject({ deleted: true, reason: 'above-recommendation' });
    // Of the second process's two: one decided on a MIG that was deleting a's VM, the other did not wait
    // for that decision.
    expect(
      answers
        .slice(1)
        .map((res) => [res.body.deleted, res.body.reason])
        .sort(),
    ).toEqual([
      [false, 'mig-busy'],
      [false, 'mig-unstable'],
    ]);
    expect(deleteCalls()).toHaveLength(1);
    expect(mig.targetSize).toBe(2);

    // Once a's VM is gone the MIG is stable, at its recommendation: the others ask again and stay.
    fakes.compute.completeDeletions();
    const again = await Promise.all([ifScaleDown(second, b), ifScaleDown(first, c)]);
    expect(again.map((res) => res.body.reason)).toEqual([
      'not-above-recommendation',
      'not-above-recommendation',
    ]);
    expect(deleteCalls()).toHaveLength(1);
  });

  it('(the limit) two processes whose reads both come before either deletion both delete: why the deployment runs one instance', async () => {
    // Each process's deletion waits until both have decided: the interleaving a second instance allows.
    let decided = 0;
    const bothDecided = gate();
    const racing = (compute: ComputeClient): ComputeClient => ({
      ...compute,
      getRecommendedSize: async (ref) => {
        const size = await compute.getRecommendedSize(ref);
        if ((decided += 1) === 2) bothDecided.open();
        return size;
      },
      deleteInstance: async (...args) => {
        await bothDecided.opened;
        return compute.deleteInstance(...args);
      },
    });
    const first = buildDeleter(fakes, { wrapCompute: racing });
    const second = buildDeleter(fakes, { wrapCompute: racing });

    const answers = await Promise.all([ifScaleDown(first, vms[0]!), ifScaleDown(second, vms[1]!)]);

    expect(answers.map((res) => res.body.deleted)).toEqual([true, true]);
    expect(deleteCalls()).toHaveLength(2);
    expect(mig.targetSize).toBe(1);
  });
});
