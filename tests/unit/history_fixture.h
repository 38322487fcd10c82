/*
 * history_fixture.h: what the suites driving a whole in-process server share
 * (history_test, history_eager_test): a gt_server_t started on 127.0.0.1:0 (in-memory
 * SQLite) by the checked fixture and stopped in its teardown, an h2client.h connection to
 * it, and the requests a hand-written worker makes (start, polls, completions, history).
 * Header-only, like h2client.h and sqlite_fixture.h, so each suite stays one file.
 *
 * THREADS: the test thread drives the client; the server runs on its own threads.
 */
#ifndef GT_TEST_HISTORY_FIXTURE_H
#define GT_TEST_HISTORY_FIXTURE_H

#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/frontend/pb.h"
#include "actors/frontend/server.h"
#include "actors/history/history.h"
#include "actors/history/wf_int.h"
#include "config/config.h"
#include "google/protobuf/any.pb-c.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "h2client.h"

#define NS "default"
#define TQ "tq-hello"

typedef Temporal__Api__Workflowservice__V1__StartWorkflowExecutionRequest start_req_t;
typedef Temporal__Api__Workflowservice__V1__StartWorkflowExecutionResponse start_resp_t;
typedef Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueRequest poll_wft_req_t;
typedef Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueResponse poll_wft_resp_t;
typedef Temporal__Api__Workflowservice__V1__PollActivityTaskQueueRequest poll_act_req_t;
typedef Temporal__Api__Workflowservice__V1__PollActivityTaskQueueResponse poll_act_resp_t;
typedef Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest wft_done_req_t;
typedef Temporal__Api__Workflowservice__V1__RespondActivityTaskCompletedRequest act_done_req_t;
typedef Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryRequest hist_req_t;
typedef Temporal__Api__Workflowservice__V1__GetWorkflowExecutionHistoryResponse hist_resp_t;
typedef Temporal__Api__Workflowservice__V1__DescribeWorkflowExecutionRequest desc_req_t;
typedef Temporal__Api__Workflowservice__V1__DescribeWorkflowExecutionResponse desc_resp_t;

static gt_config_t g_cfg;
static gt_server_t *g_srv;
static h2c_client_t g_c;

static inline void setup(void) {
  gt_log_setup(GT_LOG_ERROR, GT_LOG_TEXT);
  gt_config_defaults(&g_cfg);
  g_cfg.grpc_port = 0;
  g_cfg.http_port = 0; /* no HTTP port: tests run side by side */
  g_cfg.scheduler_threads = 2;
  ck_assert_int_eq(gt_server_start(&g_srv, &g_cfg), 0);
  ck_assert_int_gt(gt_gateway_port(g_srv->gw), 0);
  h2c_open(&g_c, gt_gateway_port(g_srv->gw));
}

static inline void teardown(void) {
  h2c_close(&g_c);
  gt_server_stop(g_srv);
  g_srv = NULL;
  gt_config_fini(&g_cfg);
}

/* ---- request helpers ---- */

/* Submits StartWorkflowExecution (not waited). */
static inline void submit_start(h2c_stream_t *s, const char *ns, const char *wid, const char *type,
                         const char *tq, const char *request_id, int conflict_policy) {
  start_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__START_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  r.namespace_ = (char *)ns;
  r.workflow_id = (char *)wid;
  wt.name = (char *)type;
  r.workflow_type = &wt;
  q.name = (char *)tq;
  r.task_queue = &q;
  r.request_id = (char *)request_id;
  r.identity = "history-test";
  r.workflow_id_conflict_policy = conflict_policy;
  h2c_call(&g_c, s, "StartWorkflowExecution", &r.base, NULL);
}

/* Starts a workflow; asserts OK. OUT: run_id. Returns `started`. */
static inline int start_ok(const char *wid, const char *request_id, int policy, char run_id[37]) {
  h2c_stream_t s = {0};
  submit_start(&s, NS, wid, "HelloWorkflow", TQ, request_id, policy);
  h2c_wait(&g_c, &s);
  start_resp_t *r =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__start_workflow_execution_response__descriptor);
  ck_assert_uint_eq(strlen(r->run_id), 36);
  snprintf(run_id, 37, "%s", r->run_id);
  int started = r->started;
  protobuf_c_message_free_unpacked(&r->base, NULL);
  h2c_stream_free(&s);
  return started;
}

static inline void submit_poll_wft(h2c_stream_t *s, const char *tq, const char *const *extra) {
  poll_wft_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_WORKFLOW_TASK_QUEUE_REQUEST__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  r.namespace_ = NS;
  q.name = (char *)tq;
  r.task_queue = &q;
  r.identity = "history-test";
  h2c_call(&g_c, s, "PollWorkflowTaskQueue", &r.base, extra);
}

static inline poll_wft_resp_t *poll_wft(void) {
  h2c_stream_t s = {0};
  submit_poll_wft(&s, TQ, NULL);
  h2c_wait(&g_c, &s);
  poll_wft_resp_t *r =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__poll_workflow_task_queue_response__descriptor);
  h2c_stream_free(&s);
  ck_assert_uint_gt(r->task_token.len, 0);
  return r;
}

/* Polls TQ for an activity task, with extra request headers (NULL: none, e.g.
 * {"grpc-timeout", "8S", NULL}); the answer, an empty one (no task_token) when the poll
 * timed out. Fails on an error status. */
