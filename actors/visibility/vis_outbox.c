/*
 * vis_outbox.c: the visibility outbox (see vis_outbox.h): task rows, their direct apply
 * after the run's commit, and the "vis-outbox" actor that deletes applied rows and sweeps
 * what is left.
 *
 * DESIGN
 *   A task row's data is the visibility store op, packed: "GV", format 1, the statement
 *   (1: apply, 2: delete), the parameter count, then each parameter as a kind byte and
 *   an 8-byte little-endian integer or a 4-byte length and the bytes. Decoding checks every
 *   length against the row, so a torn or foreign row is refused (logged and dropped by
 *   the sweep), never read past.
 *   Direct path: gt_vis_task_apply queues the op on the visibility store; its completion
 *   posts the task, as an APPLIED message, to the actor, which deletes the row from the
 *   default store (the rows applied within DELETE_WAIT_MS in one batch). Sweep: on its timer, when srv->vis_backlog is set, the actor reads each
 *   shard's oldest rows (SWEEP_PAGE), and the read's completion queues all their ops as
 *   one visibility store batch, whose completion posts SWEPT with the task ids; the actor
 *   then deletes those rows. A full page leaves the backlog set and sweeps again at once.
 *
 * INVARIANTS
 *   - srv->vis_backlog is set whenever a row may be left that no direct apply will take:
 *     at start, after a failed apply or delete, after a commit with no task to follow it.
 *   - At most one sweep is in flight (sweeping counts its shards' reads).
 *
 * THREADS
 *   gt_vis_task_*: any thread. Store callbacks: store threads (they post or queue, never
 *   wait). The actor: its home thread.
 */
#include "actors/visibility/vis_outbox.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/store_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define SWEEP_MS 1000  /* how often the actor looks for a backlog */
#define SWEEP_PAGE 256 /* rows per shard per sweep */
#define DELETE_BATCH 128 /* applied rows deleted in one batch at most */
#define DELETE_WAIT_MS 2 /* how long an applied row's delete waits for others */
enum { TIMER_SWEEP = 0, TIMER_FLUSH = 1 };
#define FORMAT 1
enum { KIND_APPLY = 1, KIND_DELETE = 2 };
enum { MSG_APPLIED = 100, MSG_SWEPT };

struct gt_vis_task {
  gt_msg_t hdr; /* MSG_APPLIED, once the visibility store answered */
  gt_server_t *srv;
  int shard;
  int rc;
  int64_t task_id;
  uint8_t *data; /* the packed op (freed once queued on the visibility store) */
  size_t len;
};

typedef struct swept_msg {
  gt_msg_t hdr;
  gt_server_t *srv;
  int shard;
  int rc;
  int full; /* the page was full: more rows may wait */
  int n;
  int64_t task_ids[];
} swept_msg_t;

typedef struct outbox {
  gt_actor_t base;
  gt_server_t *srv;
  int sweeping;   /* shards whose sweep has not come back */
  int failing;    /* the last apply failed: logged once until one succeeds */
  uint64_t swept;
  gt_store_op_t *del; /* deletes of applied rows not yet sent (DELETE_BATCH of room) */
  int ndel;
  int flush_armed;    /* the TIMER_FLUSH timer runs */
} outbox_t;

static const gt_actor_type_t outbox_type;

/* ------------------------------------------------------------------ packing --- */

static size_t packed_size(const gt_store_op_t *op) {
  size_t n = 4;
  for (int i = 0; i < op->nparams; i++) {
    const gt_val_t *v = &op->params[i];
    n += 1 + (v->kind == GT_VAL_INT ? 8 : v->kind == GT_VAL_NULL ? 0 : 4 + v->len);
  }
  return n;
}

