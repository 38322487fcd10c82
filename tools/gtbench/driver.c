/*
 * driver.c: starts workflows and keeps the measurement window, for gtbench.
 *
 * DESIGN
 *   Closed loop (-c C): C workflows are started at once and each finished workflow starts
 *   the next. Open loop (-r R): a 1 ms tick starts floor(elapsed * R) - started
 *   workflows, skipping (and counting) starts while max_inflight are in flight.
 *   Phases: warmup (-w), then the window (-d) in which completions, latencies and state
 *   transitions are counted and the server's /proc figures are sampled at both ends; then
 *   no more starts and up to drain_s for the workflows still in flight (those left are
 *   failed). With -n COUNT the window runs from the first start to the last finish.
 *   Latency of a workflow: StartWorkflowExecution sent -> the RespondWorkflowTaskCompleted
 *   carrying CompleteWorkflowExecution acknowledged (sleep: the one carrying its
 *   StartTimer; the workflow stays open); recorded for workflows finishing inside the
 *   window.
 *   Workflow ids are "gtb-<tag>-<seq>" with a random tag per run, so the seq indexes
 *   b->wfs directly and reruns against one durable server never collide.
 *
 * INVARIANTS
 *   - b->inflight counts workflows in WF_STARTING or WF_RUNNING.
 *   - A workflow leaves STARTING/RUNNING exactly once (driver_wf_finished ignores repeats).
 *
 * THREADS: the loop thread only.
 */
#include "tools/gtbench/gtbench.h"
#include "tools/gtbench/thin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporal/api/workflowservice/v1/request_response.pb-c.h"
#include "temporal/api/enums/v1/event_type.pb-c.h"

#define START_TIMEOUT "30S"
#define TICK_MS 1

const char *const rpc_names[RPC_COUNT] = {
    "StartWorkflowExecution", "PollWorkflowTaskQueue", "PollActivityTaskQueue",
    "RespondWorkflowTaskCompleted", "RespondActivityTaskCompleted",
    "SignalWorkflowExecution", "GetWorkflowExecutionHistory"};

static const char *const code_names[17] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED"};

const char *driver_code_name(int status) {
  if (status >= 0 && status <= 16)
    return code_names[status];
  return status == H2C_TRANSPORT ? "TRANSPORT" : "?";
}

static int in_window(const bench_t *b) { return b->window_open && !b->window_closed; }

/* h2c observer: the latency of each call that ends inside the window, by method. A
 * long poll's latency includes its wait for a task. */
static void on_rpc_done(void *ud, const char *method, uint64_t us) {
  bench_t *b = ud;
  if (!in_window(b))
    return;
  int i = 0;
  while (i < b->n_rpc_lat && b->rpc_lat[i].method != method)
    i++;
  if (i == b->n_rpc_lat) {
    if (i == (int)(sizeof(b->rpc_lat) / sizeof(b->rpc_lat[0])))
      return; /* more methods than gtbench calls: cannot happen */
    b->rpc_lat[b->n_rpc_lat++].method = method;
  }
  lat_add(&b->rpc_lat[i].lat, us);
}

void driver_observe_rpcs(bench_t *b) { h2c_observe(on_rpc_done, b); }

h2c_t *driver_conn(bench_t *b) {
  h2c_t *c = b->conns[b->next_conn++ % (size_t)b->o.conns];
  return c;
}

long driver_seq_of(const bench_t *b, const char *wid) {
  char prefix[32];
  int n = snprintf(prefix, sizeof(prefix), "gtb-%s-", b->tag);
  if (!wid || strncmp(wid, prefix, (size_t)n) != 0)
    return -1;
  char *end;
  long seq = strtol(wid + n, &end, 10);
  if (*end || seq < 0 || (size_t)seq >= b->n_wfs)
    return -1;
  return seq;
}

void driver_transition(bench_t *b) {
  b->transitions++;
  if (in_window(b))
    b->win_transitions++;
}

