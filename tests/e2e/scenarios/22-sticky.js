// Sticky execution: after the first workflow task, tasks go to the worker's
// sticky queue (WorkflowTaskScheduled names it, kind STICKY); when that worker
// is gone, the task times out (SCHEDULE_TO_START) and another worker finishes
// the workflow from the normal queue with the full history.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('sticky', async ({ client, taskQueue, withWorker, uniqueId }) => {
  const handle = await client.workflow.start('summer', { taskQueue, workflowId: uniqueId('st') });
  await withWorker({ stickyQueueScheduleToStartTimeout: '1s' }, async () => {
    await handle.signal('add', 1);
    assert.equal(await handle.query('sum'), 1);
  });
  // the first worker is gone; its sticky queue has no poller
  await handle.signal('add', 2);
  await withWorker(async () => {
    await handle.signal('done');
    assert.equal(await handle.result(), 3);
  });
  const hist = await handle.fetchHistory();
  h.assertContiguousIds(hist);
  const scheduled = hist.events.filter((e) => e.workflowTaskScheduledEventAttributes)
    .map((e) => e.workflowTaskScheduledEventAttributes.taskQueue);
  assert.ok(scheduled.some((q) => Number(q.kind) === 2 && q.normalName === taskQueue),
    'a workflow task went to the sticky queue');
  const timedOut = hist.events.filter((e) => e.workflowTaskTimedOutEventAttributes)
    .map((e) => Number(e.workflowTaskTimedOutEventAttributes.timeoutType));
  assert.ok(timedOut.includes(2), 'the sticky task timed out SCHEDULE_TO_START');
});
