// History consistency checks for the crash suite.
//
// checkHistory(history) returns a list of problems (empty = consistent):
//   - event ids are 1..n without gaps, the first event is the start;
//   - exactly one close event, and it is the last one;
//   - workflow tasks form a well-nested sequence: Scheduled, then Started
//     naming that Scheduled, then one of Completed/Failed/TimedOut naming
//     both; never two tasks outstanding; none left open after the close;
//   - each command event (activity scheduled, timer started, the close)
//     names the WorkflowTaskCompleted that produced it, which precedes it;
//   - activity and timer events name an existing scheduled/started event,
//     and each activity or timer closes at most once.
'use strict';

const h = require('../../e2e/lib/history');

const num = h.toNumber;
const CLOSE = new Set(['WORKFLOW_EXECUTION_COMPLETED', 'WORKFLOW_EXECUTION_FAILED',
  'WORKFLOW_EXECUTION_TIMED_OUT', 'WORKFLOW_EXECUTION_CANCELED',
  'WORKFLOW_EXECUTION_TERMINATED', 'WORKFLOW_EXECUTION_CONTINUED_AS_NEW']);
const WFT_CLOSE = {
  WORKFLOW_TASK_COMPLETED: 'workflowTaskCompletedEventAttributes',
  WORKFLOW_TASK_FAILED: 'workflowTaskFailedEventAttributes',
  WORKFLOW_TASK_TIMED_OUT: 'workflowTaskTimedOutEventAttributes',
};
// Command events and their attributes field (each has workflowTaskCompletedEventId).
const COMMAND_ATTRS = {
  ACTIVITY_TASK_SCHEDULED: 'activityTaskScheduledEventAttributes',
  TIMER_STARTED: 'timerStartedEventAttributes',
  WORKFLOW_EXECUTION_COMPLETED: 'workflowExecutionCompletedEventAttributes',
  WORKFLOW_EXECUTION_FAILED: 'workflowExecutionFailedEventAttributes',
};
const ACT_CLOSE = {
  ACTIVITY_TASK_COMPLETED: 'activityTaskCompletedEventAttributes',
  ACTIVITY_TASK_FAILED: 'activityTaskFailedEventAttributes',
  ACTIVITY_TASK_TIMED_OUT: 'activityTaskTimedOutEventAttributes',
  ACTIVITY_TASK_CANCELED: 'activityTaskCanceledEventAttributes',
};

function checkWorkflowTasks(evs, problems) {
  let pending = null; // { sched, started }
  let lastCompleted = 0;
  for (const ev of evs) {
    const id = h.eventId(ev);
    const type = h.eventTypeName(ev);
    if (type === 'WORKFLOW_TASK_SCHEDULED') {
      if (pending) problems.push(`${id}: task scheduled while task ${pending.sched} is open`);
      pending = { sched: id, started: 0 };
    } else if (type === 'WORKFLOW_TASK_STARTED') {
      const s = num(ev.workflowTaskStartedEventAttributes.scheduledEventId);
      if (!pending || pending.started || s !== pending.sched) {
        problems.push(`${id}: task started for scheduled ${s}, open task is ` +
          `${pending ? JSON.stringify(pending) : 'none'}`);
      }
      if (pending) pending.started = id;
    } else if (WFT_CLOSE[type]) {
      const a = ev[WFT_CLOSE[type]];
      const s = num(a.scheduledEventId);
      const st = num(a.startedEventId);
      const ok = pending && s === pending.sched &&
        (st === pending.started || (type === 'WORKFLOW_TASK_TIMED_OUT' &&
          !pending.started && !st));
      if (!ok) {
        problems.push(`${id}: ${type} names scheduled ${s} started ${st}, open ` +
          `task is ${pending ? JSON.stringify(pending) : 'none'}`);
      }
      pending = null;
      if (type === 'WORKFLOW_TASK_COMPLETED') lastCompleted = id;
    } else if (COMMAND_ATTRS[type]) {
      const by = num(ev[COMMAND_ATTRS[type]].workflowTaskCompletedEventId);
      if (by !== lastCompleted) {
        problems.push(`${id}: ${type} names task completed ${by}, the last ` +
          `completed task is ${lastCompleted}`);
      }
    }
  }
  if (pending) problems.push(`a workflow task (${JSON.stringify(pending)}) is open after the close`);
}

function checkActivitiesAndTimers(evs, problems) {
  const byId = new Map(evs.map((ev) => [h.eventId(ev), h.eventTypeName(ev)]));
  const actClosed = new Set();
  const timers = new Map(); // timerId -> fired count
  for (const ev of evs) {
    const id = h.eventId(ev);
    const type = h.eventTypeName(ev);
    if (type === 'ACTIVITY_TASK_STARTED' || ACT_CLOSE[type]) {
      const a = type === 'ACTIVITY_TASK_STARTED'
        ? ev.activityTaskStartedEventAttributes : ev[ACT_CLOSE[type]];
      const s = num(a.scheduledEventId);
      if (byId.get(s) !== 'ACTIVITY_TASK_SCHEDULED') {
        problems.push(`${id}: ${type} names scheduled ${s}, which is ${byId.get(s)}`);
      }
      if (ACT_CLOSE[type]) {
        if (actClosed.has(s)) problems.push(`${id}: activity ${s} closed twice`);
        actClosed.add(s);
      }
    } else if (type === 'TIMER_STARTED') {
      timers.set(ev.timerStartedEventAttributes.timerId, 0);
    } else if (type === 'TIMER_FIRED') {
      const t = ev.timerFiredEventAttributes.timerId;
      if (!timers.has(t)) problems.push(`${id}: timer ${t} fired but never started`);
      else if (timers.get(t) > 0) problems.push(`${id}: timer ${t} fired twice`);
      timers.set(t, (timers.get(t) || 0) + 1);
    }
  }
}

function checkHistory(history) {
  const evs = (history && history.events) || [];
  const problems = [];
  const ids = evs.map(h.eventId);
  if (!ids.every((v, i) => v === i + 1)) {
    problems.push(`event ids are not 1..n: ${ids.join(',')}`);
  }
  if (!evs.length || h.eventTypeName(evs[0]) !== 'WORKFLOW_EXECUTION_STARTED') {
    problems.push('the first event is not WORKFLOW_EXECUTION_STARTED');
  }
  const closes = evs.filter((ev) => CLOSE.has(h.eventTypeName(ev)));
  if (closes.length !== 1) {
    problems.push(`${closes.length} close events (want exactly 1)`);
  } else if (closes[0] !== evs[evs.length - 1]) {
    problems.push(`the close event ${h.eventId(closes[0])} is not the last`);
  }
  checkWorkflowTasks(evs, problems);
  checkActivitiesAndTimers(evs, problems);
  return problems;
}

const count = (history, type) =>
  history.events.filter((ev) => h.eventTypeName(ev) === type).length;

const eventMs = (ev) => {
  const t = ev.eventTime;
  return t ? Number(t.seconds.toString()) * 1000 + Math.floor((t.nanos || 0) / 1e6) : NaN;
};

module.exports = { checkHistory, count, eventMs };
