// A torn SQLite file (a real database truncated in the middle): the server
// must exit non-zero quickly with a clear error and leave the file as it is.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { scenario } = require('../../e2e/lib/harness');
const { startServer, sqliteStore, tempDir } = require('../lib/proc');
const { expectRefused, assertUntouched, sha256 } = require('../lib/badstore');

scenario('torn-sqlite', async (ctx) => {
  const dir = tempDir('torn');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'gt.db');
  const store = sqliteStore(file);

  ctx.step('filling a real database');
  const srv = await startServer(store, { name: 'torn-fill' });
  const connection = await Connection.connect({ address: srv.address });
  const client = new Client({ connection, namespace: 'default' });
  await Promise.all(Array.from({ length: 60 }, (_, i) => client.workflow.start('hello', {
    taskQueue: ctx.taskQueue, workflowId: ctx.uniqueId(`fill-${i}`), args: ['x'.repeat(2000)],
  })));
  await connection.close();
  const problem = await srv.stop();
  assert.equal(problem, null, problem);
  for (const side of ['-wal', '-shm']) {
    // A clean stop checkpoints the WAL; a leftover would make the tear moot.
    if (fs.existsSync(file + side)) fs.rmSync(file + side);
  }

  const full = fs.statSync(file).size;
  assert.ok(full >= 64 * 1024, `the database is too small to tear (${full} bytes)`);
  // Not on a page boundary: the last page is half there.
  fs.truncateSync(file, Math.floor(full / 2) + 1000);
  const size = fs.statSync(file).size;
  const sum = sha256(file);
  ctx.step(`torn from ${full} to ${size} bytes; starting on it`);
  await expectRefused(store, /error|ERROR/, 'torn-start');
  assertUntouched(file, sum, size);
}, { server: false, timeoutMs: 60_000 });
