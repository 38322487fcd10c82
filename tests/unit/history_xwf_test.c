/*
 * history_xwf_test.c: messages between workflow actors survive a crash (wf_child.c,
 * "crash safety"): a whole in-process server on a SQLite file, driven over gRPC by
 * h2client.h as a hand-written worker, is stopped right after a commit whose
 * cross-workflow message it dropped (the gt__wf_xmsg_drop test hook: what a kill -9 after
 * the commit leaves), then started again on the same file. Recovery must activate the
 * sender, which sends again what its history says is pending, and the receivers must
 * take a repeat as one: exactly one child run, one ChildWorkflowExecutionStarted, one
 * WorkflowExecutionSignaled. The same restart checks what else no event records: an
 * activity's retry state (its attempt, that attempt's schedule time, the last failure,
 * the heartbeat details; executions.state field 11) comes back with the run, and so does
 * its start once written (the activity is not handed out again; its worker's token still
 * completes it).
 *
 * DESIGN
 *   Each test runs in its own process (Check's fork mode) with its own database file in a
 *   fresh directory. A parent's workflow tasks go to TQ, its child's (or a signal's
 *   target's) to TQ_OTHER, so each poll names whose task it expects. Polls carry a
 *   grpc-timeout: a task that never comes fails the test in seconds, not at the suite's
 *   timeout.
 *
 * THREADS: the test thread drives the client; the server runs on its own threads.
 */
#include <stdatomic.h>

#include "history_fixture.h"
#include "persistence/sqlite/sqlite_int.h"

#include <msgpack.h>
#include <sqlite3.h>

#define TQ_OTHER "tq-other"

typedef Temporal__Api__Command__V1__StartChildWorkflowExecutionCommandAttributes child_cmd_t;
typedef Temporal__Api__Command__V1__SignalExternalWorkflowExecutionCommandAttributes sig_cmd_t;
typedef Temporal__Api__Command__V1__RequestCancelExternalWorkflowExecutionCommandAttributes
    cancel_cmd_t;
typedef Temporal__Api__History__V1__History history_t;

static char g_dir[64];
static char g_path[96];

/* ---- a server on a file, restarted on it ---- */

static void server_up(void) {
  gt_config_defaults(&g_cfg);
  g_cfg.grpc_port = 0;
  g_cfg.http_port = 0; /* no HTTP port: tests run side by side */
  g_cfg.scheduler_threads = 2;
  g_cfg.sqlite_path = strdup(g_path); /* gt_config_fini frees it */
  ck_assert_ptr_nonnull(g_cfg.sqlite_path);
  ck_assert_int_eq(gt_server_start(&g_srv, &g_cfg), 0);
  h2c_open(&g_c, gt_gateway_port(g_srv->gw));
}

static void server_down(void) {
  h2c_close(&g_c);
  gt_server_stop(g_srv);
  g_srv = NULL;
  gt_config_fini(&g_cfg);
}

static void file_setup(void) {
  gt_log_setup(GT_LOG_ERROR, GT_LOG_TEXT);
  snprintf(g_dir, sizeof(g_dir), "/tmp/gt-xwf-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
  snprintf(g_path, sizeof(g_path), "%s/gt.db", g_dir);
  atomic_store(&gt__wf_xmsg_drop, 0);
  atomic_store(&gt__wf_xmsgs_dropped, 0);
  server_up();
}

static void file_teardown(void) {
  server_down();
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
  ck_assert_int_eq(system(cmd), 0);
}

/* Waits until the commits' effects dropped `n` messages in all (the commit's reply goes
 * out before its messages, so the worker's answer does not tell). */
static void await_dropped(long n) {
  for (int i = 0; i < 5000 && atomic_load(&gt__wf_xmsgs_dropped) < n; i++)
    usleep(1000);
  ck_assert_int_eq(atomic_load(&gt__wf_xmsgs_dropped), n);
}

/* The "kill -9 right after the commit": the server stops (what it dropped stays lost: the
 * hook is cleared only for the next server) and starts again on the same file. */
static void crash_restart(void) {
  server_down();
  atomic_store(&gt__wf_xmsg_drop, 0);
  server_up();
}

/* ---- worker requests ---- */

/* Calls `method` with req and asserts the call ended OK. */
static void call_ok(const char *method, const ProtobufCMessage *req) {
  h2c_stream_t s = {0};
  h2c_unary(&g_c, &s, method, req, NULL);
  ck_assert_msg(s.grpc_status == 0, "%s: %d %s", method, s.grpc_status, s.message);
  h2c_stream_free(&s);
}

static void start_on(const char *wid, const char *tq, char run_id[37]) {
  h2c_stream_t s = {0};
  submit_start(&s, NS, wid, "XwfWorkflow", tq, wid, 0);
  h2c_wait(&g_c, &s);
  ck_assert_msg(s.grpc_status == 0, "start %s: %d %s", wid, s.grpc_status, s.message);
  start_resp_t *r =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__start_workflow_execution_response__descriptor);
  snprintf(run_id, 37, "%s", r->run_id);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  h2c_stream_free(&s);
}

/* Polls tq for a workflow task of `wid`; fails when none comes within a few seconds. */
static poll_wft_resp_t *poll_task(const char *tq, const char *wid) {
  static const char *const timeout[] = {"grpc-timeout", "8S", NULL};
  h2c_stream_t s = {0};
  submit_poll_wft(&s, tq, timeout);
  h2c_wait(&g_c, &s);
  poll_wft_resp_t *r =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__poll_workflow_task_queue_response__descriptor);
  h2c_stream_free(&s);
  ck_assert_msg(r->task_token.len > 0, "no workflow task for %s on %s", wid, tq);
  ck_assert_str_eq(r->workflow_execution->workflow_id, wid);
  return r;
}

/* Completes a workflow task with commands cmds[0..n). */
static void complete_task(poll_wft_resp_t *task, pb_command_t **cmds, size_t n) {
  wft_done_req_t r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_WORKFLOW_TASK_COMPLETED_REQUEST__INIT;
  r.namespace_ = NS;
  r.task_token = task->task_token;
  r.identity = "xwf-test";
  r.n_commands = n;
  r.commands = cmds;
  call_ok("RespondWorkflowTaskCompleted", &r.base);
  protobuf_c_message_free_unpacked(&task->base, NULL);
}

static void complete_task_none(poll_wft_resp_t *task) { complete_task(task, NULL, 0); }

