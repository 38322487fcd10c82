/*
 * persistence_postgres_test.c: the Check suite of the PostgreSQL store backend
 * (store.h over persistence/postgres/).
 *
 * DESIGN
 *   An unchecked fixture starts a throwaway PostgreSQL 15 (tools/pg-test-server.sh) once
 *   for the suite and removes it at the end; if it cannot start, every test FAILS (no
 *   skipping). Each test gets a fresh database (CREATE DATABASE in the checked fixture).
 *   As in persistence_test.c, group-commit and close tests hold the writer thread inside
 *   the completion of a "blocker" batch, so batches queue up behind it deterministically.
 *   The restart test stops the server (pg_ctl stop -m fast) while batches wait behind the
 *   blocker, checks they fail with GT_EIO/GT_EUNAVAIL and that nothing of them was
 *   written, restarts it and checks the store recovers.
 *   The writer-slot tests check per-shard order over several writer connections (chains
 *   of batches that each need the previous one) and that one shard's group stuck on a
 *   row lock, held by the test's own session, does not hold back another shard's.
 *
 * THREADS
 *   The test thread, plus the store's threads (completions) and helper submitter threads.
 */
#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "persistence/postgres/pg_int.h"
#include "persistence/store.h"
#include "persistence/store_int.h"
#include "runtime/err.h"
#include "tests/unit/store_fixture.h"

/* ------------------------------------------------------------------ server --- */

static char g_srv_dir[64];
static char g_base[512]; /* conninfo without dbname */
static char g_conninfo[640];
static char g_script[1024];
static int g_db_seq;

/* Runs the test server script: `cmd` on g_srv_dir. OUT: out (first line of stdout).
 * Returns the exit status. */
static int script(const char *cmd, char *out, size_t n) {
  char line[1200];
  snprintf(line, sizeof(line), "%s %s %s", g_script, cmd, g_srv_dir);
  FILE *p = popen(line, "r");
  if (!p)
    return -1;
  char buf[512] = "";
  if (!fgets(buf, sizeof(buf), p))
    buf[0] = '\0';
  int st = pclose(p);
  buf[strcspn(buf, "\n")] = '\0';
  if (out)
    snprintf(out, n, "%s", buf);
  return st;
}

static void server_start(void) {
  snprintf(g_script, sizeof(g_script), "%s", __FILE__);
  char *slash = strrchr(g_script, '/');
  snprintf(slash, sizeof(g_script) - (size_t)(slash - g_script),
           "/../../tools/pg-test-server.sh");
  snprintf(g_srv_dir, sizeof(g_srv_dir), "/tmp/gt_pgtest_XXXXXX");
  if (!mkdtemp(g_srv_dir))
    return;
  char info[512];
  if (script("start", info, sizeof(info)) != 0)
    return;
  char *db = strstr(info, " dbname=");
  if (db)
    *db = '\0';
  snprintf(g_base, sizeof(g_base), "%s", info);
}

static void server_stop(void) {
  if (g_srv_dir[0])
    script("stop", NULL, 0);
}

static PGconn *raw_connect(const char *dbname) {
  char ci[640];
  snprintf(ci, sizeof(ci), "%s dbname=%s", g_base, dbname);
  ck_assert_int_eq(gt__pq_load(), 0); /* libpq is loaded, not linked (pq_dl.h) */
  PGconn *pg = PQconnectdb(ci);
  ck_assert_msg(PQstatus(pg) == CONNECTION_OK, "connect: %s", PQerrorMessage(pg));
  return pg;
}

static void raw_exec_on(const char *dbname, const char *sql) {
  PGconn *pg = raw_connect(dbname);
  PGresult *r = PQexec(pg, sql);
  ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                "%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(pg);
}

static char g_dbname[64];

/* Runs sql on the test database, returns the first column of the first row as int. */
static long long raw_int(const char *sql) {
  PGconn *pg = raw_connect(g_dbname);
  PGresult *r = PQexec(pg, sql);
  ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                PQresultErrorMessage(r));
  ck_assert_int_eq(PQntuples(r), 1);
  long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  PQfinish(pg);
  return v;
}

static void reset_counters(void);

/* A fresh database per test. */
static void db_setup(void) {
  reset_counters();
  ck_assert_msg(g_base[0], "the test PostgreSQL could not start (tools/pg-test-server.sh)");
  snprintf(g_dbname, sizeof(g_dbname), "gt_t%d_%d", (int)getpid(), g_db_seq++);
  char sql[128];
  snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", g_dbname);
  raw_exec_on("postgres", sql);
  snprintf(g_conninfo, sizeof(g_conninfo), "%s dbname=%s", g_base, g_dbname);
}

static void db_teardown(void) {}

/* ------------------------------------------------------------------ helpers --- */

#define READERS 3

/* max_conns: the store's pg_max_conns (0: no bound, GT_PG_WRITER_CONNS writers). */
static int open_db_conns(gt_store_t **st, int max_conns) {
  gt_store_config_t cfg = {.backend = GT_STORE_POSTGRES,
                           .pg_conninfo = g_conninfo,
                           .reader_threads = READERS,
                           .pg_max_conns = max_conns,
                           .num_shards = 4};
  return gt_store_open(st, &cfg);
}

static int open_db(gt_store_t **st) { return open_db_conns(st, 0); }

static gt_store_t *must_open_conns(int max_conns) {
  gt_store_t *st = NULL;
  ck_assert_int_eq(open_db_conns(&st, max_conns), 0);
  ck_assert_ptr_nonnull(st);
  return st;
}

static gt_store_t *must_open(void) { return must_open_conns(0); }

static gt_store_op_t op_exec_insert(const char *wf, int64_t next, int64_t ver,
                                    const char *state) {
  return (gt_store_op_t){GT_SQL_EXECUTION_INSERT, 7,
                         {gt_val_int(1), gt_val_text("ns"), gt_val_text(wf),
                          gt_val_text(wf), gt_val_int(next), gt_val_int(ver),
                          gt_val_blob(state, strlen(state))},
                         -1};
}

/* wc_wait that gives up after secs (a bound for a test that would otherwise hang).
 * Returns 1 when n was reached. */
static int wc_wait_for(waitc_t *w, int n, int secs) {
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += secs;
  int rc = 0;
  pthread_mutex_lock(&w->mu);
  while (w->n < n && rc == 0)
    rc = pthread_cond_timedwait(&w->cv, &w->mu, &dl);
  int ok = w->n >= n;
  pthread_mutex_unlock(&w->mu);
  return ok;
}

static void blocker_cb(void *ctx, int rc, int failed_op) {
  ck_assert_int_eq(rc, 0);
  wc_add(&g_entered);
  wc_wait(&g_gate, 1);
}

static void block_writer(gt_store_t *st) {
  ck_assert_int_eq(gt_store_write(st, -1, 0, NULL, 0, blocker_cb, NULL), 0);
  wc_wait(&g_entered, 1);
}

/* ------------------------------------------------------------------ schema --- */

START_TEST(test_schema_created_and_reopened) {
  gt_store_close(must_open());
  gt_store_close(must_open()); /* the version check passes on reopen */
  ck_assert_int_eq(raw_int("SELECT schema_version FROM cluster_metadata"),
                   GT_PG_SCHEMA_VERSION);
  ck_assert_int_eq(raw_int("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
                   13);
  ck_assert_int_eq(raw_int("SELECT count(*) FROM shards"), 4);
  ck_assert_int_eq(raw_int("SELECT length(cluster_id) FROM cluster_metadata"), 32);
}
END_TEST

START_TEST(test_embedded_schema_matches_file) {
  char p[1024];
  snprintf(p, sizeof(p), "%s", __FILE__);
  char *slash = strrchr(p, '/');
  snprintf(slash, sizeof(p) - (size_t)(slash - p),
           "/../../persistence/schema/postgres/v2.sql");
  size_t n;
  char *text = read_file(p, &n);
  ck_assert_str_eq(text, gt__pg_schema_v2);
  free(text);
}
END_TEST

START_TEST(test_statement_signatures) {
  for (int id = 0; id < GT_SQL__COUNT; id++) { /* both assert a non-NULL entry */
    ck_assert_int_eq((int)strlen(gt__pg_sig(id)), gt__store_stmt_info[id].nparams);
    ck_assert_ptr_nonnull(gt__pg_sql(id));
  }
}
END_TEST

START_TEST(test_wrong_schema_version_refused) {
  gt_store_close(must_open());
  raw_exec_on(g_dbname, "UPDATE cluster_metadata SET schema_version = 99");
  gt_store_t *st = NULL;
  ck_assert_int_eq(open_db(&st), GT_ECORRUPT);
  ck_assert_ptr_null(st);
  ck_assert_int_eq(raw_int("SELECT schema_version FROM cluster_metadata"), 99);
}
END_TEST

START_TEST(test_foreign_tables_refused) {
  raw_exec_on(g_dbname, "CREATE TABLE history (x integer); INSERT INTO history VALUES (1)");
  gt_store_t *st = NULL;
  ck_assert_int_eq(open_db(&st), GT_ECORRUPT);
  ck_assert_ptr_null(st);
  /* nothing created: the schema is one transaction */
  ck_assert_int_eq(raw_int("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
                   1);
  ck_assert_int_eq(raw_int("SELECT x FROM history"), 1);
}
END_TEST

START_TEST(test_unreachable_is_eio_quickly) {
  gt_store_config_t cfg = {.backend = GT_STORE_POSTGRES,
                           .pg_conninfo = "host=127.0.0.1 port=1 user=postgres dbname=x"};
  gt_store_t *st = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ck_assert_int_eq(gt_store_open(&st, &cfg), GT_EIO);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  ck_assert_ptr_null(st);
  ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 3);
  gt_store_config_t none = {.backend = GT_STORE_POSTGRES};
  ck_assert_int_eq(gt_store_open(&st, &none), GT_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------ shards --- */

START_TEST(test_acquire_shard) {
  gt_store_t *st = must_open();
  int64_t r = 0;
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "node-a", &r), 0);
  ck_assert_int_eq(r, 1);
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "node-b", &r), 0);
  ck_assert_int_eq(r, 2);
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 77, "node-a", &r), 0); /* no row yet */
  ck_assert_int_eq(r, 1);
  gt_store_close(st);
  st = must_open();
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "node-c", &r), 0);
  ck_assert_int_eq(r, 3);
  gt_store_close(st);
}
END_TEST

