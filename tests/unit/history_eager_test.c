/*
 * history_eager_test.c: the eager paths through the whole server (history_fixture.h):
 * eager activity dispatch (a ScheduleActivityTask with request_eager_execution comes back
 * started in the RespondWorkflowTaskCompleted reply) and eager workflow start (the first
 * workflow task comes back in the StartWorkflowExecution reply), each with its dynamic
 * config key off, and the cases where Temporal hands out nothing eagerly.
 *
 * THREADS: as history_test.c.
 */
#include "history_fixture.h"

/* ---- eager activity dispatch ---- */

typedef Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedResponse wft_done_resp_t;

/* A ScheduleActivityTask command (activity "greet", start-to-close 10 s) in storage the
 * caller keeps while the request is sent. */
typedef struct sched_cmd {
  pb_command_t c;
  Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes sa;
  pb_acttype_t at;
  pb_taskqueue_t q;
  pb_dur_t st2c;
} sched_cmd_t;

static pb_command_t *sched_cmd(sched_cmd_t *m, const char *id, const char *tq, int eager) {
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes sa =
      TEMPORAL__API__COMMAND__V1__SCHEDULE_ACTIVITY_TASK_COMMAND_ATTRIBUTES__INIT;
  pb_acttype_t at = TEMPORAL__API__COMMON__V1__ACTIVITY_TYPE__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  m->c = c;
  m->sa = sa;
  m->at = at;
  m->q = q;
  m->c.command_type = PB_CMD(SCHEDULE_ACTIVITY_TASK);
  m->c.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_SCHEDULE_ACTIVITY_TASK_COMMAND_ATTRIBUTES;
  m->sa.activity_id = (char *)id;
  m->at.name = "greet";
  m->sa.activity_type = &m->at;
  m->q.name = (char *)tq;
  m->sa.task_queue = &m->q;
  gt_pb_dur(&m->st2c, 10000);
  m->sa.start_to_close_timeout = &m->st2c;
  m->sa.request_eager_execution = eager;
  m->c.schedule_activity_task_command_attributes = &m->sa;
  return &m->c;
}

/* RespondWorkflowTaskCompleted with these commands; asserts OK; the unpacked response. */
static wft_done_resp_t *wft_done_cmds(const ProtobufCBinaryData *token, pb_command_t **cmds,
                                      size_t n, const char *identity) {
  wft_done_req_t r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_WORKFLOW_TASK_COMPLETED_REQUEST__INIT;
  r.namespace_ = NS;
  r.task_token = *token;
  r.identity = (char *)identity;
  r.n_commands = n;
  r.commands = cmds;
  h2c_stream_t s = {0};
  h2c_unary(&g_c, &s, "RespondWorkflowTaskCompleted", &r.base, NULL);
  wft_done_resp_t *resp = h2c_unpack(
      &s, &temporal__api__workflowservice__v1__respond_workflow_task_completed_response__descriptor);
  h2c_stream_free(&s);
  return resp;
}

/* Starts a workflow and completes its first task with one ScheduleActivityTask command
 * (identity "eager-worker"). OUT: run. Returns the completion's response. */
static wft_done_resp_t *schedule_one(const char *wid, const char *tq, int eager, char run[37]) {
  ck_assert_int_eq(start_ok(wid, wid, 0, run), 1);
  poll_wft_resp_t *w = poll_wft();
  sched_cmd_t m;
  pb_command_t *cmd = sched_cmd(&m, "1", tq, eager);
  wft_done_resp_t *r = wft_done_cmds(&w->task_token, &cmd, 1, "eager-worker");
  protobuf_c_message_free_unpacked(&w->base, NULL);
  return r;
}

/* A poll of tq that must come back empty (nothing is in matching): the server answers an
 * empty poll 1 s before the client's 2 s deadline. */
