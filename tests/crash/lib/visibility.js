// The check of a separate visibility store after a crash test (tests/crash 02, 09).
//
// DESIGN: with persistence.visibilityStore naming another PostgreSQL database, records
// reach it through an outbox (a visibility_tasks row in the default database, applied
// after the commit, swept after a crash or a failure), so visibility is eventually
// consistent: List (official SDK) is polled until it shows exactly the expected
// workflows, each with its run and status; Count must agree; the default database must
// hold no visibility row and its visibility_tasks drain to 0 (polled); the visibility
// database's visibility table must hold exactly those runs.
'use strict';

const assert = require('node:assert/strict');
const { sleep } = require('./proc');
const { retrying } = require('./load');

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

// The check of visibility, run while the last server is still up. workflows: every
// workflow on the task queue (opts.taskQueue, else ctx.taskQueue), as { id, runId,
// status }; opts.visDb: the visibility database (VIS_DB).
async function checkVisibility(ctx, pg, { client, workflows }, opts = {}) {
  const visDb = opts.visDb || VIS_DB;
  const query = `TaskQueue = '${opts.taskQueue || ctx.taskQueue}'`;
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
  const rows = pg.psql('SELECT workflow_id, run_id FROM visibility', visDb)
    .split('\n').filter(Boolean).sort();
  const wantRows = workflows.map((w) => `${w.id}|${w.runId}`).sort();
  assert.equal(rows.length, n, `rows in ${visDb}.visibility`);
  assert.deepEqual(rows, wantRows, `the runs in ${visDb}.visibility`);
  console.log(`visibility: ${n} workflows (${completed} completed) listed, counted, ` +
    `in ${visDb} only`);
}

module.exports = { VIS_DB, checkVisibility, listed, awaitEqual };
