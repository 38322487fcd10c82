// A start delay (workflowStartDelay, the TS SDK's `startDelay`) is Temporal's first
// workflow task backoff: WorkflowExecutionStarted carries it, no workflow task is
// scheduled until it has passed, the execution time is the start time plus the delay,
// and a signal does not end the wait (it goes with the first task) while another
// SignalWithStart does; a query that would time out before the first task is refused. The wait survives a kill -9 (SQLite file). Bad delays are
// refused as Temporal refuses them.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { scenario } = require('../lib/harness');
const { freePort } = require('../lib/server');
const { startFileServer, withWorkerAt } = require('../lib/restart');
const { expectGrpcCode } = require('../lib/expect');
const h = require('../lib/history');

// The messages of an error and its causes (the SDK wraps the server's).
function chainText(err) {
  const text = [];
  for (let e = err; e && text.length < 8; e = e.cause) text.push(`${e.message} ${e.details || ''}`);
  return text.join(' | ');
}

const types = (hist) => hist.events.map((e) => Object.keys(e).find((k) => k.endsWith('Attributes')));
const ms = h.durationMs;
const tsMs = h.durationMs; /* a Timestamp has the same seconds and nanos */

scenario('start-delay', async ({ step }) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-delay-'));
  const db = path.join(dir, 'gt.db');
  const port = await freePort();
  const taskQueue = `delay-${process.pid}`;
  let srv = await startFileServer(db, port);
  try {
    let conn = await Connection.connect({ address: srv.address });
    let client = new Client({ connection: conn });

    step('a delayed start: no workflow task before the delay, a signal does not end it');
    const t0 = Date.now();
    const delayed = await client.workflow.start('hello', {
      taskQueue, workflowId: `delay-1-${process.pid}`, args: ['Later'], startDelay: '1500ms',
    });
    await delayed.signal('nudge');
    let hist = await delayed.fetchHistory();
    assert.deepEqual(types(hist), ['workflowExecutionStartedEventAttributes',
      'workflowExecutionSignaledEventAttributes']);
    assert.equal(ms(hist.events[0].workflowExecutionStartedEventAttributes
      .firstWorkflowTaskBackoff), 1500);
    const d = await delayed.describe();
    assert.equal(d.executionTime.getTime() - d.startTime.getTime(), 1500);
    await withWorkerAt(srv.address, taskQueue, async () => {
      assert.equal(await delayed.result(), 'Hello, Later!');
    });
    assert.ok(Date.now() - t0 >= 1400, `completed ${Date.now() - t0} ms after the start`);
    hist = await delayed.fetchHistory();
    h.assertContiguousIds(hist);
    assert.equal(types(hist)[2], 'workflowTaskScheduledEventAttributes');
    assert.ok(tsMs(hist.events[2].eventTime) - tsMs(hist.events[0].eventTime) >= 1400,
      'the first workflow task was scheduled once the delay had passed');

    step('SignalWithStart: a second one ends the wait');
    const swsId = `delay-sws-${process.pid}`;
    const sws = await client.workflow.signalWithStart('hello', {
      taskQueue, workflowId: swsId, args: ['Signalled'], signal: 'nudge', startDelay: '1h',
    });
    hist = await sws.fetchHistory();
    assert.deepEqual(types(hist), ['workflowExecutionStartedEventAttributes',
      'workflowExecutionSignaledEventAttributes']);
    // a query that would time out before the first workflow task is refused, as Temporal does
    const qerr = await expectGrpcCode(sws.query('anything'), 9, 'a query during the delay');
    assert.match(chainText(qerr), /Workflow task is not scheduled yet/);
    await client.workflow.signalWithStart('hello', {
      taskQueue, workflowId: swsId, args: ['Signalled'], signal: 'nudge', startDelay: '1h',
    });
    await withWorkerAt(srv.address, taskQueue, async () => {
      assert.equal(await sws.result(), 'Hello, Signalled!'); // an hour early
    });

    step('bad delays are refused');
    const err = await expectGrpcCode(client.workflow.start('hello', {
      taskQueue, workflowId: `delay-cron-${process.pid}`, args: ['x'], startDelay: '1s',
      cronSchedule: '* * * * *',
    }), 3, 'a cron schedule with a start delay');
    assert.match(chainText(err), /CronSchedule and WorkflowStartDelay may not be used together/);

    step('the wait survives a kill -9');
    const crashId = `delay-crash-${process.pid}`;
    await client.workflow.start('hello', {
      taskQueue, workflowId: crashId, args: ['Restarted'], startDelay: '2s',
    });
    await conn.close();
    srv.proc.kill('SIGKILL');
    await srv.exited;
    srv = await startFileServer(db, port);
    conn = await Connection.connect({ address: srv.address });
    client = new Client({ connection: conn });
    await withWorkerAt(srv.address, taskQueue, async () => {
      assert.equal(await client.workflow.getHandle(crashId).result(), 'Hello, Restarted!');
    });
    hist = await client.workflow.getHandle(crashId).fetchHistory();
    h.assertContiguousIds(hist);
    assert.equal(types(hist)[1], 'workflowTaskScheduledEventAttributes');
    assert.ok(tsMs(hist.events[1].eventTime) - tsMs(hist.events[0].eventTime) >= 1900);
    await conn.close();
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, { server: false, timeoutMs: 60000 });