/* ------------------------------------------------------------------ writes --- */

START_TEST(test_write_and_read_back) {
  gt_store_t *st = must_open();
  int64_t range;
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "me", &range), 0);
  gt_store_op_t ops[3] = {
      op_exec_insert("wf-1", 5, 1, "STATE-1"),
      {GT_SQL_HISTORY_APPEND, 7,
       {gt_val_int(1), gt_val_text("ns"), gt_val_text("wf-1"), gt_val_text("run-1"),
        gt_val_int(1), gt_val_int(4), gt_val_blob("EVENTS", 6)},
       1},
      {GT_SQL_CURRENT_UPSERT, 8,
       {gt_val_int(1), gt_val_text("ns"), gt_val_text("wf-1"), gt_val_text("run-1"),
        gt_val_text("req-1"), gt_val_int(1), gt_val_int(2), gt_val_int(12345)},
       1},
  };
  int failed = 99;
  ck_assert_int_eq(gt_store_write_sync(st, 1, range, ops, 3, &failed), 0);
  ck_assert_int_eq(failed, -1);

  gt_rows_t *rs = NULL;
  gt_store_op_t get = op_exec_get("wf-1");
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  ck_assert_int_eq(rs->ncols, 3);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 5);
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 1);
  assert_blob(gt_rows_at(rs, 0, 2), "STATE-1");
  gt_store_rows_free(rs);

  gt_store_op_t hist = {GT_SQL_HISTORY_GET, 5,
                        {gt_val_int(1), gt_val_text("ns"), gt_val_text("wf-1"),
                         gt_val_text("run-1"), gt_val_int(1)},
                        -1};
  ck_assert_int_eq(gt_store_read_sync(st, &hist, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 1);
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 4);
  assert_blob(gt_rows_at(rs, 0, 2), "EVENTS");
  gt_store_rows_free(rs);
  hist.params[4] = gt_val_int(2);
  ck_assert_int_eq(count_rows(st, &hist), 0);

  gt_store_op_t cur = {GT_SQL_CURRENT_GET, 3,
                       {gt_val_int(1), gt_val_text("ns"), gt_val_text("wf-1")}, -1};
  ck_assert_int_eq(gt_store_read_sync(st, &cur, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  assert_text(gt_rows_at(rs, 0, 0), "run-1");
  assert_text(gt_rows_at(rs, 0, 1), "req-1");
  ck_assert_int_eq(gt_rows_at(rs, 0, 2)->i, 1);
  ck_assert_int_eq(gt_rows_at(rs, 0, 3)->i, 2);
  ck_assert_int_eq(gt_rows_at(rs, 0, 4)->i, 12345);
  gt_store_rows_free(rs);

  /* the upsert replaces */
  ops[2].params[3] = gt_val_text("run-2");
  ck_assert_int_eq(gt_store_write_sync(st, 1, range, &ops[2], 1, NULL), 0);
  ck_assert_int_eq(gt_store_read_sync(st, &cur, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  assert_text(gt_rows_at(rs, 0, 0), "run-2");
  gt_store_rows_free(rs);

  get = op_exec_get("nope");
  ck_assert_int_eq(count_rows(st, &get), 0);

  gt_store_op_t upd = {GT_SQL_EXECUTION_UPDATE, 8,
                       {gt_val_int(9), gt_val_int(2), gt_val_blob("STATE-2", 7),
                        gt_val_int(1), gt_val_text("ns"), gt_val_text("wf-1"),
                        gt_val_text("wf-1"), gt_val_int(1)},
                       1};
  ck_assert_int_eq(gt_store_write_sync(st, 1, range, &upd, 1, NULL), 0);
  get = op_exec_get("wf-1");
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 9);
  assert_blob(gt_rows_at(rs, 0, 2), "STATE-2");
  gt_store_rows_free(rs);
  gt_store_close(st);
}
END_TEST

START_TEST(test_namespaces_visibility_taskid) {
  gt_store_t *st = must_open();
  gt_store_op_t ns[2] = {
      {GT_SQL_NAMESPACE_UPSERT, 4,
       {gt_val_text("id-b"), gt_val_text("zeta"), gt_val_blob("", 0), gt_val_int(0)}, 1},
      {GT_SQL_NAMESPACE_UPSERT, 4,
       {gt_val_text("id-a"), gt_val_text("default"), gt_val_blob("D", 1), gt_val_int(1)},
       1},
  };
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, ns, 2, NULL), 0);
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, ns, 2, NULL), 0); /* upsert again */
  gt_rows_t *rs = NULL;
  gt_store_op_t list = {GT_SQL_NAMESPACE_LIST, 0, {{0}}, -1};
  ck_assert_int_eq(gt_store_read_sync(st, &list, &rs), 0);
  ck_assert_int_eq(rs->nrows, 2);
  assert_text(gt_rows_at(rs, 0, 0), "id-a");
  assert_text(gt_rows_at(rs, 0, 1), "default");
  assert_blob(gt_rows_at(rs, 1, 2), "");
  ck_assert_int_eq(gt_rows_at(rs, 0, 3)->i, 1);
  gt_store_rows_free(rs);

  for (int k = 0; k < 3; k++) {
    char run[16];
    snprintf(run, sizeof(run), "run-%d", k);
    gt_store_op_t v = {GT_SQL_VISIBILITY_UPSERT, 13,
                       {gt_val_text("ns"), gt_val_text(run), gt_val_text("wf"),
                        gt_val_text("Type"), gt_val_text("tq"), gt_val_int(1),
                        gt_val_int(100 + k), gt_val_int(100 + k), gt_val_int(0),
                        gt_val_int(3), gt_val_blob("m", 1), (gt_val_t){GT_VAL_NULL},
                        gt_val_text(k == 1 ? "{\"Color\":\"red\",\"N\":7}" : NULL)},
                       1};
    ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &v, 1, NULL), 0);
  }
  gt_store_op_t vl = {GT_SQL_VISIBILITY_LIST, 3,
                      {gt_val_text("ns"), gt_val_int(2), gt_val_int(0)}, -1};
  ck_assert_int_eq(gt_store_read_sync(st, &vl, &rs), 0);
  ck_assert_int_eq(rs->nrows, 2);
  ck_assert_int_eq(rs->ncols, 12);
  assert_text(gt_rows_at(rs, 0, 1), "run-2");
  assert_text(gt_rows_at(rs, 1, 1), "run-1");
  assert_blob(gt_rows_at(rs, 0, 10), "m");
  ck_assert_int_eq(gt_rows_at(rs, 0, 11)->kind, GT_VAL_NULL);
  gt_store_rows_free(rs);
  vl.params[2] = gt_val_int(2);
  ck_assert_int_eq(count_rows(st, &vl), 1); /* offset */
  gt_store_op_t vg = {GT_SQL_VISIBILITY_GET, 2, {gt_val_text("ns"), gt_val_text("run-0")},
                      -1};
  ck_assert_int_eq(gt_store_read_sync(st, &vg, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  ck_assert_int_eq(gt_rows_at(rs, 0, 6)->i, 100);
  assert_text(gt_rows_at(rs, 0, 3), "Type");
  gt_store_rows_free(rs);
  check_visibility_close(st, &vg);

  gt_store_op_t tmax = {GT_SQL_TASK_ID_MAX, 1, {gt_val_int(1)}, -1};
  ck_assert_int_eq(gt_store_read_sync(st, &tmax, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->kind, GT_VAL_INT);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 0);
  gt_store_rows_free(rs);
  gt_store_op_t tasks[2] = {
      op_transfer(40),
      {GT_SQL_TIMER_TASK_INSERT, 4,
       {gt_val_int(1), gt_val_int(5), gt_val_int(41), gt_val_blob("x", 1)}, 1}};
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, tasks, 2, NULL), 0);
  ck_assert_int_eq(gt_store_read_sync(st, &tmax, &rs), 0);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 41);
  gt_store_rows_free(rs);
  gt_store_op_t del = {GT_SQL_TRANSFER_TASK_DELETE, 2, {gt_val_int(1), gt_val_int(40)}, 1};
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &del, 1, NULL), 0);
  ck_assert_int_eq(transfer_count(st), 0);
  gt_store_close(st);
}
END_TEST

