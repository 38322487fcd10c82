// Durable timers: StartTimer fires (TimerStarted/TimerFired in history), and
// a canceled timer writes TimerCanceled.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('timer', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const t0 = Date.now();
    const handle = await client.workflow.start('sleeper', {
      taskQueue, workflowId: uniqueId('sleep'), args: [1200],
    });
    assert.equal(await handle.result(), 'slept 1200');
    assert.ok(Date.now() - t0 >= 1200, 'the timer must not fire early');
    const history = await handle.fetchHistory();
    h.assertContiguousIds(history);
    h.assertEventTypes(history, [
      'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED',
      'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED', 'TIMER_STARTED',
      'TIMER_FIRED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED',
      'WORKFLOW_TASK_COMPLETED', 'WORKFLOW_EXECUTION_COMPLETED',
    ]);
    const fired = h.firstEvent(history, 'TIMER_FIRED').timerFiredEventAttributes;
    assert.equal(Number(fired.startedEventId), 5);

    const c = await client.workflow.start('cancelTimer', {
      taskQueue, workflowId: uniqueId('canceltimer'),
    });
    assert.equal(await c.result(), 'timer canceled');
    const ch = await c.fetchHistory();
    assert.ok(h.firstEvent(ch, 'TIMER_CANCELED'), 'TIMER_CANCELED in history');
  });
});
