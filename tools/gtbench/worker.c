/*
 * worker.c: the thin Temporal worker built into gtbench.
 *
 * DESIGN
 *   N workflow-task pollers and M activity-task pollers, each one long poll
 *   (grpc-timeout 70S) at a time on the run's task queue. A poller re-polls as soon as its
 *   poll returns (an empty response, no task_token, is the server's "nothing came": poll
 *   again), and answers the task concurrently.
 *   A workflow task is decided from the whole history in the poll response (this server
 *   always sends all of it; there is no sticky cache to keep), read off the wire by
 *   thin.c: the token, the workflow id and the event types, nothing unpacked:
 *     hello     ScheduleActivityTask (start_to_close 10 s), then CompleteWorkflowExecution
 *               once ActivityTaskCompleted is in the history;
 *     steps10   ten activities, one after the other, then complete;
 *     timer     StartTimer 1 s, then complete after TimerFired;
 *     signal    no command until WorkflowExecutionSignaled, then complete;
 *     sleep     StartTimer --sleep-s (default 1 h) and nothing more: the workflow stays
 *               open, and is finished for gtbench once that answer is acknowledged.
 *   An activity failure or timeout fails the workflow (FailWorkflowExecution).
 *   Activities complete at once (RespondActivityTaskCompleted, no result).
 *   Eager activities, as sdk-core does them: gtbench runs every activity of its task queue
 *   itself, so each ScheduleActivityTask asks for eager execution (not with --no-eager),
 *   and the activity tasks the server returns in the RespondWorkflowTaskCompletedResponse
 *   are run at once, without a poll. Activities the server did not start eagerly (eager
 *   execution off on the server, or any it declined) come through the activity pollers.
 *   A workflow is finished when the RespondWorkflowTaskCompleted carrying its close command
 *   (for sleep: its StartTimer) returns OK.
 *
 * INVARIANTS
 *   - A poller has exactly one poll or one backoff timer outstanding until b->stopping.
 *
 * THREADS: the loop thread only.
 */
#include "tools/gtbench/gtbench.h"
#include "tools/gtbench/thin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "temporal/api/workflowservice/v1/request_response.pb-c.h"
#include "temporal/api/history/v1/message.pb-c.h"
#include "temporal/api/command/v1/message.pb-c.h"
#include "temporal/api/enums/v1/event_type.pb-c.h"
#include "temporal/api/enums/v1/command_type.pb-c.h"

#define POLL_TIMEOUT "70S"
#define RPC_TIMEOUT "30S"
#define ERROR_BACKOFF_MS 100
#define ACTIVITY_TIMEOUT_S 10
#define TIMER_S 1

#define EV(x) TEMPORAL__API__ENUMS__V1__EVENT_TYPE__EVENT_TYPE_##x
#define CMD(x) TEMPORAL__API__ENUMS__V1__COMMAND_TYPE__COMMAND_TYPE_##x
#define CMD_ATTR(x) TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_##x

typedef Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueRequest poll_wft_req_t;
typedef Temporal__Api__Workflowservice__V1__PollActivityTaskQueueRequest poll_act_req_t;
typedef Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest wft_done_req_t;
typedef Temporal__Api__Workflowservice__V1__RespondActivityTaskCompletedRequest act_done_req_t;
typedef Temporal__Api__Command__V1__Command command_t;

typedef struct poller {
  bench_t *b;
  int activity;          /* 0: workflow tasks, 1: activity tasks */
  int idx;
  uv_timer_t backoff;    /* after a failed poll */
} poller_t;

/* A RespondWorkflowTaskCompleted in flight. */
typedef struct wft_reply {
  bench_t *b;
  long seq;
  int close;             /* 0 none, 1 complete, 2 fail, 3 sleeper set up */
} wft_reply_t;

static poller_t *pollers;
static int n_pollers;

static void poll_again(poller_t *p);

static void on_backoff(uv_timer_t *t) { poll_again(t->data); }

/* ---- deciding a workflow task ---- */

typedef struct hist_facts {
  int sched, done, act_failed, timer_started, timer_fired, signaled;
} hist_facts_t;

/* thin_wft_read's event callback: counts what decide() looks at. */
static void note_event(int type, void *ud) {
  hist_facts_t *f = ud;
  switch (type) {
  case EV(ACTIVITY_TASK_SCHEDULED): f->sched++; break;
  case EV(ACTIVITY_TASK_COMPLETED): f->done++; break;
  case EV(ACTIVITY_TASK_FAILED):
  case EV(ACTIVITY_TASK_TIMED_OUT):
  case EV(ACTIVITY_TASK_CANCELED): f->act_failed = 1; break;
  case EV(TIMER_STARTED): f->timer_started = 1; break;
  case EV(TIMER_FIRED): f->timer_fired = 1; break;
  case EV(WORKFLOW_EXECUTION_SIGNALED): f->signaled = 1; break;
  default: break;
  }
}

