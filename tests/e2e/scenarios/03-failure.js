// A workflow that throws a non-retryable ApplicationFailure fails the run:
// the client sees WorkflowFailedError wrapping the failure, describe says
// FAILED, and history closes with WORKFLOW_EXECUTION_FAILED.
'use strict';

const assert = require('node:assert/strict');
const { ApplicationFailure, WorkflowFailedError } =
  require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { expectRejects } = require('../lib/expect');
const h = require('../lib/history');

scenario('failure', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const handle = await client.workflow.start('failing', {
      taskQueue, workflowId: uniqueId('fail'),
    });
    const err = await expectRejects(handle.result(), WorkflowFailedError,
      'result of failing workflow');
    assert.ok(err.cause instanceof ApplicationFailure,
      `cause should be ApplicationFailure, got ${err.cause && err.cause.name}`);
    assert.equal(err.cause.message, 'boom');
    assert.equal(err.cause.type, 'MyError');
    assert.equal(err.cause.nonRetryable, true);

    const desc = await handle.describe();
    assert.equal(desc.status.name, 'FAILED');

    const history = await handle.fetchHistory();
    h.assertContiguousIds(history);
    h.assertEventTypes(history, [
      'WORKFLOW_EXECUTION_STARTED',
      'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED',
      'WORKFLOW_EXECUTION_FAILED',
    ]);
    const failed = h.firstEvent(history, 'WORKFLOW_EXECUTION_FAILED')
      .workflowExecutionFailedEventAttributes;
    assert.equal(failed.failure.message, 'boom');
    assert.equal(failed.failure.applicationFailureInfo.type, 'MyError');
  });
});
