// An RPC the server does not implement answers UNIMPLEMENTED (not a hang,
// not a dropped connection), and the server keeps serving afterwards.
// ListSchedules is unimplemented at issue 2; pick another RPC once it lands.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const { expectGrpcCode } = require('../lib/expect');

const UNIMPLEMENTED = 12;

scenario('unimplemented', async ({ connection, client, taskQueue,
  withWorker, uniqueId }) => {
  const svc = connection.workflowService;
  await expectGrpcCode(svc.listSchedules({ namespace: 'default' }),
    UNIMPLEMENTED, 'ListSchedules');
  // Twice on the same connection: the HTTP/2 session must survive.
  await expectGrpcCode(svc.listSchedules({ namespace: 'default' }),
    UNIMPLEMENTED, 'ListSchedules again');

  await withWorker(async () => {
    const result = await client.workflow.execute('hello', {
      args: ['after'], taskQueue, workflowId: uniqueId('after-unimpl'),
    });
    assert.equal(result, 'Hello, after!');
  });
});
