/*
 * wf_query.c: QueryWorkflow, answered by a worker through a legacy query task.
 *
 * DESIGN
 *   A query is not an event: it changes nothing and is not persisted. The workflow actor
 *   keeps the waiting QueryWorkflow call, hands a query task (kind GT_TASK_QUERY) to the
 *   run's workflow task queue, and when a poller takes it replies to the poller with the
 *   run's committed history plus the query. RespondQueryTaskCompleted carries the answer
 *   back (its token names the query by a per-actor sequence number) and the waiting call is
 *   answered. A query that rode a workflow task is answered once the task's completion
 *   has committed, and a query task reaches its poller once the workflow's commits in
 *   flight have: a speculative workflow task (wf_tasks.c) may have shown the worker events
 *   that are not durable yet, and an answer must not show what may still be lost. A query no worker answers in time gets DEADLINE_EXCEEDED just before the
 *   caller's deadline. Reject conditions are applied first, as Temporal does.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define QUERY_DEFAULT_WAIT_MS 20000
#define DEADLINE_BUDGET_MS 300

typedef Temporal__Api__Workflowservice__V1__QueryWorkflowRequest query_req_t;

static wf_query_t *find_query(workflow_t *wf, int64_t seq) {
  for (wf_query_t *q = wf->queries; q; q = q->next)
    if (q->seq == seq)
      return q;
  return NULL;
}

static void query_free(wf_query_t *q) {
  free(q->result);
  free(q);
}

static void unlink_query(workflow_t *wf, wf_query_t *q) {
  for (wf_query_t **pp = &wf->queries; *pp; pp = &(*pp)->next) {
    if (*pp == q) {
      *pp = q->next;
      return;
    }
  }
}

static int rejected(const query_req_t *req, const wf_run_t *run) {
  switch (req->query_reject_condition) {
  case TEMPORAL__API__ENUMS__V1__QUERY_REJECT_CONDITION__QUERY_REJECT_CONDITION_NOT_OPEN:
    return !wf_running(run);
  case TEMPORAL__API__ENUMS__V1__QUERY_REJECT_CONDITION__QUERY_REJECT_CONDITION_NOT_COMPLETED_CLEANLY:
    return !wf_running(run) && run->status != PB_STATUS(COMPLETED);
  default:
    return 0;
  }
}

void wf_on_query(workflow_t *wf, gt_rpc_t *rpc) {
  const query_req_t *req = (const void *)rpc->req;
  const char *run_id = req->execution && req->execution->run_id ? req->execution->run_id : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  if (!run || run->committed_ev == 0) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow not found for ID: %s",
                       wf->workflow_id);
    return;
  }
  if (rejected(req, run)) {
    Temporal__Api__Workflowservice__V1__QueryWorkflowResponse r =
        TEMPORAL__API__WORKFLOWSERVICE__V1__QUERY_WORKFLOW_RESPONSE__INIT;
    Temporal__Api__Query__V1__QueryRejected qr = TEMPORAL__API__QUERY__V1__QUERY_REJECTED__INIT;
    qr.status = run->status;
    r.query_rejected = &qr;
    gt_rpc_reply_msg(rpc, &r.base);
    return;
  }
  if (wf_running(run) && run->backoff_pending) {
    /* As Temporal: no workflow task yet (a start delay, a cron or retry backoff). A query
     * that would time out before the first one is refused now; another waits for it. */
    uint64_t now = gt_now_ms();
    int64_t left = rpc->deadline_ms > now ? (int64_t)(rpc->deadline_ms - now)
                                          : QUERY_DEFAULT_WAIT_MS;
    int64_t first_ms = (wf_run_execution_ns(run) - gt_wall_ns()) / 1000000;
    if (first_ms >= left) {
      gt_rpc_reply_error(rpc, GT_GRPC_FAILED_PRECONDITION,
                         "Workflow task is not scheduled yet.");
      return;
    }
  }
  wf_query_t *q = calloc(1, sizeof(*q));
  gt_task_t *task = q ? gt_task_new(GT_TASK_QUERY, wf->ns_id, wf->workflow_id, run->run_id,
                                    wf->next_query_seq + 1, 1) : NULL;
  if (!task) {
    free(q);
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  q->seq = ++wf->next_query_seq;
  snprintf(q->run_id, sizeof(q->run_id), "%s", run->run_id);
  q->rpc = rpc;
  uint64_t now = gt_now_ms(), wait = QUERY_DEFAULT_WAIT_MS;
  if (rpc->deadline_ms)
    wait = rpc->deadline_ms > now + DEADLINE_BUDGET_MS ? rpc->deadline_ms - now - DEADLINE_BUDGET_MS
                                                       : 1;
  q->timer = gt_actor_timer_start(&wf->base, wait, WF_TIMER_TOKEN(WF_TIMER_QUERY, q->seq));
  q->next = wf->queries;
  wf->queries = q;
  /* Consistency: a query must see every event acknowledged before it. While a workflow
   * task is pending or events are buffered, it rides the next workflow task instead. */
  if (wf_running(run) && (run->wft_state != WFT_NONE || run->n_buf > 0 ||
                          run->backoff_pending)) {
    free(task);
    q->state = WFQ_WAITING;
    return;
  }
  q->state = WFQ_LEGACY;
  gt_matching_add_task(wf->srv, run->task_queue, task);
}