void driver_rpc_error(bench_t *b, rpc_kind_t k, int status, const char *msg) {
  int slot = status >= 0 && status <= 16 ? status : 17;
  uint64_t seen = 0;
  for (int i = 0; i < 18; i++)
    seen += b->err[k][i];
  b->err[k][slot]++;
  int broken = 0;
  for (int i = 0; i < b->o.conns; i++)
    broken |= h2c_broken(b->conns[i]);
  /* a lost connection was reported once by h2client; its calls need no line each */
  if (seen < 5 && !b->o.quiet && !(status == H2C_TRANSPORT && broken))
    fprintf(stderr, "gtbench: %s failed: %s (%d): %s\n", rpc_names[k],
            driver_code_name(status), status, msg);
  if (status == 12 && !b->unimplemented) {
    b->unimplemented = 1;
    snprintf(b->unimpl_msg, sizeof(b->unimpl_msg), "%s: %s", rpc_names[k], msg);
  }
}

/* ---- verification by history ---- */

typedef Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryRequest hist_req_t;
typedef Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryResponse hist_resp_t;

static void on_verified(void *ud, int status, const char *msg, const uint8_t *body,
                        size_t len) {
  bench_t *b = ud;
  b->verify_inflight--;
  if (status != 0) {
    if (!b->stopping) {
      driver_rpc_error(b, RPC_HISTORY, status, msg);
      b->verify_bad++;
    }
    return;
  }
  hist_resp_t *r = temporal__api__workflowservice__v1__get_workflow_execution_history_response__unpack(
      pb_arena(), len, body);
  int ok = r && r->history && r->history->n_events > 0 &&
           r->history->events[r->history->n_events - 1]->event_type ==
               TEMPORAL__API__ENUMS__V1__EVENT_TYPE__EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED;
  if (ok) {
    b->verify_ok++;
  } else {
    b->verify_bad++;
    fprintf(stderr, "gtbench: verify: the close event is not WorkflowExecutionCompleted "
                    "(%zu events)\n", r && r->history ? r->history->n_events : 0);
  }
  pb_arena_reset();
}

static void verify_one(bench_t *b, long seq) {
  char wid[64];
  snprintf(wid, sizeof(wid), "gtb-%s-%ld", b->tag, seq);
  Temporal__Api__Common__V1__WorkflowExecution ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  ex.workflow_id = wid;
  hist_req_t q = TEMPORAL__API__WORKFLOWSERVICE__V1__GET_WORKFLOW_EXECUTION_HISTORY_REQUEST__INIT;
  q.namespace_ = (char *)b->o.ns;
  q.execution = &ex;
  q.wait_new_event = 1;
  q.history_event_filter_type =
      TEMPORAL__API__ENUMS__V1__HISTORY_EVENT_FILTER_TYPE__HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT;
  if (h2c_call(driver_conn(b), "GetWorkflowExecutionHistory", &q.base, START_TIMEOUT,
               on_verified, b) == 0) {
    b->verify_started++;
    b->verify_inflight++;
  }
}

/* ---- starting workflows ---- */

static void on_signalled(void *ud, int status, const char *msg, const uint8_t *body,
                         size_t len) {
  bench_t *b = ud;
  if (status == 0) {
    driver_transition(b);
  } else if (!b->stopping) {
    driver_rpc_error(b, RPC_SIGNAL, status, msg);
  }
}

static void send_signal(bench_t *b, long seq) {
  char wid[64], rid[64];
  snprintf(wid, sizeof(wid), "gtb-%s-%ld", b->tag, seq);
  snprintf(rid, sizeof(rid), "sig-%s-%ld", b->tag, seq);
  Temporal__Api__Common__V1__WorkflowExecution ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  ex.workflow_id = wid;
  Temporal__Api__Workflowservice__V1__SignalWorkflowExecutionRequest q =
      TEMPORAL__API__WORKFLOWSERVICE__V1__SIGNAL_WORKFLOW_EXECUTION_REQUEST__INIT;
  q.namespace_ = (char *)b->o.ns;
  q.workflow_execution = &ex;
  q.signal_name = "gtbench-go";
  q.identity = b->identity;
  q.request_id = rid;
  if (h2c_call(driver_conn(b), "SignalWorkflowExecution", &q.base, START_TIMEOUT,
               on_signalled, b) != 0)
    driver_rpc_error(b, RPC_SIGNAL, H2C_TRANSPORT, "connection gone");
}

/* A start in flight: its callback needs the seq. */
typedef struct start_ctx {
  bench_t *b;
  long seq;
} start_ctx_t;