START_TEST(test_fencing) {
  gt_store_t *st = must_open();
  int64_t r1, r2;
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "a", &r1), 0);
  gt_store_op_t ins = op_exec_insert("wf-a", 1, 1, "S");
  ck_assert_int_eq(gt_store_write_sync(st, 1, r1, &ins, 1, NULL), 0);
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "b", &r2), 0);
  ck_assert_int_eq(r2, r1 + 1);
  gt_store_op_t ops[2] = {op_exec_insert("wf-b", 1, 1, "S"), op_transfer(1)};
  int failed = 99;
  ck_assert_int_eq(gt_store_write_sync(st, 1, r1, ops, 2, &failed), GT_EFENCED);
  ck_assert_int_eq(failed, -1);
  gt_store_op_t get = op_exec_get("wf-b");
  ck_assert_int_eq(count_rows(st, &get), 0);
  ck_assert_int_eq(transfer_count(st), 0);
  ck_assert_int_eq(gt_store_write_sync(st, 999, 1, ops, 2, NULL), GT_EFENCED);
  ck_assert_int_eq(gt_store_write_sync(st, 1, r2, ops, 2, NULL), 0);
  ck_assert_int_eq(count_rows(st, &get), 1);
  gt_store_stats_t stt;
  gt_store_get_stats(st, &stt);
  ck_assert_uint_eq(stt.batches_failed, 2);
  ck_assert_uint_eq(stt.batches_committed, 2);
  gt_store_close(st);
}
END_TEST

START_TEST(test_conflict_rolls_back_only_its_batch) {
  gt_store_t *st = must_open();
  gt_store_op_t ins = op_exec_insert("wf-c", 1, 1, "S");
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &ins, 1, NULL), 0);
  gt_store_stats_t before, after;
  gt_store_get_stats(st, &before);

  block_writer(st);
  gt_store_op_t bad[2] = {
      op_transfer(10),
      {GT_SQL_EXECUTION_UPDATE, 8,
       {gt_val_int(2), gt_val_int(2), gt_val_blob("S2", 2), gt_val_int(1),
        gt_val_text("ns"), gt_val_text("wf-c"), gt_val_text("wf-c"), gt_val_int(5)},
       1}};
  gt_store_op_t good = op_transfer(11);
  /* an insert of an existing row between them: GT_EEXISTS, rolled back alone too */
  gt_store_op_t dup[2] = {op_transfer(12), op_exec_insert("wf-c", 1, 1, "S")};
  gt_store_op_t good2 = op_transfer(13);
  result_t ra = {0}, rb = {0}, rc = {0}, rd = {0};
  ck_assert_int_eq(gt_store_write(st, -1, 0, bad, 2, record_cb, &ra), 0);
  ck_assert_int_eq(gt_store_write(st, -1, 0, &good, 1, record_cb, &rb), 0);
  ck_assert_int_eq(gt_store_write(st, -1, 0, dup, 2, record_cb, &rc), 0);
  ck_assert_int_eq(gt_store_write(st, -1, 0, &good2, 1, record_cb, &rd), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 4);
  ck_assert_int_eq(ra.calls, 1);
  ck_assert_int_eq(ra.rc, GT_ECONFLICT);
  ck_assert_int_eq(ra.failed_op, 1);
  ck_assert_int_eq(rb.calls, 1);
  ck_assert_int_eq(rb.rc, 0);
  ck_assert_int_eq(rb.failed_op, -1);
  ck_assert_int_eq(rc.rc, GT_EEXISTS);
  ck_assert_int_eq(rc.failed_op, 1);
  ck_assert_int_eq(rd.rc, 0);
  gt_store_get_stats(st, &after);
  ck_assert_uint_eq(after.transactions - before.transactions, 2);

  gt_store_op_t scan = {GT_SQL_TRANSFER_TASK_SCAN, 1, {gt_val_int(1)}, -1};
  gt_rows_t *rs = NULL;
  ck_assert_int_eq(gt_store_read_sync(st, &scan, &rs), 0);
  ck_assert_int_eq(rs->nrows, 2); /* 10 and 12 rolled back with their batches */
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 11);
  ck_assert_int_eq(gt_rows_at(rs, 1, 0)->i, 13);
  gt_store_rows_free(rs);
  gt_store_op_t get = op_exec_get("wf-c");
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 1);
  gt_store_rows_free(rs);
  gt_store_close(st);
}
END_TEST

/* A store with one writer connection (so batches of shards 1 and 2 share a group) owning
 * both shards; shard 1 acquired twice. OUT: *r1 its first (stale) range_id, *r1b its
 * current one, *r2 shard 2's. */
static gt_store_t *open_two_shards(int64_t *r1, int64_t *r2, int64_t *r1b) {
  gt_store_t *st = must_open_conns(READERS + 1);
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "a", r1), 0);
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 2, "a", r2), 0);
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "a", r1b), 0);
  return st;
}

/* One group over two shards (one writer connection), with a stale range_id on one batch:
 * the fast round fails (its fences are shared per shard), the replay gives each batch its
 * own outcome; then a group of good batches on both shards commits as one transaction. */
START_TEST(test_group_fences_per_shard) {
  int64_t r1, r2, r1b;
  gt_store_t *st = open_two_shards(&r1, &r2, &r1b);
  gt_store_op_t t[6] = {op_transfer(20), op_transfer(21), op_transfer(22),
                        op_transfer(23), op_transfer(24), op_transfer(25)};
  result_t res[6] = {{0}};
  block_writer(st);
  ck_assert_int_eq(gt_store_write(st, 1, r1b, &t[0], 1, record_cb, &res[0]), 0);
  ck_assert_int_eq(gt_store_write(st, 2, r2, &t[1], 1, record_cb, &res[1]), 0);
  ck_assert_int_eq(gt_store_write(st, 1, r1, &t[2], 1, record_cb, &res[2]), 0);
  ck_assert_int_eq(gt_store_write(st, 2, r2, &t[3], 1, record_cb, &res[3]), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 4);
  ck_assert_int_eq(res[0].rc, 0);
  ck_assert_int_eq(res[1].rc, 0);
  ck_assert_int_eq(res[2].rc, GT_EFENCED);
  ck_assert_int_eq(res[2].failed_op, -1);
  ck_assert_int_eq(res[3].rc, 0);
  ck_assert_int_eq(transfer_count(st), 3);

  gt_store_stats_t before, after;
  gt_store_get_stats(st, &before);
  g_entered.n = g_gate.n = 0; /* no thread waits on them now: the group completed */
  block_writer(st);
  ck_assert_int_eq(gt_store_write(st, 1, r1b, &t[4], 1, record_cb, &res[4]), 0);
  ck_assert_int_eq(gt_store_write(st, 2, r2, &t[5], 1, record_cb, &res[5]), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 6);
  ck_assert_int_eq(res[4].rc, 0);
  ck_assert_int_eq(res[5].rc, 0);
  gt_store_get_stats(st, &after);
  /* the blocker, then both batches in one transaction */
  ck_assert_uint_eq(after.transactions - before.transactions, 2);
  ck_assert_int_eq(transfer_count(st), 5);
  gt_store_close(st);
}
END_TEST


START_TEST(test_current_insert_exists) {
  gt_store_t *st = must_open();
  check_current_insert_exists(st);
  gt_store_close(st);
}
END_TEST

START_TEST(test_insert_twice_exists) {
  gt_store_t *st = must_open();
  gt_store_op_t ins = op_exec_insert("wf-d", 1, 1, "S");
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &ins, 1, NULL), 0);
  gt_store_op_t ops[2] = {op_transfer(3), op_exec_insert("wf-d", 2, 2, "T")};
  int failed = 99;
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, ops, 2, &failed), GT_EEXISTS);
  ck_assert_int_eq(failed, 1);
  ck_assert_int_eq(transfer_count(st), 0);
  /* the store keeps working after the failed transaction state */
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, ops, 1, NULL), 0);
  ck_assert_int_eq(transfer_count(st), 1);
  gt_store_close(st);
}
END_TEST

/* ------------------------------------------------------------------ concurrency --- */

START_TEST(test_group_commit) {
  g_st = must_open();
  block_writer(g_st);
  pthread_t th[GC_THREADS];
  for (intptr_t t = 0; t < GC_THREADS; t++)
    ck_assert_int_eq(pthread_create(&th[t], NULL, gc_submitter, (void *)t), 0);
  for (int t = 0; t < GC_THREADS; t++)
    pthread_join(th[t], NULL);
  gt_store_stats_t stt;
  gt_store_get_stats(g_st, &stt);
  ck_assert_uint_eq(stt.queue_depth, GC_THREADS * GC_PER_THREAD);
  wc_add(&g_gate);
  wc_wait(&g_wc, GC_THREADS * GC_PER_THREAD);
  for (int i = 0; i < GC_THREADS * GC_PER_THREAD; i++)
    ck_assert_int_eq(atomic_load(&g_calls[i]), 1);
  gt_store_get_stats(g_st, &stt);
  ck_assert_uint_eq(stt.batches_committed, GC_THREADS * GC_PER_THREAD + 1);
  ck_assert_uint_lt(stt.transactions, stt.batches_committed);
  ck_assert_uint_le(stt.transactions, 4); /* blocker + 1000 in groups of <= 512 */
  ck_assert_int_eq(transfer_count(g_st), GC_THREADS * GC_PER_THREAD);
  check_graveyard(g_st, GC_THREADS * GC_PER_THREAD + 1); /* and the blocker */
  gt_store_close(g_st);
}
END_TEST

