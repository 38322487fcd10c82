// A workflow task taken by a poll whose answer never reached a worker, then the
// server dies. Two cases:
//  - nothing else happened: WorkflowTaskStarted is not written on its own (the
//    task's next commit writes it), so after the restart the history ends at
//    WorkflowTaskScheduled and the task goes out again at once, no timeout;
//  - a signal arrived while the task was started: its commit made the started
//    event durable, so after the restart nobody holds a started task; its
//    start-to-close timeout must still fire and a new task go out.
// Both workflows then complete. Deterministic form of a hang the kill -9 loads
// hit about once in six SQLite runs.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { NativeConnection, Worker } = require('@temporalio/worker');
const { scenario } = require('../../e2e/lib/harness');
const { workerBundleOptions } = require('../../e2e/lib/bundle');
const h = require('../../e2e/lib/history');
const { connectClient, freePort, sqliteStore, startServer, tempDir, sleep } = require('../lib/proc');
const { checkHistory, count } = require('../lib/check');

const TASK_TIMEOUT_MS = 2000;
const WAIT_MS = 15_000; // several task timeouts

scenario('started-task-restart', async (ctx) => {
  const dir = tempDir('started');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = sqliteStore(path.join(dir, 'gt.db'));
  const opts = { port: await freePort(), httpPort: await freePort(), name: 'started-task' };
  let srv = await startServer(store, opts);
  ctx.onCleanup(() => srv.kill9());
  const quiet = ctx.uniqueId('quiet');
  const signaled = ctx.uniqueId('signaled');

  let conn = await Connection.connect({ address: srv.address });
  let client = new Client({ connection: conn, namespace: 'default' });
  ctx.step('taking both workflow tasks with raw polls, never answering them');
  for (const id of [quiet, signaled]) {
    await client.workflow.start('hello', { taskQueue: ctx.taskQueue, workflowId: id,
      args: ['lost'], workflowTaskTimeout: `${TASK_TIMEOUT_MS}ms` });
    const task = await conn.workflowService.pollWorkflowTaskQueue({ namespace: 'default',
      taskQueue: { name: ctx.taskQueue }, identity: 'lost-poller' });
    assert.ok(task.taskToken && task.taskToken.length, 'the poll returned no task');
    assert.equal(task.workflowExecution.workflowId, id);
  }
  ctx.step('a signal to one of them while its task is started');
  await client.workflow.getHandle(signaled).signal('poke');
  await conn.close();

  ctx.step('kill -9, restart on the same file');
  await srv.kill9();
  srv = await startServer(store, opts);
  ({ conn, client } = await connectClient(ctx, srv));

  ctx.step('a worker: both complete; only the durable started task times out');
  const nconn = await NativeConnection.connect({ address: srv.address });
  const worker = await Worker.create({ connection: nconn, namespace: 'default',
    taskQueue: ctx.taskQueue, activities: ctx.activities, ...workerBundleOptions() });
  const got = await worker.runUntil(Promise.all([quiet, signaled].map((id) => Promise.race([
    client.workflow.getHandle(id).result(),
    sleep(WAIT_MS).then(() => 'not completed'),
  ]))));
  await nconn.close();
  for (const [i, id] of [quiet, signaled].entries()) {
    const hist = await client.workflow.getHandle(id).fetchHistory();
    assert.equal(got[i], 'Hello, lost!', `${id}, whose started task was lost in the ` +
      `crash, did not complete within ${WAIT_MS} ms (task timeout ${TASK_TIMEOUT_MS} ms); ` +
      `history:\n${h.formatHistory(hist)}`);
    assert.equal(count(hist, 'WORKFLOW_TASK_TIMED_OUT'), id === signaled ? 1 : 0,
      `${id}: want ${id === signaled ? 'one' : 'no'} WorkflowTaskTimedOut:\n` +
      h.formatHistory(hist));
    assert.deepEqual(checkHistory(hist), []);
  }
  const problem = await srv.stop();
  assert.equal(problem, null, problem);
}, { server: false, timeoutMs: 60_000 });
