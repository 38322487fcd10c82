/*
 * wf_timeouts.c: activity timeouts (schedule-to-start, start-to-close, schedule-to-close,
 * heartbeat), activity retries, and the workflow run timeout.
 *
 * DESIGN
 *   Timeouts are actor timers whose token names what they guard: the activity (scheduled
 *   event id), its attempt and the timeout type. A timer that fires for an attempt that has
 *   moved on is ignored, so timers are never cancelled for correctness, only to save work.
 *   Start-to-close and heartbeat timeouts are retried under the activity's RetryPolicy, as
 *   Temporal does; schedule-to-start and schedule-to-close end the activity. An activity
 *   that finally times out gets ActivityTaskTimedOut with a TimeoutFailure.
 *   The run timeout fails nothing else: it closes the run with WorkflowExecutionTimedOut.
 *   An activity's start-to-close timer also times the write of its start to the
 *   executions row: while that is not written, it first fires WF_START_PERSIST_MS after
 *   the start (ACT_PERSIST_START), writes it, and goes on to the timeout.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define TT(x) TEMPORAL__API__ENUMS__V1__TIMEOUT_TYPE__TIMEOUT_TYPE_##x
/* Not a Temporal timeout type: the start-to-close timer's first expiry while the
 * activity's start is not in the executions row (arm_st2c). */
#define ACT_PERSIST_START 15

static uint64_t act_token(int type, int32_t attempt, int64_t sched_id) {
  return (WF_TIMER_ACT_TIMEOUT << 56) | ((uint64_t)(type & 0xf) << 52) |
         ((uint64_t)(attempt & 0xfff) << 40) | ((uint64_t)sched_id & ((1ULL << 40) - 1));
}

static void rearm(workflow_t *wf, uint64_t *timer, int64_t ms, uint64_t token) {
  if (*timer)
    gt_actor_timer_cancel(&wf->base, *timer);
  *timer = ms > 0 ? gt_actor_timer_start(&wf->base, (uint64_t)ms, token) : 0;
}

void wf_act_arm_scheduled(workflow_t *wf, wf_run_t *run, wf_activity_t *act) {
  (void)run;
  /* an activity started eagerly is started at its schedule: no schedule-to-start */
  if (!act->started && act->s2s_ms > 0 &&
      (act->schedule_to_close_ms <= 0 || act->s2s_ms < act->schedule_to_close_ms)) {
    /* counted from the attempt's schedule: a dispatch after a load may come later */
    int64_t left = act->scheduled_ns / 1000000 + act->s2s_ms - gt_wall_ns() / 1000000;
    rearm(wf, &act->s2s_timer, left < 1 ? 1 : left > act->s2s_ms ? act->s2s_ms : left,
          act_token(TT(SCHEDULE_TO_START), act->attempt, act->scheduled_event_id));
  }
  if (act->schedule_to_close_ms > 0 && !act->s2c_timer) {
    /* counted from the first schedule, across every attempt */
    pb_event_t *sev = wf_event_unpack(run, act->ev_index);
    int64_t first_ns = sev ? gt_pb_ts_ns(sev->event_time) : act->scheduled_ns;
    if (sev)
      protobuf_c_message_free_unpacked(&sev->base, NULL);
    int64_t left = first_ns / 1000000 + act->schedule_to_close_ms - gt_wall_ns() / 1000000;
    rearm(wf, &act->s2c_timer, left > 0 ? left : 1,
          act_token(TT(SCHEDULE_TO_CLOSE), 0, act->scheduled_event_id));
  }
}

/* Arms the start-to-close timer left_ms from now (0: the activity has none). While the
 * start is not in the executions row and the activity may run past WF_START_PERSIST_MS,
 * the timer fires first at that point, as ACT_PERSIST_START (persist_start): one timer
 * for both, so a start arms no more timers than it would without the write, and an
 * activity that ends within the second never writes its start. */
