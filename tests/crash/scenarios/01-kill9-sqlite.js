// kill -9 during a mixed load (activities, timers, signals) on a SQLite
// file: 3 crashes, restarts on the same file and port, one worker riding
// through; see lib/load.js for what is checked.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { scenario } = require('../../e2e/lib/harness');
const { sqliteStore, tempDir } = require('../lib/proc');
const { crashLoad } = require('../lib/load');

scenario('kill9-sqlite', async (ctx) => {
  const dir = tempDir('sqlite');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  await crashLoad(ctx, sqliteStore(path.join(dir, 'gt.db')));
}, { server: false, timeoutMs: 120_000 });
