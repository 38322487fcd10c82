// Server-side activity retries: a flaky activity succeeds on attempt 3 with
// no events for the failed attempts; an always-failing one exhausts
// maximumAttempts and the workflow sees the last failure.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('retry', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const r = await client.workflow.start('retrying', {
      taskQueue, workflowId: uniqueId('retry'), args: [uniqueId('key')],
    });
    assert.equal(await r.result(), 'ok on attempt 3 (calls 3)');
    const hist = await r.fetchHistory();
    h.assertContiguousIds(hist);
    const started = h.firstEvent(hist, 'ACTIVITY_TASK_STARTED').activityTaskStartedEventAttributes;
    assert.equal(started.attempt, 3);
    assert.equal(started.lastFailure.message, 'flaky attempt 2');
    assert.equal(hist.events.filter((e) => e.activityTaskStartedEventAttributes).length, 1);

    const x = await client.workflow.start('exhausting', {
      taskQueue, workflowId: uniqueId('exhaust'),
    });
    const res = await x.result();
    assert.match(res, /^failed after retries: always fails/);
    const xh = await x.fetchHistory();
    const failed = h.firstEvent(xh, 'ACTIVITY_TASK_FAILED').activityTaskFailedEventAttributes;
    // RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED = 4 (enums/v1/workflow.proto)
    assert.equal(Number(failed.retryState), 4);
    const st = h.firstEvent(xh, 'ACTIVITY_TASK_STARTED').activityTaskStartedEventAttributes;
    assert.equal(st.attempt, 3);
  });
});
