// Starting a second execution with a running workflow's id is rejected
// with WorkflowExecutionAlreadyStartedError; the first run is untouched.
// The workflow blocks on condition(() => false), which needs no timer; it is
// left running and dies with the server.
'use strict';

const assert = require('node:assert/strict');
const { WorkflowExecutionAlreadyStartedError } = require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { expectRejects } = require('../lib/expect');

scenario('already-started', async ({ client, taskQueue, withWorker,
  uniqueId }) => {
  const workflowId = uniqueId('dup');
  await withWorker(async () => {
    const first = await client.workflow.start('waitForever', {
      taskQueue, workflowId,
    });
    assert.ok(first.firstExecutionRunId, 'start must return a run id');

    const err = await expectRejects(
      client.workflow.start('waitForever', { taskQueue, workflowId }),
      WorkflowExecutionAlreadyStartedError, 'second start, same id');
    assert.equal(err.workflowId, workflowId);
    assert.equal(err.workflowType, 'waitForever');

    // A different workflow type with the same id is rejected just the same.
    const err2 = await expectRejects(
      client.workflow.start('hello', { args: ['x'], taskQueue, workflowId }),
      WorkflowExecutionAlreadyStartedError, 'start of another type, same id');
    assert.equal(err2.workflowId, workflowId);
    assert.equal(err2.workflowType, 'hello');

    const desc = await first.describe();
    assert.equal(desc.status.name, 'RUNNING');
    assert.equal(desc.runId, first.firstExecutionRunId);
    assert.equal(desc.type, 'waitForever');

    // USE_EXISTING answers with the running run; TERMINATE_EXISTING replaces it.
    const same = await client.workflow.start('waitForever', {
      taskQueue, workflowId, workflowIdConflictPolicy: 'USE_EXISTING',
    });
    assert.equal(same.firstExecutionRunId, first.firstExecutionRunId);
    const second = await client.workflow.start('hello', {
      args: ['again'], taskQueue, workflowId, workflowIdConflictPolicy: 'TERMINATE_EXISTING',
    });
    assert.notEqual(second.firstExecutionRunId, first.firstExecutionRunId);
    assert.equal(await second.result(), 'Hello, again!');
    const old = await client.workflow.getHandle(workflowId, first.firstExecutionRunId).describe();
    assert.equal(old.status.name, 'TERMINATED');
  });
});
