/*
 * wf_tasks.c: workflow tasks, their commands, the dispatch and start of activity tasks, and
 * timers, inside the workflow actor (an activity's outcomes: wf_activities.c).
 *
 * DESIGN
 *   Each handler validates against the run's mutable state, emits events (wf_emit), and
 *   commits one transaction whose effects reply to the worker and hand new tasks to
 *   matching. Commands of a workflow task are validated all first, so a bad command changes
 *   nothing (the worker gets INVALID_ARGUMENT and the task times out and is retried).
 *   Activity retries (RetryPolicy) are decided in wf_activities.c.
 *   An activity whose command asks for eager execution skips matching: wf_eager.c starts it
 *   once the task's commands are applied and returns it in the completion's reply.
 *
 * INVARIANTS
 *   - A workflow task is started at most once per schedule: a poll whose task is stale goes
 *     back to matching.
 *   - Events that arrive while a workflow task is started are buffered (wf_emit) and flushed
 *     after the task's completion; a close command with buffered events fails the task
 *     (UNHANDLED_COMMAND) so the worker sees the new events first.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define DEFAULT_WFT_TIMEOUT_MS 10000
#define MAX_WFT_RETRY_BACKOFF_MS (10 * 60 * 1000)

typedef Temporal__Api__History__V1__WorkflowTaskScheduledEventAttributes wft_sched_attr_t;
typedef Temporal__Api__History__V1__WorkflowTaskStartedEventAttributes wft_started_attr_t;
typedef Temporal__Api__History__V1__WorkflowTaskCompletedEventAttributes wft_done_attr_t;
typedef Temporal__Api__History__V1__WorkflowTaskFailedEventAttributes wft_failed_attr_t;
typedef Temporal__Api__History__V1__WorkflowTaskTimedOutEventAttributes wft_to_attr_t;
typedef Temporal__Api__History__V1__ActivityTaskScheduledEventAttributes act_sched_attr_t;
typedef Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes sched_act_cmd_t;

static int64_t wft_timeout_ms(const wf_run_t *run) {
  return run->task_timeout_ms > 0 ? run->task_timeout_ms : DEFAULT_WFT_TIMEOUT_MS;
}

static gt_task_t *new_wft_task(workflow_t *wf, wf_run_t *run) {
  return gt_task_new(GT_TASK_WORKFLOW, wf->ns_id, wf->workflow_id, run->run_id,
                     run->wft_scheduled_id, run->wft_attempt);
}

gt_task_t *wf_new_act_task(workflow_t *wf, wf_run_t *run, wf_activity_t *a) {
  return gt_task_new(GT_TASK_ACTIVITY, wf->ns_id, wf->workflow_id, run->run_id,
                     a->scheduled_event_id, a->attempt);
}

void wf_clear_sticky(wf_run_t *run) {
  free(run->sticky_queue);
  run->sticky_queue = NULL;
}

/* The events of a workflow task, as written (or, transient, as shown to the worker). */
typedef struct wft_events {
  pb_event_t sched, started;
  wft_sched_attr_t sa;
  wft_started_attr_t ta;
  pb_taskqueue_t tq;
  pb_dur_t timeout;
  pb_ts_t sched_ts, started_ts;
} wft_events_t;

static void fill_sched(wf_run_t *run, wft_events_t *e, int sticky) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  wft_sched_attr_t a = TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_SCHEDULED_EVENT_ATTRIBUTES__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  e->sched = ev;
  e->sa = a;
  e->tq = tq;
  e->tq.name = sticky ? run->sticky_queue : run->task_queue;
  e->tq.kind = sticky ? TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_STICKY
                      : TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  if (sticky)
    e->tq.normal_name = run->task_queue;
  gt_pb_dur(&e->timeout, wft_timeout_ms(run));
  e->sa.task_queue = &e->tq;
  e->sa.start_to_close_timeout = &e->timeout;
  e->sa.attempt = run->wft_attempt > 0 ? run->wft_attempt : 1;
  e->sched.event_type = PB_EV(WORKFLOW_TASK_SCHEDULED);
  e->sched.attributes_case = PB_ATTR(WORKFLOW_TASK_SCHEDULED_EVENT_ATTRIBUTES);
  e->sched.workflow_task_scheduled_event_attributes = &e->sa;
}

static void fill_started(wf_run_t *run, wft_events_t *e, char *identity, char *request_id) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  wft_started_attr_t a = TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_STARTED_EVENT_ATTRIBUTES__INIT;
  e->started = ev;
  e->ta = a;
  e->ta.scheduled_event_id = run->wft_scheduled_id;
  e->ta.identity = identity ? identity : "";
  e->ta.request_id = request_id;
  e->ta.history_size_bytes = (int64_t)run->hist.len;
  e->started.event_type = PB_EV(WORKFLOW_TASK_STARTED);
  e->started.attributes_case = PB_ATTR(WORKFLOW_TASK_STARTED_EVENT_ATTRIBUTES);
  e->started.workflow_task_started_event_attributes = &e->ta;
}

void wf_materialize_transient(workflow_t *wf, wf_run_t *run) {
  if (!run->wft_transient)
    return;
  run->wft_transient = 0; /* before emitting: wf_emit checks it */
  int started = run->wft_state == WFT_STARTED;
  int64_t started_ns = run->wft_started_ns;
  wft_events_t e;
  fill_sched(run, &e, 0);
  wf_emit(wf, run, &e.sched, 0); /* takes the id the worker was told */
  if (started) {
    fill_started(run, &e, run->wft_identity, run->wft_request_id);
    wf_emit(wf, run, &e.started, 0);
    run->wft_started_ns = started_ns;
  }
}

/* Delivers the scheduled task to a queue, now or after the retry backoff. */
static void dispatch_wft(workflow_t *wf, wf_run_t *run, wf_txn_t *t) {
  if (run->wft_eager)
    return; /* wf_wft_start_eager starts it */
  if (run->wft_attempt <= 2) {
    if (t)
      wf_txn_task(t, run->task_queue, new_wft_task(wf, run));
    else
      gt_matching_add_task(wf->srv, run->task_queue, new_wft_task(wf, run));
    return;
  }
  /* repeated failures: back off (1 s, 2 s, 4 s ... up to 10 min) before redelivery */
  int64_t ms = 1000LL << (run->wft_attempt - 3 > 20 ? 20 : run->wft_attempt - 3);
  if (ms > MAX_WFT_RETRY_BACKOFF_MS)
    ms = MAX_WFT_RETRY_BACKOFF_MS;
  gt_actor_timer_start(&wf->base, (uint64_t)ms,
                       WF_TIMER_TOKEN(WF_TIMER_WFT, run->wft_scheduled_id) | (1ULL << 55));
}

void wf_schedule_wft(workflow_t *wf, wf_run_t *run, wf_txn_t *t) {
  if (run->wft_attempt > 1) { /* a retry: transient, nothing written */
    run->wft_transient = 1;
    run->wft_state = WFT_SCHEDULED;
    run->wft_scheduled_id = (int64_t)run->n_ev + 1;
    run->wft_started_id = 0;
    run->wft_scheduled_ns = gt_wall_ns();
    run->wft_on_sticky = 0;
    dispatch_wft(wf, run, t);
    return;
  }
  /* sticky execution: the worker that ran the last task has the workflow cached */
  int sticky = run->sticky_queue != NULL;
  wft_events_t e;
  fill_sched(run, &e, sticky);
  if (wf_emit(wf, run, &e.sched, 0) <= 0)
    return;
  run->wft_on_sticky = sticky;
  if (sticky) {
    /* not taken in time (worker gone or busy): back to the normal queue; matching hands
     * it back at once when the sticky queue has no worker (wf_on_sticky_gone) */
    gt_task_t *task = new_wft_task(wf, run);
    if (task)
      task->sticky = 1;
    wf_txn_task(t, run->sticky_queue, task);
    gt_actor_timer_start(&wf->base, (uint64_t)run->sticky_s2s_ms,
                         WF_TIMER_TOKEN(WF_TIMER_STICKY, run->wft_scheduled_id));
  } else {
    dispatch_wft(wf, run, t);
  }
}

