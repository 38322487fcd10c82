// Fencing: a second server opened on the SAME SQLite file takes every shard
// (range_id + 1). The first server, still running, must no longer be able
// to write: StartWorkflowExecution on it fails (a bounded error, no hang),
// and nothing it tried is visible through the second server, which keeps
// working normally.
'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Client, Connection, WorkflowNotFoundError } = require('@temporalio/client');
const { scenario } = require('../../e2e/lib/harness');
const { describeError, grpcCode, codeName } = require('../../e2e/lib/errors');
const { startServer, sqliteStore, tempDir } = require('../lib/proc');

const ATTEMPTS = 4;         // ids spread over the shards (default 4)
const FENCED_CALL_MS = 10_000;

// shard_id -> range_id, read with the sqlite3 shell when it is installed.
function ranges(file) {
  try {
    const out = execFileSync('sqlite3', ['-readonly', file,
      'SELECT shard_id, range_id FROM shards ORDER BY shard_id'], { encoding: 'utf8' });
    return Object.fromEntries(out.trim().split('\n').map((l) => l.split('|').map(Number)));
  } catch (err) {
    return null;
  }
}

// A client without the SDK's retry interceptor: one attempt per call.
async function rawClient(address) {
  const connection = await Connection.connect({ address, interceptors: [] });
  return { connection, client: new Client({ connection, namespace: 'default' }) };
}

scenario('fencing-sqlite', async (ctx) => {
  const dir = tempDir('fence');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = sqliteStore(path.join(dir, 'gt.db'));
  const servers = [];
  ctx.onCleanup(async () => { for (const s of servers) await s.kill9(); });

  ctx.step('starting server A');
  const a = await startServer(store, { name: 'fencing-A' });
  servers.push(a);
  const ca = await rawClient(a.address);
  ctx.onCleanup(() => ca.connection.close());
  const before = ctx.uniqueId('before');
  await ca.client.workflow.start('hello', { taskQueue: ctx.taskQueue,
    workflowId: before, args: ['A'] });
  const r1 = ranges(store.file);

  ctx.step('starting server B on the same file');
  const b = await startServer(store, { name: 'fencing-B' });
  servers.push(b);
  const cb = await rawClient(b.address);
  ctx.onCleanup(() => cb.connection.close());
  const r2 = ranges(store.file);
  if (r1 && r2) {
    // Only the shards A owns (range_id > 0): the schema also creates rows
    // the server never acquires.
    const owned = Object.keys(r1).filter((shard) => r1[shard] > 0);
    assert.ok(owned.length > 0, `A owns no shard: ${JSON.stringify(r1)}`);
    for (const shard of owned) {
      assert.equal(r2[shard], r1[shard] + 1, `shard ${shard}: B must take it ` +
        `with range_id ${r1[shard] + 1}; ranges before ${JSON.stringify(r1)} ` +
        `after ${JSON.stringify(r2)}`);
    }
  } else {
    console.log('NOTE sqlite3 shell missing: range_id not read');
  }
  // What A wrote before B came is B's now.
  await cb.client.workflow.getHandle(before).describe();

  ctx.step('starting workflows on the fenced server A');
  const ids = [];
  for (let i = 0; i < ATTEMPTS; i++) {
    const id = ctx.uniqueId(`fenced-${i}`);
    ids.push(id);
    let outcome;
    try {
      const h = await ca.connection.withDeadline(Date.now() + FENCED_CALL_MS, () =>
        ca.client.workflow.start('hello', { taskQueue: ctx.taskQueue,
          workflowId: id, args: ['fenced'] }));
      outcome = `succeeded (run ${h.firstExecutionRunId})`;
    } catch (err) {
      const code = grpcCode(err);
      console.log(`fenced start ${i}: ${codeName(code)}: ` +
        `${describeError(err, '', { stack: false }).split('\n').pop()}`);
      if (code === 4) outcome = `hung until the ${FENCED_CALL_MS} ms deadline`;
    }
    assert.equal(outcome, undefined, `StartWorkflowExecution on the fenced ` +
      `server A must fail, but it ${outcome}`);
  }

  // A must not take the shards back (ownership ping-pong).
  const r3 = ranges(store.file);
  if (r2 && r3) {
    assert.deepEqual(r3, r2, 'the fenced server A changed the shard ranges');
  }

  ctx.step('nothing A tried is visible through B');
  for (const id of ids) {
    let found = null;
    try {
      found = await cb.client.workflow.getHandle(id).describe();
    } catch (err) {
      const notFound = err instanceof WorkflowNotFoundError || grpcCode(err) === 5;
      assert.ok(notFound, `describe ${id} on B: expected NOT_FOUND, ` +
        `got:\n${describeError(err, '  ', { stack: false })}`);
    }
    assert.equal(found, null, `${id}, refused by A, exists through B ` +
      `(status ${found && found.status.name})`);
  }

  ctx.step('B works: a hello workflow completes on it');
  const { NativeConnection, Worker } = require('@temporalio/worker');
  const { workerBundleOptions } = require('../../e2e/lib/bundle');
  const nconn = await NativeConnection.connect({ address: b.address });
  const worker = await Worker.create({ connection: nconn, namespace: 'default',
    taskQueue: ctx.taskQueue, activities: ctx.activities, ...workerBundleOptions() });
  await worker.runUntil(async () => {
    const h = await cb.client.workflow.start('hello', { taskQueue: ctx.taskQueue,
      workflowId: ctx.uniqueId('on-b'), args: ['B'] });
    assert.equal(await h.result(), 'Hello, B!');
    // The workflow A started before B came completes on B too.
    assert.equal(await cb.client.workflow.getHandle(before).result(), 'Hello, A!');
  });
  await nconn.close();

  ctx.step('stopping both servers');
  const pb = await b.stop();
  assert.equal(pb, null, `B: ${pb}\n${b.tail()}`);
  const pa = await a.stop();
  assert.equal(pa, null, `A (fenced): ${pa}\n${a.tail()}`);
  console.log(`A's output after fencing (${a.output.split('\n').length - 1} lines):\n` +
    a.tail(8));
}, { server: false, timeoutMs: 90_000 });