static void put_le(uint8_t *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Packs op (kind: KIND_*) into a new task of shard. Returns NULL out of memory. */
static gt_vis_task_t *task_new(gt_server_t *srv, int shard, int kind,
                               const gt_store_op_t *op) {
  gt_vis_task_t *t = calloc(1, sizeof(*t));
  size_t len = packed_size(op);
  uint8_t *p = t ? malloc(len) : NULL;
  if (!p) {
    free(t);
    return NULL;
  }
  t->srv = srv;
  t->shard = shard;
  t->data = p;
  t->len = len;
  t->task_id = gt_server_next_task_id(srv, shard);
  *p++ = 'G';
  *p++ = 'V';
  *p++ = FORMAT;
  *p++ = (uint8_t)((kind << 4) | op->nparams); /* nparams <= 13 */
  for (int i = 0; i < op->nparams; i++) {
    const gt_val_t *v = &op->params[i];
    *p++ = (uint8_t)v->kind;
    if (v->kind == GT_VAL_INT) {
      put_le(p, (uint64_t)v->i, 8);
      p += 8;
    } else if (v->kind != GT_VAL_NULL) {
      put_le(p, v->len, 4);
      if (v->len)
        memcpy(p + 4, v->p, v->len);
      p += 4 + v->len;
    }
  }
  return t;
}

int gt__vis_task_decode(const uint8_t *data, size_t len, gt_store_op_t *op) {
  if (!data || len < 4 || data[0] != 'G' || data[1] != 'V' || data[2] != FORMAT)
    return GT_ECORRUPT;
  int kind = data[3] >> 4, n = data[3] & 15;
  gt_sql_stmt_t stmt = kind == KIND_APPLY ? GT_SQL_VISIBILITY_APPLY : GT_SQL_VISIBILITY_DELETE;
  if ((kind != KIND_APPLY && kind != KIND_DELETE) ||
      n != gt__store_stmt_info[stmt].nparams)
    return GT_ECORRUPT;
  memset(op, 0, sizeof(*op));
  op->stmt = stmt;
  op->nparams = n;
  op->expect_rows = -1;
  size_t off = 4;
  for (int i = 0; i < n; i++) {
    gt_val_t *v = &op->params[i];
    if (off >= len)
      return GT_ECORRUPT;
    v->kind = (gt_val_kind_t)data[off++];
    if (v->kind == GT_VAL_INT) {
      if (len - off < 8)
        return GT_ECORRUPT;
      v->i = (int64_t)get_le(data + off, 8);
      off += 8;
    } else if (v->kind == GT_VAL_TEXT || v->kind == GT_VAL_BLOB) {
      if (len - off < 4)
        return GT_ECORRUPT;
      uint64_t l = get_le(data + off, 4);
      off += 4;
      if (l > len - off)
        return GT_ECORRUPT;
      v->p = data + off;
      v->len = (size_t)l;
      off += (size_t)l;
    } else if (v->kind != GT_VAL_NULL) {
      return GT_ECORRUPT;
    }
  }
  return off == len ? 0 : GT_ECORRUPT;
}

/* *op: the task row's insert; it points into t. */
static void task_row_op(const gt_vis_task_t *t, gt_store_op_t *op) {
  op->stmt = GT_SQL_VISIBILITY_TASK_INSERT;
  op->expect_rows = 1;
  op->nparams = 3;
  op->params[0] = gt_val_int(t->shard);
  op->params[1] = gt_val_int(t->task_id);
  op->params[2] = gt_val_blob(t->data, t->len);
}

int gt_vis_task_upsert(gt_server_t *srv, int shard, const gt_vis_record_t *rec,
                       gt_store_op_t *op, gt_vis_task_t **task) {
  gt_store_op_t apply;
  gt_vis_scratch_t scratch;
  int rc = gt_visibility_upsert_op(&apply, rec, &scratch);
  if (rc != 0)
    return rc;
  apply.stmt = GT_SQL_VISIBILITY_APPLY;
  *task = task_new(srv, shard, KIND_APPLY, &apply);
  gt_visibility_scratch_fini(&scratch);
  if (!*task)
    return GT_ENOMEM;
  task_row_op(*task, op);
  return 0;
}

int gt_vis_task_delete(gt_server_t *srv, int shard, const char *ns_id, const char *run_id,
                       gt_store_op_t *op, gt_vis_task_t **task) {
  gt_store_op_t del = {.stmt = GT_SQL_VISIBILITY_DELETE, .nparams = 2, .expect_rows = -1};
  del.params[0] = gt_val_text(ns_id);
  del.params[1] = gt_val_text(run_id);
  *task = task_new(srv, shard, KIND_DELETE, &del);
  if (!*task)
    return GT_ENOMEM;
  task_row_op(*task, op);
  return 0;
}

void gt_vis_task_free(gt_vis_task_t *task) {
  if (!task)
    return;
  free(task->data);
  free(task);
}

static void task_dtor(gt_msg_t *m) {
  gt_vis_task_free((gt_vis_task_t *)m);
}

/* ------------------------------------------------------------- direct path --- */

void gt_vis_outbox_sweep_soon(gt_server_t *srv) {
  atomic_store_explicit(&srv->vis_backlog, 1, memory_order_relaxed);
}

static int post(gt_server_t *srv, gt_msg_t *m) {
  return gt_actor_send_key(srv->rt, &outbox_type, "vis-outbox", 10, srv, m);
}

/* The visibility store's answer (a store thread): to the actor. */
static void applied_cb(void *ctx, int rc, int failed_op) {
  (void)failed_op;
  gt_vis_task_t *t = ctx;
  t->rc = rc;
  t->hdr.type = MSG_APPLIED;
  t->hdr.dtor = task_dtor;
  if (post(t->srv, &t->hdr) != 0) { /* stopping: the row stays for the next start */
    gt_vis_outbox_sweep_soon(t->srv);
    gt_vis_task_free(t);
  }
}

void gt_vis_task_apply(gt_vis_task_t *t) {
  gt_server_t *srv = t->srv;
  gt_store_op_t op;
  /* A sweep is due or running: it (or the next) applies this row too, in order with the
   * older ones. Applied now, a deletion could overtake an older change of its run that
   * the sweep is about to apply, and that change would bring the record back. */
  int rc = atomic_load_explicit(&srv->vis_backlog, memory_order_relaxed) ||
                   atomic_load_explicit(&srv->vis_sweeping, memory_order_acquire)
               ? GT_EBUSY
               : 0;
  if (rc == 0)
    rc = gt__vis_task_decode(t->data, t->len, &op);
  if (rc != 0) {
    gt_vis_outbox_sweep_soon(srv);
    gt_vis_task_free(t);
    return;
  }
  /* The op points into the packed bytes, which only the task's ids outlive: the
   * completion may run (and free the task) before gt_store_write returns. */
  uint8_t *data = t->data;
  t->data = NULL;
  t->len = 0;
  rc = gt_store_write(srv->vis_store, -1, 0, &op, 1, applied_cb, t);
  free(data);
  if (rc != 0) {
    gt_vis_outbox_sweep_soon(srv);
    gt_vis_task_free(t);
  }
}

/* --------------------------------------------------------------- the actor --- */

/* A failed row delete leaves an applied row: the sweep applies it again (harmless) and
 * deletes it. A store thread. */
static void deleted_cb(void *ctx, int rc, int failed_op) {
  (void)failed_op;
  if (rc != 0)
    gt_vis_outbox_sweep_soon(ctx);
}

/* Sends the deletes of the applied rows collected so far as one batch. */
static void flush_deletes(outbox_t *o) {
  o->flush_armed = 0;
  if (!o->ndel)
    return;
  if (gt_store_write(o->srv->store, -1, 0, o->del, o->ndel, deleted_cb, o->srv) != 0)
    gt_vis_outbox_sweep_soon(o->srv);
  o->ndel = 0;
}

/* Queues the delete of an applied row: the rows applied within DELETE_WAIT_MS (or
 * DELETE_BATCH of them) go in one batch, not one batch each. */
static void delete_row(outbox_t *o, int shard, int64_t task_id) {
  if (!o->del && !(o->del = calloc(DELETE_BATCH, sizeof(*o->del)))) {
    gt_vis_outbox_sweep_soon(o->srv); /* the row stays: the sweep deletes it */
    return;
  }
  gt_store_op_t *op = &o->del[o->ndel++];
  op->stmt = GT_SQL_VISIBILITY_TASK_DELETE;
  op->nparams = 2;
  op->expect_rows = -1;
  op->params[0] = gt_val_int(shard);
  op->params[1] = gt_val_int(task_id);
  if (o->ndel == DELETE_BATCH) {
    flush_deletes(o);
  } else if (!o->flush_armed) {
    gt_actor_timer_start(&o->base, DELETE_WAIT_MS, TIMER_FLUSH);
    o->flush_armed = 1;
  }
}

static void note_outcome(outbox_t *o, int rc, const char *how) {
  if (rc == 0) {
    if (o->failing)
      gt_log_info("VIS-STORE-BACK", "the visibility store takes records again");
    o->failing = 0;
    return;
  }
  atomic_fetch_add_explicit(&o->srv->vis_failed, 1, memory_order_relaxed);
  gt_vis_outbox_sweep_soon(o->srv);
  if (!o->failing)
    gt_log_warn("VIS-STORE-FAILED", "%s a visibility record failed: %s; it stays in "
                "visibility_tasks and is applied again within %d ms", how, gt_strerror(rc),
                SWEEP_MS);
  o->failing = 1;
}

/* ---- the sweep ---- */

/* The visibility store's answer to a sweep batch (a store thread): to the actor. */
static void swept_cb(void *ctx, int rc, int failed_op) {
  (void)failed_op;
  swept_msg_t *m = ctx;
  m->rc = rc;
  gt_server_t *srv = m->srv;
  if (post(srv, &m->hdr) != 0) {
    gt_vis_outbox_sweep_soon(srv);
    free(m);
  }
}

/* One shard's oldest rows (a store thread of the default store): all their ops go to the
 * visibility store as one batch. m, allocated by the sweep, always goes back to the
 * actor: it counts the shards not yet swept. */
static void scanned_cb(void *ctx, int rc, const gt_rows_t *rows) {
  swept_msg_t *m = ctx;
  int n = rc == 0 && rows ? rows->nrows : 0;
  gt_store_op_t *ops = n ? calloc((size_t)n, sizeof(*ops)) : NULL;
  if (n && !ops) {
    swept_cb(m, GT_ENOMEM, -1);
    return;
  }
  m->full = n >= SWEEP_PAGE;
  int nops = 0;
  for (int r = 0; r < n && r < SWEEP_PAGE; r++) {
    const gt_val_t *id = gt_rows_at(rows, r, 0), *data = gt_rows_at(rows, r, 1);
    m->task_ids[m->n++] = id->i;
    if (gt__vis_task_decode(data->p, data->len, &ops[nops]) == 0)
      nops++;
    else /* deleted with the others: it could never be applied */
      gt_log_error("VIS-TASK-CORRUPT", "shard %d: visibility task %lld is unreadable; "
                   "dropped", m->shard, (long long)id->i);
  }
  if (rc != 0 || nops == 0) /* a failed read; or nothing to apply: just delete */
    swept_cb(m, rc, -1);
  else if (gt_store_write(m->srv->vis_store, -1, 0, ops, nops, swept_cb, m) != 0)
    swept_cb(m, GT_EUNAVAIL, -1);
  free(ops);
}

static void sweep(outbox_t *o) {
  gt_server_t *srv = o->srv;
  if (o->sweeping || !atomic_exchange_explicit(&srv->vis_backlog, 0, memory_order_relaxed))
    return;
  o->swept++;
  atomic_store_explicit(&srv->vis_sweeping, 1, memory_order_release);
  for (int shard = 0; shard < srv->num_shards; shard++) {
    swept_msg_t *m = calloc(1, sizeof(*m) + SWEEP_PAGE * sizeof(int64_t));
    gt_store_op_t op = {.stmt = GT_SQL_VISIBILITY_TASK_SCAN, .nparams = 2, .expect_rows = -1};
    op.params[0] = gt_val_int(shard);
    op.params[1] = gt_val_int(SWEEP_PAGE);
    if (m) {
      m->hdr.type = MSG_SWEPT;
      m->srv = srv;
      m->shard = shard;
      if (gt_store_read(srv->store, &op, scanned_cb, m) == 0) {
        o->sweeping++;
        continue;
      }
      free(m);
    }
    gt_vis_outbox_sweep_soon(srv);
  }
  if (!o->sweeping)
    atomic_store_explicit(&srv->vis_sweeping, 0, memory_order_release);
}

static void on_swept(outbox_t *o, swept_msg_t *m) {
  o->sweeping--;
  note_outcome(o, m->rc, "sweeping");
  if (m->rc == 0) {
    atomic_fetch_add_explicit(&o->srv->vis_applied, (uint64_t)m->n, memory_order_relaxed);
    for (int i = 0; i < m->n; i++)
      delete_row(o, m->shard, m->task_ids[i]);
    flush_deletes(o);
    if (m->full)
      gt_vis_outbox_sweep_soon(o->srv);
  }
  if (o->sweeping)
    return;
  /* More rows (a full page, or rows skipped while this sweep ran): at once; after a
   * failure, at the next tick. Direct applies resume only once a sweep found nothing
   * more to do. */
  if (atomic_load_explicit(&o->srv->vis_backlog, memory_order_relaxed) && m->rc == 0)
    sweep(o);
  else
    atomic_store_explicit(&o->srv->vis_sweeping, 0, memory_order_release);
}

/* ---- lifecycle ---- */

static int ob_start(gt_actor_t *self, void *arg) {
  outbox_t *o = (outbox_t *)self;
  o->srv = arg;
  gt_vis_outbox_sweep_soon(o->srv); /* what a previous process left */
  gt_actor_timer_start(self, 1, TIMER_SWEEP);
  return 0;
}

/* The deletes not sent yet go now: the stores close after the runtime, so the default
 * store still takes them (a row whose delete is lost anyway is applied again by the next
 * start's sweep: the same change, harmless). */
static void ob_stop(gt_actor_t *self) {
  outbox_t *o = (outbox_t *)self;
  flush_deletes(o);
  free(o->del);
  o->del = NULL;
}

static void ob_receive(gt_actor_t *self, gt_msg_t *m) {
  outbox_t *o = (outbox_t *)self;
  if (m->type == GT_MSG_TIMER && ((gt_timer_msg_t *)m)->token == TIMER_FLUSH) {
    flush_deletes(o);
  } else if (m->type == GT_MSG_TIMER) {
    sweep(o);
    gt_actor_timer_start(self, SWEEP_MS, TIMER_SWEEP);
  } else if (m->type == MSG_APPLIED) {
    gt_vis_task_t *t = (gt_vis_task_t *)m;
    note_outcome(o, t->rc, "applying");
    if (t->rc == 0) {
      atomic_fetch_add_explicit(&o->srv->vis_applied, 1, memory_order_relaxed);
      delete_row(o, t->shard, t->task_id);
    }
  } else if (m->type == MSG_SWEPT) {
    on_swept(o, (swept_msg_t *)m);
  }
  gt_msg_free(m);
}

static int ob_describe(gt_actor_t *self, char *buf, size_t len) {
  outbox_t *o = (outbox_t *)self;
  return snprintf(buf, len, "applied=%llu failed=%llu sweeps=%llu backlog=%d",
                  (unsigned long long)atomic_load(&o->srv->vis_applied),
                  (unsigned long long)atomic_load(&o->srv->vis_failed),
                  (unsigned long long)o->swept,
                  atomic_load_explicit(&o->srv->vis_backlog, memory_order_relaxed));
}

static const gt_actor_type_t outbox_type = {
    .name = "vis-outbox",
    .size = sizeof(outbox_t),
    .start = ob_start,
    .receive = ob_receive,
    .stop = ob_stop,
    .describe = ob_describe,
};

int gt_vis_outbox_start(gt_server_t *srv) {
  gt_actor_t *a = NULL;
  int rc = gt_actor_get(srv->rt, &outbox_type, "vis-outbox", 10, srv, &a);
  if (rc == 0)
    gt_actor_release(a);
  return rc;
}
