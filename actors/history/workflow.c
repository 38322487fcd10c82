/*
 * workflow.c: the workflow actor: one per (namespace id, workflow id), holding its runs.
 *
 * DESIGN
 *   Activation loads the current run from the store (current_executions, then its history,
 *   replayed through wf_apply); requests that arrive meanwhile wait in `deferred`. After a
 *   load, tasks the run still owes (a scheduled workflow task, activities not started) are
 *   dispatched to matching again: that is how the backlog survives a restart.
 *   The load begins with the first message, which may skip it: a blind start. When an
 *   actor's first message is a StartWorkflowExecution (without timeouts or cron, whose
 *   timers must not fire before the outcome is known), the workflow id is most likely new,
 *   so the run is created at once, its current_executions row written with a plain insert
 *   (GT_SQL_CURRENT_INSERT) instead of read first: one store read and a thread hop fewer
 *   per start. Until that commit is known everything else waits in `deferred`. If the id
 *   had a row after all, the batch fails with GT_EEXISTS (nothing of it written): the
 *   run is dropped, its effects undone before they ran, the load runs and the start is
 *   served again with the id's history known (reuse and conflict policies apply).
 *   This file routes messages and serves StartWorkflowExecution, DescribeWorkflowExecution
 *   and GetWorkflowExecutionHistory (with its long poll); wf_tasks.c serves the task RPCs.
 *
 * INVARIANTS
 *   - Requests are served in arrival order; none is served before the load finished, or
 *     (blind start) before the create committed, but the first workflow task's start and
 *     the worker's answer to it (serve_while_creating): both are speculative, their txn
 *     queued behind the create on the actor's store chain.
 *   - A GetWorkflowExecutionHistory answer contains only committed events.
 *
 * THREADS: the actor's home thread, except load_cb (a store thread) which only posts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/frontend/namespaces.h"
#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define HISTORY_LONG_POLL_MS 20000
#define DEADLINE_BUDGET_MS 1000
#define DEFAULT_HISTORY_PAGE 1000
#define KEEP_CLOSED_RUNS 4

typedef struct wf_load_msg {
  gt_msg_t hdr;
  int stage; /* 1: current_executions row; 2: executions row; 3: history */
  int64_t db_version;
  uint8_t *state; /* stage 2: the executions.state column */
  size_t state_len;
  int rc;
  int found;
  char run_id[37];
  char request_id[37];
  uint8_t *data;
  size_t len;
  workflow_t *wf;
} wf_load_msg_t;

static void load_msg_dtor(gt_msg_t *m) {
  free(((wf_load_msg_t *)m)->data);
  free(((wf_load_msg_t *)m)->state);
  free(m);
}

static void serve(workflow_t *wf, gt_rpc_t *rpc);

/* ---- activation ---- */

static void load_cb(void *ctx, int rc, const gt_rows_t *rows) {
  wf_load_msg_t *m = ctx;
  m->rc = rc;
  if (rc == 0 && rows && rows->nrows > 0) {
    m->found = 1;
    if (m->stage == 2) {
      m->db_version = gt_rows_at(rows, 0, 1)->i;
      const gt_val_t *st = gt_rows_at(rows, 0, 2);
      if (st->len && (m->state = malloc(st->len)) != NULL) {
        memcpy(m->state, st->p, st->len);
        m->state_len = st->len;
      }
    } else if (m->stage == 1) {
      const gt_val_t *run = gt_rows_at(rows, 0, 0), *req = gt_rows_at(rows, 0, 1);
      snprintf(m->run_id, sizeof(m->run_id), "%.*s", (int)run->len, (const char *)run->p);
      snprintf(m->request_id, sizeof(m->request_id), "%.*s", (int)req->len,
               req->p ? (const char *)req->p : "");
    } else {
      size_t total = 0;
      for (int r = 0; r < rows->nrows; r++)
        total += gt_rows_at(rows, r, 2)->len;
      m->data = malloc(total ? total : 1);
      if (!m->data)
        m->rc = GT_ENOMEM;
      for (int r = 0; m->data && r < rows->nrows; r++) {
        const gt_val_t *v = gt_rows_at(rows, r, 2);
        memcpy(m->data + m->len, v->p, v->len);
        m->len += v->len;
      }
    }
  }
  gt_actor_t *a = &m->wf->base;
  if (gt_actor_send(a, &m->hdr) != 0)
    load_msg_dtor(&m->hdr);
  gt_actor_release(a);
}

/* Queues the read of one activation stage. `from`: the previous stage's message, whose
 * executions.state moves on to this one (to be restored once the history is replayed). */
static int load_stage(workflow_t *wf, int stage, const char *run_id, int64_t db_version,
                      wf_load_msg_t *from) {
  wf_load_msg_t *m = calloc(1, sizeof(*m));
  if (!m)
    return GT_ENOMEM;
  if (from) {
    m->state = from->state;
    m->state_len = from->state_len;
    from->state = NULL;
    from->state_len = 0;
  }
  m->hdr.type = GT_MSG_LOADED;
  m->hdr.dtor = load_msg_dtor;
  m->stage = stage;
  m->wf = wf;
  m->db_version = db_version;
  gt_store_op_t op = {.expect_rows = -1};
  op.params[0] = gt_val_int(wf->shard);
  op.params[1] = gt_val_text(wf->ns_id);
  op.params[2] = gt_val_text(wf->workflow_id);
  if (stage == 1) {
    op.stmt = GT_SQL_CURRENT_GET;
    op.nparams = 3;
  } else if (stage == 2) {
    op.stmt = GT_SQL_EXECUTION_GET;
    op.nparams = 4;
    op.params[3] = gt_val_text(run_id);
    snprintf(m->run_id, sizeof(m->run_id), "%s", run_id);
  } else {
    op.stmt = GT_SQL_HISTORY_GET;
    op.nparams = 5;
    op.params[3] = gt_val_text(run_id);
    op.params[4] = gt_val_int(1);
    snprintf(m->run_id, sizeof(m->run_id), "%s", run_id);
  }
  gt_actor_retain(&wf->base);
  int rc = gt_store_read(wf->srv->store, &op, load_cb, m);
  if (rc != 0) {
    gt_actor_release(&wf->base);
    load_msg_dtor(&m->hdr);
  }
  return rc;
}

static void fail_deferred(workflow_t *wf, const char *why) {
  while (wf->deferred_head) {
    gt_rpc_t *r = wf->deferred_head;
    wf->deferred_head = r->next;
    r->next = NULL;
    if (r->hdr.type == GT_MSG_RECORD_STARTED)
      gt_matching_repark(r);
    else
      gt_rpc_reply_error(r, GT_GRPC_UNAVAILABLE, "%s", why);
  }
  wf->deferred_tail = NULL;
}

/* Begins loading run rid, named by a request or message, when it is not in memory (nor
 * known missing from the store): what named it then waits in `deferred` for the load.
 * Returns 1 when the load began, 0 when there is nothing to load (rid "" included). */
static int load_older_run(workflow_t *wf, const char *rid) {
  if (wf->broken || !*rid || wf_find_run(wf, rid) || wf_run_missing(wf, rid) ||
      load_stage(wf, 2, rid, 0, NULL) != 0)
    return 0;
  wf->loading = 1;
  wf->loading_older = 1;
  return 1;
}

/* Loads the run actor message x asks about when it is not in memory (wf_xmsg_older_run:
 * a recovery's check naming a parent's run closed by a continue-as-new, or a child's run
 * whose workflow id a newer run took). Returns 1 when the load began (x then waits for
 * it), 0 when x can be served now. */
static int load_for_xmsg(workflow_t *wf, const wf_xmsg_t *x) {
  return !wf->broken && load_older_run(wf, wf_xmsg_older_run(wf, x));
}

