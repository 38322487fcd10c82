/*
 * wf_state.c: a workflow run's events and mutable state, and the transactions that persist
 * them (see wf_int.h for the design).
 *
 * Persisted per transaction (one store batch, fenced by the shard's range_id):
 *   executions        INSERT on the run's first txn; later an UPDATE WHERE db_version = v-1,
 *                     only in the txns that change what is read back from it (the sticky
 *                     queue, the sleep state for recovery) and at close: state = msgpack
 *                     [status, next_event_id, wft_state, wft_scheduled_id, wft_started_id,
 *                     wft_attempt, pending activities, sticky queue, its timeout, sleeps,
 *                     xwf(, activity retry state)] (xwf since the crash-safe
 *                     cross-workflow messages: an older row has 10 fields and reads as
 *                     xwf 0; the activity retry state only while some pending activity
 *                     has one, see pack_state: 11 fields read as none)
 *                     (fields 0-6 and next_event_id are as of that write: inspection only)
 *                     Also written by a commit after an activity's retry or a heartbeat
 *                     with new details (run->acts_dirty), which write no event.
 *   history           one row per txn: the txn's events as a serialized History
 *   current_executions on creation and on close (status, state)
 *   visibility        on creation and on close
 *
 * THREADS: the workflow actor's home thread, except txn_store_cb (a store thread), which
 * only posts the txn back to the actor.
 */
#include <msgpack.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "actors/history/wf_int.h"
#include "actors/visibility/vis_outbox.h"
#include "actors/visibility/visibility.h"
#include "runtime/err.h"
#include "runtime/log.h"

size_t wf_make_token(workflow_t *wf, const wf_run_t *run, int kind, int64_t scheduled_id,
                     int64_t started_id, int32_t attempt, int64_t epoch, uint8_t *out) {
  return gt_task_token_put(out, kind, wf->ns_id, wf->workflow_id, run->run_id, scheduled_id,
                           started_id, attempt, epoch);
}

int64_t wf_new_epoch(void) {
  static _Atomic uint32_t boot, seq;
  uint32_t b = atomic_load_explicit(&boot, memory_order_relaxed);
  if (!b) { /* first call: the process's random half (threads racing agree on one) */
    uint32_t r = 0;
    while (!r) {
      if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)gt_wall_ns() ^ (uint32_t)getpid();
      r &= 0x7fffffff;
    }
    uint32_t none = 0;
    b = atomic_compare_exchange_strong(&boot, &none, r) ? r : none;
  }
  uint32_t n = atomic_fetch_add_explicit(&seq, 1, memory_order_relaxed) + 1;
  return (int64_t)b << 32 | n;
}

/* ---- runs ---- */

void wf_new_run_id(char out[37]) {
  char r[37];
  gt_uuid4(r); /* random bits, version and variant digits already in place */
  uint64_t ms = (uint64_t)(gt_wall_ns() / 1000000);
  static const char hex[] = "0123456789abcdef";
  /* time_hi (8 hex digits) - time_mid (4) - "7" + rand_a (3) - variant + rand_b */
  for (int i = 0; i < 12; i++) {
    int pos = i < 8 ? i : i + 1; /* skip the dash after 8 digits */
    r[pos] = hex[(ms >> (44 - 4 * i)) & 15];
  }
  r[14] = '7';
  memcpy(out, r, 37);
}

wf_run_t *wf_run_new(workflow_t *wf, const char *run_id) {
  wf_run_t *run = gt_zalloc(sizeof(*run)); /* not calloc: see gt_zalloc */
  if (!run)
    return NULL;
  gt_copy_str(run->run_id, sizeof(run->run_id), run_id);
  gt_buf_init(&run->hist);
  gt_buf_init(&run->buffered);
  run->status = PB_STATUS(RUNNING);
  run->next = wf->runs;
  wf->runs = run;
  return run;
}

static void activity_fini(wf_activity_t *a) {
  free(a->heartbeat);
  free(a->activity_id);
  free(a->task_queue);
  free(a->identity);
  free(a->last_failure);
}

void wf_run_free(wf_run_t *run) {
  if (!run)
    return;
  while (run->waiters) {
    gt_rpc_t *r = run->waiters;
    run->waiters = r->next;
    gt_rpc_reply_error(r, GT_GRPC_UNAVAILABLE, "workflow unloaded, retry");
  }
  for (size_t i = 0; i < run->n_acts; i++)
    activity_fini(&run->acts[i]);
  free(run->acts);
  free(run->row_sticky);
  for (size_t i = 0; i < run->n_timers; i++)
    free(run->timers[i].timer_id);
  free(run->timers);
  gt_buf_fini(&run->hist);
  gt_buf_fini(&run->buffered);
  free(run->ev_off);
  free(run->buf_off);
  free(run->workflow_type);
  free(run->task_queue);
  free(run->request_id);
  free(run->memo);
  free(run->search_attrs);
  free(run->cron_schedule);
  free(run->sticky_queue);
  for (size_t i = 0; i < run->cap_signal_ids; i++)
    free(run->signal_ids[i]);
  free(run->signal_ids);
  free(run->wft_identity);
  wf_children_free(run);
  wf_updates_free(run);
  free(run);
}

wf_run_t *wf_find_run(workflow_t *wf, const char *run_id) {
  if (!run_id || !*run_id) /* the current run: none when the newest is detached */
    return wf->runs && !wf->runs->detached ? wf->runs : NULL;
  for (wf_run_t *r = wf->runs; r; r = r->next)
    if (strcmp(r->run_id, run_id) == 0)
      return r;
  return NULL;
}

int wf_running(const wf_run_t *run) { return run && run->status == PB_STATUS(RUNNING); }

wf_activity_t *wf_find_activity(wf_run_t *run, int64_t scheduled_event_id) {
  for (size_t i = 0; i < run->n_acts; i++)
    if (run->acts[i].scheduled_event_id == scheduled_event_id)
      return &run->acts[i];
  return NULL;
}

/* ---- events ---- */

/* The first array of a grow(): 16 elements, or fewer when they are large, so it stays
 * within the size glibc serves from its per-thread cache (1,032 bytes): a hello
 * workflow's one activity cost a 4 KiB malloc from the main heap (~530 instructions and
 * a slow free) for 16 activity slots. */
#define GROW_FIRST_BYTES 1024u

static int grow(void **v, size_t *cap, size_t n, size_t elem) {
  if (n < *cap)
    return 0;
  size_t first = GROW_FIRST_BYTES / elem;
  size_t c = *cap ? *cap * 2 : first > 16 ? 16 : first > 0 ? first : 1;
  void *p = realloc(*v, c * elem);
  if (!p)
    return GT_ENOMEM;
  *v = p;
  *cap = c;
  return 0;
}

pb_event_t *wf_event_unpack(const wf_run_t *run, size_t i) {
  const uint8_t *p = run->hist.p + run->ev_off[i];
  size_t end = i + 1 < run->n_ev ? run->ev_off[i + 1] : run->hist.len;
  /* skip the History.events framing: tag 0x0a + varint length */
  size_t k = 1;
  while (k < end - run->ev_off[i] && (p[k] & 0x80))
    k++;
  k++;
  return (pb_event_t *)protobuf_c_message_unpack(
      &temporal__api__history__v1__history_event__descriptor, NULL,
      end - run->ev_off[i] - k, p + k);
}

