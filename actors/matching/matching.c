/*
 * matching.c: the task-queue actor (see matching.h).
 *
 * DESIGN
 *   State: a FIFO of parked polls (gt_rpc_t, each with a long-poll timer) and a FIFO backlog
 *   of tasks. Every event (poll arrives, task arrives, poll comes back stale, timer fires)
 *   runs `match()`, which pairs the oldest live poll with the oldest task while both exist.
 *   Backlog durability: a task exists here only after its transfer task committed in the
 *   store; after a crash the workflow actors re-dispatch what was pending (see workflow.c).
 *   Sticky queues: a workflow task for a sticky queue whose worker is gone (it called
 *   ShutdownWorker, or nobody polled it for STICKY_POLLER_GONE_MS, or ever since this
 *   server started) is not kept: it goes back to its workflow, which sends it to the normal
 *   queue at once (Temporal's StickyWorkerUnavailable), instead of waiting here for the
 *   sticky schedule-to-start timeout.
 *
 * INVARIANTS
 *   - A poll is either parked here (in `polls`, with a timer) or travelling with a task to a
 *     workflow actor; never both.
 *   - Polls are answered (empty) no later than 1 s before their deadline, and after at most
 *     60 s.
 *
 * THREADS
 *   Actor state: the home thread only. gt_matching_* entry points: any thread.
 */
#include "actors/matching/matching.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/metrics.h"
#include "runtime/log.h"

#define LONG_POLL_MS 60000
#define DEADLINE_BUDGET_MS 1000

#define MAX_POLLERS 32
/* A sticky queue nobody polled for this long has no worker (Temporal's window). */
#define STICKY_POLLER_GONE_MS 10000

/* A worker seen polling this queue (DescribeTaskQueue). */
typedef struct poller {
  char identity[128];
  int64_t last_access_ns;
} poller_t;

typedef struct taskqueue {
  gt_actor_t base;
  gt_server_t *srv;
  poller_t pollers[MAX_POLLERS];
  int n_pollers;
  gt_rpc_t *polls_head, *polls_tail;
  gt_task_t *tasks_head, *tasks_tail;
  uint64_t backlog;
  uint64_t polls;
  uint64_t matched;
  uint64_t last_poll_ms; /* gt_now_ms of the last poll; 0 = none since activation */
  int worker_shut_down;  /* ShutdownWorker named this (sticky) queue; a poll clears it */
} taskqueue_t;

/* Key: ns_id '\0' kind-char name. */
static size_t make_key(char *key, size_t cap, const char *ns_id, gt_task_kind_t kind,
                       const char *name) {
  size_t nl = strlen(ns_id), ql = strlen(name);
  if (nl + 2 + ql > cap)
    return 0;
  memcpy(key, ns_id, nl);
  key[nl] = 0;
  key[nl + 1] = kind == GT_TASK_ACTIVITY ? 'A' : 'W'; /* queries ride the workflow queue */
  memcpy(key + nl + 2, name, ql);
  return nl + 2 + ql;
}

static void reply_empty(gt_rpc_t *rpc) { gt_rpc_reply_bytes(rpc, (const uint8_t *)"", 0); }

static void poll_unlink(taskqueue_t *tq, gt_rpc_t *rpc) {
  gt_rpc_t **pp = &tq->polls_head, *prev = NULL;
  while (*pp && *pp != rpc) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (!*pp)
    return;
  *pp = rpc->next;
  if (tq->polls_tail == rpc)
    tq->polls_tail = prev;
  rpc->next = NULL;
}

static void park(taskqueue_t *tq, gt_rpc_t *rpc) {
  uint64_t now = gt_now_ms();
  uint64_t wait = LONG_POLL_MS;
  if (rpc->deadline_ms) {
    if (rpc->deadline_ms <= now + DEADLINE_BUDGET_MS) {
      reply_empty(rpc);
      return;
    }
    uint64_t left = rpc->deadline_ms - now - DEADLINE_BUDGET_MS;
    if (left < wait)
      wait = left;
  }
  rpc->timer_id = gt_actor_timer_start(&tq->base, wait, (uint64_t)(uintptr_t)rpc);
  rpc->next = NULL;
  if (tq->polls_tail)
    tq->polls_tail->next = rpc;
  else
    tq->polls_head = rpc;
  tq->polls_tail = rpc;
}

