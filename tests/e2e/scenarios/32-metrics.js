// The HTTP port: after one workflow run with the official SDK, GET /metrics
// (Prometheus text 0.0.4, fetched with node's http module) counts the
// StartWorkflowExecution call under Temporal's metric names, with a latency
// histogram (cumulative buckets, _count = +Inf bucket), persistence counters
// and latency histogram, workflow outcome counters, and each task queue's
// approximate_backlog_count (0 once the worker took every task, 1 for a start on
// a queue nobody polls), task_dispatch_latency of the workflow tasks; GET /health answers
// SERVING; an unknown path is 404, a POST 405.
'use strict';

const assert = require('node:assert/strict');
const http = require('node:http');
const { scenario } = require('../lib/harness');

function fetch(port, path, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path, method, agent: false, timeout: 5000,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode,
        headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

// The value of the sample `name{labels}` (exact text), or undefined.
function sample(text, key) {
  for (const line of text.split('\n')) {
    if (line.startsWith(key + ' ')) return Number(line.slice(key.length + 1));
  }
  return undefined;
}

scenario('metrics', async ({ client, taskQueue, withWorker, uniqueId, httpPort,
  step }) => {
  assert.ok(httpPort > 0, 'the harness must give the server an HTTP port');
  step('running one workflow');
  await withWorker(async () => {
    const handle = await client.workflow.start('hello', {
      args: ['metrics'], taskQueue, workflowId: uniqueId('metrics'),
    });
    assert.equal(await handle.result(), 'Hello, metrics!');
  });

  step('GET /health');
  const health = await fetch(httpPort, '/health');
  assert.equal(health.status, 200);
  assert.equal(health.body, 'SERVING\n');
  assert.match(health.headers['content-type'], /^text\/plain/);

  step('GET /metrics');
  const m = await fetch(httpPort, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const t = m.body;
  assert.match(t, /^# HELP service_requests /m);
  assert.match(t, /^# TYPE service_requests counter$/m);
  const op = 'operation="StartWorkflowExecution"';
  const started = sample(t, `service_requests{${op}}`);
  assert.ok(started >= 1, `service_requests{${op}} is ${started}:\n${t}`);
  assert.ok(sample(t, 'service_requests{operation="PollWorkflowTaskQueue"}') >= 1);
  assert.ok(sample(t,
    'service_requests{operation="RespondWorkflowTaskCompleted"}') >= 1);

  assert.match(t, /^# TYPE service_latency histogram$/m);
  const buckets = t.split('\n')
    .filter((l) => l.startsWith(`service_latency_bucket{${op},le="`))
    .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));
  assert.ok(buckets.length >= 2, `no latency buckets for ${op}`);
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i] >= buckets[i - 1], `buckets not cumulative: ${buckets}`);
  }
  const count = sample(t, `service_latency_count{${op}}`);
  assert.equal(count, started);
  assert.equal(sample(t, `service_latency_bucket{${op},le="+Inf"}`), count);
  assert.ok(sample(t, `service_latency_sum{${op}}`) > 0);

  const batches = sample(t, 'persistence_requests{operation="WriteBatch"}');
  assert.ok(batches >= 1);
  // every completed batch is in the latency histogram (a scrape is not atomic:
  // batches completing meanwhile may show in one and not yet the other)
  assert.match(t, /^# TYPE persistence_latency histogram$/m);
  const wb = 'operation="WriteBatch"';
  const pcount = sample(t, `persistence_latency_count{${wb}}`);
  assert.ok(pcount >= 1 && Math.abs(pcount - batches) <= 2,
    `persistence_latency_count ${pcount}, persistence_requests ${batches}`);
  assert.equal(sample(t, `persistence_latency_bucket{${wb},le="+Inf"}`), pcount);
  assert.ok(sample(t, `persistence_latency_sum{${wb}}`) > 0);
  assert.ok(sample(t, 'workflow_success') >= 1, 'workflow_success not counted');
  assert.ok(sample(t, 'process_resident_memory_bytes') > 0);

  // each scheduler thread's loop lag, a histogram (the server runs at least one)
  assert.match(t, /^# TYPE genesis_scheduler_loop_lag histogram$/m);
  const lagCount = sample(t, 'genesis_scheduler_loop_lag_count{thread="0"}');
  assert.ok(lagCount >= 1, `loop lag samples: ${lagCount}`);
  assert.equal(sample(t, 'genesis_scheduler_loop_lag_bucket{thread="0",le="+Inf"}'),
    lagCount);

  // workflow tasks waited in matching for the worker's poll (the activity may have been
  // handed out eagerly, never waiting there)
  assert.match(t, /^# TYPE task_dispatch_latency histogram$/m);
  const dispatched = sample(t, 'task_dispatch_latency_count{task_type="Workflow"}');
  assert.ok(dispatched >= 2, `workflow tasks dispatched: ${dispatched}`);
  assert.equal(sample(t, 'task_dispatch_latency_bucket{task_type="Workflow",le="+Inf"}'),
    dispatched);
  assert.ok(sample(t, 'task_dispatch_latency_count{task_type="Activity"}') >= 0);

  step('approximate_backlog_count');
  // the queue the workflow ran on: its worker took every task
  const bl = (queue) => 'approximate_backlog_count{namespace="default",'
    + `taskqueue="${queue}",task_type="Workflow"}`;
  assert.match(t, /^# TYPE approximate_backlog_count gauge$/m);
  assert.equal(sample(t, bl(taskQueue)), 0, `${bl(taskQueue)}:\n${t}`);
  // a start on a queue nobody polls: its first workflow task waits there. The task
  // reaches the queue after the start's commit, so the gauge is read until it shows.
  const idle = `${taskQueue}-nobody`;
  const waiting = await client.workflow.start('hello', {
    args: ['backlog'], taskQueue: idle, workflowId: uniqueId('backlog'),
  });
  let shown;
  for (let i = 0; i < 50 && shown !== 1; i++) {
    shown = sample((await fetch(httpPort, '/metrics')).body, bl(idle));
    if (shown !== 1) await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(shown, 1, `${bl(idle)} is ${shown}`);
  await waiting.terminate('the backlog was measured');

  step('unknown path, wrong method');
  const missing = await fetch(httpPort, '/no-such-page');
  assert.equal(missing.status, 404);
  const post = await fetch(httpPort, '/metrics', 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
});