/* The workflow is known (loaded, or blindly created): serve what waited, in order. */
static void serve_deferred(workflow_t *wf) {
  while (wf->xdeferred_head && !wf->loading) {
    wf_xmsg_t *x = wf->xdeferred_head;
    if (load_for_xmsg(wf, x))
      return; /* x stays first: served (with what follows) once that run is in memory */
    wf->xdeferred_head = x->next;
    if (!wf->xdeferred_head)
      wf->xdeferred_tail = NULL;
    wf_on_xmsg(wf, x);
    wf_xmsg_free(x);
  }
  while (wf->deferred_head && !wf->loading) {
    gt_rpc_t *r = wf->deferred_head;
    wf->deferred_head = r->next;
    if (!wf->deferred_head)
      wf->deferred_tail = NULL;
    r->next = NULL;
    serve(wf, r);
  }
  /* recovery's resend goes after what waited: answers that arrived meanwhile are recorded,
   * and not asked for again */
  if (wf->xresend && !wf->loading && !wf->broken) {
    wf->xresend = 0;
    wf_xwf_resend(wf);
  }
}

static void loaded(workflow_t *wf) {
  wf->loading = 0;
  wf_run_t *run = wf->runs;
  if (run && wf_running(run)) {
    wf_arm_timers(wf, run);
    wf_arm_backoff(wf, run);
    wf_arm_run_timeout(wf, run);
    wf_rearm_after_load(wf, run);
    wf_act_rearm_after_load(wf, run);
    wf_txn_t *t = wf_txn_begin(wf, run);
    if (t) {
      wf_dispatch_pending(wf, run, t);
      /* a retried task was transient when the server stopped: schedule it again */
      if (run->wft_state == WFT_NONE && run->wft_attempt > 1)
        wf_schedule_wft(wf, run, t);
      /* no ops beyond the version bump: effects run once it is durable */
      wf_txn_commit(t);
    }
  }
  serve_deferred(wf);
}

/* An older run is in memory (or known missing): serve what waited for it (actor messages
 * too: they wait during any load). */
static void loaded_older(workflow_t *wf) {
  wf->loading = 0;
  wf->loading_older = 0;
  serve_deferred(wf);
}

/* The run a request names that may be older than those in memory (Describe, history,
 * query, delete), or "". */
static const char *named_run(const gt_rpc_t *rpc) {
  const pb_wfexec_t *ex = NULL;
  switch (rpc->kind) {
  case GT_RPC_DESCRIBE_WORKFLOW:
    ex = ((const Temporal__Api__Workflowservice__V1__DescribeWorkflowExecutionRequest *)
              rpc->req)->execution;
    break;
  case GT_RPC_GET_HISTORY:
    ex = ((const Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryRequest *)
              rpc->req)->execution;
    break;
  case GT_RPC_HISTORY_REVERSE:
    ex = ((const Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryReverseRequest *)
              rpc->req)->execution;
    break;
  case GT_RPC_QUERY:
    ex = ((const Temporal__Api__Workflowservice__V1__QueryWorkflowRequest *)rpc->req)->execution;
    break;
  case GT_RPC_DELETE_WORKFLOW:
    ex = ((const Temporal__Api__Workflowservice__V1__DeleteWorkflowExecutionRequest *)
              rpc->req)->workflow_execution;
    break;
  default:
    break;
  }
  return ex && ex->run_id ? ex->run_id : "";
}

static void on_loaded(workflow_t *wf, wf_load_msg_t *m) {
  if (m->rc != 0) {
    gt_log_warn("HIST-LOAD-FAILED", "workflow %s: %s", wf->workflow_id, gt_strerror(m->rc));
    wf->loading = 0;
    wf->broken = 1;
    fail_deferred(wf, "could not load the workflow, please retry");
    gt_actor_stop(&wf->base);
    return;
  }
  if (m->stage == 1) {
    if (!m->found) {
      loaded(wf);
      return;
    }
    snprintf(wf->create_request_id, sizeof(wf->create_request_id), "%s", m->request_id);
    if (load_stage(wf, 2, m->run_id, 0, NULL) != 0) {
      m->rc = GT_ENOMEM;
      m->stage = 0;
      on_loaded(wf, m);
    }
    return;
  }
  if (m->stage == 2 && wf->loading_older && !m->found) {
    /* a request named a run that does not exist: it gets NOT_FOUND */
    snprintf(wf->missing_run_id, sizeof(wf->missing_run_id), "%s", m->run_id);
    loaded_older(wf);
    return;
  }
  if (m->stage == 2) {
    if (!m->found || load_stage(wf, 3, m->run_id, m->db_version, m) != 0) {
      m->rc = m->found ? GT_ENOMEM : GT_ECORRUPT;
      on_loaded(wf, m);
    }
    return;
  }
  wf_run_t *run = wf_run_new(wf, m->run_id);
  int rc = run ? wf_load_history(run, m->data, m->len) : GT_ENOMEM;
  if (rc == 0) {
    run->request_id = strdup(wf->create_request_id);
    run->db_version = m->db_version;
    wf_restore_state(run, m->state, m->state_len);
  }
  if (rc != 0) {
    gt_log_error("HIST-REPLAY-FAILED", "workflow %s run %s: %s", wf->workflow_id, m->run_id,
                 gt_strerror(rc));
    m->rc = rc;
    on_loaded(wf, m);
    return;
  }
  if (wf->loading_older) {
    /* an older run: it goes behind the current one (wf_run_new put it first); with none
     * in memory, there is none (the load found no current_executions row, or the current
     * run was deleted since): it is not current itself (wf_delete.c) */
    wf->runs = run->next;
    run->next = NULL;
    run->detached = !wf->runs;
    wf_run_t **pp = &wf->runs;
    while (*pp)
      pp = &(*pp)->next;
    *pp = run;
    loaded_older(wf);
    return;
  }
  loaded(wf);
}

/* ---- StartWorkflowExecution ---- */

typedef Temporal__Api__Workflowservice__V1__StartWorkflowExecutionRequest start_req_t;
typedef Temporal__Api__Workflowservice__V1__SignalWithStartWorkflowExecutionRequest sws_req_t;

static void params_from_start(start_params_t *p, const start_req_t *r) {
  *p = (start_params_t){.eager = r->request_eager_execution,
                        .workflow_type = r->workflow_type, .task_queue = r->task_queue,
                        .input = r->input, .exec_timeout = r->workflow_execution_timeout,
                        .run_timeout = r->workflow_run_timeout,
                        .task_timeout = r->workflow_task_timeout, .identity = r->identity,
                        .request_id = r->request_id, .cron_schedule = r->cron_schedule,
                        .reuse_policy = r->workflow_id_reuse_policy,
                        .conflict_policy = r->workflow_id_conflict_policy,
                        .retry_policy = r->retry_policy, .memo = r->memo,
                        .search_attributes = r->search_attributes, .header = r->header,
                        .start_delay = r->workflow_start_delay};
}

static void params_from_sws(start_params_t *p, const sws_req_t *r) {
  *p = (start_params_t){.workflow_type = r->workflow_type, .task_queue = r->task_queue,
                        .input = r->input, .exec_timeout = r->workflow_execution_timeout,
                        .run_timeout = r->workflow_run_timeout,
                        .task_timeout = r->workflow_task_timeout, .identity = r->identity,
                        .request_id = r->request_id, .cron_schedule = r->cron_schedule,
                        .reuse_policy = r->workflow_id_reuse_policy,
                        .conflict_policy = r->workflow_id_conflict_policy,
                        .retry_policy = r->retry_policy, .memo = r->memo,
                        .search_attributes = r->search_attributes, .header = r->header,
                        .start_delay = r->workflow_start_delay};
}

static void reply_started(gt_rpc_t *rpc, const wf_run_t *run, int started, wf_txn_t *t) {
  Temporal__Api__Workflowservice__V1__StartWorkflowExecutionResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__START_WORKFLOW_EXECUTION_RESPONSE__INIT;
  r.run_id = (char *)run->run_id;
  r.started = started;
  r.status = run->status;
  if (t)
    wf_txn_reply_msg(t, rpc, &r.base);
  else
    gt_rpc_reply_msg(rpc, &r.base);
}

