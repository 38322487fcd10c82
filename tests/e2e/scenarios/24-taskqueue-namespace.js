// DescribeTaskQueue lists the worker that polls; UpdateNamespace changes the
// description and retention that DescribeNamespace then reports.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');

scenario('taskqueue-namespace', async ({ client, taskQueue, withWorker }) => {
  const svc = client.connection.workflowService;
  await withWorker({ identity: 'e2e-poller@test' }, async () => {
    let pollers = [];
    for (let i = 0; i < 100 && !pollers.length; i++) {
      const d = await svc.describeTaskQueue({
        namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType: 1,
      });
      pollers = d.pollers;
      if (!pollers.length) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(pollers.some((p) => p.identity === 'e2e-poller@test'), JSON.stringify(pollers));
    const acts = await svc.describeTaskQueue({
      namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType: 2,
    });
    assert.ok(acts.pollers.some((p) => p.identity === 'e2e-poller@test'));
  });

  await svc.registerNamespace({ namespace: 'e2e-upd', workflowExecutionRetentionPeriod: { seconds: 86400 } });
  const upd = await svc.updateNamespace({
    namespace: 'e2e-upd',
    updateInfo: { description: 'changed' },
    config: { workflowExecutionRetentionTtl: { seconds: 2 * 86400 } },
  });
  assert.equal(upd.namespaceInfo.description, 'changed');
  const d = await svc.describeNamespace({ namespace: 'e2e-upd' });
  assert.equal(d.namespaceInfo.description, 'changed');
  assert.equal(Number(d.config.workflowExecutionRetentionTtl.seconds), 2 * 86400);
  let err = null;
  try {
    await svc.updateNamespace({ namespace: 'nope-ns', updateInfo: { description: 'x' } });
  } catch (e) { err = e; }
  assert.equal(err && err.code, 5);
});