/* Completes the workflow task with CompleteWorkflowExecution(result), result NULL: none. */
static void complete_workflow(poll_wft_resp_t *task, const char *result) {
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  Temporal__Api__Command__V1__CompleteWorkflowExecutionCommandAttributes a =
      TEMPORAL__API__COMMAND__V1__COMPLETE_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  Temporal__Api__Common__V1__Payload pl = TEMPORAL__API__COMMON__V1__PAYLOAD__INIT;
  Temporal__Api__Common__V1__Payload *pls[1] = {&pl};
  pb_payloads_t ps = TEMPORAL__API__COMMON__V1__PAYLOADS__INIT;
  if (result) {
    pl.data.data = (uint8_t *)result;
    pl.data.len = strlen(result);
    ps.n_payloads = 1;
    ps.payloads = pls;
    a.result = &ps;
  }
  c.command_type = PB_CMD(COMPLETE_WORKFLOW_EXECUTION);
  c.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_COMPLETE_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
  c.complete_workflow_execution_command_attributes = &a;
  pb_command_t *cp = &c;
  complete_task(task, &cp, 1);
}

/* Completes the workflow task with StartChildWorkflowExecution(child_id on TQ_OTHER) and
 * ParentClosePolicy `policy` (0: unspecified, which is TERMINATE). */
static void start_child_policy(poll_wft_resp_t *task, const char *child_id, int policy) {
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  child_cmd_t a = TEMPORAL__API__COMMAND__V1__START_CHILD_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  wt.name = "XwfChild";
  q.name = TQ_OTHER;
  a.workflow_id = (char *)child_id;
  a.workflow_type = &wt;
  a.task_queue = &q;
  a.parent_close_policy = policy;
  c.command_type = PB_CMD(START_CHILD_WORKFLOW_EXECUTION);
  c.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_START_CHILD_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
  c.start_child_workflow_execution_command_attributes = &a;
  pb_command_t *cp = &c;
  complete_task(task, &cp, 1);
}

/* Completes the workflow task with ContinueAsNewWorkflowExecution (same type, TQ). */
static void continue_as_new(poll_wft_resp_t *task) {
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  Temporal__Api__Command__V1__ContinueAsNewWorkflowExecutionCommandAttributes a =
      TEMPORAL__API__COMMAND__V1__CONTINUE_AS_NEW_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  wt.name = "XwfWorkflow";
  q.name = TQ;
  a.workflow_type = &wt;
  a.task_queue = &q;
  c.command_type = PB_CMD(CONTINUE_AS_NEW_WORKFLOW_EXECUTION);
  c.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_CONTINUE_AS_NEW_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
  c.continue_as_new_workflow_execution_command_attributes = &a;
  pb_command_t *cp = &c;
  complete_task(task, &cp, 1);
}

static void start_child(poll_wft_resp_t *task, const char *child_id) {
  start_child_policy(task, child_id, 0);
}

/* Completes the workflow task with SignalExternalWorkflowExecution(target, "ping"). */
static void signal_external(poll_wft_resp_t *task, const char *target) {
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  sig_cmd_t a = TEMPORAL__API__COMMAND__V1__SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  ex.workflow_id = (char *)target;
  a.execution = &ex;
  a.signal_name = "ping";
  c.command_type = PB_CMD(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION);
  c.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
  c.signal_external_workflow_execution_command_attributes = &a;
  pb_command_t *cp = &c;
  complete_task(task, &cp, 1);
}

/* Completes the workflow task with RequestCancelExternalWorkflowExecution(target). */
static void cancel_external(poll_wft_resp_t *task, const char *target) {
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  cancel_cmd_t a =
      TEMPORAL__API__COMMAND__V1__REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES__INIT;
  a.workflow_id = (char *)target;
  c.command_type = PB_CMD(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION);
  c.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_COMMAND_ATTRIBUTES;
  c.request_cancel_external_workflow_execution_command_attributes = &a;
  pb_command_t *cp = &c;
  complete_task(task, &cp, 1);
}

/* SignalWorkflowExecution(wid, name) from a client; request_id may be NULL. */
static void signal_wf(const char *wid, const char *name, const char *request_id) {
  Temporal__Api__Workflowservice__V1__SignalWorkflowExecutionRequest r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__SIGNAL_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  ex.workflow_id = (char *)wid;
  r.namespace_ = NS;
  r.workflow_execution = &ex;
  r.signal_name = (char *)name;
  r.identity = "xwf-test";
  r.request_id = (char *)(request_id ? request_id : "");
  call_ok("SignalWorkflowExecution", &r.base);
}

/* The committed history of wid's run (""= current); free with free_history. */
static hist_resp_t *history(const char *wid, const char *run_id) {
  h2c_stream_t s = {0};
  submit_history(&s, wid, run_id, 0, NULL);
  h2c_wait(&g_c, &s);
  ck_assert_msg(s.grpc_status == 0, "history of %s: %d %s", wid, s.grpc_status, s.message);
  hist_resp_t *r =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__get_workflow_execution_history_response__descriptor);
  h2c_stream_free(&s);
  ck_assert_ptr_nonnull(r->history);
  return r;
}

static void free_history(hist_resp_t *r) { protobuf_c_message_free_unpacked(&r->base, NULL); }

/* How many events of type `type` a history holds; OUT (optional): *last, the last one. */
static int count_events(const history_t *h, int type, const pb_event_t **last) {
  int n = 0;
  for (size_t i = 0; i < h->n_events; i++)
    if ((int)h->events[i]->event_type == type) {
      n++;
      if (last)
        *last = h->events[i];
    }
  return n;
}

/* Counts event `type` in the current run of wid. */
static int count_in(const char *wid, int type) {
  hist_resp_t *r = history(wid, "");
  int n = count_events(r->history, type, NULL);
  free_history(r);
  return n;
}

/* Waits for wid's current run to close; returns its status (the close event's type). */
static int await_closed(const char *wid) {
  h2c_stream_t s = {0};
  submit_history(&s, wid, "", 1, NULL);
  h2c_wait(&g_c, &s);
  hist_resp_t *r =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__get_workflow_execution_history_response__descriptor);
  h2c_stream_free(&s);
  ck_assert_uint_eq(r->history->n_events, 1);
  int type = (int)r->history->events[0]->event_type;
  free_history(r);
  return type;
}

#define DROP(op) atomic_store(&gt__wf_xmsg_drop, 1L << (op))

/* ---- tests ---- */

/* (1) The child completed, and its WFX_CHILD_CLOSED was lost with the crash: after the
 * restart the parent (asleep on its child alone) is activated, asks the child, and gets
 * ChildWorkflowExecutionCompleted with the child's result, once. */