void wf_put_events(const wf_run_t *run, size_t from, size_t to, gt_buf_t *b) {
  if (from >= to)
    return;
  size_t end = to < run->n_ev ? run->ev_off[to] : run->hist.len;
  gt_buf_put(b, run->hist.p + run->ev_off[from], end - run->ev_off[from]);
}

/* Packs ev (its event_id set) framed as History.events onto the run's history. */
static int append_event(wf_run_t *run, const pb_event_t *ev) {
  if (grow((void **)&run->ev_off, &run->cap_ev, run->n_ev, sizeof(size_t)))
    return GT_ENOMEM;
  run->ev_off[run->n_ev] = run->hist.len;
  wf_buf_field_event(&run->hist, 1, ev);
  if (run->hist.oom)
    return GT_ENOMEM;
  run->n_ev++;
  return 0;
}

int64_t wf_emit(workflow_t *wf, wf_run_t *run, pb_event_t *ev, int buffer) {
  /* a transient task's events take the next ids: write them before anything else */
  if (run->wft_transient && run->wft_state == WFT_SCHEDULED)
    wf_materialize_transient(wf, run);
  pb_ts_t ts;
  gt_pb_ts(&ts, gt_wall_ns());
  ev->event_time = &ts;
  ev->task_id = gt_server_next_task_id(wf->srv, wf->shard);
  int64_t id;
  if (buffer && run->wft_state == WFT_STARTED) {
    /* no id yet: it is given at flush, after the workflow task's own events */
    ev->event_id = 0;
    id = 0;
    if (grow((void **)&run->buf_off, &run->cap_buf, run->n_buf, sizeof(size_t)))
      id = GT_ENOMEM;
    else {
      run->buf_off[run->n_buf++] = run->buffered.len;
      gt_buf_pack(&run->buffered, &ev->base);
    }
  } else {
    id = (int64_t)run->n_ev + 1;
    ev->event_id = id;
    if (append_event(run, ev) != 0)
      id = GT_ENOMEM;
    else
      wf_apply(run, ev, run->n_ev - 1);
  }
  ev->event_time = NULL;
  return id;
}

/* A buffered activity result names its started event, whose id is known only now. */
static void fix_started_id(pb_event_t *ev, int64_t last_started_id) {
  switch (ev->attributes_case) {
  case PB_ATTR(ACTIVITY_TASK_COMPLETED_EVENT_ATTRIBUTES):
    if (!ev->activity_task_completed_event_attributes->started_event_id)
      ev->activity_task_completed_event_attributes->started_event_id = last_started_id;
    break;
  case PB_ATTR(ACTIVITY_TASK_FAILED_EVENT_ATTRIBUTES):
    if (!ev->activity_task_failed_event_attributes->started_event_id)
      ev->activity_task_failed_event_attributes->started_event_id = last_started_id;
    break;
  case PB_ATTR(ACTIVITY_TASK_CANCELED_EVENT_ATTRIBUTES):
    if (!ev->activity_task_canceled_event_attributes->started_event_id &&
        last_started_id)
      ev->activity_task_canceled_event_attributes->started_event_id = last_started_id;
    break;
  default:
    break;
  }
}

size_t wf_flush_buffered(workflow_t *wf, wf_run_t *run) {
  size_t n = run->n_buf;
  int64_t last_started = 0;
  for (size_t i = 0; i < n; i++) {
    size_t end = i + 1 < n ? run->buf_off[i + 1] : run->buffered.len;
    pb_event_t *ev = (pb_event_t *)protobuf_c_message_unpack(
        &temporal__api__history__v1__history_event__descriptor, NULL,
        end - run->buf_off[i], run->buffered.p + run->buf_off[i]);
    if (!ev)
      continue;
    ev->event_id = (int64_t)run->n_ev + 1;
    if (ev->attributes_case == PB_ATTR(ACTIVITY_TASK_STARTED_EVENT_ATTRIBUTES))
      last_started = ev->event_id;
    fix_started_id(ev, last_started);
    if (append_event(run, ev) == 0)
      wf_apply(run, ev, run->n_ev - 1);
    protobuf_c_message_free_unpacked(&ev->base, NULL);
  }
  run->n_buf = 0;
  run->buffered.len = 0;
  (void)wf;
  return n;
}

void wf_set_packed(uint8_t **p, size_t *len, const ProtobufCMessage *m) {
  free(*p);
  *p = NULL;
  *len = 0;
  if (!m)
    return;
  size_t n = protobuf_c_message_get_packed_size(m);
  *p = malloc(n ? n : 1);
  if (*p)
    *len = protobuf_c_message_pack(m, *p);
}

/* ---- apply: the one place mutable state changes ---- */

static void apply_activity_scheduled(wf_run_t *run, const pb_event_t *ev, size_t idx) {
  const Temporal__Api__History__V1__ActivityTaskScheduledEventAttributes *a =
      ev->activity_task_scheduled_event_attributes;
  if (grow((void **)&run->acts, &run->cap_acts, run->n_acts, sizeof(wf_activity_t)))
    return;
  wf_activity_t *act = &run->acts[run->n_acts++];
  memset(act, 0, sizeof(*act));
  act->scheduled_event_id = ev->event_id;
  act->ev_index = idx;
  act->activity_id = gt_strdup0(a->activity_id);
  act->task_queue = gt_strdup0(a->task_queue ? a->task_queue->name : "");
  act->attempt = 1;
  act->scheduled_ns = gt_pb_ts_ns(ev->event_time);
  act->schedule_to_close_ms = gt_pb_dur_ms(a->schedule_to_close_timeout);
  act->s2s_ms = gt_pb_dur_ms(a->schedule_to_start_timeout);
  act->st2c_ms = gt_pb_dur_ms(a->start_to_close_timeout);
  act->hb_ms = gt_pb_dur_ms(a->heartbeat_timeout);
  const pb_retry_t *rp = a->retry_policy;
  act->initial_ms = rp ? gt_pb_dur_ms(rp->initial_interval) : 1000;
  act->coefficient = rp && rp->backoff_coefficient >= 1.0 ? rp->backoff_coefficient : 2.0;
  act->max_interval_ms = rp ? gt_pb_dur_ms(rp->maximum_interval) : 0;
  act->max_attempts = rp ? rp->maximum_attempts : 0;
}

static void remove_activity(wf_run_t *run, int64_t scheduled_event_id) {
  for (size_t i = 0; i < run->n_acts; i++) {
    if (run->acts[i].scheduled_event_id == scheduled_event_id) {
      activity_fini(&run->acts[i]);
      run->acts[i] = run->acts[--run->n_acts];
      return;
    }
  }
}

/* The slot of request_id in a signal id set of cap slots (a power of two): where it is, or
 * the empty slot where it would go. */
static size_t signal_id_slot(char *const *set, size_t cap, const char *request_id) {
  uint64_t h = 14695981039346656037ULL; /* FNV-1a */
  for (const char *c = request_id; *c; c++)
    h = (h ^ (uint8_t)*c) * 1099511628211ULL;
  size_t i = (size_t)h & (cap - 1);
  while (set[i] && strcmp(set[i], request_id) != 0)
    i = (i + 1) & (cap - 1);
  return i;
}

