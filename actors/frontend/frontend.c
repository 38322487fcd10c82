/*
 * frontend.c: Temporal's frontend role: the gateway's handler for every gRPC call.
 *
 * DESIGN
 *   Runs on the gateway thread. A call's method is looked up by its path in a table built
 *   once from the generated service descriptors (so the request type comes from the
 *   .proto), its body unpacked, validated with Temporal's messages, its namespace
 *   resolved, and then either answered here (system info, namespaces) or handed as a
 *   gt_rpc_t to the actor that owns it: the workflow actor of (namespace, workflow id),
 *   or the task-queue actor of a poll. Every method without a handler answers
 *   UNIMPLEMENTED.
 *
 * INVARIANTS
 *   Every call gets exactly one reply: here on error, else from the actor the rpc went to.
 *
 * THREADS: the gateway thread (the handler), and store threads (namespace completions).
 */
#include "actors/frontend/frontend.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/frontend/namespaces.h"
#include "actors/history/cron.h"
#include "actors/history/history.h"
#include "actors/matching/matching.h"
#include "actors/visibility/visibility.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define WF_SERVICE "/temporal.api.workflowservice.v1.WorkflowService/"
#define OP_SERVICE "/temporal.api.operatorservice.v1.OperatorService/"
#define MAX_ID_LEN 1000
#define SERVER_VERSION "1.29.1"

typedef struct call_ctx {
  gt_server_t *srv;
  gt_gateway_call_t *call;
  ProtobufCMessage *req;
  gt_pb_arena_t *arena;       /* holds req when it was decoded into one */
  const char *method;
  gt_rpc_kind_t kind;         /* h_token: the rpc it becomes */
  gt_task_kind_t task_kind;   /* h_token: the token kind it must carry */
  size_t tok_off, ns_off;     /* h_token: where task_token and namespace sit in req */
} call_ctx_t;

typedef void (*handler_fn)(call_ctx_t *c);

/* ---- replies from the gateway thread ---- */

static void reply_msg(call_ctx_t *c, const ProtobufCMessage *resp) {
  gt_buf_t b;
  gt_buf_init(&b);
  gt_buf_pack(&b, resp);
  if (b.oom)
    gt_gateway_reply(c->call, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0, NULL, 0);
  else
    gt_gateway_reply(c->call, GT_GRPC_OK, NULL, b.p, b.len, NULL, 0);
  gt_buf_fini(&b);
}

static void reply_err(call_ctx_t *c, int status, const char *msg) {
  gt_gateway_reply(c->call, status, msg, NULL, 0, NULL, 0);
}

/* ---- validation helpers ---- */

static int resolve_ns(call_ctx_t *c, const char *name, gt_ns_info_t *ns) {
  if (!name || !*name) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Namespace not set on request.");
    return -1;
  }
  if (gt_namespaces_get(c->srv->namespaces, name, ns) != 0) {
    char msg[400];
    snprintf(msg, sizeof(msg), "Namespace %s is not found.", name);
    reply_err(c, GT_GRPC_NOT_FOUND, msg);
    return -1;
  }
  return 0;
}

static int valid_uuid(const char *s) {
  if (strlen(s) != 36)
    return 0;
  for (int i = 0; i < 36; i++) {
    char ch = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-')
        return 0;
    } else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                 (ch >= 'A' && ch <= 'F'))) {
      return 0;
    }
  }
  return 1;
}

