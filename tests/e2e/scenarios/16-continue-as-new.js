// ContinueAsNew: a chain of runs under one workflow id; the client follows it
// to the last run's result; the first run is CONTINUED_AS_NEW and names the next.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('continue-as-new', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const id = uniqueId('loop');
    const handle = await client.workflow.start('looper', { taskQueue, workflowId: id, args: [3] });
    const firstRunId = handle.firstExecutionRunId;
    assert.equal(await handle.result(), 'total 6 after continuing');

    const first = client.workflow.getHandle(id, firstRunId);
    assert.equal((await first.describe()).status.name, 'CONTINUED_AS_NEW');
    const fh = await first.fetchHistory();
    const last = fh.events[fh.events.length - 1].workflowExecutionContinuedAsNewEventAttributes;
    assert.ok(last && last.newExecutionRunId, 'first run closes with ContinuedAsNew');

    const latest = await client.workflow.getHandle(id).describe();
    assert.equal(latest.status.name, 'COMPLETED');
    assert.notEqual(latest.runId, firstRunId);
    const lh = await client.workflow.getHandle(id).fetchHistory();
    h.assertContiguousIds(lh);
    const started = lh.events[0].workflowExecutionStartedEventAttributes;
    assert.equal(started.firstExecutionRunId, firstRunId);
    assert.ok(started.continuedExecutionRunId, 'continued from the previous run');
  });
});
