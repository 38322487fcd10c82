// Retention: closed runs are deleted once the namespace's retention has passed
// (shortened for the test with genesis.retentionOverrideMs); running ones stay.
'use strict';

const assert = require('node:assert/strict');
const { Client, Connection, WorkflowNotFoundError } = require('@temporalio/client');
const { Worker, NativeConnection } = require('@temporalio/worker');
const { scenario } = require('../lib/harness');
const { ServerProcess, freePort } = require('../lib/server');
const { workerBundleOptions } = require('../lib/bundle');
const activities = require('../activities');

scenario('retention', async () => {
  const srv = new ServerProcess(process.env.GT_BINARY, await freePort(), null, [
    '--dynamic-config-value', 'genesis.retentionOverrideMs=300',
    '--dynamic-config-value', 'genesis.retentionSweepIntervalMs=100',
  ]);
  try {
    await srv.waitReady();
    const connection = await Connection.connect({ address: srv.address });
    const client = new Client({ connection });
    const nc = await NativeConnection.connect({ address: srv.address });
    const taskQueue = `retention-${process.pid}`;
    const worker = await Worker.create({
      connection: nc, namespace: 'default', taskQueue, activities, ...workerBundleOptions(),
    });
    await worker.runUntil(async () => {
      const done = await client.workflow.start('hello', {
        taskQueue, workflowId: `ret-done-${process.pid}`, args: ['R'],
      });
      assert.equal(await done.result(), 'Hello, R!');
      const running = await client.workflow.start('waitForever', {
        taskQueue, workflowId: `ret-running-${process.pid}`,
      });
      let gone = false;
      for (let i = 0; i < 200 && !gone; i++) {
        try {
          await done.describe();
          await new Promise((r) => setTimeout(r, 25));
        } catch (err) {
          assert.ok(err instanceof WorkflowNotFoundError, `unexpected: ${err}`);
          gone = true;
        }
      }
      assert.ok(gone, 'the closed run was deleted after retention');
      const listed = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = "${done.workflowId}"` })) {
        listed.push(w);
      }
      assert.equal(listed.length, 0, 'its visibility record is gone too');
      assert.equal((await running.describe()).status.name, 'RUNNING');
      await running.terminate('done');
    });
    await nc.close();
    await connection.close();
  } finally {
    srv.proc.kill('SIGTERM');
    await srv.exited;
  }
}, { server: false, timeoutMs: 30000 });
