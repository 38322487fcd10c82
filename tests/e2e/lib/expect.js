// Assertions about rejected promises and gRPC status codes.
'use strict';

const assert = require('node:assert/strict');
const { describeError, grpcCode, codeName } = require('./errors');

// Awaits `promise`, which must reject with gRPC status `code`; returns the
// error. `what` names the call in failure messages.
async function expectGrpcCode(promise, code, what) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    const got = grpcCode(err);
    assert.equal(got, code, `${what}: expected gRPC ${codeName(code)}, ` +
      `got ${codeName(got)}:\n${describeError(err, '  ', { stack: false })}`);
    return err;
  }
  assert.fail(`${what}: expected gRPC ${codeName(code)}, but it ` +
    `succeeded with ${JSON.stringify(result)}`);
}

// Awaits `promise`, which must reject with an instance of `cls`.
async function expectRejects(promise, cls, what) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof cls, `${what}: expected ${cls.name}, got:\n` +
      describeError(err, '  ', { stack: false }));
    return err;
  }
  assert.fail(`${what}: expected ${cls.name}, but it succeeded`);
}

module.exports = { expectGrpcCode, expectRejects };
