/*
 * store_fixture.h: what the two store Check suites (persistence_test on SQLite,
 * persistence_postgres_test on PostgreSQL) share: the same ops and row counts, the
 * completion counters and waits, and the concurrent submitters, so a case reads the same
 * for both backends. Header-only, like sqlite_fixture.h; each suite gets its own copy of
 * the state below.
 *
 * THREADS: the test thread, and the store's threads in the callbacks (they touch the
 * counters under their locks or as atomics).
 */
#ifndef GT_TEST_STORE_FIXTURE_H
#define GT_TEST_STORE_FIXTURE_H

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "persistence/store.h"
#include "persistence/store_int.h" /* the graveyard, for check_graveyard */
#include "runtime/err.h"

/* OUT: *n. Returns a malloc'd copy of the file. */
static inline char *read_file(const char *p, size_t *n) {
  FILE *f = fopen(p, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)len + 1);
  ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
  buf[len] = '\0';
  fclose(f);
  *n = (size_t)len;
  return buf;
}

static inline gt_store_op_t op_exec_get(const char *wf) {
  return (gt_store_op_t){GT_SQL_EXECUTION_GET, 4,
                         {gt_val_int(1), gt_val_text("ns"), gt_val_text(wf),
                          gt_val_text(wf)},
                         -1};
}

static inline gt_store_op_t op_transfer(int64_t task_id) {
  return (gt_store_op_t){GT_SQL_TRANSFER_TASK_INSERT, 3,
                         {gt_val_int(1), gt_val_int(task_id), gt_val_blob("t", 1)}, -1};
}

static inline int count_rows(gt_store_t *st, const gt_store_op_t *op) {
  gt_rows_t *rs = NULL;
  ck_assert_int_eq(gt_store_read_sync(st, op, &rs), 0);
  int n = rs->nrows;
  gt_store_rows_free(rs);
  return n;
}

static inline int transfer_count(gt_store_t *st) {
  gt_store_op_t scan = {GT_SQL_TRANSFER_TASK_SCAN, 1, {gt_val_int(1)}, -1};
  return count_rows(st, &scan);
}

static inline void assert_text(const gt_val_t *v, const char *s) {
  ck_assert_int_eq(v->kind, GT_VAL_TEXT);
  ck_assert_uint_eq(v->len, strlen(s));
  ck_assert_str_eq((const char *)v->p, s); /* also checks the trailing NUL */
}

static inline void assert_blob(const gt_val_t *v, const char *s) {
  ck_assert_int_eq(v->kind, GT_VAL_BLOB);
  ck_assert_uint_eq(v->len, strlen(s));
  ck_assert_mem_eq(v->p, s, v->len);
}

