// kill -9 during a mixed load on PostgreSQL (a throwaway instance from
// tools/pg-test-server.sh, stopped after): as 01, through the
// `--config FILE` form with pluginName postgres.
'use strict';

const { scenario } = require('../../e2e/lib/harness');
const { postgresStore, startPostgres } = require('../lib/proc');
const { crashLoad } = require('../lib/load');

scenario('kill9-postgres', async (ctx) => {
  const pg = startPostgres();
  ctx.onCleanup(() => pg.stop());
  await crashLoad(ctx, postgresStore(pg.conninfo, pg.dir));
}, { server: false, timeoutMs: 120_000 });
