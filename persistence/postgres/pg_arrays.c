/*
 * pg_arrays.c: a write group's ops as multi-row statements, for the fast round of the
 * PostgreSQL writer (pg_store.c).
 *
 * DESIGN
 *   PostgreSQL spends as much of its CPU on each statement as on the row it writes (bind,
 *   executor start and end, the reply; perf on the hello load of `make bench`: ~0.4 ms of
 *   PostgreSQL CPU per workflow, more than the server's own, for ~10 rows in 4 batches).
 *   Sent one statement per op, a group of N batches costs ~2.5 N statements. Here the
 *   ops of one kind become the rows of one statement over unnest()ed arrays, one array
 *   per parameter of the one-row statement (pg_sql.c, GT__PG_ARR_*), binary: five
 *   statements a group at most, whatever its size, plus one per executions UPDATE (a
 *   workflow writes one, at its close). Those stay one-row statements: a prepared
 *   UPDATE joined with unnest() keeps the generic plan PostgreSQL made while the table
 *   was empty, a sequential scan of it (measured: half the hello/s).
 *   Why the outcome is the batches' own, in their order: the statements run a kind at a
 *   time, not in the ops' order. That changes nothing when no two ops of the group meet
 *   on a row of a table two kinds write (executions: insert and update;
 *   current_executions: insert and upsert); a group where two do is not merged
 *   (gt__pg_arrays_fit). Within one kind, two ops on one row cannot both pass in one
 *   statement (a duplicate key for an insert; "cannot affect row a second time" for an
 *   upsert): the statement fails and the fast round with it, and pg_store.c's careful
 *   replay, one statement per op in order, gives each batch its outcome, as after any
 *   failure. The tables have no triggers and no foreign keys: kinds of different tables
 *   commute.
 *   Row counts: an insert changes its row or fails, so a multi-row insert must report
 *   its op count; an upsert, any count; each executions UPDATE, one row (a group with
 *   an update expecting anything else is not merged). Otherwise the fast round fails.
 *   Only the writes of a workflow's transitions are merged: a group holding any other op
 *   (timer and task rows, deletes, namespaces) goes one statement per op.
 *
 * INVARIANTS
 *   - gt__pg_arrays_add sends what the last gt__pg_arrays_fit planned, for that group.
 *   - a->buf holds one statement's arrays at a time: libpq copies them when it is sent.
 *
 * THREADS
 *   The writer's loop thread; each slot has its own gt__pg_arrays_t. The counters:
 *   relaxed atomics (statistics for tests, they order nothing).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/postgres/pg_int.h"
#include "persistence/store_int.h"

atomic_ulong gt__pg_arrays_groups, gt__pg_arrays_misses;

enum { EXPECT_ANY = 1, EXPECT_ONE = 2 }; /* the expect_rows an op of a kind may carry */

/* The merged kinds, in the order their statements are sent. */
static const struct kind {
  gt_sql_stmt_t stmt;
  int arr_id;    /* its multi-row statement; -1: sent one statement per op */
  char table;    /* a table two kinds write ('e', 'c'): rows must not meet; 0: no check */
  int key[3];    /* the parameters naming the row, when table is set */
  int nkey;
  int expect_ok; /* EXPECT_* bits */
  int exact;     /* a multi-row statement reports one row per op (an insert) */
} KINDS[GT__PG_ARR_KINDS] = {
    {GT_SQL_EXECUTION_INSERT, GT__PG_ARR_EXECUTION_INSERT, 'e', {3}, 1,
     EXPECT_ANY | EXPECT_ONE, 1},
    /* one statement per op (DESIGN) */
    {GT_SQL_EXECUTION_UPDATE, -1, 'e', {6}, 1, EXPECT_ONE, 0},
    {GT_SQL_CURRENT_INSERT, GT__PG_ARR_CURRENT_INSERT, 'c', {0, 1, 2}, 3,
     EXPECT_ANY | EXPECT_ONE, 1},
    {GT_SQL_CURRENT_UPSERT, GT__PG_ARR_CURRENT_UPSERT, 'c', {0, 1, 2}, 3, EXPECT_ANY, 0},
    {GT_SQL_HISTORY_APPEND, GT__PG_ARR_HISTORY_APPEND, 0, {0}, 0, EXPECT_ANY | EXPECT_ONE, 1},
    {GT_SQL_VISIBILITY_UPSERT, GT__PG_ARR_VISIBILITY_UPSERT, 0, {0}, 0, EXPECT_ANY, 0},
    /* a separate visibility store (vis_outbox.c): the run's outbox rows in its batches,
     * then their changes in the visibility store's. Two changes of one run in a group
     * must not meet in one ON CONFLICT statement (PostgreSQL refuses a row affected
     * twice): 'v' keeps such a group one statement per op. */
    {GT_SQL_VISIBILITY_TASK_INSERT, GT__PG_ARR_VISIBILITY_TASK_INSERT, 0, {0}, 0,
     EXPECT_ANY | EXPECT_ONE, 1},
    {GT_SQL_VISIBILITY_APPLY, GT__PG_ARR_VISIBILITY_APPLY, 'v', {0, 1}, 2, EXPECT_ANY, 0},
};

