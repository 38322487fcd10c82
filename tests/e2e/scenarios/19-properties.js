// UpsertWorkflowSearchAttributes / ModifyWorkflowProperties (memo) merge into
// what describe() shows; a workflow cancels another (RequestCancelExternal).
'use strict';

const assert = require('node:assert/strict');
const { WorkflowFailedError, CancelledFailure } = require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { expectRejects } = require('../lib/expect');
const h = require('../lib/history');

scenario('properties', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const a = await client.workflow.start('annotated', {
      taskQueue, workflowId: uniqueId('ann'), memo: { origin: 'e2e' },
    });
    assert.equal(await a.result(), 'annotated');
    const d = await a.describe();
    assert.deepEqual(d.memo, { origin: 'e2e', note: 'hello' });
    assert.deepEqual(d.searchAttributes.CustomKeywordField, ['second']);
    assert.deepEqual(d.searchAttributes.CustomIntField, [42]);
    const ah = await a.fetchHistory();
    assert.equal(ah.events.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length, 2);
    assert.ok(h.firstEvent(ah, 'WORKFLOW_PROPERTIES_MODIFIED'));

    const target = await client.workflow.start('cancellable', {
      taskQueue, workflowId: uniqueId('target'),
    });
    const c = await client.workflow.start('canceller', {
      taskQueue, workflowId: uniqueId('canceller'), args: [target.workflowId],
    });
    assert.equal(await c.result(), 'cancel requested');
    const err = await expectRejects(target.result(), WorkflowFailedError, 'canceled target');
    assert.ok(err.cause instanceof CancelledFailure);
    const ch = await c.fetchHistory();
    assert.ok(h.firstEvent(ch, 'EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED'));
  });
});
