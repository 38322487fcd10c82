/*
 * wf_byid.c: the activity calls that name an activity by (workflow id, run id, activity id)
 * instead of a task token, and GetWorkflowExecutionHistoryReverse.
 *
 * DESIGN
 *   A *ById request is rewritten into its token form (same fields; the activity's
 *   scheduled event id and attempt come from the run) and served by the same handler, so
 *   both forms behave the same. The replies are the same messages on the wire.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"

/* Packs `m` and unpacks it as `desc`: a heap copy of a stack-built message. */
static ProtobufCMessage *heap_copy(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf)
    return NULL;
  protobuf_c_message_pack(m, buf);
  ProtobufCMessage *out = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
  free(buf);
  return out;
}

void wf_on_activity_by_id(workflow_t *wf, gt_rpc_t *rpc) {
  /* every *ById request starts with: namespace, workflow_id, run_id, activity_id */
  typedef struct {
    ProtobufCMessage base;
    char *namespace_, *workflow_id, *run_id, *activity_id;
  } by_id_t;
  const by_id_t *b = (const void *)rpc->req;
  wf_run_t *run = wf_find_run(wf, b->run_id);
  wf_activity_t *act = NULL;
  for (size_t i = 0; wf_running(run) && i < run->n_acts; i++)
    if (strcmp(run->acts[i].activity_id, b->activity_id) == 0)
      act = &run->acts[i];
  if (!act) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "Activity task not found.");
    return;
  }
  snprintf(rpc->run_id, sizeof(rpc->run_id), "%s", run->run_id);
  rpc->scheduled_event_id = act->scheduled_event_id;
  rpc->attempt = act->attempt;
  ProtobufCMessage *tok = NULL;
  switch (rpc->kind) {
  case GT_RPC_ACT_COMPLETED_BY_ID: {
    const Temporal__Api__Workflowservice__V1__RespondActivityTaskCompletedByIdRequest *r =
        (const void *)b;
    Temporal__Api__Workflowservice__V1__RespondActivityTaskCompletedRequest m =
        TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_ACTIVITY_TASK_COMPLETED_REQUEST__INIT;
    m.result = r->result;
    m.identity = r->identity;
    m.namespace_ = r->namespace_;
    tok = heap_copy(&m.base);
    rpc->kind = GT_RPC_RESPOND_ACT_COMPLETED;
    break;
  }
  case GT_RPC_ACT_FAILED_BY_ID: {
    const Temporal__Api__Workflowservice__V1__RespondActivityTaskFailedByIdRequest *r =
        (const void *)b;
    Temporal__Api__Workflowservice__V1__RespondActivityTaskFailedRequest m =
        TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_ACTIVITY_TASK_FAILED_REQUEST__INIT;
    m.failure = r->failure;
    m.identity = r->identity;
    m.namespace_ = r->namespace_;
    m.last_heartbeat_details = r->last_heartbeat_details;
    tok = heap_copy(&m.base);
    rpc->kind = GT_RPC_RESPOND_ACT_FAILED;
    break;
  }
  case GT_RPC_ACT_CANCELED_BY_ID: {
    const Temporal__Api__Workflowservice__V1__RespondActivityTaskCanceledByIdRequest *r =
        (const void *)b;
    Temporal__Api__Workflowservice__V1__RespondActivityTaskCanceledRequest m =
        TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_ACTIVITY_TASK_CANCELED_REQUEST__INIT;
    m.details = r->details;
    m.identity = r->identity;
    m.namespace_ = r->namespace_;
    tok = heap_copy(&m.base);
    rpc->kind = GT_RPC_RESPOND_ACT_CANCELED;
    break;
  }
  default: {
    const Temporal__Api__Workflowservice__V1__RecordActivityTaskHeartbeatByIdRequest *r =
        (const void *)b;
    Temporal__Api__Workflowservice__V1__RecordActivityTaskHeartbeatRequest m =
        TEMPORAL__API__WORKFLOWSERVICE__V1__RECORD_ACTIVITY_TASK_HEARTBEAT_REQUEST__INIT;
    m.details = r->details;
    m.identity = r->identity;
    m.namespace_ = r->namespace_;
    tok = heap_copy(&m.base);
    rpc->kind = GT_RPC_HEARTBEAT;
    break;
  }
  }
  if (!tok) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  gt_rpc_set_req(rpc, tok); /* rpc->req may live in the request's arena */
  switch (rpc->kind) {
  case GT_RPC_RESPOND_ACT_COMPLETED:
    wf_on_act_completed(wf, rpc);
    break;
  case GT_RPC_RESPOND_ACT_FAILED:
    wf_on_act_failed(wf, rpc);
    break;
  case GT_RPC_RESPOND_ACT_CANCELED:
    wf_on_act_canceled(wf, rpc);
    break;
  default:
    wf_on_heartbeat(wf, rpc);
    break;
  }
}

/* Page tokens: "GTR1:<run id>:<index of the next event to return, counting down>". */
void wf_on_history_reverse(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryReverseRequest *req =
      (const void *)rpc->req;
  const char *run_id = req->execution ? req->execution->run_id : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  if (!run || run->committed_ev == 0) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow not found for ID: %s",
                       wf->workflow_id);
    return;
  }
  size_t top = run->committed_ev; /* exclusive */
  if (req->next_page_token.len) {
    char buf[96], rid[37];
    unsigned long long idx;
    size_t n = req->next_page_token.len < sizeof(buf) - 1 ? req->next_page_token.len
                                                          : sizeof(buf) - 1;
    memcpy(buf, req->next_page_token.data, n);
    buf[n] = 0;
    if (sscanf(buf, "GTR1:%36[0-9a-f-]:%llu", rid, &idx) != 2 ||
        strcmp(rid, run->run_id) != 0 || idx > run->committed_ev) {
      gt_rpc_reply_error(rpc, GT_GRPC_INVALID_ARGUMENT, "Invalid NextPageToken.");
      return;
    }
    top = (size_t)idx;
  }
  size_t page = req->maximum_page_size > 0 ? (size_t)req->maximum_page_size : 1000;
  size_t bottom = top > page ? top - page : 0;
  gt_buf_t events, b;
  gt_buf_init(&events);
  gt_buf_init(&b);
  for (size_t i = top; i > bottom; i--)
    wf_put_events(run, i - 1, i, &events); /* newest first */
  gt_buf_field_bytes(&b, 1, events.p, events.len);
  if (bottom > 0) {
    char token[96];
    int n = snprintf(token, sizeof(token), "GTR1:%s:%zu", run->run_id, bottom);
    gt_buf_field_bytes(&b, 3, token, (size_t)n); /* next_page_token is field 3 */
  }
  if (b.oom || events.oom)
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
  else
    gt_rpc_reply_bytes(rpc, b.p, b.len);
  gt_buf_fini(&events);
  gt_buf_fini(&b);
}
