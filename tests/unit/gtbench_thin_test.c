/*
 * gtbench_thin_test.c: gtbench's wire reader (tools/gtbench/thin.c) against messages packed
 * by protobuf-c: the fields it reads are the ones protobuf-c wrote, unknown fields are
 * skipped, and every truncation of a message is refused, never read past.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "temporal/api/workflowservice/v1/request_response.pb-c.h"
#include "tools/gtbench/thin.h"

typedef Temporal__Api__History__V1__HistoryEvent event_t;

typedef struct seen {
  int types[16];
  int n;
} seen_t;

static void on_event(int type, void *ud) {
  seen_t *s = ud;
  ck_assert_int_lt(s->n, 16);
  s->types[s->n++] = type;
}

/* A poll response with a token, an execution, three events with attributes (payloads,
 * task queue) and fields the reader does not want (attempt, workflow type). */
static uint8_t *packed_wft(size_t *len) {
  Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_WORKFLOW_TASK_QUEUE_RESPONSE__INIT;
  Temporal__Api__Common__V1__WorkflowExecution ex =
      TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  Temporal__Api__Common__V1__WorkflowType wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  Temporal__Api__History__V1__History h = TEMPORAL__API__HISTORY__V1__HISTORY__INIT;
  event_t e[3];
  event_t *ep[3];
  Temporal__Api__History__V1__WorkflowExecutionStartedEventAttributes sa =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES__INIT;
  Temporal__Api__Taskqueue__V1__TaskQueue tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  Temporal__Api__Common__V1__WorkflowType st = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  static const int types[3] = {1, 5, 10}; /* started, task scheduled, activity scheduled */
  for (int i = 0; i < 3; i++) {
    temporal__api__history__v1__history_event__init(&e[i]);
    e[i].event_id = i + 1;
    e[i].event_type = types[i];
    ep[i] = &e[i];
  }
  tq.name = "queue";
  st.name = "Hello";
  sa.task_queue = &tq;
  sa.workflow_type = &st;
  e[0].attributes_case =
      TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__ATTRIBUTES_WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES;
  e[0].workflow_execution_started_event_attributes = &sa;
  h.n_events = 3;
  h.events = ep;
  ex.workflow_id = "wf-42";
  ex.run_id = "run";
  wt.name = "Hello";
  r.task_token.data = (uint8_t *)"TOKEN";
  r.task_token.len = 5;
  r.workflow_execution = &ex;
  r.workflow_type = &wt;
  r.attempt = 3;
  r.history = &h;
  *len = temporal__api__workflowservice__v1__poll_workflow_task_queue_response__get_packed_size(&r);
  uint8_t *buf = malloc(*len);
  temporal__api__workflowservice__v1__poll_workflow_task_queue_response__pack(&r, buf);
  return buf;
}

START_TEST(test_wft_fields) {
  size_t n;
  uint8_t *buf = packed_wft(&n);
  thin_wft_t w;
  seen_t s = {0};
  ck_assert_int_eq(thin_wft_read(buf, n, &w, on_event, &s), 0);
  ck_assert_uint_eq(w.token_len, 5);
  ck_assert_mem_eq(w.token, "TOKEN", 5);
  ck_assert_uint_eq(w.workflow_id_len, 5);
  ck_assert_mem_eq(w.workflow_id, "wf-42", 5);
  ck_assert_int_eq(s.n, 3);
  ck_assert_int_eq(s.types[0], 1);
  ck_assert_int_eq(s.types[1], 5);
  ck_assert_int_eq(s.types[2], 10);
  free(buf);
}
END_TEST

/* Every strict prefix that cuts a field is refused (a cut between fields is a valid,
 * shorter message); nothing reads past the prefix (ASan watches the copies). */
START_TEST(test_wft_truncated) {
  size_t n;
  uint8_t *buf = packed_wft(&n);
  int refused = 0;
  for (size_t k = 0; k < n; k++) {
    uint8_t *cut = malloc(k ? k : 1);
    memcpy(cut, buf, k);
    thin_wft_t w;
    seen_t s = {0};
    if (thin_wft_read(cut, k, &w, on_event, &s) != 0)
      refused++;
    free(cut);
  }
  ck_assert_int_gt(refused, (int)n / 2);
  /* a wire type that does not exist */
  uint8_t bad[2] = {(9 << 3) | 7, 0};
  thin_wft_t w;
  ck_assert_int_eq(thin_wft_read(bad, 2, &w, NULL, NULL), -1);
  free(buf);
}
END_TEST