static void arm_st2c(workflow_t *wf, wf_activity_t *act, int64_t left_ms) {
  int persist_first =
      !act->start_persisted && (left_ms <= 0 || left_ms > WF_START_PERSIST_MS);
  rearm(wf, &act->st2c_timer, persist_first ? WF_START_PERSIST_MS : left_ms,
        act_token(persist_first ? ACT_PERSIST_START : TT(START_TO_CLOSE), act->attempt,
                  act->scheduled_event_id));
}

/* The milliseconds left of a started activity's start-to-close timeout (at least 1), or 0
 * when it has none. */
static int64_t st2c_left_ms(const wf_activity_t *act) {
  if (act->st2c_ms <= 0)
    return 0;
  int64_t left = act->started_ns / 1000000 + act->st2c_ms - gt_wall_ns() / 1000000;
  return left < 1 ? 1 : left;
}

/* ACT_PERSIST_START: the activity has run WF_START_PERSIST_MS. Its start goes into the
 * executions row (a write of its own, unless another write of the row took it meanwhile:
 * field 11 names every started activity), then the timer goes on to the start-to-close
 * timeout. After a crash the recovery restores it as started (wf_restore_state) instead of
 * dispatching it again while its worker still runs it. */
static void persist_start(workflow_t *wf, wf_run_t *run, wf_activity_t *act) {
  act->st2c_timer = 0;
  if (!act->start_persisted) {
    wf_txn_t *t = wf_txn_begin(wf, run);
    if (t) {
      run->acts_dirty = 1; /* the commit writes the row: start_persisted is set */
      wf_txn_commit(t);
    }
  }
  /* without a txn (a failed allocation) the start is tried again in a second */
  arm_st2c(wf, act, st2c_left_ms(act));
}

void wf_act_arm_started(workflow_t *wf, wf_run_t *run, wf_activity_t *act) {
  (void)run;
  if (act->s2s_timer)
    gt_actor_timer_cancel(&wf->base, act->s2s_timer);
  act->s2s_timer = 0;
  arm_st2c(wf, act, act->st2c_ms);
  rearm(wf, &act->hb_timer, act->hb_ms,
        act_token(TT(HEARTBEAT), act->attempt, act->scheduled_event_id));
}

void wf_act_rearm_after_load(workflow_t *wf, wf_run_t *run) {
  for (size_t i = 0; i < run->n_acts; i++) {
    wf_activity_t *act = &run->acts[i];
    if (!act->started || act->closing)
      continue; /* not started: wf_dispatch_pending hands it out again */
    wf_act_arm_scheduled(wf, run, act); /* schedule-to-close only: it is started */
    arm_st2c(wf, act, st2c_left_ms(act));
    /* when its last heartbeat came is not kept: the worker gets a whole timeout from now */
    rearm(wf, &act->hb_timer, act->hb_ms,
          act_token(TT(HEARTBEAT), act->attempt, act->scheduled_event_id));
  }
}

void wf_act_heartbeat(workflow_t *wf, wf_run_t *run, wf_activity_t *act) {
  (void)run;
  rearm(wf, &act->hb_timer, act->hb_ms,
        act_token(TT(HEARTBEAT), act->attempt, act->scheduled_event_id));
}

void wf_act_arm_retry(workflow_t *wf, wf_activity_t *act, int64_t delay_ms) {
  act->retry_timer = gt_actor_timer_start(
      &wf->base, (uint64_t)delay_ms,
      WF_TIMER_TOKEN(WF_TIMER_ACT_RETRY, act->scheduled_event_id));
}

void wf_act_retry(workflow_t *wf, wf_run_t *run, wf_activity_t *act, const pb_failure_t *f,
                  int64_t delay_ms) {
  wf_set_packed(&act->last_failure, &act->last_failure_len, f ? &f->base : NULL);
  act->attempt++;
  act->started = 0;
  act->start_persisted = 0;
  act->scheduled_ns = gt_wall_ns() + delay_ms * 1000000;
  run->transitions++;
  run->acts_dirty = 1; /* no event: the caller's commit writes it to executions.state */
  if (act->st2c_timer)
    gt_actor_timer_cancel(&wf->base, act->st2c_timer);
  if (act->hb_timer)
    gt_actor_timer_cancel(&wf->base, act->hb_timer);
  act->st2c_timer = act->hb_timer = 0;
  wf_act_arm_retry(wf, act, delay_ms);
}

