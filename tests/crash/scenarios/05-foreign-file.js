// A foreign file (random bytes) given as the SQLite database: the server
// must exit non-zero quickly with a clear error and not modify it.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { scenario } = require('../../e2e/lib/harness');
const { sqliteStore, tempDir } = require('../lib/proc');
const { expectRefused, assertUntouched, sha256 } = require('../lib/badstore');

scenario('foreign-file', async (ctx) => {
  const dir = tempDir('foreign');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'not-a-db.bin');
  fs.writeFileSync(file, crypto.randomBytes(64 * 1024));
  const sum = sha256(file);
  await expectRefused(sqliteStore(file), /error|ERROR/, 'foreign-start');
  assertUntouched(file, sum, 64 * 1024);
  const left = fs.readdirSync(dir).filter((f) => f !== 'not-a-db.bin');
  if (left.length) throw new Error(`the server created ${left.join(', ')} beside it`);
}, { server: false, timeoutMs: 30_000 });
