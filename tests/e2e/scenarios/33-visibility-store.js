// A separate visibility store: `--config` with persistence.visibilityStore
// naming another SQLite file than defaultStore. Workflows run as usual; their
// records reach the visibility file (eventually, as in Temporal with a separate
// visibility store: List is polled), and only it: restarted with visibility in
// the default file, List finds none of them; restarted on the two files again,
// all of them, with their final status.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { Worker, NativeConnection } = require('@temporalio/worker');
const { scenario } = require('../lib/harness');
const { workerBundleOptions } = require('../lib/bundle');
const activities = require('../activities');
const { startServer, tempDir } = require('../../crash/lib/proc');

function yaml(defaultFile, visFile, port, http) {
  return `log: {stdout: true, level: warn, format: text}
persistence:
  defaultStore: main
  visibilityStore: vis
  numHistoryShards: 4
  datastores:
    main: {sql: {pluginName: sqlite, databaseName: "${defaultFile}"}}
    vis: {sql: {pluginName: sqlite, databaseName: "${visFile}"}}
services:
  frontend:
    rpc: {grpcPort: ${port}, httpPort: ${http}, membershipPort: ${http + 1}, bindOnLocalHost: true}
genesis: {defaultNamespace: "default", headless: true}
`;
}

// A store for proc.js: the two files, as given. store.httpPort: the last server's.
function twoFiles(dir, defaultFile, visFile) {
  let n = 0;
  const store = {
    args: (port, httpPort) => {
      const file = path.join(dir, `cfg-${n++}.yaml`);
      fs.writeFileSync(file, yaml(defaultFile, visFile, port, httpPort));
      store.httpPort = httpPort;
      return ['--config', file];
    },
  };
  return store;
}

// The value of a sample line of GET /metrics (undefined when absent).
function metric(port, key) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const line = body.split('\n').find((l) => l.startsWith(`${key} `));
        resolve(line === undefined ? undefined : Number(line.slice(key.length + 1)));
      });
    }).on('error', reject);
  });
}

// The executions List returns for query, as { id: status name }.
async function listed(client, query) {
  const out = {};
  for await (const wf of client.workflow.list({ query })) out[wf.workflowId] = wf.status.name;
  return out;
}

// Polls List until it returns `want` exactly (10 s at most).
async function awaitListed(client, query, want) {
  let got;
  for (let i = 0; i < 200; i++) {
    got = await listed(client, query);
    try {
      assert.deepEqual(got, want);
      return;
    } catch (_) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.deepEqual(got, want, `List(${query})`);
}

async function withServer(store, body) {
  const srv = await startServer(store);
  const connection = await Connection.connect({ address: srv.address });
  try {
    return await body(new Client({ connection }), srv);
  } finally {
    await connection.close();
    const err = await srv.stop();
    assert.equal(err, null, err || '');
  }
}

scenario('visibility-store', async ({ step }) => {
  const dir = tempDir('vis');
  const main = path.join(dir, 'main.db');
  const vis = path.join(dir, 'vis.db');
  const query = `WorkflowType = 'hello' OR WorkflowType = 'waitForever'`;
  const want = {};
  try {
    step('run workflows with the visibility store in another file');
    const store = twoFiles(dir, main, vis);
    await withServer(store, async (client, srv) => {
      const nc = await NativeConnection.connect({ address: srv.address });
      const taskQueue = `vis-store-${process.pid}`;
      const worker = await Worker.create({
        connection: nc, namespace: 'default', taskQueue, activities, ...workerBundleOptions(),
      });
      await worker.runUntil(async () => {
        for (let i = 0; i < 5; i++) {
          const h = await client.workflow.start('hello', {
            taskQueue, workflowId: `vis-hello-${i}`, args: [`v${i}`],
          });
          assert.equal(await h.result(), `Hello, v${i}!`);
          want[`vis-hello-${i}`] = 'COMPLETED';
        }
        await client.workflow.start('waitForever', { taskQueue, workflowId: 'vis-running' });
        want['vis-running'] = 'RUNNING';
        await awaitListed(client, query, want);
        assert.equal((await client.workflow.count(query)).count, 6);
        // /metrics: 5 starts, 5 closes and the running one's start applied, none failed
        // (counted once the outbox actor has the visibility store's answer: polled)
        let applied;
        for (let i = 0; i < 100; i++) {
          applied = await metric(store.httpPort, 'genesis_visibility_outbox_applied');
          if (applied >= 11) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(applied >= 11, `genesis_visibility_outbox_applied ${applied}`);
        assert.equal(await metric(store.httpPort, 'genesis_visibility_outbox_failures'), 0);
        // the visibility store's own requests, under Temporal's visibility_ names
        const visWrites = await metric(store.httpPort,
          'visibility_persistence_requests{operation="WriteBatch"}');
        assert.ok(visWrites >= 1, `visibility_persistence_requests ${visWrites}`);
      });
      await nc.close();
    });

    step('restart with visibility in the default file: no record there');
    await withServer(twoFiles(dir, main, main), async (client) => {
      assert.deepEqual(await listed(client, query), {});
      // the runs themselves are in the default file
      const d = await client.workflow.getHandle('vis-hello-0').describe();
      assert.equal(d.status.name, 'COMPLETED');
    });

    step('restart on the two files: every record, with its final status');
    await withServer(twoFiles(dir, main, vis), async (client) => {
      await awaitListed(client, query, want);
      await client.workflow.getHandle('vis-running').terminate('done');
      want['vis-running'] = 'TERMINATED';
      await awaitListed(client, query, want);
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, { server: false, timeoutMs: 60000 });