START_TEST(test_async_reads_many_threads) {
  g_st = must_open();
  gt_store_op_t ins = op_exec_insert("wf-r", 7, 1, "READ-ME");
  ck_assert_int_eq(gt_store_write_sync(g_st, -1, 0, &ins, 1, NULL), 0);
  pthread_t th[RD_THREADS];
  for (int t = 0; t < RD_THREADS; t++)
    ck_assert_int_eq(pthread_create(&th[t], NULL, rd_submitter, NULL), 0);
  for (int t = 0; t < RD_THREADS; t++)
    pthread_join(th[t], NULL);
  wc_wait(&g_wc, RD_THREADS * RD_PER_THREAD);
  gt_store_stats_t stt;
  gt_store_get_stats(g_st, &stt);
  ck_assert_uint_eq(stt.reads, RD_THREADS * RD_PER_THREAD);
  gt_store_close(g_st);
}
END_TEST

/* ------------------------------------------------------------------ queues --- */

START_TEST(test_timer_scan_order_and_limit) {
  gt_store_t *st = must_open();
  static const int64_t fire[][2] = {{300, 1}, {100, 5}, {200, 2}, {100, 3}, {900, 4}};
  for (int k = 0; k < 5; k++) {
    gt_store_op_t op = {GT_SQL_TIMER_TASK_INSERT, 4,
                        {gt_val_int(1), gt_val_int(fire[k][0]), gt_val_int(fire[k][1]),
                         gt_val_blob("T", 1)},
                        1};
    ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &op, 1, NULL), 0);
  }
  gt_store_op_t other = {GT_SQL_TIMER_TASK_INSERT, 4,
                         {gt_val_int(2), gt_val_int(1), gt_val_int(9), gt_val_blob("", 0)},
                         1};
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &other, 1, NULL), 0);
  gt_store_op_t scan = {GT_SQL_TIMER_TASK_SCAN, 3,
                        {gt_val_int(1), gt_val_int(300), gt_val_int(3)}, -1};
  gt_rows_t *rs = NULL;
  ck_assert_int_eq(gt_store_read_sync(st, &scan, &rs), 0);
  ck_assert_int_eq(rs->nrows, 3);
  static const int64_t want[3][2] = {{100, 3}, {100, 5}, {200, 2}};
  for (int r = 0; r < 3; r++) {
    ck_assert_int_eq(gt_rows_at(rs, r, 0)->i, want[r][0]);
    ck_assert_int_eq(gt_rows_at(rs, r, 1)->i, want[r][1]);
    assert_blob(gt_rows_at(rs, r, 2), "T");
  }
  gt_store_rows_free(rs);
  scan.params[2] = gt_val_int(100);
  ck_assert_int_eq(count_rows(st, &scan), 4);
  gt_store_op_t del = {GT_SQL_TIMER_TASK_DELETE, 3,
                       {gt_val_int(1), gt_val_int(100), gt_val_int(3)}, 1};
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &del, 1, NULL), 0);
  ck_assert_int_eq(count_rows(st, &scan), 3);
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &del, 1, NULL), GT_ECONFLICT);
  gt_store_close(st);
}
END_TEST

START_TEST(test_tq_tasks) {
  gt_store_t *st = must_open();
  gt_store_op_t ins[5] = {tq_op(GT_SQL_TQ_TASK_INSERT, "q1", 0, 30),
                          tq_op(GT_SQL_TQ_TASK_INSERT, "q1", 0, 10),
                          tq_op(GT_SQL_TQ_TASK_INSERT, "q1", 0, 20),
                          tq_op(GT_SQL_TQ_TASK_INSERT, "q1", 1, 15),
                          tq_op(GT_SQL_TQ_TASK_INSERT, "q2", 0, 5)};
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, ins, 5, NULL), 0);
  gt_store_op_t scan = {GT_SQL_TQ_TASK_SCAN, 4,
                        {gt_val_text("ns"), gt_val_text("q1"), gt_val_int(0), gt_val_int(2)},
                        -1};
  gt_rows_t *rs = NULL;
  ck_assert_int_eq(gt_store_read_sync(st, &scan, &rs), 0);
  ck_assert_int_eq(rs->nrows, 2);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 10);
  ck_assert_int_eq(gt_rows_at(rs, 1, 0)->i, 20);
  assert_blob(gt_rows_at(rs, 1, 1), "task");
  gt_store_rows_free(rs);
  gt_store_op_t del = tq_op(GT_SQL_TQ_TASK_DELETE, "q1", 0, 10);
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &del, 1, NULL), 0);
  ck_assert_int_eq(gt_store_read_sync(st, &scan, &rs), 0);
  ck_assert_int_eq(rs->nrows, 2);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 20);
  ck_assert_int_eq(gt_rows_at(rs, 1, 0)->i, 30);
  gt_store_rows_free(rs);
  scan.params[2] = gt_val_int(1);
  ck_assert_int_eq(count_rows(st, &scan), 1);
  gt_store_close(st);
}
END_TEST

/* ------------------------------------------------------------------ lifecycle --- */

START_TEST(test_close_runs_pending_completions) {
  g_st = must_open();
  block_writer(g_st);
  gt_store_op_t get = op_exec_get("wf-x");
  for (int k = 0; k < 200; k++) {
    gt_store_op_t op = op_transfer(k);
    ck_assert_int_eq(gt_store_write(g_st, -1, 0, &op, 1, count_cb, NULL), 0);
    if (k % 4 == 0)
      ck_assert_int_eq(gt_store_read(g_st, &get, count_read_cb, NULL), 0);
  }
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, close_helper, NULL), 0);
  gt_store_close(g_st);
  ck_assert_int_eq(g_wc.n, 200 + 50 + atomic_load(&g_helper_ok));
  pthread_join(th, NULL);
  ck_assert_int_eq(g_wc.n, 200 + 50 + atomic_load(&g_helper_ok));
  ck_assert_int_eq(raw_int("SELECT count(*) FROM transfer_tasks"),
                   200 + atomic_load(&g_helper_ok));
}
END_TEST

START_TEST(test_durable_across_reopen) {
  gt_store_t *st = must_open();
  gt_store_op_t ins = op_exec_insert("wf-durable", 3, 1, "KEEP");
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &ins, 1, NULL), 0);
  gt_store_close(st);
  st = must_open();
  gt_rows_t *rs = NULL;
  gt_store_op_t get = op_exec_get("wf-durable");
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  assert_blob(gt_rows_at(rs, 0, 2), "KEEP");
  gt_store_rows_free(rs);
  gt_store_close(st);
}
END_TEST

/* ------------------------------------------------------------------ restart --- */

static void unavailable_cb(void *ctx, int rc, int failed_op) {
  ck_assert_msg(rc == GT_EIO || rc == GT_EUNAVAIL, "rc %d", rc);
  wc_add(&g_wc);
}

/* Retries a write until the store reaches the server again. Each try waits for an
 * event (a reconnect attempt's outcome), never for a fixed time. */
static int write_until_up(gt_store_t *st, const gt_store_op_t *op) {
  int rc = GT_EIO;
  for (int k = 0; k < 200 && (rc == GT_EIO || rc == GT_EUNAVAIL); k++)
    rc = gt_store_write_sync(st, -1, 0, op, 1, NULL);
  return rc;
}

START_TEST(test_server_restart) {
  gt_store_t *st = must_open();
  gt_store_op_t first = op_transfer(1);
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &first, 1, NULL), 0);
  block_writer(st);
  for (int k = 0; k < 10; k++) {
    gt_store_op_t op = op_transfer(100 + k);
    ck_assert_int_eq(gt_store_write(st, -1, 0, &op, 1, unavailable_cb, NULL), 0);
  }
  ck_assert_int_eq(script("pause", NULL, 0), 0); /* pg_ctl stop -m fast */
  wc_add(&g_gate);
  wc_wait(&g_wc, 10);
  gt_store_op_t scan = {GT_SQL_TRANSFER_TASK_SCAN, 1, {gt_val_int(1)}, -1};
  gt_rows_t *rs = NULL;
  int rrc = gt_store_read_sync(st, &scan, &rs);
  ck_assert_msg(rrc == GT_EIO || rrc == GT_EUNAVAIL, "read while down: %d", rrc);
  ck_assert_ptr_null(rs);
  ck_assert_int_eq(script("resume", NULL, 0), 0);

  gt_store_op_t after = op_transfer(2);
  ck_assert_int_eq(write_until_up(st, &after), 0);
  for (int k = 0; k < 200 && rrc; k++)
    rrc = gt_store_read_sync(st, &scan, &rs);
  ck_assert_int_eq(rrc, 0);
  ck_assert_int_eq(rs->nrows, 2); /* none of the 10 was half-written */
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 1);
  ck_assert_int_eq(gt_rows_at(rs, 1, 0)->i, 2);
  gt_store_rows_free(rs);
  int64_t r;
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "n", &r), 0);
  ck_assert_int_eq(r, 1);
  gt_store_close(st);
}
END_TEST

/* ------------------------------------------------------------------ writer slots --- */