static const char *timeout_name(int type) {
  switch (type) {
  case TT(SCHEDULE_TO_START):
    return "ScheduleToStart";
  case TT(SCHEDULE_TO_CLOSE):
    return "ScheduleToClose";
  case TT(HEARTBEAT):
    return "Heartbeat";
  default:
    return "StartToClose";
  }
}

static void activity_timed_out(workflow_t *wf, wf_run_t *run, wf_activity_t *act, int type) {
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t)
    return;
  pb_failure_t f = TEMPORAL__API__FAILURE__V1__FAILURE__INIT;
  Temporal__Api__Failure__V1__TimeoutFailureInfo ti =
      TEMPORAL__API__FAILURE__V1__TIMEOUT_FAILURE_INFO__INIT;
  pb_payloads_t *hb = NULL;
  if (act->heartbeat)
    hb = (pb_payloads_t *)protobuf_c_message_unpack(
        &temporal__api__common__v1__payloads__descriptor, NULL, act->heartbeat_len,
        act->heartbeat);
  char msg[64];
  snprintf(msg, sizeof(msg), "activity %s timeout", timeout_name(type));
  f.message = msg;
  f.source = "Server";
  ti.timeout_type = type;
  ti.last_heartbeat_details = hb;
  f.failure_info_case = TEMPORAL__API__FAILURE__V1__FAILURE__FAILURE_INFO_TIMEOUT_FAILURE_INFO;
  f.timeout_failure_info = &ti;
  int retry_state = 0;
  int64_t delay_ms = 0;
  int retryable = act->started && (type == TT(START_TO_CLOSE) || type == TT(HEARTBEAT));
  if (retryable && wf_should_retry(run, act, &f, &retry_state, &delay_ms)) {
    wf_act_retry(wf, run, act, &f, delay_ms);
  } else {
    if (!retryable)
      retry_state = type == TT(SCHEDULE_TO_CLOSE)
          ? TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_TIMEOUT
          : TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_NON_RETRYABLE_FAILURE;
    pb_failure_t *cause = NULL;
    if (act->last_failure)
      cause = (pb_failure_t *)protobuf_c_message_unpack(
          &temporal__api__failure__v1__failure__descriptor, NULL, act->last_failure_len,
          act->last_failure);
    f.cause = cause;
    int64_t sched_id = act->scheduled_event_id;
    int64_t started_id = act->started ? wf_close_activity(wf, run, act) : 0;
    act = wf_find_activity(run, sched_id);
    if (act)
      act->closing = 1;
    pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
    Temporal__Api__History__V1__ActivityTaskTimedOutEventAttributes a =
        TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_TIMED_OUT_EVENT_ATTRIBUTES__INIT;
    a.failure = &f;
    a.scheduled_event_id = sched_id;
    a.started_event_id = started_id;
    a.retry_state = retry_state;
    ev.event_type = PB_EV(ACTIVITY_TASK_TIMED_OUT);
    ev.attributes_case = PB_ATTR(ACTIVITY_TASK_TIMED_OUT_EVENT_ATTRIBUTES);
    ev.activity_task_timed_out_event_attributes = &a;
    wf_emit(wf, run, &ev, 1);
    wf_need_wft(wf, run, t);
    if (cause)
      protobuf_c_message_free_unpacked(&cause->base, NULL);
  }
  if (hb)
    protobuf_c_message_free_unpacked(&hb->base, NULL);
  wf_txn_commit(t);
}

