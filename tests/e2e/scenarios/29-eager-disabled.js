// Eager activity dispatch turned off by Temporal's dynamic-config key
// (--dynamic-config-value system.enableActivityEagerExecution=false): the
// SDK still asks, the server declines, and the activity is polled; the
// result and the history are the same.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('eager-disabled', async ({ client, taskQueue, withWorker, uniqueId,
  sdkMetrics }) => {
  const workflowId = uniqueId('no-eager');
  await withWorker(async () => {
    sdkMetrics();
    const handle = await client.workflow.start('hello', {
      args: ['Polled'], taskQueue, workflowId,
    });
    assert.equal(await handle.result(), 'Hello, Polled!');
    const n = { eager: 0, polled: 0 };
    for (const u of sdkMetrics()) {
      if (!/activity_task_received$/.test(u.metric.name)) continue;
      const eager = u.attributes.eager === true || u.attributes.eager === 'true';
      n[eager ? 'eager' : 'polled'] += u.value;
    }
    assert.deepEqual(n, { eager: 0, polled: 1 },
      'the activity task came through PollActivityTaskQueue');
    const history = await handle.fetchHistory();
    h.assertContiguousIds(history);
    assert.equal(h.toNumber(h.firstEvent(history, 'ACTIVITY_TASK_COMPLETED')
      .activityTaskCompletedEventAttributes.startedEventId), 6);
  });
}, {
  metrics: true,
  serverArgs: ['--dynamic-config-value',
    'system.enableActivityEagerExecution=false'],
});