void wf_rearm_after_load(workflow_t *wf, wf_run_t *run) {
  if (!wf_running(run) || run->wft_state != WFT_STARTED)
    return;
  /* the worker that started it may be gone with the old process: time it out as usual */
  int64_t left = run->wft_started_ns / 1000000 + wft_timeout_ms(run) - gt_wall_ns() / 1000000;
  run->wft_timer = gt_actor_timer_start(&wf->base, (uint64_t)(left > 0 ? left : 1),
                                        WF_TIMER_TOKEN(WF_TIMER_WFT, run->wft_started_id));
}

void wf_dispatch_pending(workflow_t *wf, wf_run_t *run, wf_txn_t *t) {
  if (!wf_running(run))
    return;
  if (run->wft_state == WFT_SCHEDULED)
    wf_txn_task(t, run->task_queue, new_wft_task(wf, run));
  int64_t now_ms = gt_wall_ns() / 1000000;
  for (size_t i = 0; i < run->n_acts; i++) {
    wf_activity_t *a = &run->acts[i];
    if (a->started || a->closing)
      continue;
    /* restored in its retry backoff (wf_restore_state): dispatched when it ends */
    int64_t wait_ms = a->attempt > 1 ? a->scheduled_ns / 1000000 - now_ms : 0;
    if (wait_ms > 0) {
      wf_act_arm_retry(wf, a, wait_ms);
      continue;
    }
    wf_txn_task(t, a->task_queue, wf_new_act_task(wf, run, a));
    wf_act_arm_scheduled(wf, run, a);
  }
}

/* ---- a poll matched a task ---- */

void wf_transient_events(wf_run_t *run, gt_buf_t *out) {
  if (!run->wft_transient || run->wft_state != WFT_STARTED)
    return;
  wft_events_t e;
  fill_sched(run, &e, 0);
  fill_started(run, &e, run->wft_identity, run->wft_request_id);
  gt_pb_ts(&e.sched_ts, run->wft_scheduled_ns);
  gt_pb_ts(&e.started_ts, run->wft_started_ns);
  e.sched.event_id = run->wft_scheduled_id;
  e.sched.event_time = &e.sched_ts;
  e.started.event_id = run->wft_started_id;
  e.started.event_time = &e.started_ts;
  wf_buf_field_event(out, 1, &e.sched);
  wf_buf_field_event(out, 1, &e.started);
}

/* Sends a poll reply built in b (taken): as an effect of t when there is one (sent once t
 * is committed), else at once. */
static void send_poll_reply(wf_txn_t *t, gt_rpc_t *rpc, gt_buf_t *b) {
  if (t) {
    wf_txn_reply(t, rpc, b);
  } else if (b->oom) {
    gt_buf_fini(b);
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
  } else {
    size_t n;
    uint8_t *body = gt_buf_take(b, &n);
    gt_rpc_reply_owned(rpc, body, n);
  }
}

/* Builds the PollWorkflowTaskQueueResponse of the run's started workflow task into b
 * (initialized by the caller; b->oom tells a failed allocation). */
static void build_wft_task(workflow_t *wf, wf_run_t *run, gt_buf_t *b) {
  uint8_t token[GT_TASK_TOKEN_MAX];
  size_t toklen = wf_make_token(wf, run, GT_TASK_WORKFLOW, run->wft_scheduled_id,
                                run->wft_started_id, run->wft_attempt, run->wft_epoch, token);
  wf_wft_reply_t in = {.token = token, .toklen = toklen, .workflow_id = wf->workflow_id,
                       .run_id = run->run_id, .workflow_type = run->workflow_type,
                       .task_queue = run->task_queue,
                       .previous_started_id = run->previous_started_id,
                       .started_id = run->wft_started_id, .attempt = run->wft_attempt,
                       .scheduled_ns = run->wft_scheduled_ns,
                       .started_ns = run->wft_started_ns};
  /* field 8, History: the whole history so far, concatenated without unpacking */
  /* a sticky worker has the history up to its last task cached: send only what follows */
  size_t from = 0;
  if (run->wft_on_sticky && run->previous_started_id > 0)
    from = (size_t)run->previous_started_id;
  size_t len = run->n_ev ? run->hist.len - run->ev_off[from] : 0;
  gt_buf_t extra; /* a transient task's events, as they will be written */
  gt_buf_init(&extra);
  wf_transient_events(run, &extra);
  /* one allocation for the head (ids, names, token: < 300 bytes + strings) and history */
  gt_buf_reserve(b, toklen + strlen(wf->workflow_id) + strlen(run->workflow_type) +
                        strlen(run->task_queue) + 512 + len + extra.len + 16);
  wf_wft_reply_head(b, &in);
  wf_queries_attach(wf, run, b);
  wf_updates_attach(wf, run, b);
  gt_buf_field_len(b, 8, len + extra.len);
  wf_put_events(run, from, run->n_ev, b);
  gt_buf_put(b, extra.p, extra.len);
  gt_buf_fini(&extra);
}

static void reply_wft_started(workflow_t *wf, wf_run_t *run, gt_rpc_t *rpc) {
  gt_buf_t b;
  gt_buf_init(&b);
  build_wft_task(wf, run, &b);
  send_poll_reply(NULL, rpc, &b);
}

/* Appends WorkflowTaskStarted for the scheduled task, started by `identity`. */
static void emit_wft_started(workflow_t *wf, wf_run_t *run, const char *identity) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  wft_started_attr_t a = TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_STARTED_EVENT_ATTRIBUTES__INIT;
  char request_id[37];
  gt_uuid4(request_id);
  a.scheduled_event_id = run->wft_scheduled_id;
  a.identity = (char *)(identity ? identity : "");
  a.request_id = request_id;
  a.history_size_bytes = (int64_t)run->hist.len;
  ev.event_type = PB_EV(WORKFLOW_TASK_STARTED);
  ev.attributes_case = PB_ATTR(WORKFLOW_TASK_STARTED_EVENT_ATTRIBUTES);
  ev.workflow_task_started_event_attributes = &a;
  wf_emit(wf, run, &ev, 0);
  run->wft_epoch = 0;
}

