/*
 * vis_outbox_test.c: the visibility outbox (actors/visibility/vis_outbox.c): a server whose
 * visibilityStore is another SQLite file writes its records there, through
 * visibility_tasks in the default file; a record the visibility store refused is applied
 * by the sweep once it takes records again; rows a previous process left are applied at
 * start; the task row codec refuses torn data.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/visibility/vis_outbox.h"
#include "config/config_int.h"
#include "persistence/sqlite/sqlite_int.h"
#include "history_fixture.h"

static char g_dir[64];
static char g_a[96], g_b[96];

static int g_retention; /* the next vis_start shortens retention (genesis.* keys) */

/* A server on g_a (default store) with its visibility in g_b. */
static void vis_start(void) {
  gt_log_setup(GT_LOG_ERROR, GT_LOG_TEXT);
  gt_config_defaults(&g_cfg);
  if (g_retention) {
    g_cfg.dynamic_keys[0] = strdup("genesis.retentionOverrideMs");
    g_cfg.dynamic_values[0] = strdup("200");
    g_cfg.dynamic_keys[1] = strdup("genesis.retentionSweepIntervalMs");
    g_cfg.dynamic_values[1] = strdup("50");
    g_cfg.n_dynamic = 2;
  }
  g_cfg.grpc_port = 0;
  g_cfg.http_port = 0;
  g_cfg.scheduler_threads = 2;
  ck_assert_int_eq(gt__config_set_str(&g_cfg.sqlite_path, g_a), 0);
  ck_assert_int_eq(gt__config_set_str(&g_cfg.vis_store_name, "vis"), 0);
  ck_assert_int_eq(gt__config_set_str(&g_cfg.vis_store_plugin, "sqlite"), 0);
  ck_assert_int_eq(gt__config_set_str(&g_cfg.vis_sqlite_path, g_b), 0);
  ck_assert_int_eq(gt_server_start(&g_srv, &g_cfg), 0);
  ck_assert(gt_vis_outboxed(g_srv));
  h2c_open(&g_c, gt_gateway_port(g_srv->gw));
}

