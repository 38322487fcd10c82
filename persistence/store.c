/*
 * store.c: the backend-independent half of the store (store.h): argument checks, deep
 * copies at submit, completions, sync wrappers, the result-set builder, stats.
 *
 * DESIGN
 *   Every write batch is copied into ONE allocation: the gt__store_batch_t header, then the
 *   ops array, then every text/blob byte, so the caller may free its buffers at once and the
 *   backend frees the whole batch with one free(). A read is copied the same way. A result
 *   set is built incrementally (the row count is unknown until the statement is done) and
 *   then packed into one allocation: gt_rows_t, the values, the bytes.
 *   The backend is reached only through its gt_store_ops_t vtable (store_int.h).
 *   Freeing: a batch completes on a store thread (the SQLite syncer or writer, a
 *   PostgreSQL worker) but was allocated by its submitter (a scheduler thread). Freed at
 *   completion, every batch went back to the submitter's malloc arena under that arena's
 *   lock, which the submitter's own mallocs were taking at the same time: ~20% of the
 *   server's futex calls under load (perf, hello at 100 in flight). So a completion pushes
 *   the batch on the store's graveyard (a lock-free stack) and the next submit takes the
 *   whole stack with one exchange and frees it on its own thread; close frees the rest.
 *
 * INVARIANTS
 *   - A submit that returns an error never calls the callback and frees what it built.
 *   - queue_depth counts items between a successful submit and their *_done.
 *   - The graveyard holds only completed batches (no backend or caller refers to them);
 *     it is only pushed one at a time and only emptied whole (atomic exchange), so a
 *     push cannot meet the ABA problem of a stack popped one element at a time.
 *   - Text values in result sets are NUL-terminated (len excludes the NUL).
 *
 * THREADS
 *   gt_store_write/read and the *_done functions: any thread (store threads for *_done).
 *   open/close/sync forms: the owning thread. Stats are relaxed atomics.
 */
#include "persistence/store.h"

#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/store_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* ---------------------------------------------------------------- statements --- */

/* Parameter counts and result columns, exactly as listed in store.h. */
const gt__stmt_info_t gt__store_stmt_info[GT_SQL__COUNT] = {
    [GT_SQL_NAMESPACE_UPSERT] = {4, 0, 0},
    [GT_SQL_EXECUTION_INSERT] = {7, 0, 0},
    [GT_SQL_EXECUTION_UPDATE] = {8, 0, 0},
    [GT_SQL_CURRENT_UPSERT] = {8, 0, 0},
    [GT_SQL_HISTORY_APPEND] = {7, 0, 0},
    [GT_SQL_TRANSFER_TASK_INSERT] = {3, 0, 0},
    [GT_SQL_TRANSFER_TASK_DELETE] = {2, 0, 0},
    [GT_SQL_TIMER_TASK_INSERT] = {4, 0, 0},
    [GT_SQL_TIMER_TASK_DELETE] = {3, 0, 0},
    [GT_SQL_TQ_TASK_INSERT] = {5, 0, 0},
    [GT_SQL_TQ_TASK_DELETE] = {4, 0, 0},
    [GT_SQL_VISIBILITY_UPSERT] = {13, 0, 0},
    [GT_SQL_NAMESPACE_LIST] = {0, 4, 1},
    [GT_SQL_EXECUTION_GET] = {4, 3, 1},
    [GT_SQL_CURRENT_GET] = {3, 5, 1},
    [GT_SQL_HISTORY_GET] = {5, 3, 1},
    [GT_SQL_TRANSFER_TASK_SCAN] = {1, 2, 1},
    [GT_SQL_TIMER_TASK_SCAN] = {3, 3, 1},
    [GT_SQL_TQ_TASK_SCAN] = {4, 2, 1},
    [GT_SQL_VISIBILITY_GET] = {2, 12, 1},
    [GT_SQL_VISIBILITY_LIST] = {3, 12, 1},
    [GT_SQL_TASK_ID_MAX] = {1, 1, 1},
    [GT_SQL_CURRENT_LIST_RUNNING] = {1, 3, 1},
    [GT_SQL_SEARCH_ATTR_UPSERT] = {3, 0, 0},
    [GT_SQL_SEARCH_ATTR_DELETE] = {2, 0, 0},
    [GT_SQL_VISIBILITY_EXPIRED] = {3, 2, 1},
    [GT_SQL_EXECUTION_DELETE] = {4, 0, 0},
    [GT_SQL_HISTORY_DELETE] = {4, 0, 0},
    [GT_SQL_CURRENT_DELETE] = {4, 0, 0},
    [GT_SQL_VISIBILITY_DELETE] = {2, 0, 0},
    [GT_SQL_CURRENT_INSERT] = {8, 0, 0},
    [GT_SQL_VISIBILITY_TASK_INSERT] = {3, 0, 0},
    [GT_SQL_VISIBILITY_TASK_DELETE] = {2, 0, 0},
    [GT_SQL_VISIBILITY_TASK_SCAN] = {2, 2, 1},
    [GT_SQL_VISIBILITY_APPLY] = {13, 0, 0},
};