/* Builds an rpc for an actor; takes c->req. NULL after replying on failure. */
static gt_rpc_t *make_rpc(call_ctx_t *c, gt_rpc_kind_t kind, const gt_ns_info_t *ns,
                          const char *workflow_id) {
  gt_rpc_t *r = gt_rpc_new(c->srv, kind, c->call, c->req);
  if (!r || (workflow_id && !(r->workflow_id = strdup(workflow_id)))) {
    if (r) {
      r->call = NULL;
      r->req = NULL;
      gt_rpc_free(r);
    }
    reply_err(c, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  r->arena = c->arena; /* the rpc owns them now */
  c->req = NULL;
  c->arena = NULL;
  gt_copy_str(r->ns_id, sizeof(r->ns_id), ns->id);
  gt_copy_str(r->ns_name, sizeof(r->ns_name), ns->name);
  r->deadline_ms = gt_gateway_call_deadline(c->call);
  return r;
}

/* ---- system ---- */

static void h_get_system_info(call_ctx_t *c) {
  Temporal__Api__Workflowservice__V1__GetSystemInfoResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__GET_SYSTEM_INFO_RESPONSE__INIT;
  Temporal__Api__Workflowservice__V1__GetSystemInfoResponse__Capabilities caps =
      TEMPORAL__API__WORKFLOWSERVICE__V1__GET_SYSTEM_INFO_RESPONSE__CAPABILITIES__INIT;
  r.server_version = SERVER_VERSION;
  caps.signal_and_query_header = 1;
  caps.internal_error_differentiation = 1;
  caps.activity_failure_include_heartbeat = 1;
  caps.supports_schedules = 0;
  caps.encoded_failure_attributes = 1;
  caps.build_id_based_versioning = 0;
  caps.upsert_memo = 1;
  caps.eager_workflow_start = c->srv->cfg->eager_workflow_start; /* workflow.c */
  caps.sdk_metadata = 1;
  caps.count_group_by_execution_status = 0;
  caps.nexus = 0;
  r.capabilities = &caps;
  reply_msg(c, &r.base);
}

static void h_get_cluster_info(call_ctx_t *c) {
  Temporal__Api__Workflowservice__V1__GetClusterInfoResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__GET_CLUSTER_INFO_RESPONSE__INIT;
  r.server_version = SERVER_VERSION;
  r.cluster_id = c->srv->cluster_id;
  r.cluster_name = "active";
  r.history_shard_count = c->srv->num_shards;
  r.persistence_store = c->srv->cfg->store_plugin;
  r.visibility_store = c->srv->cfg->visibility_plugin ? c->srv->cfg->visibility_plugin
                                                      : c->srv->cfg->store_plugin;
  reply_msg(c, &r.base);
}

/* ---- namespaces ---- */

static void h_describe_namespace(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__DescribeNamespaceRequest *req = (const void *)c->req;
  if ((!req->namespace_ || !*req->namespace_) && (!req->id || !*req->id)) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Namespace not set on request.");
    return;
  }
  gt_buf_t b;
  gt_buf_init(&b);
  if (gt_namespaces_describe(c->srv->namespaces, req->namespace_, req->id, &b) != 0) {
    char msg[400];
    snprintf(msg, sizeof(msg), "Namespace %s is not found.",
             req->namespace_ && *req->namespace_ ? req->namespace_ : req->id);
    reply_err(c, GT_GRPC_NOT_FOUND, msg);
  } else {
    gt_gateway_reply(c->call, GT_GRPC_OK, NULL, b.p, b.len, NULL, 0);
  }
  gt_buf_fini(&b);
}

static void h_list_namespaces(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__ListNamespacesRequest *req = (const void *)c->req;
  int offset = 0, next = 0;
  if (req->next_page_token.len) {
    char tok[32];
    size_t n = req->next_page_token.len < sizeof(tok) - 1 ? req->next_page_token.len
                                                          : sizeof(tok) - 1;
    memcpy(tok, req->next_page_token.data, n);
    tok[n] = 0;
    offset = atoi(tok);
  }
  gt_buf_t b;
  gt_buf_init(&b);
  gt_namespaces_list(c->srv->namespaces, offset, req->page_size, &b, &next);
  if (next) {
    char tok[32];
    int n = snprintf(tok, sizeof(tok), "%d", next);
    gt_buf_field_bytes(&b, 2, tok, (size_t)n);
  }
  gt_gateway_reply(c->call, GT_GRPC_OK, NULL, b.p ? b.p : (const uint8_t *)"", b.len, NULL, 0);
  gt_buf_fini(&b);
}

static void register_done(void *ctx, int rc) {
  gt_gateway_call_t *call = ctx;
  if (rc == 0)
    gt_gateway_reply(call, GT_GRPC_OK, NULL, (const uint8_t *)"", 0, NULL, 0);
  else
    gt_gateway_reply(call, GT_GRPC_UNAVAILABLE, "could not persist the namespace", NULL, 0,
                     NULL, 0);
}

static int valid_ns_name(const char *s) {
  size_t n = strlen(s);
  if (n < 2 || n > 255)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_' || ch == '.'))
      return 0;
  }
  return 1;
}

static void h_register_namespace(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__RegisterNamespaceRequest *req = (const void *)c->req;
  if (!req->namespace_ || !*req->namespace_) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Namespace not set on request.");
    return;
  }
  if (!valid_ns_name(req->namespace_)) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT,
              "Namespace name must be 2-255 characters of [a-zA-Z0-9._-].");
    return;
  }
  int64_t ret = gt_pb_dur_ms(req->workflow_execution_retention_period);
  if (ret < 0 || (req->workflow_execution_retention_period && ret > 0 && ret < 3600 * 1000)) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT,
              "WorkflowExecutionRetentionPeriod should be at least 1 hour.");
    return;
  }
  int rc = gt_namespaces_register(c->srv->namespaces, req, register_done, c->call);
  if (rc == GT_EEXISTS)
    reply_err(c, GT_GRPC_ALREADY_EXISTS, "Namespace already exists.");
  else if (rc != 0)
    reply_err(c, GT_GRPC_UNAVAILABLE, gt_strerror(rc));
}