/* The most one statement's arrays may take. A group over it (big payloads) goes one
 * statement per op, streamed by libpq, instead of being copied whole into a->buf, which
 * the slot keeps: this bounds what it keeps. */
#define STMT_BYTES_MAX (1u << 20)

/* Array header (binary array_recv format): ndim, has-null flag, element type, then the
 * one dimension's length and lower bound. */
#define ARRAY_HEAD 20

static int kind_of(gt_sql_stmt_t stmt) {
  for (int k = 0; k < GT__PG_ARR_KINDS; k++)
    if (KINDS[k].stmt == stmt)
      return k;
  return -1;
}

/* 1 when v can be an element of an array of sig's type (a NULL always can). */
static int value_fits(const gt_val_t *v, char sig) {
  switch (v->kind) {
  case GT_VAL_NULL: return 1;
  case GT_VAL_INT: return sig == 'i';
  case GT_VAL_TEXT: return sig == 't';
  case GT_VAL_BLOB: return sig == 'b';
  }
  return 0;
}

static size_t element_size(const gt_val_t *v) {
  return 4 + (v->kind == GT_VAL_NULL ? 0 : v->kind == GT_VAL_INT ? 8 : v->len);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

/* The hash of the row op names in table t (never 0: 0 marks a free set entry). */
static uint64_t row_hash(const struct kind *k, const gt_store_op_t *op) {
  uint64_t h = fnv(14695981039346656037ull, &k->table, 1);
  for (int j = 0; j < k->nkey; j++) {
    const gt_val_t *v = &op->params[k->key[j]];
    h = fnv(h, &v->kind, sizeof(v->kind));
    if (v->kind == GT_VAL_INT)
      h = fnv(h, &v->i, sizeof(v->i));
    else if (v->kind != GT_VAL_NULL)
      h = fnv(fnv(h, &v->len, sizeof(v->len)), v->p, v->len);
  }
  return h ? h : 1;
}

/* Adds h to the open-addressing set; 0 when it was there already (two ops meet on a
 * row, or two rows share a hash: either way the group is not merged). */
static int set_add(gt__pg_arrays_t *a, uint64_t h) {
  size_t mask = a->set_cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (a->set[i] == h)
      return 0;
    if (a->set[i] == 0) {
      a->set[i] = h;
      return 1;
    }
  }
}

/* Grows *buf to at least need bytes. Returns 0 or -1. */
static int reserve(void **buf, size_t *cap, size_t need) {
  if (*cap >= need)
    return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < need)
    n *= 2;
  void *p = realloc(*buf, n);
  if (!p)
    return -1;
  *buf = p;
  *cap = n;
  return 0;
}

int gt__pg_arrays_fit(gt__store_batch_t *const *group, int n, gt__pg_arrays_t *a) {
  size_t bytes[GT__PG_ARR_KINDS] = {0}, nops = 0;
  memset(a->nops, 0, sizeof(a->nops));
  for (int i = 0; i < n; i++) {
    for (int o = 0; o < group[i]->nops; o++) {
      const gt_store_op_t *op = &group[i]->ops[o];
      int k = kind_of(op->stmt);
      if (k < 0)
        return 0;
      int expect = op->expect_rows < 0 ? EXPECT_ANY : op->expect_rows == 1 ? EXPECT_ONE : 0;
      if (!(KINDS[k].expect_ok & expect))
        return 0;
      const char *sig = gt__pg_sig((int)op->stmt);
      if (op->nparams != (int)strlen(sig))
        return 0; /* the one-statement path reports it */
      for (int j = 0; j < op->nparams; j++) {
        if (!value_fits(&op->params[j], sig[j]))
          return 0;
        bytes[k] += element_size(&op->params[j]);
      }
      a->nops[k]++;
      nops++;
    }
  }
  if (nops == 0)
    return 0; /* nothing to merge */
  /* the rows of the tables two kinds write must be distinct */
  size_t set_need = 16;
  while (set_need < 2 * nops)
    set_need *= 2;
  if (reserve((void **)&a->set, &a->set_bytes, set_need * sizeof(uint64_t)) != 0)
    return 0;
  a->set_cap = set_need;
  memset(a->set, 0, set_need * sizeof(uint64_t));
  for (int i = 0; i < n; i++) {
    for (int o = 0; o < group[i]->nops; o++) {
      const gt_store_op_t *op = &group[i]->ops[o];
      const struct kind *k = &KINDS[kind_of(op->stmt)];
      if (k->table && !set_add(a, row_hash(k, op)))
        return 0;
    }
  }
  /* one statement's arrays at a time in buf: room for the largest */
  size_t most = 0;
  for (int k = 0; k < GT__PG_ARR_KINDS; k++) {
    if (!a->nops[k] || KINDS[k].arr_id < 0)
      continue;
    size_t need = bytes[k] + (size_t)ARRAY_HEAD * strlen(gt__pg_sig(KINDS[k].arr_id));
    most = need > most ? need : most;
  }
  return most <= STMT_BYTES_MAX && reserve((void **)&a->buf, &a->cap, most) == 0;
}

