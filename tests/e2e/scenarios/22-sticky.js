// Sticky execution: after the first workflow task, tasks go to the worker's
// sticky queue (WorkflowTaskScheduled names it, kind STICKY). When that worker
// is gone, the task goes back to the normal queue, where another worker
// finishes the workflow from the full history:
//  - a worker that shut down (the SDK calls ShutdownWorker): at once, with no
//    timeout event (Temporal's "sticky worker unavailable");
//  - a worker still polling its sticky queue lately but not taking the task:
//    after the sticky schedule-to-start timeout (WorkflowTaskTimedOut,
//    SCHEDULE_TO_START). The recent poll is a raw one made by the scenario.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

const STICKY = 2; // TaskQueueKind STICKY

async function scheduledQueues(handle) {
  const hist = await handle.fetchHistory();
  h.assertContiguousIds(hist);
  return {
    hist,
    queues: hist.events.filter((e) => e.workflowTaskScheduledEventAttributes)
      .map((e) => e.workflowTaskScheduledEventAttributes.taskQueue),
    timedOut: hist.events.filter((e) => e.workflowTaskTimedOutEventAttributes)
      .map((e) => Number(e.workflowTaskTimedOutEventAttributes.timeoutType)),
  };
}

scenario('sticky', async ({ client, connection, taskQueue, withWorker, uniqueId, step }) => {
  step('a worker that shut down: its sticky tasks go to the normal queue at once');
  const gone = await client.workflow.start('summer', { taskQueue, workflowId: uniqueId('gone') });
  await withWorker({ stickyQueueScheduleToStartTimeout: '20s' }, async () => {
    await gone.signal('add', 1);
    assert.equal(await gone.query('sum'), 1);
    await gone.signal('add', 0); // to the sticky queue (see below)
    assert.equal(await gone.query('sum'), 1);
  });
  await gone.signal('add', 2);
  await withWorker(async () => {
    await gone.signal('done');
    assert.equal(await gone.result(), 3);
  });
  let got = await scheduledQueues(gone);
  assert.ok(got.queues.some((q) => Number(q.kind) === STICKY && q.normalName === taskQueue),
    'a workflow task went to the sticky queue');
  assert.deepEqual(got.timedOut, [], 'no timeout: the shut-down worker\'s sticky queue ' +
    `was left at once:\n${h.formatHistory(got.hist)}`);

  step('a silent worker: its sticky task times out SCHEDULE_TO_START');
  const silent = await client.workflow.start('summer', {
    taskQueue, workflowId: uniqueId('silent') });
  await withWorker({ stickyQueueScheduleToStartTimeout: '1s' }, async () => {
    await silent.signal('add', 1);
    assert.equal(await silent.query('sum'), 1);
    // the worker has run a task and caches the workflow: this one goes to its sticky queue
    await silent.signal('add', 0);
    assert.equal(await silent.query('sum'), 1);
  });
  const sticky = (await scheduledQueues(silent)).queues
    .filter((q) => Number(q.kind) === STICKY).pop();
  assert.ok(sticky, 'a workflow task went to the sticky queue');
  // someone polls that sticky queue again (and gets nothing): it is not gone
  const empty = await connection.withDeadline(Date.now() + 1500, () =>
    connection.workflowService.pollWorkflowTaskQueue({ namespace: 'default',
      taskQueue: { name: sticky.name, kind: STICKY }, identity: 'silent-poller' }));
  assert.ok(!empty.taskToken || empty.taskToken.length === 0, 'the raw poll got a task');
  await silent.signal('add', 2);
  await withWorker(async () => {
    await silent.signal('done');
    assert.equal(await silent.result(), 3);
  });
  got = await scheduledQueues(silent);
  assert.ok(got.timedOut.includes(2), 'the sticky task timed out SCHEDULE_TO_START:\n' +
    h.formatHistory(got.hist));
});