/* Chains of batches per shard whose every batch needs the one before it committed: batch
 * 0 inserts the chain's executions row (db_version 1), batch k updates it from db_version
 * k to k + 1 (expect_rows 1). Spread over several writer connections, any reordering
 * within a shard fails a batch (GT_ECONFLICT) or completes it out of turn. Chain
 * ORD_SHARDS is unfenced (shard_id -1). */
#define ORD_SHARDS 8
#define ORD_CHAIN 60

static int g_ord_seen[ORD_SHARDS + 1][ORD_CHAIN]; /* completion order per chain */
static int g_ord_rc[ORD_SHARDS + 1][ORD_CHAIN];
static int g_ord_n[ORD_SHARDS + 1];

/* The writer thread runs every completion: no two at once (g_wc orders them with the
 * test thread's reads). */
static void ord_cb(void *ctx, int rc, int failed_op) {
  intptr_t v = (intptr_t)ctx;
  int chain = (int)(v / ORD_CHAIN), k = (int)(v % ORD_CHAIN);
  g_ord_rc[chain][k] = rc;
  g_ord_seen[chain][g_ord_n[chain]++] = k;
  wc_add(&g_wc);
}

static void ord_submit(gt_store_t *st, const int64_t *range, int chain, int k) {
  char wf[32];
  snprintf(wf, sizeof(wf), "ord-%d", chain);
  int fenced = chain < ORD_SHARDS;
  gt_store_op_t op;
  if (k == 0) {
    op = (gt_store_op_t){GT_SQL_EXECUTION_INSERT, 7,
                         {gt_val_int(chain), gt_val_text("ns"), gt_val_text(wf),
                          gt_val_text(wf), gt_val_int(1), gt_val_int(1),
                          gt_val_blob("S", 1)},
                         1};
  } else {
    op = (gt_store_op_t){GT_SQL_EXECUTION_UPDATE, 8,
                         {gt_val_int(k), gt_val_int(k + 1), gt_val_blob("S", 1),
                          gt_val_int(chain), gt_val_text("ns"), gt_val_text(wf),
                          gt_val_text(wf), gt_val_int(k)},
                         1};
  }
  ck_assert_int_eq(gt_store_write(st, fenced ? chain : -1, fenced ? range[chain] : 0, &op,
                                  1, ord_cb, (void *)(intptr_t)(chain * ORD_CHAIN + k)),
                   0);
}

START_TEST(test_shard_order_across_slots) {
  gt_store_t *st = must_open();
  int64_t range[ORD_SHARDS];
  for (int s = 0; s < ORD_SHARDS; s++)
    ck_assert_int_eq(gt_store_acquire_shard_sync(st, s, "me", &range[s]), 0);
  memset(g_ord_n, 0, sizeof(g_ord_n));
  /* the first half queues behind a blocker: every slot's first group takes many batches
   * of its shards at once; the second half is submitted while groups are in flight */
  block_writer(st);
  for (int k = 0; k < ORD_CHAIN / 2; k++)
    for (int c = 0; c <= ORD_SHARDS; c++)
      ord_submit(st, range, c, k);
  wc_add(&g_gate);
  for (int k = ORD_CHAIN / 2; k < ORD_CHAIN; k++)
    for (int c = 0; c <= ORD_SHARDS; c++)
      ord_submit(st, range, c, k);
  wc_wait(&g_wc, (ORD_SHARDS + 1) * ORD_CHAIN);
  for (int c = 0; c <= ORD_SHARDS; c++) {
    ck_assert_int_eq(g_ord_n[c], ORD_CHAIN);
    for (int k = 0; k < ORD_CHAIN; k++) {
      ck_assert_msg(g_ord_rc[c][k] == 0, "chain %d batch %d: rc %d", c, k,
                    g_ord_rc[c][k]);
      ck_assert_msg(g_ord_seen[c][k] == k, "chain %d: completion %d was batch %d", c, k,
                    g_ord_seen[c][k]);
    }
  }
  gt_store_stats_t stt;
  gt_store_get_stats(st, &stt);
  ck_assert_uint_eq(stt.batches_failed, 0);
  gt_store_close(st);
  char sql[96];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM executions WHERE db_version = %d",
           ORD_CHAIN);
  ck_assert_int_eq(raw_int(sql), ORD_SHARDS + 1);
}
END_TEST

/* A group of shard 1 stuck on its fence (another session holds shard 1's row FOR UPDATE)
 * does not hold back shard 2's, which runs on another connection and completes; shard
 * 1's commits once the lock goes. With one writer connection shard 2's batch would wait
 * behind shard 1's group: the bounded wait fails the test instead of hanging. */
START_TEST(test_slots_in_flight_at_once) {
  ck_assert_msg(GT_PG_WRITER_CONNS >= 2, "shards 1 and 2 need writer connections of "
                "their own");
  gt_store_t *st = must_open();
  int64_t r1, r2;
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "me", &r1), 0);
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 2, "me", &r2), 0);
  PGconn *locker = raw_connect(g_dbname);
  PGresult *r = PQexec(locker, "BEGIN");
  ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  r = PQexec(locker, "SELECT range_id FROM shards WHERE shard_id = 1 FOR UPDATE");
  ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
  PQclear(r);

  gt_store_op_t a = op_transfer(1), b = op_transfer(2);
  result_t ra = {0}, rb = {0};
  ck_assert_int_eq(gt_store_write(st, 1, r1, &a, 1, record_cb, &ra), 0);
  ck_assert_int_eq(gt_store_write(st, 2, r2, &b, 1, record_cb, &rb), 0);
  ck_assert_msg(wc_wait_for(&g_wc, 1, 20), "shard 2's batch waited for shard 1's group");
  pthread_mutex_lock(&g_wc.mu); /* the completions' writes, seen under g_wc's lock */
  ck_assert_int_eq(rb.calls, 1);
  ck_assert_int_eq(rb.rc, 0);
  ck_assert_int_eq(ra.calls, 0); /* still waiting for the row lock */
  pthread_mutex_unlock(&g_wc.mu);

  r = PQexec(locker, "COMMIT");
  ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(locker);
  wc_wait(&g_wc, 2);
  ck_assert_int_eq(ra.calls, 1);
  ck_assert_int_eq(ra.rc, 0);
  ck_assert_int_eq(transfer_count(st), 2);
  gt_store_close(st);
}
END_TEST

/* maxConnLifetime: once a connection is older, the next request goes over a new one
 * (the work waits for it; nothing fails); without it, connections are kept. */
static void lifetime_round(gt_store_t *st, int64_t range, int k) {
  char wf[32];
  snprintf(wf, sizeof wf, "wf-life-%d", k);
  gt_store_op_t op = op_exec_insert(wf, 2, 1, "S");
  ck_assert_int_eq(gt_store_write_sync(st, 1, range, &op, 1, NULL), 0);
  gt_val_t p = gt_val_text(wf);
  gt_rows_t *rows = NULL;
  ck_assert_int_eq(gt_store_read_sql_sync(st, "SELECT count(*) FROM executions WHERE "
                                          "workflow_id = $1", &p, 1, &rows), 0);
  ck_assert_int_eq(gt_rows_at(rows, 0, 0)->i, 1);
  gt_store_rows_free(rows);
}

START_TEST(test_conn_lifetime) {
  for (int with_lifetime = 1; with_lifetime >= 0; with_lifetime--) {
    gt_store_config_t cfg = {.backend = GT_STORE_POSTGRES, .pg_conninfo = g_conninfo,
                             .reader_threads = READERS, .num_shards = 4,
                             .pg_conn_lifetime_ms = with_lifetime ? 100 : 0};
    gt_store_t *st = NULL;
    ck_assert_int_eq(gt_store_open(&st, &cfg), 0);
    int64_t range;
    ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "me", &range), 0);
    unsigned long before = atomic_load(&gt__pg_conns_recycled);
    lifetime_round(st, range, with_lifetime * 10);
    usleep(150 * 1000); /* the age under test: older than the lifetime */
    lifetime_round(st, range, with_lifetime * 10 + 1);
    lifetime_round(st, range, with_lifetime * 10 + 2);
    unsigned long recycled = atomic_load(&gt__pg_conns_recycled) - before;
    if (with_lifetime) /* the writer's slot for shard 1 and the readers that served */
      ck_assert_uint_ge(recycled, 2);
    else
      ck_assert_uint_eq(recycled, 0);
    gt_store_close(st);
  }
}
END_TEST

/* maxConns bounds the store's open connections, readers included (the test asks for
 * READERS reader threads: capped to leave the writer one). */
START_TEST(test_max_conns_bounds_readers) {
  gt_store_t *st = must_open_conns(2);
  int64_t range;
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "me", &range), 0);
  lifetime_round(st, range, 99); /* a write and a read: both kinds are up */
  ck_assert_int_eq(raw_int("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database() AND pid <> pg_backend_pid()"), 2);
  gt_store_close(st);
}
END_TEST