static void reply_already_started(gt_rpc_t *rpc, const wf_run_t *run, const char *fmt) {
  Temporal__Api__Errordetails__V1__WorkflowExecutionAlreadyStartedFailure d =
      TEMPORAL__API__ERRORDETAILS__V1__WORKFLOW_EXECUTION_ALREADY_STARTED_FAILURE__INIT;
  d.start_request_id = run->request_id ? run->request_id : "";
  d.run_id = (char *)run->run_id;
  char msg[1200];
  snprintf(msg, sizeof(msg), fmt, rpc->workflow_id, run->run_id);
  gt_rpc_reply_error_detail(rpc, GT_GRPC_ALREADY_EXISTS, &d.base, "%s", msg);
}

/* TERMINATE_EXISTING / TERMINATE_IF_RUNNING: the running run ends, then the start goes
 * on (its transaction follows this one). Returns 1, or 0 after replying. */
static int terminate_for_start(workflow_t *wf, wf_run_t *cur, gt_rpc_t *rpc) {
  wf_txn_t *t = wf_txn_begin(wf, cur);
  if (!t) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return 0;
  }
  wf_terminate_run(wf, cur, "terminated by a new start with the same workflow id", NULL, "");
  wf_txn_commit(t);
  return 1;
}

/* Applies the id conflict and reuse policies. Returns 1 when the start may go on. */
static int may_start(workflow_t *wf, gt_rpc_t *rpc, const start_params_t *req) {
  wf_run_t *cur = wf_find_run(wf, "");
  if (!cur)
    return 1;
  if (req->request_id && *req->request_id && cur->request_id &&
      strcmp(cur->request_id, req->request_id) == 0) {
    reply_started(rpc, cur, 1, NULL); /* the same request again */
    return 0;
  }
  if (wf_running(cur)) {
    switch (req->conflict_policy) {
    case TEMPORAL__API__ENUMS__V1__WORKFLOW_ID_CONFLICT_POLICY__WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING:
      reply_started(rpc, cur, 0, NULL);
      return 0;
    case TEMPORAL__API__ENUMS__V1__WORKFLOW_ID_CONFLICT_POLICY__WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING:
      return terminate_for_start(wf, cur, rpc);
    default:
      if (req->reuse_policy ==
          TEMPORAL__API__ENUMS__V1__WORKFLOW_ID_REUSE_POLICY__WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING)
        return terminate_for_start(wf, cur, rpc);
      reply_already_started(rpc, cur,
                            "Workflow execution is already running. WorkflowId: %s, RunId: %s.");
      return 0;
    }
  }
  switch (req->reuse_policy) {
  case TEMPORAL__API__ENUMS__V1__WORKFLOW_ID_REUSE_POLICY__WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE:
    reply_already_started(rpc, cur,
                          "Workflow execution already finished and WorkflowIdReusePolicy is "
                          "REJECT_DUPLICATE. WorkflowId: %s, RunId: %s.");
    return 0;
  case TEMPORAL__API__ENUMS__V1__WORKFLOW_ID_REUSE_POLICY__WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY:
    if (cur->status == PB_STATUS(COMPLETED)) {
      reply_already_started(rpc, cur,
                            "Workflow execution already finished successfully. WorkflowId: %s, "
                            "RunId: %s. Workflow Id reuse policy: allow duplicate workflow Id "
                            "if last run failed.");
      return 0;
    }
    return 1;
  default:
    return 1;
  }
}

void wf_drop_old_runs(workflow_t *wf) {
  int n = 0;
  for (wf_run_t **pp = &wf->runs; *pp;) {
    if (++n > KEEP_CLOSED_RUNS && !wf_running(*pp)) {
      wf_run_t *dead = *pp;
      *pp = dead->next;
      wf_run_free(dead);
    } else {
      pp = &(*pp)->next;
    }
  }
}

wf_run_t *wf_create_run(workflow_t *wf, const start_params_t *req, wf_txn_t **out) {
  char run_id[37];
  if (req->run_id && *req->run_id)
    snprintf(run_id, sizeof(run_id), "%s", req->run_id);
  else
    wf_new_run_id(run_id);
  wf_run_t *run = wf_run_new(wf, run_id);
  wf_txn_t *t = run ? wf_txn_begin(wf, run) : NULL;
  if (!t) {
    if (run) {
      wf->runs = run->next;
      wf_run_free(run);
    }
    return NULL;
  }
  t->create = 1;
  run->request_id = gt_strdup0(req->request_id);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__WorkflowExecutionStartedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  pb_dur_t task_to, run_to, exec_to;
  pb_ts_t expiration;
  a.workflow_type = req->workflow_type;
  tq.name = req->task_queue->name;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  a.task_queue = &tq;
  a.input = req->input;
  int64_t exec_ms = gt_pb_dur_ms(req->exec_timeout);
  int64_t run_ms = gt_pb_dur_ms(req->run_timeout);
  int64_t task_ms = gt_pb_dur_ms(req->task_timeout);
  int64_t delay_ms = gt_pb_dur_ms(req->start_delay);
  if (!req->start_delay && req->cron_schedule && *req->cron_schedule)
    delay_ms = wf_cron_first_backoff_ms(req->cron_schedule); /* until it first fires */
  pb_dur_t backoff;
  if (delay_ms > 0) { /* Temporal's first workflow task backoff */
    gt_pb_dur(&backoff, delay_ms);
    a.first_workflow_task_backoff = &backoff;
  } else {
    delay_ms = 0;
  }
  if (run_ms == 0 || (exec_ms > 0 && run_ms > exec_ms))
    run_ms = exec_ms;
  if (task_ms <= 0)
    task_ms = 10000;
  if (task_ms > 120000)
    task_ms = 120000; /* Temporal caps the workflow task timeout at 2 minutes */
  gt_pb_dur(&exec_to, exec_ms);
  gt_pb_dur(&run_to, run_ms);
  gt_pb_dur(&task_to, task_ms);
  a.workflow_execution_timeout = &exec_to;
  a.workflow_run_timeout = &run_to;
  a.workflow_task_timeout = &task_to;
  if (req->expiration_ns > 0) {
    gt_pb_ts(&expiration, req->expiration_ns);
    a.workflow_execution_expiration_time = &expiration;
  } else if (exec_ms > 0) { /* as the run timeout, from the execution time */
    gt_pb_ts(&expiration, gt_wall_ns() + (exec_ms + delay_ms) * 1000000);
    a.workflow_execution_expiration_time = &expiration;
  }
  a.identity = req->identity;
  a.original_execution_run_id = run_id;
  a.first_execution_run_id = req->first_run_id && *req->first_run_id ? (char *)req->first_run_id : run_id;
  a.continued_execution_run_id = (char *)(req->continued_run_id ? req->continued_run_id : "");
  a.initiator = req->initiator;
  a.continued_failure = req->continued_failure;
  a.last_completion_result = req->last_completion_result;
  a.attempt = req->attempt > 0 ? req->attempt : 1;
  a.retry_policy = req->retry_policy;
  a.memo = req->memo;
  a.search_attributes = req->search_attributes;
  a.header = req->header;
  a.workflow_id = wf->workflow_id;
  a.cron_schedule = req->cron_schedule;
  pb_wfexec_t parent = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  gt_ns_info_t parent_ns = {0};
  if (req->parent_workflow_id && *req->parent_workflow_id) {
    gt_namespaces_get_by_id(wf->srv->namespaces, req->parent_ns_id, &parent_ns);
    parent.workflow_id = (char *)req->parent_workflow_id;
    parent.run_id = (char *)req->parent_run_id;
    a.parent_workflow_namespace = parent_ns.name;
    a.parent_workflow_namespace_id = (char *)req->parent_ns_id;
    a.parent_workflow_execution = &parent;
    a.parent_initiated_event_id = req->parent_initiated_id;
    run->parent_close_policy = req->parent_close_policy; /* no event carries it here */
  }
  ev.event_type = PB_EV(WORKFLOW_EXECUTION_STARTED);
  ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES);
  ev.workflow_execution_started_event_attributes = &a;
  wf_emit(wf, run, &ev, 0);
  if (req->signal)
    wf_emit_signal(wf, run, req->signal->signal_name, req->signal->signal_input,
                   req->signal->identity, req->signal->header, req->signal->request_id);
  run->wft_attempt = 1;
  /* eager workflow start (as Temporal: not for a cron workflow, whose first task waits,
   * nor for a delayed start) */
  run->wft_eager = req->eager && wf->srv->cfg->eager_workflow_start &&
                   (!req->cron_schedule || !*req->cron_schedule) && !delay_ms;
  if (run->backoff_pending) /* the first task once the delay is over */
    wf_arm_backoff(wf, run);
  else
    wf_schedule_wft(wf, run, t);
  wf_arm_run_timeout(wf, run);
  *out = t;
  return run;
}