gt_val_t gt_val_text(const char *s) {
  if (!s)
    return (gt_val_t){GT_VAL_NULL, 0, 0, 0};
  return (gt_val_t){GT_VAL_TEXT, 0, s, strlen(s)};
}

/* ------------------------------------------------------------------ copying --- */

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

/* Checks one op against the statement table. want_read: 1 for reads, 0 for writes.
 * OUT: *bytes += the value bytes it needs. Returns 0 or GT_EINVAL. */
static int check_op(const gt_store_op_t *op, int want_read, size_t *bytes) {
  if ((int)op->stmt < 0 || op->stmt >= GT_SQL__COUNT)
    return GT_EINVAL;
  const gt__stmt_info_t *si = &gt__store_stmt_info[op->stmt];
  if (si->is_read != want_read || op->nparams != si->nparams)
    return GT_EINVAL;
  for (int i = 0; i < op->nparams; i++) {
    const gt_val_t *v = &op->params[i];
    if (v->kind == GT_VAL_TEXT || v->kind == GT_VAL_BLOB) {
      if (v->len > 0 && !v->p)
        return GT_EINVAL;
      *bytes += v->len + 1; /* +1: text is NUL-terminated in the copy */
    } else if (v->kind != GT_VAL_NULL && v->kind != GT_VAL_INT) {
      return GT_EINVAL;
    }
  }
  return 0;
}

/* Copies op into *dst, moving its text/blob bytes to *cursor (advanced). Only the
 * nparams values in use are copied: the backends read no others, and a caller need not
 * set the rest (gt_store_op_t; a hot caller does not zero its 528-byte ops). */
static void copy_op(gt_store_op_t *dst, const gt_store_op_t *src, char **cursor) {
  dst->stmt = src->stmt;
  dst->nparams = src->nparams;
  dst->expect_rows = src->expect_rows;
  for (int i = 0; i < src->nparams; i++) {
    dst->params[i] = src->params[i];
    gt_val_t *v = &dst->params[i];
    if (v->kind != GT_VAL_TEXT && v->kind != GT_VAL_BLOB)
      continue;
    if (v->len)
      memcpy(*cursor, v->p, v->len);
    (*cursor)[v->len] = '\0';
    v->p = *cursor;
    *cursor += v->len + 1;
  }
}

/* ------------------------------------------------------------------ open/close --- */

extern const gt_store_ops_t gt__pg_store_ops; /* postgres/pg_store.c */

int gt_store_open(gt_store_t **out, const gt_store_config_t *cfg) {
  GT_ASSERT(out && cfg);
  *out = NULL;
  const gt_store_ops_t *ops = NULL;
  if (cfg->backend == GT_STORE_SQLITE)
    ops = &gt__sqlite_store_ops;
  else if (cfg->backend == GT_STORE_POSTGRES)
    ops = &gt__pg_store_ops;
  if (!ops) {
    gt_log_error("STORE-BACKEND-UNAVAILABLE", "store backend %d is not built yet",
                 (int)cfg->backend);
    return GT_EINVAL;
  }
  gt_store_t *st = calloc(1, sizeof(*st));
  if (!st)
    return GT_ENOMEM;
  st->ops = ops;
  int rc = ops->open(st, cfg, &st->impl);
  if (rc) {
    free(st);
    return rc;
  }
  *out = st;
  return 0;
}