/* ---- workflows ---- */

/* Temporal's checks of a new execution's identity. NULL when valid. */
static const char *check_start_fields(const char *workflow_id, const pb_wftype_t *type,
                                      const pb_taskqueue_t *tq, const char *request_id,
                                      const pb_dur_t *exec_to, const pb_dur_t *run_to,
                                      const pb_dur_t *task_to) {
  if (!workflow_id || !*workflow_id)
    return "WorkflowId is not set on request.";
  if (strlen(workflow_id) > MAX_ID_LEN)
    return "WorkflowId length exceeds limit.";
  if (!type || !type->name || !*type->name)
    return "WorkflowType is not set on request.";
  if (strlen(type->name) > MAX_ID_LEN)
    return "WorkflowType length exceeds limit.";
  if (!tq || !tq->name || !*tq->name)
    return "TaskQueue is not set on request.";
  if (strlen(tq->name) > MAX_ID_LEN)
    return "TaskQueue length exceeds limit.";
  if (request_id && strlen(request_id) > MAX_ID_LEN)
    return "RequestId length exceeds limit.";
  if (gt_pb_dur_ms(exec_to) < 0)
    return "Invalid WorkflowExecutionTimeout.";
  if (gt_pb_dur_ms(run_to) < 0)
    return "Invalid WorkflowRunTimeout.";
  if (gt_pb_dur_ms(task_to) < 0)
    return "Invalid WorkflowTaskTimeout.";
  return NULL;
}

/* Replies to a start whose checks failed (err, a bad start delay or cron schedule); returns
 * 0 when it may go on. */
static int refuse_start(call_ctx_t *c, const char *err, const char *cron_schedule,
                        const pb_dur_t *start_delay) {
  int cron = cron_schedule && *cron_schedule;
  if (!err && start_delay && (start_delay->seconds < 0 || start_delay->nanos < 0))
    err = "An invalid WorkflowStartDelaySeconds is set on request.";
  if (!err && cron && start_delay && (start_delay->seconds > 0 || start_delay->nanos > 0))
    err = "CronSchedule and WorkflowStartDelay may not be used together.";
  if (err) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, err);
    return -1;
  }
  gt_cron_t sched;
  char why[128];
  if (cron && gt_cron_parse(cron_schedule, &sched, why, sizeof why) != 0) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Invalid CronSchedule.");
    return -1;
  }
  return 0;
}

static void h_start_workflow(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__StartWorkflowExecutionRequest *req =
      (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns))
    return;
  const char *err = check_start_fields(req->workflow_id, req->workflow_type, req->task_queue,
                                       req->request_id, req->workflow_execution_timeout,
                                       req->workflow_run_timeout, req->workflow_task_timeout);
  if (refuse_start(c, err, req->cron_schedule, req->workflow_start_delay))
    return;
  gt_rpc_t *r = make_rpc(c, GT_RPC_START_WORKFLOW, &ns, req->workflow_id);
  if (r)
    gt_history_route(c->srv, r);
}

/* Temporal's validateExecution: no execution, no workflow id, or a run id not a UUID. */
static int check_execution(call_ctx_t *c, const pb_wfexec_t *ex) {
  if (!ex) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Execution is not set on request.");
    return -1;
  }
  if (!ex->workflow_id || !*ex->workflow_id) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "WorkflowId is not set on request.");
    return -1;
  }
  if (ex->run_id && *ex->run_id && !valid_uuid(ex->run_id)) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Invalid RunId.");
    return -1;
  }
  return 0;
}

static void h_describe_workflow(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__DescribeWorkflowExecutionRequest *req =
      (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns) || check_execution(c, req->execution))
    return;
  gt_rpc_t *r = make_rpc(c, GT_RPC_DESCRIBE_WORKFLOW, &ns, req->execution->workflow_id);
  if (r)
    gt_history_route(c->srv, r);
}

static void h_get_history(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryRequest *req =
      (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns) || check_execution(c, req->execution))
    return;
  gt_rpc_t *r = make_rpc(c, GT_RPC_GET_HISTORY, &ns, req->execution->workflow_id);
  if (r)
    gt_history_route(c->srv, r);
}

/* ---- polls ---- */

