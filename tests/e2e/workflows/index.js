// Workflow code for the e2e scenarios. Bundled once per run by the worker's
// webpack (see lib/bundle.js); runs inside the SDK's deterministic sandbox,
// so it may only require @temporalio/workflow and files in this folder.
'use strict';

const {
  proxyActivities,
  condition,
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

module.exports = { hello, waitForever, failing, catchActivityFailure };