static void vis_setup(void) {
  snprintf(g_dir, sizeof g_dir, "/tmp/gt-vis-outbox-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(g_dir));
  snprintf(g_a, sizeof g_a, "%s/a.db", g_dir);
  snprintf(g_b, sizeof g_b, "%s/b.db", g_dir);
  vis_start();
}

static void vis_teardown(void) {
  teardown();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  ck_assert_int_eq(system(cmd), 0);
}

/* count(*) of a query on a store. */
static int64_t count_of(gt_store_t *st, const char *sql, const char *run_id) {
  gt_val_t p = gt_val_text(run_id);
  gt_rows_t *rows = NULL;
  ck_assert_int_eq(gt_store_read_sql_sync(st, sql, &p, run_id ? 1 : 0, &rows), 0);
  int64_t n = gt_rows_at(rows, 0, 0)->i;
  gt_store_rows_free(rows);
  return n;
}

#define VIS_OF_RUN "SELECT count(*) FROM visibility WHERE run_id = ?1"
#define CLOSED_OF_RUN "SELECT count(*) FROM visibility WHERE run_id = ?1 AND status = 2"
#define TASKS "SELECT count(*) FROM visibility_tasks"

/* Waits (up to 10 s) until the query counts `want`; fails with its last count. */
static void await_count(gt_store_t *st, const char *sql, const char *run_id, int64_t want) {
  int64_t n = -1;
  for (int i = 0; i < 10000; i++) {
    if ((n = count_of(st, sql, run_id)) == want)
      return;
    usleep(1000);
  }
  ck_abort_msg("%s [%s]: %lld, wanted %lld", sql, run_id ? run_id : "", (long long)n,
               (long long)want);
}

/* Starts wid and completes it with its first workflow task. OUT: run_id. */
static void run_to_completion(const char *wid, char run_id[37]) {
  ck_assert_int_eq(start_ok(wid, "req-vis", 0, run_id), 1);
  poll_wft_resp_t *t = poll_wft();
  wft_done_ok(&t->task_token, 'C');
  protobuf_c_message_free_unpacked(&t->base, NULL);
}

/* ListWorkflowExecutions' executions for `query`. */
static size_t list_count(const char *query) {
  Temporal__Api__Workflowservice__V1__ListWorkflowExecutionsRequest r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__LIST_WORKFLOW_EXECUTIONS_REQUEST__INIT;
  r.namespace_ = NS;
  r.query = (char *)query;
  h2c_stream_t s = {0};
  h2c_call(&g_c, &s, "ListWorkflowExecutions", &r.base, NULL);
  h2c_wait(&g_c, &s);
  ck_assert_msg(s.grpc_status == 0, "List: %d %s", s.grpc_status, s.message);
  Temporal__Api__Workflowservice__V1__ListWorkflowExecutionsResponse *resp = h2c_unpack(
      &s, &temporal__api__workflowservice__v1__list_workflow_executions_response__descriptor);
  size_t n = resp->n_executions;
  protobuf_c_message_free_unpacked(&resp->base, NULL);
  h2c_stream_free(&s);
  return n;
}

START_TEST(test_records_reach_visibility_store) {
  char run[37];
  run_to_completion("wf-vis-1", run);
  /* the record reaches the visibility file, closed, and only it; the task row goes */
  await_count(g_srv->vis_store, CLOSED_OF_RUN, run, 1);
  await_count(g_srv->store, TASKS, NULL, 0);
  ck_assert_int_eq(count_of(g_srv->store, VIS_OF_RUN, run), 0);
  /* List reads the visibility store */
  ck_assert_uint_eq(list_count("WorkflowId = 'wf-vis-1' AND ExecutionStatus = 'Completed'"),
                    1);
  /* deleting the run deletes its record there too */
  Temporal__Api__Workflowservice__V1__DeleteWorkflowExecutionRequest d =
      TEMPORAL__API__WORKFLOWSERVICE__V1__DELETE_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  d.namespace_ = NS;
  ex.workflow_id = "wf-vis-1";
  ex.run_id = run;
  d.workflow_execution = &ex;
  h2c_stream_t s = {0};
  h2c_call(&g_c, &s, "DeleteWorkflowExecution", &d.base, NULL);
  h2c_wait(&g_c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  h2c_stream_free(&s);
  await_count(g_srv->vis_store, VIS_OF_RUN, run, 0);
  await_count(g_srv->store, TASKS, NULL, 0);
}
END_TEST

/* The visibility store refuses records (its table renamed away): the run still completes,
 * its record waits in visibility_tasks, and once the table is back the sweep applies it. */
START_TEST(test_refused_record_is_swept) {
  ck_assert_int_eq(gt__sqlite_exec_sync(g_srv->vis_store,
                                        "ALTER TABLE visibility RENAME TO visibility_off"), 0);
  char run[37];
  run_to_completion("wf-vis-2", run);
  await_count(g_srv->store, TASKS, NULL, 2); /* its start and its close */
  /* /metrics shows it: counted once the outbox actor has the store's answer */
  for (int i = 0; i < 10000 && atomic_load(&g_srv->vis_failed) < 1; i++)
    usleep(1000);
  ck_assert_uint_ge(atomic_load(&g_srv->vis_failed), 1);
  uint64_t applied = atomic_load(&g_srv->vis_applied);
  ck_assert_int_eq(gt__sqlite_exec_sync(g_srv->vis_store,
                                        "ALTER TABLE visibility_off RENAME TO visibility"), 0);
  await_count(g_srv->vis_store, CLOSED_OF_RUN, run, 1);
  await_count(g_srv->store, TASKS, NULL, 0);
  ck_assert_uint_ge(atomic_load(&g_srv->vis_applied), applied + 2);
}
END_TEST

/* Rows left in visibility_tasks by a process that stopped before applying them (here
 * written straight into the file while no server runs) are applied at the next start, in
 * order (the close after the start wins); an unreadable row is dropped. */
START_TEST(test_left_rows_applied_at_start) {
  h2c_close(&g_c);
  gt_server_stop(g_srv);
  g_srv = NULL;
  gt_config_fini(&g_cfg); /* vis_start makes it again */

  gt_shard_t shard = {0};
  gt_server_t fake = {.num_shards = 1, .shards = &shard};
  atomic_store(&shard.next_task_id, 7);
  gt_vis_record_t rec = {.ns_id = "ns-left", .run_id = "run-left", .workflow_id = "wf-left",
                         .workflow_type = "T", .task_queue = "q", .status = 1,
                         .start_ns = 5, .execution_ns = 5, .history_length = 2};
  gt_store_op_t ops[3];
  gt_vis_task_t *open_task, *closed_task;
  ck_assert_int_eq(gt_vis_task_upsert(&fake, 0, &rec, &ops[0], &open_task), 0);
  rec.status = 2;
  rec.close_ns = 9;
  rec.history_length = 5;
  ck_assert_int_eq(gt_vis_task_upsert(&fake, 0, &rec, &ops[1], &closed_task), 0);
  ops[2] = ops[1];
  ops[2].params[1] = gt_val_int(100);
  ops[2].params[2] = gt_val_blob("junk", 4);

  gt_store_t *st = NULL;
  gt_store_config_t sc = {.backend = GT_STORE_SQLITE, .sqlite_path = g_a, .num_shards = 4};
  ck_assert_int_eq(gt_store_open(&st, &sc), 0);
  int failed = -1;
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, ops, 3, &failed), 0);
  gt_store_close(st);
  gt_vis_task_free(open_task);
  gt_vis_task_free(closed_task);

  vis_start();
  await_count(g_srv->store, TASKS, NULL, 0);
  ck_assert_int_eq(count_of(g_srv->vis_store, CLOSED_OF_RUN, "run-left"), 1);
}
END_TEST