void wf_start_next_run(workflow_t *wf, const wf_run_t *prev, start_params_t *p,
                       const char *why) {
  Temporal__Api__Common__V1__Memo *memo = NULL;
  Temporal__Api__Common__V1__SearchAttributes *sa = NULL;
  if (!p->memo && prev->memo)
    p->memo = memo = (void *)protobuf_c_message_unpack(
        &temporal__api__common__v1__memo__descriptor, NULL, prev->memo_len, prev->memo);
  if (!p->search_attributes && prev->search_attrs)
    p->search_attributes = sa = (void *)protobuf_c_message_unpack(
        &temporal__api__common__v1__search_attributes__descriptor, NULL,
        prev->search_attrs_len, prev->search_attrs);
  wf_txn_t *t = NULL;
  if (wf_create_run(wf, p, &t))
    wf_txn_commit(t);
  else
    gt_log_error("HIST-NEXT-RUN-FAILED", "workflow %s: could not start the next run (%s)",
                 wf->workflow_id, why);
  if (memo)
    protobuf_c_message_free_unpacked(&memo->base, NULL);
  if (sa)
    protobuf_c_message_free_unpacked(&sa->base, NULL);
  wf_drop_old_runs(wf);
}

void wf_start_again(workflow_t *wf, wf_run_t *prev, const char *run_id, int initiator,
                    int next_attempt, pb_payloads_t *result, pb_failure_t *failure,
                    int64_t backoff_ms, const char *why) {
  pb_event_t *start = prev->n_ev ? wf_event_unpack(prev, 0) : NULL;
  const Temporal__Api__History__V1__WorkflowExecutionStartedEventAttributes *s =
      start ? start->workflow_execution_started_event_attributes : NULL;
  if (!s) {
    gt_log_error("HIST-NEXT-RUN-FAILED", "workflow %s: could not start the next run (%s)",
                 wf->workflow_id, why);
    if (start)
      protobuf_c_message_free_unpacked(&start->base, NULL);
    return;
  }
  pb_dur_t exec_to, delay;
  gt_pb_dur(&exec_to, prev->exec_timeout_ms);
  gt_pb_dur(&delay, backoff_ms);
  start_params_t p = {
      .workflow_type = s->workflow_type, .task_queue = s->task_queue, .input = s->input,
      .exec_timeout = &exec_to, .run_timeout = s->workflow_run_timeout,
      .task_timeout = s->workflow_task_timeout, .identity = "", .request_id = "",
      .cron_schedule = prev->cron_schedule, .retry_policy = s->retry_policy,
      .header = s->header, .run_id = run_id, /* memo, search attributes: prev's now */
      .first_run_id = prev->first_run_id, .continued_run_id = prev->run_id,
      .initiator = initiator, .continued_failure = failure,
      .last_completion_result = result ? result : s->last_completion_result,
      .parent_ns_id = prev->parent_ns_id, .parent_workflow_id = prev->parent_workflow_id,
      .parent_run_id = prev->parent_run_id, .parent_initiated_id = prev->parent_initiated_id,
      .parent_close_policy = prev->parent_close_policy,
      .expiration_ns = prev->expiration_ns, .start_delay = &delay,
      .attempt = next_attempt ? s->attempt + 1 : 1};
  wf_start_next_run(wf, prev, &p, why);
  protobuf_c_message_free_unpacked(&start->base, NULL);
}

/* Eager workflow start: the reply carries the run's first workflow task, started for the
 * client's own worker (StartWorkflowExecutionResponse, encoded here: 1 run_id,
 * 2 eager_workflow_task, 3 started, 5 status). A task that cannot be encoded is left to
 * time out and go to matching (wf_wft_start_eager); the reply is then a plain one. */
static void reply_started_eager(workflow_t *wf, gt_rpc_t *rpc, wf_run_t *run, wf_txn_t *t) {
  const start_req_t *req = (const void *)rpc->req;
  gt_buf_t task, b;
  gt_buf_init(&task);
  gt_buf_init(&b);
  if (wf_wft_start_eager(wf, run, req->identity, &task) != 0) {
    gt_buf_fini(&task);
    reply_started(rpc, run, 1, t);
    return;
  }
  gt_buf_field_bytes(&b, 1, run->run_id, strlen(run->run_id));
  gt_buf_field_bytes(&b, 2, task.p, task.len);
  gt_buf_field_varint(&b, 3, 1);
  gt_buf_field_varint(&b, 5, (uint64_t)run->status);
  gt_buf_fini(&task);
  wf_txn_reply(t, rpc, &b);
}

/* Creates a run and replies to the start (or signal-with-start). */
static void start_run(workflow_t *wf, gt_rpc_t *rpc, const start_params_t *req) {
  wf_txn_t *t = NULL;
  wf_run_t *run = wf_create_run(wf, req, &t);
  if (!run) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (run->wft_eager) {
    reply_started_eager(wf, rpc, run, t);
  } else if (req->signal) {
    Temporal__Api__Workflowservice__V1__SignalWithStartWorkflowExecutionResponse r =
        TEMPORAL__API__WORKFLOWSERVICE__V1__SIGNAL_WITH_START_WORKFLOW_EXECUTION_RESPONSE__INIT;
    r.run_id = run->run_id;
    r.started = 1;
    wf_txn_reply_msg(t, rpc, &r.base);
  } else {
    reply_started(rpc, run, 1, t);
  }
  wf_txn_commit(t);
  wf_drop_old_runs(wf);
}

static void on_start(workflow_t *wf, gt_rpc_t *rpc) {
  start_params_t p;
  params_from_start(&p, (const void *)rpc->req);
  if (may_start(wf, rpc, &p))
    start_run(wf, rpc, &p);
}

static void on_signal_with_start(workflow_t *wf, gt_rpc_t *rpc) {
  const sws_req_t *req = (const void *)rpc->req;
  wf_run_t *cur = wf_find_run(wf, "");
  if (wf_running(cur)) {
    wf_txn_t *t = wf_txn_begin(wf, cur);
    if (!t) {
      gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    wf_emit_signal(wf, cur, req->signal_name, req->signal_input, req->identity, req->header,
                   req->request_id);
    wf_need_wft(wf, cur, t);
    Temporal__Api__Workflowservice__V1__SignalWithStartWorkflowExecutionResponse r =
        TEMPORAL__API__WORKFLOWSERVICE__V1__SIGNAL_WITH_START_WORKFLOW_EXECUTION_RESPONSE__INIT;
    r.run_id = cur->run_id;
    r.started = 0;
    wf_txn_reply_msg(t, rpc, &r.base);
    wf_txn_commit(t);
    return;
  }
  start_params_t p;
  params_from_sws(&p, req);
  p.signal = req;
  if (may_start(wf, rpc, &p))
    start_run(wf, rpc, &p);
}

/* ---- DescribeWorkflowExecution ---- */

void wf_reply_not_found(gt_rpc_t *rpc, const char *run_id) {
  if (run_id && *run_id)
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND,
                       "Workflow execution not found. WorkflowId: %s, RunId: %s.",
                       rpc->workflow_id, run_id);
  else
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow not found for ID: %s",
                       rpc->workflow_id);
}

