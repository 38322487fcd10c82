// Sleeping workflows across kill -9: a restart loads only the running
// workflows that owe something now; those that only sleep stay in the store,
// registered from their executions.state to be woken at their next deadline
// or by their next message. Checks: the recovery log line counts them as
// asleep; a timer that fell due while the server was down fires with no
// client call touching its workflow; a signal wakes a workflow waiting for
// one; a long sleeper stays open with its timer pending; histories are
// consistent.
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

const SOON_MS = 3000; // passivated (>= 2 s away), due while the server is down

// The server's output matches re before ms pass.
async function logShows(srv, re, ms, what) {
  const deadline = Date.now() + ms;
  while (!re.test(srv.output)) {
    assert.ok(Date.now() < deadline, `no ${what} in the server log within ${ms} ms:\n` +
      srv.output.slice(-3000));
    await sleep(20);
  }
}

scenario('sleepers-restart', async (ctx) => {
  const dir = tempDir('sleepers');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const base = sqliteStore(path.join(dir, 'gt.db'));
  const store = { ...base, args: (p, hp) => [...base.args(p, hp), '--log-level', 'debug'] };
  const opts = { port: await freePort(), httpPort: await freePort(), name: 'sleepers' };
  let srv = await startServer(store, opts);
  ctx.onCleanup(() => srv.kill9());
  const soon = ctx.uniqueId('soon');
  const long = ctx.uniqueId('long');
  const waiter = ctx.uniqueId('waiter');

  ctx.step('three workflows go to sleep (timer soon, timer in 10 min, a signal)');
  let conn = await Connection.connect({ address: srv.address });
  let client = new Client({ connection: conn, namespace: 'default' });
  let nconn = await NativeConnection.connect({ address: srv.address });
  // This worker is gone after the restart and its sticky queue (kept in the runs' state,
  // as Temporal keeps it) is never polled again: its tasks go back to the normal queue
  // after the sticky schedule-to-start timeout, short here to keep the scenario short.
  let worker = await Worker.create({ connection: nconn, namespace: 'default',
    taskQueue: ctx.taskQueue, activities: ctx.activities,
    stickyQueueScheduleToStartTimeout: '1s', ...workerBundleOptions() });
  let soonDue = 0;
  await worker.runUntil(async () => {
    await client.workflow.start('sleeper', { taskQueue: ctx.taskQueue, workflowId: soon,
      args: [SOON_MS] });
    soonDue = Date.now() + SOON_MS;
    await client.workflow.start('sleeper', { taskQueue: ctx.taskQueue, workflowId: long,
      args: [600_000] });
    await client.workflow.start('summer', { taskQueue: ctx.taskQueue, workflowId: waiter });
    for (const id of [soon, long, waiter]) {
      await logShows(srv, new RegExp(`HIST-SLEEP workflow ${id} passivated`), 10_000,
        `passivation of ${id}`);
    }
  });
  await nconn.close();
  await conn.close();

  ctx.step('kill -9; restart once the soon timer is due');
  await srv.kill9();
  const left = soonDue - Date.now();
  assert.ok(left > 0, 'the soon timer fell due before the kill: raise SOON_MS');
  await sleep(left + 200); // the scenario is about a deadline passing while down
  srv = await startServer(store, opts);
  await logShows(srv, /SRV-RECOVERED reactivated 0 running workflows, 3 left asleep/, 5000,
    'recovery leaving the three sleepers in the store');
  ({ conn, client } = await connectClient(ctx, srv));

  ctx.step('a worker: the overdue timer fires, a signal wakes the waiter');
  nconn = await NativeConnection.connect({ address: srv.address });
  worker = await Worker.create({ connection: nconn, namespace: 'default',
    taskQueue: ctx.taskQueue, activities: ctx.activities, ...workerBundleOptions() });
  await worker.runUntil(async () => {
    await logShows(srv, new RegExp(`HIST-WAKE waking workflow ${soon}`), 5000,
      'the wake-up of the overdue sleeper');
    let closed = false; // visibility reads the store: it does not activate the workflow
    for (let i = 0; i < 500 && !closed; i++) {
      for await (const w of client.workflow.list({
        query: `WorkflowId = '${soon}' AND ExecutionStatus = 'Completed'` })) {
        closed = w.workflowId === soon;
      }
      if (!closed) await sleep(20);
    }
    assert.ok(closed, 'the sleeper whose timer fell due while down did not complete');
    assert.equal(await client.workflow.getHandle(soon).result(), `slept ${SOON_MS}`);
    const w = client.workflow.getHandle(waiter);
    await w.signal('add', 2);
    await w.signal('done');
    assert.equal(await w.result(), 2);
  });
  await nconn.close();

  ctx.step('the long sleeper is open with its timer pending; histories are consistent');
  const d = await client.workflow.getHandle(long).describe();
  assert.equal(d.status.name, 'RUNNING');
  const lh = await client.workflow.getHandle(long).fetchHistory();
  assert.equal(count(lh, 'TIMER_STARTED'), 1);
  assert.equal(count(lh, 'TIMER_FIRED'), 0);
  for (const id of [soon, waiter]) {
    const hist = await client.workflow.getHandle(id).fetchHistory();
    assert.deepEqual(checkHistory(hist), [], `${id}:\n${h.formatHistory(hist)}`);
  }
  const problem = await srv.stop();
  assert.equal(problem, null, problem);
}, { server: false, timeoutMs: 60_000 });