/* A counter the test thread can wait on. */
typedef struct waitc {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n;
} waitc_t;
static waitc_t g_wc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static inline void wc_add(waitc_t *w) {
  pthread_mutex_lock(&w->mu);
  w->n++;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static inline void wc_wait(waitc_t *w, int n) {
  pthread_mutex_lock(&w->mu);
  while (w->n < n)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

/* The blocker (each suite's block_writer) holds the writer until g_gate opens. */
static waitc_t g_entered = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
static waitc_t g_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
static atomic_int g_helper_ok;
static atomic_int g_calls[1000];

static inline void reset_counters(void) {
  g_wc.n = g_entered.n = g_gate.n = 0;
  atomic_store(&g_helper_ok, 0);
  for (size_t i = 0; i < sizeof(g_calls) / sizeof(g_calls[0]); i++)
    atomic_store(&g_calls[i], 0);
}

typedef struct result {
  int rc, failed_op, calls;
} result_t;

static inline void record_cb(void *ctx, int rc, int failed_op) {
  result_t *r = ctx;
  r->rc = rc;
  r->failed_op = failed_op;
  r->calls++;
  wc_add(&g_wc);
}

static inline gt_store_op_t op_current_insert(const char *run, const char *req) {
  return (gt_store_op_t){GT_SQL_CURRENT_INSERT, 8,
                         {gt_val_int(1), gt_val_text("ns"), gt_val_text("wf-ci"),
                          gt_val_text(run), gt_val_text(req), gt_val_int(1), gt_val_int(1),
                          gt_val_int(7)},
                         1};
}

#define GC_THREADS 4
#define GC_PER_THREAD 250
static gt_store_t *g_st;

static inline void gc_cb(void *ctx, int rc, int failed_op) {
  ck_assert_int_eq(rc, 0);
  atomic_fetch_add(&g_calls[(intptr_t)ctx], 1);
  wc_add(&g_wc);
}

static inline void *gc_submitter(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int k = 0; k < GC_PER_THREAD; k++) {
    intptr_t id = t * GC_PER_THREAD + k;
    gt_store_op_t op = op_transfer(1000 + id);
    ck_assert_int_eq(gt_store_write(g_st, -1, 0, &op, 1, gc_cb, (void *)id), 0);
  }
  return NULL;
}

#define RD_THREADS 4
#define RD_PER_THREAD 100
static inline void rd_cb(void *ctx, int rc, const gt_rows_t *rows) {
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(rows->nrows, 1);
  ck_assert_int_eq(gt_rows_at(rows, 0, 0)->i, 7);
  assert_blob(gt_rows_at(rows, 0, 2), "READ-ME");
  wc_add(&g_wc);
}

static inline void *rd_submitter(void *arg) {
  gt_store_op_t get = op_exec_get("wf-r");
  for (int k = 0; k < RD_PER_THREAD; k++)
    ck_assert_int_eq(gt_store_read(g_st, &get, rd_cb, NULL), 0);
  return NULL;
}

static inline gt_store_op_t tq_op(gt_sql_stmt_t stmt, const char *tq, int kind, int64_t id) {
  gt_store_op_t op = {stmt, 4,
                      {gt_val_text("ns"), gt_val_text(tq), gt_val_int(kind), gt_val_int(id),
                       gt_val_blob("task", 4)},
                      1};
  if (stmt == GT_SQL_TQ_TASK_INSERT)
    op.nparams = 5;
  return op;
}

static inline void count_cb(void *ctx, int rc, int failed_op) {
  ck_assert_int_eq(rc, 0);
  wc_add(&g_wc);
}

static inline void count_read_cb(void *ctx, int rc, const gt_rows_t *rows) {
  ck_assert_int_eq(rc, 0);
  ck_assert_ptr_nonnull(rows);
  wc_add(&g_wc);
}

/* Keeps submitting until close refuses (GT_ECLOSED), then releases the writer. */
static inline void *close_helper(void *arg) {
  for (int64_t id = 100000;; id++) {
    gt_store_op_t op = op_transfer(id);
    int rc = gt_store_write(g_st, -1, 0, &op, 1, count_cb, NULL);
    if (rc == GT_ECLOSED)
      break;
    ck_assert_int_eq(rc, 0);
    atomic_fetch_add(&g_helper_ok, 1);
    sched_yield();
  }
  wc_add(&g_gate);
  return NULL;
}

static inline int graveyard_count(gt_store_t *st) {
  int n = 0;
  for (gt__store_item_t *it = atomic_load(&st->graveyard); it; it = it->next)
    n++;
  return n;
}

/* Completed batches wait in the store's graveyard (store.c, "Freeing") until the next
 * submit frees them on its own thread: after `completed` completions (their callbacks
 * have run; the push follows the callback, so this waits for it), all of them are
 * there, and one more write leaves at most its own. */
static inline void check_graveyard(gt_store_t *st, int completed) {
  for (int spins = 0; graveyard_count(st) < completed; spins++) {
    ck_assert_int_lt(spins, 10000000);
    sched_yield();
  }
  ck_assert_int_eq(graveyard_count(st), completed);
  gt_store_op_t op = op_transfer(1 << 30);
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &op, 1, NULL), 0);
  ck_assert_int_le(graveyard_count(st), 1);
}

/* CURRENT_INSERT: a workflow id's first row goes in; a second insert of the same id fails
 * with GT_EEXISTS and its whole batch is rolled back, the first row untouched. */