static void on_act_timeout(workflow_t *wf, wf_run_t *run, uint64_t token) {
  int type = (int)((token >> 52) & 0xf);
  int32_t attempt = (int32_t)((token >> 40) & 0xfff);
  int64_t sched_id = (int64_t)(token & ((1ULL << 40) - 1));
  wf_activity_t *act = wf_find_activity(run, sched_id);
  if (!act || act->closing)
    return;
  switch (type) {
  case TT(SCHEDULE_TO_START):
    if (act->started || (act->attempt & 0xfff) != attempt)
      return;
    act->s2s_timer = 0;
    break;
  case TT(SCHEDULE_TO_CLOSE):
    act->s2c_timer = 0;
    break;
  case ACT_PERSIST_START:
    if (act->started && (act->attempt & 0xfff) == attempt)
      persist_start(wf, run, act);
    return;
  case TT(START_TO_CLOSE):
  case TT(HEARTBEAT):
    if (!act->started || (act->attempt & 0xfff) != attempt)
      return;
    if (type == TT(HEARTBEAT))
      act->hb_timer = 0;
    else
      act->st2c_timer = 0;
    break;
  default:
    return;
  }
  activity_timed_out(wf, run, act, type);
}

/* ---- workflow run timeout ---- */

/* When the run must end: its own timeout or the execution's deadline, whichever is first;
 * 0 when neither is set. */
int64_t wf_run_deadline_ms(const wf_run_t *run) {
  /* as Temporal: the run timeout counts from the execution time (after a start delay) */
  int64_t d = run->run_timeout_ms > 0
                  ? wf_run_execution_ns(run) / 1000000 + run->run_timeout_ms
                  : 0;
  int64_t e = run->expiration_ns > 0 ? run->expiration_ns / 1000000 : 0;
  if (!d || (e && e < d))
    d = e;
  return d;
}

void wf_arm_run_timeout(workflow_t *wf, wf_run_t *run) {
  int64_t deadline = wf_run_deadline_ms(run);
  if (!deadline || !wf_running(run))
    return;
  int64_t left = deadline - gt_wall_ns() / 1000000;
  gt_actor_timer_start(&wf->base, (uint64_t)(left > 0 ? left : 1),
                       WF_TIMER_TOKEN(WF_TIMER_RUN_TIMEOUT, 0));
}

static void on_run_timeout(workflow_t *wf, wf_run_t *run) {
  int64_t deadline_ms = wf_run_deadline_ms(run);
  if (!deadline_ms || gt_wall_ns() / 1000000 + 5 < deadline_ms)
    return;
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t)
    return;
  wf_flush_buffered(wf, run);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__WorkflowExecutionTimedOutEventAttributes a =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES__INIT;
  a.retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_TIMEOUT;
  /* A run that ran out of its run timeout (not the whole execution's) may have a next:
   * its retry (wf_retry.c), else a cron run's next run (wf_cron.c). */
  char next_run_id[37] = "";
  int64_t retry_ms = 0;
  int run_timeout = !run->expiration_ns || run->expiration_ns / 1000000 > deadline_ms;
  int retry = run_timeout && (a.retry_state = wf_retry_decide(run, NULL, &retry_ms)) ==
                                 TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_IN_PROGRESS;
  if (!run_timeout)
    a.retry_state = TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_TIMEOUT;
  if (retry || (run_timeout && wf_cron_backoff_ms(run) >= 0)) {
    wf_new_run_id(next_run_id);
    a.new_execution_run_id = next_run_id;
  }
  ev.event_type = PB_EV(WORKFLOW_EXECUTION_TIMED_OUT);
  ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES);
  ev.workflow_execution_timed_out_event_attributes = &a;
  wf_emit(wf, run, &ev, 0);
  wf_close_cleanup(wf, run);
  wf_txn_commit(t);
  if (*next_run_id && retry)
    wf_retry_continue(wf, run, next_run_id, NULL, retry_ms);
  else if (*next_run_id)
    wf_cron_continue(wf, run, next_run_id, NULL, NULL);
}

int wf_on_timeout_timer(workflow_t *wf, uint64_t token) {
  uint64_t kind = token >> 56;
  wf_run_t *run = wf->runs;
  if (kind == WF_TIMER_ACT_TIMEOUT) {
    if (wf_running(run))
      on_act_timeout(wf, run, token);
    return 1;
  }
  if (kind == WF_TIMER_RUN_TIMEOUT) {
    if (wf_running(run))
      on_run_timeout(wf, run);
    return 1;
  }
  return 0;
}