/* gt_store_read_sql on PostgreSQL: $N values typed by kind, jsonb on the JSON column. */
START_TEST(test_read_sql) {
  gt_store_t *st = must_open();
  ck_assert_int_eq(gt_store_backend(st), GT_STORE_POSTGRES);
  static const char *const json[3] = {"{\"Color\":\"red\",\"N\":7}",
                                      "{\"Color\":\"blue\",\"N\":2}", NULL};
  for (int k = 0; k < 3; k++) {
    char run[16];
    snprintf(run, sizeof(run), "run-%d", k);
    gt_store_op_t v = {GT_SQL_VISIBILITY_UPSERT, 13,
                       {gt_val_text("ns"), gt_val_text(run), gt_val_text("wf"),
                        gt_val_text("Type"), gt_val_text("tq"), gt_val_int(1 + k),
                        gt_val_int(100 + k), gt_val_int(100 + k), gt_val_int(0),
                        gt_val_int(3), gt_val_blob("m", 1), (gt_val_t){GT_VAL_NULL},
                        gt_val_text(json[k])},
                       1};
    ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &v, 1, NULL), 0);
  }
  gt_rows_t *rs = NULL;
  gt_val_t p[3] = {gt_val_text("ns"), gt_val_text("N"), gt_val_int(5)};
  ck_assert_int_eq(gt_store_read_sql_sync(st,
                                          "SELECT run_id, status, memo FROM visibility "
                                          "WHERE namespace_id = $1 AND "
                                          "(search_json::jsonb ->> $2)::numeric < $3",
                                          p, 3, &rs),
                   0);
  ck_assert_int_eq(rs->ncols, 3);
  ck_assert_int_eq(rs->nrows, 1);
  assert_text(gt_rows_at(rs, 0, 0), "run-1");
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 2);
  assert_blob(gt_rows_at(rs, 0, 2), "m");
  gt_store_rows_free(rs);
  gt_val_t inj = gt_val_text("ns' OR '1'='1");
  ck_assert_int_eq(gt_store_read_sql_sync(st, "SELECT count(*) FROM visibility WHERE "
                                              "namespace_id = $1", &inj, 1, &rs), 0);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 0);
  gt_store_rows_free(rs);
  ck_assert_int_eq(gt_store_read_sql_sync(st, "SELECT nope FROM nowhere", NULL, 0, &rs),
                   GT_EIO);
  ck_assert_ptr_null(rs);
  gt_store_op_t sa[3] = {
      {GT_SQL_SEARCH_ATTR_UPSERT, 3, {gt_val_text("ns"), gt_val_text("B"), gt_val_int(2)}, 1},
      {GT_SQL_SEARCH_ATTR_UPSERT, 3, {gt_val_text("ns"), gt_val_text("A"), gt_val_int(3)}, 1},
      {GT_SQL_SEARCH_ATTR_DELETE, 2, {gt_val_text("ns"), gt_val_text("B")}, 1}};
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, sa, 3, NULL), 0);
  ck_assert_int_eq(gt_store_read_sql_sync(st, "SELECT name, type FROM search_attributes "
                                              "WHERE namespace_id = $1 ORDER BY name",
                                          p, 1, &rs),
                   0);
  ck_assert_int_eq(rs->nrows, 1);
  assert_text(gt_rows_at(rs, 0, 0), "A");
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 3);
  gt_store_rows_free(rs);
  gt_store_close(st);
}
END_TEST


/* ------------------------------------------------------------------ multi-row --- */

/* The ops of a workflow's transitions, as wf_state.c shapes them. */
static gt_store_op_t op_hist(const char *run, int64_t first, const char *data) {
  return (gt_store_op_t){GT_SQL_HISTORY_APPEND, 7,
                         {gt_val_int(1), gt_val_text("ns"), gt_val_text(run),
                          gt_val_text(run), gt_val_int(first), gt_val_int(first + 1),
                          gt_val_blob(data, strlen(data))},
                         -1};
}

static gt_store_op_t op_cur(gt_sql_stmt_t stmt, const char *wf, const char *run,
                            int64_t start) {
  return (gt_store_op_t){stmt, 8,
                         {gt_val_int(1), gt_val_text("ns"), gt_val_text(wf),
                          gt_val_text(run), gt_val_text("req"), gt_val_int(1),
                          gt_val_int(2), gt_val_int(start)},
                         stmt == GT_SQL_CURRENT_INSERT ? 1 : -1};
}

static gt_store_op_t op_vis(const char *run, int64_t status, gt_val_t memo, gt_val_t json) {
  return (gt_store_op_t){GT_SQL_VISIBILITY_UPSERT, 13,
                         {gt_val_text("ns"), gt_val_text(run), gt_val_text(run),
                          gt_val_text("Type"), gt_val_text("tq"), gt_val_int(status),
                          gt_val_int(100), gt_val_int(100), gt_val_int(0), gt_val_int(3),
                          memo, (gt_val_t){GT_VAL_NULL}, json},
                         -1};
}

/* op_exec_insert's row (run id = workflow id = run) from version from to from + 1. */
static gt_store_op_t op_exec_update(const char *run, int64_t next, int64_t from,
                                    const char *state) {
  return (gt_store_op_t){GT_SQL_EXECUTION_UPDATE, 8,
                         {gt_val_int(next), gt_val_int(from + 1),
                          gt_val_blob(state, strlen(state)), gt_val_int(1),
                          gt_val_text("ns"), gt_val_text(run), gt_val_text(run),
                          gt_val_int(from)},
                         1};
}

static gt__store_batch_t mk_batch(gt_store_op_t *ops, int n) {
  return (gt__store_batch_t){.shard_id = 1, .nops = n, .ops = ops};
}

static int fits(gt__pg_arrays_t *a, gt__store_batch_t *b1, gt__store_batch_t *b2) {
  gt__store_batch_t *g[2] = {b1, b2};
  return gt__pg_arrays_fit(g, b2 ? 2 : 1, a);
}

/* Which groups go as multi-row statements: a workflow's transitions do, unless two of
 * their ops meet on a row of a table two kinds write; anything else goes op by op. */
START_TEST(test_merge_plan) {
  /* each multi-row statement takes an array of every parameter of its one-row form */
  static const int pairs[][2] = {
      {GT__PG_ARR_EXECUTION_INSERT, GT_SQL_EXECUTION_INSERT},
      {GT__PG_ARR_CURRENT_INSERT, GT_SQL_CURRENT_INSERT},
      {GT__PG_ARR_CURRENT_UPSERT, GT_SQL_CURRENT_UPSERT},
      {GT__PG_ARR_HISTORY_APPEND, GT_SQL_HISTORY_APPEND},
      {GT__PG_ARR_VISIBILITY_UPSERT, GT_SQL_VISIBILITY_UPSERT},
      {GT__PG_ARR_VISIBILITY_TASK_INSERT, GT_SQL_VISIBILITY_TASK_INSERT},
      {GT__PG_ARR_VISIBILITY_APPLY, GT_SQL_VISIBILITY_APPLY}};
  for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
    const char *arr = gt__pg_sig(pairs[i][0]), *one = gt__pg_sig(pairs[i][1]);
    ck_assert_uint_eq(strlen(arr), strlen(one));
    for (size_t j = 0; one[j]; j++)
      ck_assert_int_eq(arr[j], one[j] - 'a' + 'A');
  }
  gt__pg_arrays_t a = {0};
  gt_val_t null = {GT_VAL_NULL};
  gt_store_op_t start[4] = {op_exec_insert("r1", 3, 1, "S"),
                            op_cur(GT_SQL_CURRENT_INSERT, "r1", "r1", 7), op_hist("r1", 1, "E"),
                            op_vis("r1", 1, null, null)};
  gt_store_op_t close[4] = {op_exec_update("r3", 9, 1, "S"),
                            op_cur(GT_SQL_CURRENT_UPSERT, "r3", "r3", 7), op_hist("r3", 7, "E"),
                            op_vis("r3", 2, null, null)};
  gt__store_batch_t b_start = mk_batch(start, 4), b_close = mk_batch(close, 4);
  ck_assert_int_eq(fits(&a, &b_start, &b_close), 1);
  ck_assert_int_eq(fits(&a, &b_start, NULL), 1);

  /* insert and update of one executions row in one group */
  gt_store_op_t upd = op_exec_update("r1", 5, 1, "S");
  gt__store_batch_t b_upd = mk_batch(&upd, 1);
  ck_assert_int_eq(fits(&a, &b_start, &b_upd), 0);
  /* an upsert then an insert of one workflow id (sequentially: the insert fails) */
  gt_store_op_t cur = op_cur(GT_SQL_CURRENT_UPSERT, "r1", "r0", 1);
  gt__store_batch_t b_cur = mk_batch(&cur, 1);
  ck_assert_int_eq(fits(&a, &b_cur, &b_start), 0);
  /* one kind on one row twice: merged (the statement fails, the replay decides) */
  gt_store_op_t h = op_hist("r1", 1, "again");
  gt__store_batch_t b_h = mk_batch(&h, 1);
  ck_assert_int_eq(fits(&a, &b_start, &b_h), 1);

  /* other statements; an update whose row count is not checked; a value of another type;
   * a group with no op */
  gt_store_op_t t = op_transfer(1);
  gt__store_batch_t b_t = mk_batch(&t, 1);
  ck_assert_int_eq(fits(&a, &b_start, &b_t), 0);
  upd = op_exec_update("r9", 5, 1, "S");
  upd.expect_rows = -1;
  ck_assert_int_eq(fits(&a, &b_upd, NULL), 0);
  start[0].params[4] = gt_val_text("3");
  ck_assert_int_eq(fits(&a, &b_start, NULL), 0);
  gt__store_batch_t b_none = mk_batch(NULL, 0);
  ck_assert_int_eq(fits(&a, &b_none, NULL), 0);
  /* payloads too big for one statement's arrays (1 MiB): op by op, streamed by libpq */
  size_t big_len = 600 * 1024;
  char *big = calloc(1, big_len + 1);
  memset(big, 'x', big_len);
  gt_store_op_t h1 = op_hist("rb", 1, big), h2 = op_hist("rb", 2, big);
  gt__store_batch_t b_h1 = mk_batch(&h1, 1), b_h2 = mk_batch(&h2, 1);
  ck_assert_int_eq(fits(&a, &b_h1, NULL), 1);
  ck_assert_int_eq(fits(&a, &b_h1, &b_h2), 0);
  free(big);
  gt__pg_arrays_fini(&a);
}
END_TEST