/* Retention deletes a closed run's record in the visibility store too (its outbox row
 * goes with the run's deletion; the sweep applies it). */
START_TEST(test_retention_deletes_the_record) {
  h2c_close(&g_c);
  gt_server_stop(g_srv);
  g_srv = NULL;
  gt_config_fini(&g_cfg);
  g_retention = 1;
  vis_start();
  g_retention = 0;
  char run[37];
  run_to_completion("wf-vis-ret", run);
  await_count(g_srv->vis_store, CLOSED_OF_RUN, run, 1);
  await_count(g_srv->store, "SELECT count(*) FROM executions WHERE run_id = ?1", run, 0);
  await_count(g_srv->vis_store, VIS_OF_RUN, run, 0);
  await_count(g_srv->store, TASKS, NULL, 0);
}
END_TEST

START_TEST(test_task_codec) {
  gt_shard_t shards[2] = {{0}, {0}};
  gt_server_t fake = {.num_shards = 2, .shards = shards};
  atomic_store(&shards[1].next_task_id, 42);
  gt_vis_record_t rec = {.ns_id = "ns", .run_id = "r1", .workflow_id = "w", .workflow_type = "T",
                         .task_queue = "q", .status = 2, .start_ns = -3,
                         .execution_ns = 1LL << 40, .close_ns = 8, .history_length = 11,
                         .memo = (const uint8_t *)"\x0a\x00", .memo_len = 2};
  gt_store_op_t row, op;
  gt_vis_task_t *t;
  ck_assert_int_eq(gt_vis_task_upsert(&fake, 1, &rec, &row, &t), 0);
  ck_assert_int_eq(row.stmt, GT_SQL_VISIBILITY_TASK_INSERT);
  ck_assert_int_eq(row.params[0].i, 1);
  ck_assert_int_eq(row.params[1].i, 42);
  const uint8_t *data = row.params[2].p;
  size_t len = row.params[2].len;
  ck_assert_int_eq(gt__vis_task_decode(data, len, &op), 0);
  ck_assert_int_eq(op.stmt, GT_SQL_VISIBILITY_APPLY);
  ck_assert_int_eq(op.nparams, 13);
  ck_assert_int_eq(op.params[1].len, 2);
  ck_assert_mem_eq(op.params[1].p, "r1", 2);
  ck_assert_int_eq(op.params[6].i, -3);
  ck_assert_int_eq(op.params[7].i, 1LL << 40);
  ck_assert_int_eq(op.params[9].i, 11);
  ck_assert_int_eq(op.params[10].kind, GT_VAL_BLOB);
  ck_assert_int_eq(op.params[11].kind, GT_VAL_NULL); /* no search attributes */
  ck_assert_int_eq(op.params[12].kind, GT_VAL_NULL);
  /* every truncation, and a foreign magic, is refused */
  for (size_t cut = 0; cut < len; cut++)
    ck_assert_int_eq(gt__vis_task_decode(data, cut, &op), GT_ECORRUPT);
  uint8_t *bad = malloc(len + 1);
  memcpy(bad, data, len);
  bad[len] = 0;
  ck_assert_int_eq(gt__vis_task_decode(bad, len + 1, &op), GT_ECORRUPT); /* trailing byte */
  bad[0] = 'X';
  ck_assert_int_eq(gt__vis_task_decode(bad, len, &op), GT_ECORRUPT);
  free(bad);
  gt_vis_task_free(t);

  ck_assert_int_eq(gt_vis_task_delete(&fake, 0, "ns", "r2", &row, &t), 0);
  ck_assert_int_eq(gt__vis_task_decode(row.params[2].p, row.params[2].len, &op), 0);
  ck_assert_int_eq(op.stmt, GT_SQL_VISIBILITY_DELETE);
  ck_assert_int_eq(op.nparams, 2);
  ck_assert_mem_eq(op.params[1].p, "r2", 2);
  gt_vis_task_free(t);
}
END_TEST

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("vis_outbox");
  TCase *codec = tcase_create("codec");
  tcase_add_test(codec, test_task_codec);
  suite_add_tcase(s, codec);
  TCase *tc = tcase_create("server");
  tcase_add_checked_fixture(tc, vis_setup, vis_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_records_reach_visibility_store);
  tcase_add_test(tc, test_refused_record_is_swept);
  tcase_add_test(tc, test_left_rows_applied_at_start);
  tcase_add_test(tc, test_retention_deletes_the_record);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
