// An unreachable PostgreSQL (conninfo to a closed port): the server must
// exit non-zero quickly with a clear error line naming the problem.
'use strict';

const { scenario } = require('../../e2e/lib/harness');
const { freePort, postgresStore, tempDir } = require('../lib/proc');
const { expectRefused } = require('../lib/badstore');
const fs = require('node:fs');

scenario('pg-unreachable', async (ctx) => {
  const dir = tempDir('pgdown');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort(); // nobody listens there
  const store = postgresStore(`host=127.0.0.1 port=${port} user=postgres dbname=temporal`, dir);
  const { ms } = await expectRefused(store, /(error|ERROR).*(PostgreSQL|connect)/i,
    'pg-unreachable-start');
  if (ms > 5000) throw new Error(`refusing took ${ms} ms (want < 5 s)`);
}, { server: false, timeoutMs: 30_000 });
