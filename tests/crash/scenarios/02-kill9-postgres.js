// kill -9 during a mixed load on PostgreSQL (a throwaway instance from
// tools/pg-test-server.sh, stopped after): as 01, through the
// `--config FILE` form with pluginName postgres, and with a SEPARATE
// visibility store: persistence.visibilityStore names database gt_visibility
// on the same server (created here; the server lays the schema down in it).
//
// Visibility goes through an outbox (a visibility_tasks row in the default
// database, applied to the visibility database after the commit, swept after a
// crash), so it is eventually consistent. Once the load is checked (lib/load.js),
// with the last server still up: List (official SDK) polled up to 15 s must show
// exactly every workflow of the load (children included) with the run and the
// status the check found, Count must agree; in the default database `visibility`
// is empty and `visibility_tasks` drains to 0 (polled); the visibility
// database's `visibility` holds exactly those runs.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../../e2e/lib/harness');
const { postgresStore, startPostgres, sleep } = require('../lib/proc');
const { crashLoad, retrying } = require('../lib/load');

const VIS_DB = 'gt_visibility';
const DEADLINE_MS = 15_000;

// The executions List returns for query, as { id: 'STATUS runId' }; a
// workflow id listed twice is kept as an array of both.
async function listed(client, query) {
  const out = {};
  for await (const wf of client.workflow.list({ query })) {
    const v = `${wf.status.name} ${wf.runId}`;
    const id = wf.workflowId;
    out[id] = id in out ? [].concat(out[id], v) : v;
  }
  return out;
}

// Polls fn() until it deep-equals want; asserts on the last value at the deadline.
async function awaitEqual(what, fn, want) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    const got = await fn();
    try {
      assert.deepEqual(got, want);
      return got;
    } catch (err) {
      if (Date.now() > end) {
        err.message = `${what}: not as expected after ${DEADLINE_MS} ms\n${err.message}`;
        throw err;
      }
    }
    await sleep(200);
  }
}

// The check of visibility, run while the last server is still up.
async function checkVisibility(ctx, pg, { client, workflows }) {
  const query = `TaskQueue = '${ctx.taskQueue}'`;
  const want = {};
  for (const wf of workflows) {
    assert.ok(wf.id && wf.runId && wf.status, `incomplete load info: ${JSON.stringify(wf)}`);
    assert.ok(!(wf.id in want), `workflow id ${wf.id} twice in the load`);
    want[wf.id] = `${wf.status} ${wf.runId}`;
  }
  const n = workflows.length;
  const completed = workflows.filter((w) => w.status === 'COMPLETED').length;

  ctx.step(`visibility: List of ${n} workflows`);
  await awaitEqual(`List(${query})`,
    () => retrying('list', () => listed(client, query)), want);
  const count = (q) => retrying(`count ${q}`, () => client.workflow.count(q))
    .then((r) => r.count);
  assert.equal(await count(query), n, `Count(${query})`);
  assert.equal(await count(`${query} AND ExecutionStatus = 'Completed'`), completed,
    'Count of the completed ones');

  ctx.step('visibility: the tables of the two databases');
  assert.equal(pg.psql('SELECT count(*) FROM visibility'), '0',
    'the default database has visibility rows (they belong in the visibility database)');
  await awaitEqual('visibility_tasks rows left in the default database',
    () => pg.psql('SELECT count(*) FROM visibility_tasks'), '0');
  // sorted here: the database's collation need not order as JS does
  const rows = pg.psql('SELECT workflow_id, run_id FROM visibility', VIS_DB)
    .split('\n').filter(Boolean).sort();
  const wantRows = workflows.map((w) => `${w.id}|${w.runId}`).sort();
  assert.equal(rows.length, n, `rows in ${VIS_DB}.visibility`);
  assert.deepEqual(rows, wantRows, `the runs in ${VIS_DB}.visibility`);
  console.log(`visibility: ${n} workflows (${completed} completed) listed, counted, ` +
    `in ${VIS_DB} only`);
}

scenario('kill9-postgres', async (ctx) => {
  const pg = startPostgres();
  ctx.onCleanup(() => pg.stop());
  pg.psql(`CREATE DATABASE ${VIS_DB}`);
  await crashLoad(ctx, postgresStore(pg.conninfo, pg.dir, { visibilityDb: VIS_DB }), {
    afterLoad: (c, info) => checkVisibility(c, pg, info),
  });
}, { server: false, timeoutMs: 120_000 });
