// Activities completed from outside by id (async completion), a result over the
// 2 MiB blob limit fails the activity, and the history read in reverse.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');

scenario('activity-by-id', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const id = uniqueId('async');
    const handle = await client.workflow.start('asyncCompletion', { taskQueue, workflowId: id });
    // wait until the activity is running, then complete it by (workflow id, activity id)
    for (let i = 0; i < 200; i++) {
      const d = await handle.describe();
      if (d.raw.pendingActivities.length && Number(d.raw.pendingActivities[0].state) === 2) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await client.activity.heartbeat({ workflowId: id, activityId: '1' }, 'beat');
    await client.activity.complete({ workflowId: id, activityId: '1' }, 'done from outside');
    assert.equal(await handle.result(), 'done from outside');

    const big = await client.workflow.start('tooBig', { taskQueue, workflowId: uniqueId('big') });
    assert.equal(await big.result(), 'failed: Complete result exceeds size limit.');

    const svc = client.connection.workflowService;
    const ids = [];
    let token;
    do {
      const page = await svc.getWorkflowExecutionHistoryReverse({
        namespace: 'default', execution: { workflowId: id }, maximumPageSize: 3,
        nextPageToken: token,
      });
      assert.ok(page.history.events.length <= 3);
      ids.push(...page.history.events.map((e) => Number(e.eventId)));
      token = page.nextPageToken && page.nextPageToken.length ? page.nextPageToken : undefined;
    } while (token);
    const n = ids.length;
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => n - i));
  });
});
