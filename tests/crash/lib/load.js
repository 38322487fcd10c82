// The kill -9 scenario body, shared by the SQLite and PostgreSQL scenarios.
//
// DESIGN: one server on a fixed port and store; one SDK worker for the whole
// run (it is never restarted: it must ride through the crashes by itself);
// one client whose calls are retried here on transient codes until they
// succeed. A producer starts hello / sleeper / summer / parent workflows (a
// child, external signals to it) / retriers (an activity failing twice, with
// maximumAttempts 3) and signals the summers, paced over the load
// window, while a killer SIGKILLs the server
// KILLS times at random moments and restarts it on the same port and store.
// Before each kill the killer starts one extra sleeper and awaits its
// TimerStarted, then stays down longer than that timer: a timer that falls
// due while the server is down. The only fixed sleeps are those down times.
//
// At the end every workflow must have completed with the right result, in
// exactly the run its start returned, with a consistent history (check.js),
// the due-while-down timers must have fired, a retrier's attempts must never
// have started over (its activity's attempt state is in executions.state), and
// the server must then stop cleanly on SIGTERM.
//
// crashLoad(ctx, store, { afterLoad }): afterLoad(ctx, info), when given, runs
// once all of that is checked, while the last server and the worker still run,
// before the SIGTERM stop. info = { client, address, seed, workflows }, where
// workflows lists every workflow of the load (those it started, the down-time
// sleepers, and the children the parents' histories name) as { id, runId, type,
// status, parentId }, status the name the check found (COMPLETED for all today).
'use strict';

const assert = require('node:assert/strict');
const { Client, Connection, WorkflowExecutionAlreadyStartedError } =
  require('@temporalio/client');
const { defaultPayloadConverter } = require('@temporalio/common');
const { NativeConnection, Worker } = require('@temporalio/worker');
const { workerBundleOptions } = require('../../e2e/lib/bundle');
const { grpcCode, describeError } = require('../../e2e/lib/errors');
const h = require('../../e2e/lib/history');
const { startServer, freePort, sleep } = require('./proc');
const { checkHistory, count, eventMs } = require('./check');

const KILLS = 3;
const DOWN_TIMER_MS = 1000; // the sleeper that falls due while down
const DOWN_MS = 1400;       // > DOWN_TIMER_MS: it is due before the restart
const RESULT_MS = 40_000; // all results are awaited together
const TRANSIENT = new Set([1, 2, 4, 8, 10, 13, 14]);

// A seeded PRNG so a failing run can be replayed (GT_CRASH_SEED).
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Retries fn while the server is down or restarting (transient gRPC codes).
async function retrying(what, fn, deadlineMs = 45_000) {
  const end = Date.now() + deadlineMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      const code = grpcCode(err);
      const transient = code == null ? /connect|UNAVAILABLE|ECONNREFUSED/i
        .test(String(err && err.message)) : TRANSIENT.has(code);
      if (!transient || Date.now() > end) {
        throw new Error(`${what} failed (attempt ${attempt + 1}):\n` +
          describeError(err, '  ', { stack: false }));
      }
      await sleep(Math.min(50 * 2 ** attempt, 500));
    }
  }
}

