// The e2e scenario harness: one scenario per node process.
//
// scenario(name, fn, opts) starts a fresh genesis-temporal dev server on a
// free port (and a free HTTP port), waits until GetSystemInfo answers, hands
// `fn` a context (address, httpPort for /health and /metrics, connection,
// client, task queue, worker helpers), enforces a per-scenario timeout, then
// stops the server with SIGTERM and requires a
// clean exit 0. It prints `E2E-OK name` on success (run.sh checks for it,
// so a script that silently does nothing cannot pass) or `E2E-FAIL name`
// with the error chain and the tail of the server's output, and exits 0/1.
//
// opts: { timeoutMs, server: false, serverArgs: [...] (appended to the
// server's command line), metrics: true (the SDK's metrics go to an
// in-process buffer: ctx.sdkMetrics() drains it) }.
//
// Environment: GT_BINARY (server path; else argv[2]), GT_E2E_BUNDLE
// (prebuilt workflow bundle), GT_E2E_LOGDIR (full server logs),
// GT_E2E_TIMEOUT_MS (overrides the per-scenario timeout).
'use strict';

const path = require('node:path');
const { Client, Connection } = require('@temporalio/client');
const {
  DefaultLogger, MetricsBuffer, NativeConnection, Runtime, Worker,
} = require('@temporalio/worker');
const { startServer } = require('./server');
const { workerBundleOptions } = require('./bundle');
const { describeError } = require('./errors');

const DEFAULT_TIMEOUT_MS = 30_000;
const CLEANUP_STEP_MS = 10_000;