static inline poll_act_resp_t *poll_act_answer(const char *const *extra) {
  poll_act_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_ACTIVITY_TASK_QUEUE_REQUEST__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  r.namespace_ = NS;
  q.name = TQ;
  r.task_queue = &q;
  r.identity = "history-test";
  h2c_stream_t s = {0};
  h2c_unary(&g_c, &s, "PollActivityTaskQueue", &r.base, extra);
  ck_assert_msg(s.grpc_status == 0, "PollActivityTaskQueue: %d %s", s.grpc_status, s.message);
  poll_act_resp_t *resp =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__poll_activity_task_queue_response__descriptor);
  h2c_stream_free(&s);
  return resp;
}

/* As poll_act_answer; fails when no task comes. */
static inline poll_act_resp_t *poll_act_with(const char *const *extra) {
  poll_act_resp_t *resp = poll_act_answer(extra);
  ck_assert_uint_gt(resp->task_token.len, 0);
  return resp;
}

static inline poll_act_resp_t *poll_act(void) { return poll_act_with(NULL); }

/* Submits RespondWorkflowTaskCompleted with one command (not waited). cmd: 'A' schedules
 * activity "greet", 'C' completes the workflow, 'N' continues it as new after a 1 s
 * backoff (backoff_start_interval). */
static inline void submit_wft_done(h2c_stream_t *s, const ProtobufCBinaryData *token, char cmd) {
  wft_done_req_t r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_WORKFLOW_TASK_COMPLETED_REQUEST__INIT;
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  pb_command_t *cp = &c;
  Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes sa =
      TEMPORAL__API__COMMAND__V1__SCHEDULE_ACTIVITY_TASK_COMMAND_ATTRIBUTES__INIT;
  Temporal__Api__Command__V1__CompleteWorkflowExecutionCommandAttributes ca =
      TEMPORAL__API__COMMAND__V1__COMPLETE_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  Temporal__Api__Command__V1__ContinueAsNewWorkflowExecutionCommandAttributes na =
      TEMPORAL__API__COMMAND__V1__CONTINUE_AS_NEW_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  pb_dur_t backoff;
  pb_acttype_t at = TEMPORAL__API__COMMON__V1__ACTIVITY_TYPE__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  pb_dur_t st2c;
  r.namespace_ = NS;
  r.task_token = *token;
  r.identity = "history-test";
  if (cmd == 'A') {
    c.command_type = PB_CMD(SCHEDULE_ACTIVITY_TASK);
    c.attributes_case = TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_SCHEDULE_ACTIVITY_TASK_COMMAND_ATTRIBUTES;
    sa.activity_id = "1";
    at.name = "greet";
    sa.activity_type = &at;
    q.name = TQ;
    sa.task_queue = &q;
    gt_pb_dur(&st2c, 10000);
    sa.start_to_close_timeout = &st2c;
    c.schedule_activity_task_command_attributes = &sa;
  } else if (cmd == 'N') {
    c.command_type = PB_CMD(CONTINUE_AS_NEW_WORKFLOW_EXECUTION);
    c.attributes_case =
        TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_CONTINUE_AS_NEW_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
    gt_pb_dur(&backoff, 1000);
    na.backoff_start_interval = &backoff;
    c.continue_as_new_workflow_execution_command_attributes = &na;
  } else {
    c.command_type = PB_CMD(COMPLETE_WORKFLOW_EXECUTION);
    c.attributes_case =
        TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_COMPLETE_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
    c.complete_workflow_execution_command_attributes = &ca;
  }
  r.n_commands = 1;
  r.commands = &cp;
  h2c_call(&g_c, s, "RespondWorkflowTaskCompleted", &r.base, NULL);
}

static inline void wft_done_ok(const ProtobufCBinaryData *token, char cmd) {
  h2c_stream_t s = {0};
  submit_wft_done(&s, token, cmd);
  h2c_wait(&g_c, &s);
  ck_assert_msg(s.grpc_status == 0, "RespondWorkflowTaskCompleted: %d %s", s.grpc_status,
                s.message);
  h2c_stream_free(&s);
}

static inline void submit_history(h2c_stream_t *s, const char *wid, const char *run_id,
                           int wait_close, const char *const *extra) {
  hist_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__GET_WORKFLOW_EXECUTION_HISTORY_REQUEST__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  r.namespace_ = NS;
  ex.workflow_id = (char *)wid;
  ex.run_id = (char *)run_id;
  r.execution = &ex;
  if (wait_close) {
    r.wait_new_event = 1;
    r.history_event_filter_type =
        TEMPORAL__API__ENUMS__V1__HISTORY_EVENT_FILTER_TYPE__HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT;
  }
  h2c_call(&g_c, s, "GetWorkflowExecutionHistory", &r.base, extra);
}

static inline void submit_describe(h2c_stream_t *s, const char *ns, const char *wid,
                            const char *run_id) {
  desc_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__DESCRIBE_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  r.namespace_ = (char *)ns;
  ex.workflow_id = (char *)wid;
  ex.run_id = (char *)run_id;
  r.execution = &ex;
  h2c_call(&g_c, s, "DescribeWorkflowExecution", &r.base, NULL);
}

static inline void assert_types(const Temporal__Api__History__V1__History *h, int64_t first_id,
                         const int *types, size_t n) {
  ck_assert_ptr_nonnull(h);
  ck_assert_uint_eq(h->n_events, n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_int_eq(h->events[i]->event_id, first_id + (int64_t)i);
    ck_assert_msg((int)h->events[i]->event_type == types[i], "event %zu: type %d, want %d",
                  i, (int)h->events[i]->event_type, types[i]);
    ck_assert_ptr_nonnull(h->events[i]->event_time);
  }
}

#endif