function plan(rand, ctx) {
  const wfs = [];
  const id = (kind, i) => `${kind}-${i}-${ctx.uniqueId('c')}`;
  for (let i = 0; i < 24; i++) {
    wfs.push({ type: 'hello', id: id('hello', i), args: [`n${i}`], want: `Hello, n${i}!` });
  }
  for (let i = 0; i < 12; i++) {
    const ms = 200 + Math.floor(rand() * 2800);
    wfs.push({ type: 'sleeper', id: id('sleep', i), args: [ms], want: `slept ${ms}` });
  }
  // Messages between workflows (wf_child.c): a child's start and result, external
  // signals; a crash between a commit and its message must lose neither.
  for (let i = 0; i < 8; i++) {
    wfs.push({ type: 'parent', id: id('parent', i), args: [`p${i}`], want: `Hello, p${i}!` });
  }
  for (let i = 0; i < 4; i++) {
    wfs.push({ type: 'parentSignalling', id: id('psig', i), args: [], want: 7 });
  }
  for (let i = 0; i < 8; i++) { // parents asleep on a child across the kills
    const ms = 500 + Math.floor(rand() * 3500);
    wfs.push({ type: 'parentOfSleeper', id: id('psleep', i), args: [ms], want: `slept ${ms}` });
  }
  // Activity retries write no event: a kill in a backoff must not restart the
  // attempts at 1 (their 1 s backoffs make it likely that some kill falls in one).
  for (let i = 0; i < 12; i++) {
    const wid = id('retry', i);
    wfs.push({ type: 'retryingAcrossCrashes', id: wid, args: [wid], want: 'ok on attempt 3' });
  }
  const summers = [];
  for (let i = 0; i < 6; i++) {
    const adds = [1, 2, 3, 4].map(() => 1 + Math.floor(rand() * 100));
    const wf = { type: 'summer', id: id('sum', i), args: [], adds, signals: [] };
    wfs.push(wf);
    summers.push(wf);
  }
  // Operations in a random order; a summer's signals come after its start.
  const ops = wfs.map((wf) => ({ op: 'start', wf }));
  for (let i = ops.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ops[i], ops[j]] = [ops[j], ops[i]];
  }
  for (const wf of summers) {
    const after = ops.findIndex((o) => o.wf === wf);
    const sigs = [...wf.adds.map((n) => ({ name: 'add', n })), { name: 'done' }];
    let at = after;
    for (const s of sigs) {
      at = at + 1 + Math.floor(rand() * (ops.length - at) / 3);
      ops.splice(Math.min(at, ops.length), 0, { op: 'signal', wf, sig: s });
    }
  }
  return { wfs, ops };
}

class Load {
  constructor(ctx, store, seed) {
    this.ctx = ctx;
    this.store = store;
    this.seed = seed;
    this.rand = rng(seed);
    this.downs = []; // { killAt, upAt, sleeper }
    this.notes = [];
  }

  async start() {
    this.port = await freePort();
    this.httpPort = await freePort();
    this.srv = await this.startServer();
    this.address = this.srv.address;
    this.conn = await Connection.connect({ address: this.address });
    this.client = new Client({ connection: this.conn, namespace: 'default' });
    this.nconn = await NativeConnection.connect({ address: this.address });
    this.worker = await Worker.create({
      connection: this.nconn, namespace: 'default', taskQueue: this.ctx.taskQueue,
      activities: this.ctx.activities, ...workerBundleOptions(),
    });
    this.workerRun = this.worker.run().then(() => null, (err) => err);
  }

  startServer() {
    return startServer(this.store, { port: this.port, httpPort: this.httpPort,
      name: `${this.ctx.name}-${this.downs.length}` });
  }

  async startWorkflow(wf) {
    wf.runId = await retrying(`start ${wf.id}`, async (attempt) => {
      try {
        const handle = await this.client.workflow.start(wf.type, {
          taskQueue: this.ctx.taskQueue, workflowId: wf.id, args: wf.args,
        });
        return handle.firstExecutionRunId;
      } catch (err) {
        // An earlier attempt reached the store but its answer was lost.
        if (attempt > 0 && err instanceof WorkflowExecutionAlreadyStartedError) {
          return (await this.client.workflow.getHandle(wf.id).describe()).runId;
        }
        throw err;
      }
    });
  }

  // Raw RPC so a retry reuses the request id (the server dedupes on it).
  async signal(wf, sig) {
    const requestId = `${wf.id}-sig-${wf.signals.length}`;
    wf.signals.push({ ...sig, requestId });
    const input = sig.n == null ? undefined
      : { payloads: [defaultPayloadConverter.toPayload(sig.n)] };
    await retrying(`signal ${sig.name} ${wf.id}`, () =>
      this.conn.workflowService.signalWorkflowExecution({
        namespace: 'default', workflowExecution: { workflowId: wf.id },
        signalName: sig.name, input, identity: 'crash-suite', requestId,
      }));
  }