/* The rows of sql (no parameters), asserting how many. Free them. */
static gt_rows_t *query(gt_store_t *st, const char *sql, int nrows) {
  gt_rows_t *rs = NULL;
  ck_assert_int_eq(gt_store_read_sql_sync(st, sql, NULL, 0, &rs), 0);
  ck_assert_int_eq(rs->nrows, nrows);
  return rs;
}

/* A store owning shard 1 with run r0 (version 1, next event 3) written, and the merge
 * counters as they are now. OUT: *range, *groups, *misses. */
static gt_store_t *merged_setup(int64_t *range, unsigned long *groups,
                                unsigned long *misses) {
  gt_store_t *st = must_open();
  ck_assert_int_eq(gt_store_acquire_shard_sync(st, 1, "me", range), 0);
  gt_store_op_t pre = op_exec_insert("r0", 3, 1, "S0");
  ck_assert_int_eq(gt_store_write_sync(st, 1, *range, &pre, 1, NULL), 0);
  *groups = atomic_load(&gt__pg_arrays_groups);
  *misses = atomic_load(&gt__pg_arrays_misses);
  return st;
}

/* The visibility outbox's ops (vis_outbox.c) as PostgreSQL merges them. */
static gt_store_op_t op_vtask(int64_t task_id, const char *data) {
  return (gt_store_op_t){GT_SQL_VISIBILITY_TASK_INSERT, 3,
                         {gt_val_int(1), gt_val_int(task_id), gt_val_blob(data, strlen(data))},
                         1};
}

static gt_store_op_t op_apply(const char *run, int64_t status, int64_t history_length) {
  gt_store_op_t op = op_vis(run, status, (gt_val_t){GT_VAL_NULL}, (gt_val_t){GT_VAL_NULL});
  op.stmt = GT_SQL_VISIBILITY_APPLY;
  op.params[9] = gt_val_int(history_length);
  return op;
}

/* Writes each op as its own batch while the writer is held, so they form one group per
 * slot; asserts every batch succeeded. */
static void one_group(gt_store_t *st, int shard, int64_t range, gt_store_op_t *ops, int n) {
  reset_counters();
  block_writer(st);
  result_t r[8] = {{0}};
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(gt_store_write(st, shard, range, &ops[i], 1, record_cb, &r[i]), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, n);
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(r[i].rc, 0);
}

/* Outbox rows of several batches go as one multi-row insert, and their changes in the
 * visibility store as one upsert, in which a shorter history never replaces a longer
 * one; two changes of one run in a group go one statement each (PostgreSQL refuses an
 * ON CONFLICT statement that affects a row twice), the newer winning. */
START_TEST(test_merged_visibility_outbox) {
  int64_t range;
  unsigned long groups, misses;
  gt_store_t *st = merged_setup(&range, &groups, &misses);
  gt_store_op_t tasks[2] = {op_vtask(10, "A"), op_vtask(11, "B")};
  one_group(st, 1, range, tasks, 2);
  gt_store_op_t applies[2] = {op_apply("r1", 1, 3), op_apply("r2", 1, 3)};
  one_group(st, -1, 0, applies, 2);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_groups), groups + 2);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_misses), misses);
  gt_rows_t *rs = query(st, "SELECT task_id, data FROM visibility_tasks ORDER BY 1", 2);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 10);
  assert_blob(gt_rows_at(rs, 1, 1), "B");
  gt_store_rows_free(rs);

  gt_store_op_t later[3] = {op_apply("r1", 2, 2), op_apply("r2", 2, 5), op_apply("r2", 3, 6)};
  one_group(st, -1, 0, later, 3);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_groups), groups + 2); /* not merged */
  rs = query(st, "SELECT run_id, status, history_length FROM visibility ORDER BY 1", 2);
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 1); /* r1: the older change was ignored */
  ck_assert_int_eq(gt_rows_at(rs, 0, 2)->i, 3);
  ck_assert_int_eq(gt_rows_at(rs, 1, 1)->i, 3); /* r2: the newest */
  ck_assert_int_eq(gt_rows_at(rs, 1, 2)->i, 6);
  gt_store_rows_free(rs);
  gt_store_close(st);
}
END_TEST

/* One group of a start, a step and a close, sent as multi-row statements: every row and
 * value lands as written (NULLs, blobs, negative and 64-bit ints), in one commit, and no
 * statement had to be replayed. */
START_TEST(test_merged_group_writes_every_row) {
  int64_t range;
  unsigned long groups, misses;
  gt_store_t *st = merged_setup(&range, &groups, &misses);
  gt_store_stats_t before, after;
  gt_store_get_stats(st, &before);

  block_writer(st);
  gt_val_t null = {GT_VAL_NULL};
  gt_store_op_t start[4] = {op_exec_insert("r1", 3, 1, "S1"),
                            op_cur(GT_SQL_CURRENT_INSERT, "wf-1", "r1", -5),
                            op_hist("r1", 1, "E1"), op_vis("r1", 1, null, null)};
  gt_store_op_t step[1] = {op_hist("r0", 3, "E0")};
  gt_store_op_t close[4] = {op_exec_update("r0", 9, 1, "S0b"),
                            op_cur(GT_SQL_CURRENT_UPSERT, "wf-0", "r0", 1795731292885132968),
                            op_hist("r0", 5, ""), op_vis("r0", 2, gt_val_blob("memo", 4),
                                                         gt_val_text("{\"A\":1}"))};
  result_t r[3] = {{0}};
  ck_assert_int_eq(gt_store_write(st, 1, range, start, 4, record_cb, &r[0]), 0);
  ck_assert_int_eq(gt_store_write(st, 1, range, step, 1, record_cb, &r[1]), 0);
  ck_assert_int_eq(gt_store_write(st, 1, range, close, 4, record_cb, &r[2]), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 3);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(r[i].rc, 0);
    ck_assert_int_eq(r[i].failed_op, -1);
  }
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_groups), groups + 1);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_misses), misses);
  gt_store_get_stats(st, &after);
  ck_assert_uint_eq(after.transactions - before.transactions, 2); /* blocker + group */

  gt_rows_t *rs = NULL;
  gt_store_op_t get = op_exec_get("r1");
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 3);
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 1);
  assert_blob(gt_rows_at(rs, 0, 2), "S1");
  gt_store_rows_free(rs);
  get = op_exec_get("r0");
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 9);
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 2);
  assert_blob(gt_rows_at(rs, 0, 2), "S0b");
  gt_store_rows_free(rs);

  rs = query(st, "SELECT workflow_id, run_id, start_time FROM current_executions ORDER BY 1",
             2);
  assert_text(gt_rows_at(rs, 0, 0), "wf-0");
  ck_assert_int_eq(gt_rows_at(rs, 0, 2)->i, 1795731292885132968);
  assert_text(gt_rows_at(rs, 1, 0), "wf-1");
  assert_text(gt_rows_at(rs, 1, 1), "r1");
  ck_assert_int_eq(gt_rows_at(rs, 1, 2)->i, -5);
  gt_store_rows_free(rs);

  rs = query(st, "SELECT run_id, first_event_id, data FROM history ORDER BY 1, 2", 3);
  assert_text(gt_rows_at(rs, 0, 0), "r0");
  assert_blob(gt_rows_at(rs, 0, 2), "E0");
  ck_assert_int_eq(gt_rows_at(rs, 1, 1)->i, 5);
  ck_assert_uint_eq(gt_rows_at(rs, 1, 2)->len, 0);
  assert_blob(gt_rows_at(rs, 2, 2), "E1");
  gt_store_rows_free(rs);

  rs = query(st, "SELECT run_id, status, memo, search_json FROM visibility ORDER BY 1", 2);
  ck_assert_int_eq(gt_rows_at(rs, 0, 1)->i, 2);
  assert_blob(gt_rows_at(rs, 0, 2), "memo");
  assert_text(gt_rows_at(rs, 0, 3), "{\"A\":1}");
  assert_text(gt_rows_at(rs, 1, 0), "r1");
  ck_assert_int_eq(gt_rows_at(rs, 1, 2)->kind, GT_VAL_NULL);
  ck_assert_int_eq(gt_rows_at(rs, 1, 3)->kind, GT_VAL_NULL);
  gt_store_rows_free(rs);
  gt_store_close(st);
}
END_TEST

/* A merged group with a stale update and a duplicate history key: its statements fail,
 * the replay gives each batch its own outcome and keeps only the good ones. */