static void poll(call_ctx_t *c, gt_rpc_kind_t kind, const char *ns_name,
                 const pb_taskqueue_t *tq) {
  gt_ns_info_t ns;
  if (resolve_ns(c, ns_name, &ns))
    return;
  if (!tq || !tq->name || !*tq->name) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "TaskQueue is not set on request.");
    return;
  }
  if (strlen(tq->name) > MAX_ID_LEN) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "TaskQueue length exceeds limit.");
    return;
  }
  /* The name lives in c->req, which the rpc takes: copy it first (on the stack, the
   * length was checked above). */
  char queue[MAX_ID_LEN + 1];
  gt_copy_str(queue, sizeof(queue), tq->name);
  gt_rpc_t *r = make_rpc(c, kind, &ns, NULL);
  if (r)
    gt_matching_poll(c->srv, r, queue);
}

static void h_poll_wft(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueRequest *req =
      (const void *)c->req;
  poll(c, GT_RPC_POLL_WORKFLOW_TASK, req->namespace_, req->task_queue);
}

static void h_poll_activity(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__PollActivityTaskQueueRequest *req =
      (const void *)c->req;
  poll(c, GT_RPC_POLL_ACTIVITY_TASK, req->namespace_, req->task_queue);
}

/* ---- task completions ---- */

static void respond(call_ctx_t *c, gt_rpc_kind_t kind, const char *ns_name,
                    const ProtobufCBinaryData *token, gt_task_kind_t want) {
  gt_ns_info_t ns;
  if (resolve_ns(c, ns_name, &ns))
    return;
  if (!token->len) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Task token not set on request.");
    return;
  }
  gt_task_token_t tok;
  if (gt_task_token_decode(&tok, token->data, token->len) != 0 || tok.kind != (int)want) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Error deserializing task token.");
    return;
  }
  if (strcmp(tok.ns_id, ns.id) != 0) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Operation requested with a token from a different "
                                           "namespace.");
    return;
  }
  gt_rpc_t *r = make_rpc(c, kind, &ns, tok.workflow_id);
  if (!r)
    return;
  gt_copy_str(r->run_id, sizeof(r->run_id), tok.run_id);
  r->scheduled_event_id = tok.scheduled_event_id;
  r->started_event_id = tok.started_event_id;
  r->attempt = tok.attempt;
  r->token_epoch = tok.epoch;
  gt_history_route(c->srv, r);
}

/* The Respond... and RecordActivityTaskHeartbeat calls: a task token and a namespace, at
 * offsets found once by name in the request's descriptor (their C layouts differ; see
 * by_method_build). */
static void h_token(call_ctx_t *c) {
  const ProtobufCBinaryData *tok = (const void *)((const char *)c->req + c->tok_off);
  const char *ns = *(char *const *)((const char *)c->req + c->ns_off);
  respond(c, c->kind, ns, tok, c->task_kind);
}

/* Signal, cancel request, terminate: a running execution named by workflow id. */
static void to_execution(call_ctx_t *c, gt_rpc_kind_t kind, const char *ns_name,
                         const pb_wfexec_t *ex) {
  gt_ns_info_t ns;
  if (resolve_ns(c, ns_name, &ns) || check_execution(c, ex))
    return;
  gt_rpc_t *r = make_rpc(c, kind, &ns, ex->workflow_id);
  if (r)
    gt_history_route(c->srv, r);
}

static void h_signal(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__SignalWorkflowExecutionRequest *req =
      (const void *)c->req;
  if (!req->signal_name || !*req->signal_name) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "SignalName is not set on request.");
    return;
  }
  to_execution(c, GT_RPC_SIGNAL, req->namespace_, req->workflow_execution);
}

static void h_terminate(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__TerminateWorkflowExecutionRequest *req =
      (const void *)c->req;
  to_execution(c, GT_RPC_TERMINATE, req->namespace_, req->workflow_execution);
}

/* DeleteWorkflowExecution: any run, running (terminated first) or closed (wf_delete.c). */
static void h_delete_workflow(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__DeleteWorkflowExecutionRequest *req =
      (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns) || check_execution(c, req->workflow_execution))
    return;
  gt_rpc_t *r = make_rpc(c, GT_RPC_DELETE_WORKFLOW, &ns, req->workflow_execution->workflow_id);
  if (r)
    gt_history_route(c->srv, r);
}

static void h_request_cancel(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__RequestCancelWorkflowExecutionRequest *req =
      (const void *)c->req;
  to_execution(c, GT_RPC_REQUEST_CANCEL, req->namespace_, req->workflow_execution);
}