/* Frees the completed batches waiting in the graveyard, on the calling thread. */
static void graveyard_free(gt_store_t *st) {
  if (atomic_load_explicit(&st->graveyard, memory_order_relaxed) == NULL)
    return;
  /* acquire: pairs with the release push, so the batches' memory is ours to free */
  gt__store_item_t *it = atomic_exchange_explicit(&st->graveyard, NULL, memory_order_acquire);
  while (it) {
    gt__store_item_t *next = it->next;
    free(it);
    it = next;
  }
}

static void graveyard_push(gt_store_t *st, gt__store_batch_t *b) {
  gt__store_item_t *it = &b->link; /* first member: the batch's address */
  gt__store_item_t *head = atomic_load_explicit(&st->graveyard, memory_order_relaxed);
  do
    it->next = head;
  while (!atomic_compare_exchange_weak_explicit(&st->graveyard, &head, it,
                                                memory_order_release, memory_order_relaxed));
}

void gt_store_close(gt_store_t *st) {
  if (!st)
    return;
  st->ops->close(st->impl);
  graveyard_free(st); /* the backend's threads have completed everything */
  free(st);
}

/* ------------------------------------------------------------------ latency --- */

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counts a completion of kind k (0 write batch, 1 read) submitted at submit_ns. */
static void observe_latency(gt_store_t *st, int k, uint64_t submit_ns) {
  uint64_t now = mono_ns(), ns = now > submit_ns ? now - submit_ns : 0;
  gt_metrics_ahist_observe(&st->lat[k], ns);
}

void gt_store_latency(gt_store_t *st, int reads, gt_metrics_hist_t *out) {
  gt_metrics_ahist_read(&st->lat[reads ? 1 : 0], out);
}

/* ------------------------------------------------------------------ writes --- */

int gt_store_write(gt_store_t *st, int shard_id, int64_t range_id, const gt_store_op_t *ops,
                   int nops, gt_store_write_cb cb, void *ctx) {
  return gt_store_write_chained(st, shard_id, range_id, ops, nops, cb, ctx, NULL);
}

int gt_store_write_chained(gt_store_t *st, int shard_id, int64_t range_id,
                           const gt_store_op_t *ops, int nops, gt_store_write_cb cb, void *ctx,
                           gt_store_chain_t *chain) {
  if (!st || nops < 0 || (nops > 0 && !ops))
    return GT_EINVAL;
  size_t bytes = 0;
  for (int i = 0; i < nops; i++) {
    if (check_op(&ops[i], 0, &bytes)) {
      gt_log_warn("STORE-BAD-OP", "write op %d (statement %d, %d params) refused: "
                  "a programming error in the caller", i, (int)ops[i].stmt, ops[i].nparams);
      return GT_EINVAL;
    }
  }
  graveyard_free(st);
  size_t head = ALIGN8(sizeof(gt__store_batch_t));
  size_t opsz = (size_t)nops * sizeof(gt_store_op_t);
  gt__store_batch_t *b = malloc(head + opsz + bytes);
  if (!b)
    return GT_ENOMEM;
  b->link.next = NULL;
  b->link.kind = GT__ITEM_WRITE;
  b->shard_id = shard_id;
  b->range_id = range_id;
  b->nops = nops;
  b->ops = (gt_store_op_t *)((char *)b + head);
  b->cb = cb;
  b->ctx = ctx;
  b->chain = chain;
  char *cursor = (char *)b->ops + opsz;
  for (int i = 0; i < nops; i++)
    copy_op(&b->ops[i], &ops[i], &cursor);
  atomic_fetch_add_explicit(&st->queue_depth, 1, memory_order_relaxed);
  b->submit_ns = mono_ns();
  int rc = st->ops->submit_write(st->impl, b);
  if (rc) {
    atomic_fetch_sub_explicit(&st->queue_depth, 1, memory_order_relaxed);
    free(b);
  }
  return rc;
}

