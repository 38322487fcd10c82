// Fifty hello workflows started at once on one worker all complete with
// their own results (tests queueing, concurrent polls, no cross-talk).
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');

const COUNT = 50;

scenario('many', async ({ client, taskQueue, withWorker, uniqueId }) => {
  const prefix = uniqueId('many');
  await withWorker(async () => {
    const handles = await Promise.all(
      Array.from({ length: COUNT }, (_, i) => client.workflow.start('hello', {
        args: [`n${i}`], taskQueue, workflowId: `${prefix}-${i}`,
      })));
    const runIds = new Set(handles.map((hd) => hd.firstExecutionRunId));
    assert.equal(runIds.size, COUNT, 'every start must get its own run id');

    const results = await Promise.all(handles.map((hd) => hd.result()));
    assert.deepEqual(results,
      Array.from({ length: COUNT }, (_, i) => `Hello, n${i}!`));
  });
}, { timeoutMs: 60_000 });
