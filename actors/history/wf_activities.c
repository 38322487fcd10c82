/*
 * wf_activities.c: an activity's outcomes and progress, inside the workflow actor: the
 * worker's completion, failure (retried under its RetryPolicy, or final), cancellation
 * acknowledgement and heartbeats.
 *
 * DESIGN
 *   ActivityTaskStarted is written only when the attempt ends for good, just before its
 *   closing event, as Temporal does (wf_close_activity). A retryable failure writes no
 *   event: the attempt grows, the last failure is kept, and the task is dispatched again
 *   after the backoff (wf_act_retry); the retry state and new heartbeat details go to the
 *   executions row (wf_state.c, field 11), so they survive a crash.
 *   Dispatch and the activity's start live in wf_tasks.c (matching) and wf_eager.c (eager
 *   execution); its timeouts in wf_timeouts.c.
 *
 * INVARIANTS
 *   - A Respond* names the started attempt by its token (scheduled id and attempt); any
 *     other answers NOT_FOUND "Activity task not found." and changes nothing.
 *   - Once `closing` is set the activity has no further transitions.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* ---- activities ---- */

/* The started activity named by the token, or NULL. */
static wf_activity_t *current_activity(workflow_t *wf, gt_rpc_t *rpc, wf_run_t **runp) {
  wf_run_t *run = wf_find_run(wf, rpc->run_id);
  if (!wf_running(run))
    return NULL;
  wf_activity_t *act = wf_find_activity(run, rpc->scheduled_event_id);
  if (!act || !act->started || act->closing || act->attempt != rpc->attempt)
    return NULL;
  *runp = run;
  return act;
}

/* Emits ActivityTaskStarted (written only now, as Temporal does) and returns its id
 * (0 when buffered). */
static int64_t emit_act_started(workflow_t *wf, wf_run_t *run, wf_activity_t *act) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ActivityTaskStartedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_STARTED_EVENT_ATTRIBUTES__INIT;
  pb_failure_t *last = NULL;
  if (act->last_failure)
    last = (pb_failure_t *)protobuf_c_message_unpack(
        &temporal__api__failure__v1__failure__descriptor, NULL, act->last_failure_len,
        act->last_failure);
  a.scheduled_event_id = act->scheduled_event_id;
  a.identity = act->identity ? act->identity : "";
  a.request_id = act->request_id;
  a.attempt = act->attempt;
  a.last_failure = last;
  ev.event_type = PB_EV(ACTIVITY_TASK_STARTED);
  ev.attributes_case = PB_ATTR(ACTIVITY_TASK_STARTED_EVENT_ATTRIBUTES);
  ev.activity_task_started_event_attributes = &a;
  int64_t id = wf_emit(wf, run, &ev, 1);
  if (last)
    protobuf_c_message_free_unpacked(&last->base, NULL);
  return id > 0 ? id : 0;
}

/* The started activity a Respond* names, with a transaction begun for it; NULL after
 * replying NOT_FOUND (stale token) or RESOURCE_EXHAUSTED. */
static wf_activity_t *activity_txn(workflow_t *wf, gt_rpc_t *rpc, wf_run_t **run,
                                   wf_txn_t **t) {
  wf_activity_t *act = current_activity(wf, rpc, run);
  if (!act) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "Activity task not found.");
    return NULL;
  }
  if (!(*t = wf_txn_begin(wf, *run))) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  return act;
}

/* An activity's attempt ends for good: no further transitions; its ActivityTaskStarted
 * event is written now, before the closing event. Returns the started event id (0 when
 * buffered). */
int64_t wf_close_activity(workflow_t *wf, wf_run_t *run, wf_activity_t *act) {
  act->closing = 1;
  return emit_act_started(wf, run, act);
}

/* After an event for the workflow: make sure a workflow task will deliver it. */
void wf_need_wft(workflow_t *wf, wf_run_t *run, wf_txn_t *t) {
  if (wf_running(run) && run->wft_state == WFT_NONE)
    wf_schedule_wft(wf, run, t);
}

void wf_need_wft_for_signal(workflow_t *wf, wf_run_t *run, wf_txn_t *t) {
  if (!run->backoff_pending)
    wf_need_wft(wf, run, t);
}

static void act_fail(workflow_t *wf, wf_run_t *run, wf_activity_t *act, wf_txn_t *t,
                     pb_failure_t *failure, char *identity);

/* An activity's outcome event (buffered while a task runs), a workflow task to deliver it,
 * the worker's empty answer, the commit. */
static void finish_activity(workflow_t *wf, wf_run_t *run, wf_txn_t *t, gt_rpc_t *rpc,
                            pb_event_t *ev) {
  wf_emit(wf, run, ev, 1);
  wf_need_wft(wf, run, t);
  wf_txn_reply_empty(t, rpc);
  wf_txn_commit(t);
}

