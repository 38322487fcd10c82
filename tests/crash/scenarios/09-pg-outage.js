// PostgreSQL goes away while the server runs: requests are answered UNAVAILABLE
// (never a crash, never a hang), the server reconnects by itself when
// PostgreSQL is back, and every workflow started before, during (retried) and
// after the outage completes exactly once with the right result. Visibility is in
// a second database of that server (its records go through the outbox, which the
// outage interrupts too): at the end every workflow is listed, completed, and
// only there (lib/visibility.js).
'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { Worker, NativeConnection } = require('@temporalio/worker');
const { scenario } = require('../../e2e/lib/harness');
const { grpcCode } = require('../../e2e/lib/errors');
const { workerBundleOptions } = require('../../e2e/lib/bundle');
const { postgresStore, startPostgres, startServer, ROOT } = require('../lib/proc');
const { VIS_DB, checkVisibility } = require('../lib/visibility');
const { retrying } = require('../lib/load');
const { checkHistory } = require('../lib/check');
const activities = require('../../e2e/activities');

const pgctl = (cmd, dir) => execFileSync('bash', [path.join(ROOT, 'tools/pg-test-server.sh'), cmd, dir],
  { stdio: 'ignore' });

scenario('pg-outage', async (ctx) => {
  const pg = startPostgres();
  ctx.onCleanup(() => pg.stop());
  pg.psql(`CREATE DATABASE ${VIS_DB}`);
  const store = postgresStore(pg.conninfo, pg.dir, { visibilityDb: VIS_DB });
  const srv = await startServer(store, { name: 'pg-outage' });
  ctx.onCleanup(() => srv.proc.kill('SIGKILL'));
  const connection = await Connection.connect({ address: srv.address });
  const client = new Client({ connection });
  const nc = await NativeConnection.connect({ address: srv.address });
  const taskQueue = `pg-outage-${process.pid}`;
  const worker = await Worker.create({
    connection: nc, namespace: 'default', taskQueue, activities, ...workerBundleOptions(),
  });
  const ids = [];
  await worker.runUntil(async () => {
    const start = (i) => retrying(`start ${i}`, () => client.workflow.start('hello', {
      taskQueue, workflowId: `pgo-${process.pid}-${i}`, args: [`n${i}`],
    }));
    for (let i = 0; i < 10; i++) ids.push((await start(i)).workflowId);
    await client.workflow.getHandle(ids[0]).result();

    pgctl('pause', pg.dir);
    // while it is down: a clear UNAVAILABLE, quickly
    let code = null;
    try {
      await client.workflow.start('hello', {
        taskQueue, workflowId: `pgo-${process.pid}-down`, args: ['down'],
      });
    } catch (err) {
      code = grpcCode(err) ?? grpcCode(err.cause);
    }
    assert.equal(code, 14, 'a start while PostgreSQL is down answers UNAVAILABLE');
    assert.equal(srv.exit, null, 'the server is still running');
    const during = [];
    for (let i = 10; i < 15; i++) during.push(start(i)); // retried until it is back
    pgctl('resume', pg.dir);
    for (const h of await Promise.all(during)) ids.push(h.workflowId);
    for (let i = 15; i < 20; i++) ids.push((await start(i)).workflowId);

    const workflows = [];
    for (const id of ids) {
      const n = Number(id.split('-').pop());
      const handle = client.workflow.getHandle(id);
      assert.equal(await handle.result(), `Hello, n${n}!`);
      const problems = checkHistory(await handle.fetchHistory());
      assert.deepEqual(problems, [], `${id}: ${problems.join('; ')}`);
      const d = await handle.describe();
      workflows.push({ id, runId: d.runId, status: d.status.name });
    }
    await checkVisibility(ctx, pg, { client, workflows }, { taskQueue });
  });
  await nc.close();
  await connection.close();
  srv.proc.kill('SIGTERM');
  const exit = await srv.exited;
  assert.equal(exit.code, 0, 'clean exit after the outage');
}, { server: false, timeoutMs: 120_000 });