  async produce(ops) {
    for (const o of ops) {
      if (o.op === 'start') await this.startWorkflow(o.wf);
      else await this.signal(o.wf, o.sig);
      await sleep(60 + Math.floor(this.rand() * 120));
    }
  }

  async history(wfId) {
    return retrying(`history of ${wfId}`,
      () => this.client.workflow.getHandle(wfId).fetchHistory());
  }

  // One crash: a sleeper whose timer is started, a random moment, SIGKILL,
  // down past the timer's due time, restart on the same port and store.
  async crashOnce(i) {
    const sleeper = { type: 'sleeper', id: `down-${i}-${this.ctx.uniqueId('c')}`,
      args: [DOWN_TIMER_MS], want: `slept ${DOWN_TIMER_MS}`, down: i };
    await this.startWorkflow(sleeper);
    this.extra.push(sleeper);
    for (;;) { // await TimerStarted, i.e. the timer is durable
      const hist = await this.history(sleeper.id);
      if (count(hist, 'TIMER_STARTED') > 0) break;
      await sleep(25);
    }
    await sleep(Math.floor(this.rand() * 300));
    const killAt = Date.now();
    await this.srv.kill9();
    this.ctx.step(`kill ${i + 1} at ${killAt}`);
    await sleep(DOWN_MS); // let the timer fall due while the server is down
    this.srv = await this.startServer();
    const upAt = Date.now();
    this.downs.push({ killAt, upAt, sleeper });
    this.ctx.step(`restart ${i + 1} ready after ${upAt - killAt} ms`);
  }

  async killer(window) {
    for (let i = 0; i < KILLS; i++) {
      await sleep(500 + Math.floor(this.rand() * window / KILLS));
      await this.crashOnce(i);
    }
  }

  async run() {
    const { wfs, ops } = plan(this.rand, this.ctx);
    this.wfs = wfs;
    this.extra = [];
    this.ctx.step(`load: ${ops.length} operations, ${KILLS} kills, seed ${this.seed}`);
    const window = Math.max(3000, ops.length * 120 - KILLS * (DOWN_MS + 800));
    await Promise.all([this.produce(ops), this.killer(window)]);
    this.ctx.step('load and kills done; awaiting results');
    await this.verify([...wfs, ...this.extra]);
  }