static void h_signal_with_start(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__SignalWithStartWorkflowExecutionRequest *req =
      (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns))
    return;
  const char *err = check_start_fields(req->workflow_id, req->workflow_type, req->task_queue,
                                       req->request_id, req->workflow_execution_timeout,
                                       req->workflow_run_timeout, req->workflow_task_timeout);
  if (!err && (!req->signal_name || !*req->signal_name))
    err = "SignalName is not set on request.";
  if (refuse_start(c, err, req->cron_schedule, req->workflow_start_delay))
    return;
  gt_rpc_t *r = make_rpc(c, GT_RPC_SIGNAL_WITH_START, &ns, req->workflow_id);
  if (r)
    gt_history_route(c->srv, r);
}

static void h_query(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__QueryWorkflowRequest *req = (const void *)c->req;
  if (!req->query || !req->query->query_type || !*req->query->query_type) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "QueryType is not set on request.");
    return;
  }
  to_execution(c, GT_RPC_QUERY, req->namespace_, req->execution);
}


static void h_update(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__UpdateWorkflowExecutionRequest *req =
      (const void *)c->req;
  if (!req->request || !req->request->meta || !req->request->meta->update_id ||
      !*req->request->meta->update_id) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "UpdateId is not set on request.");
    return;
  }
  if (!req->request->input || !req->request->input->name || !*req->request->input->name) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Update name is not set on request.");
    return;
  }
  to_execution(c, GT_RPC_UPDATE, req->namespace_, req->workflow_execution);
}

static void h_poll_update(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__PollWorkflowExecutionUpdateRequest *req =
      (const void *)c->req;
  if (!req->update_ref || !req->update_ref->update_id || !*req->update_ref->update_id) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "UpdateRef is not set on request.");
    return;
  }
  to_execution(c, GT_RPC_POLL_UPDATE, req->namespace_, req->update_ref->workflow_execution);
}

static void h_reset_sticky(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__ResetStickyTaskQueueRequest *req =
      (const void *)c->req;
  to_execution(c, GT_RPC_RESET_STICKY, req->namespace_, req->execution);
}

/* Every *ById request starts with namespace, workflow_id, run_id, activity_id. */
static void h_activity_by_id(call_ctx_t *c, gt_rpc_kind_t kind) {
  const struct {
    ProtobufCMessage base;
    char *namespace_, *workflow_id, *run_id, *activity_id;
  } *req = (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns))
    return;
  if (!req->workflow_id || !*req->workflow_id) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "WorkflowId is not set on request.");
    return;
  }
  if (!req->activity_id || !*req->activity_id) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "ActivityId is not set on request.");
    return;
  }
  if (req->run_id && *req->run_id && !valid_uuid(req->run_id)) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "Invalid RunId.");
    return;
  }
  gt_rpc_t *r = make_rpc(c, kind, &ns, req->workflow_id);
  if (r)
    gt_history_route(c->srv, r);
}

static void h_act_completed_by_id(call_ctx_t *c) {
  h_activity_by_id(c, GT_RPC_ACT_COMPLETED_BY_ID);
}
static void h_act_failed_by_id(call_ctx_t *c) { h_activity_by_id(c, GT_RPC_ACT_FAILED_BY_ID); }
static void h_act_canceled_by_id(call_ctx_t *c) {
  h_activity_by_id(c, GT_RPC_ACT_CANCELED_BY_ID);
}
static void h_heartbeat_by_id(call_ctx_t *c) { h_activity_by_id(c, GT_RPC_HEARTBEAT_BY_ID); }

static void h_history_reverse(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryReverseRequest *req =
      (const void *)c->req;
  to_execution(c, GT_RPC_HISTORY_REVERSE, req->namespace_, req->execution);
}

static void h_describe_task_queue(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__DescribeTaskQueueRequest *req =
      (const void *)c->req;
  int activity = req->task_queue_type ==
                 TEMPORAL__API__ENUMS__V1__TASK_QUEUE_TYPE__TASK_QUEUE_TYPE_ACTIVITY;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns))
    return;
  if (!req->task_queue || !req->task_queue->name || !*req->task_queue->name) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT, "TaskQueue is not set on request.");
    return;
  }
  char *queue = strdup(req->task_queue->name);
  gt_rpc_t *r = queue ? make_rpc(c, GT_RPC_DESCRIBE_TASK_QUEUE, &ns, NULL) : NULL;
  if (!queue)
    reply_err(c, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
  if (r) {
    r->attempt = activity;
    gt_matching_poll(c->srv, r, queue);
  }
  free(queue);
}

