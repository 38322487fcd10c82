// Cron workflows (cronSchedule): the first run waits for the schedule's first firing
// (a first workflow task backoff); each run that completes names the next
// (newExecutionRunId), which starts with initiator CRON_SCHEDULE, the previous run as
// continuedExecutionRunId, its result as lastCompletionResult and the wait until the
// next firing; a termination ends the chain. An unparsable schedule is refused.
'use strict';

const assert = require('node:assert/strict');
const { temporal } = require('@temporalio/proto');
const { scenario } = require('../lib/harness');
const { durationMs: ms, listRuns: runs } = require('../lib/history');
const { expectGrpcCode } = require('../lib/expect');

const CRON = temporal.api.enums.v1.ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE;

scenario('cron', async ({ client, taskQueue, withWorker, uniqueId, step }) => {
  const workflowId = uniqueId('cron');

  step('an unparsable schedule is refused');
  const err = await expectGrpcCode(client.workflow.start('hello', {
    taskQueue, workflowId: uniqueId('cron-bad'), args: ['x'], cronSchedule: 'every minute',
  }), 3, 'a bad cron schedule');
  const text = [];
  for (let e = err; e && text.length < 8; e = e.cause) text.push(`${e.message} ${e.details || ''}`);
  assert.match(text.join(' | '), /Invalid CronSchedule/);

  step('a cron workflow every second: three runs in a chain');
  const first = await client.workflow.start('hello', {
    taskQueue, workflowId, args: ['Cron'], cronSchedule: '@every 1s',
  });
  let hist = await first.fetchHistory();
  const s0 = hist.events[0].workflowExecutionStartedEventAttributes;
  assert.equal(s0.cronSchedule, '@every 1s');
  const b0 = ms(s0.firstWorkflowTaskBackoff);
  assert.ok(b0 > 0 && b0 <= 1000, `first backoff ${b0} ms`);
  assert.equal(hist.events.length, 1, 'no workflow task before the first firing');

  let chain = [];
  await withWorker(async () => {
    for (let i = 0; i < 300; i++) {
      chain = await runs(client, workflowId);
      if (chain.filter((r) => r.status === 'COMPLETED').length >= 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  const done = chain.filter((r) => r.status === 'COMPLETED');
  assert.ok(done.length >= 3, `completed runs: ${JSON.stringify(chain)}`);
  assert.equal(done[0].runId, first.firstExecutionRunId);
  for (let k = 0; k < 3; k++) {
    const h = await client.workflow.getHandle(workflowId, done[k].runId).fetchHistory();
    const start = h.events[0].workflowExecutionStartedEventAttributes;
    const close = h.events[h.events.length - 1].workflowExecutionCompletedEventAttributes;
    assert.ok(close, `run ${k} completed`);
    assert.equal(close.newExecutionRunId, chain[k + 1].runId, `run ${k} names the next`);
    assert.equal(start.cronSchedule, '@every 1s');
    if (k > 0) {
      assert.equal(start.initiator, CRON);
      assert.equal(start.continuedExecutionRunId, done[k - 1].runId);
      assert.equal(start.firstExecutionRunId, done[0].runId);
      assert.ok(start.lastCompletionResult, 'the previous result is handed on');
      assert.ok(ms(start.firstWorkflowTaskBackoff) > 0, 'each run waits for its firing');
    }
  }

  step('a termination ends the chain');
  const current = client.workflow.getHandle(workflowId);
  await current.terminate('enough');
  const before = (await runs(client, workflowId)).length;
  const d = await current.describe();
  assert.equal(d.status.name, 'TERMINATED');
  await new Promise((r) => setTimeout(r, 1500)); // past the next firing: nothing more
  assert.equal((await runs(client, workflowId)).length, before);
}, { timeoutMs: 40000 });