  // Bounded: result() long-polls forever on a workflow that never closes.
  async result(wf) {
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not closed after ${RESULT_MS} ms`)),
        RESULT_MS);
    });
    return Promise.race([late, retrying(`result of ${wf.id}`, () =>
      this.client.workflow.getHandle(wf.id).result(), RESULT_MS)])
      .finally(() => clearTimeout(timer));
  }

  async verify(all) {
    const problems = [];
    await Promise.all(all.map(async (wf) => {
      let got;
      try {
        got = await this.result(wf);
      } catch (err) {
        const hist = await this.history(wf.id).catch(() => null);
        problems.push(`${wf.type} ${wf.id}: no result: ${err.message}\n` +
          `  history:\n${hist ? h.formatHistory(hist) : '(unreadable)'}`);
        return;
      }
      const hist = await this.history(wf.id);
      const desc = await retrying(`describe ${wf.id}`,
        () => this.client.workflow.getHandle(wf.id).describe());
      const p = checkHistory(hist);
      if (desc.runId !== wf.runId) {
        p.push(`current run ${desc.runId}, but the start returned ${wf.runId}`);
      }
      if (desc.status.name !== 'COMPLETED') p.push(`status ${desc.status.name}`);
      wf.status = desc.status.name;
      wf.children = childRuns(hist);
      p.push(...this.checkResult(wf, got, hist));
      if (p.length) {
        problems.push(`${wf.type} ${wf.id}:\n    ${p.join('\n    ')}\n` +
          `  history:\n${h.formatHistory(hist)}`);
      }
    }));
    assert.deepEqual(problems, [], `${problems.length} workflow(s) wrong:\n` +
      problems.join('\n'));
  }

  checkResult(wf, got, hist) {
    const p = [];
    if (wf.type === 'summer') return this.checkSummer(wf, got, hist);
    if (got !== wf.want) p.push(`result ${JSON.stringify(got)}, want ${JSON.stringify(wf.want)}`);
    if (wf.type === 'sleeper') {
      if (count(hist, 'TIMER_FIRED') !== 1) p.push('want exactly one TimerFired');
      if (wf.down != null) p.push(...this.checkDownTimer(wf, hist));
    }
    if (wf.type === 'hello' && count(hist, 'ACTIVITY_TASK_COMPLETED') !== 1) {
      p.push('want exactly one ActivityTaskCompleted');
    }
    if (/^parent/.test(wf.type)) {
      for (const t of ['START_CHILD_WORKFLOW_EXECUTION_INITIATED',
        'CHILD_WORKFLOW_EXECUTION_STARTED', 'CHILD_WORKFLOW_EXECUTION_COMPLETED']) {
        if (count(hist, t) !== 1) p.push(`want exactly one ${t}, got ${count(hist, t)}`);
      }
    }
    if (wf.type === 'retryingAcrossCrashes') p.push(...this.checkRetrier(wf, hist));
    if (wf.type === 'parentSignalling') { // the child's sum (want) shows each signal once
      const n = count(hist, 'EXTERNAL_WORKFLOW_EXECUTION_SIGNALED');
      if (n !== 3) p.push(`want 3 ExternalWorkflowExecutionSignaled, got ${n}`);
    }
    return p;
  }

  // The attempts the worker ran never went down (a started attempt may run again
  // after a kill, at the same attempt), and the one that succeeded shows attempt 3
  // and attempt 2's failure.
  checkRetrier(wf, hist) {
    const p = [];
    const calls = this.ctx.activities.flakyAcrossCrashes.calls.get(wf.id) || [];
    if (calls.some((a, i) => i > 0 && a < calls[i - 1])) {
      p.push(`attempts started over: ran ${calls.join(', ')}`);
    }
    const started = hist.events.filter((e) => h.eventTypeName(e) === 'ACTIVITY_TASK_STARTED');
    const a = started.length === 1 ? started[0].activityTaskStartedEventAttributes : null;
    if (!a) p.push(`want one ActivityTaskStarted, got ${started.length}`);
    else if (a.attempt !== 3 || !a.lastFailure || a.lastFailure.message !== 'flaky attempt 2') {
      p.push(`ActivityTaskStarted attempt ${a.attempt}, last failure ` +
        `${a.lastFailure ? JSON.stringify(a.lastFailure.message) : 'none'}`);
    }
    if (calls.length > 3) this.notes.push(`retrier ran ${calls.join(', ')} (a kill re-ran a started attempt)`);
    return p;
  }

  // The timer was due while the server was down: it fired after the restart.
  checkDownTimer(wf, hist) {
    const d = this.downs[wf.down];
    const started = hist.events.find((e) => h.eventTypeName(e) === 'TIMER_STARTED');
    const fired = hist.events.find((e) => h.eventTypeName(e) === 'TIMER_FIRED');
    if (!d || !started || !fired) return ['no down window or timer events'];
    const due = eventMs(started) + DOWN_TIMER_MS;
    const p = [];
    if (!(due < d.upAt - 100)) p.push(`timer due at ${due}, not while down (up ${d.upAt})`);
    if (eventMs(fired) < d.killAt) p.push('timer fired before the kill');
    return p;
  }

  // Each logical signal is in the history exactly once, and the result is the
  // sum of the signals sent. A retry after a lost answer reuses the request id,
  // and the server must dedupe it: the run's recent signal request ids are
  // rebuilt from its WorkflowExecutionSignaled events when it is loaded again.
  checkSummer(wf, got, hist) {
    const p = [];
    const seen = new Map();
    let sum = 0;
    for (const ev of hist.events) {
      const a = ev.workflowExecutionSignaledEventAttributes;
      if (!a) continue;
      seen.set(a.requestId, (seen.get(a.requestId) || 0) + 1);
      if (a.signalName === 'add') sum += h.decodeFirst(a.input);
    }
    for (const s of wf.signals) {
      if (!seen.get(s.requestId)) p.push(`signal ${s.requestId} missing from the history`);
      if (seen.get(s.requestId) > 1) {
        p.push(`signal ${s.requestId} recorded ${seen.get(s.requestId)} times ` +
          '(a retry was not deduped)');
      }
    }
    if (got !== sum) p.push(`result ${got}, but the history's signals sum to ${sum}`);
    const want = wf.adds.reduce((a, b) => a + b, 0);
    if (got !== want) p.push(`result ${got}, want ${want}`);
    return p;
  }

