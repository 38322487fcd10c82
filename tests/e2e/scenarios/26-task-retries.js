// Workflow task retries: the first failure is recorded (WorkflowTaskFailed); the
// retries are transient, as in Temporal: attempt 2 failing again writes nothing,
// and the attempt that succeeds is written with its attempt number.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('task-retries', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    // the worker reports only the first failure; later attempts time out (2 s here)
    const handle = await client.workflow.start('flakyTask', {
      taskQueue, workflowId: uniqueId('flaky'), workflowTaskTimeout: '2s',
    });
    assert.equal(await handle.result(), 'task ok');
    const hist = await handle.fetchHistory();
    h.assertContiguousIds(hist);
    h.assertEventTypes(hist, [
      'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_FAILED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED', 'WORKFLOW_EXECUTION_COMPLETED',
    ]);
    const retry = hist.events[4].workflowTaskScheduledEventAttributes;
    assert.ok(retry.attempt >= 3, `the successful attempt is written with its number (${retry.attempt})`);
  });
}, { timeoutMs: 30000 });
