// Workflow code for the e2e scenarios. Bundled once per run by the worker's
// webpack (see lib/bundle.js); runs inside the SDK's deterministic sandbox,
// so it may only require @temporalio/workflow and files in this folder.
'use strict';

const {
  proxyActivities,
  condition,
  sleep,
  continueAsNew,
  workflowInfo,
  executeChild,
  startChild,
  getExternalWorkflowHandle,
  ChildWorkflowFailure,
  upsertSearchAttributes,
  upsertMemo,
  defineUpdate,
  defineSignal,
  defineQuery,
  setHandler,
  CancellationScope,
  isCancellation,
  ApplicationFailure,
  ActivityFailure,
} = require('@temporalio/workflow');

const { greet, rejectInput } = proxyActivities({ startToCloseTimeout: '10s' });

// The canonical hello: one activity, then complete with its result.
async function hello(name) {
  return await greet(name);
}

// Blocks forever without a timer (timers may not exist server-side yet).
async function waitForever() {
  await condition(() => false);
}

async function failing() {
  throw ApplicationFailure.nonRetryable('boom', 'MyError');
}

// Calls an activity that fails non-retryably and turns it into a result.
async function catchActivityFailure(input) {
  try {
    await rejectInput(input);
    return 'no failure';
  } catch (err) {
    if (err instanceof ActivityFailure) {
      return `caught: ${err.cause ? err.cause.message : '(no cause)'}`;
    }
    throw err;
  }
}

// Sleeps on a durable timer, then returns how long it asked for.
async function sleeper(ms) {
  await sleep(ms);
  return `slept ${ms}`;
}

// Starts a long timer and cancels it from a short one: TimerCanceled.
async function cancelTimer() {
  const scope = new CancellationScope();
  const long = scope.run(() => sleep(60000));
  await sleep(100);
  scope.cancel();
  try {
    await long;
    return 'not canceled';
  } catch (err) {
    return isCancellation(err) ? 'timer canceled' : `other: ${err}`;
  }
}

const addSignal = defineSignal('add');
const doneSignal = defineSignal('done');
const sumQuery = defineQuery('sum');

// Sums the numbers signalled to it until 'done'.
async function summer() {
  let sum = 0;
  let done = false;
  setHandler(addSignal, (n) => { sum += n; });
  setHandler(doneSignal, () => { done = true; });
  setHandler(sumQuery, () => sum);
  await condition(() => done);
  return sum;
}

// Waits for cancellation and cleans up with an activity, then reports it.
async function cancellable() {
  try {
    await condition(() => false);
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => greet('cleanup'));
      throw err;
    }
    throw err;
  }
}

const { flaky } = proxyActivities({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '50ms', backoffCoefficient: 2, maximumAttempts: 5 },
});
const { alwaysFails } = proxyActivities({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '20ms', maximumAttempts: 3 },
});

// Retries a flaky activity until it succeeds on its third attempt.
async function retrying(key) {
  return await flaky(key);
}

// The crash suite's (tests/crash/lib/load.js): an activity that fails twice, with
// backoffs long enough for a kill -9 to fall inside one, and succeeds on its last attempt.
const { flakyAcrossCrashes } = proxyActivities({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 1, maximumAttempts: 3 },
});

async function retryingAcrossCrashes(key) {
  return await flakyAcrossCrashes(key);
}

// Exhausts the retry policy: the last failure reaches the workflow.
async function exhausting() {
  try {
    await alwaysFails();
    return 'no failure';
  } catch (err) {
    if (err instanceof ActivityFailure) {
      return `failed after retries: ${err.cause.message} (${err.retryState})`;
    }
    throw err;
  }
}

const { slowActivity } = proxyActivities({
  startToCloseTimeout: '300ms',
  retry: { initialInterval: '20ms', maximumAttempts: 2 },
});
const { silentActivity } = proxyActivities({
  startToCloseTimeout: '10s',
  heartbeatTimeout: '300ms',
  retry: { maximumAttempts: 1 },
});
const { neverPicked } = proxyActivities({
  taskQueue: 'nobody-polls-this-queue',
  scheduleToCloseTimeout: '400ms',
});

// Runs an activity that outlives its timeout and reports how it failed.
async function timingOut(which) {
  const fn = { slow: slowActivity, silent: silentActivity, unpicked: neverPicked }[which];
  try {
    await fn();
    return 'no timeout';
  } catch (err) {
    if (err instanceof ActivityFailure) {
      return `${err.cause.name}:${err.cause.timeoutType}`;
    }
    throw err;
  }
}

// Continues as new `n` times, carrying a running total; returns it with the run count.
async function looper(n, total = 0) {
  if (n > 0) {
    await continueAsNew(n - 1, total + n);
  }
  return `total ${total} after ${workflowInfo().continuedFromExecutionRunId ? 'continuing' : 'one run'}`;
}