START_TEST(test_child_closed_lost) {
  char prun[37];
  start_on("xp1", TQ, prun);
  start_child(poll_task(TQ, "xp1"), "xc1");
  complete_task_none(poll_task(TQ, "xp1")); /* ChildWorkflowExecutionStarted */
  DROP(WFX_CHILD_CLOSED);
  complete_workflow(poll_task(TQ_OTHER, "xc1"), "child-result");
  await_dropped(1);
  ck_assert_int_eq(count_in("xp1", PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED)), 0);

  crash_restart();
  poll_wft_resp_t *t = poll_task(TQ, "xp1");
  const pb_event_t *done = NULL;
  ck_assert_int_eq(count_events(t->history, PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED), &done), 1);
  const pb_payloads_t *res = done->child_workflow_execution_completed_event_attributes->result;
  ck_assert_ptr_nonnull(res);
  ck_assert_uint_eq(res->n_payloads, 1);
  ck_assert_uint_eq(res->payloads[0]->data.len, strlen("child-result"));
  ck_assert_int_eq(memcmp(res->payloads[0]->data.data, "child-result", 12), 0);
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xp1"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
  ck_assert_int_eq(count_in("xp1", PB_EV(CHILD_WORKFLOW_EXECUTION_STARTED)), 1);
  ck_assert_int_eq(count_in("xp1", PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED)), 1);
}
END_TEST

/* (1b) As (1), but a new run took the child's workflow id before the crash: after the
 * restart the parent's check reaches that unrelated run's actor, which loads the child
 * run the check names to answer it: the parent gets ChildWorkflowExecutionCompleted. */
START_TEST(test_child_closed_lost_id_reused) {
  char prun[37], reuse_run[37];
  start_on("xp1r", TQ, prun);
  start_child(poll_task(TQ, "xp1r"), "xc1r");
  complete_task_none(poll_task(TQ, "xp1r")); /* ChildWorkflowExecutionStarted */
  DROP(WFX_CHILD_CLOSED);
  complete_workflow(poll_task(TQ_OTHER, "xc1r"), "child-result");
  await_dropped(1);
  start_on("xc1r", TQ_OTHER, reuse_run); /* the id again: a run that is nobody's child */
  ck_assert_int_eq(count_in("xp1r", PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED)), 0);

  crash_restart();
  poll_wft_resp_t *t = poll_task(TQ, "xp1r");
  ck_assert_int_eq(count_events(t->history, PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED), NULL),
                   1);
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xp1r"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
}
END_TEST

/* (1d) As (1b), but the child continued as new before it completed: the check names the
 * child's first run; its actor loads it, then the run it continued into, and answers
 * with that last run's close. */
START_TEST(test_child_closed_lost_continued_id_reused) {
  char prun[37], reuse_run[37];
  start_on("xp1n", TQ, prun);
  start_child(poll_task(TQ, "xp1n"), "xc1n");
  complete_task_none(poll_task(TQ, "xp1n")); /* ChildWorkflowExecutionStarted */
  continue_as_new(poll_task(TQ_OTHER, "xc1n")); /* the child's second run, on TQ */
  DROP(WFX_CHILD_CLOSED);
  complete_workflow(poll_task(TQ, "xc1n"), "second-run-result");
  await_dropped(1);
  start_on("xc1n", TQ_OTHER, reuse_run); /* the id again: a run that is nobody's child */

  crash_restart();
  poll_wft_resp_t *t = poll_task(TQ, "xp1n");
  const pb_event_t *done = NULL;
  ck_assert_int_eq(
      count_events(t->history, PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED), &done), 1);
  const pb_payloads_t *res = done->child_workflow_execution_completed_event_attributes->result;
  ck_assert_ptr_nonnull(res);
  ck_assert_uint_eq(res->payloads[0]->data.len, strlen("second-run-result"));
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xp1n"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
}
END_TEST

/* DeleteWorkflowExecution of wid's current run; asserts OK. */
static void delete_workflow(const char *wid) {
  Temporal__Api__Workflowservice__V1__DeleteWorkflowExecutionRequest r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__DELETE_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  r.namespace_ = NS;
  ex.workflow_id = (char *)wid;
  r.workflow_execution = &ex;
  call_ok("DeleteWorkflowExecution", &r.base);
}

/* (1c) The running child is deleted (terminated, then its rows gone in the same batch)
 * and its notice to the parent was lost with the crash: after the restart the parent's
 * check finds no such run in the store, and the parent hears the termination. */
START_TEST(test_child_deleted_notice_lost) {
  char prun[37];
  start_on("xp1d", TQ, prun);
  start_child(poll_task(TQ, "xp1d"), "xc1d");
  complete_task_none(poll_task(TQ, "xp1d")); /* ChildWorkflowExecutionStarted */
  DROP(WFX_CHILD_CLOSED);
  delete_workflow("xc1d");
  await_dropped(1);

  crash_restart();
  poll_wft_resp_t *t = poll_task(TQ, "xp1d");
  const pb_event_t *term = NULL;
  ck_assert_int_eq(
      count_events(t->history, PB_EV(CHILD_WORKFLOW_EXECUTION_TERMINATED), &term), 1);
  ck_assert_int_eq(term->child_workflow_execution_terminated_event_attributes
                       ->initiated_event_id, 5);
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xp1d"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
  ck_assert_int_eq(count_in("xp1d", PB_EV(CHILD_WORKFLOW_EXECUTION_TERMINATED)), 1);
}
END_TEST

/* (2) The start of a child is lost on its way (_i == 0: WFX_START_CHILD, no child run yet)
 * or on its way back (_i == 1: WFX_CHILD_STARTED, the child runs): after the restart the
 * parent sends the start again, and there is one child run and one
 * ChildWorkflowExecutionStarted. A second restart while both wait (the parent asks the
 * running child, which says nothing) changes nothing. */