/* The commands' storage: one workflow task has at most one command here. */
typedef struct cmd_store {
  command_t cmd;
  command_t *list[1];
  Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes act;
  Temporal__Api__Command__V1__CompleteWorkflowExecutionCommandAttributes complete;
  Temporal__Api__Command__V1__FailWorkflowExecutionCommandAttributes fail;
  Temporal__Api__Command__V1__StartTimerCommandAttributes timer;
  Temporal__Api__Failure__V1__Failure failure;
  Temporal__Api__Common__V1__ActivityType act_type;
  Temporal__Api__Taskqueue__V1__TaskQueue tq;
  Google__Protobuf__Duration timeout;
  char id[16];
} cmd_store_t;

static void cmd_schedule(bench_t *b, cmd_store_t *s, int n) {
  temporal__api__command__v1__schedule_activity_task_command_attributes__init(&s->act);
  temporal__api__common__v1__activity_type__init(&s->act_type);
  temporal__api__taskqueue__v1__task_queue__init(&s->tq);
  google__protobuf__duration__init(&s->timeout);
  snprintf(s->id, sizeof(s->id), "%d", n);
  s->act_type.name = "gtbench-activity";
  s->tq.name = b->task_queue;
  s->tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  s->timeout.seconds = ACTIVITY_TIMEOUT_S;
  s->act.activity_id = s->id;
  s->act.activity_type = &s->act_type;
  s->act.task_queue = &s->tq;
  s->act.start_to_close_timeout = &s->timeout;
  /* sdk-core asks when the activity is on its own queue and it has a free slot; gtbench
   * has no slot limit and one queue */
  s->act.request_eager_execution = !b->o.no_eager;
  s->cmd.command_type = CMD(SCHEDULE_ACTIVITY_TASK);
  s->cmd.attributes_case = CMD_ATTR(SCHEDULE_ACTIVITY_TASK_COMMAND_ATTRIBUTES);
  s->cmd.schedule_activity_task_command_attributes = &s->act;
}

static void cmd_timer(cmd_store_t *s, long seconds) {
  temporal__api__command__v1__start_timer_command_attributes__init(&s->timer);
  google__protobuf__duration__init(&s->timeout);
  s->timeout.seconds = seconds;
  s->timer.timer_id = "1";
  s->timer.start_to_fire_timeout = &s->timeout;
  s->cmd.command_type = CMD(START_TIMER);
  s->cmd.attributes_case = CMD_ATTR(START_TIMER_COMMAND_ATTRIBUTES);
  s->cmd.start_timer_command_attributes = &s->timer;
}

static void cmd_complete(cmd_store_t *s) {
  temporal__api__command__v1__complete_workflow_execution_command_attributes__init(
      &s->complete);
  s->cmd.command_type = CMD(COMPLETE_WORKFLOW_EXECUTION);
  s->cmd.attributes_case = CMD_ATTR(COMPLETE_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES);
  s->cmd.complete_workflow_execution_command_attributes = &s->complete;
}

static void cmd_fail(cmd_store_t *s) {
  temporal__api__command__v1__fail_workflow_execution_command_attributes__init(&s->fail);
  temporal__api__failure__v1__failure__init(&s->failure);
  s->failure.message = "gtbench: an activity failed or timed out";
  s->fail.failure = &s->failure;
  s->cmd.command_type = CMD(FAIL_WORKFLOW_EXECUTION);
  s->cmd.attributes_case = CMD_ATTR(FAIL_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES);
  s->cmd.fail_workflow_execution_command_attributes = &s->fail;
}

/* Fills s with the next command for history f. Returns 0 (no command), or 1, with *close
 * set to 1 (complete) / 2 (fail) for a close command, 3 for a sleeper's StartTimer. */
static int decide(bench_t *b, const hist_facts_t *f, cmd_store_t *s, int *close) {
  temporal__api__command__v1__command__init(&s->cmd);
  s->list[0] = &s->cmd;
  *close = 0;
  if (f->act_failed) {
    cmd_fail(s);
    *close = 2;
    return 1;
  }
  int steps = b->o.workload == WL_STEPS10 ? 10 : 1;
  switch (b->o.workload) {
  case WL_HELLO:
  case WL_STEPS10:
    if (f->done >= steps)
      break;
    if (f->sched > f->done)
      return 0; /* the activity is still running */
    cmd_schedule(b, s, f->sched + 1);
    return 1;
  case WL_TIMER:
    if (f->timer_fired)
      break;
    if (f->timer_started)
      return 0;
    cmd_timer(s, TIMER_S);
    return 1;
  case WL_SIGNAL:
    if (!f->signaled)
      return 0;
    break;
  case WL_SLEEP:
    /* a later task (the timer fired after all, or a retry) gets no command: the
     * sleeper was counted once, and stays open */
    if (f->timer_started || f->timer_fired)
      return 0;
    cmd_timer(s, b->o.sleep_s);
    *close = 3;
    return 1;
  }
  cmd_complete(s);
  *close = 1;
  return 1;
}

