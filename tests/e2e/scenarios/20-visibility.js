// Visibility: List/Count/Scan with Temporal's query language, custom search
// attributes (OperatorService add/list/remove) set at start and queried.
'use strict';

const assert = require('node:assert/strict');
const { WorkflowFailedError } = require('@temporalio/client');
const { defineSearchAttributeKey, SearchAttributeType } = require('@temporalio/common');
const { temporal } = require('@temporalio/proto');
const { scenario } = require('../lib/harness');
const { expectGrpcCode, expectRejects } = require('../lib/expect');

const IVT = temporal.api.enums.v1.IndexedValueType;

// The SDK wraps a failed call ("Failed to list workflows"): the server's
// message is somewhere in the cause chain.
function chainText(err) {
  const parts = [];
  for (let e = err; e && parts.length < 8; e = e.cause) parts.push(`${e.message} ${e.details || ''}`);
  return parts.join(' | ');
}

async function listIds(client, query) {
  const ids = [];
  for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

scenario('visibility', async ({ client, connection, taskQueue, withWorker, uniqueId, step }) => {
  const prefix = uniqueId('vis');
  const ids = {
    hello1: `${prefix}-hello-1`, hello2: `${prefix}-hello-2`,
    wait1: `${prefix}-wait-1`, wait2: `${prefix}-wait-2`, fail1: `${prefix}-fail-1`,
  };

  step('register a custom search attribute');
  await connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: { CustomKeywordField: IVT.INDEXED_VALUE_TYPE_KEYWORD,
      CustomIntField: IVT.INDEXED_VALUE_TYPE_INT },
  });
  const listed = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
  assert.equal(listed.customAttributes.CustomKeywordField, IVT.INDEXED_VALUE_TYPE_KEYWORD);
  assert.equal(listed.systemAttributes.WorkflowId, IVT.INDEXED_VALUE_TYPE_KEYWORD);
  assert.equal(listed.systemAttributes.StartTime, IVT.INDEXED_VALUE_TYPE_DATETIME);

  const t0 = new Date(Date.now() - 1000);
  await withWorker(async () => {
    step('start workflows');
    const h1 = await client.workflow.start('hello', {
      args: ['a'], taskQueue, workflowId: ids.hello1,
      typedSearchAttributes: [
        { key: defineSearchAttributeKey('CustomKeywordField', SearchAttributeType.KEYWORD),
          value: 'x' },
        { key: defineSearchAttributeKey('CustomIntField', SearchAttributeType.INT), value: 7 },
      ],
    });
    await h1.result();
    const h2 = await client.workflow.start('hello', {
      args: ['b'], taskQueue, workflowId: ids.hello2,
      searchAttributes: { CustomKeywordField: ['y'] }, // the older, untyped form
    });
    await h2.result();
    await client.workflow.start('waitForever', { taskQueue, workflowId: ids.wait1 });
    await client.workflow.start('waitForever', { taskQueue, workflowId: ids.wait2 });
    const f = await client.workflow.start('failing', { taskQueue, workflowId: ids.fail1 });
    await expectRejects(f.result(), WorkflowFailedError, 'failing result');
  });
  const t1 = new Date(Date.now() + 1000);
  const mine = `WorkflowId STARTS_WITH "${prefix}"`;

  step('list by status');
  assert.deepEqual((await listIds(client, `${mine} AND ExecutionStatus = "Running"`)).sort(),
    [ids.wait1, ids.wait2]);
  assert.deepEqual(await listIds(client,
    `WorkflowType = "hello" AND ExecutionStatus = "Completed" ORDER BY StartTime`),
  [ids.hello1, ids.hello2]);
  assert.deepEqual(await listIds(client, `ExecutionStatus = 'Failed'`), [ids.fail1]);

  step('list by id, prefix, order, time range');
  assert.deepEqual((await listIds(client, `WorkflowId IN ("${ids.hello1}", "${ids.fail1}")`))
    .sort(), [ids.fail1, ids.hello1]);
  assert.deepEqual(await listIds(client, `${mine} ORDER BY StartTime DESC`),
    [ids.fail1, ids.wait2, ids.wait1, ids.hello2, ids.hello1]);
  assert.equal((await listIds(client, `StartTime BETWEEN "${t0.toISOString()}" AND ` +
    `"${t1.toISOString()}"`)).length, 5);
  assert.equal((await listIds(client, `StartTime > "${t1.toISOString()}"`)).length, 0);
  assert.equal((await listIds(client, `CloseTime IS NULL`)).length, 2);

  step('the execution info');
  const infos = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = "${ids.hello1}"` })) {
    infos.push(wf);
  }
  assert.equal(infos.length, 1);
  const info = infos[0];
  assert.equal(info.type, 'hello');
  assert.equal(info.status.name, 'COMPLETED');
  assert.equal(info.taskQueue, taskQueue);
  assert.ok(info.startTime instanceof Date && info.closeTime instanceof Date);
  assert.ok(info.historyLength >= 11, `historyLength ${info.historyLength}`);
  assert.deepEqual(info.searchAttributes.CustomKeywordField, ['x']);

  step('custom search attributes');
  assert.deepEqual(await listIds(client, `CustomKeywordField = "x"`), [ids.hello1]);
  assert.deepEqual(await listIds(client, `CustomKeywordField = "y"`), [ids.hello2]);
  assert.deepEqual(await listIds(client, `CustomIntField >= 7`), [ids.hello1]);

  step('count');
  assert.equal((await client.workflow.count(mine)).count, 5);
  assert.equal((await client.workflow.count(`ExecutionStatus = "Running"`)).count, 2);
  const grouped = await client.workflow.count(`${mine} GROUP BY ExecutionStatus`);
  assert.equal(grouped.count, 5);
  const byStatus = Object.fromEntries(grouped.groups.map((g) => [g.groupValues[0], g.count]));
  assert.deepEqual(byStatus, { Running: 2, Completed: 2, Failed: 1 });

  step('paging');
  const page1 = await client.workflowService.listWorkflowExecutions({
    namespace: 'default', pageSize: 2, query: mine });
  assert.equal(page1.executions.length, 2);
  assert.ok(page1.nextPageToken && page1.nextPageToken.length > 0);
  const page2 = await client.workflowService.listWorkflowExecutions({
    namespace: 'default', pageSize: 2, query: mine, nextPageToken: page1.nextPageToken });
  assert.equal(page2.executions.length, 2);
  const scan = await client.workflowService.scanWorkflowExecutions({
    namespace: 'default', query: mine });
  assert.equal(scan.executions.length, 5);

  step('legacy open/closed lists');
  const open = await client.workflowService.listOpenWorkflowExecutions({
    namespace: 'default', maximumPageSize: 10 });
  assert.equal(open.executions.length, 2);
  const closed = await client.workflowService.listClosedWorkflowExecutions({
    namespace: 'default', maximumPageSize: 10,
    typeFilter: { name: 'hello' } });
  assert.equal(closed.executions.length, 2);

  step('GetSearchAttributes');
  const sa = await client.workflowService.getSearchAttributes({});
  assert.equal(sa.keys.ExecutionStatus, IVT.INDEXED_VALUE_TYPE_KEYWORD);
  assert.equal(sa.keys.CustomIntField, IVT.INDEXED_VALUE_TYPE_INT);

  step('malformed queries');
  const bad = await expectGrpcCode(listIds(client, 'WorkflowId = '), 3, 'syntax error');
  assert.match(chainText(bad), /invalid query: syntax error at position 14/);
  const unk = await expectGrpcCode(client.workflow.count('Foo = "bar"'), 3, 'unknown attr');
  assert.match(chainText(unk), /unknown search attribute: Foo/);

  step('remove the custom attribute');
  await connection.operatorService.removeSearchAttributes({
    namespace: 'default', searchAttributes: ['CustomIntField'] });
  await expectGrpcCode(listIds(client, 'CustomIntField >= 7'), 3, 'removed attr');
  await expectGrpcCode(connection.operatorService.removeSearchAttributes({
    namespace: 'default', searchAttributes: ['CustomIntField'] }), 5, 'remove twice');
});