static void update_ns_done(void *ctx, int rc) {
  gt_gateway_call_t *call = ((void **)ctx)[0];
  gt_server_t *srv = ((void **)ctx)[1];
  char *name = ((void **)ctx)[2];
  free(ctx);
  if (rc != 0) {
    gt_gateway_reply(call, GT_GRPC_UNAVAILABLE, "could not persist the namespace", NULL, 0,
                     NULL, 0);
  } else {
    gt_buf_t b;
    gt_buf_init(&b); /* UpdateNamespaceResponse has DescribeNamespaceResponse's fields 1-5 */
    gt_namespaces_describe(srv->namespaces, name, NULL, &b);
    gt_gateway_reply(call, GT_GRPC_OK, NULL, b.p ? b.p : (const uint8_t *)"", b.len, NULL, 0);
    gt_buf_fini(&b);
  }
  free(name);
}

static void h_update_namespace(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__UpdateNamespaceRequest *req = (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns))
    return;
  int64_t ret = req->config ? gt_pb_dur_ms(req->config->workflow_execution_retention_ttl) : 0;
  if (ret < 0 || (ret > 0 && ret < 3600 * 1000)) {
    reply_err(c, GT_GRPC_INVALID_ARGUMENT,
              "WorkflowExecutionRetentionPeriod should be at least 1 hour.");
    return;
  }
  void **ctx = calloc(3, sizeof(void *));
  char *name = strdup(ns.name);
  if (!ctx || !name) {
    free(ctx);
    free(name);
    reply_err(c, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  ctx[0] = c->call;
  ctx[1] = c->srv;
  ctx[2] = name;
  int rc = gt_namespaces_update(c->srv->namespaces, ns.name,
                                req->update_info ? req->update_info->description : NULL,
                                req->update_info ? req->update_info->owner_email : NULL, ret,
                                update_ns_done, ctx);
  if (rc != 0) {
    free(ctx);
    free(name);
    reply_err(c, GT_GRPC_UNAVAILABLE, gt_strerror(rc));
  }
}

static void h_empty_ok(call_ctx_t *c) {
  gt_gateway_reply(c->call, GT_GRPC_OK, NULL, (const uint8_t *)"", 0, NULL, 0);
}

/* ShutdownWorker: the worker's sticky queue is gone; its workflows' next tasks go to the
 * normal queue at once (matching.c). */
static void h_shutdown_worker(call_ctx_t *c) {
  const Temporal__Api__Workflowservice__V1__ShutdownWorkerRequest *req = (const void *)c->req;
  gt_ns_info_t ns;
  if (resolve_ns(c, req->namespace_, &ns))
    return;
  if (req->sticky_task_queue && *req->sticky_task_queue)
    gt_matching_shutdown_worker(c->srv, ns.id, req->sticky_task_queue);
  h_empty_ok(c);
}

/* ---- dispatch ---- */

static const struct handler {
  const char *name;
  handler_fn fn;
  gt_rpc_kind_t kind;       /* h_token entries */
  gt_task_kind_t task_kind;
  int heap_req;             /* decode with malloc, not into an arena: wf_byid.c frees
                             * the request with protobuf_c_message_free_unpacked */
} handlers[] = {
    {"GetSystemInfo", h_get_system_info},
    {"GetClusterInfo", h_get_cluster_info},
    {"DescribeNamespace", h_describe_namespace},
    {"ListNamespaces", h_list_namespaces},
    {"RegisterNamespace", h_register_namespace},
    {"StartWorkflowExecution", h_start_workflow},
    {"DescribeWorkflowExecution", h_describe_workflow},
    {"GetWorkflowExecutionHistory", h_get_history},
    {"PollWorkflowTaskQueue", h_poll_wft},
    {"PollActivityTaskQueue", h_poll_activity},
    {"RespondWorkflowTaskCompleted", h_token, GT_RPC_RESPOND_WFT_COMPLETED, GT_TASK_WORKFLOW},
    {"RespondWorkflowTaskFailed", h_token, GT_RPC_RESPOND_WFT_FAILED, GT_TASK_WORKFLOW},
    {"RespondActivityTaskCompleted", h_token, GT_RPC_RESPOND_ACT_COMPLETED, GT_TASK_ACTIVITY},
    {"RespondActivityTaskFailed", h_token, GT_RPC_RESPOND_ACT_FAILED, GT_TASK_ACTIVITY},
    {"ShutdownWorker", h_shutdown_worker},
    {"RespondActivityTaskCanceled", h_token, GT_RPC_RESPOND_ACT_CANCELED, GT_TASK_ACTIVITY},
    {"RecordActivityTaskHeartbeat", h_token, GT_RPC_HEARTBEAT, GT_TASK_ACTIVITY},
    {"SignalWorkflowExecution", h_signal},
    {"SignalWithStartWorkflowExecution", h_signal_with_start},
    {"TerminateWorkflowExecution", h_terminate},
    {"DeleteWorkflowExecution", h_delete_workflow},
    {"RequestCancelWorkflowExecution", h_request_cancel},
    {"QueryWorkflow", h_query},
    {"UpdateWorkflowExecution", h_update},
    {"PollWorkflowExecutionUpdate", h_poll_update},
    {"ResetStickyTaskQueue", h_reset_sticky},
    {"RespondActivityTaskCompletedById", h_act_completed_by_id, .heap_req = 1},
    {"RespondActivityTaskFailedById", h_act_failed_by_id, .heap_req = 1},
    {"RespondActivityTaskCanceledById", h_act_canceled_by_id, .heap_req = 1},
    {"RecordActivityTaskHeartbeatById", h_heartbeat_by_id, .heap_req = 1},
    {"GetWorkflowExecutionHistoryReverse", h_history_reverse},
    {"DescribeTaskQueue", h_describe_task_queue},
    {"UpdateNamespace", h_update_namespace},
    {"RespondQueryTaskCompleted", h_token, GT_RPC_RESPOND_QUERY, GT_TASK_QUERY},
};

/* The handler of each WorkflowService method, by the method's index in the generated
 * descriptor: built once, with h_token's field offsets (found here, not by two name
 * searches per request). */
#define MAX_WF_METHODS 512
static struct route {
  const struct handler *h;
  size_t tok_off, ns_off;   /* h_token entries */
} by_method[MAX_WF_METHODS];
static pthread_once_t by_method_once = PTHREAD_ONCE_INIT;

/* Every method of both services by its full gRPC path ("/<service>/<method>"), in an
 * open-addressing table built with by_method: a request costs one strlen, a hash of
 * the path's length and last 16 bytes, and one compare, instead of a prefix strncmp and
 * the descriptor's binary search by name (~6 strcmp calls; ~300 instructions a request
 * in callgrind). Paths that differ only before their last 16 bytes just share a probe
 * sequence; the compare decides. Read-only after the build. */
#define PATH_SLOTS 1024 /* a power of two, over twice MAX_WF_METHODS */
static struct path_entry {
  const char *prefix;       /* WF_SERVICE or OP_SERVICE; NULL: an empty slot */
  size_t prefix_len, len;   /* len: the whole path's */
  const ProtobufCServiceDescriptor *svc;
  const ProtobufCMethodDescriptor *md;
} by_path[PATH_SLOTS];

static uint64_t load64(const char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Hash of a path of len bytes from its last 16 (tail) and its length. */
static size_t path_hash(const char *tail, size_t len) {
  uint64_t h = (uint64_t)len * 0x9E3779B97F4A7C15ull;
  h ^= load64(tail + 8) * 0xC2B2AE3D27D4EB4Full;
  h ^= load64(tail) * 0x165667B19E3779F9ull;
  h ^= h >> 29;
  return (size_t)(h * 0x94D049BB133111EBull >> 40) & (PATH_SLOTS - 1);
}

static void by_path_add(const char *prefix, const ProtobufCServiceDescriptor *svc,
                        const ProtobufCMethodDescriptor *md) {
  size_t plen = strlen(prefix), len = plen + strlen(md->name);
  char tail[16]; /* the path's last 16 bytes, without building the path */
  GT_ASSERT(len >= sizeof tail);
  for (size_t k = 0; k < sizeof tail; k++) {
    size_t at = len - sizeof tail + k;
    tail[k] = at < plen ? prefix[at] : md->name[at - plen];
  }
  size_t i = path_hash(tail, len);
  while (by_path[i].prefix != NULL)
    i = (i + 1) & (PATH_SLOTS - 1);
  by_path[i] = (struct path_entry){prefix, plen, len, svc, md};
}

/* The entry of a full path, or NULL (an unknown service or method). */
static const struct path_entry *by_path_find(const char *path) {
  size_t len = strlen(path);
  if (len < 16)
    return NULL;
  for (size_t i = path_hash(path + len - 16, len);; i = (i + 1) & (PATH_SLOTS - 1)) {
    const struct path_entry *e = &by_path[i];
    if (e->prefix == NULL)
      return NULL;
    if (e->len == len && memcmp(path, e->prefix, e->prefix_len) == 0 &&
        memcmp(path + e->prefix_len, e->md->name, len - e->prefix_len) == 0)
      return e;
  }
}

static size_t field_offset(const ProtobufCMessageDescriptor *d, const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
  GT_ASSERT(f != NULL);
  return f->offset;
}

/* op_names: see gt_frontend_op_names. */
static const char *op_names[MAX_WF_METHODS];

static void by_method_build(void) {
  const ProtobufCServiceDescriptor *svc =
      &temporal__api__workflowservice__v1__workflow_service__descriptor;
  const ProtobufCServiceDescriptor *opsvc =
      &temporal__api__operatorservice__v1__operator_service__descriptor;
  GT_ASSERT(svc->n_methods + opsvc->n_methods <= MAX_WF_METHODS);
  for (unsigned i = 0; i < svc->n_methods; i++) {
    op_names[i] = svc->methods[i].name;
    by_path_add(WF_SERVICE, svc, &svc->methods[i]);
  }
  for (unsigned i = 0; i < opsvc->n_methods; i++) {
    op_names[svc->n_methods + i] = opsvc->methods[i].name;
    by_path_add(OP_SERVICE, opsvc, &opsvc->methods[i]);
  }
  for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++) {
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(svc, handlers[i].name);
    if (!md)
      continue;
    struct route *rt = &by_method[md - svc->methods];
    rt->h = &handlers[i];
    if (handlers[i].fn == h_token) {
      rt->tok_off = field_offset(md->input, "task_token");
      rt->ns_off = field_offset(md->input, "namespace");
    }
  }
}

/* Operation names for the gateway's per-operation metrics: the WorkflowService methods
 * by descriptor index, then the OperatorService ones (built with by_method). */

const char *const *gt_frontend_op_names(int *n) {
  pthread_once(&by_method_once, by_method_build);
  *n = (int)(temporal__api__workflowservice__v1__workflow_service__descriptor.n_methods +
             temporal__api__operatorservice__v1__operator_service__descriptor.n_methods);
  return op_names;
}

void gt_frontend_handle(void *ctx, gt_gateway_call_t *call, const char *method,
                        const uint8_t *body, size_t len) {
  gt_server_t *srv = ctx;
  pthread_once(&by_method_once, by_method_build);
  const struct path_entry *pe = by_path_find(method);
  if (!pe) {
    char msg[600];
    snprintf(msg, sizeof(msg), "unknown method %.500s", method);
    gt_gateway_reply(call, GT_GRPC_UNIMPLEMENTED, msg, NULL, 0, NULL, 0);
    return;
  }
  const ProtobufCServiceDescriptor *svc = pe->svc;
  const ProtobufCMethodDescriptor *md = pe->md;
  const char *name = method + pe->prefix_len;
  int op = (int)(md - svc->methods); /* gt_frontend_op_names' order */
  int wf = svc == &temporal__api__workflowservice__v1__workflow_service__descriptor;
  if (!wf)
    op += (int)temporal__api__workflowservice__v1__workflow_service__descriptor.n_methods;
  gt_gateway_call_set_op(call, op); /* counted in service_requests from here */
  const struct route *rt = wf ? &by_method[md - svc->methods] : NULL;
  const struct handler *h = rt ? rt->h : NULL;
  handler_fn fn = h ? h->fn : NULL;
  int visibility = !fn && gt_visibility_serves(svc->name, name);
  if (!fn && !visibility) {
    char msg[600];
    snprintf(msg, sizeof(msg), "%s is not implemented by Genesis Temporal yet", name);
    gt_gateway_reply(call, GT_GRPC_UNIMPLEMENTED, msg, NULL, 0, NULL, 0);
    return;
  }
  if (atomic_load_explicit(&srv->stopping, memory_order_relaxed)) {
    gt_gateway_reply(call, GT_GRPC_UNAVAILABLE, "server is shutting down", NULL, 0, NULL, 0);
    return;
  }
  /* Visibility and the *ById handlers free their requests with free_unpacked: heap. */
  gt_pb_arena_t *arena = NULL;
  ProtobufCMessage *req = visibility || h->heap_req
                              ? protobuf_c_message_unpack(md->input, NULL, len, body)
                              : gt_pb_unpack_arena(md->input, body, len, &arena);
  if (!req) {
    char msg[300];
    snprintf(msg, sizeof(msg), "grpc: error unmarshalling request: cannot parse %s",
             md->input->name);
    gt_gateway_reply(call, GT_GRPC_INVALID_ARGUMENT, msg, NULL, 0, NULL, 0);
    return;
  }
  if (visibility) {
    gt_visibility_dispatch(srv, call, name, req);
    return;
  }
  call_ctx_t c = {.srv = srv, .call = call, .req = req, .arena = arena, .method = name,
                  .kind = h->kind, .task_kind = h->task_kind, .tok_off = rt->tok_off,
                  .ns_off = rt->ns_off};
  fn(&c);
  if (c.arena)
    gt_pb_arena_free(c.arena); /* c.req was in it */
  else if (c.req)
    protobuf_c_message_free_unpacked(c.req, NULL);
}