  // What afterLoad gets (see the header); only meaningful after verify passed.
  info() {
    const workflows = [];
    for (const wf of [...this.wfs, ...this.extra]) {
      workflows.push({ id: wf.id, runId: wf.runId, type: wf.type, status: wf.status });
      for (const c of wf.children || []) workflows.push({ ...c, parentId: wf.id });
    }
    return { client: this.client, address: this.address, seed: this.seed, workflows };
  }

  // Worker down, then the server must still stop cleanly.
  async finish() {
    if (this.worker.getState() === 'RUNNING') this.worker.shutdown();
    const werr = await this.workerRun;
    await this.conn.close();
    await this.nconn.close();
    if (werr) throw new Error(`the worker failed:\n${describeError(werr)}`);
    const problem = await this.srv.stop();
    if (problem) throw new Error(`${problem}\n${this.srv.tail()}`);
    for (const n of this.notes) console.log(`NOTE ${n}`);
  }

  async abort() {
    if (this.worker && this.worker.getState() === 'RUNNING') {
      this.worker.shutdown();
      await Promise.race([this.workerRun, sleep(5000)]);
    }
    if (this.srv) await this.srv.kill9();
  }
}

// The closed children a history names: { id, runId, type, status }.
const CHILD_CLOSED = {
  CHILD_WORKFLOW_EXECUTION_COMPLETED: ['childWorkflowExecutionCompletedEventAttributes', 'COMPLETED'],
  CHILD_WORKFLOW_EXECUTION_FAILED: ['childWorkflowExecutionFailedEventAttributes', 'FAILED'],
  CHILD_WORKFLOW_EXECUTION_CANCELED: ['childWorkflowExecutionCanceledEventAttributes', 'CANCELLED'],
  CHILD_WORKFLOW_EXECUTION_TIMED_OUT: ['childWorkflowExecutionTimedOutEventAttributes', 'TIMED_OUT'],
  CHILD_WORKFLOW_EXECUTION_TERMINATED: ['childWorkflowExecutionTerminatedEventAttributes', 'TERMINATED'],
};
function childRuns(hist) {
  const out = [];
  for (const ev of hist.events) {
    const k = CHILD_CLOSED[h.eventTypeName(ev)];
    if (!k) continue;
    const a = ev[k[0]];
    out.push({ id: a.workflowExecution.workflowId, runId: a.workflowExecution.runId,
      type: a.workflowType && a.workflowType.name, status: k[1] });
  }
  return out;
}

// The scenario body: the whole load against `store`; opts.afterLoad: see the header.
async function crashLoad(ctx, store, opts = {}) {
  const seed = Number(process.env.GT_CRASH_SEED) || (Date.now() % 1e9);
  const load = new Load(ctx, store, seed);
  let ok = false;
  try {
    await load.start();
    await load.run();
    if (opts.afterLoad) {
      ctx.step('afterLoad');
      await opts.afterLoad(ctx, load.info());
    }
    await load.finish();
    ok = true;
    console.log(`crash load on ${store.kind}: ${load.wfs.length + load.extra.length} ` +
      `workflows, ${load.downs.length} kills, seed ${seed}`);
  } finally {
    if (!ok) {
      console.log(`seed ${seed} (GT_CRASH_SEED=${seed} replays the plan)`);
      if (load.srv) console.log(`--- server (${load.srv.describeExit()}) tail ---\n${load.srv.tail()}`);
      await load.abort();
    }
  }
}

module.exports = { crashLoad, retrying, rng };