static inline void check_current_insert_exists(gt_store_t *st) {
  gt_store_op_t first = op_current_insert("run-a", "req-a");
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &first, 1, NULL), 0);
  gt_store_op_t ops[2] = {op_transfer(4), op_current_insert("run-b", "req-b")};
  int failed = 99;
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, ops, 2, &failed), GT_EEXISTS);
  ck_assert_int_eq(failed, 1);
  ck_assert_int_eq(transfer_count(st), 0);
  gt_rows_t *rs = NULL;
  gt_store_op_t get = {GT_SQL_CURRENT_GET, 3,
                       {gt_val_int(1), gt_val_text("ns"), gt_val_text("wf-ci")}, -1};
  ck_assert_int_eq(gt_store_read_sync(st, &get, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  ck_assert_int_eq((int)gt_rows_at(rs, 0, 0)->len, 5);
  ck_assert_mem_eq(gt_rows_at(rs, 0, 0)->p, "run-a", 5);
  gt_store_rows_free(rs);
}

/* Visibility of run-0 (open, started at 100, read back by vg) closes: the columns that may
 * change are updated, the run's own columns stay. */
static inline void check_visibility_close(gt_store_t *st, const gt_store_op_t *vg) {
  gt_rows_t *rs = NULL;
  gt_store_op_t vc = {GT_SQL_VISIBILITY_UPSERT, 13,
                      {gt_val_text("ns"), gt_val_text("run-0"), gt_val_text("wf"),
                       gt_val_text("Type"), gt_val_text("tq"), gt_val_int(2), gt_val_int(100),
                       gt_val_int(100), gt_val_int(250), gt_val_int(9), gt_val_blob("M", 1),
                       (gt_val_t){GT_VAL_NULL}, (gt_val_t){GT_VAL_NULL}},
                      1};
  ck_assert_int_eq(gt_store_write_sync(st, -1, 0, &vc, 1, NULL), 0);
  ck_assert_int_eq(gt_store_read_sync(st, vg, &rs), 0);
  ck_assert_int_eq(rs->nrows, 1);
  assert_text(gt_rows_at(rs, 0, 2), "wf");
  ck_assert_int_eq(gt_rows_at(rs, 0, 5)->i, 2);
  ck_assert_int_eq(gt_rows_at(rs, 0, 6)->i, 100);
  ck_assert_int_eq(gt_rows_at(rs, 0, 8)->i, 250);
  ck_assert_int_eq(gt_rows_at(rs, 0, 9)->i, 9);
  assert_blob(gt_rows_at(rs, 0, 10), "M");
  gt_store_rows_free(rs);
}

/* Chains (gt_store_write_chained), on a backend whose writer `block` holds: batches 0-2
 * of chain x in one group, the middle one failing (an update expecting a row that is not
 * there), an unchained batch and one of chain y beside them. The batch after the failure
 * fails with GT_EUNAVAIL and leaves nothing; the others keep their own outcomes; x stays
 * failed for a batch queued later (another group), y is intact. */
static inline void chain_case(gt_store_t *st, void (*block)(gt_store_t *)) {
  gt_store_chain_t x = {0}, y = {0};
  gt_store_op_t bad = {GT_SQL_EXECUTION_UPDATE, 8,
                       {gt_val_int(2), gt_val_int(2), gt_val_blob("S2", 2), gt_val_int(1),
                        gt_val_text("ns"), gt_val_text("wf-none"), gt_val_text("wf-none"),
                        gt_val_int(5)},
                       1};
  gt_store_op_t t20 = op_transfer(20), t21 = op_transfer(21), t22 = op_transfer(22),
                t23 = op_transfer(23), t24 = op_transfer(24);
  result_t r[6] = {{0}};
  block(st);
  ck_assert_int_eq(gt_store_write_chained(st, -1, 0, &t20, 1, record_cb, &r[0], &x), 0);
  ck_assert_int_eq(gt_store_write_chained(st, -1, 0, &bad, 1, record_cb, &r[1], &x), 0);
  ck_assert_int_eq(gt_store_write_chained(st, -1, 0, &t21, 1, record_cb, &r[2], &x), 0);
  ck_assert_int_eq(gt_store_write(st, -1, 0, &t22, 1, record_cb, &r[3]), 0);
  ck_assert_int_eq(gt_store_write_chained(st, -1, 0, &t23, 1, record_cb, &r[4], &y), 0);
  wc_add(&g_gate);
  wc_wait(&g_wc, 5);
  ck_assert_int_eq(r[0].rc, 0);
  ck_assert_int_eq(r[1].rc, GT_ECONFLICT);
  ck_assert_int_eq(r[2].rc, GT_EUNAVAIL);
  ck_assert_int_eq(r[2].failed_op, -1);
  ck_assert_int_eq(r[3].rc, 0);
  ck_assert_int_eq(r[4].rc, 0);
  ck_assert_int_eq(atomic_load(&x.failed), 1);
  ck_assert_int_eq(atomic_load(&y.failed), 0);
  ck_assert_int_eq(gt_store_write_chained(st, -1, 0, &t24, 1, record_cb, &r[5], &x), 0);
  wc_wait(&g_wc, 6);
  ck_assert_int_eq(r[5].rc, GT_EUNAVAIL);
  for (int i = 0; i < 6; i++)
    ck_assert_int_eq(r[i].calls, 1);
  gt_store_op_t scan = {GT_SQL_TRANSFER_TASK_SCAN, 1, {gt_val_int(1)}, -1};
  gt_rows_t *rs = NULL;
  ck_assert_int_eq(gt_store_read_sync(st, &scan, &rs), 0);
  ck_assert_int_eq(rs->nrows, 3);
  ck_assert_int_eq(gt_rows_at(rs, 0, 0)->i, 20);
  ck_assert_int_eq(gt_rows_at(rs, 1, 0)->i, 22);
  ck_assert_int_eq(gt_rows_at(rs, 2, 0)->i, 23);
  gt_store_rows_free(rs);
}

#endif
