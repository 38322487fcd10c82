// The canonical hello workflow: one activity, result, describe, and the
// exact 11-event history the real Temporal server produces.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('hello', async ({ client, taskQueue, withWorker, uniqueId }) => {
  const workflowId = uniqueId('hello');
  await withWorker(async () => {
    const handle = await client.workflow.start('hello', {
      args: ['Temporal'], taskQueue, workflowId,
    });
    assert.equal(await handle.result(), 'Hello, Temporal!');

    const desc = await handle.describe();
    assert.equal(desc.status.name, 'COMPLETED');
    assert.equal(desc.type, 'hello');
    assert.equal(desc.taskQueue, taskQueue);
    assert.equal(desc.workflowId, workflowId);
    assert.equal(desc.runId, handle.firstExecutionRunId);

    const history = await handle.fetchHistory();
    h.assertContiguousIds(history);
    h.assertEventTypes(history, [
      'WORKFLOW_EXECUTION_STARTED',
      'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED',
      'ACTIVITY_TASK_SCHEDULED',
      'ACTIVITY_TASK_STARTED',
      'ACTIVITY_TASK_COMPLETED',
      'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED',
      'WORKFLOW_EXECUTION_COMPLETED',
    ]);

    const started = h.firstEvent(history, 'WORKFLOW_EXECUTION_STARTED')
      .workflowExecutionStartedEventAttributes;
    assert.equal(started.workflowType.name, 'hello');
    assert.equal(started.taskQueue.name, taskQueue);
    assert.equal(h.decodeFirst(started.input), 'Temporal');

    const sched = h.firstEvent(history, 'ACTIVITY_TASK_SCHEDULED')
      .activityTaskScheduledEventAttributes;
    assert.equal(sched.activityType.name, 'greet');
    assert.equal(h.decodeFirst(sched.input), 'Temporal');

    const actDone = h.firstEvent(history, 'ACTIVITY_TASK_COMPLETED')
      .activityTaskCompletedEventAttributes;
    assert.equal(h.decodeFirst(actDone.result), 'Hello, Temporal!');
    assert.equal(h.toNumber(actDone.scheduledEventId), 5);
    assert.equal(h.toNumber(actDone.startedEventId), 6);

    const done = h.firstEvent(history, 'WORKFLOW_EXECUTION_COMPLETED')
      .workflowExecutionCompletedEventAttributes;
    assert.equal(h.decodeFirst(done.result), 'Hello, Temporal!');
    assert.equal(h.toNumber(done.workflowTaskCompletedEventId), 10);
  });
});
