// measure-open-memory.js: server memory per open workflow sleeping on a timer.
// Starts its own server (in-memory SQLite), runs N `sleeper(1 h)` workflows until every
// one has its TimerStarted, then reads the server's VmRSS.
//   NODE_PATH=.deps/npm/node_modules node tools/measure-open-memory.js build/genesis-temporal [N]
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const { Worker, NativeConnection, Runtime, DefaultLogger } = require('@temporalio/worker');
const { ServerProcess, freePort } = require('../tests/e2e/lib/server');
const { workerBundleOptions } = require('../tests/e2e/lib/bundle');

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

async function main() {
  const binary = path.resolve(process.argv[2] || 'build/genesis-temporal');
  const n = Number(process.argv[3] || 5000);
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  // GT_DB=file.db: a SQLite file (its page cache counts in RSS too), else in memory
  const srv = new ServerProcess(binary, await freePort(), null,
    process.env.GT_DB ? ['--db-filename', process.env.GT_DB] : []);
  await srv.waitReady();
  const idle = rssKb(srv.proc.pid);
  const connection = await Connection.connect({ address: srv.address });
  const client = new Client({ connection });
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address: srv.address }),
    taskQueue: 'mem', activities: {}, maxCachedWorkflows: 0, ...workerBundleOptions(),
  });
  await worker.runUntil(async () => {
    for (let i = 0; i < n; i += 200) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 200); j++) {
        batch.push(client.workflow.start('sleeper', {
          taskQueue: 'mem', workflowId: `mem-${j}`, args: [3600 * 1000],
        }));
      }
      await Promise.all(batch);
    }
    // every workflow has run its first task (TimerStarted) once the queue is drained
    for (;;) {
      const h = await client.workflow.getHandle(`mem-${n - 1}`).fetchHistory();
      if (h.events.some((e) => e.timerStartedEventAttributes)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 1000));
  });
  const open = rssKb(srv.proc.pid);
  console.log(`open workflows: ${n}; server RSS idle ${idle} kB, with them ${open} kB; ` +
    `${((open - idle) / n).toFixed(2)} kB per open workflow sleeping on a timer`);
  srv.proc.kill('SIGTERM');
  await srv.exited;
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