static void assert_no_act_task(const char *tq) {
  poll_act_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_ACTIVITY_TASK_QUEUE_REQUEST__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  static const char *const timeout[] = {"grpc-timeout", "2S", NULL};
  r.namespace_ = NS;
  q.name = (char *)tq;
  r.task_queue = &q;
  r.identity = "history-test";
  h2c_stream_t s = {0};
  h2c_unary(&g_c, &s, "PollActivityTaskQueue", &r.base, timeout);
  poll_act_resp_t *resp =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__poll_activity_task_queue_response__descriptor);
  ck_assert_uint_eq(resp->task_token.len, 0);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  h2c_stream_free(&s);
}

static void act_done_ok(const ProtobufCBinaryData *token) {
  act_done_req_t ar =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_ACTIVITY_TASK_COMPLETED_REQUEST__INIT;
  ar.namespace_ = NS;
  ar.task_token = *token;
  ar.identity = "history-test";
  h2c_stream_t s = {0};
  h2c_unary(&g_c, &s, "RespondActivityTaskCompleted", &ar.base, NULL);
  ck_assert_msg(s.grpc_status == 0, "%d %s", s.grpc_status, s.message);
  h2c_stream_free(&s);
}

/* The next workflow task shows the activity started by `identity` and completed. */
static void assert_act_completed_by(const char *identity) {
  poll_wft_resp_t *w = poll_wft();
  static const int types[] = {
      PB_EV(WORKFLOW_EXECUTION_STARTED), PB_EV(WORKFLOW_TASK_SCHEDULED),
      PB_EV(WORKFLOW_TASK_STARTED),      PB_EV(WORKFLOW_TASK_COMPLETED),
      PB_EV(ACTIVITY_TASK_SCHEDULED),    PB_EV(ACTIVITY_TASK_STARTED),
      PB_EV(ACTIVITY_TASK_COMPLETED),    PB_EV(WORKFLOW_TASK_SCHEDULED),
      PB_EV(WORKFLOW_TASK_STARTED)};
  assert_types(w->history, 1, types, 9);
  const Temporal__Api__History__V1__ActivityTaskStartedEventAttributes *st =
      w->history->events[5]->activity_task_started_event_attributes;
  ck_assert_int_eq(st->scheduled_event_id, 5);
  ck_assert_int_eq(st->attempt, 1);
  ck_assert_str_eq(st->identity, identity);
  wft_done_ok(&w->task_token, 'C');
  protobuf_c_message_free_unpacked(&w->base, NULL);
}

/* request_eager_execution: the activity comes back started in the completion's response,
 * nothing goes to matching, and its token completes it. */
START_TEST(test_eager_activity) {
  char run[37];
  wft_done_resp_t *r = schedule_one("wf-eager", TQ, 1, run);
  ck_assert_uint_eq(r->n_activity_tasks, 1);
  poll_act_resp_t *a = r->activity_tasks[0];
  ck_assert_uint_gt(a->task_token.len, 0);
  ck_assert_str_eq(a->workflow_namespace, NS);
  ck_assert_str_eq(a->activity_id, "1");
  ck_assert_str_eq(a->activity_type->name, "greet");
  ck_assert_str_eq(a->workflow_type->name, "HelloWorkflow");
  ck_assert_str_eq(a->workflow_execution->workflow_id, "wf-eager");
  ck_assert_str_eq(a->workflow_execution->run_id, run);
  ck_assert_int_eq(a->attempt, 1);
  ck_assert_int_eq(gt_pb_dur_ms(a->start_to_close_timeout), 10000);
  ck_assert_ptr_nonnull(a->schedule_to_close_timeout);
  ck_assert_ptr_nonnull(a->heartbeat_timeout);
  ck_assert_ptr_nonnull(a->retry_policy);
  ck_assert_ptr_nonnull(a->scheduled_time);
  ck_assert_ptr_nonnull(a->started_time);
  ck_assert_int_ge(gt_pb_ts_ns(a->started_time), gt_pb_ts_ns(a->scheduled_time));
  ck_assert_int_ge(gt_pb_ts_ns(a->current_attempt_scheduled_time),
                   gt_pb_ts_ns(a->scheduled_time));
  /* started already: describe shows it so, and matching has nothing */
  h2c_stream_t s = {0};
  submit_describe(&s, NS, "wf-eager", run);
  h2c_wait(&g_c, &s);
  desc_resp_t *d =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__describe_workflow_execution_response__descriptor);
  ck_assert_uint_eq(d->n_pending_activities, 1);
  ck_assert_int_eq(d->pending_activities[0]->state,
                   TEMPORAL__API__ENUMS__V1__PENDING_ACTIVITY_STATE__PENDING_ACTIVITY_STATE_STARTED);
  protobuf_c_message_free_unpacked(&d->base, NULL);
  h2c_stream_free(&s);
  assert_no_act_task(TQ);
  act_done_ok(&a->task_token);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  assert_act_completed_by("eager-worker");
}
END_TEST