START_TEST(test_child_start_lost) {
  static const wf_xop_t lost[] = {WFX_START_CHILD, WFX_CHILD_STARTED};
  char prun[37];
  start_on("xp2", TQ, prun);
  DROP(lost[_i]);
  start_child(poll_task(TQ, "xp2"), "xc2");
  await_dropped(1);
  ck_assert_int_eq(count_in("xp2", PB_EV(CHILD_WORKFLOW_EXECUTION_STARTED)), 0);

  crash_restart();
  poll_wft_resp_t *c = poll_task(TQ_OTHER, "xc2");
  char crun[37];
  snprintf(crun, sizeof(crun), "%s", c->workflow_execution->run_id);
  complete_task_none(c); /* the child waits (for nothing) */
  poll_wft_resp_t *t = poll_task(TQ, "xp2");
  const pb_event_t *st = NULL;
  ck_assert_int_eq(count_events(t->history, PB_EV(CHILD_WORKFLOW_EXECUTION_STARTED), &st), 1);
  ck_assert_str_eq(st->child_workflow_execution_started_event_attributes->workflow_execution->run_id,
                   crun);
  complete_task_none(t);

  crash_restart(); /* nothing lost: the parent asks its running child, which says nothing */
  signal_wf("xc2", "finish", NULL);
  complete_workflow(poll_task(TQ_OTHER, "xc2"), "ok");
  ck_assert_int_eq(await_closed("xc2"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
  poll_wft_resp_t *t2 = poll_task(TQ, "xp2");
  ck_assert_int_eq(count_events(t2->history, PB_EV(CHILD_WORKFLOW_EXECUTION_STARTED), NULL), 1);
  ck_assert_int_eq(count_events(t2->history, PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED), NULL), 1);
  ck_assert_int_eq(count_events(t2->history, PB_EV(START_CHILD_WORKFLOW_EXECUTION_FAILED), NULL), 0);
  complete_workflow(t2, NULL);
  ck_assert_int_eq(await_closed("xp2"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));

  /* one child run: its current run is the one the parent recorded */
  hist_resp_t *h = history("xc2", crun);
  ck_assert_int_eq(count_events(h->history, PB_EV(WORKFLOW_EXECUTION_STARTED), NULL), 1);
  free_history(h);
  h2c_stream_t s = {0};
  submit_describe(&s, NS, "xc2", "");
  h2c_wait(&g_c, &s);
  desc_resp_t *d =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__describe_workflow_execution_response__descriptor);
  ck_assert_str_eq(d->workflow_execution_info->execution->run_id, crun);
  protobuf_c_message_free_unpacked(&d->base, NULL);
  h2c_stream_free(&s);
}
END_TEST

/* (3) An external signal lost on its way (_i == 0: WFX_SIGNAL) or its answer lost on the
 * way back (_i == 1: WFX_SIGNAL_RESULT, the target has it): after the restart the source
 * sends it again, with the same request id; the target holds one WorkflowExecutionSignaled
 * and the source one ExternalWorkflowExecutionSignaled. */
