// Durability across a crash: with a SQLite file, kill -9 the server while a
// workflow sleeps on a timer and another waits for its first workflow task;
// restart on the same file: the timer that fell due while the server was down
// fires, the pending workflow task is dispatched again, both complete once.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { startFileServer, withWorkerAt } = require('../lib/restart');
const h = require('../lib/history');

scenario('restart', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-restart-'));
  const db = path.join(dir, 'gt.db');
  const taskQueue = `restart-${process.pid}`;
  let srv = await startFileServer(db);
  try {
    let conn = await Connection.connect({ address: srv.address });
    let client = new Client({ connection: conn });
    const sleepId = `sleep-${process.pid}`;
    const helloId = `hello-${process.pid}`;
    const sleeper = await client.workflow.start('sleeper', {
      taskQueue, workflowId: sleepId, args: [1500],
    });
    // Run a worker until the timer is started, then crash the server.
    await withWorkerAt(srv.address, taskQueue, async () => {
      for (;;) {
        const hist = await sleeper.fetchHistory();
        if (hist.events.some((e) => e.timerStartedEventAttributes)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    });
    await client.workflow.start('hello', { taskQueue, workflowId: helloId, args: ['Durable'] });
    await conn.close();
    srv.proc.kill('SIGKILL');
    await srv.exited;
    await new Promise((r) => setTimeout(r, 1600)); // the timer falls due while down

    srv = await startFileServer(db);
    conn = await Connection.connect({ address: srv.address });
    client = new Client({ connection: conn });
    await withWorkerAt(srv.address, taskQueue, async () => {
      assert.equal(await client.workflow.getHandle(sleepId).result(), 'slept 1500');
      assert.equal(await client.workflow.getHandle(helloId).result(), 'Hello, Durable!');
    });
    const hist = await client.workflow.getHandle(sleepId).fetchHistory();
    h.assertContiguousIds(hist);
    assert.equal(hist.events.filter((e) => e.timerFiredEventAttributes).length, 1);
    assert.equal(hist.events.filter((e) => e.workflowExecutionCompletedEventAttributes).length, 1);
    const hh = await client.workflow.getHandle(helloId).fetchHistory();
    h.assertContiguousIds(hh);
    assert.equal(hh.events.length, 11);
    await conn.close();
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, { server: false, timeoutMs: 60000 });
