// Namespace RPCs straight on the gRPC service: describe, register, list,
// duplicate register (ALREADY_EXISTS), unknown namespace (NOT_FOUND), and
// GetSystemInfo's shape.
'use strict';

const assert = require('node:assert/strict');
const { scenario } = require('../lib/harness');
const { expectGrpcCode } = require('../lib/expect');
const { toNumber } = require('../lib/history');
const { temporal } = require('@temporalio/proto');

const REGISTERED =
  temporal.api.enums.v1.NamespaceState.NAMESPACE_STATE_REGISTERED;
const ALREADY_EXISTS = 6;
const NOT_FOUND = 5;

async function listAllNames(svc) {
  const names = [];
  let nextPageToken;
  for (let page = 0; page < 100; page++) {
    const resp = await svc.listNamespaces({ pageSize: 100, nextPageToken });
    for (const ns of resp.namespaces || []) {
      names.push(ns.namespaceInfo && ns.namespaceInfo.name);
    }
    nextPageToken = resp.nextPageToken;
    if (!nextPageToken || nextPageToken.length === 0) return names;
  }
  assert.fail('listNamespaces did not stop paging after 100 pages');
}

scenario('namespace', async ({ connection }) => {
  const svc = connection.workflowService;

  const def = await svc.describeNamespace({ namespace: 'default' });
  assert.equal(def.namespaceInfo.name, 'default');
  assert.equal(def.namespaceInfo.state, REGISTERED,
    `state ${def.namespaceInfo.state}, want REGISTERED (${REGISTERED})`);
  assert.ok(def.namespaceInfo.id, 'default namespace must have an id');

  await svc.registerNamespace({
    namespace: 'e2e-ns',
    workflowExecutionRetentionPeriod: { seconds: 86400 },
  });
  const names = await listAllNames(svc);
  assert.ok(names.includes('e2e-ns'), `e2e-ns not listed: ${names}`);
  assert.ok(names.includes('default'), `default not listed: ${names}`);

  const mine = await svc.describeNamespace({ namespace: 'e2e-ns' });
  assert.equal(mine.namespaceInfo.name, 'e2e-ns');
  assert.equal(mine.namespaceInfo.state, REGISTERED);
  assert.notEqual(mine.namespaceInfo.id, def.namespaceInfo.id,
    'namespaces must have distinct ids');
  assert.equal(
    toNumber(mine.config.workflowExecutionRetentionTtl.seconds), 86400);

  await expectGrpcCode(svc.registerNamespace({
    namespace: 'e2e-ns',
    workflowExecutionRetentionPeriod: { seconds: 86400 },
  }), ALREADY_EXISTS, 'registering e2e-ns twice');

  await expectGrpcCode(
    svc.describeNamespace({ namespace: 'e2e-no-such-namespace' }),
    NOT_FOUND, 'describing a missing namespace');

  const info = await svc.getSystemInfo({});
  assert.equal(typeof info.serverVersion, 'string');
  assert.ok(info.serverVersion.length > 0, 'serverVersion must be non-empty');
  assert.ok(info.capabilities && typeof info.capabilities === 'object',
    'getSystemInfo must return capabilities');
  for (const key of ['signalAndQueryHeader', 'internalErrorDifferentiation',
    'activityFailureIncludeHeartbeat', 'supportsSchedules',
    'encodedFailureAttributes', 'upsertMemo', 'eagerWorkflowStart',
    'sdkMetadata']) {
    assert.equal(typeof info.capabilities[key], 'boolean',
      `capabilities.${key} should decode as a boolean`);
  }
});
