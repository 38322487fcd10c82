// A server on a SQLite file that a scenario restarts (kill -9 or not) on the same file
// and port, and a worker run for the length of a body (scenarios 14, 34).
'use strict';

const { Worker, NativeConnection } = require('@temporalio/worker');
const { ServerProcess, freePort } = require('./server');
const { workerBundleOptions } = require('./bundle');
const activities = require('../activities');

// Starts `server start-dev --db-filename dbFile` on port (a free one when omitted) and
// waits until it serves.
async function startFileServer(dbFile, port) {
  const srv = new ServerProcess(process.env.GT_BINARY, port || await freePort(), null,
    ['--db-filename', dbFile]);
  await srv.waitReady();
  return srv;
}

// Runs a worker of taskQueue on the server at address while fn() runs; returns its value.
async function withWorkerAt(address, taskQueue, fn) {
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection, namespace: 'default', taskQueue, activities, ...workerBundleOptions(),
  });
  try {
    return await worker.runUntil(fn());
  } finally {
    await connection.close();
  }
}

module.exports = { startFileServer, withWorkerAt };