void wf_on_act_completed(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RespondActivityTaskCompletedRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = NULL;
  wf_txn_t *t = NULL;
  wf_activity_t *act = activity_txn(wf, rpc, &run, &t);
  if (!act)
    return;
  if (req->result &&
      protobuf_c_message_get_packed_size(&req->result->base) > WF_BLOB_SIZE_LIMIT) {
    /* as Temporal: a result over the blob limit fails the activity, not retryable */
    pb_failure_t f = TEMPORAL__API__FAILURE__V1__FAILURE__INIT;
    Temporal__Api__Failure__V1__ServerFailureInfo si =
        TEMPORAL__API__FAILURE__V1__SERVER_FAILURE_INFO__INIT;
    si.non_retryable = 1;
    f.message = "Complete result exceeds size limit.";
    f.source = "Server";
    f.failure_info_case = TEMPORAL__API__FAILURE__V1__FAILURE__FAILURE_INFO_SERVER_FAILURE_INFO;
    f.server_failure_info = &si;
    act_fail(wf, run, act, t, &f, req->identity);
    wf_txn_reply_empty(t, rpc);
    wf_txn_commit(t);
    return;
  }
  int64_t sched_id = act->scheduled_event_id;
  int64_t started_id = wf_close_activity(wf, run, act);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ActivityTaskCompletedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_COMPLETED_EVENT_ATTRIBUTES__INIT;
  a.result = req->result;
  a.scheduled_event_id = sched_id;
  a.started_event_id = started_id;
  a.identity = req->identity;
  ev.event_type = PB_EV(ACTIVITY_TASK_COMPLETED);
  ev.attributes_case = PB_ATTR(ACTIVITY_TASK_COMPLETED_EVENT_ATTRIBUTES);
  ev.activity_task_completed_event_attributes = &a;
  finish_activity(wf, run, t, rpc, &ev);
}

/* Whether a failure may be retried under the activity's policy; OUT: *retry_state, *delay. */
int wf_should_retry(wf_run_t *run, wf_activity_t *act, const pb_failure_t *f,
                        int *retry_state, int64_t *delay_ms) {
  if (f && f->failure_info_case ==
               TEMPORAL__API__FAILURE__V1__FAILURE__FAILURE_INFO_SERVER_FAILURE_INFO &&
      f->server_failure_info && f->server_failure_info->non_retryable) {
    *retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_NON_RETRYABLE_FAILURE;
    return 0;
  }
  if (f && f->failure_info_case ==
               TEMPORAL__API__FAILURE__V1__FAILURE__FAILURE_INFO_TIMEOUT_FAILURE_INFO &&
      f->timeout_failure_info &&
      f->timeout_failure_info->timeout_type !=
          TEMPORAL__API__ENUMS__V1__TIMEOUT_TYPE__TIMEOUT_TYPE_START_TO_CLOSE &&
      f->timeout_failure_info->timeout_type !=
          TEMPORAL__API__ENUMS__V1__TIMEOUT_TYPE__TIMEOUT_TYPE_HEARTBEAT) {
    *retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_NON_RETRYABLE_FAILURE;
    return 0;
  }
  if (f && f->failure_info_case ==
               TEMPORAL__API__FAILURE__V1__FAILURE__FAILURE_INFO_APPLICATION_FAILURE_INFO &&
      f->application_failure_info) {
    if (f->application_failure_info->non_retryable) {
      *retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_NON_RETRYABLE_FAILURE;
      return 0;
    }
    pb_event_t *sev = wf_event_unpack(run, act->ev_index);
    int listed = 0;
    const pb_retry_t *rp = sev ? sev->activity_task_scheduled_event_attributes->retry_policy
                               : NULL;
    for (size_t i = 0; rp && i < rp->n_non_retryable_error_types; i++)
      if (strcmp(rp->non_retryable_error_types[i], f->application_failure_info->type) == 0)
        listed = 1;
    if (sev)
      protobuf_c_message_free_unpacked(&sev->base, NULL);
    if (listed) {
      *retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_NON_RETRYABLE_FAILURE;
      return 0;
    }
  }
  if (act->max_attempts > 0 && act->attempt >= act->max_attempts) {
    *retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED;
    return 0;
  }
  double d = (double)act->initial_ms * pow(act->coefficient, act->attempt - 1);
  int64_t max = act->max_interval_ms > 0 ? act->max_interval_ms : 100 * act->initial_ms;
  *delay_ms = d > (double)max ? max : (int64_t)d;
  if (act->schedule_to_close_ms > 0) {
    pb_event_t *sev = wf_event_unpack(run, act->ev_index);
    int64_t first_ns = sev ? gt_pb_ts_ns(sev->event_time) : act->scheduled_ns;
    if (sev)
      protobuf_c_message_free_unpacked(&sev->base, NULL);
    if (gt_wall_ns() + *delay_ms * 1000000 >= first_ns + act->schedule_to_close_ms * 1000000) {
      *retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_TIMEOUT;
      return 0;
    }
  }
  *retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_IN_PROGRESS;
  return 1;
}

