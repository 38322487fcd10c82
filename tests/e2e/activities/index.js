// Activity implementations for the e2e scenarios (plain Node code).
'use strict';

const { ApplicationFailure } = require('@temporalio/activity');

async function greet(name) {
  return `Hello, ${name}!`;
}

async function rejectInput(_input) {
  throw ApplicationFailure.nonRetryable('bad input', 'BadInput');
}

const attempts = new Map();

// Fails twice per key, then succeeds, reporting the attempt it succeeded on.
async function flaky(key) {
  const { attempt } = require('@temporalio/activity').Context.current().info;
  attempts.set(key, (attempts.get(key) || 0) + 1);
  if (attempt < 3) throw new Error(`flaky attempt ${attempt}`);
  return `ok on attempt ${attempt} (calls ${attempts.get(key)})`;
}

// The crash suite's retried activity (tests/crash/lib/load.js): fails attempts 1 and 2,
// succeeds on 3. Records the attempts it ran per key (flakyAcrossCrashes.calls), which
// must never go down: a crash must not restart an activity's attempts at 1.
async function flakyAcrossCrashes(key) {
  const { attempt } = require('@temporalio/activity').Context.current().info;
  const calls = flakyAcrossCrashes.calls;
  calls.set(key, [...(calls.get(key) || []), attempt]);
  if (attempt < 3) throw new Error(`flaky attempt ${attempt}`);
  return `ok on attempt ${attempt}`;
}
flakyAcrossCrashes.calls = new Map();

async function alwaysFails() {
  throw new Error('always fails');
}

// Outlives a 300 ms start-to-close timeout (until its attempt is cancelled).
async function slowActivity() {
  await new Promise((r) => setTimeout(r, 2000));
  return 'too late';
}

// Never heartbeats within its 300 ms heartbeat timeout.
async function silentActivity() {
  await new Promise((r) => setTimeout(r, 2000));
  return 'too late';
}

async function neverPicked() {
  return 'impossible';
}

// Completes later, from outside, by activity id (client.activity.complete).
async function completesAsync() {
  const { CompleteAsyncError } = require('@temporalio/activity');
  throw new CompleteAsyncError();
}

// Returns a result over the 2 MiB blob limit.
async function hugeResult() {
  return 'x'.repeat(3 * 1024 * 1024);
}

module.exports = { completesAsync, hugeResult, greet, rejectInput, flaky, alwaysFails, slowActivity, silentActivity,
  neverPicked, flakyAcrossCrashes };