static void on_describe(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__DescribeWorkflowExecutionRequest *req =
      (const void *)rpc->req;
  const char *run_id = req->execution ? req->execution->run_id : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  if (!run || run->committed_ev == 0) {
    wf_reply_not_found(rpc, run_id);
    return;
  }
  Temporal__Api__Workflowservice__V1__DescribeWorkflowExecutionResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__DESCRIBE_WORKFLOW_EXECUTION_RESPONSE__INIT;
  Temporal__Api__Workflow__V1__WorkflowExecutionConfig cfg =
      TEMPORAL__API__WORKFLOW__V1__WORKFLOW_EXECUTION_CONFIG__INIT;
  Temporal__Api__Workflow__V1__WorkflowExecutionInfo info =
      TEMPORAL__API__WORKFLOW__V1__WORKFLOW_EXECUTION_INFO__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_dur_t exec_to, run_to, task_to;
  pb_ts_t start, close, exect;
  tq.name = run->task_queue;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  cfg.task_queue = &tq;
  gt_pb_dur(&exec_to, run->exec_timeout_ms);
  gt_pb_dur(&run_to, run->run_timeout_ms);
  gt_pb_dur(&task_to, run->task_timeout_ms);
  cfg.workflow_execution_timeout = &exec_to;
  cfg.workflow_run_timeout = &run_to;
  cfg.default_workflow_task_timeout = &task_to;
  ex.workflow_id = wf->workflow_id;
  ex.run_id = run->run_id;
  info.execution = &ex;
  wt.name = run->workflow_type;
  info.type = &wt;
  gt_pb_ts(&start, run->start_ns);
  gt_pb_ts(&exect, wf_run_execution_ns(run));
  info.start_time = &start;
  info.execution_time = &exect;
  if (!wf_running(run)) {
    gt_pb_ts(&close, run->close_ns);
    info.close_time = &close;
  }
  info.status = run->status;
  info.history_length = (int64_t)run->committed_ev;
  info.task_queue = run->task_queue;
  info.state_transition_count = run->transitions;
  info.history_size_bytes = (int64_t)run->hist.len;
  info.root_execution = &ex;
  info.first_run_id = run->run_id;
  r.execution_config = &cfg;
  r.workflow_execution_info = &info;
  if (run->memo)
    info.memo = (void *)protobuf_c_message_unpack(&temporal__api__common__v1__memo__descriptor,
                                                  NULL, run->memo_len, run->memo);
  if (run->search_attrs)
    info.search_attributes = (void *)protobuf_c_message_unpack(
        &temporal__api__common__v1__search_attributes__descriptor, NULL, run->search_attrs_len,
        run->search_attrs);

  /* pending activities */
  Temporal__Api__Workflow__V1__PendingActivityInfo *pa = NULL, **pap = NULL;
  pb_ts_t *ts = NULL;
  size_t na = wf_running(run) ? run->n_acts : 0;
  if (na) {
    pa = calloc(na, sizeof(*pa));
    pap = calloc(na, sizeof(*pap));
    ts = calloc(na, sizeof(*ts));
  }
  pb_acttype_t *types = na ? calloc(na, sizeof(*types)) : NULL;
  if (na && (!pa || !pap || !ts || !types))
    na = 0;
  for (size_t i = 0; i < na; i++) {
    wf_activity_t *a = &run->acts[i];
    temporal__api__workflow__v1__pending_activity_info__init(&pa[i]);
    temporal__api__common__v1__activity_type__init(&types[i]);
    pa[i].activity_id = a->activity_id;
    pb_event_t *sev = wf_event_unpack(run, a->ev_index);
    types[i].name = strdup(sev && sev->activity_task_scheduled_event_attributes &&
                                   sev->activity_task_scheduled_event_attributes->activity_type
                               ? sev->activity_task_scheduled_event_attributes->activity_type->name
                               : "");
    if (sev)
      protobuf_c_message_free_unpacked(&sev->base, NULL);
    pa[i].activity_type = &types[i];
    pa[i].state = a->started
        ? TEMPORAL__API__ENUMS__V1__PENDING_ACTIVITY_STATE__PENDING_ACTIVITY_STATE_STARTED
        : TEMPORAL__API__ENUMS__V1__PENDING_ACTIVITY_STATE__PENDING_ACTIVITY_STATE_SCHEDULED;
    pa[i].attempt = a->attempt;
    pa[i].maximum_attempts = a->max_attempts;
    gt_pb_ts(&ts[i], a->scheduled_ns);
    pa[i].scheduled_time = &ts[i];
    pa[i].last_worker_identity = a->identity ? a->identity : "";
    pap[i] = &pa[i];
  }
  r.n_pending_activities = na;
  r.pending_activities = pap;
  gt_rpc_reply_msg(rpc, &r.base);
  if (info.memo)
    protobuf_c_message_free_unpacked(&info.memo->base, NULL);
  if (info.search_attributes)
    protobuf_c_message_free_unpacked(&info.search_attributes->base, NULL);
  for (size_t i = 0; types && i < na; i++)
    free(types[i].name);
  free(types);
  free(pa);
  free(pap);
  free(ts);
}

/* ---- GetWorkflowExecutionHistory ---- */

typedef Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryRequest hist_req_t;

static int close_filter(const hist_req_t *req) {
  return req->history_event_filter_type ==
         TEMPORAL__API__ENUMS__V1__HISTORY_EVENT_FILTER_TYPE__HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT;
}

/* Page tokens: "GTH1:<run id>:<next event index>". */
static int parse_page_token(const hist_req_t *req, const wf_run_t *run, size_t *from) {
  *from = 0;
  if (!req->next_page_token.len)
    return 0;
  char buf[96];
  if (req->next_page_token.len >= sizeof(buf))
    return GT_EINVAL;
  memcpy(buf, req->next_page_token.data, req->next_page_token.len);
  buf[req->next_page_token.len] = 0;
  char rid[37];
  unsigned long long idx;
  if (sscanf(buf, "GTH1:%36[0-9a-f-]:%llu", rid, &idx) != 2 || strcmp(rid, run->run_id) != 0)
    return GT_EINVAL;
  *from = (size_t)idx;
  return 0;
}

size_t wf_visible_events(const wf_run_t *run) {
  size_t n = run->committed_ev;
  if (wf_running(run) && run->wft_state == WFT_STARTED && !run->wft_transient &&
      run->wft_started_id == (int64_t)n + 1 && run->n_ev > n)
    n++;
  return n;
}