static void record_wft_started(workflow_t *wf, wf_run_t *run, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueRequest *req =
      (const void *)rpc->req;
  /* Speculative when a commit of this workflow is still in flight (a blind start's create
   * included): the task shows events that are not durable yet, so the poller is answered
   * now, while the disk works, instead of after that commit. What keeps it safe:
   *   - the worker's answer is a txn queued after that commit on the actor's store chain,
   *     so it never commits without it (wf_int.h: chain);
   *   - its token carries this activation's epoch, refused by any other activation
   *     (current_wft_run): after a crash or a reload the lost events' ids may be taken by
   *     other events, and a worker that computed on the lost ones must not complete the
   *     new task. The SDK evicts a run whose completion is refused, and replays it from
   *     the history the server holds;
   *   - an activity runs only once its ActivityTaskScheduled is durable (those tasks wait
   *     for their commit), and a query answer leaves only once the completion that carried
   *     it is (wf_query.c), so nothing outside the worker's cache acts on what may be lost.
   * WorkflowTaskStarted itself goes into the history in memory and is written by the
   * run's next commit (the task's completion, failure or timeout, or any event that comes
   * first): readers see only committed events. After a crash before that commit the
   * history ends at WorkflowTaskScheduled and the task is dispatched again, as after a
   * lost poll response. This saves one of the commits a workflow task costs (a hello
   * workflow: 6 -> 4 in a row). */
  int64_t epoch = wf->txn_head ? wf->epoch : 0;
  if (run->wft_transient) { /* nothing to write: answer at once */
    run->wft_state = WFT_STARTED;
    run->wft_started_id = run->wft_scheduled_id + 1;
    run->wft_started_ns = gt_wall_ns();
    free(run->wft_identity);
    run->wft_identity = gt_strdup0(req->identity);
    gt_uuid4(run->wft_request_id);
  } else {
    emit_wft_started(wf, run, req->identity);
  }
  run->wft_epoch = epoch;
  /* a blind start's timers wait for its outcome (wf_blind_start_made arms this one) */
  if (!wf->creating)
    run->wft_timer = gt_actor_timer_start(&wf->base, (uint64_t)wft_timeout_ms(run),
                                          WF_TIMER_TOKEN(WF_TIMER_WFT, run->wft_started_id));
  reply_wft_started(wf, run, rpc);
}

int wf_wft_start_eager(workflow_t *wf, wf_run_t *run, const char *identity, gt_buf_t *out) {
  run->wft_eager = 0;
  /* As Temporal: WorkflowTaskStarted goes into the start's own transaction, and the reply
   * (which carries the task) leaves once that is durable. */
  emit_wft_started(wf, run, identity);
  if (!wf->creating)
    run->wft_timer = gt_actor_timer_start(&wf->base, (uint64_t)wft_timeout_ms(run),
                                          WF_TIMER_TOKEN(WF_TIMER_WFT, run->wft_started_id));
  build_wft_task(wf, run, out);
  return out->oom ? GT_ENOMEM : 0;
}

int wf_act_task_encode(gt_buf_t *b, workflow_t *wf, wf_run_t *run, const wf_activity_t *act,
                       const char *ns_name) {
  uint8_t token[GT_TASK_TOKEN_MAX];
  size_t toklen = wf_make_token(wf, run, GT_TASK_ACTIVITY, act->scheduled_event_id, 0,
                                act->attempt, 0, token);
  wf_act_reply_t in = {.token = token, .toklen = toklen, .ns_name = ns_name,
                       .workflow_type = run->workflow_type, .workflow_id = wf->workflow_id,
                       .run_id = run->run_id, .scheduled_ns = act->scheduled_ns,
                       .started_ns = act->started_ns, .attempt = act->attempt,
                       .heartbeat = act->heartbeat, .heartbeat_len = act->heartbeat_len};
  const uint8_t *ev;
  size_t evlen;
  wf_event_bytes(run, act->ev_index, &ev, &evlen);
  int rc = wf_act_reply(b, &in, ev, evlen);
  if (rc == GT_EINVAL)
    rc = wf_act_reply_pb(b, &in, ev, evlen);
  return rc;
}

static void reply_act_started(workflow_t *wf, wf_run_t *run, wf_activity_t *act,
                              gt_rpc_t *rpc, wf_txn_t *t) {
  gt_buf_t b;
  gt_buf_init(&b);
  if (wf_act_task_encode(&b, wf, run, act, rpc->ns_name) != 0) {
    gt_buf_fini(&b);
    gt_rpc_reply_error(rpc, GT_GRPC_INTERNAL, "activity scheduled event unreadable");
  } else {
    send_poll_reply(t, rpc, &b);
  }
}

void wf_act_set_started(workflow_t *wf, wf_run_t *run, wf_activity_t *act,
                        const char *identity, int64_t started_ns) {
  act->started = 1;
  act->start_persisted = 0;
  act->started_ns = started_ns;
  free(act->identity);
  act->identity = gt_strdup0(identity);
  gt_uuid4(act->request_id);
  run->transitions++;
  wf_act_arm_started(wf, run, act); /* which also times the write of the start */
}

static void record_act_started(workflow_t *wf, wf_run_t *run, wf_activity_t *act,
                               gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__PollActivityTaskQueueRequest *req =
      (const void *)rpc->req;
  /* An activity's start writes no event (ActivityTaskStarted is written with its
   * outcome), so the reply does not wait for a commit. The start goes into the
   * executions row WF_START_PERSIST_MS later if the activity still runs then
   * (wf_timeouts.c, ACT_PERSIST_START), or with the next write of the row if that comes
   * first; a crash before that dispatches it again, as after a lost worker, and one
   * after it restores it as started. This saves one commit per activity on the critical
   * path, and the activities that end within the second (most) cost no write at all. */
  wf_act_set_started(wf, run, act, req->identity, gt_wall_ns());
  reply_act_started(wf, run, act, rpc, NULL);
}

void wf_on_record_started(workflow_t *wf, gt_rpc_t *rpc) {
  gt_task_t *task = rpc->task;
  wf_run_t *run = wf_find_run(wf, task->run_id);
  if (!wf_running(run)) {
    gt_matching_repark(rpc);
    return;
  }
  if (task->kind == GT_TASK_WORKFLOW) {
    if (run->wft_state != WFT_SCHEDULED || run->wft_scheduled_id != task->scheduled_event_id) {
      gt_matching_repark(rpc);
      return;
    }
    record_wft_started(wf, run, rpc);
    return;
  }
  wf_activity_t *act = wf_find_activity(run, task->scheduled_event_id);
  if (!act || act->started || act->closing || act->attempt != task->attempt) {
    gt_matching_repark(rpc);
    return;
  }
  record_act_started(wf, run, act, rpc);
}

/* ---- workflow task completed: commands ---- */

/* Validates a ScheduleActivityTask command and fills Temporal's defaults into `out`.
 * Returns NULL when valid, else the INVALID_ARGUMENT message. */
static const char *check_schedule_activity(wf_run_t *run, const sched_act_cmd_t *c,
                                           int64_t *s2c, int64_t *s2s, int64_t *st2c) {
  if (!c)
    return "ScheduleActivityTaskCommandAttributes is not set on ScheduleActivityTaskCommand.";
  if (!c->activity_id || !*c->activity_id)
    return "ActivityId is not set on ScheduleActivityTaskCommand.";
  if (!c->activity_type || !c->activity_type->name || !*c->activity_type->name)
    return "ActivityType is not set on ScheduleActivityTaskCommand.";
  for (size_t i = 0; i < run->n_acts; i++)
    if (strcmp(run->acts[i].activity_id, c->activity_id) == 0)
      return "Activity ID already in use.";
  *s2c = gt_pb_dur_ms(c->schedule_to_close_timeout);
  *s2s = gt_pb_dur_ms(c->schedule_to_start_timeout);
  *st2c = gt_pb_dur_ms(c->start_to_close_timeout);
  if (*s2c < 0 || *s2s < 0 || *st2c < 0)
    return "A valid timeout may not be negative.";
  /* Temporal's defaults: the run timeout bounds schedule-to-close; start-to-close falls
   * back on schedule-to-close; schedule-to-start on schedule-to-close. */
  if (*s2c == 0 && *st2c == 0)
    return "A valid StartToClose or ScheduleToCloseTimeout is not set on "
           "ScheduleActivityTaskCommand.";
  if (*s2c == 0)
    *s2c = run->run_timeout_ms > 0 ? run->run_timeout_ms : 0;
  if (run->run_timeout_ms > 0 && *s2c > run->run_timeout_ms)
    *s2c = run->run_timeout_ms;
  if (*st2c == 0)
    *st2c = *s2c;
  if (*s2c > 0 && *st2c > *s2c)
    *st2c = *s2c;
  if (*s2s == 0 || (*s2c > 0 && *s2s > *s2c))
    *s2s = *s2c;
  return NULL;
}

