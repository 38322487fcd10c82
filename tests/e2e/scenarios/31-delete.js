// DeleteWorkflowExecution: a closed run is deleted (describe, history, list
// no longer see it; its workflow id starts again); a running one is
// terminated first (reason "Delete workflow execution", identity
// "history-service", as Temporal's history service does; its child is
// terminated by the parent close policy) and deleted; an empty run id names
// the current run; unknown executions are NOT_FOUND; bad requests are
// INVALID_ARGUMENT with Temporal's messages. The server answers once the
// deletion is committed, so every check follows the reply at once.
'use strict';

const assert = require('node:assert/strict');
const { WorkflowFailedError, WorkflowNotFoundError, TerminatedFailure } =
  require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { expectGrpcCode, expectRejects } = require('../lib/expect');

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const CLOSE_EVENT = 2; // HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT

// The message of the first gRPC error on err or its causes.
function grpcMessage(err) {
  for (let e = err; e; e = e.cause) {
    if (Number.isInteger(e.code) && 'details' in e) return e.details;
  }
  return undefined;
}

async function expectStatus(promise, code, message, what) {
  const err = await expectGrpcCode(promise, code, what);
  if (message !== undefined) assert.equal(grpcMessage(err), message, `${what}: message`);
  return err;
}

scenario('delete', async ({ connection, client, taskQueue, withWorker, uniqueId, step }) => {
  const svc = connection.workflowService;
  const namespace = 'default';
  const del = (workflowId, runId) =>
    svc.deleteWorkflowExecution({ namespace, workflowExecution: { workflowId, runId } });
  const describe = (workflowId, runId) =>
    svc.describeWorkflowExecution({ namespace, execution: { workflowId, runId } });
  const listIds = async (workflowId) => {
    const ids = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
      ids.push(w.runId);
    }
    return ids;
  };
  const notFoundRun = (id, run) =>
    `Workflow execution not found. WorkflowId: ${id}, RunId: ${run}.`;
  const notFoundId = (id) => `workflow not found for ID: ${id}`;

  step('requests Temporal refuses');
  const some = uniqueId('del-bad');
  await expectStatus(svc.deleteWorkflowExecution({ workflowExecution: { workflowId: some } }),
    INVALID_ARGUMENT, 'Namespace not set on request.', 'no namespace');
  await expectStatus(svc.deleteWorkflowExecution({ namespace: 'no-such-ns',
    workflowExecution: { workflowId: some } }),
  NOT_FOUND, 'Namespace no-such-ns is not found.', 'unknown namespace');
  await expectStatus(svc.deleteWorkflowExecution({ namespace }),
    INVALID_ARGUMENT, 'Execution is not set on request.', 'no execution');
  // the same validation (Temporal's validateExecution) for the other calls naming a run
  await expectStatus(svc.describeWorkflowExecution({ namespace }),
    INVALID_ARGUMENT, 'Execution is not set on request.', 'describe, no execution');
  await expectStatus(svc.terminateWorkflowExecution({ namespace }),
    INVALID_ARGUMENT, 'Execution is not set on request.', 'terminate, no execution');
  await expectStatus(svc.getWorkflowExecutionHistory({ namespace }),
    INVALID_ARGUMENT, 'Execution is not set on request.', 'history, no execution');
  await expectStatus(del(''), INVALID_ARGUMENT, 'WorkflowId is not set on request.',
    'no workflow id');
  await expectStatus(del(some, 'not-a-uuid'), INVALID_ARGUMENT, 'Invalid RunId.',
    'bad run id');
  await expectStatus(del(some), NOT_FOUND, notFoundId(some), 'unknown workflow id');
  const nobody = '0190e1f2-0000-7000-8000-000000000000';
  await expectStatus(del(some, nobody), NOT_FOUND, notFoundRun(some, nobody),
    'unknown run');

  await withWorker(async () => {
    step('a completed run');
    const doneId = uniqueId('del-done');
    const done = await client.workflow.start('hello', {
      taskQueue, workflowId: doneId, args: ['D'],
    });
    assert.equal(await done.result(), 'Hello, D!');
    const doneRun = done.firstExecutionRunId;
    assert.deepEqual(await listIds(doneId), [doneRun], 'listed before the delete');
    assert.equal(JSON.stringify(await del(doneId, doneRun)), '{}', 'an empty response');
    await expectStatus(describe(doneId, doneRun), NOT_FOUND, notFoundRun(doneId, doneRun),
      'describe the deleted run');
    await expectStatus(describe(doneId), NOT_FOUND, notFoundId(doneId),
      'describe the deleted current run');
    await expectRejects(done.describe(), WorkflowNotFoundError, 'handle.describe');
    const hist = client.workflow.getHandle(doneId, doneRun);
    await expectStatus(hist.fetchHistory(), NOT_FOUND, notFoundRun(doneId, doneRun),
      'fetchHistory of the deleted run');
    assert.deepEqual(await listIds(doneId), [], 'no longer listed');
    await expectStatus(del(doneId, doneRun), NOT_FOUND, notFoundRun(doneId, doneRun),
      'delete it again');
    await expectStatus(del(doneId), NOT_FOUND, notFoundId(doneId),
      'delete the (gone) current run again');

    step('its workflow id starts again');
    const again = await client.workflow.start('hello', {
      taskQueue, workflowId: doneId, args: ['again'],
    });
    assert.notEqual(again.firstExecutionRunId, doneRun);
    assert.equal(await again.result(), 'Hello, again!');
    assert.deepEqual(await listIds(doneId), [again.firstExecutionRunId]);

    step('an empty run id deletes the latest run, and only it');
    const latest = again.firstExecutionRunId;
    const third = await client.workflow.start('hello', {
      taskQueue, workflowId: doneId, args: ['third'],
    });
    assert.equal(await third.result(), 'Hello, third!');
    await del(doneId); // the third run
    await expectStatus(describe(doneId, third.firstExecutionRunId), NOT_FOUND,
      notFoundRun(doneId, third.firstExecutionRunId), 'the latest run is gone');
    assert.equal((await describe(doneId, latest)).workflowExecutionInfo.status,
      2 /* COMPLETED */, 'the one before stays');
    await expectStatus(describe(doneId), NOT_FOUND, notFoundId(doneId),
      'no current run after the delete');
    await expectStatus(del(doneId), NOT_FOUND, notFoundId(doneId),
      'an empty run id names no older run');
    assert.deepEqual(await listIds(doneId), [latest]);
    await del(doneId, latest);
    assert.deepEqual(await listIds(doneId), []);

    step('a running parent: terminated, its child too (parent close policy), deleted');
    const parentId = uniqueId('del-parent');
    const parent = await client.workflow.start('parentOfSleeper', {
      taskQueue, workflowId: parentId, args: [600000],
    });
    const child = client.workflow.getHandle(`${parentId}-child`);
    for (let i = 0; ; i++) {
      try {
        if ((await child.describe()).status.name === 'RUNNING') break;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError) || i > 200) throw err;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    await del(parentId);
    await expectRejects(parent.describe(), WorkflowNotFoundError, 'the parent is gone');
    let status;
    for (let i = 0; i < 200; i++) {
      status = (await child.describe()).status.name;
      if (status !== 'RUNNING') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(status, 'TERMINATED', 'the child was terminated by its parent\'s close');
  });

  step('a running run without a worker: terminated, then deleted');
  const runId = uniqueId('del-running');
  const running = await client.workflow.start('waitForever', {
    taskQueue: `${taskQueue}-nobody`, workflowId: runId,
  });
  const run = running.firstExecutionRunId;
  // A long poll for the close event sees the termination the delete writes.
  const closing = svc.getWorkflowExecutionHistory({ namespace,
    execution: { workflowId: runId, runId: run }, waitNewEvent: true,
    historyEventFilterType: CLOSE_EVENT });
  const result = running.result();
  result.catch(() => {}); // awaited below; rejects before that
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(JSON.stringify(await del(runId, run)), '{}');
  const closed = (await closing).history.events;
  assert.equal(closed.length, 1);
  const term = closed[0].workflowExecutionTerminatedEventAttributes;
  assert.ok(term, `close event: ${JSON.stringify(closed[0])}`);
  assert.equal(term.reason, 'Delete workflow execution');
  assert.equal(term.identity, 'history-service');
  assert.equal(term.details, null);
  const rerr = await expectRejects(result, WorkflowFailedError, 'result of the deleted run');
  assert.ok(rerr.cause instanceof TerminatedFailure, `cause: ${rerr.cause}`);
  assert.equal(rerr.cause.message, 'Delete workflow execution');
  await expectStatus(describe(runId, run), NOT_FOUND, notFoundRun(runId, run),
    'describe the deleted running run');
  assert.deepEqual(await listIds(runId), []);
  await expectStatus(del(runId, run), NOT_FOUND, notFoundRun(runId, run), 'again');
  const restarted = await client.workflow.start('waitForever', {
    taskQueue: `${taskQueue}-nobody`, workflowId: runId,
  });
  assert.equal((await restarted.describe()).status.name, 'RUNNING');
  await del(runId); // the current run, running, without a run id
  await expectStatus(describe(runId), NOT_FOUND, notFoundId(runId), 'gone too');
});
