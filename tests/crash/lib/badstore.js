// Helpers for the bad-store scenarios: the server must refuse a store it
// cannot trust quickly, with a clear error line, without touching the file.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { spawnServer, sleep } = require('./proc');

const EXIT_WITHIN_MS = 10_000;

const sha256 = (file) =>
  crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

// Starts the server on `store`; it must exit non-zero within 10 s and print
// an error line matching `want` (a RegExp). Returns { ms, line }.
async function expectRefused(store, want, name) {
  const t0 = Date.now();
  const proc = await spawnServer(store, { name });
  const how = await Promise.race([proc.exited, sleep(EXIT_WITHIN_MS).then(() => 'timeout')]);
  const ms = Date.now() - t0;
  if (how === 'timeout') {
    await proc.kill9();
    assert.fail(`the server still runs ${EXIT_WITHIN_MS} ms after starting on ` +
      `${store.describe} (it must refuse it):\n${proc.tail()}`);
  }
  assert.ok(proc.exit.code !== 0 && proc.exit.code !== null,
    `the server must exit non-zero on ${store.describe}; it ` +
    `${proc.describeExit()}:\n${proc.tail()}`);
  const line = proc.output.split('\n').find((l) => want.test(l));
  assert.ok(line, `no error line matching ${want} in the server's output ` +
    `(${proc.describeExit()}):\n${proc.tail()}`);
  console.log(`refused in ${ms} ms (${proc.describeExit()}): ${line.trim()}`);
  return { ms, line };
}

// The main file is unchanged and no journal was left beside it.
function assertUntouched(file, sum, size) {
  assert.equal(fs.statSync(file).size, size, `${file} changed size`);
  assert.equal(sha256(file), sum, `${file} was modified`);
}

module.exports = { expectRefused, assertUntouched, sha256 };
