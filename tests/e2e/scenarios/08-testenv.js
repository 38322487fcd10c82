// The SDK's own test environment launches our binary by path the way it
// launches the Temporal CLI (`server start-dev --port N ... --headless`,
// probing GetSystemInfo), a hello workflow runs through env.client and a
// worker on env.nativeConnection, and teardown stops the server.
'use strict';

const assert = require('node:assert/strict');
const { TestWorkflowEnvironment } = require('@temporalio/testing');
const { Worker } = require('@temporalio/worker');
const { scenario } = require('../lib/harness');
const { workerBundleOptions } = require('../lib/bundle');
const { tcpAccepts } = require('../lib/server');

scenario('testenv', async ({ binary, taskQueue, activities, uniqueId,
  step, onCleanup }) => {
  assert.ok(binary, 'GT_BINARY must name the server binary');
  step('TestWorkflowEnvironment.createLocal');
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: binary } },
  });
  let tornDown = false;
  // Also on timeout: never leave the SDK-launched server behind.
  onCleanup(async () => { if (!tornDown) await env.teardown(); });
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
  tornDown = true;
  await env.teardown();

  step('checking the server is gone');
  // After teardown the port must be closed: the server process is gone.
  const port = Number(address.split(':').pop());
  assert.equal(await tcpAccepts(port), false,
    `something still listens on ${address} after env.teardown()`);
}, { server: false });