/* ---- workflow tasks ---- */

static void run_activity(bench_t *b, const ProtobufCBinaryData *token);

/* One activity task of a RespondWorkflowTaskCompletedResponse (eager execution): started
 * by the server for this worker; run it as if polled. */
static void run_eager_task(const uint8_t *token, size_t len, void *ud) {
  bench_t *b = ud;
  if (len == 0)
    return;
  b->eager_acts++;
  driver_transition(b); /* the activity was started */
  ProtobufCBinaryData t = {len, (uint8_t *)token};
  run_activity(b, &t);
}

static void run_eager(bench_t *b, const uint8_t *body, size_t len) {
  if (thin_eager_acts(body, len, run_eager_task, b) < 0) /* len 0: nothing eager */
    driver_rpc_error(b, RPC_WFT_DONE, H2C_TRANSPORT,
                     "unparsable RespondWorkflowTaskCompletedResponse");
}

static void on_wft_replied(void *ud, int status, const char *msg, const uint8_t *body,
                           size_t len) {
  wft_reply_t *w = ud;
  bench_t *b = w->b;
  if (status == 0) {
    driver_transition(b);
    run_eager(b, body, len);
    if (w->close && w->seq >= 0)
      driver_wf_finished(b, w->seq, w->close != 2);
  } else if (!b->stopping || status != H2C_TRANSPORT) {
    driver_rpc_error(b, RPC_WFT_DONE, status, msg);
    if (status == 12 && w->seq >= 0)
      driver_wf_finished(b, w->seq, 0);
  }
  free(w);
}

static void answer_wft(bench_t *b, const thin_wft_t *r, const hist_facts_t *facts) {
  hist_facts_t f = *facts;
  cmd_store_t s;
  wft_reply_t *w = calloc(1, sizeof(*w));
  if (!w)
    return;
  w->b = b;
  char wid[128];
  w->seq = -1;
  if (r->workflow_id && r->workflow_id_len < sizeof(wid)) {
    memcpy(wid, r->workflow_id, r->workflow_id_len);
    wid[r->workflow_id_len] = 0;
    w->seq = driver_seq_of(b, wid);
  }
  wft_done_req_t q = TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_WORKFLOW_TASK_COMPLETED_REQUEST__INIT;
  q.namespace_ = (char *)b->o.ns;
  q.task_token = (ProtobufCBinaryData){r->token_len, (uint8_t *)r->token};
  q.identity = b->identity;
  q.n_commands = (size_t)decide(b, &f, &s, &w->close);
  q.commands = s.list;
  if (h2c_call(driver_conn(b), "RespondWorkflowTaskCompleted", &q.base, RPC_TIMEOUT,
               on_wft_replied, w) != 0) {
    driver_rpc_error(b, RPC_WFT_DONE, H2C_TRANSPORT, "connection gone");
    free(w);
  }
}

/* Reads a workflow task (a poll answer, or the eager task of a start reply) and answers it.
 * Returns 1 (answered), 0 (no task: an empty poll), -1 (unparsable: reported as rpc's). */
static int take_wft(bench_t *b, const uint8_t *p, size_t n, rpc_kind_t rpc, const char *what) {
  thin_wft_t r;
  hist_facts_t f = {0};
  if (thin_wft_read(p, n, &r, note_event, &f) != 0) {
    driver_rpc_error(b, rpc, H2C_TRANSPORT, what);
    return -1;
  }
  if (r.token_len == 0)
    return 0;
  driver_transition(b); /* the workflow task was started */
  answer_wft(b, &r, &f);
  return 1;
}

static void on_wft_poll(void *ud, int status, const char *msg, const uint8_t *body,
                        size_t len) {
  poller_t *p = ud;
  bench_t *b = p->b;
  if (b->stopping)
    return;
  if (status != 0) {
    driver_rpc_error(b, RPC_POLL_WFT, status, msg);
    uv_timer_start(&p->backoff, on_backoff, ERROR_BACKOFF_MS, 0);
    return;
  }
  poll_again(p); /* body stays valid until this callback returns */
  if (take_wft(b, body, len, RPC_POLL_WFT, "unparsable PollWorkflowTaskQueueResponse") == 0)
    b->empty_polls++;
}