let runtimeInstalled = false;
let metricsBuffer = null;
function installRuntime(opts) {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  // shutdownSignals: [] -- the harness owns SIGTERM/SIGINT (it must kill
  // the server it started before exiting).
  const options = { logger: new DefaultLogger('WARN'), shutdownSignals: [] };
  if (opts.metrics) {
    metricsBuffer = new MetricsBuffer();
    options.telemetryOptions = { metrics: { buffer: metricsBuffer } };
  }
  Runtime.install(options);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ` +
      `${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function uniqueId(prefix) {
  const rnd = Math.random().toString(36).slice(2, 8);
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${rnd}`;
}

function binaryPath() {
  const b = process.env.GT_BINARY || process.argv[2];
  return b ? path.resolve(b) : null;
}

// Builds the object handed to the scenario function.
function makeContext(name, state) {
  const ctx = {
    name,
    binary: binaryPath(),
    taskQueue: uniqueId(`e2e-${name}`),
    namespace: 'default',
    uniqueId,
    activities: require('../activities'),
    // step('waiting for result'): names what the scenario is doing, so a
    // timeout or failure report says where it stopped.
    step(text) { state.steps.push(`${Date.now() - state.t0}ms ${text}`); },
    // onCleanup(fn): fn runs (bounded) after the scenario, even on timeout,
    // before the harness's own server is stopped. Last registered runs first.
    onCleanup(fn) { state.cleanups.unshift(fn); },
    // sdkMetrics(): the SDK's metric updates since the last call (opts.metrics).
    sdkMetrics() {
      if (!metricsBuffer) throw new Error('scenario opts.metrics is not set');
      return [...metricsBuffer.retrieveUpdates()];
    },
  };
  if (!state.server) return ctx;
  Object.assign(ctx, {
    server: state.server,
    address: state.server.address,
    httpPort: state.server.httpPort, // /health and /metrics (HTTP/1.1)
    systemInfo: state.systemInfo,
    connection: state.connection,
    client: state.client,
    async nativeConnection() {
      if (!state.nativeConnection) {
        state.nativeConnection = await NativeConnection.connect({
          address: state.server.address,
        });
      }
      return state.nativeConnection;
    },
    // A worker on ctx.taskQueue with all workflows and activities; `opts`
    // overrides any Worker.create option.
    async makeWorker(opts = {}) {
      const worker = await Worker.create({
        connection: await ctx.nativeConnection(),
        namespace: 'default',
        taskQueue: ctx.taskQueue,
        activities: ctx.activities,
        ...workerBundleOptions(),
        ...opts,
      });
      state.workers.push(worker);
      return worker;
    },
    // withWorker([opts,] async (worker) => ...): runs the body while a
    // worker polls, then shuts the worker down cleanly (runUntil).
    async withWorker(optsOrBody, maybeBody) {
      const body = typeof optsOrBody === 'function' ? optsOrBody : maybeBody;
      const opts = typeof optsOrBody === 'function' ? {} : optsOrBody;
      ctx.step('creating worker');
      const worker = await ctx.makeWorker(opts);
      ctx.step('worker running');
      const result = await worker.runUntil(async () => {
        const r = await body(worker);
        ctx.step('body done; shutting worker down');
        return r;
      });
      ctx.step('worker stopped');
      return result;
    },
  });
  return ctx;
}

async function startAll(name, state, opts) {
  const binary = binaryPath();
  state.steps.push(`${Date.now() - state.t0}ms starting server`);
  state.server = await startServer(binary, {
    logDir: process.env.GT_E2E_LOGDIR, name, extraArgs: opts.serverArgs || [],
  });
  state.systemInfo = await state.server.waitReady();
  state.steps.push(`${Date.now() - state.t0}ms server ready`);
  state.connection = await Connection.connect({
    address: state.server.address,
  });
  state.client = new Client({
    connection: state.connection, namespace: 'default',
  });
}

// Best effort, bounded: a wedged server must not wedge the harness.
async function cleanup(state, failed) {
  const step = (p, what) => withTimeout(Promise.resolve().then(p),
    CLEANUP_STEP_MS, what).catch((err) => {
    if (!failed) state.cleanupErrors.push(`${what}: ${err.message}`);
  });
  for (const fn of state.cleanups) await step(fn, 'onCleanup hook');
  for (const w of state.workers) {
    if (w.getState() === 'RUNNING') {
      if (!failed) state.cleanupErrors.push('a worker was left running ' +
        '(use ctx.withWorker or worker.runUntil)');
      await step(() => w.shutdown(), 'worker shutdown');
    }
  }
  if (state.connection) await step(() => state.connection.close(),
    'closing client connection');
  if (state.nativeConnection && !failed) {
    await step(() => state.nativeConnection.close(),
      'closing worker connection');
  }
  if (state.server) {
    const problem = await state.server.stop();
    // After a failure an exited server is already shown in the report.
    if (problem && !(failed && state.server.diedEarly)) {
      state.cleanupErrors.push(problem);
    }
  }
}

function report(name, state, err, ms) {
  if (!err && state.cleanupErrors.length === 0) {
    if (process.env.GT_E2E_VERBOSE) console.log(state.steps.join('\n'));
    console.log(`E2E-OK ${name} ${ms}ms`);
    return 0;
  }
  console.log(`E2E-FAIL ${name} after ${ms}ms`);
  if (err) console.log(describeError(err));
  if (state.steps.length) {
    console.log(`steps (last is where it stopped):\n  ` +
      state.steps.slice(-8).join('\n  '));
  }
  for (const problem of state.cleanupErrors) {
    console.log(`cleanup: ${problem}`);
  }
  if (state.server) {
    console.log(`--- server ${state.server.describeExit()}; ` +
      `cmd: ${state.server.binary} ${state.server.args.join(' ')}`);
    console.log('--- server output (tail) ---');
    console.log(state.server.tail(40));
    console.log('--- end server output ---');
  }
  return 1;
}

async function run(name, fn, opts) {
  installRuntime(opts);
  const state = { workers: [], cleanupErrors: [], steps: [], cleanups: [], t0: Date.now() };
  const die = (sig) => {
    console.log(`E2E-FAIL ${name}: interrupted by ${sig}`);
    if (state.server) state.server.killNow();
    process.exit(1);
  };
  process.once('SIGTERM', () => die('SIGTERM'));
  process.once('SIGINT', () => die('SIGINT'));
  process.on('exit', () => { if (state.server) state.server.killNow(); });

  const timeoutMs = Number(process.env.GT_E2E_TIMEOUT_MS) ||
    opts.timeoutMs || DEFAULT_TIMEOUT_MS;
  const t0 = Date.now();
  let err = null;
  try {
    await withTimeout((async () => {
      if (opts.server !== false) await startAll(name, state, opts);
      await fn(makeContext(name, state));
    })(), timeoutMs, `scenario '${name}'`);
  } catch (e) {
    err = e;
  }
  state.steps.push(`${Date.now() - state.t0}ms cleanup`);
  await cleanup(state, err != null);
  state.steps.push(`${Date.now() - state.t0}ms cleaned up`);
  return report(name, state, err, Date.now() - t0);
}

// Entry point for scenario files. opts: see the top of this file.
function scenario(name, fn, opts = {}) {
  run(name, fn, opts).then((code) => process.exit(code), (err) => {
    console.log(`E2E-FAIL ${name}: harness error\n${describeError(err)}`);
    process.exit(1);
  });
}

module.exports = { scenario, uniqueId, withTimeout };