static gt_task_t *pop_task(taskqueue_t *tq) {
  gt_task_t *t = tq->tasks_head;
  if (t) {
    tq->tasks_head = t->next;
    if (!tq->tasks_head)
      tq->tasks_tail = NULL;
    t->next = NULL;
    tq->backlog--;
    gt_actor_set_gauge(&tq->base, tq->backlog); /* approximate_backlog_count */
  }
  return t;
}

static void push_task(taskqueue_t *tq, gt_task_t *t) {
  t->next = NULL;
  if (tq->tasks_tail)
    tq->tasks_tail->next = t;
  else
    tq->tasks_head = t;
  tq->tasks_tail = t;
  tq->backlog++;
  gt_actor_set_gauge(&tq->base, tq->backlog);
}

/* Sends a poll with its task to the workflow actor. */
static void dispatch(taskqueue_t *tq, gt_rpc_t *rpc, gt_task_t *t) {
  rpc->task = t;
  gt_actor_retain(&tq->base);
  rpc->queue = &tq->base;
  rpc->hdr.type = GT_MSG_RECORD_STARTED;
  tq->matched++;
  /* a task matching got from its workflow, now with a poller: task_dispatch_latency */
  if (t->enqueued_ns)
    gt_metrics_ahist_observe(&tq->srv->task_dispatch_latency[t->kind == GT_TASK_ACTIVITY],
                             uv_hrtime() - t->enqueued_ns);
  gt_history_route(tq->srv, rpc);
}

/* Pairs parked polls with backlog tasks while both exist. */
static void match(taskqueue_t *tq) {
  while (tq->polls_head && tq->tasks_head) {
    gt_rpc_t *rpc = tq->polls_head;
    poll_unlink(tq, rpc);
    gt_actor_timer_cancel(&tq->base, rpc->timer_id);
    rpc->timer_id = 0;
    if (gt_gateway_call_cancelled(rpc->call)) { /* client gone: keep the task */
      reply_empty(rpc);
      continue;
    }
    dispatch(tq, rpc, pop_task(tq));
  }
}

/* Remembers who polls (the most recent MAX_POLLERS identities). */
static void note_poller(taskqueue_t *tq, const gt_rpc_t *rpc) {
  const char *identity = "";
  if (rpc->kind == GT_RPC_POLL_WORKFLOW_TASK)
    identity = ((const Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueRequest *)
                    rpc->req)->identity;
  else if (rpc->kind == GT_RPC_POLL_ACTIVITY_TASK)
    identity = ((const Temporal__Api__Workflowservice__V1__PollActivityTaskQueueRequest *)
                    rpc->req)->identity;
  int slot = -1, oldest = 0;
  for (int i = 0; i < tq->n_pollers; i++) {
    if (strcmp(tq->pollers[i].identity, identity ? identity : "") == 0)
      slot = i;
    if (tq->pollers[i].last_access_ns < tq->pollers[oldest].last_access_ns)
      oldest = i;
  }
  if (slot < 0) { /* a known poller's identity is there already (every poll: no copy) */
    slot = tq->n_pollers < MAX_POLLERS ? tq->n_pollers++ : oldest;
    gt_copy_str(tq->pollers[slot].identity, sizeof(tq->pollers[slot].identity),
                identity ? identity : "");
  }
  tq->pollers[slot].last_access_ns = gt_wall_ns();
}