static unsigned char *put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
  return p + 4;
}

/* Writes the array of parameter j over the group's ops of kind k at p. Returns its end. */
static unsigned char *put_array(unsigned char *p, gt__store_batch_t *const *group, int n,
                                const struct kind *k, int count, int j, char elem) {
  unsigned char *nulls = p + 4;
  p = put32(p, 1);
  p = put32(p, 0); /* has nulls: set below */
  p = put32(p, gt__pg_type_oid(elem));
  p = put32(p, (uint32_t)count);
  p = put32(p, 1);
  for (int i = 0; i < n; i++) {
    for (int o = 0; o < group[i]->nops; o++) {
      const gt_store_op_t *op = &group[i]->ops[o];
      if (op->stmt != k->stmt)
        continue;
      const gt_val_t *v = &op->params[j];
      if (v->kind == GT_VAL_NULL) {
        put32(nulls, 1);
        p = put32(p, 0xffffffffu); /* -1: NULL */
      } else if (v->kind == GT_VAL_INT) {
        p = put32(p, 8);
        p = put32(p, (uint32_t)((uint64_t)v->i >> 32));
        p = put32(p, (uint32_t)(uint64_t)v->i);
      } else {
        p = put32(p, (uint32_t)v->len);
        if (v->len)
          memcpy(p, v->p, v->len);
        p += v->len;
      }
    }
  }
  return p;
}

void gt__pg_arrays_add(gt__pg_conn_t *c, gt__store_batch_t *const *group, int n,
                       gt__pg_arrays_t *a) {
  atomic_fetch_add_explicit(&gt__pg_arrays_groups, 1, memory_order_relaxed);
  for (int kx = 0; kx < GT__PG_ARR_KINDS; kx++) {
    const struct kind *k = &KINDS[kx];
    if (!a->nops[kx])
      continue;
    if (k->arr_id < 0) {
      for (int i = 0; i < n; i++)
        for (int o = 0; o < group[i]->nops; o++)
          if (group[i]->ops[o].stmt == k->stmt)
            gt__pg_round_add(c, (int)k->stmt, &group[i]->ops[o], 0);
      continue;
    }
    const char *sig = gt__pg_sig((int)k->stmt);
    int np = (int)strlen(sig);
    gt_store_op_t op = {.stmt = GT_SQL__COUNT, .nparams = np, .expect_rows = -1};
    unsigned char *p = a->buf;
    for (int j = 0; j < np; j++) {
      unsigned char *start = p;
      p = put_array(p, group, n, k, a->nops[kx], j, sig[j]);
      op.params[j] = gt_val_blob(start, (size_t)(p - start));
    }
    gt__pg_round_add(c, k->arr_id, &op, 0);
  }
}

/* 1 when result r is a write that changed `expect` rows (-1: any). */
static int result_ok(const gt__pg_conn_t *c, int r, int expect) {
  return gt__pg_res_is(c, r, PGRES_COMMAND_OK) &&
         (expect < 0 || atoi(PQcmdTuples(c->res[r])) == expect);
}

int gt__pg_arrays_ok(const gt__pg_conn_t *c, int first, const gt__pg_arrays_t *a) {
  /* the statements gt__pg_arrays_add sent, in its order: a multi-row one per kind (its op
   * count for an insert, any for an upsert), or one per op, each expecting one row (the
   * only expect_rows gt__pg_arrays_fit lets such a kind carry) */
  int r = first;
  for (int k = 0; k < GT__PG_ARR_KINDS; k++) {
    int ok = 1;
    if (a->nops[k] && KINDS[k].arr_id < 0) {
      for (int i = 0; i < a->nops[k] && ok; i++)
        ok = result_ok(c, r++, 1);
    } else if (a->nops[k]) {
      ok = result_ok(c, r++, KINDS[k].exact ? a->nops[k] : -1);
    }
    if (!ok) {
      atomic_fetch_add_explicit(&gt__pg_arrays_misses, 1, memory_order_relaxed);
      return 0;
    }
  }
  return 1;
}

void gt__pg_arrays_fini(gt__pg_arrays_t *a) {
  free(a->buf);
  free(a->set);
  memset(a, 0, sizeof(*a));
}