/* Answers now if there is something to answer; returns 0 when the caller should wait. */
static int try_answer_history(wf_run_t *run, gt_rpc_t *rpc, int force) {
  const hist_req_t *req = (const void *)rpc->req;
  size_t from;
  if (parse_page_token(req, run, &from) != 0) {
    gt_rpc_reply_error(rpc, GT_GRPC_INVALID_ARGUMENT, "Invalid NextPageToken.");
    return 1;
  }
  /* a long poll sees only what is written: its next page starts after what it got */
  size_t committed = req->wait_new_event ? run->committed_ev : wf_visible_events(run);
  int closed = !wf_running(run) && committed == run->n_ev;
  size_t lo = from, hi = from;
  char token[96] = "";
  if (close_filter(req)) {
    if (closed) {
      lo = committed - 1;
      hi = committed;
    } else if (!force && req->wait_new_event) {
      return 0;
    } else {
      snprintf(token, sizeof(token), "GTH1:%s:%zu", run->run_id, from);
    }
  } else {
    if (from >= committed && !closed && req->wait_new_event && !force)
      return 0;
    size_t page = req->maximum_page_size > 0 ? (size_t)req->maximum_page_size
                                             : DEFAULT_HISTORY_PAGE;
    hi = committed;
    if (from > committed)
      lo = hi = committed;
    if (hi - lo > page)
      hi = lo + page;
    if (hi < committed || (!closed && req->wait_new_event))
      snprintf(token, sizeof(token), "GTH1:%s:%zu", run->run_id, hi);
  }
  gt_buf_t b, extra;
  gt_buf_init(&b);
  gt_buf_init(&extra);
  /* the last page of a plain read (a worker fetching its task's history): a retried
   * task's events, as Temporal appends them; never to a long poll, whose next page would
   * show them again once written */
  if (!close_filter(req) && !req->wait_new_event && hi == committed)
    wf_transient_events(run, &extra);
  size_t len = extra.len;
  if (hi > lo)
    len += (hi < run->n_ev ? run->ev_off[hi] : run->hist.len) - run->ev_off[lo];
  gt_buf_field_len(&b, 1, len);
  wf_put_events(run, lo, hi, &b);
  gt_buf_put(&b, extra.p, extra.len);
  gt_buf_fini(&extra);
  if (*token)
    gt_buf_field_bytes(&b, 3, token, strlen(token));
  if (b.oom) {
    gt_buf_fini(&b);
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return 1;
  }
  gt_rpc_reply_bytes(rpc, b.p, b.len);
  gt_buf_fini(&b);
  return 1;
}

static void on_get_history(workflow_t *wf, gt_rpc_t *rpc) {
  const hist_req_t *req = (const void *)rpc->req;
  const char *run_id = req->execution ? req->execution->run_id : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  /* a run whose first commit is still in flight (a continue-as-new chain the client
   * follows faster than the writer) exists: a long poll waits for it */
  if (!run || (run->committed_ev == 0 && run->persisted_ev == 0)) {
    wf_reply_not_found(rpc, run_id);
    return;
  }
  if (try_answer_history(run, rpc, 0))
    return;
  uint64_t now = gt_now_ms(), wait = HISTORY_LONG_POLL_MS;
  if (rpc->deadline_ms) {
    if (rpc->deadline_ms <= now + DEADLINE_BUDGET_MS) {
      try_answer_history(run, rpc, 1);
      return;
    }
    if (rpc->deadline_ms - now - DEADLINE_BUDGET_MS < wait)
      wait = rpc->deadline_ms - now - DEADLINE_BUDGET_MS;
  }
  static uint64_t seq;
  rpc->timer_id = gt_actor_timer_start(&wf->base, wait,
                                       WF_TIMER_TOKEN(WF_TIMER_HISTORY_POLL, ++seq));
  rpc->next = run->waiters;
  run->waiters = rpc;
}

void wf_wake_waiters(workflow_t *wf, wf_run_t *run) {
  gt_rpc_t **pp = &run->waiters;
  while (*pp) {
    gt_rpc_t *r = *pp;
    *pp = r->next;
    r->next = NULL;
    uint64_t timer = r->timer_id;
    if (try_answer_history(run, r, 0)) {
      gt_actor_timer_cancel(&wf->base, timer);
    } else {
      r->next = *pp;
      *pp = r;
      pp = &r->next;
    }
  }
}

static int history_poll_timeout(workflow_t *wf, uint64_t timer_id) {
  for (wf_run_t *run = wf->runs; run; run = run->next) {
    for (gt_rpc_t **pp = &run->waiters; *pp; pp = &(*pp)->next) {
      if ((*pp)->timer_id == timer_id) {
        gt_rpc_t *r = *pp;
        *pp = r->next;
        r->next = NULL;
        try_answer_history(run, r, 1);
        return 1;
      }
    }
  }
  return 0;
}

/* ---- activation: a load, or a blind start ---- */

/* A StartWorkflowExecution that may be written before the workflow id is read: nothing in
 * it arms a timer at creation (run or execution timeout, start delay, cron), which could fire while the
 * outcome is unknown, when the actor drops timers. */
static int blind_start_ok(const gt_rpc_t *rpc) {
  if (rpc->hdr.type != GT_MSG_RPC || rpc->kind != GT_RPC_START_WORKFLOW)
    return 0;
  const start_req_t *r = (const void *)rpc->req;
  return gt_pb_dur_ms(r->workflow_execution_timeout) == 0 &&
         gt_pb_dur_ms(r->workflow_run_timeout) == 0 &&
         gt_pb_dur_ms(r->workflow_start_delay) <= 0 &&
         (!r->cron_schedule || !*r->cron_schedule);
}

static void begin_load(workflow_t *wf) {
  wf->loading = 1;
  if (load_stage(wf, 1, NULL, 0, NULL) != 0) {
    wf->loading = 0;
    wf->broken = 1; /* what waits is answered UNAVAILABLE by the stop */
    gt_actor_stop(&wf->base);
  }
}

/* The actor's first message: a blind start, or the load. */
static void activate(workflow_t *wf, gt_msg_t *first) {
  wf->lazy_load = 0;
  if (blind_start_ok((const gt_rpc_t *)first)) {
    wf->loading = 0; /* serve() starts the run now */
    wf->creating = 1;
    return;
  }
  begin_load(wf);
}

/* The blind start was served: its create waits for the store, and so does everything
 * else. If no transaction went out (an error was answered), load as usual. */
static void blind_start_sent(workflow_t *wf) {
  if (wf->txn_head) {
    wf->loading = 1;
    return;
  }
  wf->creating = 0; /* wf_create_run left no run behind without its transaction */
  begin_load(wf);
}

void wf_blind_start_made(workflow_t *wf) {
  wf->loading = 0;
  /* an eager first task's start-to-close timer waited for the outcome (wf_wft_start_eager) */
  wf_run_t *run = wf->runs;
  if (run && run->wft_state == WFT_STARTED && !run->wft_timer)
    wf_rearm_after_load(wf, run);
  serve_deferred(wf);
}

_Atomic long gt__wf_blind_starts_lost;

void wf_blind_start_lost(workflow_t *wf, wf_txn_t *t) {
  gt__wf_blind_starts_lost++;
  gt_log_debug("HIST-BLIND-START-LOST", "workflow %s has a row already: loading it",
               wf->workflow_id);
  /* nothing else ran while the create was in flight, and the run is the actor's only one */
  GT_ASSERT(!wf->txn_head && wf->runs == t->run && !t->run->next);
  /* the failure marked the chain; no batch of it is queued, and none would build on this
   * one: the store may take the activation's next txns */
  atomic_store_explicit(&wf->chain.failed, 0, memory_order_relaxed);
  /* Undo the effects, which have not run: the start goes back to the head of the queue
   * (answered after the load), its workflow task is dropped. */
  gt_rpc_t *again = wf_txn_drop_effects(t, 1);
  if (again) {
    gt_rpc_t *last = again;
    while (last->next)
      last = last->next;
    last->next = wf->deferred_head;
    if (!wf->deferred_head)
      wf->deferred_tail = last;
    wf->deferred_head = again;
  }
  wf->runs = NULL;
  wf_run_free(t->run);
  wf_txn_recycle(wf, t);
  begin_load(wf);
}

/* ---- the actor ---- */

/* While a blind start's create commits, its first workflow task is started speculatively
 * (wf_tasks.c record_wft_started) and the worker's answer served: a txn queued behind the
 * create on the actor's chain, so the create's commit no longer sits between the worker
 * and its next task. Only an answer that schedules activities (or nothing): one that
 * closes the run would start a next run while the create is unknown, and a timer it arms
 * could fire while the actor drops timers (wf_receive, until the create is known). Those
 * wait, as everything else does. If the create is lost, the answer fails with it
 * (wf_state.c wf_txn_done). */