void gt__store_write_done(gt_store_t *st, gt__store_batch_t *b, int rc, int failed_op) {
  atomic_fetch_add_explicit(rc ? &st->batches_failed : &st->batches_committed, 1,
                            memory_order_relaxed);
  if (rc == GT_EFENCED)
    atomic_fetch_add_explicit(&st->batches_fenced, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&st->queue_depth, 1, memory_order_relaxed);
  observe_latency(st, 0, b->submit_ns);
  if (rc)
    gt__chain_fail(b);
  if (b->cb)
    b->cb(b->ctx, rc, rc ? failed_op : -1);
  graveyard_push(st, b); /* freed by the next submit's thread ("Freeing") */
}

/* ------------------------------------------------------------------ reads --- */

/* Builds a read request. OUT: *out. Returns 0, GT_EINVAL, GT_ENOMEM. */
static int build_read(const gt_store_op_t *op, gt__store_read_t **out) {
  size_t bytes = 0;
  if (!op || check_op(op, 1, &bytes))
    return GT_EINVAL;
  size_t head = ALIGN8(sizeof(gt__store_read_t));
  gt__store_read_t *r = malloc(head + bytes);
  if (!r)
    return GT_ENOMEM;
  memset(r, 0, sizeof(*r));
  r->link.kind = GT__ITEM_READ;
  char *cursor = (char *)r + head;
  copy_op(&r->op, op, &cursor);
  *out = r;
  return 0;
}

static int submit_read(gt_store_t *st, gt__store_read_t *r) {
  atomic_fetch_add_explicit(&st->queue_depth, 1, memory_order_relaxed);
  r->submit_ns = mono_ns();
  int rc = st->ops->submit_read(st->impl, r);
  if (rc) {
    atomic_fetch_sub_explicit(&st->queue_depth, 1, memory_order_relaxed);
    free(r);
  }
  return rc;
}

int gt_store_read(gt_store_t *st, const gt_store_op_t *op, gt_store_read_cb cb, void *ctx) {
  if (!st || !cb)
    return GT_EINVAL;
  gt__store_read_t *r;
  int rc = build_read(op, &r);
  if (rc)
    return rc;
  r->cb = cb;
  r->ctx = ctx;
  return submit_read(st, r);
}

gt_store_backend_t gt_store_backend(const gt_store_t *st) {
  return st->ops == &gt__sqlite_store_ops ? GT_STORE_SQLITE : GT_STORE_POSTGRES;
}

/* Builds a read of SQL text: header, values, then the SQL and every value byte.
 * OUT: *out. Returns 0, GT_EINVAL, GT_ENOMEM. */
static int build_read_sql(const char *sql, const gt_val_t *params, int nparams,
                          gt__store_read_t **out) {
  if (!sql || nparams < 0 || nparams > GT_STORE_SQL_MAX_PARAMS || (nparams && !params))
    return GT_EINVAL;
  size_t bytes = strlen(sql) + 1;
  for (int i = 0; i < nparams; i++) {
    const gt_val_t *v = &params[i];
    if (v->kind == GT_VAL_TEXT || v->kind == GT_VAL_BLOB) {
      if (v->len > 0 && !v->p)
        return GT_EINVAL;
      bytes += v->len + 1;
    } else if (v->kind != GT_VAL_NULL && v->kind != GT_VAL_INT) {
      return GT_EINVAL;
    }
  }
  size_t head = ALIGN8(sizeof(gt__store_read_t));
  size_t vsz = (size_t)nparams * sizeof(gt_val_t);
  gt__store_read_t *r = malloc(head + vsz + bytes);
  if (!r)
    return GT_ENOMEM;
  memset(r, 0, sizeof(*r));
  r->link.kind = GT__ITEM_READ;
  r->sql_params = (gt_val_t *)((char *)r + head);
  r->nsql_params = nparams;
  char *cursor = (char *)r->sql_params + vsz;
  for (int i = 0; i < nparams; i++) {
    gt_val_t *v = &r->sql_params[i];
    *v = params[i];
    if (v->kind != GT_VAL_TEXT && v->kind != GT_VAL_BLOB)
      continue;
    if (v->len)
      memcpy(cursor, v->p, v->len);
    cursor[v->len] = '\0';
    v->p = cursor;
    cursor += v->len + 1;
  }
  size_t sl = strlen(sql);
  memcpy(cursor, sql, sl + 1);
  r->sql = cursor;
  *out = r;
  return 0;
}