/* Makes `details` (NULL: none) the activity's last heartbeat details, as Temporal's
 * UpdateActivityProgress does. Returns 1 when they changed (the run's activity state is
 * then dirty: the next commit writes them), 0 when they are the same bytes, GT_ENOMEM
 * (nothing changed). */
static int act_set_heartbeat(wf_run_t *run, wf_activity_t *act, const pb_payloads_t *details) {
  uint8_t *p = NULL;
  size_t n = 0;
  if (details) {
    n = protobuf_c_message_get_packed_size(&details->base);
    if (!(p = malloc(n ? n : 1)))
      return GT_ENOMEM;
    protobuf_c_message_pack(&details->base, p);
  }
  if ((p == NULL) == (act->heartbeat == NULL) &&
      (!p || (n == act->heartbeat_len && memcmp(p, act->heartbeat, n) == 0))) {
    free(p);
    return 0;
  }
  free(act->heartbeat);
  act->heartbeat = p;
  act->heartbeat_len = n;
  run->acts_dirty = 1;
  return 1;
}

/* An attempt failed: retry under the policy, or ActivityTaskFailed. */
static void act_fail(workflow_t *wf, wf_run_t *run, wf_activity_t *act, wf_txn_t *t,
                     pb_failure_t *failure, char *identity) {
  int retry_state = 0;
  int64_t delay_ms = 0;
  if (wf_should_retry(run, act, failure, &retry_state, &delay_ms)) {
    wf_act_retry(wf, run, act, failure, delay_ms);
    return;
  }
  int64_t sched_id = act->scheduled_event_id;
  int64_t started_id = wf_close_activity(wf, run, act);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ActivityTaskFailedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_FAILED_EVENT_ATTRIBUTES__INIT;
  a.failure = failure;
  a.scheduled_event_id = sched_id;
  a.started_event_id = started_id;
  a.identity = identity;
  a.retry_state = retry_state;
  ev.event_type = PB_EV(ACTIVITY_TASK_FAILED);
  ev.attributes_case = PB_ATTR(ACTIVITY_TASK_FAILED_EVENT_ATTRIBUTES);
  ev.activity_task_failed_event_attributes = &a;
  wf_emit(wf, run, &ev, 1);
  wf_need_wft(wf, run, t);
}

void wf_on_act_failed(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RespondActivityTaskFailedRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = NULL;
  wf_txn_t *t = NULL;
  wf_activity_t *act = activity_txn(wf, rpc, &run, &t);
  if (!act)
    return;
  /* as Temporal: the failure's heartbeat details become the activity's (a retry's next
   * attempt is handed them); out of memory keeps the previous ones */
  if (req->last_heartbeat_details)
    (void)act_set_heartbeat(run, act, req->last_heartbeat_details);
  act_fail(wf, run, act, t, req->failure, req->identity);
  wf_txn_reply_empty(t, rpc); /* an empty response message */
  wf_txn_commit(t);
}

/* ---- heartbeats and cancellation acknowledgements ---- */

void wf_on_heartbeat(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RecordActivityTaskHeartbeatRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = NULL;
  wf_activity_t *act = current_activity(wf, rpc, &run);
  if (!act) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "Activity task not found.");
    return;
  }
  /* new details are durable before the reply (the next attempt is handed them, even
   * after a crash); the same details, or none again, write nothing */
  wf_txn_t *t = wf_txn_begin(wf, run);
  int changed = t ? act_set_heartbeat(run, act, req->details) : GT_ENOMEM;
  if (changed < 0) {
    if (t)
      wf_txn_recycle(wf, t);
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  Temporal__Api__Workflowservice__V1__RecordActivityTaskHeartbeatResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RECORD_ACTIVITY_TASK_HEARTBEAT_RESPONSE__INIT;
  r.cancel_requested = act->cancel_requested;
  wf_act_heartbeat(wf, run, act);
  if (!changed) {
    wf_txn_recycle(wf, t);
    gt_rpc_reply_msg(rpc, &r.base);
    return;
  }
  wf_txn_reply_msg(t, rpc, &r.base);
  wf_txn_commit(t);
}

void wf_on_act_canceled(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RespondActivityTaskCanceledRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = NULL;
  wf_txn_t *t = NULL;
  wf_activity_t *act = activity_txn(wf, rpc, &run, &t);
  if (!act)
    return;
  int64_t sched_id = act->scheduled_event_id;
  int64_t started_id = wf_close_activity(wf, run, act);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ActivityTaskCanceledEventAttributes a =
      TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_CANCELED_EVENT_ATTRIBUTES__INIT;
  a.details = req->details;
  a.scheduled_event_id = sched_id;
  a.started_event_id = started_id;
  a.identity = req->identity;
  ev.event_type = PB_EV(ACTIVITY_TASK_CANCELED);
  ev.attributes_case = PB_ATTR(ACTIVITY_TASK_CANCELED_EVENT_ATTRIBUTES);
  ev.activity_task_canceled_event_attributes = &a;
  finish_activity(wf, run, t, rpc, &ev);
}