START_TEST(test_signal_lost) {
  static const wf_xop_t lost[] = {WFX_SIGNAL, WFX_SIGNAL_RESULT};
  char trun[37], srun[37];
  start_on("xt3", TQ_OTHER, trun);
  complete_task_none(poll_task(TQ_OTHER, "xt3")); /* the target waits for a message */
  start_on("xs3", TQ, srun);
  DROP(lost[_i]);
  signal_external(poll_task(TQ, "xs3"), "xt3");
  await_dropped(1);
  ck_assert_int_eq(count_in("xs3", PB_EV(EXTERNAL_WORKFLOW_EXECUTION_SIGNALED)), 0);

  crash_restart();
  poll_wft_resp_t *t = poll_task(TQ_OTHER, "xt3");
  ck_assert_int_eq(count_events(t->history, PB_EV(WORKFLOW_EXECUTION_SIGNALED), NULL), 1);
  complete_workflow(t, NULL);
  poll_wft_resp_t *s = poll_task(TQ, "xs3");
  ck_assert_int_eq(count_events(s->history, PB_EV(EXTERNAL_WORKFLOW_EXECUTION_SIGNALED), NULL), 1);
  ck_assert_int_eq(count_events(s->history, PB_EV(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED), NULL), 0);
  complete_workflow(s, NULL);
  ck_assert_int_eq(await_closed("xs3"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
  ck_assert_int_eq(await_closed("xt3"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
  ck_assert_int_eq(count_in("xt3", PB_EV(WORKFLOW_EXECUTION_SIGNALED)), 1);
  ck_assert_int_eq(count_in("xs3", PB_EV(EXTERNAL_WORKFLOW_EXECUTION_SIGNALED)), 1);
}
END_TEST

/* Holds the store's writer (gt__sqlite_call_on_writer) until g_writer_open. */
static atomic_int g_writer_held, g_writer_open;
static void hold_writer(void *arg) {
  (void)arg;
  atomic_store(&g_writer_held, 1);
  while (!atomic_load(&g_writer_open))
    usleep(200);
}

/* A speculative workflow task (wf_tasks.c record_wft_started): with the store's writer
 * held, a start's first task still reaches its poller, its token carrying the actor's
 * epoch. After a crash the create committed but the task's WorkflowTaskStarted did not, so
 * the task is handed out again with the same ids: once it is started, the old token is
 * refused (it could answer for events the restarted server no longer has), and the new
 * one completes. */
START_TEST(test_speculative_task_restart) {
  atomic_store(&g_writer_held, 0);
  atomic_store(&g_writer_open, 0);
  ck_assert_int_eq(gt__sqlite_call_on_writer(g_srv->store, hold_writer, NULL), 0);
  while (!atomic_load(&g_writer_held))
    usleep(200);
  h2c_stream_t st = {0};
  submit_start(&st, NS, "xsp", "XwfWorkflow", TQ, "xsp", 0);
  poll_wft_resp_t *t = poll_task(TQ, "xsp"); /* the create cannot have committed */
  gt_task_token_t tok;
  ck_assert_int_eq(gt_task_token_decode(&tok, t->task_token.data, t->task_token.len), 0);
  ck_assert_int_gt(tok.epoch, 0);
  ck_assert_int_eq(count_events(t->history, PB_EV(WORKFLOW_EXECUTION_STARTED), NULL), 1);
  atomic_store(&g_writer_open, 1);
  h2c_wait(&g_c, &st);
  ck_assert_int_eq(st.grpc_status, 0);
  h2c_stream_free(&st);

  crash_restart();
  poll_wft_resp_t *t2 = poll_task(TQ, "xsp"); /* started again: the old ids are live */
  wft_done_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_WORKFLOW_TASK_COMPLETED_REQUEST__INIT;
  r.namespace_ = NS;
  r.task_token = t->task_token;
  r.identity = "xwf-test";
  h2c_stream_t s = {0};
  h2c_unary(&g_c, &s, "RespondWorkflowTaskCompleted", &r.base, NULL);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_NOT_FOUND);
  h2c_stream_free(&s);
  gt_task_token_t tok2;
  ck_assert_int_eq(gt_task_token_decode(&tok2, t2->task_token.data, t2->task_token.len), 0);
  ck_assert_int_eq(tok2.scheduled_event_id, tok.scheduled_event_id);
  ck_assert_int_eq(tok2.started_event_id, tok.started_event_id);
  ck_assert_int_ne(tok2.epoch, tok.epoch); /* another activation's, if speculative */
  complete_workflow(t2, NULL);
  ck_assert_int_eq(await_closed("xsp"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
  protobuf_c_message_free_unpacked(&t->base, NULL);
}
END_TEST

/* (4) A cancel request to another workflow lost on its way (_i == 0) or its answer lost
 * (_i == 1): after the restart the target is asked to cancel (once) and the source
 * records ExternalWorkflowExecutionCancelRequested once. */
START_TEST(test_cancel_external_lost) {
  static const wf_xop_t lost[] = {WFX_CANCEL_EXTERNAL, WFX_CANCEL_RESULT};
  char trun[37], srun[37];
  start_on("xt4", TQ_OTHER, trun);
  complete_task_none(poll_task(TQ_OTHER, "xt4"));
  start_on("xs4", TQ, srun);
  DROP(lost[_i]);
  cancel_external(poll_task(TQ, "xs4"), "xt4");
  await_dropped(1);

  crash_restart();
  poll_wft_resp_t *t = poll_task(TQ_OTHER, "xt4");
  ck_assert_int_eq(count_events(t->history, PB_EV(WORKFLOW_EXECUTION_CANCEL_REQUESTED), NULL), 1);
  complete_workflow(t, NULL);
  poll_wft_resp_t *s = poll_task(TQ, "xs4");
  ck_assert_int_eq(
      count_events(s->history, PB_EV(EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED), NULL), 1);
  complete_workflow(s, NULL);
  ck_assert_int_eq(await_closed("xs4"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
  ck_assert_int_eq(count_in("xs4", PB_EV(EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED)), 1);
  ck_assert_int_eq(count_in("xs4", PB_EV(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED)), 0);
}
END_TEST

/* (5) The parent completed with its child open and the parent close policy's
 * WFX_TERMINATE was lost: after the restart the child (activated, as a child run is)
 * asks its parent, whose closed run sends the termination again. */
START_TEST(test_parent_close_policy_lost) {
  char prun[37];
  start_on("xp5", TQ, prun);
  start_child(poll_task(TQ, "xp5"), "xc5");
  complete_task_none(poll_task(TQ_OTHER, "xc5")); /* the child waits for a message */
  DROP(WFX_TERMINATE);
  complete_workflow(poll_task(TQ, "xp5"), NULL); /* ChildWorkflowExecutionStarted: done */
  await_dropped(1);
  ck_assert_int_eq(await_closed("xp5"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));

  crash_restart();
  ck_assert_int_eq(await_closed("xc5"), PB_EV(WORKFLOW_EXECUTION_TERMINATED));
}
END_TEST

/* (5b) As (5), but the parent continued as new with its child open: after the restart
 * the child asks its parent's closed run, which is no longer the current one and not in
 * memory (the recovery loaded the new run): the parent's actor loads it to answer, and
 * the termination goes again. */
START_TEST(test_parent_close_policy_lost_after_continue) {
  char prun[37];
  start_on("xp5c", TQ, prun);
  start_child(poll_task(TQ, "xp5c"), "xc5c");
  complete_task_none(poll_task(TQ_OTHER, "xc5c")); /* the child waits for a message */
  DROP(WFX_TERMINATE);
  continue_as_new(poll_task(TQ, "xp5c")); /* ChildWorkflowExecutionStarted: continue */
  await_dropped(1);
  hist_resp_t *h = history("xp5c", prun);
  ck_assert_int_eq(count_events(h->history, PB_EV(WORKFLOW_EXECUTION_CONTINUED_AS_NEW), NULL),
                   1);
  free_history(h);

  crash_restart();
  ck_assert_int_eq(await_closed("xc5c"), PB_EV(WORKFLOW_EXECUTION_TERMINATED));
}
END_TEST

/* (5c) The running parent is deleted with its child open (TERMINATE, the default) and
 * the policy's WFX_TERMINATE was lost with the crash: after the restart the child asks
 * its parent's run, which the store no longer has: the child applies the policy it
 * keeps (executions.state field 12) and is terminated. With ABANDON (_i == 1) it keeps
 * running, and the recovery does not even activate it. */
START_TEST(test_parent_deleted_policy_lost) {
  char prun[37];
  const char *child = _i ? "xc5a" : "xc5d";
  start_on(_i ? "xp5a" : "xp5d", TQ, prun);
  start_child_policy(poll_task(TQ, _i ? "xp5a" : "xp5d"), child,
                     _i ? TEMPORAL__API__ENUMS__V1__PARENT_CLOSE_POLICY__PARENT_CLOSE_POLICY_ABANDON
                        : 0);
  complete_task_none(poll_task(TQ_OTHER, child)); /* the child waits for a message */
  if (!_i)
    DROP(WFX_TERMINATE);
  delete_workflow(_i ? "xp5a" : "xp5d");
  if (!_i)
    await_dropped(1);

  crash_restart();
  if (!_i) {
    ck_assert_int_eq(await_closed(child), PB_EV(WORKFLOW_EXECUTION_TERMINATED));
    return;
  }
  /* abandoned: nothing of its parent's can apply to it, so the recovery left it asleep
   * (the parent is gone: nothing else runs); it is still running, and completes when its
   * worker says so */
  ck_assert_int_eq(g_srv->recovered_awake, 0);
  ck_assert_int_eq(g_srv->recovered_asleep, 1);
  signal_wf(child, "go", "go-1");
  complete_workflow(poll_task(TQ_OTHER, child), NULL);
  ck_assert_int_eq(await_closed(child), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
}
END_TEST

/* A run that only waits on another workflow is written as such (executions.state field
 * 10); one that waits on nothing is not, and neither is one from before the field. */
/* A client's retried signal (same request id) is applied once: among more signals than a
 * small window would keep, and again after a restart, where the ids come back from the
 * run's WorkflowExecutionSignaled events. */
START_TEST(test_signal_retry_applied_once) {
  char run[37];
  start_on("xs9", TQ, run);
  complete_task_none(poll_task(TQ, "xs9"));
  char rid[40];
  for (int i = 0; i < 40; i++) {
    snprintf(rid, sizeof(rid), "retry-%02d", i);
    signal_wf("xs9", "tick", rid);
  }
  signal_wf("xs9", "tick", "retry-00"); /* the oldest, 39 signals ago */
  signal_wf("xs9", "tick", "retry-39");
  ck_assert_int_eq(count_in("xs9", PB_EV(WORKFLOW_EXECUTION_SIGNALED)), 40);
  crash_restart();
  signal_wf("xs9", "tick", "retry-00");
  signal_wf("xs9", "tick", "retry-20");
  signal_wf("xs9", "tick", "retry-40"); /* a new one */
  ck_assert_int_eq(count_in("xs9", PB_EV(WORKFLOW_EXECUTION_SIGNALED)), 41);
}
END_TEST

/* ---- activities: the retry state survives a restart ---- */

typedef Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes sched_cmd_t;

/* Completes the workflow task with ScheduleActivityTask("1" on TQ): start-to-close
 * st2c_ms, RetryPolicy maximumAttempts max_attempts, initial interval initial_ms,
 * coefficient 2. */
static void schedule_activity_st2c(poll_wft_resp_t *task, int32_t max_attempts,
                                   int64_t initial_ms, int64_t st2c_ms) {
  pb_command_t c = TEMPORAL__API__COMMAND__V1__COMMAND__INIT;
  sched_cmd_t a = TEMPORAL__API__COMMAND__V1__SCHEDULE_ACTIVITY_TASK_COMMAND_ATTRIBUTES__INIT;
  pb_acttype_t at = TEMPORAL__API__COMMON__V1__ACTIVITY_TYPE__INIT;
  pb_taskqueue_t q = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  pb_retry_t rp = TEMPORAL__API__COMMON__V1__RETRY_POLICY__INIT;
  pb_dur_t st2c, ii;
  a.activity_id = "1";
  at.name = "flaky";
  a.activity_type = &at;
  q.name = TQ;
  a.task_queue = &q;
  gt_pb_dur(&st2c, st2c_ms);
  a.start_to_close_timeout = &st2c;
  gt_pb_dur(&ii, initial_ms);
  rp.initial_interval = &ii;
  rp.backoff_coefficient = 2.0;
  rp.maximum_attempts = max_attempts;
  a.retry_policy = &rp;
  c.command_type = PB_CMD(SCHEDULE_ACTIVITY_TASK);
  c.attributes_case =
      TEMPORAL__API__COMMAND__V1__COMMAND__ATTRIBUTES_SCHEDULE_ACTIVITY_TASK_COMMAND_ATTRIBUTES;
  c.schedule_activity_task_command_attributes = &a;
  pb_command_t *cp = &c;
  complete_task(task, &cp, 1);
}

static void schedule_activity(poll_wft_resp_t *task, int32_t max_attempts,
                              int64_t initial_ms) {
  schedule_activity_st2c(task, max_attempts, initial_ms, 30000);
}

/* Polls TQ for an activity task of `wid`; fails when none comes within a few seconds. */
static poll_act_resp_t *poll_activity(const char *wid) {
  static const char *const timeout[] = {"grpc-timeout", "8S", NULL};
  poll_act_resp_t *resp = poll_act_with(timeout);
  ck_assert_str_eq(resp->workflow_execution->workflow_id, wid);
  return resp;
}

/* One payload whose data is the string v. */
typedef struct {
  Temporal__Api__Common__V1__Payload pl;
  Temporal__Api__Common__V1__Payload *pls[1];
  pb_payloads_t ps;
} one_payload_t;

static pb_payloads_t *payloads_of(one_payload_t *p, const char *v) {
  Temporal__Api__Common__V1__Payload pl = TEMPORAL__API__COMMON__V1__PAYLOAD__INIT;
  pb_payloads_t ps = TEMPORAL__API__COMMON__V1__PAYLOADS__INIT;
  p->pl = pl;
  p->pl.data.data = (uint8_t *)v;
  p->pl.data.len = strlen(v);
  p->pls[0] = &p->pl;
  p->ps = ps;
  p->ps.n_payloads = 1;
  p->ps.payloads = p->pls;
  return &p->ps;
}

/* Whether payloads hold exactly the string v. */
static int payloads_are(const pb_payloads_t *ps, const char *v) {
  return ps && ps->n_payloads == 1 && ps->payloads[0]->data.len == strlen(v) &&
         memcmp(ps->payloads[0]->data.data, v, strlen(v)) == 0;
}

/* RespondActivityTaskFailed with a retryable ApplicationFailure(message); asserts OK. */
static void fail_activity(poll_act_resp_t *task, const char *message) {
  Temporal__Api__Workflowservice__V1__RespondActivityTaskFailedRequest r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_ACTIVITY_TASK_FAILED_REQUEST__INIT;
  pb_failure_t f = TEMPORAL__API__FAILURE__V1__FAILURE__INIT;
  Temporal__Api__Failure__V1__ApplicationFailureInfo ai =
      TEMPORAL__API__FAILURE__V1__APPLICATION_FAILURE_INFO__INIT;
  ai.type = "Flaky";
  f.message = (char *)message;
  f.failure_info_case =
      TEMPORAL__API__FAILURE__V1__FAILURE__FAILURE_INFO_APPLICATION_FAILURE_INFO;
  f.application_failure_info = &ai;
  r.namespace_ = NS;
  r.task_token = task->task_token;
  r.failure = &f;
  r.identity = "xwf-test";
  call_ok("RespondActivityTaskFailed", &r.base);
  protobuf_c_message_free_unpacked(&task->base, NULL);
}

/* RecordActivityTaskHeartbeat with details v; asserts OK. */
static void heartbeat(const poll_act_resp_t *task, const char *v) {
  Temporal__Api__Workflowservice__V1__RecordActivityTaskHeartbeatRequest r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RECORD_ACTIVITY_TASK_HEARTBEAT_REQUEST__INIT;
  one_payload_t p;
  r.namespace_ = NS;
  r.task_token = task->task_token;
  r.details = payloads_of(&p, v);
  r.identity = "xwf-test";
  call_ok("RecordActivityTaskHeartbeat", &r.base);
}

static int64_t ts_ms(const Google__Protobuf__Timestamp *ts) {
  return ts ? ts->seconds * 1000 + ts->nanos / 1000000 : 0;
}

/* (6) An activity (maximumAttempts 3) fails twice, retryably; the server restarts while
 * attempt 3 waits out its backoff. The retry state (executions.state field 11) brings
 * back attempt 3, its schedule time and the last failure: attempt 3 is handed out at its
 * retry time, not attempt 1 at once, and its failure is the last, MAXIMUM_ATTEMPTS_REACHED,
 * with ActivityTaskStarted showing attempt 3 and attempt 2's failure. */
START_TEST(test_activity_retry_restart) {
  char run[37];
  start_on("xa6", TQ, run);
  schedule_activity(poll_task(TQ, "xa6"), 3, 300);
  poll_act_resp_t *a = poll_activity("xa6");
  ck_assert_int_eq(a->attempt, 1);
  fail_activity(a, "boom-1");
  a = poll_activity("xa6"); /* after 300 ms */
  ck_assert_int_eq(a->attempt, 2);
  fail_activity(a, "boom-2"); /* attempt 3 in 600 ms */
  int64_t failed_ms = gt_wall_ns() / 1000000;

  crash_restart();
  a = poll_activity("xa6");
  int64_t got_ms = gt_wall_ns() / 1000000;
  ck_assert_int_eq(a->attempt, 3);
  int64_t due_ms = ts_ms(a->current_attempt_scheduled_time);
  ck_assert_int_ge(due_ms, failed_ms + 500); /* the backoff of attempt 2's failure */
  ck_assert_int_ge(got_ms + 5, due_ms);      /* handed out once it is over */
  ck_assert_int_lt(ts_ms(a->scheduled_time), due_ms); /* the first schedule */
  fail_activity(a, "boom-3");

  poll_wft_resp_t *t = poll_task(TQ, "xa6");
  const pb_event_t *st = NULL, *fl = NULL;
  ck_assert_int_eq(count_events(t->history, PB_EV(ACTIVITY_TASK_STARTED), &st), 1);
  ck_assert_int_eq(count_events(t->history, PB_EV(ACTIVITY_TASK_FAILED), &fl), 1);
  const Temporal__Api__History__V1__ActivityTaskStartedEventAttributes *sa =
      st->activity_task_started_event_attributes;
  ck_assert_int_eq(sa->attempt, 3);
  ck_assert_ptr_nonnull(sa->last_failure);
  ck_assert_str_eq(sa->last_failure->message, "boom-2");
  const Temporal__Api__History__V1__ActivityTaskFailedEventAttributes *fa =
      fl->activity_task_failed_event_attributes;
  ck_assert_int_eq(
      fa->retry_state, TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED);
  ck_assert_str_eq(fa->failure->message, "boom-3");
  ck_assert_int_eq(fa->started_event_id, st->event_id);
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xa6"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
}
END_TEST

/* Polls TQ for an activity task and asserts that none comes within 2 s (matching
 * answers a poll empty 1 s before its 3 s deadline). */
static void poll_activity_none(void) {
  static const char *const timeout[] = {"grpc-timeout", "3S", NULL};
  poll_act_resp_t *resp = poll_act_answer(timeout);
  ck_assert_msg(resp->task_token.len == 0, "activity of %s (attempt %d) handed out again",
                resp->workflow_execution ? resp->workflow_execution->workflow_id : "?",
                resp->attempt);
  protobuf_c_message_free_unpacked(&resp->base, NULL);
}

/* RespondActivityTaskCompleted with result v; asserts OK. */
static void complete_activity(poll_act_resp_t *task, const char *v) {
  act_done_req_t r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_ACTIVITY_TASK_COMPLETED_REQUEST__INIT;
  one_payload_t p;
  r.namespace_ = NS;
  r.task_token = task->task_token;
  r.result = payloads_of(&p, v);
  r.identity = "xwf-test";
  call_ok("RespondActivityTaskCompleted", &r.base);
  protobuf_c_message_free_unpacked(&task->base, NULL);
}

/* The number of elements of the first entry of executions.state field 11 in run's row
 * as the file holds it now (5: retry state only; 8: the activity's start too), or 0 when
 * the row has no field 11. Read with a connection of its own, beside the server's. */
static int row_act_entry_size(const char *run_id) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 1000);
  sqlite3_stmt *st = NULL;
  ck_assert_int_eq(
      sqlite3_prepare_v2(db, "SELECT state FROM executions WHERE run_id = ?1", -1, &st, NULL),
      SQLITE_OK);
  sqlite3_bind_text(st, 1, run_id, -1, SQLITE_STATIC);
  int n = 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                            NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size >= 12) {
      const msgpack_object *f11 = &u.data.via.array.ptr[11];
      if (f11->type == MSGPACK_OBJECT_ARRAY && f11->via.array.size > 0 &&
          f11->via.array.ptr[0].type == MSGPACK_OBJECT_ARRAY)
        n = (int)f11->via.array.ptr[0].via.array.size;
    }
    msgpack_unpacked_destroy(&u);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

/* Waits (10 s at most) until run's row holds the start of its activity. */
static void await_start_in_row(const char *run_id) {
  for (int i = 0; i < 1000 && row_act_entry_size(run_id) != 8; i++)
    usleep(10000);
  ck_assert_int_eq(row_act_entry_size(run_id), 8);
}

/* (8) An activity's start is written to the executions row once it has run for
 * WF_START_PERSIST_MS (no heartbeat, nothing else writes the row): after a restart the
 * activity is still out with its worker, not handed out again; the worker completes it
 * with the token it got before the crash, and the history shows that one start. */
START_TEST(test_activity_start_restart) {
  char run[37];
  start_on("xa8", TQ, run);
  schedule_activity(poll_task(TQ, "xa8"), 3, 50);
  poll_act_resp_t *a = poll_activity("xa8");
  ck_assert_int_eq(a->attempt, 1);
  ck_assert_int_eq(row_act_entry_size(run), 0); /* nothing written at the start itself */
  await_start_in_row(run);

  crash_restart();
  poll_activity_none();
  complete_activity(a, "done-once");
  poll_wft_resp_t *t = poll_task(TQ, "xa8");
  const pb_event_t *st = NULL, *done = NULL;
  ck_assert_int_eq(count_events(t->history, PB_EV(ACTIVITY_TASK_STARTED), &st), 1);
  ck_assert_int_eq(count_events(t->history, PB_EV(ACTIVITY_TASK_COMPLETED), &done), 1);
  const Temporal__Api__History__V1__ActivityTaskStartedEventAttributes *sa =
      st->activity_task_started_event_attributes;
  ck_assert_int_eq(sa->attempt, 1);
  ck_assert_str_eq(sa->identity, "history-test"); /* the poller's, restored */
  ck_assert_int_eq(strlen(sa->request_id), 36);
  ck_assert(payloads_are(done->activity_task_completed_event_attributes->result, "done-once"));
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xa8"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
}
END_TEST

/* (8b) A restored start keeps its start-to-close timeout counted from the start: the
 * worker that took attempt 1 (start-to-close 3 s) is gone with the crash, and attempt 2 is
 * handed out once those 3 s from the start (and the 50 ms backoff) are over, not 3 s from
 * the restart, nor at once. */
START_TEST(test_activity_start_restart_timeout) {
  char run[37];
  start_on("xa8t", TQ, run);
  schedule_activity_st2c(poll_task(TQ, "xa8t"), 3, 50, 3000);
  poll_act_resp_t *a = poll_activity("xa8t");
  int64_t started_ms = ts_ms(a->started_time);
  ck_assert_int_eq(a->attempt, 1);
  protobuf_c_message_free_unpacked(&a->base, NULL);
  await_start_in_row(run);

  crash_restart();
  int64_t restarted_ms = gt_wall_ns() / 1000000;
  a = poll_activity("xa8t");
  int64_t got_ms = gt_wall_ns() / 1000000;
  ck_assert_int_eq(a->attempt, 2);
  ck_assert_int_ge(got_ms + 5, started_ms + 3000 + 50);
  ck_assert_int_lt(got_ms, restarted_ms + 3000); /* counted from the start, not the load */
  complete_activity(a, "second");
  poll_wft_resp_t *t = poll_task(TQ, "xa8t");
  const pb_event_t *st = NULL;
  ck_assert_int_eq(count_events(t->history, PB_EV(ACTIVITY_TASK_STARTED), &st), 1);
  ck_assert_int_eq(st->activity_task_started_event_attributes->attempt, 2);
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xa8t"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
}
END_TEST

/* (7) Heartbeat details survive a restart: attempt 1 heartbeats "hb-1" (which writes the
 * row, and the activity's start with it), the server restarts: attempt 1 is not handed
 * out again, its worker heartbeats "hb-2" with the token it had and fails it retryably;
 * after another restart attempt 2 is handed "hb-2"
 * (PollActivityTaskQueueResponse.heartbeat_details), with attempt 1's failure recorded. */
START_TEST(test_activity_heartbeat_restart) {
  char run[37];
  start_on("xa7", TQ, run);
  schedule_activity(poll_task(TQ, "xa7"), 3, 50);
  poll_act_resp_t *a = poll_activity("xa7");
  ck_assert_int_eq(a->attempt, 1);
  ck_assert_ptr_null(a->heartbeat_details);
  heartbeat(a, "hb-1");
  heartbeat(a, "hb-1"); /* the same again: nothing to write */

  crash_restart();
  poll_activity_none();
  heartbeat(a, "hb-2");
  fail_activity(a, "boom-1");

  crash_restart();
  a = poll_activity("xa7");
  ck_assert_int_eq(a->attempt, 2);
  ck_assert_msg(payloads_are(a->heartbeat_details, "hb-2"), "attempt 2 lost the details");
  fail_activity(a, "boom-2");
  a = poll_activity("xa7"); /* no restart: the same details, from memory */
  ck_assert_int_eq(a->attempt, 3);
  ck_assert(payloads_are(a->heartbeat_details, "hb-2"));
  fail_activity(a, "boom-3");
  poll_wft_resp_t *t = poll_task(TQ, "xa7");
  const pb_event_t *st = NULL;
  ck_assert_int_eq(count_events(t->history, PB_EV(ACTIVITY_TASK_STARTED), &st), 1);
  ck_assert_int_eq(st->activity_task_started_event_attributes->attempt, 3);
  ck_assert_str_eq(st->activity_task_started_event_attributes->last_failure->message,
                   "boom-2");
  complete_workflow(t, NULL);
  ck_assert_int_eq(await_closed("xa7"), PB_EV(WORKFLOW_EXECUTION_COMPLETED));
}
END_TEST

START_TEST(test_state_field) {
  int xwf = -1;
  ck_assert_int_eq(wf_state_recovery(NULL, 0, &xwf), WF_STATE_AWAKE);
  ck_assert_int_eq(xwf, 0);
  /* msgpack [0,0,0,0,0,0,[],nil,0,-1]: a row written before field 10 */
  static const uint8_t old[] = {0x9a, 0, 0, 0, 0, 0, 0, 0x90, 0xc0, 0, 0xff};
  xwf = -1;
  ck_assert_int_eq(wf_state_recovery(old, sizeof(old), &xwf), WF_STATE_ASLEEP_UNTIL_MESSAGE);
  ck_assert_int_eq(xwf, 0);
  static const uint8_t neu[] = {0x9b, 0, 0, 0, 0, 0, 0, 0x90, 0xc0, 0, 0xff, 1};
  xwf = -1;
  ck_assert_int_eq(wf_state_recovery(neu, sizeof(neu), &xwf), WF_STATE_ASLEEP_UNTIL_MESSAGE);
  ck_assert_int_eq(xwf, 1);
  /* field 11 (activities' retry state: [[5, 2, 7, nil, bin ""]]) leaves 9 and 10 as read */
  static const uint8_t acts[] = {0x9c, 0, 0, 0, 0, 0, 0, 0x90, 0xc0, 0, 0xff, 1,
                                 0x91, 0x95, 5, 2, 7, 0xc0, 0xc4, 0};
  xwf = -1;
  ck_assert_int_eq(wf_state_recovery(acts, sizeof(acts), &xwf), WF_STATE_ASLEEP_UNTIL_MESSAGE);
  ck_assert_int_eq(xwf, 1);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("history_xwf");
  TCase *tc = tcase_create("crash");
  tcase_add_checked_fixture(tc, file_setup, file_teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_child_closed_lost);
  tcase_add_test(tc, test_child_closed_lost_id_reused);
  tcase_add_test(tc, test_child_closed_lost_continued_id_reused);
  tcase_add_test(tc, test_child_deleted_notice_lost);
  tcase_add_loop_test(tc, test_parent_deleted_policy_lost, 0, 2);
  tcase_add_loop_test(tc, test_child_start_lost, 0, 2);
  tcase_add_loop_test(tc, test_signal_lost, 0, 2);
  tcase_add_loop_test(tc, test_cancel_external_lost, 0, 2);
  tcase_add_test(tc, test_parent_close_policy_lost);
  tcase_add_test(tc, test_parent_close_policy_lost_after_continue);
  tcase_add_test(tc, test_signal_retry_applied_once);
  tcase_add_test(tc, test_activity_retry_restart);
  tcase_add_test(tc, test_activity_heartbeat_restart);
  tcase_add_test(tc, test_activity_start_restart);
  tcase_add_test(tc, test_activity_start_restart_timeout);
  tcase_add_test(tc, test_speculative_task_restart);
  suite_add_tcase(s, tc);
  TCase *unit = tcase_create("state");
  tcase_add_test(unit, test_state_field);
  suite_add_tcase(s, unit);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