/* ActivityTaskScheduled, and its task to matching unless the command asked for eager
 * execution and the server allows it: then wf_eager_start starts it after the commands. */
static void emit_activity_scheduled(workflow_t *wf, wf_run_t *run, wf_txn_t *t,
                                    const sched_act_cmd_t *c, int64_t completed_id,
                                    int64_t s2c, int64_t s2s, int64_t st2c) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  act_sched_attr_t a = TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_SCHEDULED_EVENT_ATTRIBUTES__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  pb_dur_t d_s2c, d_s2s, d_st2c, d_hb, d_init, d_max;
  pb_retry_t rp = TEMPORAL__API__COMMON__V1__RETRY_POLICY__INIT;
  a.activity_id = c->activity_id;
  a.activity_type = c->activity_type;
  tq.name = (c->task_queue && c->task_queue->name && *c->task_queue->name)
                ? c->task_queue->name : run->task_queue;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  a.task_queue = &tq;
  a.header = c->header;
  a.input = c->input;
  gt_pb_dur(&d_s2c, s2c);
  gt_pb_dur(&d_s2s, s2s);
  gt_pb_dur(&d_st2c, st2c);
  gt_pb_dur(&d_hb, gt_pb_dur_ms(c->heartbeat_timeout) > 0 ? gt_pb_dur_ms(c->heartbeat_timeout) : 0);
  a.schedule_to_close_timeout = &d_s2c;
  a.schedule_to_start_timeout = &d_s2s;
  a.start_to_close_timeout = &d_st2c;
  a.heartbeat_timeout = &d_hb;
  a.workflow_task_completed_event_id = completed_id;
  /* RetryPolicy defaults: initial 1 s, coefficient 2, maximum 100x initial, unlimited */
  const pb_retry_t *in = c->retry_policy;
  int64_t init_ms = in && gt_pb_dur_ms(in->initial_interval) > 0
                        ? gt_pb_dur_ms(in->initial_interval) : 1000;
  int64_t max_ms = in && gt_pb_dur_ms(in->maximum_interval) > 0
                       ? gt_pb_dur_ms(in->maximum_interval) : 100 * init_ms;
  gt_pb_dur(&d_init, init_ms);
  gt_pb_dur(&d_max, max_ms);
  rp.initial_interval = &d_init;
  rp.maximum_interval = &d_max;
  rp.backoff_coefficient = in && in->backoff_coefficient >= 1.0 ? in->backoff_coefficient : 2.0;
  rp.maximum_attempts = in ? in->maximum_attempts : 0;
  if (in) {
    rp.n_non_retryable_error_types = in->n_non_retryable_error_types;
    rp.non_retryable_error_types = in->non_retryable_error_types;
  }
  a.retry_policy = &rp;
  a.priority = c->priority;
  ev.event_type = PB_EV(ACTIVITY_TASK_SCHEDULED);
  ev.attributes_case = PB_ATTR(ACTIVITY_TASK_SCHEDULED_EVENT_ATTRIBUTES);
  ev.activity_task_scheduled_event_attributes = &a;
  int64_t id = wf_emit(wf, run, &ev, 0);
  wf_activity_t *act = id > 0 ? wf_find_activity(run, id) : NULL;
  if (!act)
    return;
  if (wf_eager_wanted(wf, c))
    act->eager = 1; /* started by wf_eager_start once every command is applied */
  else
    wf_act_dispatch(wf, run, t, act);
}

void wf_act_dispatch(workflow_t *wf, wf_run_t *run, wf_txn_t *t, wf_activity_t *act) {
  wf_txn_task(t, act->task_queue, wf_new_act_task(wf, run, act));
  wf_act_arm_scheduled(wf, run, act);
}

/* A transient task that failed or timed out: forgotten, the next attempt is transient. */
static void drop_transient(wf_run_t *run) {
  run->wft_transient = 0;
  run->wft_state = WFT_NONE;
  run->wft_attempt++;
}

static void emit_wft_failed(workflow_t *wf, wf_run_t *run, int cause,
                            pb_failure_t *failure, const char *identity) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  wft_failed_attr_t a = TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_FAILED_EVENT_ATTRIBUTES__INIT;
  a.scheduled_event_id = run->wft_scheduled_id;
  a.started_event_id = run->wft_started_id;
  a.cause = cause;
  a.failure = failure;
  a.identity = (char *)(identity ? identity : "");
  ev.event_type = PB_EV(WORKFLOW_TASK_FAILED);
  ev.attributes_case = PB_ATTR(WORKFLOW_TASK_FAILED_EVENT_ATTRIBUTES);
  ev.workflow_task_failed_event_attributes = &a;
  wf_emit(wf, run, &ev, 0);
}


/* Checks the started workflow task named by the token. NULL when it is not current. */
static wf_run_t *current_wft_run(workflow_t *wf, gt_rpc_t *rpc) {
  wf_run_t *run = wf_find_run(wf, rpc->run_id);
  /* a speculative task's token is good only in the activation that handed it out */
  if (rpc->token_epoch && rpc->token_epoch != wf->epoch)
    return NULL;
  if (!wf_running(run) || run->wft_state != WFT_STARTED ||
      run->wft_scheduled_id != rpc->scheduled_event_id ||
      (rpc->started_event_id && run->wft_started_id != rpc->started_event_id))
    return NULL;
  return run;
}

static void cancel_wft_timer(workflow_t *wf, wf_run_t *run) {
  if (run->wft_timer)
    gt_actor_timer_cancel(&wf->base, run->wft_timer);
  run->wft_timer = 0;
}

static void arm_timer(workflow_t *wf, wf_timer_t *tm) {
  int64_t now = gt_wall_ns();
  uint64_t ms = tm->fire_ns > now ? (uint64_t)((tm->fire_ns - now + 999999) / 1000000) : 0;
  tm->actor_timer = gt_actor_timer_start(&wf->base, ms,
                                         WF_TIMER_TOKEN(WF_TIMER_USER, tm->started_event_id));
}

void wf_arm_backoff(workflow_t *wf, wf_run_t *run) {
  if (!run->backoff_pending)
    return;
  int64_t left = (wf_run_execution_ns(run) - gt_wall_ns()) / 1000000;
  gt_actor_timer_start(&wf->base, (uint64_t)(left > 0 ? left : 1),
                       WF_TIMER_TOKEN(WF_TIMER_BACKOFF, 0));
}

/* The start delay is over: the first workflow task (unless something scheduled it
 * already: a cancel request, another SignalWithStart). */
static void on_backoff_timer(workflow_t *wf, wf_run_t *run) {
  if (!run->backoff_pending || run->wft_state != WFT_NONE)
    return;
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t) {
    gt_actor_timer_start(&wf->base, 1000, WF_TIMER_TOKEN(WF_TIMER_BACKOFF, 0)); /* again */
    return;
  }
  wf_schedule_wft(wf, run, t);
  wf_txn_commit(t);
}

void wf_arm_timers(workflow_t *wf, wf_run_t *run) {
  for (size_t i = 0; i < run->n_timers; i++)
    if (!run->timers[i].actor_timer)
      arm_timer(wf, &run->timers[i]);
}

