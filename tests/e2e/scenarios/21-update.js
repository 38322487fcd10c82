// Workflow Update: accepted and completed with a result, a validator rejects
// (no event), startUpdate + result later, and the final state.
'use strict';

const assert = require('node:assert/strict');
const { WorkflowUpdateFailedError } = require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { expectRejects } = require('../lib/expect');
const h = require('../lib/history');

scenario('update', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const handle = await client.workflow.start('counter', { taskQueue, workflowId: uniqueId('upd') });
    assert.equal(await handle.executeUpdate('addAndGet', { args: [5] }), 5);
    assert.equal(await handle.executeUpdate('addAndGet', { args: [3] }), 8);

    await expectRejects(handle.executeUpdate('addAndGet', { args: [-1] }),
      WorkflowUpdateFailedError, 'validator rejects');

    const pending = await handle.startUpdate('addAndGet', {
      args: [2], waitForStage: 'ACCEPTED', updateId: 'third',
    });
    assert.equal(await pending.result(), 10);
    assert.equal(await handle.executeUpdate('finish'), 'bye');
    assert.equal(await handle.result(), 10);

    const hist = await handle.fetchHistory();
    h.assertContiguousIds(hist);
    const accepted = hist.events.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
    const completed = hist.events.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes);
    assert.equal(accepted.length, 4, 'rejected updates leave no event');
    assert.equal(completed.length, 4);
  });
});