int gt_store_read_sql(gt_store_t *st, const char *sql, const gt_val_t *params, int nparams,
                      gt_store_read_cb cb, void *ctx) {
  if (!st || !cb)
    return GT_EINVAL;
  gt__store_read_t *r;
  int rc = build_read_sql(sql, params, nparams, &r);
  if (rc)
    return rc;
  r->cb = cb;
  r->ctx = ctx;
  return submit_read(st, r);
}

/* ------------------------------------------------------------------ sync forms --- */

/* A caller blocked in a *_sync call; signalled by the completion on a store thread. */
typedef struct gt__sync_wait {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int rc;
  int failed_op;
  gt_rows_t *rows;
} sync_wait_t;

static void sync_init(sync_wait_t *w) {
  memset(w, 0, sizeof(*w));
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->failed_op = -1;
}

static void sync_signal(sync_wait_t *w, int rc, int failed_op, gt_rows_t *rows) {
  pthread_mutex_lock(&w->mu);
  w->rc = rc;
  w->failed_op = failed_op;
  w->rows = rows;
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void sync_wait_fini(sync_wait_t *w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

static void sync_write_cb(void *ctx, int rc, int failed_op) {
  sync_signal(ctx, rc, failed_op, NULL);
}

int gt_store_write_sync(gt_store_t *st, int shard_id, int64_t range_id,
                        const gt_store_op_t *ops, int nops, int *failed_op) {
  sync_wait_t w;
  sync_init(&w);
  int rc = gt_store_write(st, shard_id, range_id, ops, nops, sync_write_cb, &w);
  if (rc) {
    sync_signal(&w, rc, -1, NULL);
  }
  sync_wait_fini(&w);
  if (failed_op)
    *failed_op = w.failed_op;
  return w.rc;
}

int gt_store_read_sync(gt_store_t *st, const gt_store_op_t *op, gt_rows_t **rows) {
  GT_ASSERT(rows);
  *rows = NULL;
  if (!st)
    return GT_EINVAL;
  gt__store_read_t *r;
  int rc = build_read(op, &r);
  if (rc)
    return rc;
  sync_wait_t w;
  sync_init(&w);
  r->sync = &w;
  rc = submit_read(st, r);
  if (rc)
    sync_signal(&w, rc, -1, NULL);
  sync_wait_fini(&w);
  *rows = w.rows;
  return w.rc;
}

int gt_store_read_sql_sync(gt_store_t *st, const char *sql, const gt_val_t *params,
                           int nparams, gt_rows_t **rows) {
  GT_ASSERT(rows);
  *rows = NULL;
  if (!st)
    return GT_EINVAL;
  gt__store_read_t *r;
  int rc = build_read_sql(sql, params, nparams, &r);
  if (rc)
    return rc;
  sync_wait_t w;
  sync_init(&w);
  r->sync = &w;
  rc = submit_read(st, r);
  if (rc)
    sync_signal(&w, rc, -1, NULL);
  sync_wait_fini(&w);
  *rows = w.rows;
  return w.rc;
}

void gt__store_read_done(gt_store_t *st, gt__store_read_t *r, int rc, gt_rows_t *rows) {
  atomic_fetch_add_explicit(&st->reads, 1, memory_order_relaxed);
  if (rc != 0 && rc != GT_ENOTFOUND) /* a missing row is an answer, not a failure */
    atomic_fetch_add_explicit(&st->reads_failed, 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&st->queue_depth, 1, memory_order_relaxed);
  observe_latency(st, 1, r->submit_ns);
  if (rc && rows) {
    gt_store_rows_free(rows);
    rows = NULL;
  }
  if (r->sync) {
    sync_signal(r->sync, rc, -1, rows); /* the waiter owns rows now */
  } else {
    r->cb(r->ctx, rc, rows);
    gt_store_rows_free(rows);
  }
  free(r);
}

void gt_store_rows_free(gt_rows_t *rows) { free(rows); }

int gt_store_acquire_shard_sync(gt_store_t *st, int shard_id, const char *owner,
                                int64_t *range_id) {
  GT_ASSERT(st && range_id);
  return st->ops->acquire_shard(st->impl, shard_id, owner ? owner : "", range_id);
}

void gt_store_get_stats(gt_store_t *st, gt_store_stats_t *out) {
  out->batches_committed = atomic_load_explicit(&st->batches_committed, memory_order_relaxed);
  out->transactions = atomic_load_explicit(&st->transactions, memory_order_relaxed);
  out->batches_failed = atomic_load_explicit(&st->batches_failed, memory_order_relaxed);
  out->batches_fenced = atomic_load_explicit(&st->batches_fenced, memory_order_relaxed);
  out->reads = atomic_load_explicit(&st->reads, memory_order_relaxed);
  out->reads_failed = atomic_load_explicit(&st->reads_failed, memory_order_relaxed);
  out->queue_depth = atomic_load_explicit(&st->queue_depth, memory_order_relaxed);
}

/* ------------------------------------------------------------------ result sets --- */

void gt__rows_init(gt__rows_builder_t *b, int ncols) {
  memset(b, 0, sizeof(*b));
  b->ncols = ncols;
}

void gt__rows_fini(gt__rows_builder_t *b) {
  free(b->vals);
  free(b->bytes);
  b->vals = NULL;
  b->bytes = NULL;
}

/* Grows *buf (element size esz) to hold at least need elements. Returns 0 or GT_ENOMEM. */
static int grow(void **buf, size_t *cap, size_t need, size_t esz) {
  if (need <= *cap)
    return 0;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < need)
    ncap *= 2;
  void *n = realloc(*buf, ncap * esz);
  if (!n)
    return GT_ENOMEM;
  *buf = n;
  *cap = ncap;
  return 0;
}

int gt__rows_add(gt__rows_builder_t *b, gt_val_kind_t kind, int64_t i, const void *p,
                 size_t len) {
  if (grow((void **)&b->vals, &b->vcap, b->nvals + 1, sizeof(gt_val_t)))
    return GT_ENOMEM;
  gt_val_t *v = &b->vals[b->nvals++];
  *v = (gt_val_t){kind, i, NULL, 0};
  if (kind != GT_VAL_TEXT && kind != GT_VAL_BLOB)
    return 0;
  if (grow((void **)&b->bytes, &b->bcap, b->nbytes + len + 1, 1))
    return GT_ENOMEM;
  if (len)
    memcpy(b->bytes + b->nbytes, p, len);
  b->bytes[b->nbytes + len] = '\0';
  v->p = (const void *)(uintptr_t)b->nbytes; /* an offset until gt__rows_finish */
  v->len = len;
  b->nbytes += len + 1;
  return 0;
}

int gt__rows_finish(gt__rows_builder_t *b, gt_rows_t **out) {
  *out = NULL;
  GT_ASSERT(b->ncols > 0 || b->nvals == 0);
  size_t head = ALIGN8(sizeof(gt_rows_t));
  size_t vsz = b->nvals * sizeof(gt_val_t);
  gt_rows_t *rs = malloc(head + vsz + b->nbytes);
  if (!rs) {
    gt__rows_fini(b);
    return GT_ENOMEM;
  }
  gt_val_t *vals = (gt_val_t *)((char *)rs + head);
  char *bytes = (char *)vals + vsz;
  if (vsz)
    memcpy(vals, b->vals, vsz);
  if (b->nbytes)
    memcpy(bytes, b->bytes, b->nbytes);
  for (size_t k = 0; k < b->nvals; k++) {
    if (vals[k].kind == GT_VAL_TEXT || vals[k].kind == GT_VAL_BLOB)
      vals[k].p = bytes + (uintptr_t)vals[k].p;
  }
  rs->ncols = b->ncols;
  rs->nrows = b->ncols ? (int)(b->nvals / (size_t)b->ncols) : 0;
  rs->vals = vals;
  gt__rows_fini(b);
  *out = rs;
  return 0;
}