static void emit_timer_started(workflow_t *wf, wf_run_t *run,
                               const Temporal__Api__Command__V1__StartTimerCommandAttributes *c,
                               int64_t completed_id) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__TimerStartedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__TIMER_STARTED_EVENT_ATTRIBUTES__INIT;
  a.timer_id = c->timer_id;
  a.start_to_fire_timeout = c->start_to_fire_timeout;
  a.workflow_task_completed_event_id = completed_id;
  ev.event_type = PB_EV(TIMER_STARTED);
  ev.attributes_case = PB_ATTR(TIMER_STARTED_EVENT_ATTRIBUTES);
  ev.timer_started_event_attributes = &a;
  if (wf_emit(wf, run, &ev, 0) > 0) {
    wf_timer_t *tm = wf_find_timer(run, c->timer_id);
    if (tm)
      arm_timer(wf, tm);
  }
}

static void emit_timer_canceled(workflow_t *wf, wf_run_t *run, const char *timer_id,
                                int64_t completed_id, char *identity) {
  wf_timer_t *tm = wf_find_timer(run, timer_id);
  if (!tm)
    return; /* already fired: the SDK sees TimerFired next */
  if (tm->actor_timer)
    gt_actor_timer_cancel(&wf->base, tm->actor_timer);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__TimerCanceledEventAttributes a =
      TEMPORAL__API__HISTORY__V1__TIMER_CANCELED_EVENT_ATTRIBUTES__INIT;
  a.timer_id = (char *)timer_id;
  a.started_event_id = tm->started_event_id;
  a.workflow_task_completed_event_id = completed_id;
  a.identity = identity;
  ev.event_type = PB_EV(TIMER_CANCELED);
  ev.attributes_case = PB_ATTR(TIMER_CANCELED_EVENT_ATTRIBUTES);
  ev.timer_canceled_event_attributes = &a;
  wf_emit(wf, run, &ev, 0);
}

/* An activity not yet handed to a worker is canceled at once; a running one learns of the
 * request through its next heartbeat. */
static void emit_cancel_activity(workflow_t *wf, wf_run_t *run, wf_txn_t *t, int64_t sched_id,
                                 int64_t completed_id) {
  wf_activity_t *act = wf_find_activity(run, sched_id);
  if (!act || act->closing)
    return;
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ActivityTaskCancelRequestedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_CANCEL_REQUESTED_EVENT_ATTRIBUTES__INIT;
  a.scheduled_event_id = sched_id;
  a.workflow_task_completed_event_id = completed_id;
  ev.event_type = PB_EV(ACTIVITY_TASK_CANCEL_REQUESTED);
  ev.attributes_case = PB_ATTR(ACTIVITY_TASK_CANCEL_REQUESTED_EVENT_ATTRIBUTES);
  ev.activity_task_cancel_requested_event_attributes = &a;
  int64_t req_id = wf_emit(wf, run, &ev, 0);
  act = wf_find_activity(run, sched_id);
  if (!act || act->started)
    return;
  if (act->retry_timer)
    gt_actor_timer_cancel(&wf->base, act->retry_timer);
  pb_event_t cev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ActivityTaskCanceledEventAttributes ca =
      TEMPORAL__API__HISTORY__V1__ACTIVITY_TASK_CANCELED_EVENT_ATTRIBUTES__INIT;
  ca.latest_cancel_requested_event_id = req_id;
  ca.scheduled_event_id = sched_id;
  cev.event_type = PB_EV(ACTIVITY_TASK_CANCELED);
  cev.attributes_case = PB_ATTR(ACTIVITY_TASK_CANCELED_EVENT_ATTRIBUTES);
  cev.activity_task_canceled_event_attributes = &ca;
  wf_emit(wf, run, &cev, 0);
  t->cancel_delivered = 1; /* the workflow must see the cancellation: new task */
}

/* Validates every command before anything changes. Returns NULL or the error message;
 * OUT: *close_index of the first close command (-1 if none). */
static const char *check_commands(wf_run_t *run,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    int *close_index, int *unsupported) {
  *close_index = -1;
  *unsupported = 0;
  for (size_t i = 0; i < req->n_commands; i++) {
    const pb_command_t *c = req->commands[i];
    int64_t a, b, d;
    if (*close_index >= 0)
      return "invalid command sequence: [CompleteWorkflowExecution] is not the last command";
    switch (c->command_type) {
    case PB_CMD(SCHEDULE_ACTIVITY_TASK): {
      const char *e = check_schedule_activity(run, c->schedule_activity_task_command_attributes,
                                              &a, &b, &d);
      if (e)
        return e;
      break;
    }
    case PB_CMD(START_TIMER): {
      const Temporal__Api__Command__V1__StartTimerCommandAttributes *t =
          c->start_timer_command_attributes;
      if (!t || !t->timer_id || !*t->timer_id)
        return "TimerId is not set on StartTimerCommand.";
      if (gt_pb_dur_ms(t->start_to_fire_timeout) <= 0)
        return "A valid StartToFireTimeout is not set on StartTimerCommand.";
      if (wf_find_timer(run, t->timer_id))
        return "TimerId is already in use.";
      break;
    }
    case PB_CMD(CANCEL_TIMER):
      if (!c->cancel_timer_command_attributes || !c->cancel_timer_command_attributes->timer_id ||
          !*c->cancel_timer_command_attributes->timer_id)
        return "TimerId is not set on CancelTimerCommand.";
      break;
    case PB_CMD(REQUEST_CANCEL_ACTIVITY_TASK):
      if (!c->request_cancel_activity_task_command_attributes ||
          c->request_cancel_activity_task_command_attributes->scheduled_event_id <= 0)
        return "ScheduledEventId is not set on RequestCancelActivityTaskCommand.";
      break;
    case PB_CMD(START_CHILD_WORKFLOW_EXECUTION): {
      const char *e = wf_check_start_child(run, c);
      if (e)
        return e;
      break;
    }
    case PB_CMD(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION): {
      const char *e = wf_check_signal_external(c);
      if (e)
        return e;
      break;
    }
    case PB_CMD(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION): {
      const char *e = wf_check_cancel_external(c);
      if (e)
        return e;
      break;
    }
    case PB_CMD(UPSERT_WORKFLOW_SEARCH_ATTRIBUTES):
      if (!c->upsert_workflow_search_attributes_command_attributes ||
          !c->upsert_workflow_search_attributes_command_attributes->search_attributes)
        return "SearchAttributes is not set on UpsertWorkflowSearchAttributesCommand.";
      break;
    case PB_CMD(MODIFY_WORKFLOW_PROPERTIES):
      if (!c->modify_workflow_properties_command_attributes)
        return "ModifyWorkflowPropertiesCommandAttributes is not set on command.";
      break;
    case PB_CMD(PROTOCOL_MESSAGE): {
      const char *e = wf_check_protocol_command(req, c);
      if (e)
        return e;
      break;
    }
    case PB_CMD(RECORD_MARKER):
      if (!c->record_marker_command_attributes ||
          !c->record_marker_command_attributes->marker_name ||
          !*c->record_marker_command_attributes->marker_name)
        return "MarkerName is not set on RecordMarkerCommand.";
      break;
    case PB_CMD(CONTINUE_AS_NEW_WORKFLOW_EXECUTION):
      if (!c->continue_as_new_workflow_execution_command_attributes)
        return "ContinueAsNewWorkflowExecutionCommandAttributes is not set.";
      *close_index = (int)i;
      break;
    case PB_CMD(COMPLETE_WORKFLOW_EXECUTION):
    case PB_CMD(FAIL_WORKFLOW_EXECUTION):
    case PB_CMD(CANCEL_WORKFLOW_EXECUTION):
      *close_index = (int)i;
      break;
    default:
      *unsupported = (int)c->command_type;
      return "command type is not supported by this server yet";
    }
  }
  return NULL;
}