START_TEST(test_merged_group_failure_replays) {
  int64_t range;
  unsigned long groups, misses;
  gt_store_t *st = merged_setup(&range, &groups, &misses);

  block_writer(st);
  gt_store_op_t a[1] = {op_hist("ra", 1, "A")};
  gt_store_op_t b[2] = {op_hist("rb", 1, "B"), op_exec_update("r0", 5, 7, "X")};
  gt_store_op_t c[1] = {op_hist("ra", 1, "dup")};
  gt_store_op_t d[1] = {op_cur(GT_SQL_CURRENT_INSERT, "wf-d", "rd", 1)};
  result_t r[4] = {{0}};
  ck_assert_int_eq(gt_store_write(st, 1, range, a, 1, record_cb, &r[0]), 0);
  ck_assert_int_eq(gt_store_write(st, 1, range, b, 2, record_cb, &r[1]), 0);
  ck_assert_int_eq(gt_store_write(st, 1, range, c, 1, record_cb, &r[2]), 0);
  ck_assert_int_eq(gt_store_write(st, 1, range, d, 1, record_cb, &r[3]), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 4);
  ck_assert_int_eq(r[0].rc, 0);
  ck_assert_int_eq(r[1].rc, GT_ECONFLICT);
  ck_assert_int_eq(r[1].failed_op, 1);
  ck_assert_int_eq(r[2].rc, GT_EEXISTS);
  ck_assert_int_eq(r[2].failed_op, 0);
  ck_assert_int_eq(r[3].rc, 0);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_groups), groups + 1);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_misses), misses + 1);

  gt_rows_t *rs = query(st, "SELECT run_id, data FROM history", 1);
  assert_text(gt_rows_at(rs, 0, 0), "ra");
  assert_blob(gt_rows_at(rs, 0, 1), "A");
  gt_store_rows_free(rs);
  gt_store_op_t get = op_exec_get("r0");
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 3);
  gt_store_rows_free(rs);
  ck_assert_int_eq(raw_int("SELECT count(*) FROM current_executions WHERE "
                           "workflow_id = 'wf-d'"),
                   1);
  gt_store_close(st);
}
END_TEST

/* Chains in a merged group, as a workflow's transactions: chain x appends history (1 ok,
 * 2 conflicting on the executions row, 3 after it), chain y its own. The fast round is
 * replayed; x's third batch fails with GT_EUNAVAIL and writes nothing, y commits; a later
 * group with x's next batch fails the same way. */
START_TEST(test_merged_group_chain) {
  int64_t range;
  unsigned long groups, misses;
  gt_store_t *st = merged_setup(&range, &groups, &misses);
  gt_store_chain_t x = {0}, y = {0};
  block_writer(st);
  gt_store_op_t a[1] = {op_hist("rx", 1, "A")};
  gt_store_op_t b[2] = {op_hist("rx", 2, "B"), op_exec_update("r0", 5, 7, "X")};
  gt_store_op_t c[1] = {op_hist("rx", 3, "C")};
  gt_store_op_t d[1] = {op_hist("ry", 1, "D")};
  gt_store_op_t e[1] = {op_hist("rx", 4, "E")};
  result_t r[5] = {{0}};
  ck_assert_int_eq(gt_store_write_chained(st, 1, range, a, 1, record_cb, &r[0], &x), 0);
  ck_assert_int_eq(gt_store_write_chained(st, 1, range, b, 2, record_cb, &r[1], &x), 0);
  ck_assert_int_eq(gt_store_write_chained(st, 1, range, c, 1, record_cb, &r[2], &x), 0);
  ck_assert_int_eq(gt_store_write_chained(st, 1, range, d, 1, record_cb, &r[3], &y), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 4);
  ck_assert_int_eq(r[0].rc, 0);
  ck_assert_int_eq(r[1].rc, GT_ECONFLICT);
  ck_assert_int_eq(r[2].rc, GT_EUNAVAIL);
  ck_assert_int_eq(r[3].rc, 0);
  ck_assert_int_eq(gt_store_write_chained(st, 1, range, e, 1, record_cb, &r[4], &x), 0);
  wc_wait(&g_wc, 5);
  ck_assert_int_eq(r[4].rc, GT_EUNAVAIL);
  ck_assert_int_eq(atomic_load(&y.failed), 0);
  gt_rows_t *rs = query(st, "SELECT run_id, data FROM history ORDER BY run_id, "
                            "first_event_id", 2);
  ck_assert_int_eq(rs->nrows, 2);
  assert_text(gt_rows_at(rs, 0, 0), "rx");
  assert_blob(gt_rows_at(rs, 0, 1), "A");
  assert_text(gt_rows_at(rs, 1, 0), "ry");
  assert_blob(gt_rows_at(rs, 1, 1), "D");
  gt_store_rows_free(rs);
  gt_store_close(st);
}
END_TEST

START_TEST(test_chain_fails_after_its_failure) {
  gt_store_t *st = must_open();
  chain_case(st, block_writer);
  gt_store_close(st);
}
END_TEST

/* A merged group over two shards, one batch with a stale range_id: the fast round's fence
 * does not match it, and the replay fences that batch alone; then a group of current
 * batches on both shards commits. */
START_TEST(test_merged_group_fences) {
  int64_t r1, r2, r1b;
  gt_store_t *st = open_two_shards(&r1, &r2, &r1b);
  unsigned long groups = atomic_load(&gt__pg_arrays_groups);
  block_writer(st);
  gt_store_op_t h[3] = {op_hist("f1", 1, "a"), op_hist("f2", 1, "b"), op_hist("f3", 1, "c")};
  result_t r[3] = {{0}};
  ck_assert_int_eq(gt_store_write(st, 1, r1b, &h[0], 1, record_cb, &r[0]), 0);
  ck_assert_int_eq(gt_store_write(st, 2, r2, &h[1], 1, record_cb, &r[1]), 0);
  ck_assert_int_eq(gt_store_write(st, 1, r1, &h[2], 1, record_cb, &r[2]), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 3);
  ck_assert_int_eq(r[0].rc, 0);
  ck_assert_int_eq(r[1].rc, 0);
  ck_assert_int_eq(r[2].rc, GT_EFENCED);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_groups), groups + 1);
  gt_rows_t *rs = query(st, "SELECT run_id FROM history ORDER BY 1", 2);
  assert_text(gt_rows_at(rs, 0, 0), "f1");
  assert_text(gt_rows_at(rs, 1, 0), "f2");
  gt_store_rows_free(rs);

  /* both shards current */
  g_entered.n = g_gate.n = 0; /* no thread waits on them now: the group completed */
  block_writer(st);
  gt_store_op_t g[2] = {op_hist("f4", 1, "d"), op_hist("f5", 1, "e")};
  ck_assert_int_eq(gt_store_write(st, 1, r1b, &g[0], 1, record_cb, &r[0]), 0);
  ck_assert_int_eq(gt_store_write(st, 2, r2, &g[1], 1, record_cb, &r[1]), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 5);
  ck_assert_int_eq(r[0].rc, 0);
  ck_assert_int_eq(r[1].rc, 0);
  ck_assert_uint_eq(atomic_load(&gt__pg_arrays_groups), groups + 2);
  ck_assert_int_eq(raw_int("SELECT count(*) FROM history"), 4);
  gt_store_close(st);
}
END_TEST

static Suite *pg_suite(void) {
  Suite *s = suite_create("persistence_postgres");
  TCase *tc = tcase_create("postgres");
  tcase_add_unchecked_fixture(tc, server_start, server_stop);
  tcase_add_checked_fixture(tc, db_setup, db_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_schema_created_and_reopened);
  tcase_add_test(tc, test_embedded_schema_matches_file);
  tcase_add_test(tc, test_statement_signatures);
  tcase_add_test(tc, test_wrong_schema_version_refused);
  tcase_add_test(tc, test_foreign_tables_refused);
  tcase_add_test(tc, test_unreachable_is_eio_quickly);
  tcase_add_test(tc, test_acquire_shard);
  tcase_add_test(tc, test_write_and_read_back);
  tcase_add_test(tc, test_namespaces_visibility_taskid);
  tcase_add_test(tc, test_fencing);
  tcase_add_test(tc, test_conflict_rolls_back_only_its_batch);
  tcase_add_test(tc, test_chain_fails_after_its_failure);
  tcase_add_test(tc, test_merged_group_chain);
  tcase_add_test(tc, test_insert_twice_exists);
  tcase_add_test(tc, test_current_insert_exists);
  tcase_add_test(tc, test_group_fences_per_shard);
  tcase_add_test(tc, test_group_commit);
  tcase_add_test(tc, test_shard_order_across_slots);
  tcase_add_test(tc, test_slots_in_flight_at_once);
  tcase_add_test(tc, test_async_reads_many_threads);
  tcase_add_test(tc, test_timer_scan_order_and_limit);
  tcase_add_test(tc, test_tq_tasks);
  tcase_add_test(tc, test_close_runs_pending_completions);
  tcase_add_test(tc, test_durable_across_reopen);
  tcase_add_test(tc, test_read_sql);
  tcase_add_test(tc, test_conn_lifetime);
  tcase_add_test(tc, test_max_conns_bounds_readers);
  tcase_add_test(tc, test_merge_plan);
  tcase_add_test(tc, test_merged_group_writes_every_row);
  tcase_add_test(tc, test_merged_group_failure_replays);
  tcase_add_test(tc, test_merged_group_fences);
  tcase_add_test(tc, test_merged_visibility_outbox);
  tcase_add_test(tc, test_server_restart); /* last: it stops the shared server */
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(pg_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
