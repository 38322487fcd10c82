// An activity out with its worker across kill -9. Its start writes no event (as in
// Temporal): the server writes it to the executions row once the activity has run for
// a second (wf_tasks.c persist_starts). After the restart the server must not hand
// the activity out a second time: it is still out with the worker that took it, which
// completes it with the task token it got before the crash, and the workflow completes
// with that result. The history shows one start, by that worker, at attempt 1.
// The activity is served by raw polls on a queue of its own (the SDK worker runs the
// workflow only), so a second hand-out would be seen, not absorbed by the SDK.
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

const PERSIST_WAIT_MS = 10_000; // the start is written ~1 s after it
const NO_TASK_POLL_MS = 3_000; // matching answers empty 1 s before the deadline

// The server's completed write batches (GET /metrics, persistence_requests).
async function writeBatches(httpPort) {
  const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  const text = await res.text();
  const m = text.match(/^persistence_requests\{operation="WriteBatch"\} (\d+)/m);
  assert.ok(m, 'no persistence_requests{operation="WriteBatch"} in /metrics');
  return Number(m[1]);
}

function pollActivity(conn, queue, ms) {
  return conn.withDeadline(Date.now() + ms, () =>
    conn.workflowService.pollActivityTaskQueue({ namespace: 'default',
      taskQueue: { name: queue }, identity: 'raw-activity-worker' }));
}

scenario('activity-start-restart', async (ctx) => {
  const dir = tempDir('actstart');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = sqliteStore(path.join(dir, 'gt.db'));
  const opts = { port: await freePort(), httpPort: await freePort(), name: 'act-start' };
  let srv = await startServer(store, opts);
  ctx.onCleanup(() => srv.kill9());
  const id = ctx.uniqueId('out');
  const actQueue = `${ctx.taskQueue}-act`;

  ctx.step('a workflow worker (it rides through the crash); the workflow schedules the activity');
  const nconn = await NativeConnection.connect({ address: srv.address });
  ctx.onCleanup(() => nconn.close());
  const worker = await Worker.create({ connection: nconn, namespace: 'default',
    taskQueue: ctx.taskQueue, activities: {}, ...workerBundleOptions() });
  const running = worker.run();
  ctx.onCleanup(async () => { worker.shutdown(); await running.catch(() => {}); });
  let conn = await Connection.connect({ address: srv.address });
  let client = new Client({ connection: conn, namespace: 'default' });
  await client.workflow.start('outAcrossCrash', { taskQueue: ctx.taskQueue, workflowId: id,
    args: [actQueue] });

  ctx.step('a raw poll takes the activity and keeps it');
  const task = await pollActivity(conn, actQueue, 15_000);
  assert.ok(task.taskToken && task.taskToken.length, 'the activity never reached the poll');
  assert.equal(task.workflowExecution.workflowId, id);
  assert.equal(task.attempt, 1);

  ctx.step('waiting for the write that records its start (nothing else writes now)');
  const before = await writeBatches(opts.httpPort);
  const deadline = Date.now() + PERSIST_WAIT_MS;
  while (await writeBatches(opts.httpPort) === before) {
    assert.ok(Date.now() < deadline, `no write within ${PERSIST_WAIT_MS} ms of the start`);
    await sleep(50);
  }
  await conn.close();

  ctx.step('kill -9, restart on the same file');
  await srv.kill9();
  srv = await startServer(store, opts);
  ({ conn, client } = await connectClient(ctx, srv));

  ctx.step('the activity is not handed out again');
  let again = null;
  try {
    again = await pollActivity(conn, actQueue, NO_TASK_POLL_MS);
  } catch (err) {
    if (!/DEADLINE|deadline/.test(String(err && (err.code || err.message)))) throw err;
  }
  assert.ok(!again || !again.taskToken || again.taskToken.length === 0,
    `the activity was handed out again after the restart (attempt ${again && again.attempt})`);

  ctx.step('its worker completes it with the token from before the crash');
  const result = { payloads: [{ metadata: { encoding: Buffer.from('json/plain') },
    data: Buffer.from(JSON.stringify('done once')) }] };
  await conn.workflowService.respondActivityTaskCompleted({ namespace: 'default',
    taskToken: task.taskToken, result, identity: 'raw-activity-worker' });
  const handle = client.workflow.getHandle(id);
  assert.equal(await handle.result(), 'done once');
  const hist = await handle.fetchHistory();
  assert.equal(count(hist, 'ACTIVITY_TASK_STARTED'), 1, h.formatHistory(hist));
  const started = hist.events.find((e) => e.activityTaskStartedEventAttributes);
  assert.equal(started.activityTaskStartedEventAttributes.identity, 'raw-activity-worker');
  assert.equal(started.activityTaskStartedEventAttributes.attempt, 1);
  assert.deepEqual(checkHistory(hist), []);
  const problem = await srv.stop();
  assert.equal(problem, null, problem);
}, { server: false, timeoutMs: 90_000 });
