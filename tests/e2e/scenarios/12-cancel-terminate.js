// Cancellation (the workflow cleans up, then is CANCELED) and termination.
'use strict';

const assert = require('node:assert/strict');
const { WorkflowFailedError, CancelledFailure, TerminatedFailure } =
  require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { expectRejects } = require('../lib/expect');
const h = require('../lib/history');

scenario('cancel-terminate', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const c = await client.workflow.start('cancellable', {
      taskQueue, workflowId: uniqueId('cancel'),
    });
    await c.cancel();
    const err = await expectRejects(c.result(), WorkflowFailedError, 'canceled result');
    assert.ok(err.cause instanceof CancelledFailure, `cause: ${err.cause}`);
    assert.equal((await c.describe()).status.name, 'CANCELLED');
    const ch = await c.fetchHistory();
    h.assertContiguousIds(ch);
    assert.ok(h.firstEvent(ch, 'WORKFLOW_EXECUTION_CANCEL_REQUESTED'));
    assert.ok(h.firstEvent(ch, 'ACTIVITY_TASK_COMPLETED'), 'cleanup activity ran');
    assert.equal(ch.events[ch.events.length - 1].workflowExecutionCanceledEventAttributes
      ? 'ok' : 'no', 'ok');

    const t = await client.workflow.start('waitForever', {
      taskQueue, workflowId: uniqueId('term'),
    });
    await t.terminate('enough');
    const terr = await expectRejects(t.result(), WorkflowFailedError, 'terminated');
    assert.ok(terr.cause instanceof TerminatedFailure, `cause: ${terr.cause}`);
    const d = await t.describe();
    assert.equal(d.status.name, 'TERMINATED');
    const th = await t.fetchHistory();
    const last = th.events[th.events.length - 1];
    assert.equal(last.workflowExecutionTerminatedEventAttributes.reason, 'enough');
  });
});
