// Queries: answered by the worker from the workflow's state, on a running and
// on a closed workflow; an unknown query fails; reject conditions apply.
'use strict';

const assert = require('node:assert/strict');
const { QueryRejectedError } = require('@temporalio/client');
const { scenario } = require('../lib/harness');

scenario('query', async ({ client, taskQueue, withWorker, uniqueId }) => {
  await withWorker(async () => {
    const handle = await client.workflow.start('summer', { taskQueue, workflowId: uniqueId('q') });
    await handle.signal('add', 5);
    await handle.signal('add', 7);
    assert.equal(await handle.query('sum'), 12);

    let failed = null;
    try {
      await handle.query('nope');
    } catch (err) {
      failed = err;
    }
    assert.ok(failed, 'an unknown query type must fail');
    assert.match(String(failed.message), /nope/);

    await handle.signal('done');
    assert.equal(await handle.result(), 12);
    assert.equal(await handle.query('sum'), 12, 'a closed workflow can still be queried');

    const rejecting = client.workflow.getHandle(handle.workflowId);
    let rejected = null;
    try {
      await client.workflow.getHandle(handle.workflowId).query('sum');
      await client.connection.workflowService.queryWorkflow({
        namespace: 'default',
        execution: { workflowId: handle.workflowId },
        query: { queryType: 'sum' },
        queryRejectCondition: 2, // NOT_OPEN
      }).then((r) => { rejected = r.queryRejected; });
    } catch (err) {
      rejected = err;
    }
    assert.ok(rejected && !(rejected instanceof Error), `NOT_OPEN rejects: ${rejected}`);
    assert.equal(Number(rejected.status), 2); // COMPLETED
    void rejecting;
    void QueryRejectedError;
  });
});