static void emit_command(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                         int64_t completed_id, char *identity) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  switch (c->command_type) {
  case PB_CMD(SCHEDULE_ACTIVITY_TASK): {
    int64_t s2c, s2s, st2c;
    check_schedule_activity(run, c->schedule_activity_task_command_attributes, &s2c, &s2s,
                            &st2c);
    emit_activity_scheduled(wf, run, t, c->schedule_activity_task_command_attributes,
                            completed_id, s2c, s2s, st2c);
    break;
  }
  case PB_CMD(COMPLETE_WORKFLOW_EXECUTION): {
    Temporal__Api__History__V1__WorkflowExecutionCompletedEventAttributes a =
        TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES__INIT;
    a.result = c->complete_workflow_execution_command_attributes
                   ? c->complete_workflow_execution_command_attributes->result : NULL;
    a.workflow_task_completed_event_id = completed_id;
    if (wf_cron_backoff_ms(run) >= 0) { /* a cron run: the next one follows (wf_cron.c) */
      wf_new_run_id(t->can_run_id);
      a.new_execution_run_id = t->can_run_id;
    }
    ev.event_type = PB_EV(WORKFLOW_EXECUTION_COMPLETED);
    ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES);
    ev.workflow_execution_completed_event_attributes = &a;
    wf_emit(wf, run, &ev, 0);
    break;
  }
  case PB_CMD(START_TIMER):
    emit_timer_started(wf, run, c->start_timer_command_attributes, completed_id);
    break;
  case PB_CMD(CANCEL_TIMER):
    emit_timer_canceled(wf, run, c->cancel_timer_command_attributes->timer_id, completed_id,
                        identity);
    break;
  case PB_CMD(REQUEST_CANCEL_ACTIVITY_TASK):
    emit_cancel_activity(wf, run, t,
                         c->request_cancel_activity_task_command_attributes->scheduled_event_id,
                         completed_id);
    break;
  case PB_CMD(START_CHILD_WORKFLOW_EXECUTION):
    wf_cmd_start_child(wf, run, t, c, completed_id);
    break;
  case PB_CMD(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION):
    wf_cmd_signal_external(wf, run, t, c, completed_id);
    break;
  case PB_CMD(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION):
    wf_cmd_cancel_external(wf, run, t, c, completed_id);
    break;
  case PB_CMD(UPSERT_WORKFLOW_SEARCH_ATTRIBUTES):
  case PB_CMD(MODIFY_WORKFLOW_PROPERTIES):
    wf_cmd_upsert_props(wf, run, t, c, completed_id);
    break;
  case PB_CMD(RECORD_MARKER): {
    const Temporal__Api__Command__V1__RecordMarkerCommandAttributes *m =
        c->record_marker_command_attributes;
    Temporal__Api__History__V1__MarkerRecordedEventAttributes a =
        TEMPORAL__API__HISTORY__V1__MARKER_RECORDED_EVENT_ATTRIBUTES__INIT;
    a.marker_name = m->marker_name;
    a.n_details = m->n_details;
    a.details = (void *)m->details;
    a.workflow_task_completed_event_id = completed_id;
    a.header = m->header;
    a.failure = m->failure;
    ev.event_type = PB_EV(MARKER_RECORDED);
    ev.attributes_case = PB_ATTR(MARKER_RECORDED_EVENT_ATTRIBUTES);
    ev.marker_recorded_event_attributes = &a;
    wf_emit(wf, run, &ev, 0);
    break;
  }
  case PB_CMD(CONTINUE_AS_NEW_WORKFLOW_EXECUTION): {
    const Temporal__Api__Command__V1__ContinueAsNewWorkflowExecutionCommandAttributes *c2 =
        c->continue_as_new_workflow_execution_command_attributes;
    Temporal__Api__History__V1__WorkflowExecutionContinuedAsNewEventAttributes a =
        TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_CONTINUED_AS_NEW_EVENT_ATTRIBUTES__INIT;
    pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
    pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
    wf_new_run_id(t->can_run_id);
    a.new_execution_run_id = t->can_run_id;
    wt.name = c2->workflow_type && *c2->workflow_type->name ? c2->workflow_type->name
                                                            : run->workflow_type;
    a.workflow_type = &wt;
    tq.name = c2->task_queue && *c2->task_queue->name ? c2->task_queue->name : run->task_queue;
    tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
    a.task_queue = &tq;
    a.input = c2->input;
    a.workflow_run_timeout = c2->workflow_run_timeout;
    a.workflow_task_timeout = c2->workflow_task_timeout;
    a.workflow_task_completed_event_id = completed_id;
    a.backoff_start_interval = c2->backoff_start_interval;
    a.initiator = c2->initiator;
    a.last_completion_result = c2->last_completion_result;
    a.header = c2->header;
    a.memo = c2->memo;
    a.search_attributes = c2->search_attributes;
    ev.event_type = PB_EV(WORKFLOW_EXECUTION_CONTINUED_AS_NEW);
    ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_CONTINUED_AS_NEW_EVENT_ATTRIBUTES);
    ev.workflow_execution_continued_as_new_event_attributes = &a;
    wf_emit(wf, run, &ev, 0);
    break;
  }
  case PB_CMD(CANCEL_WORKFLOW_EXECUTION): {
    Temporal__Api__History__V1__WorkflowExecutionCanceledEventAttributes a =
        TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_CANCELED_EVENT_ATTRIBUTES__INIT;
    a.details = c->cancel_workflow_execution_command_attributes
                    ? c->cancel_workflow_execution_command_attributes->details : NULL;
    a.workflow_task_completed_event_id = completed_id;
    ev.event_type = PB_EV(WORKFLOW_EXECUTION_CANCELED);
    ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_CANCELED_EVENT_ATTRIBUTES);
    ev.workflow_execution_canceled_event_attributes = &a;
    wf_emit(wf, run, &ev, 0);
    break;
  }
  case PB_CMD(FAIL_WORKFLOW_EXECUTION): {
    Temporal__Api__History__V1__WorkflowExecutionFailedEventAttributes a =
        TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES__INIT;
    a.failure = c->fail_workflow_execution_command_attributes
                    ? c->fail_workflow_execution_command_attributes->failure : NULL;
    a.workflow_task_completed_event_id = completed_id;
    /* a retry (wf_retry.c) or else, for a cron run, its next run (wf_cron.c) follows */
    a.retry_state = wf_retry_decide(run, a.failure, &t->retry_backoff_ms);
    t->retry_next =
        a.retry_state == TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_IN_PROGRESS;
    if (t->retry_next || wf_cron_backoff_ms(run) >= 0) {
      wf_new_run_id(t->can_run_id);
      a.new_execution_run_id = t->can_run_id;
    }
    ev.event_type = PB_EV(WORKFLOW_EXECUTION_FAILED);
    ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES);
    ev.workflow_execution_failed_event_attributes = &a;
    wf_emit(wf, run, &ev, 0);
    break;
  }
  default:
    break;
  }
}

