// hello-example.js: the README's quickstart. Against a running server (`make start`):
//   NODE_PATH=.deps/npm/node_modules node tools/hello-example.js [address]
// A worker runs the e2e suite's `hello` workflow, which calls the `greet` activity.
'use strict';

const { Client, Connection } = require('@temporalio/client');
const { Worker, NativeConnection } = require('@temporalio/worker');
const { workerBundleOptions } = require('../tests/e2e/lib/bundle');

async function main() {
  const address = process.argv[2] || '127.0.0.1:7233';
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    taskQueue: 'hello',
    activities: require('../tests/e2e/activities'),
    ...workerBundleOptions(), // bundles tests/e2e/workflows with the SDK's webpack
  });
  const client = new Client({ connection: await Connection.connect({ address }) });
  await worker.runUntil(async () => {
    const result = await client.workflow.execute('hello', {
      taskQueue: 'hello', workflowId: `hello-${Date.now()}`, args: ['Temporal'],
    });
    console.log(result); // Hello, Temporal!
  });
}

main().catch((err) => { console.error(err); process.exit(1); });