/* DescribeTaskQueue: the pollers seen in the last 5 minutes, as Temporal reports them. */
static void on_describe(taskqueue_t *tq, gt_rpc_t *rpc) {
  Temporal__Api__Workflowservice__V1__DescribeTaskQueueResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__DESCRIBE_TASK_QUEUE_RESPONSE__INIT;
  Temporal__Api__Taskqueue__V1__PollerInfo infos[MAX_POLLERS], *ptrs[MAX_POLLERS];
  pb_ts_t times[MAX_POLLERS];
  int64_t cutoff = gt_wall_ns() - 300LL * 1000000000;
  size_t n = 0;
  for (int i = 0; i < tq->n_pollers; i++) {
    if (tq->pollers[i].last_access_ns < cutoff)
      continue;
    temporal__api__taskqueue__v1__poller_info__init(&infos[n]);
    gt_pb_ts(&times[n], tq->pollers[i].last_access_ns);
    infos[n].last_access_time = &times[n];
    infos[n].identity = tq->pollers[i].identity;
    ptrs[n] = &infos[n];
    n++;
  }
  r.n_pollers = n;
  r.pollers = ptrs;
  gt_rpc_reply_msg(rpc, &r.base);
}

static void on_poll(taskqueue_t *tq, gt_rpc_t *rpc) {
  if (rpc->kind == GT_RPC_DESCRIBE_TASK_QUEUE) {
    on_describe(tq, rpc);
    return;
  }
  tq->polls++;
  if (!rpc->task) { /* a stale task coming back is not a new poll */
    note_poller(tq, rpc);
    tq->last_poll_ms = gt_now_ms();
    tq->worker_shut_down = 0;
  }
  free(rpc->task); /* a stale task coming back */
  rpc->task = NULL;
  if (rpc->queue) {
    gt_actor_release(rpc->queue);
    rpc->queue = NULL;
  }
  park(tq, rpc);
  match(tq);
}

static void on_timer(taskqueue_t *tq, gt_timer_msg_t *tm) {
  for (gt_rpc_t *r = tq->polls_head; r; r = r->next) {
    if (r->timer_id == tm->timer_id) {
      poll_unlink(tq, r);
      reply_empty(r);
      return;
    }
  }
}

/* A sticky task arriving now would wait for nobody: no poll parked, and the worker shut
 * down or silent (see DESIGN). */
static int sticky_worker_gone(const taskqueue_t *tq) {
  if (tq->polls_head)
    return 0;
  return tq->worker_shut_down || tq->last_poll_ms == 0 ||
         gt_now_ms() - tq->last_poll_ms > STICKY_POLLER_GONE_MS;
}

/* ShutdownWorker: answer the worker's parked polls, hand the backlog back. */
static void on_worker_shutdown(taskqueue_t *tq) {
  tq->worker_shut_down = 1;
  while (tq->polls_head) {
    gt_rpc_t *r = tq->polls_head;
    poll_unlink(tq, r);
    gt_actor_timer_cancel(&tq->base, r->timer_id);
    reply_empty(r);
  }
  gt_task_t *t;
  while ((t = pop_task(tq))) {
    if (t->sticky)
      gt_history_sticky_unavailable(tq->srv, t);
    else
      free(t);
  }
}

static void tq_receive(gt_actor_t *self, gt_msg_t *m) {
  taskqueue_t *tq = (taskqueue_t *)self;
  switch (m->type) {
  case GT_MSG_RPC:
    on_poll(tq, (gt_rpc_t *)m);
    return;
  case GT_MSG_ADD_TASK: {
    gt_task_msg_t *tm = (gt_task_msg_t *)m;
    if (tm->task->sticky && sticky_worker_gone(tq))
      gt_history_sticky_unavailable(tq->srv, tm->task);
    else
      push_task(tq, tm->task);
    tm->task = NULL;
    match(tq);
    break;
  }
  case GT_MSG_WORKER_SHUTDOWN:
    on_worker_shutdown(tq);
    break;
  case GT_MSG_TIMER:
    on_timer(tq, (gt_timer_msg_t *)m);
    break;
  case GT_MSG_SHUTDOWN:
    while (tq->polls_head) {
      gt_rpc_t *r = tq->polls_head;
      poll_unlink(tq, r);
      gt_actor_timer_cancel(self, r->timer_id);
      reply_empty(r);
    }
    break;
  default:
    break;
  }
  gt_msg_free(m);
}

static int tq_start(gt_actor_t *self, void *arg) {
  ((taskqueue_t *)self)->srv = arg;
  return 0;
}

