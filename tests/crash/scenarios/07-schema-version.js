// Schema versions. PostgreSQL: tools/schema-postgresql.sh creates the
// database and installs v2 (`setup`), `upgrade` says "already at version 2",
// the server starts on that database; a version 1 schema is refused by the
// server (naming the upgrade command) and upgraded by the script, rows kept;
// once the recorded version is unknown, the server refuses to start with a
// clear line and the script's upgrade fails. A visibilityStore naming another
// database: setup creates and installs both, version reports both, the server
// runs on them. SQLite: the same refusal, the
// file left untouched.
'use strict';

const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { scenario } = require('../../e2e/lib/harness');
const {
  ROOT, postgresStore, sqliteStore, startPostgres, startServer, tempDir,
} = require('../lib/proc');
const { expectRefused, assertUntouched, sha256 } = require('../lib/badstore');

const SCRIPT = path.join(ROOT, 'tools/schema-postgresql.sh');
// The tables of persistence/schema/postgres/v1.sql, to lay a version 1 schema down again.
const V1_TABLES = 'cluster_metadata, namespaces, shards, executions, current_executions, ' +
  'history, transfer_tasks, timer_tasks, visibility_tasks, task_queue_tasks, visibility, ' +
  'search_attributes, chasm_components';

function schema(cmd, config) {
  const r = spawnSync('bash', [SCRIPT, cmd, '--config', config], { encoding: 'utf8' });
  return { rc: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

async function startOne(ctx, store, name) {
  const srv = await startServer(store, { name });
  const connection = await Connection.connect({ address: srv.address });
  const client = new Client({ connection, namespace: 'default' });
  await client.workflow.start('hello', { taskQueue: ctx.taskQueue,
    workflowId: ctx.uniqueId(name), args: ['v'] });
  await connection.close();
  const problem = await srv.stop();
  assert.equal(problem, null, `${problem}\n${srv.tail()}`);
}

async function postgres(ctx) {
  const pg = startPostgres();
  ctx.onCleanup(() => pg.stop());
  const conninfo = pg.conninfo.replace(/dbname=\S+/, 'dbname=gt_schema_test');
  const store = postgresStore(conninfo, pg.dir);
  const config = store.args(1, 2)[1]; // a config file naming that database

  ctx.step('schema-postgresql.sh setup / upgrade / version');
  let r = schema('setup', config);
  assert.equal(r.rc, 0, `setup: ${r.out}`);
  assert.match(r.out, /database created/);
  assert.match(r.out, /schema version 2 installed/);
  r = schema('upgrade', config);
  assert.equal(r.rc, 0, `upgrade: ${r.out}`);
  assert.match(r.out, /already at version 2/);
  r = schema('setup', config);
  assert.equal(r.rc, 0, `second setup: ${r.out}`);
  assert.match(r.out, /already at version 2/);
  assert.equal(schema('version', config).out, '2');

  ctx.step('the server runs on the installed schema');
  await startOne(ctx, store, 'schema-pg-ok');

  const psql = (sql) => execFileSync('psql', ['-X', '-q', '-t', '-A', '-v',
    'ON_ERROR_STOP=1', conninfo, '-c', sql], { encoding: 'utf8' }).trim();

  ctx.step('a version 1 database: the server refuses it, the script upgrades it');
  psql(`DROP TABLE ${V1_TABLES}`);
  execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', conninfo, '-f',
    path.join(ROOT, 'persistence/schema/postgres/v1.sql')]);
  psql("INSERT INTO executions VALUES (1, 'ns', 'wf-old', 'run-old', 3, 1, NULL)");
  await expectRefused(store,
    /ERROR.*schema version 1, this build needs 2.*install-schema-postgresql/i, 'schema-pg-v1');
  r = schema('upgrade', config);
  assert.equal(r.rc, 0, `upgrade from v1: ${r.out}`);
  assert.match(r.out, /upgraded from version 1 to version 2/);
  assert.equal(schema('version', config).out, '2');
  assert.equal(psql("SELECT workflow_id FROM executions WHERE run_id = 'run-old'"), 'wf-old',
    'the upgrade lost a row');
  await startOne(ctx, store, 'schema-pg-upgraded');

  ctx.step('a different recorded version is refused');
  psql('UPDATE cluster_metadata SET schema_version = 3');
  await expectRefused(store, /ERROR.*schema version 3/i, 'schema-pg-v3');
  assert.equal(psql('SELECT schema_version FROM cluster_metadata'), '3',
    'the refused database was modified');
  r = schema('upgrade', config);
  assert.equal(r.rc, 1, `upgrade of a v3 database must fail: ${r.out}`);
  assert.match(r.out, /schema version 3, this build's is 2/);

  ctx.step('a visibilityStore in another database: set up, reported, served');
  const visConninfo = pg.conninfo.replace(/dbname=\S+/, 'dbname=gt_schema_main');
  const visStore = postgresStore(visConninfo, pg.dir, { visibilityDb: 'gt_schema_vis' });
  const visConfig = visStore.args(1, 2)[1];
  r = schema('setup', visConfig);
  assert.equal(r.rc, 0, `setup with a visibility database: ${r.out}`);
  assert.match(r.out, /gt_schema_main: schema version 2 installed/);
  assert.match(r.out, /gt_schema_vis: database created/);
  assert.match(r.out, /gt_schema_vis: schema version 2 installed/);
  assert.equal(schema('version', visConfig).out, '2\nvisibility gt_schema_vis: 2');
  r = schema('upgrade', visConfig);
  assert.equal(r.rc, 0, `upgrade: ${r.out}`);
  assert.match(r.out, /gt_schema_vis: already at version 2/);
  await startOne(ctx, visStore, 'schema-pg-vis');
}

function sqlite3Shell() {
  return spawnSync('sqlite3', ['-version']).status === 0;
}

async function sqlite(ctx) {
  if (!sqlite3Shell()) {
    console.log('NOTE sqlite3 shell missing: SQLite version check skipped');
    return;
  }
  const dir = tempDir('schema');
  ctx.onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'gt.db');
  const store = sqliteStore(file);
  await startOne(ctx, store, 'schema-sqlite-ok');
  execFileSync('sqlite3', [file, 'UPDATE cluster_metadata SET schema_version = 7;' +
    'PRAGMA wal_checkpoint(TRUNCATE);']);
  const size = fs.statSync(file).size;
  const sum = sha256(file);
  await expectRefused(store, /ERROR.*schema version 7/i, 'schema-sqlite-v7');
  assertUntouched(file, sum, size);
}

scenario('schema-version', async (ctx) => {
  await postgres(ctx);
  await sqlite(ctx);
}, { server: false, timeoutMs: 90_000 });
