/*
 * wf_signals.c: requests from outside a running workflow: signals, cancellation requests
 * and termination.
 *
 * DESIGN
 *   A signal or a cancellation request is an event for the workflow: buffered while a
 *   workflow task runs, and delivered by a workflow task (scheduled when none is pending).
 *   Termination closes the run at once: a started workflow task is failed first
 *   (FORCE_CLOSE_COMMAND), buffered events are flushed, then WorkflowExecutionTerminated.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* The running run a request names, or NULL after replying NOT_FOUND. */
static wf_run_t *running_run(workflow_t *wf, gt_rpc_t *rpc, const pb_wfexec_t *ex) {
  const char *run_id = ex && ex->run_id ? ex->run_id : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  if (!run || run->committed_ev == 0) {
    if (*run_id)
      gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND,
                         "Workflow execution not found. WorkflowId: %s, RunId: %s.",
                         wf->workflow_id, run_id);
    else
      gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow not found for ID: %s",
                         wf->workflow_id);
    return NULL;
  }
  if (!wf_running(run)) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow execution already completed");
    return NULL;
  }
  return run;
}

void wf_close_cleanup(workflow_t *wf, wf_run_t *run) {
  wf_updates_on_close(wf, run);
  for (size_t i = 0; i < run->n_timers; i++)
    if (run->timers[i].actor_timer)
      gt_actor_timer_cancel(&wf->base, run->timers[i].actor_timer);
  for (size_t i = 0; i < run->n_acts; i++) {
    wf_activity_t *a = &run->acts[i];
    uint64_t timers[5] = {a->retry_timer, a->s2s_timer, a->s2c_timer, a->st2c_timer,
                          a->hb_timer};
    for (int k = 0; k < 5; k++)
      if (timers[k])
        gt_actor_timer_cancel(&wf->base, timers[k]);
  }
  if (run->wft_timer)
    gt_actor_timer_cancel(&wf->base, run->wft_timer);
  run->wft_timer = 0;
}

/* Emits WorkflowExecutionSignaled (buffered while a workflow task runs). */
int wf_emit_signal(workflow_t *wf, wf_run_t *run, const char *name, pb_payloads_t *input,
                   const char *identity, Temporal__Api__Common__V1__Header *header,
                   const char *request_id) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__WorkflowExecutionSignaledEventAttributes a =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_SIGNALED_EVENT_ATTRIBUTES__INIT;
  a.signal_name = (char *)name;
  a.input = input;
  a.identity = (char *)(identity ? identity : "");
  a.header = header;
  a.request_id = (char *)(request_id ? request_id : "");
  ev.event_type = PB_EV(WORKFLOW_EXECUTION_SIGNALED);
  ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_SIGNALED_EVENT_ATTRIBUTES);
  ev.workflow_execution_signaled_event_attributes = &a;
  int64_t id = wf_emit(wf, run, &ev, 1);
  return id < 0 ? (int)id : 0;
}

void wf_on_signal(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__SignalWorkflowExecutionRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = running_run(wf, rpc, req->workflow_execution);
  if (!run)
    return;
  Temporal__Api__Workflowservice__V1__SignalWorkflowExecutionResponse ok =
      TEMPORAL__API__WORKFLOWSERVICE__V1__SIGNAL_WORKFLOW_EXECUTION_RESPONSE__INIT;
  if (wf_seen_signal_id(run, req->request_id)) { /* a retried request: already delivered */
    gt_rpc_reply_msg(rpc, &ok.base);
    return;
  }
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  wf_note_signal_id(run, req->request_id); /* before the flush applies the event */
  wf_emit_signal(wf, run, req->signal_name, req->input, req->identity, req->header,
                 req->request_id);
  wf_need_wft_for_signal(wf, run, t);
  wf_txn_reply_empty(t, rpc); /* an empty response message */
  wf_txn_commit(t);
}

void wf_on_cancel_request(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RequestCancelWorkflowExecutionRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = running_run(wf, rpc, req->workflow_execution);
  if (!run)
    return;
  Temporal__Api__Workflowservice__V1__RequestCancelWorkflowExecutionResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__REQUEST_CANCEL_WORKFLOW_EXECUTION_RESPONSE__INIT;
  if (run->cancel_requested) { /* Temporal: a repeated request is a no-op success */
    gt_rpc_reply_msg(rpc, &r.base);
    return;
  }
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  wf_emit_cancel_requested(wf, run, req->reason, req->identity);
  wf_need_wft(wf, run, t);
  wf_txn_reply_msg(t, rpc, &r.base);
  wf_txn_commit(t);
}

void wf_terminate_run(workflow_t *wf, wf_run_t *run, const char *reason,
                      pb_payloads_t *details, const char *identity) {
  if (run->wft_transient) { /* never written: nothing to fail */
    run->wft_transient = 0;
    run->wft_state = WFT_NONE;
  }
  if (run->wft_state == WFT_STARTED) {
    pb_event_t fev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
    Temporal__Api__History__V1__WorkflowTaskFailedEventAttributes fa =
        TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_FAILED_EVENT_ATTRIBUTES__INIT;
    fa.scheduled_event_id = run->wft_scheduled_id;
    fa.started_event_id = run->wft_started_id;
    fa.cause = TEMPORAL__API__ENUMS__V1__WORKFLOW_TASK_FAILED_CAUSE__WORKFLOW_TASK_FAILED_CAUSE_FORCE_CLOSE_COMMAND;
    fev.event_type = PB_EV(WORKFLOW_TASK_FAILED);
    fev.attributes_case = PB_ATTR(WORKFLOW_TASK_FAILED_EVENT_ATTRIBUTES);
    fev.workflow_task_failed_event_attributes = &fa;
    wf_emit(wf, run, &fev, 0);
  }
  wf_flush_buffered(wf, run);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__WorkflowExecutionTerminatedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES__INIT;
  a.reason = (char *)(reason ? reason : "");
  a.details = details;
  a.identity = (char *)(identity ? identity : "");
  ev.event_type = PB_EV(WORKFLOW_EXECUTION_TERMINATED);
  ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES);
  ev.workflow_execution_terminated_event_attributes = &a;
  wf_emit(wf, run, &ev, 0);
  wf_close_cleanup(wf, run);
}

void wf_emit_cancel_requested(workflow_t *wf, wf_run_t *run, const char *cause,
                              const char *identity) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__WorkflowExecutionCancelRequestedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_CANCEL_REQUESTED_EVENT_ATTRIBUTES__INIT;
  a.cause = (char *)(cause ? cause : "");
  a.identity = (char *)(identity ? identity : "");
  ev.event_type = PB_EV(WORKFLOW_EXECUTION_CANCEL_REQUESTED);
  ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_CANCEL_REQUESTED_EVENT_ATTRIBUTES);
  ev.workflow_execution_cancel_requested_event_attributes = &a;
  wf_emit(wf, run, &ev, 1);
  run->cancel_requested = 1; /* also while buffered: a second request is a no-op */
}

void wf_on_terminate(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__TerminateWorkflowExecutionRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = running_run(wf, rpc, req->workflow_execution);
  if (!run)
    return;
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  wf_terminate_run(wf, run, req->reason, req->details, req->identity);
  wf_txn_reply_empty(t, rpc); /* an empty response message */
  wf_txn_commit(t);
}