// Runs `hello` as a child and returns its result.
async function parent(name) {
  return await executeChild(hello, { args: [name], workflowId: `${workflowInfo().workflowId}-child` });
}

// A failing child: the parent sees ChildWorkflowFailure with the child's failure as cause.
async function parentOfFailing() {
  try {
    await executeChild(failing, { workflowId: `${workflowInfo().workflowId}-child` });
    return 'no failure';
  } catch (err) {
    if (err instanceof ChildWorkflowFailure) return `child failed: ${err.cause.message}`;
    throw err;
  }
}

// Signals its child through an external handle, then returns the child's sum.
async function parentSignalling() {
  const id = `${workflowInfo().workflowId}-summer`;
  const child = await startChild(summer, { workflowId: id });
  const ext = getExternalWorkflowHandle(id);
  await ext.signal(addSignal, 3);
  await ext.signal(addSignal, 4);
  await ext.signal(doneSignal);
  return await child.result();
}

// Waits for a child that sleeps `ms` (the crash suite: parents waiting across a kill -9).
async function parentOfSleeper(ms) {
  return await executeChild(sleeper, { args: [ms], workflowId: `${workflowInfo().workflowId}-child` });
}

// Leaves a child running and completes: the default policy terminates the child.
async function parentAbandoning() {
  await startChild(waitForever, { workflowId: `${workflowInfo().workflowId}-orphan` });
  return 'parent done';
}

// Upserts search attributes and memo, then waits for 'done'.
async function annotated() {
  upsertSearchAttributes({ CustomKeywordField: ['first'] });
  upsertMemo({ note: 'hello' });
  await sleep(10);
  upsertSearchAttributes({ CustomKeywordField: ['second'], CustomIntField: [42] });
  return 'annotated';
}

// Cancels another workflow through an external handle.
async function canceller(targetId) {
  await getExternalWorkflowHandle(targetId).cancel();
  return 'cancel requested';
}

const addUpdate = defineUpdate('addAndGet');
const finishUpdate = defineUpdate('finish');

// A counter driven by updates: `addAndGet(n)` (validated: n must be positive), `finish`.
async function counter() {
  let value = 0;
  let finished = false;
  setHandler(addUpdate, async (n) => {
    await sleep(10); // an update handler may wait
    value += n;
    return value;
  }, { validator: (n) => { if (n <= 0) throw new Error(`${n} is not positive`); } });
  setHandler(finishUpdate, () => { finished = true; return 'bye'; });
  await condition(() => finished);
  return value;
}

const { completesAsync, hugeResult } = proxyActivities({
  startToCloseTimeout: '30s', retry: { maximumAttempts: 1 },
});

async function asyncCompletion() {
  return await completesAsync();
}

async function tooBig() {
  try {
    await hugeResult();
    return 'no failure';
  } catch (err) {
    if (err instanceof ActivityFailure) return `failed: ${err.cause.message}`;
    throw err;
  }
}

// Its first workflow tasks fail (a plain Error fails the task, not the workflow); the
// attempt after the retry backoff succeeds. Workflow time is the task's start time.
async function flakyTask() {
  if (Date.now() - workflowInfo().startTime.getTime() < 700) {
    throw new Error('task not ready yet');
  }
  return 'task ok';
}

// Fails (retryably, type Flaky) until its workflow attempt reaches succeedAt: a workflow
// retry policy makes the server run it again (36-workflow-retry).
async function flakyWorkflow(succeedAt) {
  const { attempt } = workflowInfo();
  if (attempt < succeedAt) throw ApplicationFailure.retryable(`attempt ${attempt} failed`, 'Flaky');
  return `succeeded on attempt ${attempt}`;
}

// Runs flakyWorkflow as a child with a retry policy: its result is the chain's last run's.
async function parentOfFlaky(succeedAt) {
  return await executeChild(flakyWorkflow, {
    args: [succeedAt], workflowId: `${workflowInfo().workflowId}-child`,
    retry: { initialInterval: '50ms', maximumAttempts: 3 },
  });
}

// The crash suite's activity out with its worker across a kill -9
// (tests/crash/scenarios/11-activity-start-restart.js): scheduled on a queue of its own,
// which the scenario serves with raw polls; one attempt only.
async function outAcrossCrash(activityQueue) {
  const { longAcrossCrash } = proxyActivities({
    taskQueue: activityQueue, startToCloseTimeout: '60s', retry: { maximumAttempts: 1 },
  });
  return await longAcrossCrash();
}

module.exports = {
  outAcrossCrash,
  flakyTask, flakyWorkflow, parentOfFlaky,
  asyncCompletion, tooBig,
  counter,
  annotated, canceller,
  parent, parentOfFailing, parentSignalling, parentAbandoning, parentOfSleeper,
  looper,
  timingOut,
  hello, waitForever, failing, catchActivityFailure, sleeper, cancelTimer, summer,
  cancellable, retrying, exhausting, retryingAcrossCrashes,
};
