// Helpers to read workflow histories as the SDK hands them back
// (protobufjs objects: enum numbers, Long ids, binary payloads).
'use strict';

const assert = require('node:assert/strict');
const { temporal } = require('@temporalio/proto');
const { defaultPayloadConverter } = require('@temporalio/common');

const EventType = temporal.api.enums.v1.EventType;

// 'WORKFLOW_EXECUTION_STARTED' for 1 or 'EVENT_TYPE_WORKFLOW_EXECUTION_STARTED'.
function eventTypeName(ev) {
  let t = ev.eventType;
  if (typeof t === 'number') {
    const name = Object.keys(EventType).find((k) => EventType[k] === t);
    t = name || `UNKNOWN_EVENT_TYPE_${ev.eventType}`;
  }
  return String(t).replace(/^EVENT_TYPE_/, '');
}

const toNumber = (v) => (v == null ? NaN : Number(v.toString()));
const eventId = (ev) => toNumber(ev.eventId);

function events(history) {
  return (history && history.events) || [];
}

const eventTypes = (history) => events(history).map(eventTypeName);

// "1 WORKFLOW_EXECUTION_STARTED, 2 ..." for assertion messages.
function formatHistory(history) {
  return events(history)
    .map((ev) => `  ${eventId(ev)} ${eventTypeName(ev)}`).join('\n');
}

function assertContiguousIds(history) {
  const ids = events(history).map(eventId);
  const want = ids.map((_, i) => i + 1);
  assert.deepEqual(ids, want,
    `event ids must be 1..n without gaps; history:\n${formatHistory(history)}`);
}

// Asserts the event types, in order, are exactly `want`.
function assertEventTypes(history, want) {
  assert.deepEqual(eventTypes(history), want,
    `unexpected history:\n${formatHistory(history)}`);
}

function firstEvent(history, type) {
  const ev = events(history).find((e) => eventTypeName(e) === type);
  assert.ok(ev, `no ${type} event in history:\n${formatHistory(history)}`);
  return ev;
}

function decodePayload(payload) {
  return defaultPayloadConverter.fromPayload(payload);
}

// Decodes the first payload of a Payloads message (results, inputs).
function decodeFirst(payloads) {
  const list = (payloads && payloads.payloads) || [];
  assert.ok(list.length > 0, 'expected at least one payload');
  return decodePayload(list[0]);
}

// A protobuf Duration (or Timestamp) as milliseconds; 0 when absent.
function durationMs(d) {
  return Number((d && d.seconds) || 0) * 1000 + Math.round(((d && d.nanos) || 0) / 1e6);
}

// Every run of a workflow id, oldest first, as ListWorkflowExecutions shows them:
// [{ runId, status (its name), start (ms) }].
async function listRuns(client, workflowId) {
  const out = [];
  for await (const wf of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    out.push({ runId: wf.runId, status: wf.status.name, start: wf.startTime.getTime() });
  }
  return out.sort((a, b) => a.start - b.start);
}

module.exports = {
  eventTypeName, eventId, eventTypes, formatHistory, assertContiguousIds,
  assertEventTypes, firstEvent, decodePayload, decodeFirst, toNumber,
  EventType, durationMs, listRuns,
};