void wf_note_signal_id(wf_run_t *run, const char *request_id) {
  if (!request_id || !*request_id ||
      wf_seen_signal_id(run, request_id)) /* noted before its flush, applied after */
    return;
  if ((run->n_signal_ids + 1) * 2 > run->cap_signal_ids) {
    size_t cap = run->cap_signal_ids ? run->cap_signal_ids * 2 : 16;
    char **set = calloc(cap, sizeof(*set));
    if (!set)
      return; /* out of memory: a repeat of this one would be applied again */
    for (size_t i = 0; i < run->cap_signal_ids; i++)
      if (run->signal_ids[i])
        set[signal_id_slot(set, cap, run->signal_ids[i])] = run->signal_ids[i];
    free(run->signal_ids);
    run->signal_ids = set;
    run->cap_signal_ids = cap;
  }
  char *id = strdup(request_id);
  if (!id)
    return;
  run->signal_ids[signal_id_slot(run->signal_ids, run->cap_signal_ids, id)] = id;
  run->n_signal_ids++;
}

int wf_seen_signal_id(const wf_run_t *run, const char *request_id) {
  if (!request_id || !*request_id || !run->n_signal_ids)
    return 0;
  return run->signal_ids[signal_id_slot(run->signal_ids, run->cap_signal_ids, request_id)] != NULL;
}

wf_timer_t *wf_find_timer(wf_run_t *run, const char *timer_id) {
  for (size_t i = 0; i < run->n_timers; i++)
    if (strcmp(run->timers[i].timer_id, timer_id) == 0)
      return &run->timers[i];
  return NULL;
}

static void remove_timer(wf_run_t *run, const char *timer_id) {
  wf_timer_t *t = wf_find_timer(run, timer_id);
  if (!t)
    return;
  free(t->timer_id);
  *t = run->timers[--run->n_timers];
}

static void apply_timer_started(wf_run_t *run, const pb_event_t *ev) {
  const Temporal__Api__History__V1__TimerStartedEventAttributes *a =
      ev->timer_started_event_attributes;
  if (grow((void **)&run->timers, &run->cap_timers, run->n_timers, sizeof(wf_timer_t)))
    return;
  wf_timer_t *t = &run->timers[run->n_timers++];
  memset(t, 0, sizeof(*t));
  t->timer_id = gt_strdup0(a->timer_id);
  t->started_event_id = ev->event_id;
  t->fire_ns = gt_pb_ts_ns(ev->event_time) + gt_pb_dur_ms(a->start_to_fire_timeout) * 1000000;
}

static void close_run(wf_run_t *run, int status, const pb_event_t *ev) {
  run->status = status;
  run->close_ns = gt_pb_ts_ns(ev->event_time);
  run->wft_state = WFT_NONE;
  const char *next = NULL;
  if (ev->attributes_case == PB_ATTR(WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES))
    next = ev->workflow_execution_completed_event_attributes->new_execution_run_id;
  else if (ev->attributes_case == PB_ATTR(WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES))
    next = ev->workflow_execution_failed_event_attributes->new_execution_run_id;
  else if (ev->attributes_case == PB_ATTR(WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES))
    next = ev->workflow_execution_timed_out_event_attributes->new_execution_run_id;
  else if (ev->attributes_case ==
           PB_ATTR(WORKFLOW_EXECUTION_CONTINUED_AS_NEW_EVENT_ATTRIBUTES))
    next = ev->workflow_execution_continued_as_new_event_attributes->new_execution_run_id;
  gt_copy_str(run->next_run_id, sizeof(run->next_run_id), next ? next : "");
}

int wf_apply(wf_run_t *run, const pb_event_t *ev, size_t idx) {
  run->transitions++;
  wf_child_apply(run, ev);
  wf_props_apply(run, ev);
  wf_update_apply(run, ev);
  switch (ev->attributes_case) {
  case PB_ATTR(WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES): {
    const Temporal__Api__History__V1__WorkflowExecutionStartedEventAttributes *a =
        ev->workflow_execution_started_event_attributes;
    free(run->workflow_type);
    free(run->task_queue);
    run->workflow_type = gt_strdup0(a->workflow_type ? a->workflow_type->name : "");
    run->task_queue = gt_strdup0(a->task_queue ? a->task_queue->name : "");
    run->run_timeout_ms = gt_pb_dur_ms(a->workflow_run_timeout);
    run->exec_timeout_ms = gt_pb_dur_ms(a->workflow_execution_timeout);
    run->task_timeout_ms = gt_pb_dur_ms(a->workflow_task_timeout);
    run->expiration_ns = gt_pb_ts_ns(a->workflow_execution_expiration_time);
    run->start_ns = gt_pb_ts_ns(ev->event_time);
    run->backoff_ms = gt_pb_dur_ms(a->first_workflow_task_backoff);
    free(run->cron_schedule);
    run->cron_schedule = a->cron_schedule && *a->cron_schedule ? strdup(a->cron_schedule)
                                                              : NULL;
    run->backoff_pending = run->backoff_ms > 0;
    run->status = PB_STATUS(RUNNING);
    gt_copy_str(run->first_run_id, sizeof(run->first_run_id), /* not snprintf: hot path */
                a->first_execution_run_id && *a->first_execution_run_id
                    ? a->first_execution_run_id : run->run_id);
    wf_set_packed(&run->memo, &run->memo_len, a->memo ? &a->memo->base : NULL);
    wf_set_packed(&run->search_attrs, &run->search_attrs_len,
                  a->search_attributes ? &a->search_attributes->base : NULL);
    break;
  }
  case PB_ATTR(WORKFLOW_TASK_SCHEDULED_EVENT_ATTRIBUTES):
    run->backoff_pending = 0; /* the first task is there: its backoff is over */
    run->wft_transient = 0;
    run->wft_state = WFT_SCHEDULED;
    run->wft_scheduled_id = ev->event_id;
    run->wft_started_id = 0;
    run->wft_attempt = ev->workflow_task_scheduled_event_attributes->attempt;
    run->wft_scheduled_ns = gt_pb_ts_ns(ev->event_time);
    break;
  case PB_ATTR(WORKFLOW_TASK_STARTED_EVENT_ATTRIBUTES):
    run->wft_state = WFT_STARTED;
    run->wft_started_id = ev->event_id;
    run->wft_started_ns = gt_pb_ts_ns(ev->event_time);
    break;
  case PB_ATTR(WORKFLOW_TASK_COMPLETED_EVENT_ATTRIBUTES):
    run->wft_state = WFT_NONE;
    run->previous_started_id = ev->workflow_task_completed_event_attributes->started_event_id;
    run->wft_attempt = 1;
    break;
  case PB_ATTR(WORKFLOW_TASK_FAILED_EVENT_ATTRIBUTES):
  case PB_ATTR(WORKFLOW_TASK_TIMED_OUT_EVENT_ATTRIBUTES):
    run->wft_state = WFT_NONE;
    run->wft_attempt++;
    break;
  case PB_ATTR(ACTIVITY_TASK_SCHEDULED_EVENT_ATTRIBUTES):
    apply_activity_scheduled(run, ev, idx);
    break;
  case PB_ATTR(ACTIVITY_TASK_COMPLETED_EVENT_ATTRIBUTES):
    remove_activity(run, ev->activity_task_completed_event_attributes->scheduled_event_id);
    break;
  case PB_ATTR(ACTIVITY_TASK_FAILED_EVENT_ATTRIBUTES):
    remove_activity(run, ev->activity_task_failed_event_attributes->scheduled_event_id);
    break;
  case PB_ATTR(ACTIVITY_TASK_TIMED_OUT_EVENT_ATTRIBUTES):
    remove_activity(run, ev->activity_task_timed_out_event_attributes->scheduled_event_id);
    break;
  case PB_ATTR(ACTIVITY_TASK_CANCELED_EVENT_ATTRIBUTES):
    remove_activity(run, ev->activity_task_canceled_event_attributes->scheduled_event_id);
    break;
  case PB_ATTR(TIMER_STARTED_EVENT_ATTRIBUTES):
    apply_timer_started(run, ev);
    break;
  case PB_ATTR(TIMER_FIRED_EVENT_ATTRIBUTES):
    remove_timer(run, ev->timer_fired_event_attributes->timer_id);
    break;
  case PB_ATTR(TIMER_CANCELED_EVENT_ATTRIBUTES):
    remove_timer(run, ev->timer_canceled_event_attributes->timer_id);
    break;
  case PB_ATTR(WORKFLOW_EXECUTION_CANCEL_REQUESTED_EVENT_ATTRIBUTES):
    run->cancel_requested = 1;
    break;
  case PB_ATTR(WORKFLOW_EXECUTION_SIGNALED_EVENT_ATTRIBUTES):
    wf_note_signal_id(run, ev->workflow_execution_signaled_event_attributes->request_id);
    break;
  case PB_ATTR(ACTIVITY_TASK_CANCEL_REQUESTED_EVENT_ATTRIBUTES): {
    wf_activity_t *a = wf_find_activity(
        run, ev->activity_task_cancel_requested_event_attributes->scheduled_event_id);
    if (a)
      a->cancel_requested = 1;
    break;
  }
  case PB_ATTR(WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES):
    close_run(run, PB_STATUS(COMPLETED), ev);
    break;
  case PB_ATTR(WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES):
    close_run(run, PB_STATUS(FAILED), ev);
    break;
  case PB_ATTR(WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES):
    close_run(run, PB_STATUS(TIMED_OUT), ev);
    break;
  case PB_ATTR(WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES):
    close_run(run, PB_STATUS(TERMINATED), ev);
    break;
  case PB_ATTR(WORKFLOW_EXECUTION_CANCELED_EVENT_ATTRIBUTES):
    close_run(run, PB_STATUS(CANCELED), ev);
    break;
  case PB_ATTR(WORKFLOW_EXECUTION_CONTINUED_AS_NEW_EVENT_ATTRIBUTES):
    close_run(run, PB_STATUS(CONTINUED_AS_NEW), ev);
    break;
  default:
    break;
  }
  return 0;
}

