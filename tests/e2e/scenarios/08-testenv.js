// The SDK's own test environment launches our binary by path the way it
// launches the Temporal CLI (`server start-dev --port N ... --headless`,
// probing GetSystemInfo), a hello workflow runs through env.client and a
// worker on env.nativeConnection, and teardown stops the server.
'use strict';

const assert = require('node:assert/strict');
const { Connection } = require('@temporalio/client');
const { TestWorkflowEnvironment } = require('@temporalio/testing');
const { Worker } = require('@temporalio/worker');
const { scenario } = require('../lib/harness');
const { workerBundleOptions } = require('../lib/bundle');

scenario('testenv', async ({ binary, taskQueue, activities, uniqueId,
  step }) => {
  assert.ok(binary, 'GT_BINARY must name the server binary');
  step('TestWorkflowEnvironment.createLocal');
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: binary } },
  });
  let tornDown = false;
  try {
    assert.equal(env.supportsTimeSkipping, false);
    step(`env up at ${env.address}; creating worker`);
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue,
      activities,
      ...workerBundleOptions(),
    });
    const result = await worker.runUntil(env.client.workflow.execute('hello', {
      args: ['testenv'], taskQueue, workflowId: uniqueId('testenv'),
    }));
    assert.equal(result, 'Hello, testenv!');
    step('env.teardown');
    const address = env.address;
    await env.teardown();
    tornDown = true;

    step('checking the server is gone');
    // After teardown nothing may answer on the old address.
    let answered = false;
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1500 });
      answered = true;
      await conn.close();
    } catch (_) {
      // expected: refused or timed out
    }
    assert.equal(answered, false,
      `server at ${address} still answers after env.teardown()`);
  } finally {
    if (!tornDown) await env.teardown();
  }
}, { server: false });
