// Child workflows: result and failure delivered to the parent, a signal to an
// external workflow, and the parent close policy (TERMINATE) on a left-over child.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const h = require('../lib/history');

scenario('child', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const id = uniqueId('parent');
    const p = await client.workflow.start('parent', { taskQueue, workflowId: id, args: ['Child'] });
    assert.equal(await p.result(), 'Hello, Child!');
    const ph = await p.fetchHistory();
    h.assertContiguousIds(ph);
    for (const t of ['START_CHILD_WORKFLOW_EXECUTION_INITIATED', 'CHILD_WORKFLOW_EXECUTION_STARTED',
      'CHILD_WORKFLOW_EXECUTION_COMPLETED']) {
      assert.ok(h.firstEvent(ph, t), `${t} in the parent's history`);
    }
    const child = await client.workflow.getHandle(`${id}-child`).describe();
    assert.equal(child.status.name, 'COMPLETED');
    const ch = await client.workflow.getHandle(`${id}-child`).fetchHistory();
    const started = ch.events[0].workflowExecutionStartedEventAttributes;
    assert.equal(started.parentWorkflowExecution.workflowId, id);

    const f = await client.workflow.start('parentOfFailing', { taskQueue, workflowId: uniqueId('pf') });
    assert.equal(await f.result(), 'child failed: boom');

    const s = await client.workflow.start('parentSignalling', { taskQueue, workflowId: uniqueId('ps') });
    assert.equal(await s.result(), 7);
    const sh = await s.fetchHistory();
    assert.equal(sh.events.filter((e) => e.externalWorkflowExecutionSignaledEventAttributes).length, 3);

    const aId = uniqueId('pa');
    const a = await client.workflow.start('parentAbandoning', { taskQueue, workflowId: aId });
    assert.equal(await a.result(), 'parent done');
    const orphan = client.workflow.getHandle(`${aId}-orphan`);
    for (let i = 0; i < 100; i++) {
      if ((await orphan.describe()).status.name !== 'RUNNING') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await orphan.describe()).status.name, 'TERMINATED');
  });
});
