// Sleeping workflows leave memory: an open run that only waits (on a timer, or
// for a message) is passivated, and comes back when its timer falls due (the
// sleepers actor wakes it) or when a signal or query arrives. The server runs
// with debug logs so the scenario can see the passivations (HIST-SLEEP) and
// wake-ups (HIST-WAKE) it asserts on.
'use strict';

const assert = require('node:assert/strict');
const { Client, Connection } = require('@temporalio/client');
const { Worker, NativeConnection } = require('@temporalio/worker');
const { scenario } = require('../lib/harness');
const { ServerProcess, freePort } = require('../lib/server');
const { workerBundleOptions } = require('../lib/bundle');
const activities = require('../activities');

const SLEEP_MS = 5000; // above the 2 s under which a run stays in memory

// Resolves once the server's output matches re, or fails after ms.
async function logShows(srv, re, ms, what) {
  const deadline = Date.now() + ms;
  while (!re.test(srv.output)) {
    assert.ok(Date.now() < deadline, `no ${what} in the server log within ${ms} ms:\n` +
      srv.output.slice(-3000));
    await new Promise((r) => setTimeout(r, 20));
  }
}

const countOf = (srv, re) => (srv.output.match(new RegExp(re.source, 'g')) || []).length;

scenario('sleepers', async () => {
  const srv = new ServerProcess(process.env.GT_BINARY, await freePort(), null,
    ['--log-level', 'debug']);
  try {
    await srv.waitReady();
    const connection = await Connection.connect({ address: srv.address });
    const client = new Client({ connection });
    const nc = await NativeConnection.connect({ address: srv.address });
    const taskQueue = `sleepers-${process.pid}`;
    const worker = await Worker.create({
      connection: nc, namespace: 'default', taskQueue, activities, ...workerBundleOptions(),
    });
    const sleepId = `sleeper-${process.pid}`;
    const sumId = `summer-${process.pid}`;
    await worker.runUntil(async () => {
      const sleeping = await client.workflow.start('sleeper', {
        taskQueue, workflowId: sleepId, args: [SLEEP_MS],
      });
      const summing = await client.workflow.start('summer', { taskQueue, workflowId: sumId });
      // no result() yet: a caller waiting on the history keeps a workflow in memory
      await logShows(srv, new RegExp(`HIST-SLEEP workflow ${sleepId} passivated, asleep ` +
        'until \\d+ ms'), 10_000, 'passivation of the sleeper');
      // a signal wakes the sleeper early; it sleeps again on the same deadline, which is
      // already in the sleepers' heap: it must not be registered twice (one wake-up below)
      const sleeperAsleep = new RegExp(`HIST-SLEEP workflow ${sleepId} passivated`);
      await sleeping.signal('poke');
      await logShows(srv, { test: (s) => countOf({ output: s }, sleeperAsleep) >= 2 }, 10_000,
        'a second passivation of the sleeper after a signal');
      const sumAsleep = new RegExp(`HIST-SLEEP workflow ${sumId} passivated, asleep until ` +
        'a message');
      await logShows(srv, sumAsleep, 10_000, 'passivation of the summer');
      const asleepBefore = countOf(srv, sumAsleep);

      // signals and a query reach the passivated workflow: it is loaded again
      await summing.signal('add', 5);
      await summing.signal('add', 7);
      let sum = 0;
      for (let i = 0; i < 100 && sum !== 12; i++) {
        sum = await summing.query('sum');
        if (sum !== 12) await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(sum, 12, 'the woken workflow lost a signal');
      await logShows(srv, { test: (s) => countOf({ output: s }, sumAsleep) > asleepBefore },
        10_000, 'a second passivation of the summer after its signals');
      await summing.signal('done');
      assert.equal(await summing.result(), 12);

      // the timer fires although nothing of the sleeper was in memory: the sleepers actor
      // wakes it, and it completes with no client call touching it (visibility lists
      // from the store; describe or result would activate the workflow themselves)
      await logShows(srv, new RegExp(`HIST-WAKE waking workflow ${sleepId}`), 10_000,
        'wake-up of the sleeper');
      let closed = false;
      for (let i = 0; i < 500 && !closed; i++) {
        for await (const w of client.workflow.list({
          query: `WorkflowId = '${sleepId}' AND ExecutionStatus = 'Completed'` })) {
          closed = w.workflowId === sleepId;
        }
        if (!closed) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(closed, 'the sleeper did not complete after its wake-up');
      assert.equal(countOf(srv, new RegExp(`HIST-WAKE waking workflow ${sleepId}`)), 1,
        'the sleeper was registered twice for the same deadline');
      assert.equal(await sleeping.result(), `slept ${SLEEP_MS}`);
      const events = (await sleeping.fetchHistory()).events;
      const fired = events.filter((e) => e.timerFiredEventAttributes).length;
      const started = events.filter((e) => e.timerStartedEventAttributes).length;
      assert.equal(started, 1, 'one TimerStarted');
      assert.equal(fired, 1, 'one TimerFired');
      const desc = await sleeping.describe();
      assert.equal(desc.status.name, 'COMPLETED');
    });
    await nc.close();
    await connection.close();
  } finally {
    const problem = await srv.stop();
    assert.equal(problem, null, problem);
  }
}, { server: false, timeoutMs: 60_000 });