/* Starts the next run of a ContinueAsNew: what the command does not set is inherited. */
static void continue_as_new(workflow_t *wf, wf_run_t *prev, const pb_command_t *c,
                            const char *run_id) {
  const Temporal__Api__Command__V1__ContinueAsNewWorkflowExecutionCommandAttributes *a =
      c->continue_as_new_workflow_execution_command_attributes;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  pb_dur_t run_to, task_to, exec_to;
  wt.name = a->workflow_type && *a->workflow_type->name ? a->workflow_type->name
                                                        : prev->workflow_type;
  tq.name = a->task_queue && *a->task_queue->name ? a->task_queue->name : prev->task_queue;
  gt_pb_dur(&run_to, a->workflow_run_timeout ? gt_pb_dur_ms(a->workflow_run_timeout)
                                             : prev->run_timeout_ms);
  gt_pb_dur(&task_to, a->workflow_task_timeout ? gt_pb_dur_ms(a->workflow_task_timeout)
                                               : prev->task_timeout_ms);
  gt_pb_dur(&exec_to, prev->exec_timeout_ms);
  start_params_t p = {
      .workflow_type = &wt, .task_queue = &tq, .input = a->input, .exec_timeout = &exec_to,
      .run_timeout = &run_to, .task_timeout = &task_to, .identity = "",
      .request_id = "", .retry_policy = a->retry_policy,
      .memo = a->memo, .search_attributes = a->search_attributes, /* else prev's */
      .header = a->header, .run_id = run_id, .first_run_id = prev->first_run_id,
      .continued_run_id = prev->run_id, .initiator = a->initiator,
      .continued_failure = a->failure, .last_completion_result = a->last_completion_result,
      .parent_ns_id = prev->parent_ns_id, .parent_workflow_id = prev->parent_workflow_id,
      .parent_run_id = prev->parent_run_id, .parent_initiated_id = prev->parent_initiated_id,
      .parent_close_policy = prev->parent_close_policy, .expiration_ns = prev->expiration_ns,
      .start_delay = a->backoff_start_interval}; /* the new run's first task backoff */
  wf_start_next_run(wf, prev, &p, "continue-as-new");
}

void wf_on_wft_completed(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = current_wft_run(wf, rpc);
  if (!run) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "Workflow task not found.");
    return;
  }
  int close_index, unsupported;
  const char *err = check_commands(run, req, &close_index, &unsupported);
  if (err) {
    if (unsupported)
      gt_rpc_reply_error(rpc, GT_GRPC_UNIMPLEMENTED, "%s: %s", err,
                         protobuf_c_enum_descriptor_get_value(
                             &temporal__api__enums__v1__command_type__descriptor, unsupported)
                             ? protobuf_c_enum_descriptor_get_value(
                                   &temporal__api__enums__v1__command_type__descriptor,
                                   unsupported)->name
                             : "?");
    else
      gt_rpc_reply_error(rpc, GT_GRPC_INVALID_ARGUMENT, "%s", err);
    return;
  }
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  cancel_wft_timer(wf, run);
  const Temporal__Api__Taskqueue__V1__StickyExecutionAttributes *sa = req->sticky_attributes;
  if (sa && sa->worker_task_queue && sa->worker_task_queue->name &&
      *sa->worker_task_queue->name) {
    if (!run->sticky_queue || strcmp(run->sticky_queue, sa->worker_task_queue->name) != 0) {
      wf_clear_sticky(run);
      run->sticky_queue = strdup(sa->worker_task_queue->name);
    }
    int64_t ms = gt_pb_dur_ms(sa->schedule_to_start_timeout);
    run->sticky_s2s_ms = ms > 0 ? ms : 5000;
  } else {
    wf_clear_sticky(run);
  }
  wf_materialize_transient(wf, run); /* it completes: its events are written now */
  if (close_index >= 0 && run->n_buf > 0) {
    /* new events arrived while the task ran: the worker must see them before closing */
    emit_wft_failed(wf, run,
                    TEMPORAL__API__ENUMS__V1__WORKFLOW_TASK_FAILED_CAUSE__WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
                    NULL, req->identity);
    run->wft_attempt = 1; /* not a worker failure: no backoff */
    wf_flush_buffered(wf, run);
    wf_schedule_wft(wf, run, t);
  } else {
    pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
    wft_done_attr_t a = TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_COMPLETED_EVENT_ATTRIBUTES__INIT;
    a.scheduled_event_id = run->wft_scheduled_id;
    a.started_event_id = run->wft_started_id;
    a.identity = req->identity;
    a.sdk_metadata = req->sdk_metadata;
    a.metering_metadata = req->metering_metadata;
    ev.event_type = PB_EV(WORKFLOW_TASK_COMPLETED);
    ev.attributes_case = PB_ATTR(WORKFLOW_TASK_COMPLETED_EVENT_ATTRIBUTES);
    ev.workflow_task_completed_event_attributes = &a;
    int64_t completed_id = wf_emit(wf, run, &ev, 0);
    uint8_t *done = req->n_messages ? calloc(req->n_messages, 1) : NULL;
    for (size_t i = 0; i < req->n_commands; i++) {
      if (req->commands[i]->command_type == PB_CMD(PROTOCOL_MESSAGE)) {
        if (done)
          wf_cmd_protocol_message(wf, run, t, req, req->commands[i], done);
        continue;
      }
      emit_command(wf, run, t, req->commands[i], completed_id, req->identity);
    }
    int resend = wf_updates_after_wft(wf, run, t, req, done);
    free(done);
    if (!wf_running(run))
      wf_close_cleanup(wf, run);
    if (wf_running(run)) {
      size_t flushed = wf_flush_buffered(wf, run);
      if (flushed > 0 || req->force_create_new_workflow_task || t->cancel_delivered || resend)
        wf_need_wft(wf, run, t);
    }
  }
  /* RespondWorkflowTaskCompletedResponse: empty, or the eagerly started activities
   * (activity_tasks), sent only once the commit holds their ActivityTaskScheduled */
  gt_buf_t resp;
  gt_buf_init(&resp);
  wf_eager_start(wf, run, t, req, rpc->ns_name, &resp);
  char can_run_id[37];
  gt_copy_str(can_run_id, sizeof(can_run_id), t->can_run_id); /* not snprintf: hot path */
  int retry_next = t->retry_next;
  int64_t retry_backoff_ms = t->retry_backoff_ms;
  /* answers are final only once the task's events are durable; the worker's answers are
   * about the state at that point, so they can go now */
  wf_queries_after_wft(wf, run, req, t);
  wf_txn_reply(t, rpc, &resp);
  wf_txn_commit(t);
  if (*can_run_id && close_index >= 0) {
    const pb_command_t *cc = req->commands[close_index];
    if (cc->command_type == PB_CMD(CONTINUE_AS_NEW_WORKFLOW_EXECUTION))
      continue_as_new(wf, run, cc, can_run_id);
    else if (cc->command_type == PB_CMD(COMPLETE_WORKFLOW_EXECUTION))
      wf_cron_continue(wf, run, can_run_id,
                       cc->complete_workflow_execution_command_attributes
                           ? cc->complete_workflow_execution_command_attributes->result
                           : NULL,
                       NULL);
    else if (cc->command_type == PB_CMD(FAIL_WORKFLOW_EXECUTION)) {
      pb_failure_t *f = cc->fail_workflow_execution_command_attributes
                            ? cc->fail_workflow_execution_command_attributes->failure
                            : NULL;
      if (retry_next)
        wf_retry_continue(wf, run, can_run_id, f, retry_backoff_ms);
      else
        wf_cron_continue(wf, run, can_run_id, NULL, f);
    }
  }
}

void wf_on_wft_failed(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskFailedRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = current_wft_run(wf, rpc);
  if (!run) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "Workflow task not found.");
    return;
  }
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  cancel_wft_timer(wf, run);
  wf_clear_sticky(run); /* as Temporal: a failed task goes back to the normal queue */
  if (run->wft_transient)
    drop_transient(run); /* a retry failing again writes nothing */
  else
    emit_wft_failed(wf, run, req->cause, req->failure, req->identity);
  wf_flush_buffered(wf, run);
  wf_schedule_wft(wf, run, t);
  wf_queries_after_wft(wf, run, NULL, t);
  wf_updates_after_wft(wf, run, NULL, NULL, NULL);
  wf_txn_reply_empty(t, rpc); /* an empty response message */
  wf_txn_commit(t);
}