static void on_task(const uint8_t *token, size_t len, void *ud) {
  seen_t *s = ud;
  ck_assert_int_lt(s->n, 16);
  s->types[s->n++] = (int)len * 100 + token[0];
}

START_TEST(test_act_token_and_eager) {
  Temporal__Api__Workflowservice__V1__PollActivityTaskQueueResponse a[2];
  Temporal__Api__Workflowservice__V1__PollActivityTaskQueueResponse *ap[2] = {&a[0], &a[1]};
  for (int i = 0; i < 2; i++) {
    temporal__api__workflowservice__v1__poll_activity_task_queue_response__init(&a[i]);
    a[i].task_token.data = (uint8_t *)(i ? "BB" : "A");
    a[i].task_token.len = (size_t)i + 1;
    a[i].activity_id = "1";
    a[i].attempt = 1;
  }
  size_t n = temporal__api__workflowservice__v1__poll_activity_task_queue_response__get_packed_size(&a[1]);
  uint8_t buf[256];
  temporal__api__workflowservice__v1__poll_activity_task_queue_response__pack(&a[1], buf);
  const uint8_t *tok;
  size_t tl;
  ck_assert_int_eq(thin_act_token(buf, n, &tok, &tl), 0);
  ck_assert_uint_eq(tl, 2);
  ck_assert_mem_eq(tok, "BB", 2);
  ck_assert_int_eq(thin_act_token(buf, 0, &tok, &tl), 0); /* the empty poll */
  ck_assert_uint_eq(tl, 0);

  Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__RESPOND_WORKFLOW_TASK_COMPLETED_RESPONSE__INIT;
  r.n_activity_tasks = 2;
  r.activity_tasks = ap;
  r.reset_history_event_id = 7;
  n = temporal__api__workflowservice__v1__respond_workflow_task_completed_response__get_packed_size(&r);
  temporal__api__workflowservice__v1__respond_workflow_task_completed_response__pack(&r, buf);
  seen_t s = {0};
  ck_assert_int_eq(thin_eager_acts(buf, n, on_task, &s), 2);
  ck_assert_int_eq(s.n, 2);
  ck_assert_int_eq(s.types[0], 100 + 'A');
  ck_assert_int_eq(s.types[1], 200 + 'B');
  s.n = 0;
  ck_assert_int_eq(thin_eager_acts(buf, n - 1, on_task, &s), -1);

  /* a start reply with an eager workflow task: its bytes, which thin_wft_read reads */
  size_t wn;
  uint8_t *w = packed_wft(&wn);
  Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueResponse *wft =
      temporal__api__workflowservice__v1__poll_workflow_task_queue_response__unpack(NULL, wn, w);
  ck_assert_ptr_nonnull(wft);
  Temporal__Api__Workflowservice__V1__StartWorkflowExecutionResponse sr =
      TEMPORAL__API__WORKFLOWSERVICE__V1__START_WORKFLOW_EXECUTION_RESPONSE__INIT;
  sr.run_id = "run";
  sr.started = 1;
  sr.eager_workflow_task = wft;
  size_t sn = temporal__api__workflowservice__v1__start_workflow_execution_response__get_packed_size(&sr);
  uint8_t *sb = malloc(sn);
  temporal__api__workflowservice__v1__start_workflow_execution_response__pack(&sr, sb);
  const uint8_t *task;
  ck_assert_int_eq(thin_start_eager_task(sb, sn, &task, &tl), 0);
  ck_assert_uint_eq(tl, wn);
  thin_wft_t t;
  seen_t ev = {0};
  ck_assert_int_eq(thin_wft_read(task, tl, &t, on_event, &ev), 0);
  ck_assert_int_eq(ev.n, 3);
  sr.eager_workflow_task = NULL; /* none: len 0 */
  sn = temporal__api__workflowservice__v1__start_workflow_execution_response__pack(&sr, sb);
  ck_assert_int_eq(thin_start_eager_task(sb, sn, &task, &tl), 0);
  ck_assert_uint_eq(tl, 0);
  free(sb);
  temporal__api__workflowservice__v1__poll_workflow_task_queue_response__free_unpacked(wft, NULL);
  free(w);
}
END_TEST

static Suite *thin_suite(void) {
  Suite *s = suite_create("gtbench_thin");
  TCase *tc = tcase_create("wire");
  tcase_add_test(tc, test_wft_fields);
  tcase_add_test(tc, test_wft_truncated);
  tcase_add_test(tc, test_act_token_and_eager);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(thin_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