void wf_queries_attach(workflow_t *wf, wf_run_t *run, gt_buf_t *resp) {
  for (wf_query_t *q = wf->queries; q; q = q->next) {
    if (q->state != WFQ_WAITING || strcmp(q->run_id, run->run_id) != 0)
      continue;
    const query_req_t *qreq = (const void *)q->rpc->req;
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)q->seq);
    Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueResponse__QueriesEntry e =
        TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_WORKFLOW_TASK_QUEUE_RESPONSE__QUERIES_ENTRY__INIT;
    e.key = key;
    e.value = qreq->query;
    gt_buf_field_msg(resp, 14, &e.base);
    q->state = WFQ_IN_WFT;
  }
}

static void answer(workflow_t *wf, wf_query_t *q, int type, pb_payloads_t *result,
                   const char *error_message, pb_failure_t *failure) {
  unlink_query(wf, q);
  gt_actor_timer_cancel(&wf->base, q->timer);
  if (type == TEMPORAL__API__ENUMS__V1__QUERY_RESULT_TYPE__QUERY_RESULT_TYPE_ANSWERED) {
    Temporal__Api__Workflowservice__V1__QueryWorkflowResponse r =
        TEMPORAL__API__WORKFLOWSERVICE__V1__QUERY_WORKFLOW_RESPONSE__INIT;
    r.query_result = result;
    gt_rpc_reply_msg(q->rpc, &r.base);
  } else {
    Temporal__Api__Errordetails__V1__QueryFailedFailure d =
        TEMPORAL__API__ERRORDETAILS__V1__QUERY_FAILED_FAILURE__INIT;
    d.failure = failure;
    gt_rpc_reply_error_detail(q->rpc, GT_GRPC_INVALID_ARGUMENT, &d.base, "%s",
                              error_message && *error_message ? error_message
                                                              : "query failed");
  }
  query_free(q);
}

void wf_queries_after_wft(workflow_t *wf, wf_run_t *run,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *results,
    wf_txn_t *t) {
  wf_query_t *next;
  for (wf_query_t *q = wf->queries; q; q = next) {
    next = q->next;
    if (strcmp(q->run_id, run->run_id) != 0 || q->state != WFQ_IN_WFT)
      continue;
    const Temporal__Api__Query__V1__WorkflowQueryResult *res = NULL;
    char key[32];
    snprintf(key, sizeof(key), "%lld", (long long)q->seq);
    for (size_t i = 0; results && i < results->n_query_results; i++)
      if (strcmp(results->query_results[i]->key, key) == 0)
        res = results->query_results[i]->value;
    if (!res) {
      q->state = WFQ_WAITING; /* the task failed or dropped it: try again */
      continue;
    }
    /* kept packed until t commits (wf_queries_txn_done) */
    size_t n = protobuf_c_message_get_packed_size(&res->base);
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
      q->state = WFQ_WAITING;
      continue;
    }
    protobuf_c_message_pack(&res->base, p);
    free(q->result);
    q->result = p;
    q->result_len = n;
    q->answer_txn = t;
    q->state = WFQ_ANSWERED;
  }
  if (wf_running(run) && run->wft_state != WFT_NONE)
    return; /* the next workflow task will carry the waiting ones */
  for (wf_query_t *q = wf->queries; q; q = q->next) {
    if (q->state != WFQ_WAITING || strcmp(q->run_id, run->run_id) != 0)
      continue;
    gt_task_t *task = gt_task_new(GT_TASK_QUERY, wf->ns_id, wf->workflow_id, run->run_id,
                                  q->seq, 1);
    if (!task)
      continue; /* its timer answers it */
    q->state = WFQ_LEGACY;
    /* after the commit: the query task shows the committed history, which must already
     * hold this workflow task's end (a history stopping at WorkflowTaskScheduled is
     * refused by the SDK) */
    wf_txn_task(t, run->task_queue, task);
  }
}

