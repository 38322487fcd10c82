// Eager workflow start: a client sharing its NativeConnection with a worker
// of the task queue asks for the first workflow task back in the
// StartWorkflowExecution reply (requestEagerStart, request_eager_execution
// on the wire). The server, with system.enableEagerWorkflowStart on (our
// default), starts that task in the start's own transaction and returns it;
// sdk-core hands it to the worker, which never polls for it. A task the
// worker did not take would time out (10 s) and show in the history, so an
// exact history proves the eager task was the one that ran.
'use strict';

const assert = require('node:assert/strict');
const { Client } = require('@temporalio/client');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('eager-start', async ({ connection, nativeConnection, taskQueue, withWorker,
  uniqueId, step }) => {
  const info = await connection.workflowService.getSystemInfo({});
  assert.equal(info.capabilities.eagerWorkflowStart, true,
    'GetSystemInfo advertises eager workflow start');
  const client = new Client({ connection: await nativeConnection(), namespace: 'default' });
  const workflowId = uniqueId('eager-start');
  await withWorker(async () => {
    const t0 = Date.now();
    const handle = await client.workflow.start('hello', {
      args: ['Eager'], taskQueue, workflowId, requestEagerStart: true,
    });
    assert.equal(handle.eagerlyStarted, true, 'the reply carried the first task');
    assert.equal(await handle.result(), 'Hello, Eager!');
    step(`result after ${Date.now() - t0} ms`);
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
    const started = h.firstEvent(history, 'WORKFLOW_TASK_STARTED')
      .workflowTaskStartedEventAttributes;
    assert.equal(h.toNumber(started.scheduledEventId), 2);
  });

  step('without requestEagerStart: an ordinary start, polled');
  const handle = await client.workflow.start('hello', {
    args: ['Plain'], taskQueue, workflowId: uniqueId('plain-start'),
  });
  assert.equal(handle.eagerlyStarted, false);
  await withWorker(async () => {
    assert.equal(await handle.result(), 'Hello, Plain!');
  });
});