static void on_start_done(void *ud, int status, const char *msg, const uint8_t *body,
                          size_t len) {
  start_ctx_t *s = ud;
  bench_t *b = s->b;
  long seq = s->seq;
  free(s);
  if (b->stopping)
    return;
  if (status != 0) {
    driver_rpc_error(b, RPC_START, status, msg);
    b->start_failed++;
    driver_wf_finished(b, seq, 0);
    return;
  }
  driver_transition(b);
  if (b->wfs[seq].state == WF_STARTING)
    b->wfs[seq].state = WF_RUNNING;
  const uint8_t *task;
  size_t tlen;
  if (thin_start_eager_task(body, len, &task, &tlen) != 0)
    driver_rpc_error(b, RPC_START, H2C_TRANSPORT, "unparsable StartWorkflowExecutionResponse");
  else if (tlen > 0)
    worker_eager_wft(b, task, tlen); /* eager start: the first task came with the reply */
  if (b->o.workload == WL_SIGNAL)
    send_signal(b, seq);
}

static int grow_wfs(bench_t *b) {
  if (b->n_wfs < b->cap_wfs)
    return 0;
  size_t cap = b->cap_wfs ? b->cap_wfs * 2 : 4096;
  wf_rec_t *p = realloc(b->wfs, cap * sizeof(*p));
  if (!p)
    return -1;
  b->wfs = p;
  b->cap_wfs = cap;
  return 0;
}

static void close_window(bench_t *b, uint64_t t);

static void start_one(bench_t *b) {
  if (b->starting_done || b->stopping || grow_wfs(b) != 0)
    return;
  long seq = (long)b->n_wfs++;
  if (b->o.count > 0 && (long)b->n_wfs >= b->o.count)
    b->starting_done = 1;
  wf_rec_t *w = &b->wfs[seq];
  w->t_start_us = now_us();
  w->state = WF_STARTING;
  w->in_window = (uint8_t)in_window(b);
  b->inflight++;
  char wid[64];
  snprintf(wid, sizeof(wid), "gtb-%s-%ld", b->tag, seq);
  Temporal__Api__Common__V1__WorkflowType wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  wt.name = b->wf_type;
  Temporal__Api__Taskqueue__V1__TaskQueue tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  tq.name = b->task_queue;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  Temporal__Api__Workflowservice__V1__StartWorkflowExecutionRequest q =
      TEMPORAL__API__WORKFLOWSERVICE__V1__START_WORKFLOW_EXECUTION_REQUEST__INIT;
  q.namespace_ = (char *)b->o.ns;
  q.workflow_id = wid;
  /* gtbench's worker polls this very task queue: ask for the first task back, as an SDK
   * does with requestEagerStart on a client shared with its worker */
  q.request_eager_execution = !b->o.no_eager && !b->o.no_eager_start;
  q.workflow_type = &wt;
  q.task_queue = &tq;
  q.identity = b->identity;
  q.request_id = wid; /* unique per start: ids are never reused */
  start_ctx_t *s = malloc(sizeof(*s));
  if (!s || h2c_call(driver_conn(b), "StartWorkflowExecution", &q.base, START_TIMEOUT,
                     on_start_done, s) != 0) {
    free(s);
    driver_rpc_error(b, RPC_START, H2C_TRANSPORT, "connection gone");
    b->start_failed++;
    b->fatal = 1;
    driver_wf_finished(b, seq, 0);
    return;
  }
  s->b = b;
  s->seq = seq;
}

void driver_wf_finished(bench_t *b, long seq, int ok) {
  wf_rec_t *w = &b->wfs[seq];
  if (w->state != WF_STARTING && w->state != WF_RUNNING)
    return;
  w->state = ok ? WF_DONE : WF_FAILED;
  b->inflight--;
  if (ok) {
    b->completed++;
    if (in_window(b)) {
      b->win_completed++;
      lat_add(&b->lat, now_us() - w->t_start_us);
    }
    if (b->verify_started < b->o.verify)
      verify_one(b, seq);
  } else {
    b->failed++;
  }
  if (b->o.count > 0 && b->starting_done && b->inflight == 0)
    close_window(b, now_us()); /* -n: the window ends with the last workflow */
  if (b->o.concurrency > 0 && !b->fatal && !b->unimplemented)
    start_one(b);
}

