// Workflow retry policies: a run that fails retryably starts again as the next run of the
// same workflow (attempt + 1, initiator RETRY, the failure as continuedFailure, after the
// policy's backoff), and the client's result follows the chain; maximumAttempts and
// nonRetryableErrorTypes end it, each close saying why in its retryState. A retried child
// keeps its parent waiting for the chain's end.
'use strict';

const assert = require('node:assert/strict');
const { WorkflowFailedError } = require('@temporalio/client');
const { temporal } = require('@temporalio/proto');
const { scenario } = require('../lib/harness');
const { durationMs: ms, listRuns: runs } = require('../lib/history');

const RS = temporal.api.enums.v1.RetryState;
const RETRY = temporal.api.enums.v1.ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_RETRY;

async function awaitRuns(client, workflowId, n) {
  let got = [];
  for (let i = 0; i < 100 && got.length < n; i++) {
    got = await runs(client, workflowId);
    if (got.length < n) await new Promise((r) => setTimeout(r, 50));
  }
  return got;
}

const lastEvent = async (client, id, runId) => {
  const h = await client.workflow.getHandle(id, runId).fetchHistory();
  return { first: h.events[0], last: h.events[h.events.length - 1] };
};

scenario('workflow-retry', async ({ client, taskQueue, withWorker, uniqueId, step }) => {
  await withWorker(async () => {
    step('retried until it succeeds: three runs in a chain');
    const id = uniqueId('wretry');
    const h = await client.workflow.start('flakyWorkflow', {
      taskQueue, workflowId: id, args: [3],
      retry: { initialInterval: '100ms', backoffCoefficient: 2, maximumAttempts: 5 },
    });
    assert.equal(await h.result(), 'succeeded on attempt 3');
    const chain = await awaitRuns(client, id, 3);
    assert.deepEqual(chain.map((r) => r.status), ['FAILED', 'FAILED', 'COMPLETED']);
    for (let k = 0; k < 3; k++) {
      const { first, last } = await lastEvent(client, id, chain[k].runId);
      const s = first.workflowExecutionStartedEventAttributes;
      assert.equal(s.attempt, k + 1);
      if (k > 0) {
        assert.equal(s.initiator, RETRY);
        assert.equal(s.continuedExecutionRunId, chain[k - 1].runId);
        assert.equal(s.firstExecutionRunId, chain[0].runId);
        assert.equal(s.continuedFailure.message, `attempt ${k} failed`);
        assert.equal(ms(s.firstWorkflowTaskBackoff), 100 * 2 ** (k - 1));
      }
      if (k < 2) {
        const f = last.workflowExecutionFailedEventAttributes;
        assert.equal(f.retryState, RS.RETRY_STATE_IN_PROGRESS);
        assert.equal(f.newExecutionRunId, chain[k + 1].runId);
      }
    }

    step('maximumAttempts ends the chain');
    const id2 = uniqueId('wretry-max');
    const h2 = await client.workflow.start('flakyWorkflow', {
      taskQueue, workflowId: id2, args: [5], retry: { initialInterval: '50ms', maximumAttempts: 2 },
    });
    await assert.rejects(h2.result(), (err) => err instanceof WorkflowFailedError);
    const chain2 = await awaitRuns(client, id2, 2);
    assert.equal(chain2.length, 2);
    const end2 = (await lastEvent(client, id2, chain2[1].runId)).last
      .workflowExecutionFailedEventAttributes;
    assert.equal(end2.retryState, RS.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED);
    assert.ok(!end2.newExecutionRunId);

    step('a non-retryable error type is not retried');
    const id3 = uniqueId('wretry-nr');
    const h3 = await client.workflow.start('flakyWorkflow', {
      taskQueue, workflowId: id3, args: [3],
      retry: { initialInterval: '50ms', nonRetryableErrorTypes: ['Flaky'] },
    });
    await assert.rejects(h3.result(), (err) => err instanceof WorkflowFailedError);
    const chain3 = await runs(client, id3);
    assert.equal(chain3.length, 1);
    const end3 = (await lastEvent(client, id3, chain3[0].runId)).last
      .workflowExecutionFailedEventAttributes;
    assert.equal(end3.retryState, RS.RETRY_STATE_NON_RETRYABLE_FAILURE);

    step('a retried child: its parent waits for the chain and gets its last result');
    const pid = uniqueId('wretry-parent');
    assert.equal(await client.workflow.execute('parentOfFlaky', {
      taskQueue, workflowId: pid, args: [2],
    }), 'succeeded on attempt 2');
    const ph = await client.workflow.getHandle(pid).fetchHistory();
    const done = ph.events.filter((e) => e.childWorkflowExecutionCompletedEventAttributes);
    assert.equal(done.length, 1);
    assert.equal(ph.events.filter((e) => e.childWorkflowExecutionFailedEventAttributes).length, 0);

    step('without a policy: RETRY_POLICY_NOT_SET, one run');
    const id4 = uniqueId('wretry-none');
    const h4 = await client.workflow.start('flakyWorkflow', { taskQueue, workflowId: id4, args: [3] });
    await assert.rejects(h4.result(), (err) => err instanceof WorkflowFailedError);
    const end4 = (await lastEvent(client, id4, h4.firstExecutionRunId)).last
      .workflowExecutionFailedEventAttributes;
    assert.equal(end4.retryState, RS.RETRY_STATE_RETRY_POLICY_NOT_SET);
  });
}, { timeoutMs: 40000 });