static int serve_while_creating(const gt_rpc_t *rpc) {
  if (rpc->hdr.type == GT_MSG_RECORD_STARTED)
    return rpc->task->kind == GT_TASK_WORKFLOW;
  if (rpc->hdr.type != GT_MSG_RPC || rpc->kind != GT_RPC_RESPOND_WFT_COMPLETED)
    return 0;
  const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req =
      (const void *)rpc->req;
  if (req->n_messages)
    return 0;
  for (size_t i = 0; i < req->n_commands; i++)
    if (req->commands[i]->command_type != PB_CMD(SCHEDULE_ACTIVITY_TASK))
      return 0;
  return 1;
}

static void serve(workflow_t *wf, gt_rpc_t *rpc) {
  if (wf->loading && wf->creating && serve_while_creating(rpc)) {
    if (rpc->hdr.type == GT_MSG_RECORD_STARTED)
      wf_on_record_started(wf, rpc);
    else
      wf_on_wft_completed(wf, rpc);
    return;
  }
  if (wf->loading) {
    rpc->next = NULL;
    if (wf->deferred_tail)
      wf->deferred_tail->next = rpc;
    else
      wf->deferred_head = rpc;
    wf->deferred_tail = rpc;
    return;
  }
  /* a run that is not in memory (passivated, or older than the few kept): load it */
  if (rpc->hdr.type == GT_MSG_RPC && load_older_run(wf, named_run(rpc))) {
    serve(wf, rpc); /* deferred until the load ends */
    return;
  }
  if (wf->broken) {
    if (rpc->hdr.type == GT_MSG_RECORD_STARTED)
      gt_matching_repark(rpc);
    else
      gt_rpc_reply_error(rpc, GT_GRPC_UNAVAILABLE, "workflow is reloading, please retry");
    return;
  }
  if (rpc->hdr.type == GT_MSG_RECORD_STARTED) {
    if (rpc->task->kind == GT_TASK_QUERY)
      wf_on_query_started(wf, rpc);
    else
      wf_on_record_started(wf, rpc);
    return;
  }
  switch (rpc->kind) {
  case GT_RPC_START_WORKFLOW:
    on_start(wf, rpc);
    break;
  case GT_RPC_DESCRIBE_WORKFLOW:
    on_describe(wf, rpc);
    break;
  case GT_RPC_GET_HISTORY:
    on_get_history(wf, rpc);
    break;
  case GT_RPC_RESPOND_WFT_COMPLETED:
    wf_on_wft_completed(wf, rpc);
    break;
  case GT_RPC_RESPOND_WFT_FAILED:
    wf_on_wft_failed(wf, rpc);
    break;
  case GT_RPC_RESPOND_ACT_COMPLETED:
    wf_on_act_completed(wf, rpc);
    break;
  case GT_RPC_RESPOND_ACT_FAILED:
    wf_on_act_failed(wf, rpc);
    break;
  case GT_RPC_RESPOND_ACT_CANCELED:
    wf_on_act_canceled(wf, rpc);
    break;
  case GT_RPC_HEARTBEAT:
    wf_on_heartbeat(wf, rpc);
    break;
  case GT_RPC_SIGNAL:
    wf_on_signal(wf, rpc);
    break;
  case GT_RPC_SIGNAL_WITH_START:
    on_signal_with_start(wf, rpc);
    break;
  case GT_RPC_TERMINATE:
    wf_on_terminate(wf, rpc);
    break;
  case GT_RPC_REQUEST_CANCEL:
    wf_on_cancel_request(wf, rpc);
    break;
  case GT_RPC_QUERY:
    wf_on_query(wf, rpc);
    break;
  case GT_RPC_UPDATE:
    wf_on_update(wf, rpc);
    break;
  case GT_RPC_POLL_UPDATE:
    wf_on_poll_update(wf, rpc);
    break;
  case GT_RPC_RESET_STICKY:
    wf_on_reset_sticky(wf, rpc);
    break;
  case GT_RPC_ACT_COMPLETED_BY_ID:
  case GT_RPC_ACT_FAILED_BY_ID:
  case GT_RPC_ACT_CANCELED_BY_ID:
  case GT_RPC_HEARTBEAT_BY_ID:
    wf_on_activity_by_id(wf, rpc);
    break;
  case GT_RPC_HISTORY_REVERSE:
    wf_on_history_reverse(wf, rpc);
    break;
  case GT_RPC_RESPOND_QUERY:
    wf_on_query_answer(wf, rpc);
    break;
  case GT_RPC_DELETE_WORKFLOW:
    wf_on_delete(wf, rpc);
    break;
  default:
    gt_rpc_reply_error(rpc, GT_GRPC_UNIMPLEMENTED, "not served by the workflow actor");
  }
}

static void wf_receive(gt_actor_t *self, gt_msg_t *m) {
  workflow_t *wf = (workflow_t *)self;
  if (wf->lazy_load && m->type != GT_MSG_SHUTDOWN)
    activate(wf, m);
  switch (m->type) {
  case GT_MSG_RPC:
  case GT_MSG_RECORD_STARTED:
    serve(wf, (gt_rpc_t *)m); /* the rpc moved on */
    if (wf->creating && !wf->loading)
      blind_start_sent(wf);
    wf_maybe_passivate(wf);
    return;
  case GT_MSG_WRITE_DONE:
    wf_txn_done(wf, (wf_txn_t *)m);
    return; /* freed by wf_txn_done */
  case GT_MSG_LOADED:
    on_loaded(wf, (wf_load_msg_t *)m);
    wf_maybe_passivate(wf); /* what waited may all have been answered at once */
    break;
  case GT_MSG_ACTIVATE: /* recovery; activate() began the load, or another message did */
    wf->xresend = 1;
    if (!wf->loading && !wf->broken) {
      wf->xresend = 0;
      wf_xwf_resend(wf);
    }
    break;
  case GT_MSG_STICKY_GONE: {
    const gt_task_msg_t *tm = (const gt_task_msg_t *)m;
    /* while loading: the load dispatches the scheduled task to the normal queue anyway */
    if (!wf->loading && !wf->broken && tm->task)
      wf_on_sticky_gone(wf, tm->task->run_id, tm->task->scheduled_event_id);
    break;
  }
  case GT_MSG_XWF: {
    wf_xmsg_t *x = (wf_xmsg_t *)m;
    if (wf->loading || load_for_xmsg(wf, x)) { /* served once the workflow is loaded */
      x->next = NULL;
      if (wf->xdeferred_tail)
        wf->xdeferred_tail->next = x;
      else
        wf->xdeferred_head = x;
      wf->xdeferred_tail = x;
      return;
    }
    if (!wf->broken)
      wf_on_xmsg(wf, x);
    break;
  }
  case GT_MSG_TIMER: {
    gt_timer_msg_t *tm = (gt_timer_msg_t *)m;
    if ((tm->token >> 56) == WF_TIMER_HISTORY_POLL)
      history_poll_timeout(wf, tm->timer_id);
    else if (wf_on_query_timer(wf, tm->token, tm->timer_id))
      ;
    else if (wf_on_update_timer(wf, tm->token, tm->timer_id))
      ;
    else if (!wf->loading && !wf->broken)
      wf_on_timer(wf, tm);
    break;
  }
  default:
    break;
  }
  gt_msg_free(m);
}

static int wf_start(gt_actor_t *self, void *arg) {
  workflow_t *wf = (workflow_t *)self;
  wf->srv = arg;
  size_t kl;
  const char *key = gt_actor_key(self, &kl);
  size_t nl = strnlen(key, kl);
  if (nl >= sizeof(wf->ns_id) || nl + 1 > kl)
    return GT_EINVAL;
  memcpy(wf->ns_id, key, nl);
  wf->ns_id[nl] = 0;
  wf->workflow_id = strndup(key + nl + 1, kl - nl - 1);
  if (!wf->workflow_id)
    return GT_ENOMEM;
  wf->shard = gt_server_shard_of(wf->srv, wf->ns_id, wf->workflow_id);
  wf->epoch = wf_new_epoch();
  wf->loading = 1;
  wf->lazy_load = 1; /* the first message begins it (activate) */
  return 0;
}

