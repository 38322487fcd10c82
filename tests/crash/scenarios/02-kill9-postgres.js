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

const { scenario } = require('../../e2e/lib/harness');
const { postgresStore, startPostgres } = require('../lib/proc');
const { crashLoad } = require('../lib/load');
const { VIS_DB, checkVisibility } = require('../lib/visibility');

scenario('kill9-postgres', async (ctx) => {
  const pg = startPostgres();
  ctx.onCleanup(() => pg.stop());
  pg.psql(`CREATE DATABASE ${VIS_DB}`);
  await crashLoad(ctx, postgresStore(pg.conninfo, pg.dir, { visibilityDb: VIS_DB }), {
    afterLoad: (c, info) => checkVisibility(c, pg, info),
  });
}, { server: false, timeoutMs: 120_000 });