/* ---- transactions ---- */

/* A completed txn its actor will never take (the runtime stopped it: the server stops):
 * its effects undone as after a failed commit (they touch no actor state), then freed. */
static void txn_lost(wf_txn_t *t) {
  gt_log_error("HIST-COMMIT-LOST", "workflow actor gone with a txn in flight");
  t->rc = GT_ECLOSED;
  wf_txn_drop_effects(t, 0);
  free(t->eff);
  free(t);
}

/* A txn is freed by wf_txn_done; the runtime frees (gt_msg_free) only a completion it could
 * not deliver: one that raced past the stop of its actor. */
static void txn_dtor(gt_msg_t *m) { txn_lost((wf_txn_t *)m); }

void wf_txn_spare_free(workflow_t *wf) {
  if (wf->txn_spare) {
    free(wf->txn_spare->eff);
    free(wf->txn_spare);
    wf->txn_spare = NULL;
  }
}

wf_txn_t *wf_txn_begin(workflow_t *wf, wf_run_t *run) {
  /* A hello workflow runs 4 transactions on one actor: reusing the last one (and its
   * effects array) saves a calloc, a 16-effect realloc and their frees for 3 of them. */
  wf_txn_t *t = wf->txn_spare;
  if (t) {
    wf_effect_t *eff = t->eff;
    size_t cap = t->cap_eff;
    wf->txn_spare = NULL;
    memset(t, 0, sizeof(*t));
    t->eff = eff;
    t->cap_eff = cap;
  } else if (!(t = gt_zalloc(sizeof(*t)))) { /* not calloc: see gt_zalloc */
    return NULL;
  }
  t->hdr.type = GT_MSG_WRITE_DONE;
  t->hdr.dtor = txn_dtor;
  t->wf = wf;
  t->run = run;
  t->first_ev = run->persisted_ev;
  return t;
}

static wf_effect_t *add_effect(wf_txn_t *t, wf_effect_kind_t kind) {
  if (grow((void **)&t->eff, &t->cap_eff, t->n_eff, sizeof(wf_effect_t)))
    return NULL;
  wf_effect_t *e = &t->eff[t->n_eff++];
  memset(e, 0, sizeof(*e));
  e->kind = kind;
  return e;
}

void wf_txn_reply(wf_txn_t *t, gt_rpc_t *rpc, gt_buf_t *body) {
  wf_effect_t *e = add_effect(t, EFF_REPLY);
  if (!e || body->oom) {
    gt_buf_fini(body);
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    if (e)
      t->n_eff--;
    return;
  }
  e->rpc = rpc;
  e->body = gt_buf_take(body, &e->len);
}

void wf_txn_reply_empty(wf_txn_t *t, gt_rpc_t *rpc) {
  gt_buf_t b;
  gt_buf_init(&b);
  wf_txn_reply(t, rpc, &b);
}

void wf_txn_reply_msg(wf_txn_t *t, gt_rpc_t *rpc, const ProtobufCMessage *resp) {
  gt_buf_t b;
  gt_buf_init(&b);
  gt_buf_pack(&b, resp);
  wf_txn_reply(t, rpc, &b);
}

void wf_txn_task(wf_txn_t *t, const char *queue, gt_task_t *task) {
  wf_effect_t *e = task ? add_effect(t, EFF_TASK) : NULL;
  if (!e) {
    free(task);
    gt_log_error("HIST-TASK-OOM", "could not queue a task for %s", queue);
    return;
  }
  e->task = task;
  e->queue = strdup(queue);
}

int wf_txn_vis(wf_txn_t *t, struct gt_vis_task *vis) {
  wf_effect_t *e = add_effect(t, EFF_VIS);
  if (!e)
    return GT_ENOMEM;
  e->vis = vis;
  return 0;
}

void wf_txn_xmsg(wf_txn_t *t, wf_xmsg_t *m) {
  wf_effect_t *e = add_effect(t, EFF_XMSG);
  if (!e) {
    wf_xmsg_free(m);
    return;
  }
  e->xmsg = m;
}

void wf_txn_repark(wf_txn_t *t, gt_rpc_t *rpc) {
  wf_effect_t *e = add_effect(t, EFF_REPARK);
  if (!e) {
    gt_matching_repark(rpc);
    return;
  }
  e->rpc = rpc;
}