/* ---- phases ---- */

static void open_window(bench_t *b, uint64_t t) {
  b->window_open = 1;
  b->t_win_start_us = t;
  b->p_win_start = proc_read(b->o.server_pid);
  b->self_cpu_start = self_cpu_ms();
}

static void close_window(bench_t *b, uint64_t t) {
  if (b->window_closed)
    return;
  b->window_closed = 1;
  b->t_win_end_us = t;
  b->p_win_end = proc_read(b->o.server_pid);
  b->self_cpu_end = self_cpu_ms();
}

static void finish(bench_t *b) {
  uint64_t t = now_us();
  if (!b->window_open)
    open_window(b, t);
  close_window(b, t);
  b->finished = 1;
  b->stopping = 1;
  /* what is still in flight did not finish in time */
  for (size_t i = 0; i < b->n_wfs; i++)
    if (b->wfs[i].state == WF_STARTING || b->wfs[i].state == WF_RUNNING)
      driver_wf_finished(b, (long)i, 0);
  uv_timer_stop(&b->tick);
  uv_close((uv_handle_t *)&b->tick, NULL);
  worker_stop(b);
  for (int i = 0; i < b->o.conns; i++)
    h2c_close(b->conns[i]);
}

static void open_loop_starts(bench_t *b, uint64_t t) {
  uint64_t due = (uint64_t)((double)(t - b->t_begin_us) * b->o.rate / 1e6);
  while (!b->starting_done && b->n_wfs + b->skipped < due) {
    if (b->inflight >= b->o.max_inflight)
      b->skipped++;
    else
      start_one(b);
  }
}

/* --progress: completions in the last second, in flight, errors so far. */
static void progress(bench_t *b, uint64_t t) {
  if (t < b->last_progress_us + 1000000)
    return;
  uint64_t errs = 0;
  for (int k = 0; k < RPC_COUNT; k++)
    for (int i = 1; i < 18; i++)
      errs += b->err[k][i];
  proc_sample_t p = proc_read(b->o.server_pid);
  fprintf(stderr, "gtbench: t=%.0fs completed/s=%llu inflight=%ld errors=%llu%s",
          (double)(t - b->t_begin_us) / 1e6,
          (unsigned long long)(b->completed - b->last_progress_completed), b->inflight,
          (unsigned long long)errs, p.ok ? "" : "\n");
  if (p.ok)
    fprintf(stderr, " server_cpu_ms=%.0f server_rss_mb=%.1f\n", p.cpu_ms, p.rss_mb);
  b->last_progress_us = t;
  b->last_progress_completed = b->completed;
}

static void on_tick(uv_timer_t *h) {
  bench_t *b = h->data;
  uint64_t t = now_us();
  if (b->o.progress)
    progress(b, t);
  if (b->fatal || b->unimplemented) {
    finish(b);
    return;
  }
  if (!b->window_open && t >= b->t_begin_us + (uint64_t)(b->o.warmup_s * 1e6))
    open_window(b, t);
  if (b->o.count == 0 && b->window_open && !b->starting_done &&
      t >= b->t_win_start_us + (uint64_t)(b->o.duration_s * 1e6)) {
    close_window(b, t);
    b->starting_done = 1;
  }
  if (b->o.concurrency == 0)
    open_loop_starts(b, t);
  if (b->starting_done && !b->drain_deadline_us)
    b->drain_deadline_us = t + (uint64_t)(b->o.drain_s * 1e6);
  if (b->starting_done &&
      ((b->inflight == 0 && b->verify_inflight == 0) || t >= b->drain_deadline_us))
    finish(b);
}

void driver_run(bench_t *b) {
  b->t_begin_us = now_us();
  worker_start(b);
  if (b->o.warmup_s <= 0)
    open_window(b, b->t_begin_us);
  uv_timer_init(b->loop, &b->tick);
  b->tick.data = b;
  uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
  if (b->o.concurrency > 0)
    for (int i = 0; i < b->o.concurrency && !b->starting_done; i++)
      start_one(b);
  uv_run(b->loop, UV_RUN_DEFAULT);
}
