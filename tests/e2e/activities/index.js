// Activity implementations for the e2e scenarios (plain Node code).
'use strict';

const { ApplicationFailure } = require('@temporalio/activity');

async function greet(name) {
  return `Hello, ${name}!`;
}

async function rejectInput(_input) {
  throw ApplicationFailure.nonRetryable('bad input', 'BadInput');
}

module.exports = { greet, rejectInput };