/* msgpack summary of the mutable state (the executions.state column). A run is rebuilt
 * from its history; only what no event records is read back at load (wf_restore_state):
 * the sticky queue (fields 7 and 8), so a passivated or restarted run's next workflow task
 * still goes to the worker that has it cached, as in Temporal. Field 9 is read at
 * recovery (gt_history_recover): WF_STATE_AWAKE when the run owes something now (a task,
 * an activity), WF_STATE_ASLEEP_UNTIL_MESSAGE, or the wall-clock ms of its next deadline
 * when it only sleeps; a restart then loads only the runs that owe something. Field 10
 * (absent from rows written before it, read as 0) is 1 when a sleeping run has
 * cross-workflow messages in flight (wf_xwf_pending): recovery activates it to send them
 * again, since the messages themselves are not persisted (wf_child.c). Fields 0-6 are for
 * inspection.
 * Field 11 (written only when some pending activity has an entry; a row of 11 fields, old
 * or new, reads as none) is the activities' state that no event records (a retry and a
 * start write no event, as in Temporal): an array of
 *   [scheduled_event_id, attempt, scheduled_ns, last_failure, heartbeat
 *    (, started_ns, identity, request_id)]
 * for each pending activity whose state is not what its ActivityTaskScheduled implies
 * (attempt > 1, heartbeat details, or started): the current attempt, its schedule time
 * (wall-clock ns; in the future during the retry backoff), the packed Failure of the
 * previous attempt, the packed Payloads of the last heartbeat (bin, or nil), and for a
 * started one (8 elements; 5 when not started, as rows written before) its start time
 * (wall-clock ns), the worker's identity and the start's request id (str, or nil).
 * wf_restore_state applies it after the replay, so a crash does not restart an activity's
 * attempts at 1 (nor lose what the next attempt is handed), and an activity out with its
 * worker stays started (its timeouts armed again, wf_act_rearm_after_load) instead of being
 * dispatched a second time. A start is written WF_START_PERSIST_MS after it
 * (wf_timeouts.c, ACT_PERSIST_START) or by an earlier write of the row.
 * Field 12 (a child run's rows only; field 11 is then written, empty if need be) is the
 * ParentClosePolicy its parent started it with: should the parent's run be deleted with
 * the policy's message lost in a crash, the child applies it itself (WFX_PARENT_GONE,
 * wf_child.c). */
/* Field 9 of the state: see pack_state. */
static int64_t state_sleeps(const wf_run_t *run) {
  int64_t due_ms = 0;
  if (!wf_running(run) || !wf_run_sleeps(run, &due_ms))
    return WF_STATE_AWAKE;
  return due_ms ? due_ms : WF_STATE_ASLEEP_UNTIL_MESSAGE;
}

/* Whether the executions row must be written for what it holds besides the history: the
 * sleep state, and the sticky queue of a sleeping run. The sticky queue of an awake run is
 * not worth an UPDATE (one statement of a hello workflow's 11): only a run woken from
 * passivation reads it back; an awake run recovered after a crash with an older or no
 * sticky queue dispatches to the normal queue, as Temporal does for a sticky worker gone
 * (matching bounces a task for a queue nobody polls). Going to sleep writes the row, with
 * the queue of that moment. Remembers what the row will hold. (The activities' retry
 * state, field 11, is written whenever it changed: run->acts_dirty, see wf_txn_commit.) */
static int row_changes(wf_run_t *run, int64_t sleeps, int xwf) {
  const char *sq = run->sticky_queue ? run->sticky_queue : "";
  const char *rq = run->row_sticky ? run->row_sticky : "";
  /* xwf, like the sticky queue, matters only to a sleeping run: an awake one is activated
   * at recovery anyway, so a child started by a busy run costs no UPDATE */
  if (run->row_known && run->row_sleeps == sleeps &&
      (sleeps == WF_STATE_AWAKE ||
       (run->row_xwf == xwf && strcmp(sq, rq) == 0 &&
        (!*sq || run->row_sticky_s2s_ms == run->sticky_s2s_ms))))
    return 0;
  run->row_xwf = xwf;
  free(run->row_sticky);
  run->row_sticky = run->sticky_queue ? strdup(run->sticky_queue) : NULL;
  run->row_sticky_s2s_ms = run->sticky_s2s_ms;
  run->row_sleeps = sleeps;
  run->row_known = run->row_sticky || !run->sticky_queue; /* a failed strdup: write again */
  return 1;
}

/* Whether an activity has an entry in field 11 (see pack_state). */
static int act_has_row_state(const wf_activity_t *a) {
  return a->attempt > 1 || a->heartbeat != NULL || (a->started && !a->closing);
}

static void pack_str_or_nil(msgpack_packer *pk, const char *s) {
  if (!s || !*s) {
    msgpack_pack_nil(pk);
    return;
  }
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static void pack_bin_or_nil(msgpack_packer *pk, const uint8_t *p, size_t len) {
  if (!p) {
    msgpack_pack_nil(pk);
    return;
  }
  msgpack_pack_bin(pk, len);
  msgpack_pack_bin_body(pk, p, len);
}

/* Field 11 (see pack_state), n entries. */
static void pack_act_state(const wf_run_t *run, size_t n, msgpack_packer *pk) {
  msgpack_pack_array(pk, n);
  for (size_t i = 0; i < run->n_acts; i++) {
    const wf_activity_t *a = &run->acts[i];
    if (!act_has_row_state(a))
      continue;
    int started = a->started && !a->closing;
    msgpack_pack_array(pk, started ? 8 : 5);
    msgpack_pack_int64(pk, a->scheduled_event_id);
    msgpack_pack_int32(pk, a->attempt);
    msgpack_pack_int64(pk, a->scheduled_ns);
    pack_bin_or_nil(pk, a->last_failure, a->last_failure_len);
    pack_bin_or_nil(pk, a->heartbeat, a->heartbeat_len);
    if (started) {
      msgpack_pack_int64(pk, a->started_ns);
      pack_str_or_nil(pk, a->identity);
      pack_str_or_nil(pk, a->request_id);
    }
  }
}

/* The executions.state bytes of one commit, packed on the committing function's stack:
 * a hello workflow's state is ~30 bytes, and msgpack_sbuffer's first write is an 8 KiB
 * malloc (MSGPACK_SBUFFER_INIT_SIZE), past glibc's per-thread cache: ~560 instructions
 * and a free for each row written (callgrind). A larger state (many pending activities,
 * retry state) moves to the heap; state_buf_fini frees it. */
typedef struct state_buf {
  char *data; /* inl, or a malloc'd copy once it outgrew inl */
  size_t size;
  size_t cap;
  char inl[256];
} state_buf_t;

static void state_buf_init(state_buf_t *b) {
  b->data = b->inl;
  b->size = 0;
  b->cap = sizeof(b->inl);
}

static void state_buf_fini(state_buf_t *b) {
  if (b->data != b->inl)
    free(b->data);
  b->data = b->inl;
  b->size = 0;
}

/* msgpack_packer's write callback. 0, or -1 out of memory (as msgpack_sbuffer_write). */
static int state_buf_write(void *data, const char *p, size_t n) {
  state_buf_t *b = data;
  if (n > b->cap - b->size) {
    size_t cap = b->cap * 2;
    while (cap - b->size < n)
      cap *= 2;
    char *d = b->data == b->inl ? malloc(cap) : realloc(b->data, cap);
    if (!d)
      return -1;
    if (b->data == b->inl)
      memcpy(d, b->inl, b->size);
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->size, p, n);
  b->size += n;
  return 0;
}

static void pack_state(const wf_run_t *run, int64_t sleeps, int xwf, state_buf_t *sb) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, state_buf_write);
  size_t n_act_state = 0;
  for (size_t i = 0; i < run->n_acts; i++)
    n_act_state += (size_t)act_has_row_state(&run->acts[i]);
  int policy = run->parent_workflow_id ? run->parent_close_policy : 0;
  msgpack_pack_array(&pk, policy ? 13 : n_act_state ? 12 : 11);
  msgpack_pack_int(&pk, run->status);
  msgpack_pack_int64(&pk, (int64_t)run->n_ev + 1);
  msgpack_pack_int(&pk, run->wft_state);
  msgpack_pack_int64(&pk, run->wft_scheduled_id);
  msgpack_pack_int64(&pk, run->wft_started_id);
  msgpack_pack_int32(&pk, run->wft_attempt);
  msgpack_pack_array(&pk, run->n_acts);
  for (size_t i = 0; i < run->n_acts; i++) {
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int64(&pk, run->acts[i].scheduled_event_id);
    msgpack_pack_int32(&pk, run->acts[i].attempt);
    msgpack_pack_int(&pk, run->acts[i].started);
  }
  if (run->sticky_queue) {
    size_t n = strlen(run->sticky_queue);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, run->sticky_queue, n);
  } else {
    msgpack_pack_nil(&pk);
  }
  msgpack_pack_int64(&pk, run->sticky_s2s_ms);
  msgpack_pack_int64(&pk, sleeps);
  msgpack_pack_int(&pk, xwf);
  if (n_act_state || policy)
    pack_act_state(run, n_act_state, &pk); /* an empty array when only field 12 follows */
  if (policy)
    msgpack_pack_int(&pk, policy);
}

