// An activity that fails non-retryably surfaces in the workflow as an
// ActivityFailure the workflow can catch; history shows ACTIVITY_TASK_FAILED.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('activity-failure', async ({ client, taskQueue, withWorker,
  uniqueId }) => {
  await withWorker(async () => {
    const handle = await client.workflow.start('catchActivityFailure', {
      args: ['x'], taskQueue, workflowId: uniqueId('actfail'),
    });
    assert.equal(await handle.result(), 'caught: bad input');

    const history = await handle.fetchHistory();
    h.assertContiguousIds(history);
    h.assertEventTypes(history, [
      'WORKFLOW_EXECUTION_STARTED',
      'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED',
      'ACTIVITY_TASK_SCHEDULED',
      'ACTIVITY_TASK_STARTED',
      'ACTIVITY_TASK_FAILED',
      'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED',
      'WORKFLOW_EXECUTION_COMPLETED',
    ]);
    const failed = h.firstEvent(history, 'ACTIVITY_TASK_FAILED')
      .activityTaskFailedEventAttributes;
    assert.equal(failed.failure.message, 'bad input');
    assert.equal(failed.failure.applicationFailureInfo.type, 'BadInput');
    assert.equal(failed.failure.applicationFailureInfo.nonRetryable, true);
    assert.equal(h.toNumber(failed.scheduledEventId), 5);
  });
});