void wf_queries_txn_done(workflow_t *wf, const wf_txn_t *t, int ok) {
  wf_query_t *next;
  for (wf_query_t *q = wf->queries; q; q = next) {
    next = q->next;
    if (q->state != WFQ_ANSWERED || q->answer_txn != t)
      continue;
    Temporal__Api__Query__V1__WorkflowQueryResult *res =
        ok ? temporal__api__query__v1__workflow_query_result__unpack(NULL, q->result_len,
                                                                      q->result)
           : NULL;
    if (!res) { /* not committed (the actor is broken: it fails them as it stops) */
      q->state = WFQ_WAITING;
      continue;
    }
    answer(wf, q, res->result_type, res->answer, res->error_message, res->failure);
    temporal__api__query__v1__workflow_query_result__free_unpacked(res, NULL);
  }
}

void wf_on_query_started(workflow_t *wf, gt_rpc_t *rpc) {
  wf_query_t *q = find_query(wf, rpc->task->scheduled_event_id);
  wf_run_t *run = q ? wf_find_run(wf, q->run_id) : NULL;
  if (!q || !run || q->state != WFQ_LEGACY) {
    gt_matching_repark(rpc);
    return;
  }
  const query_req_t *qreq = (const void *)q->rpc->req;
  Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_WORKFLOW_TASK_QUEUE_RESPONSE__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  uint8_t token[GT_TASK_TOKEN_MAX];
  size_t toklen = wf_make_token(wf, run, GT_TASK_QUERY, q->seq, 0, 1, 0, token);
  r.task_token.data = token;
  r.task_token.len = toklen;
  ex.workflow_id = wf->workflow_id;
  ex.run_id = run->run_id;
  r.workflow_execution = &ex;
  wt.name = run->workflow_type;
  r.workflow_type = &wt;
  r.previous_started_event_id = run->previous_started_id;
  r.started_event_id = run->previous_started_id;
  r.attempt = 1;
  r.query = qreq->query;
  tq.name = run->task_queue;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  r.workflow_execution_task_queue = &tq;
  gt_buf_t b;
  gt_buf_init(&b);
  gt_buf_pack(&b, &r.base);
  /* durable events (and a started task's WorkflowTaskStarted, see wf_visible_events):
   * a query never sees what may still roll back */
  size_t n = wf_visible_events(run);
  size_t end = n < run->n_ev ? run->ev_off[n] : run->hist.len;
  gt_buf_field_len(&b, 8, end);
  wf_put_events(run, 0, n, &b);
  if (b.oom) {
    gt_buf_fini(&b);
    gt_matching_repark(rpc);
    return;
  }
  /* the worker answers from its cache, which a speculative workflow task may have taken
   * past what is durable: the task leaves once this workflow's commits in flight have
   * (an empty txn queued behind them) */
  wf_txn_t *t = wf->txn_head ? wf_txn_begin(wf, run) : NULL;
  if (t) {
    wf_txn_reply(t, rpc, &b);
    wf_txn_commit(t);
    return;
  }
  gt_rpc_reply_bytes(rpc, b.p, b.len);
  gt_buf_fini(&b);
}

void wf_on_query_answer(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__RespondQueryTaskCompletedRequest *req =
      (const void *)rpc->req;
  wf_query_t *q = find_query(wf, rpc->scheduled_event_id);
  if (!q) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "query task not found (it may have timed out)");
    return;
  }
  answer(wf, q, req->completed_type, req->query_result, req->error_message, req->failure);
  Temporal__Api__Workflowservice__V1__RespondQueryTaskCompletedResponse resp =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_QUERY_TASK_COMPLETED_RESPONSE__INIT;
  gt_rpc_reply_msg(rpc, &resp.base);
}

int wf_on_query_timer(workflow_t *wf, uint64_t token, uint64_t timer_id) {
  if ((token >> 56) != WF_TIMER_QUERY)
    return 0;
  for (wf_query_t *q = wf->queries; q; q = q->next) {
    if (q->timer == timer_id) {
      unlink_query(wf, q);
      gt_rpc_reply_error(q->rpc, GT_GRPC_DEADLINE_EXCEEDED,
                         "query timed out: no worker answered the query in time");
      query_free(q);
      break;
    }
  }
  return 1;
}

void wf_queries_fail(workflow_t *wf, const char *why) {
  while (wf->queries) {
    wf_query_t *q = wf->queries;
    wf->queries = q->next;
    gt_rpc_reply_error(q->rpc, GT_GRPC_UNAVAILABLE, "%s", why);
    query_free(q);
  }
}
