// Eager activity dispatch: sdk-core asks for it on every activity of its own
// task queue (ScheduleActivityTask.request_eager_execution) and the server,
// with system.enableActivityEagerExecution on (our default), starts the
// activity at once and returns it in the RespondWorkflowTaskCompleted
// response instead of through PollActivityTaskQueue. The SDK's own metric
// activity_task_received{eager=...} tells which way each task came; the
// history and the result must not differ from the polled path.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

// activity_task_received updates by their `eager` attribute.
function receivedBy(updates) {
  const n = { eager: 0, polled: 0 };
  for (const u of updates) {
    if (!/activity_task_received$/.test(u.metric.name)) continue;
    const eager = u.attributes.eager;
    if (eager === true || eager === 'true') n.eager += u.value;
    else n.polled += u.value;
  }
  return n;
}

scenario('eager-activity', async ({ client, taskQueue, withWorker, uniqueId,
  sdkMetrics, step }) => {
  const workflowId = uniqueId('eager');
  await withWorker(async () => {
    sdkMetrics(); // drop what the worker's start emitted
    const handle = await client.workflow.start('hello', {
      args: ['Eager'], taskQueue, workflowId,
    });
    assert.equal(await handle.result(), 'Hello, Eager!');
    step('result; reading the SDK metrics');
    const n = receivedBy(sdkMetrics());
    assert.deepEqual(n, { eager: 1, polled: 0 },
      'the activity task came eagerly, in the workflow task completion reply');

    const history = await handle.fetchHistory();
    h.assertContiguousIds(history);
    h.assertEventTypes(history, [
      'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
      'ACTIVITY_TASK_SCHEDULED', 'ACTIVITY_TASK_STARTED',
      'ACTIVITY_TASK_COMPLETED', 'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
      'WORKFLOW_EXECUTION_COMPLETED',
    ]);
    // started by the worker that completed the workflow task
    const wftDone = h.firstEvent(history, 'WORKFLOW_TASK_COMPLETED')
      .workflowTaskCompletedEventAttributes;
    const started = h.firstEvent(history, 'ACTIVITY_TASK_STARTED')
      .activityTaskStartedEventAttributes;
    assert.equal(started.identity, wftDone.identity);
    assert.equal(started.attempt, 1);
    assert.equal(h.toNumber(started.scheduledEventId), 5);
  });
}, { metrics: true });
