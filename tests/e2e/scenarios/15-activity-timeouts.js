// Activity timeouts: start-to-close (retried, then ActivityTaskTimedOut),
// heartbeat, and schedule-to-close on a queue nobody polls; the workflow sees
// a TimeoutFailure of the right type. Also a workflow run timeout.
'use strict';

const assert = require('node:assert/strict');
const { WorkflowFailedError } = require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { expectRejects } = require('../lib/expect');
const h = require('../lib/history');

// TimeoutType enum (enums/v1/workflow.proto): 1 START_TO_CLOSE, 2 SCHEDULE_TO_START,
// 3 SCHEDULE_TO_CLOSE, 4 HEARTBEAT.
scenario('activity-timeouts', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const slow = await client.workflow.start('timingOut', {
      taskQueue, workflowId: uniqueId('slow'), args: ['slow'],
    });
    assert.equal(await slow.result(), 'TimeoutFailure:START_TO_CLOSE');
    const sh = await slow.fetchHistory();
    h.assertContiguousIds(sh);
    const to = h.firstEvent(sh, 'ACTIVITY_TASK_TIMED_OUT').activityTaskTimedOutEventAttributes;
    assert.equal(Number(to.failure.timeoutFailureInfo.timeoutType), 1);
    assert.equal(Number(to.retryState), 4); // MAXIMUM_ATTEMPTS_REACHED after 2 attempts
    assert.equal(h.firstEvent(sh, 'ACTIVITY_TASK_STARTED').activityTaskStartedEventAttributes
      .attempt, 2);

    const silent = await client.workflow.start('timingOut', {
      taskQueue, workflowId: uniqueId('silent'), args: ['silent'],
    });
    assert.equal(await silent.result(), 'TimeoutFailure:HEARTBEAT');

    const unpicked = await client.workflow.start('timingOut', {
      taskQueue, workflowId: uniqueId('unpicked'), args: ['unpicked'],
    });
    assert.equal(await unpicked.result(), 'TimeoutFailure:SCHEDULE_TO_CLOSE');
    const uh = await unpicked.fetchHistory();
    assert.equal(uh.events.filter((e) => e.activityTaskStartedEventAttributes).length, 0);

    const timed = await client.workflow.start('waitForever', {
      taskQueue, workflowId: uniqueId('runtimeout'), workflowRunTimeout: '500ms',
    });
    await expectRejects(timed.result(), WorkflowFailedError, 'run timeout');
    assert.equal((await timed.describe()).status.name, 'TIMED_OUT');

    // the execution timeout spans continue-as-new: the chain times out as a whole
    const chain = await client.workflow.start('looper', {
      taskQueue, workflowId: uniqueId('exectimeout'), args: [1000000],
      workflowExecutionTimeout: '700ms',
    });
    await expectRejects(chain.result(), WorkflowFailedError, 'execution timeout');
    const latest = await client.workflow.getHandle(chain.workflowId).describe();
    assert.equal(latest.status.name, 'TIMED_OUT');
  });
});