/* ---- timers ---- */

static void on_wft_timeout(workflow_t *wf, int64_t started_id) {
  wf_run_t *run = wf->runs;
  if (!wf_running(run) || run->wft_state != WFT_STARTED || run->wft_started_id != started_id)
    return;
  run->wft_timer = 0;
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t)
    return;
  wf_clear_sticky(run);
  if (run->wft_transient) {
    drop_transient(run);
  } else {
    pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
    wft_to_attr_t a = TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_TIMED_OUT_EVENT_ATTRIBUTES__INIT;
    a.scheduled_event_id = run->wft_scheduled_id;
    a.started_event_id = run->wft_started_id;
    a.timeout_type = TEMPORAL__API__ENUMS__V1__TIMEOUT_TYPE__TIMEOUT_TYPE_START_TO_CLOSE;
    ev.event_type = PB_EV(WORKFLOW_TASK_TIMED_OUT);
    ev.attributes_case = PB_ATTR(WORKFLOW_TASK_TIMED_OUT_EVENT_ATTRIBUTES);
    ev.workflow_task_timed_out_event_attributes = &a;
    wf_emit(wf, run, &ev, 0);
  }
  wf_flush_buffered(wf, run);
  wf_schedule_wft(wf, run, t);
  wf_queries_after_wft(wf, run, NULL, t);
  wf_txn_commit(t);
}

static void on_user_timer(workflow_t *wf, wf_run_t *run, int64_t started_id) {
  wf_timer_t *tm = NULL;
  for (size_t i = 0; i < run->n_timers; i++)
    if (run->timers[i].started_event_id == started_id)
      tm = &run->timers[i];
  if (!tm)
    return;
  tm->actor_timer = 0;
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t)
    return;
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__TimerFiredEventAttributes a =
      TEMPORAL__API__HISTORY__V1__TIMER_FIRED_EVENT_ATTRIBUTES__INIT;
  char *timer_id = strdup(tm->timer_id);
  a.timer_id = timer_id;
  a.started_event_id = started_id;
  ev.event_type = PB_EV(TIMER_FIRED);
  ev.attributes_case = PB_ATTR(TIMER_FIRED_EVENT_ATTRIBUTES);
  ev.timer_fired_event_attributes = &a;
  if (run->wft_state == WFT_STARTED) {
    /* buffered: the timer stays pending until the flush applies TimerFired; remember it
     * fired so a second fire (after a reload) cannot happen meanwhile */
    tm->fire_ns = INT64_MAX;
  }
  wf_emit(wf, run, &ev, 1);
  free(timer_id);
  wf_need_wft(wf, run, t);
  wf_txn_commit(t);
}

/* The sticky worker did not take the task in time: Temporal's ScheduleToStart timeout,
 * then the task goes to the normal queue with the full history. */
static void on_sticky_timeout(workflow_t *wf, wf_run_t *run, int64_t scheduled_id) {
  if (run->wft_state != WFT_SCHEDULED || run->wft_scheduled_id != scheduled_id ||
      !run->wft_on_sticky)
    return;
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t)
    return;
  wf_clear_sticky(run);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  wft_to_attr_t a = TEMPORAL__API__HISTORY__V1__WORKFLOW_TASK_TIMED_OUT_EVENT_ATTRIBUTES__INIT;
  a.scheduled_event_id = scheduled_id;
  a.timeout_type = TEMPORAL__API__ENUMS__V1__TIMEOUT_TYPE__TIMEOUT_TYPE_SCHEDULE_TO_START;
  ev.event_type = PB_EV(WORKFLOW_TASK_TIMED_OUT);
  ev.attributes_case = PB_ATTR(WORKFLOW_TASK_TIMED_OUT_EVENT_ATTRIBUTES);
  ev.workflow_task_timed_out_event_attributes = &a;
  wf_emit(wf, run, &ev, 0);
  run->wft_attempt = 1; /* nobody failed: no backoff */
  wf_flush_buffered(wf, run);
  wf_schedule_wft(wf, run, t);
  wf_txn_commit(t);
}

void wf_on_sticky_gone(workflow_t *wf, const char *run_id, int64_t scheduled_id) {
  wf_run_t *run = wf_find_run(wf, run_id);
  if (!wf_running(run) || run->wft_state != WFT_SCHEDULED ||
      run->wft_scheduled_id != scheduled_id || !run->wft_on_sticky)
    return; /* taken, timed out or superseded meanwhile */
  gt_log_debug("HIST-STICKY-GONE", "workflow %s: sticky queue %s has no worker, task %lld "
               "goes to %s", wf->workflow_id, run->sticky_queue ? run->sticky_queue : "-",
               (long long)scheduled_id, run->task_queue);
  /* no event: the task stays the one scheduled, now for any worker with the whole history
   * (the sticky timer finds wft_on_sticky cleared); the next commit persists the state */
  wf_clear_sticky(run);
  run->wft_on_sticky = 0;
  dispatch_wft(wf, run, NULL);
}

void wf_on_reset_sticky(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__ResetStickyTaskQueueRequest *req =
      (const void *)rpc->req;
  wf_run_t *run = wf_find_run(wf, req->execution ? req->execution->run_id : "");
  if (!run) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow not found for ID: %s",
                       wf->workflow_id);
    return;
  }
  int had = run->sticky_queue != NULL;
  wf_clear_sticky(run);
  Temporal__Api__Workflowservice__V1__ResetStickyTaskQueueResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESET_STICKY_TASK_QUEUE_RESPONSE__INIT;
  /* the sticky queue is part of the persisted state: a reload must not bring it back */
  wf_txn_t *t = had && wf_running(run) ? wf_txn_begin(wf, run) : NULL;
  if (t) {
    wf_txn_reply_msg(t, rpc, &r.base);
    wf_txn_commit(t);
  } else {
    gt_rpc_reply_msg(rpc, &r.base);
  }
}

void wf_on_timer(workflow_t *wf, gt_timer_msg_t *tm) {
  uint64_t kind = tm->token >> 56;
  int64_t id = (int64_t)(tm->token & ((1ULL << 55) - 1));
  int delayed_dispatch = (tm->token >> 55) & 1;
  wf_run_t *run = wf->runs;
  if (!wf_running(run))
    return;
  if (kind == WF_TIMER_WFT && delayed_dispatch) {
    if (run->wft_state == WFT_SCHEDULED && run->wft_scheduled_id == id)
      gt_matching_add_task(wf->srv, run->task_queue, new_wft_task(wf, run));
  } else if (kind == WF_TIMER_WFT) {
    on_wft_timeout(wf, id);
  } else if (wf_on_timeout_timer(wf, tm->token)) {
    return;
  } else if (kind == WF_TIMER_USER) {
    on_user_timer(wf, run, id);
  } else if (kind == WF_TIMER_STICKY) {
    on_sticky_timeout(wf, run, id);
  } else if (kind == WF_TIMER_BACKOFF) {
    on_backoff_timer(wf, run);
  } else if (kind == WF_TIMER_ACT_RETRY) {
    wf_activity_t *act = wf_find_activity(run, id);
    if (act && !act->started && !act->closing) {
      act->retry_timer = 0;
      gt_matching_add_task(wf->srv, act->task_queue, wf_new_act_task(wf, run, act));
      wf_act_arm_scheduled(wf, run, act);
    }
  }
}