void worker_eager_wft(bench_t *b, const uint8_t *task, size_t len) {
  int rc = take_wft(b, task, len, RPC_START, "unparsable eager workflow task");
  if (rc == 1)
    b->eager_starts++;
  else if (rc == 0)
    driver_rpc_error(b, RPC_START, H2C_TRANSPORT, "eager workflow task without a token");
}

/* ---- activity tasks ---- */

static void on_act_replied(void *ud, int status, const char *msg, const uint8_t *body,
                           size_t len) {
  bench_t *b = ud;
  if (status == 0)
    driver_transition(b);
  else if (!b->stopping || status != H2C_TRANSPORT)
    driver_rpc_error(b, RPC_ACT_DONE, status, msg);
}

/* Runs a started activity: completes it at once. */
static void run_activity(bench_t *b, const ProtobufCBinaryData *token) {
  act_done_req_t q = TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_ACTIVITY_TASK_COMPLETED_REQUEST__INIT;
  q.namespace_ = (char *)b->o.ns;
  q.task_token = *token;
  q.identity = b->identity;
  if (h2c_call(driver_conn(b), "RespondActivityTaskCompleted", &q.base, RPC_TIMEOUT,
               on_act_replied, b) != 0)
    driver_rpc_error(b, RPC_ACT_DONE, H2C_TRANSPORT, "connection gone");
}

static void on_act_poll(void *ud, int status, const char *msg, const uint8_t *body,
                        size_t len) {
  poller_t *p = ud;
  bench_t *b = p->b;
  if (b->stopping)
    return;
  if (status != 0) {
    driver_rpc_error(b, RPC_POLL_ACT, status, msg);
    uv_timer_start(&p->backoff, on_backoff, ERROR_BACKOFF_MS, 0);
    return;
  }
  const uint8_t *token;
  size_t token_len;
  int rc = thin_act_token(body, len, &token, &token_len);
  poll_again(p);
  if (rc != 0) {
    driver_rpc_error(b, RPC_POLL_ACT, H2C_TRANSPORT, "unparsable PollActivityTaskQueueResponse");
    return;
  }
  if (token_len == 0) {
    b->empty_polls++;
  } else {
    driver_transition(b); /* the activity was started */
    ProtobufCBinaryData t = {token_len, (uint8_t *)token};
    run_activity(b, &t);
  }
}

/* ---- pollers ---- */

static void poll_again(poller_t *p) {
  bench_t *b = p->b;
  if (b->stopping)
    return;
  Temporal__Api__Taskqueue__V1__TaskQueue tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  tq.name = b->task_queue;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  h2c_t *c = b->conns[(size_t)p->idx % (size_t)b->o.conns];
  int rc;
  if (p->activity) {
    poll_act_req_t q = TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_ACTIVITY_TASK_QUEUE_REQUEST__INIT;
    q.namespace_ = (char *)b->o.ns;
    q.task_queue = &tq;
    q.identity = b->identity;
    rc = h2c_call(c, "PollActivityTaskQueue", &q.base, POLL_TIMEOUT, on_act_poll, p);
  } else {
    poll_wft_req_t q = TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_WORKFLOW_TASK_QUEUE_REQUEST__INIT;
    q.namespace_ = (char *)b->o.ns;
    q.task_queue = &tq;
    q.identity = b->identity;
    rc = h2c_call(c, "PollWorkflowTaskQueue", &q.base, POLL_TIMEOUT, on_wft_poll, p);
  }
  if (rc != 0) {
    driver_rpc_error(b, p->activity ? RPC_POLL_ACT : RPC_POLL_WFT, H2C_TRANSPORT,
                     "connection gone");
    b->fatal = 1;
  }
}

void worker_start(bench_t *b) {
  n_pollers = b->o.wft_pollers + b->o.act_pollers;
  pollers = calloc((size_t)n_pollers, sizeof(*pollers));
  if (!pollers) {
    b->fatal = 1;
    return;
  }
  for (int i = 0; i < n_pollers; i++) {
    poller_t *p = &pollers[i];
    p->b = b;
    p->idx = i;
    p->activity = i >= b->o.wft_pollers;
    uv_timer_init(b->loop, &p->backoff);
    p->backoff.data = p;
  }
  for (int i = 0; i < n_pollers; i++)
    poll_again(&pollers[i]);
}

static void on_timer_closed(uv_handle_t *h) {
  if (--n_pollers == 0) {
    free(pollers);
    pollers = NULL;
  }
}

void worker_stop(bench_t *b) {
  int n = n_pollers;
  for (int i = 0; i < n; i++)
    uv_close((uv_handle_t *)&pollers[i].backoff, on_timer_closed);
}
