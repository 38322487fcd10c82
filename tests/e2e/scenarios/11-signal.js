// Signals: SignalWorkflowExecution delivers in order, signals sent while a
// workflow task runs are buffered, SignalWithStart starts or signals.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const { WorkflowNotFoundError } = require('@temporalio/client');
const { expectRejects } = require('../lib/expect');
const h = require('../lib/history');

scenario('signal', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const handle = await client.workflow.start('summer', {
      taskQueue, workflowId: uniqueId('sum'),
    });
    for (let i = 1; i <= 10; i++) await handle.signal('add', i);
    await handle.signal('done');
    assert.equal(await handle.result(), 55);
    const history = await handle.fetchHistory();
    h.assertContiguousIds(history);
    const signals = history.events.filter((e) => e.workflowExecutionSignaledEventAttributes);
    assert.equal(signals.length, 11);

    // SignalWithStart: starts a new run, then signals the running one.
    const id = uniqueId('sws');
    const s1 = await client.workflow.signalWithStart('summer', {
      taskQueue, workflowId: id, signal: 'add', signalArgs: [5],
    });
    const s2 = await client.workflow.signalWithStart('summer', {
      taskQueue, workflowId: id, signal: 'add', signalArgs: [7],
    });
    assert.equal(s1.signaledRunId, s2.signaledRunId);
    await s2.signal('done');
    assert.equal(await s2.result(), 12);

    // Signalling a closed workflow fails with NOT_FOUND (the SDK's WorkflowNotFoundError).
    await expectRejects(handle.signal('add', 1), WorkflowNotFoundError, 'signal after completion');
  });
});