/* The fields of an executions.state, or NULL (none, unreadable, or fewer than `need`
 * fields). They live in *u until msgpack_unpacked_destroy. */
static const msgpack_object *state_fields(const uint8_t *state, size_t len, size_t need,
                                          msgpack_unpacked *u) {
  msgpack_unpacked_init(u);
  if (!state || !len ||
      msgpack_unpack_next(u, (const char *)state, len, NULL) != MSGPACK_UNPACK_SUCCESS ||
      u->data.type != MSGPACK_OBJECT_ARRAY || u->data.via.array.size < need)
    return NULL;
  return u->data.via.array.ptr;
}

/* Field 9 (see pack_state) of fields f[0..n). */
static int64_t sleeps_field(const msgpack_object *f, size_t n) {
  if (!f || n < 10)
    return WF_STATE_AWAKE;
  if (f[9].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    return (int64_t)f[9].via.u64;
  if (f[9].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    return f[9].via.i64;
  return WF_STATE_AWAKE;
}

int64_t wf_state_recovery(const uint8_t *state, size_t len, int *xwf) {
  msgpack_unpacked u;
  const msgpack_object *f = state_fields(state, len, 10, &u);
  size_t n = f ? u.data.via.array.size : 0;
  int64_t v = sleeps_field(f, n);
  *xwf = n >= 11 && f[10].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[10].via.u64 != 0;
  msgpack_unpacked_destroy(&u);
  return v;
}

/* A copy of a bin field into *p, *len; nil leaves them NULL, 0. Returns 0, or -1 for
 * another type or ENOMEM. */
static int copy_bin(const msgpack_object *o, uint8_t **p, size_t *len) {
  if (o->type == MSGPACK_OBJECT_NIL)
    return 0;
  if (o->type != MSGPACK_OBJECT_BIN)
    return -1;
  *p = malloc(o->via.bin.size ? o->via.bin.size : 1);
  if (!*p)
    return -1;
  memcpy(*p, o->via.bin.ptr, o->via.bin.size);
  *len = o->via.bin.size;
  return 0;
}

/* Applies one entry of field 11 (see pack_state) to its activity, if still pending. */
static void restore_act_entry(wf_run_t *run, const msgpack_object *e) {
  if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 5)
    return;
  const msgpack_object *x = e->via.array.ptr;
  if (x[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      x[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || x[1].via.u64 < 1 ||
      x[1].via.u64 > INT32_MAX || x[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return;
  wf_activity_t *a = wf_find_activity(run, (int64_t)x[0].via.u64);
  if (!a || a->closing)
    return;
  uint8_t *lf = NULL, *hb = NULL;
  size_t lf_len = 0, hb_len = 0;
  if (copy_bin(&x[3], &lf, &lf_len) != 0 || copy_bin(&x[4], &hb, &hb_len) != 0) {
    free(lf);
    free(hb);
    return;
  }
  /* a start (8 elements): restored as started (wf_act_rearm_after_load arms its timeouts) */
  if (e->via.array.size >= 8 && x[5].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
      x[5].via.u64 > 0 && x[5].via.u64 <= INT64_MAX) {
    char *identity = x[6].type == MSGPACK_OBJECT_STR
                         ? strndup(x[6].via.str.ptr, x[6].via.str.size)
                         : strdup(""); /* never NULL, as wf_act_set_started leaves it */
    if (!identity) {
      free(lf);
      free(hb);
      return;
    }
    free(a->identity);
    a->identity = identity;
    a->request_id[0] = '\0';
    if (x[7].type == MSGPACK_OBJECT_STR && x[7].via.str.size < sizeof(a->request_id)) {
      memcpy(a->request_id, x[7].via.str.ptr, x[7].via.str.size);
      a->request_id[x[7].via.str.size] = '\0';
    }
    a->started = 1;
    a->start_persisted = 1;
    a->started_ns = (int64_t)x[5].via.u64;
  }
  a->attempt = (int32_t)x[1].via.u64;
  a->scheduled_ns = (int64_t)x[2].via.u64;
  free(a->last_failure);
  a->last_failure = lf;
  a->last_failure_len = lf_len;
  free(a->heartbeat);
  a->heartbeat = hb;
  a->heartbeat_len = hb_len;
}

void wf_restore_state(wf_run_t *run, const uint8_t *state, size_t len) {
  msgpack_unpacked u;
  const msgpack_object *f = state_fields(state, len, 9, &u);
  size_t n = f ? u.data.via.array.size : 0;
  run->loaded_sleeps = sleeps_field(f, n);
  if (f && f[7].type == MSGPACK_OBJECT_STR && f[7].via.str.size > 0 &&
      f[8].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
    wf_clear_sticky(run);
    run->sticky_queue = strndup(f[7].via.str.ptr, f[7].via.str.size);
    run->sticky_s2s_ms = (int64_t)f[8].via.u64;
  }
  if (n >= 12 && f[11].type == MSGPACK_OBJECT_ARRAY)
    for (uint32_t i = 0; i < f[11].via.array.size; i++)
      restore_act_entry(run, &f[11].via.array.ptr[i]);
  if (n >= 13 && f[12].type == MSGPACK_OBJECT_POSITIVE_INTEGER && f[12].via.u64 <= INT32_MAX)
    run->parent_close_policy = (int)f[12].via.u64;
  msgpack_unpacked_destroy(&u);
}

static void txn_store_cb(void *ctx, int rc, int failed_op) {
  wf_txn_t *t = ctx;
  t->rc = rc;
  if (rc != 0)
    gt_log_warn("HIST-COMMIT-FAILED", "workflow %s run %s: op %d: %s", t->wf->workflow_id,
                t->run->run_id, failed_op, gt_strerror(rc));
  gt_actor_t *a = &t->wf->base;
  /* The actor cannot stop while it has txns in flight, so this send succeeds; the
   * reference taken at commit keeps its memory alive until here. */
  if (gt_actor_send(a, &t->hdr) != 0)
    txn_lost(t);
  gt_actor_release(a);
}

static int64_t visibility_status_close(const wf_run_t *run) {
  return run->status == PB_STATUS(RUNNING) ? 0 : run->close_ns;
}

/* Queues t's batch: t joins the in-flight list, its completion comes back as
 * GT_MSG_WRITE_DONE (txn_store_cb runs at once when the store refuses it). */
static void txn_submit(wf_txn_t *t, const gt_store_op_t *ops, int n) {
  workflow_t *wf = t->wf;
  t->next = NULL;
  if (wf->txn_tail)
    wf->txn_tail->next = t;
  else
    wf->txn_head = t;
  wf->txn_tail = t;
  gt_actor_retain(&wf->base);
  int rc = gt_store_write_chained(wf->srv->store, wf->shard,
                                  wf->srv->shards[wf->shard].range_id, ops, n, txn_store_cb,
                                  t, &wf->chain);
  if (rc != 0)
    txn_store_cb(t, rc, -1);
}

/* Hands t's workflow tasks to matching now, before the commit: speculative dispatch. The
 * task is started by a poll only through this actor (record_wft_started), which knows
 * whether what the task shows is durable; a worker's answer to it is a later txn, which the
 * store's chain fails if t fails. Cuts a workflow task's wait for its commit (two of a
 * hello workflow's four commits) out of the workflow's latency. Activity tasks still wait:
 * an activity acts on the world, so it runs only for an ActivityTaskScheduled that is
 * durable. */
static void dispatch_workflow_tasks(wf_txn_t *t) {
  for (size_t i = 0; i < t->n_eff; i++) {
    wf_effect_t *e = &t->eff[i];
    if (e->kind != EFF_TASK || e->task->kind != GT_TASK_WORKFLOW)
      continue;
    gt_matching_add_task(t->wf->srv, e->queue, e->task);
    free(e->queue);
    e->kind = EFF_NONE;
    e->task = NULL;
    e->queue = NULL;
  }
}

void wf_txn_commit(wf_txn_t *t) {
  workflow_t *wf = t->wf;
  wf_run_t *run = t->run;
  gt_store_op_t ops[5];
  gt_vis_scratch_t vis_scratch = {0};
  int n = 0;
  wf_child_on_commit(wf, run, t);
  if (t->delete_run) {
    /* wf_delete.c: the run's rows go, and the events this txn appended (a termination)
     * are never written; its effects (the reply, the parent close policy, the parent's
     * notice) still run after the commit */
    t->first_ev = run->persisted_ev;
    run->persisted_ev = run->n_ev;
    t->last_ev = run->n_ev;
    struct gt_vis_task *vis;
    int n_del = wf_delete_ops(wf, run->run_id, ops, &vis);
    if (vis && wf_txn_vis(t, vis) != 0) /* else the ops point into it until it is done */
      n_del--; /* out of memory: the record outlives its run */
    txn_submit(t, ops, n_del);
    if (vis && n_del < WF_DELETE_OPS)
      gt_vis_task_free(vis);
    return;
  }
  state_buf_t sb;
  state_buf_init(&sb);
  int64_t sleeps = state_sleeps(run);
  int xwf = sleeps != WF_STATE_AWAKE && wf_xwf_pending(run);
  int closed = !wf_running(run);
  /* evaluated first: it also remembers what the row will hold */
  int write_row = row_changes(run, sleeps, xwf) || t->create || closed || run->acts_dirty;
  if (write_row) {
    pack_state(run, sleeps, xwf, &sb);
    run->acts_dirty = 0;
    for (size_t i = 0; i < run->n_acts; i++) /* field 11 names every started one */
      run->acts[i].start_persisted |= run->acts[i].started;
  }
  int64_t next_event_id = (int64_t)run->n_ev + 1;
  /* the row's key, in most ops: measured once (a strlen per use was 9 a commit) */
  const gt_val_t v_ns = gt_val_text(wf->ns_id), v_wid = gt_val_text(wf->workflow_id),
                 v_rid = gt_val_text(run->run_id);

  /* Each op below sets its statement, expect_rows, nparams and those many values; the
   * values past nparams are never read (gt_store_write copies only the first nparams).
   * No memset of ops: five ops are 2,640 bytes, a third of this function's own cost. */
  if (t->create) {
    gt_store_op_t *o = &ops[n++];
    o->stmt = GT_SQL_EXECUTION_INSERT;
    o->expect_rows = 1;
    o->nparams = 7;
    o->params[0] = gt_val_int(wf->shard);
    o->params[1] = v_ns;
    o->params[2] = v_wid;
    o->params[3] = v_rid;
    o->params[4] = gt_val_int(next_event_id);
    o->params[5] = gt_val_int(1);
    o->params[6] = gt_val_blob(sb.data, sb.size);
    run->db_version = 1;
  } else if (write_row) {
    gt_store_op_t *o = &ops[n++];
    o->stmt = GT_SQL_EXECUTION_UPDATE;
    o->expect_rows = 1;
    o->nparams = 8;
    o->params[0] = gt_val_int(next_event_id);
    o->params[1] = gt_val_int(run->db_version + 1);
    o->params[2] = gt_val_blob(sb.data, sb.size);
    o->params[3] = gt_val_int(wf->shard);
    o->params[4] = v_ns;
    o->params[5] = v_wid;
    o->params[6] = v_rid;
    o->params[7] = gt_val_int(run->db_version);
    run->db_version++;
  }
  t->first_ev = run->persisted_ev;
  if (run->n_ev > run->persisted_ev) {
    size_t from = run->ev_off[run->persisted_ev];
    gt_store_op_t *o = &ops[n++];
    o->stmt = GT_SQL_HISTORY_APPEND;
    o->expect_rows = -1;
    o->nparams = 7;
    o->params[0] = gt_val_int(wf->shard);
    o->params[1] = v_ns;
    o->params[2] = v_wid;
    o->params[3] = v_rid;
    o->params[4] = gt_val_int((int64_t)run->persisted_ev + 1);
    o->params[5] = gt_val_int((int64_t)run->n_ev);
    o->params[6] = gt_val_blob(run->hist.p + from, run->hist.len - from);
    run->persisted_ev = run->n_ev;
  }
  t->last_ev = run->persisted_ev;
  if (t->create || closed) {
    gt_store_op_t *o = &ops[n++];
    /* a blind start (workflow.c) inserts: if the workflow id turns out to have a row after
     * all, the batch fails with GT_EEXISTS and the start is served again after a load */
    int blind = t->create && wf->creating;
    o->stmt = blind ? GT_SQL_CURRENT_INSERT : GT_SQL_CURRENT_UPSERT;
    o->expect_rows = blind ? 1 : -1;
    o->nparams = 8;
    o->params[0] = gt_val_int(wf->shard);
    o->params[1] = v_ns;
    o->params[2] = v_wid;
    o->params[3] = v_rid;
    o->params[4] = gt_val_text(run->request_id ? run->request_id : "");
    o->params[5] = gt_val_int(closed ? 2 : 1);
    o->params[6] = gt_val_int(run->status);
    o->params[7] = gt_val_int(run->start_ns);
  }
  if (t->create || closed || t->update_visibility) {
    gt_vis_record_t rec = {
        .ns_id = wf->ns_id, .run_id = run->run_id, .workflow_id = wf->workflow_id,
        .workflow_type = run->workflow_type, .task_queue = run->task_queue,
        .status = run->status, .start_ns = run->start_ns,
        .execution_ns = wf_run_execution_ns(run),
        .close_ns = visibility_status_close(run), .history_length = (int64_t)run->n_ev,
        .memo = run->memo, .memo_len = run->memo_len,
        .search_attrs = run->search_attrs, .search_attrs_len = run->search_attrs_len};
    if (!gt_vis_outboxed(wf->srv)) {
      if (gt_visibility_upsert_op(&ops[n], &rec, &vis_scratch) == 0)
        n++;
    } else {
      struct gt_vis_task *vis;
      if (gt_vis_task_upsert(wf->srv, wf->shard, &rec, &ops[n], &vis) == 0) {
        if (wf_txn_vis(t, vis) == 0) /* out of memory: skipped, as the upsert would be */
          n++;
        else
          gt_vis_task_free(vis);
      }
    }
  }
  txn_submit(t, ops, n);
  dispatch_workflow_tasks(t);
  state_buf_fini(&sb);
  gt_visibility_scratch_fini(&vis_scratch);
}

_Atomic long gt__wf_xmsg_drop;
_Atomic long gt__wf_xmsgs_dropped;

static void run_effects(wf_txn_t *t) {
  for (size_t i = 0; i < t->n_eff; i++) {
    wf_effect_t *e = &t->eff[i];
    switch (e->kind) {
    case EFF_NONE:
      break;
    case EFF_REPLY:
      gt_rpc_reply_owned(e->rpc, e->body, e->len); /* the gateway frees body */
      break;
    case EFF_TASK:
      gt_matching_add_task(t->wf->srv, e->queue, e->task);
      free(e->queue);
      break;
    case EFF_REPARK:
      gt_matching_repark(e->rpc);
      break;
    case EFF_VIS:
      gt_vis_task_apply(e->vis);
      break;
    case EFF_XMSG:
      if (atomic_load_explicit(&gt__wf_xmsg_drop, memory_order_relaxed) &
          (1L << e->xmsg->op)) { /* test hook: the crash right after the commit */
        atomic_fetch_add_explicit(&gt__wf_xmsgs_dropped, 1, memory_order_relaxed);
        wf_xmsg_free(e->xmsg);
        break;
      }
      wf_xsend(t->wf->srv, e->xmsg);
      break;
    }
  }
}

gt_rpc_t *wf_txn_drop_effects(wf_txn_t *t, int keep_requests) {
  gt_rpc_t *kept = NULL, *last = NULL;
  for (size_t i = 0; i < t->n_eff; i++) {
    wf_effect_t *e = &t->eff[i];
    switch (e->kind) {
    case EFF_NONE:
      break;
    case EFF_REPLY:
      free(e->body);
      if (!keep_requests) {
        gt_rpc_reply_error(e->rpc, GT_GRPC_UNAVAILABLE,
                           "persistence failure: %s, please retry", gt_strerror(t->rc));
        break;
      }
      e->rpc->next = NULL;
      if (last)
        last->next = e->rpc;
      else
        kept = e->rpc;
      last = e->rpc;
      break;
    case EFF_TASK:
      free(e->task);
      free(e->queue);
      break;
    case EFF_REPARK:
      gt_matching_repark(e->rpc);
      break;
    case EFF_XMSG:
      wf_xmsg_free(e->xmsg);
      break;
    case EFF_VIS:
      gt_vis_task_free(e->vis);
      break;
    }
  }
  return kept;
}

void wf_txn_recycle(workflow_t *wf, wf_txn_t *t) {
  if (!wf->txn_spare) {
    wf->txn_spare = t;
  } else {
    free(t->eff);
    free(t);
  }
}

void wf_txn_done(workflow_t *wf, wf_txn_t *t) {
  GT_ASSERT(wf->txn_head == t);
  wf->txn_head = t->next;
  if (!wf->txn_head)
    wf->txn_tail = NULL;
  int created = 0;
  if (wf->creating && t->create) {
    wf->creating = 0;
    /* only its current_executions insert can find a row. With a worker's answer queued
     * behind it (workflow.c serve_while_creating), which the chain fails, the actor breaks
     * instead: the start is answered UNAVAILABLE, and the client's retry loads the id. */
    if (t->rc == GT_EEXISTS && !wf->txn_head) {
      wf_blind_start_lost(wf, t);
      return;
    }
    created = t->rc == 0; /* a failed commit breaks and stops the actor as any other */
  }
  if (t->rc == GT_EFENCED && !wf->broken)
    gt_log_error("HIST-SHARD-LOST", "shard %d: another server owns it now (range_id "
                 "changed); this server refuses its writes until restarted", wf->shard);
  if (t->rc == 0 && !wf->broken) {
    /* everything this txn appended is durable now */
    if (t->last_ev > t->run->committed_ev)
      t->run->committed_ev = t->last_ev;
    /* The workflow outcome counters of /metrics (frontend/metrics.c) count a close once
     * it is durable: this txn holds the run's closing event, always its last. relaxed:
     * statistics. */
    if (t->last_ev > t->first_ev && t->last_ev == t->run->n_ev && !wf_running(t->run))
      atomic_fetch_add_explicit(&wf->srv->wf_closed[t->run->status & 7], 1,
                                memory_order_relaxed);
    /* a sleeping run that stays in memory (a caller waits on it, or its timer is near)
     * keeps its history exactly sized; a busy one keeps its slack: shrinking at every
     * commit only to grow at the next event was a realloc pair per transition */
    gt_buf_t *h = &t->run->hist;
    int64_t due_ms;
    if (!t->next && h->cap > h->len + 512 && wf_running(t->run) &&
        wf_run_sleeps(t->run, &due_ms)) {
      uint8_t *p = realloc(h->p, h->len ? h->len : 1);
      if (p) {
        h->p = p;
        h->cap = h->len ? h->len : 1;
      }
    }
    run_effects(t);
    wf_queries_txn_done(wf, t, 1);
    wf_wake_waiters(wf, t->run);
    if (t->delete_run)
      wf_forget_run(wf, t->run); /* its rows are gone: so is its memory */
  } else {
    if (t->rc == 0)
      t->rc = GT_EUNAVAIL;
    wf->broken = 1;
    wf_txn_drop_effects(t, 0);
    wf_queries_txn_done(wf, t, 0);
  }
  wf_txn_recycle(wf, t);
  if (created && !wf->broken)
    wf_blind_start_made(wf);
  if (wf->broken && !wf->txn_head)
    gt_actor_stop(&wf->base);
  else
    wf_maybe_passivate(wf);
}

/* ---- replay ---- */

int wf_load_history(wf_run_t *run, const uint8_t *p, size_t n) {
  /* p holds concatenated History messages: a run of `0x0a len HistoryEvent` fields */
  size_t i = 0;
  while (i < n) {
    if (p[i] != 0x0a)
      return GT_ECORRUPT;
    uint64_t len = 0;
    int shift = 0;
    size_t k = i + 1;
    while (k < n && (p[k] & 0x80) && shift < 63) {
      len |= (uint64_t)(p[k] & 0x7f) << shift;
      shift += 7;
      k++;
    }
    if (k >= n)
      return GT_ECORRUPT;
    len |= (uint64_t)p[k] << shift;
    k++;
    if (len > n - k)
      return GT_ECORRUPT;
    pb_event_t *ev = (pb_event_t *)protobuf_c_message_unpack(
        &temporal__api__history__v1__history_event__descriptor, NULL, len, p + k);
    if (!ev || ev->event_id != (int64_t)run->n_ev + 1) {
      if (ev)
        protobuf_c_message_free_unpacked(&ev->base, NULL);
      return GT_ECORRUPT;
    }
    int rc = append_event(run, ev);
    if (rc == 0)
      wf_apply(run, ev, run->n_ev - 1);
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    if (rc != 0)
      return rc;
    i = k + len;
  }
  run->persisted_ev = run->committed_ev = run->n_ev;
  return 0;
}