static void tq_stop(gt_actor_t *self) {
  taskqueue_t *tq = (taskqueue_t *)self;
  while (tq->polls_head) {
    gt_rpc_t *r = tq->polls_head;
    poll_unlink(tq, r);
    gt_rpc_reply_error(r, GT_GRPC_UNAVAILABLE, "server is shutting down");
  }
  gt_task_t *t;
  while ((t = pop_task(tq)))
    free(t);
}

static int tq_describe(gt_actor_t *self, char *buf, size_t len) {
  taskqueue_t *tq = (taskqueue_t *)self;
  int n = 0;
  for (gt_rpc_t *r = tq->polls_head; r; r = r->next)
    n++;
  return snprintf(buf, len, "parked_polls=%d backlog=%llu matched=%llu", n,
                  (unsigned long long)tq->backlog, (unsigned long long)tq->matched);
}

const gt_actor_type_t gt_taskqueue_actor_type = {
    .name = "task-queue",
    .size = sizeof(taskqueue_t),
    .start = tq_start,
    .receive = tq_receive,
    .stop = tq_stop,
    .describe = tq_describe,
};

void gt_matching_add_task(gt_server_t *srv, const char *queue_name, gt_task_t *task) {
  char key[GT_ACTOR_KEY_MAX];
  size_t kl = make_key(key, sizeof(key), task->ns_id, task->kind, queue_name);
  gt_task_msg_t *m = gt_zalloc(sizeof(*m)); /* not calloc: see gt_zalloc */
  if (!kl || !m) {
    gt_log_error("MATCH-ADD-FAILED", "cannot queue task for %s", queue_name);
    free(m);
    free(task);
    return;
  }
  m->hdr.type = GT_MSG_ADD_TASK;
  m->hdr.dtor = gt_task_msg_dtor;
  task->enqueued_ns = uv_hrtime();
  m->task = task;
  if (gt_actor_send_key(srv->rt, &gt_taskqueue_actor_type, key, kl, srv, &m->hdr) != 0)
    gt_task_msg_dtor(&m->hdr);
}

void gt_matching_poll(gt_server_t *srv, gt_rpc_t *rpc, const char *queue_name) {
  char key[GT_ACTOR_KEY_MAX];
  gt_task_kind_t kind = rpc->kind == GT_RPC_POLL_ACTIVITY_TASK ||
                                (rpc->kind == GT_RPC_DESCRIBE_TASK_QUEUE && rpc->attempt)
                            ? GT_TASK_ACTIVITY : GT_TASK_WORKFLOW;
  size_t kl = make_key(key, sizeof(key), rpc->ns_id, kind, queue_name);
  if (!kl) {
    gt_rpc_reply_error(rpc, GT_GRPC_INVALID_ARGUMENT, "TaskQueue length exceeds limit.");
    return;
  }
  rpc->hdr.type = GT_MSG_RPC;
  if (gt_actor_send_key(srv->rt, &gt_taskqueue_actor_type, key, kl, srv, &rpc->hdr) != 0)
    gt_rpc_reply_error(rpc, GT_GRPC_UNAVAILABLE, "server is shutting down");
}

void gt_matching_shutdown_worker(gt_server_t *srv, const char *ns_id,
                                 const char *sticky_queue) {
  char key[GT_ACTOR_KEY_MAX];
  size_t kl = make_key(key, sizeof(key), ns_id, GT_TASK_WORKFLOW, sticky_queue);
  gt_msg_t *m = calloc(1, sizeof(*m));
  if (!kl || !m) {
    free(m);
    return;
  }
  m->type = GT_MSG_WORKER_SHUTDOWN;
  if (gt_actor_send_key(srv->rt, &gt_taskqueue_actor_type, key, kl, srv, m) != 0)
    free(m);
}

void gt_matching_repark(gt_rpc_t *rpc) {
  gt_actor_t *q = rpc->queue;
  rpc->queue = NULL;
  free(rpc->task);
  rpc->task = NULL;
  rpc->hdr.type = GT_MSG_RPC;
  if (gt_actor_send(q, &rpc->hdr) != 0)
    reply_empty(rpc);
  gt_actor_release(q);
}