static void wf_stop(gt_actor_t *self) {
  workflow_t *wf = (workflow_t *)self;
  fail_deferred(wf, "server is shutting down");
  wf_queries_fail(wf, "server is shutting down");
  while (wf->xdeferred_head) {
    wf_xmsg_t *x = wf->xdeferred_head;
    wf->xdeferred_head = x->next;
    wf_xmsg_free(x);
  }
  while (wf->runs) {
    wf_run_t *r = wf->runs;
    wf->runs = r->next;
    wf_run_free(r);
  }
  wf_txn_spare_free(wf);
  free(wf->workflow_id);
}

static int wf_describe_self(gt_actor_t *self, char *buf, size_t len) {
  workflow_t *wf = (workflow_t *)self;
  wf_run_t *r = wf->runs;
  return snprintf(buf, len, "workflow_id=%s runs=%s status=%d events=%zu", wf->workflow_id,
                  r ? r->run_id : "-", r ? r->status : 0, r ? r->n_ev : 0);
}

const gt_actor_type_t gt_workflow_actor_type = {
    .name = "workflow",
    .size = sizeof(workflow_t),
    .start = wf_start,
    .receive = wf_receive,
    .stop = wf_stop,
    .describe = wf_describe_self,
    /* passivation (wf_maybe_passivate) must never lose a message */
    .redeliver_on_stop = 1,
};

int wf_run_sleeps(const wf_run_t *run, int64_t *due_ms) {
  if (run->wft_state != WFT_NONE || run->wft_transient || run->wft_attempt > 1 ||
      run->n_acts || run->n_buf || run->updates)
    return 0;
  int64_t due = wf_run_deadline_ms(run);
  int64_t backoff_due = wf_run_execution_ns(run) / 1000000;
  if (run->backoff_pending && (!due || backoff_due < due))
    due = backoff_due;
  for (size_t i = 0; i < run->n_timers; i++) {
    int64_t t = (run->timers[i].fire_ns + 999999) / 1000000;
    if (!due || t < due)
      due = t;
  }
  *due_ms = due;
  return 1;
}

void wf_maybe_passivate(workflow_t *wf) {
  if (wf->loading || wf->broken || wf->txn_head || wf->deferred_head || wf->xdeferred_head ||
      wf->queries)
    return;
  int64_t due_ms = 0, registered = 0;
  for (wf_run_t *run = wf->runs; run; run = run->next) {
    if (run->waiters || (wf_running(run) && !wf_run_sleeps(run, &due_ms)))
      return;
    if (wf_running(run))
      registered = run->loaded_sleeps;
    for (wf_update_t *u = run->updates; u; u = u->next)
      if (u->waiters)
        return;
  }
  /* a deadline soon: staying costs less than a reload */
  if (due_ms && due_ms - gt_wall_ns() / 1000000 < WF_SLEEP_MIN_MS)
    return;
  /* A deadline the run already had when it was loaded is in the sleepers' heap (put there
   * by its previous passivation, or by the recovery): a workflow woken by signals while it
   * sleeps on a long timer must not pile up one wake-up per passivation. */
  if (due_ms && due_ms != registered && wf_sleep_until(wf, due_ms) != 0)
    return; /* nobody would wake it: stay */
  if (wf->runs && wf_running(wf->runs) && due_ms)
    gt_log_debug("HIST-SLEEP", "workflow %s passivated, asleep until %lld ms (wall clock)",
                 wf->workflow_id, (long long)due_ms);
  else if (wf->runs && wf_running(wf->runs))
    gt_log_debug("HIST-SLEEP", "workflow %s passivated, asleep until a message",
                 wf->workflow_id);
  /* every run is closed or asleep and nobody waits: the store has it all, memory need not */
  gt_actor_stop(&wf->base);
}

static size_t wf_key(char *key, size_t cap, const char *ns_id, const char *workflow_id) {
  size_t nl = strlen(ns_id), wl = strlen(workflow_id);
  if (nl + 1 + wl > cap)
    return 0;
  memcpy(key, ns_id, nl);
  key[nl] = 0;
  memcpy(key + nl + 1, workflow_id, wl);
  return nl + 1 + wl;
}

void gt_history_route(gt_server_t *srv, gt_rpc_t *rpc) {
  char key[GT_ACTOR_KEY_MAX];
  const char *ns = rpc->task ? rpc->task->ns_id : rpc->ns_id;
  const char *wid = rpc->task ? rpc->task->workflow_id : rpc->workflow_id;
  size_t kl = wf_key(key, sizeof(key), ns, wid ? wid : "");
  if (!kl) {
    if (rpc->task)
      gt_matching_repark(rpc);
    else
      gt_rpc_reply_error(rpc, GT_GRPC_INVALID_ARGUMENT, "WorkflowId length exceeds limit.");
    return;
  }
  if (gt_actor_send_key(srv->rt, &gt_workflow_actor_type, key, kl, srv, &rpc->hdr) != 0) {
    rpc->hdr.type = GT_MSG_RPC;
    gt_rpc_reply_error(rpc, GT_GRPC_UNAVAILABLE, "server is shutting down");
  }
}

int gt_history_recover(gt_server_t *srv, const char *ns_id, const char *workflow_id,
                       const void *state, size_t state_len) {
  int xwf;
  int64_t sleeps = wf_state_recovery(state, state_len, &xwf);
  if (sleeps == WF_STATE_AWAKE)
    return gt_history_activate(srv, ns_id, workflow_id) == 0 ? 1 : GT_ENOMEM;
  if (sleeps == WF_STATE_ASLEEP_UNTIL_MESSAGE && !xwf)
    return 0; /* the message that wakes it activates it */
  char key[GT_ACTOR_KEY_MAX];
  size_t kl = wf_key(key, sizeof(key), ns_id, workflow_id);
  if (!kl)
    return GT_EINVAL;
  /* a deadline that passed while the server was down: woken at once; registered even for
   * a run activated below, whose load takes the row's deadline as registered */
  if (sleeps != WF_STATE_ASLEEP_UNTIL_MESSAGE && wf_sleep_key_until(srv, key, kl, sleeps) != 0)
    return GT_ENOMEM;
  if (!xwf)
    return 0;
  /* messages to other workflows were in flight: the load sends them again */
  return gt_history_activate(srv, ns_id, workflow_id) == 0 ? 1 : GT_ENOMEM;
}

void gt_history_sticky_unavailable(gt_server_t *srv, gt_task_t *task) {
  char key[GT_ACTOR_KEY_MAX];
  size_t kl = wf_key(key, sizeof(key), task->ns_id, task->workflow_id);
  gt_task_msg_t *m = kl ? calloc(1, sizeof(*m)) : NULL;
  if (!m) {
    free(task); /* the sticky timeout still sends it to the normal queue */
    return;
  }
  m->hdr.type = GT_MSG_STICKY_GONE;
  m->hdr.dtor = gt_task_msg_dtor;
  m->task = task;
  if (gt_actor_send_key(srv->rt, &gt_workflow_actor_type, key, kl, srv, &m->hdr) != 0)
    gt_task_msg_dtor(&m->hdr);
}

int gt_history_activate(gt_server_t *srv, const char *ns_id, const char *workflow_id) {
  char key[GT_ACTOR_KEY_MAX];
  size_t kl = wf_key(key, sizeof(key), ns_id, workflow_id);
  if (!kl)
    return GT_EINVAL;
  /* a message, not gt_actor_get: the load begins with the actor's first message */
  gt_msg_t *m = calloc(1, sizeof(*m));
  if (!m)
    return GT_ENOMEM;
  m->type = GT_MSG_ACTIVATE;
  int rc = gt_actor_send_key(srv->rt, &gt_workflow_actor_type, key, kl, srv, m);
  if (rc != 0)
    gt_msg_free(m);
  return rc;
}