/* No activity in the completion's response: it is polled, run and completed as before. */
static void expect_polled_activity(wft_done_resp_t *r, const char *run) {
  ck_assert_uint_eq(r->n_activity_tasks, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  poll_act_resp_t *a = poll_act();
  ck_assert_str_eq(a->workflow_execution->run_id, run);
  act_done_ok(&a->task_token);
  protobuf_c_message_free_unpacked(&a->base, NULL);
  assert_act_completed_by("history-test");
}

/* request_eager_execution false: an empty response; the activity is polled as before. */
START_TEST(test_eager_not_requested) {
  char run[37];
  wft_done_resp_t *r = schedule_one("wf-no-eager", TQ, 0, run);
  expect_polled_activity(r, run);
}
END_TEST

/* As Temporal: the server does not compare the activity's task queue with the workflow's
 * (the worker asks only for what it can run: sdk-core, for its own queue): the activity on
 * another queue is started eagerly too, and nothing waits on that queue. */
START_TEST(test_eager_other_queue) {
  char run[37];
  wft_done_resp_t *r = schedule_one("wf-eager-other", "tq-other", 1, run);
  ck_assert_uint_eq(r->n_activity_tasks, 1);
  ck_assert_str_eq(r->activity_tasks[0]->activity_id, "1");
  assert_no_act_task("tq-other");
  act_done_ok(&r->activity_tasks[0]->task_token);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  assert_act_completed_by("eager-worker");
}
END_TEST

/* Scheduled eagerly with the close in the same task, or canceled in it: nothing to start. */
START_TEST(test_eager_closed_or_canceled) {
  char run[37];
  ck_assert_int_eq(start_ok("wf-eager-close", "req-ec", 0, run), 1);
  poll_wft_resp_t *w = poll_wft();
  sched_cmd_t m;
  pb_command_t done = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  Temporal__Api__Command__V1__CompleteWorkflowExecutionCommandAttributes ca =
      TEMPORAL__API__COMMAND__V1__COMPLETE_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  done.command_type = PB_CMD(COMPLETE_WORKFLOW_EXECUTION);
  done.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_COMPLETE_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
  done.complete_workflow_execution_command_attributes = &ca;
  pb_command_t *cmds[2] = {sched_cmd(&m, "1", TQ, 1), &done};
  wft_done_resp_t *r = wft_done_cmds(&w->task_token, cmds, 2, "eager-worker");
  ck_assert_uint_eq(r->n_activity_tasks, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  protobuf_c_message_free_unpacked(&w->base, NULL);

  /* WorkflowTaskCompleted is event 4, so the activity's ActivityTaskScheduled is 5 */
  ck_assert_int_eq(start_ok("wf-eager-cancel", "req-ecc", 0, run), 1);
  w = poll_wft();
  pb_command_t cancel = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  Temporal__Api__Command__V1__RequestCancelActivityTaskCommandAttributes rc =
      TEMPORAL__API__COMMAND__V1__REQUEST_CANCEL_ACTIVITY_TASK_COMMAND_ATTRIBUTES__INIT;
  rc.scheduled_event_id = 5;
  cancel.command_type = PB_CMD(REQUEST_CANCEL_ACTIVITY_TASK);
  cancel.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_REQUEST_CANCEL_ACTIVITY_TASK_COMMAND_ATTRIBUTES;
  cancel.request_cancel_activity_task_command_attributes = &rc;
  cmds[0] = sched_cmd(&m, "1", TQ, 1);
  cmds[1] = &cancel;
  r = wft_done_cmds(&w->task_token, cmds, 2, "eager-worker");
  ck_assert_uint_eq(r->n_activity_tasks, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  protobuf_c_message_free_unpacked(&w->base, NULL);
  assert_no_act_task(TQ);
}
END_TEST

/* Restarts the server with system.enableActivityEagerExecution as given. */
static void restart_with_eager(int on) {
  /* the server may still be writing its SETTINGS frame to the client closed here (this
   * test's own process, as Check forks each test) */
  signal(SIGPIPE, SIG_IGN);
  h2c_close(&g_c);
  gt_server_stop(g_srv);
  g_cfg.activity_eager_execution = on;
  ck_assert_int_eq(gt_server_start(&g_srv, &g_cfg), 0);
  h2c_open(&g_c, gt_gateway_port(g_srv->gw));
}

/* Eager execution off (the dynamic config): a request is served through matching. */
START_TEST(test_eager_disabled) {
  ck_assert_int_eq(g_cfg.activity_eager_execution, 1); /* the default */
  restart_with_eager(0);
  char run[37];
  wft_done_resp_t *r = schedule_one("wf-eager-off", TQ, 1, run);
  expect_polled_activity(r, run);
}
END_TEST

/* ---- eager workflow start ---- */

/* StartWorkflowExecution with request_eager_execution. OUT: the response (free it). */
static start_resp_t *start_eager(const char *wid, const char *request_id) {
  start_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__START_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  r.namespace_ = NS;
  r.workflow_id = (char *)wid;
  wt.name = "HelloWorkflow";
  r.workflow_type = &wt;
  q.name = TQ;
  r.task_queue = &q;
  r.request_id = (char *)request_id;
  r.identity = "eager-starter";
  r.request_eager_execution = 1;
  h2c_stream_t s = {0};
  h2c_unary(&g_c, &s, "StartWorkflowExecution", &r.base, NULL);
  start_resp_t *resp =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__start_workflow_execution_response__descriptor);
  h2c_stream_free(&s);
  return resp;
}

/* A poll of the workflow task queue that must come back empty (2 s). */
static void assert_no_wft_task(void) {
  static const char *const timeout[] = {"grpc-timeout", "2S", NULL};
  h2c_stream_t s = {0};
  submit_poll_wft(&s, TQ, timeout);
  h2c_wait(&g_c, &s);
  poll_wft_resp_t *r =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__poll_workflow_task_queue_response__descriptor);
  ck_assert_uint_eq(r->task_token.len, 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  h2c_stream_free(&s);
}

/* request_eager_execution on a start: the reply carries the first workflow task, started
 * by the starter's identity in the start's own history; matching never sees it; its token
 * completes the workflow. */
START_TEST(test_eager_start) {
  start_resp_t *r = start_eager("wf-eager-start", "req-es");
  ck_assert(r->started);
  ck_assert_int_eq(r->status, PB_STATUS(RUNNING));
  ck_assert_ptr_nonnull(r->eager_workflow_task);
  poll_wft_resp_t *w = r->eager_workflow_task;
  ck_assert_uint_gt(w->task_token.len, 0);
  ck_assert_str_eq(w->workflow_execution->run_id, r->run_id);
  ck_assert_str_eq(w->workflow_type->name, "HelloWorkflow");
  ck_assert_int_eq(w->started_event_id, 3);
  ck_assert_int_eq(w->attempt, 1);
  static const int types[] = {PB_EV(WORKFLOW_EXECUTION_STARTED), PB_EV(WORKFLOW_TASK_SCHEDULED),
                              PB_EV(WORKFLOW_TASK_STARTED)};
  assert_types(w->history, 1, types, 3);
  ck_assert_str_eq(w->history->events[2]->workflow_task_started_event_attributes->identity,
                   "eager-starter");
  assert_no_wft_task();
  wft_done_ok(&w->task_token, 'C');
  /* the history as stored: the same three events, then the completion */
  h2c_stream_t h = {0};
  submit_history(&h, "wf-eager-start", r->run_id, 0, NULL);
  h2c_wait(&g_c, &h);
  hist_resp_t *hr =
      h2c_unpack(&h, &temporal__api__workflowservice__v1__get_workflow_execution_history_response__descriptor);
  static const int all[] = {PB_EV(WORKFLOW_EXECUTION_STARTED), PB_EV(WORKFLOW_TASK_SCHEDULED),
                            PB_EV(WORKFLOW_TASK_STARTED), PB_EV(WORKFLOW_TASK_COMPLETED),
                            PB_EV(WORKFLOW_EXECUTION_COMPLETED)};
  assert_types(hr->history, 1, all, 5);
  protobuf_c_message_free_unpacked(&hr->base, NULL);
  h2c_stream_free(&h);
  /* the same request again: the same run, no second task */
  start_resp_t *again = start_eager("wf-eager-start", "req-es");
  ck_assert_str_eq(again->run_id, r->run_id);
  ck_assert_ptr_null(again->eager_workflow_task);
  protobuf_c_message_free_unpacked(&again->base, NULL);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}
END_TEST

/* An eager start whose id already has a running run: ALREADY_EXISTS, no task handed out. */
START_TEST(test_eager_start_conflict) {
  char run[37];
  ck_assert_int_eq(start_ok("wf-eager-dup", "req-1", 0, run), 1);
  start_req_t q = TEMPORAL__API__WORKFLOWSERVICE__V1__START_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  q.namespace_ = NS;
  q.workflow_id = "wf-eager-dup";
  wt.name = "HelloWorkflow";
  q.workflow_type = &wt;
  tq.name = TQ;
  q.task_queue = &tq;
  q.request_id = "req-2";
  q.request_eager_execution = 1;
  h2c_stream_t s = {0};
  h2c_call(&g_c, &s, "StartWorkflowExecution", &q.base, NULL);
  h2c_wait(&g_c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_ALREADY_EXISTS);
  h2c_stream_free(&s);
  /* the running run's own task is still there, for a poller */
  poll_wft_resp_t *w = poll_wft();
  ck_assert_str_eq(w->workflow_execution->run_id, run);
  protobuf_c_message_free_unpacked(&w->base, NULL);
}
END_TEST

/* system.enableEagerWorkflowStart off: a plain start, the task through matching. */
START_TEST(test_eager_start_disabled) {
  signal(SIGPIPE, SIG_IGN);
  h2c_close(&g_c);
  gt_server_stop(g_srv);
  g_cfg.eager_workflow_start = 0;
  ck_assert_int_eq(gt_server_start(&g_srv, &g_cfg), 0);
  h2c_open(&g_c, gt_gateway_port(g_srv->gw));
  start_resp_t *r = start_eager("wf-eager-start-off", "req-off");
  ck_assert(r->started);
  ck_assert_ptr_null(r->eager_workflow_task);
  poll_wft_resp_t *w = poll_wft();
  ck_assert_str_eq(w->workflow_execution->run_id, r->run_id);
  ck_assert_str_eq(w->history->events[2]->workflow_task_started_event_attributes->identity,
                   "history-test");
  protobuf_c_message_free_unpacked(&w->base, NULL);
  protobuf_c_message_free_unpacked(&r->base, NULL);
}
END_TEST

static Suite *history_eager_suite(void) {
  Suite *s = suite_create("history_eager");
  TCase *tc = tcase_create("server");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_eager_activity);
  tcase_add_test(tc, test_eager_not_requested);
  tcase_add_test(tc, test_eager_other_queue);
  tcase_add_test(tc, test_eager_closed_or_canceled);
  tcase_add_test(tc, test_eager_disabled);
  tcase_add_test(tc, test_eager_start);
  tcase_add_test(tc, test_eager_start_conflict);
  tcase_add_test(tc, test_eager_start_disabled);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  gt_log_setup(GT_LOG_ERROR, GT_LOG_TEXT);
  SRunner *sr = srunner_create(history_eager_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
