/*
 * pg_store.c: the PostgreSQL backend's threads: a writer doing group commit over a few
 * pipelined connections, readers over a few more, and the gt_store_ops_t vtable.
 *
 * DESIGN
 *   Two WORKERS, each a thread running its own uv loop (never a scheduler thread): the
 *   writer (W connections, W = GT_PG_WRITER_CONNS, fewer if maxConns says so) and the
 *   readers (reader_threads connections). Submitters push onto a worker's FIFO under a
 *   short lock and gt_wake_send; the loop drains the FIFO into its local queues and
 *   hands work to idle connections (pg_conn.c rounds).
 *   Writer connections (SLOTS) and routing: each slot has its own queue. A batch or an
 *   acquire of shard s >= 0 goes to slot s % W; an unfenced batch (shard_id < 0:
 *   namespaces, search attribute definitions) to slot 0. Each slot then works exactly as
 *   the one writer connection did, FIFO: a group is the consecutive batches at the head
 *   of its queue, an acquire runs alone between two groups. The slots' groups are in
 *   flight at once, so their COMMITs reach the server together and PostgreSQL's own group
 *   commit flushes them with one WAL write, instead of each group waiting for the whole
 *   previous one, flush included. The loop thread only sends and reads: more slots cost
 *   connections, not threads. The price: each slot's groups are smaller, so every batch
 *   carries more of the per-group round trips and statements (see GT_PG_WRITER_CONNS).
 *   Why per-shard order is enough: a workflow actor's batches all carry its shard
 *   (wf_state.c, retention.c; visibility rows go in the run's own batches), so they stay
 *   in submission order on one slot; a shard's range_id is written only by its acquires,
 *   in FIFO order with its batches on the same slot, as before. Batches of different
 *   shards were never ordered beyond their completions: a caller that needs B after A
 *   waits for A's completion (A may fail), so they may commit in either order.
 *   Fences and acquires across connections: the fence reads shards.range_id FOR SHARE
 *   (pg_sql.c) inside the group's transaction, so the row stays share-locked until that
 *   group commits or rolls back. An acquire (INSERT .. ON CONFLICT DO UPDATE: it locks
 *   the row FOR NO KEY UPDATE, which conflicts with FOR SHARE) on any other connection,
 *   another node's included, waits for it; a fence read after the acquire committed
 *   waits for the acquire if need be and sees the new range_id (READ COMMITTED: a row
 *   locked FOR SHARE is the latest committed version). So no batch commits under a range_id an acquire has replaced, whatever the
 *   slot; routing acquires to their shard's slot additionally keeps the old FIFO outcome
 *   (a batch queued before the acquire commits before it). The slots' groups share no
 *   fence rows (a shard belongs to one slot) and write disjoint rows (keyed by shard, or
 *   by a run that one shard owns); a lock wait between slots would only delay, and a
 *   deadlock (40P01) fails a fast round, whose replay settles each batch (one caught in
 *   a deadlock again fails alone, GT_EIO).
 *   Group commit, on each slot: take the consecutive batches (at most GROUP_CAP) and
 *   first run them optimistically, in two round trips whatever the group's size:
 *     fast:      BEGIN; one fence (SELECT range_id .. FOR SHARE) per distinct shard;
 *                every batch's ops, no savepoints: when the group holds only a
 *                workflow's writes, one multi-row statement per table over
 *                unnest()ed arrays (pg_arrays.c says when that is the same),
 *                else one statement per op                                     | sync
 *     commit:    COMMIT                                                         | sync
 *   The COMMIT is sent only when every result of the fast round is as expected (each
 *   batch's fence matches, every op succeeded with its expect_rows). Otherwise, the
 *   group is replayed the careful way, one round trip per batch:
 *     round 0:   ROLLBACK (the fast transaction); BEGIN; SAVEPOINT b; [fence]; ops | sync
 *     round k:   RELEASE b  or  ROLLBACK TO b; RELEASE b  (batch k-1's outcome);
 *                SAVEPOINT b; [fence]; ops                                      | sync
 *     last:      RELEASE/ROLLBACK TO for the last batch; COMMIT                  | sync
 *   There the writer waits for each batch's results because only their row counts decide
 *   whether the batch stays, and a later batch's savepoint must not be nested under a
 *   failed one. Both paths give every batch the same outcome; the fast one saves a round
 *   trip and 2-3 statements per batch. One fence per shard per group is enough: the row
 *   lock above holds until COMMIT. The completions then run on the writer thread, in
 *   submission order within the slot (so per shard).
 *   Acquire: one upsert ... RETURNING range_id, its own implicit transaction, in its
 *   slot's FIFO order. Reads: up to READ_PIPE per round on a reader connection, each
 *   followed by its own sync so one failed read does not abort its neighbours.
 *   Connection loss: the round in flight on that connection ends with GT_EIO (a group
 *   that had sent COMMIT may or may not have committed: GT_EIO means "unknown", as with
 *   any lost commit); the other connections' groups are not affected. The connection
 *   reconnects at once. An item waits only for a connection that can serve it: a writer
 *   item for its slot's, a read for any reader's. When an attempt fails and no such
 *   connection is up or connecting, those queued items fail with GT_EUNAVAIL; attempts go
 *   on with backoff (BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS), and an item queued while
 *   no attempt runs starts one at once and waits for its outcome (no item waits longer
 *   than one connect attempt, bounded by connect_timeout).
 *
 * INVARIANTS
 *   - Batches of one shard commit, and complete, in submission order: they share a slot,
 *     whose queue is FIFO and which runs one group (or acquire) at a time.
 *   - A batch whose chain failed (gt_store_write_chained) is not applied: the fast round
 *     is replayed, where its outcome is GT_EUNAVAIL and its savepoint rolled back. A
 *     failure marks the chain at once in the replay, else at the completion, which runs
 *     before the slot (the chain's: one shard) starts its next group.
 *   - A batch is all-or-nothing: a failure in the fast round rolls the whole transaction
 *     back before the replay, where each batch runs inside its savepoint; a lost
 *     connection aborts the transaction server-side (every batch of the group: GT_EIO).
 *   - Every accepted item completes exactly once; close drains the FIFO and every queue
 *     first (items fail with GT_EUNAVAIL only if the database is unreachable).
 *   - Completions run on the worker thread after COMMIT's result arrived.
 *
 * THREADS
 *   submit_*: any thread (FIFO lock + gt_wake_send). Everything else in a worker: its
 *   loop thread. open/close/acquire_shard: the owning thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/postgres/pg_int.h"
#include "persistence/store_int.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/wake.h"

#define GROUP_CAP 512
#define READ_PIPE 32
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

enum { ITEM_ACQUIRE = GT__ITEM_BACKEND };

typedef struct pg_store pg_store_t;
typedef struct worker worker_t;

/* A FIFO of items, linked through item->next (loop thread). */
typedef struct queue {
  gt__store_item_t *head, *tail;
} queue_t;

/* gt_store_acquire_shard_sync's job: on the caller's stack while it waits. */
typedef struct job {
  gt__store_item_t link;
  int shard_id;
  const char *owner;
  int64_t range_id; /* OUT */
  int rc;           /* OUT */
  int done;         /* under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
} job_t;

/* One connection of a worker and the work in flight on it (loop thread). */
typedef struct slot {
  gt__pg_conn_t conn;
  worker_t *w;
  queue_t q; /* writer: the items routed to this connection, not started */
  /* writer: the group */
  int n, idx;   /* batches in the group; the batch whose round is in flight (n: COMMIT) */
  int prefix;   /* control queries before the batch's own in the current round */
  int aborting; /* the transaction is lost: the ROLLBACK round is in flight */
  int replay;   /* the fast round failed: round 0 of the replay first rolls it back */
  int nfence;   /* the fast round's fences: distinct shards, in query order */
  int fence_shard[GROUP_CAP];
  int merged;             /* the fast round sent the multi-row statements (pg_arrays.c) */
  gt__pg_arrays_t arrays; /* their plan and buffers */
  gt__store_batch_t *group[GROUP_CAP];
  int rc[GROUP_CAP];
  int failed[GROUP_CAP];
  job_t *job; /* an acquire in flight */
  int was_up; /* the connection had come up: a loss reconnects at once */
  /* readers */
  int nreads;
  gt__store_read_t *reads[READ_PIPE];
} slot_t;

struct worker {
  pg_store_t *s;
  const char *name;
  int is_writer;
  pthread_t th;
  int started;
  uv_loop_t loop;
  gt_wake_t wake;
  uv_timer_t retry;
  /* the FIFO: any thread, under mu */
  pthread_mutex_t mu;
  gt__store_item_t *head, *tail;
  int stopping;
  /* loop thread */
  queue_t local; /* readers: taken from the FIFO, not started (the writer's: per slot) */
  int nslots;
  slot_t *slots;
  int backoff_ms;
  int retry_armed;
  int exiting;
};

struct pg_store {
  gt_store_t *st;
  gt__pg_params_t params; /* points at conninfo */
  char *conninfo;
  uint64_t lifetime_ms; /* maxConnLifetime; 0 = none */
  worker_t writer, readers;
};

static void pump(worker_t *w);

/* ------------------------------------------------------------------ FIFO --- */

static int fifo_push(worker_t *w, gt__store_item_t *it) {
  it->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->stopping) {
    pthread_mutex_unlock(&w->mu);
    return GT_ECLOSED;
  }
  if (w->tail)
    w->tail->next = it;
  else
    w->head = it;
  w->tail = it;
  pthread_mutex_unlock(&w->mu);
  gt_wake_send(&w->wake);
  return 0;
}

static void q_push(queue_t *q, gt__store_item_t *it) {
  it->next = NULL;
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
}

static gt__store_item_t *q_pop(queue_t *q) {
  gt__store_item_t *it = q->head;
  if (it) {
    q->head = it->next;
    if (!q->head)
      q->tail = NULL;
    it->next = NULL;
  }
  return it;
}

/* The writer slot of an item: its shard's (shard % W), slot 0 for an unfenced batch.
 * Batches of one shard, and its acquires, thus share one FIFO. */
static slot_t *writer_slot(worker_t *w, const gt__store_item_t *it) {
  int shard = it->kind == GT__ITEM_WRITE ? ((const gt__store_batch_t *)it)->shard_id
                                         : ((const job_t *)it)->shard_id;
  return &w->slots[shard < 0 ? 0 : shard % w->nslots];
}

/* Moves the FIFO to the local queue(s), keeping its order in each. OUT: *stopping. */
static void fifo_take(worker_t *w, int *stopping) {
  pthread_mutex_lock(&w->mu);
  gt__store_item_t *h = w->head, *t = w->tail;
  w->head = w->tail = NULL;
  *stopping = w->stopping;
  pthread_mutex_unlock(&w->mu);
  if (!h)
    return;
  if (!w->is_writer) {
    if (w->local.tail)
      w->local.tail->next = h;
    else
      w->local.head = h;
    w->local.tail = t;
    return;
  }
  while (h) {
    gt__store_item_t *next = h->next;
    q_push(&writer_slot(w, h)->q, h);
    h = next;
  }
}

/* 1 when no item waits in a local queue. */
static int queues_empty(const worker_t *w) {
  if (w->local.head)
    return 0;
  for (int i = 0; i < w->nslots; i++)
    if (w->slots[i].q.head)
      return 0;
  return 1;
}

/* ------------------------------------------------------------------ completions --- */

static void job_done(job_t *j, int rc) {
  pthread_mutex_lock(&j->mu);
  j->rc = rc;
  j->done = 1;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

/* Completes an item that never ran. */
static void fail_item(pg_store_t *s, gt__store_item_t *it, int rc) {
  if (it->kind == GT__ITEM_WRITE)
    gt__store_write_done(s->st, (gt__store_batch_t *)it, rc, -1);
  else if (it->kind == GT__ITEM_READ)
    gt__store_read_done(s->st, (gt__store_read_t *)it, rc, NULL);
  else
    job_done((job_t *)it, rc);
}

/* Fails every item of q (a queue of w). */
static void fail_queued(worker_t *w, queue_t *q, int rc) {
  int n = 0;
  gt__store_item_t *it;
  while ((it = q_pop(q)) != NULL) {
    fail_item(w->s, it, rc);
    n++;
  }
  if (n)
    gt_log_warn("STORE-PG-UNAVAILABLE", "%s: PostgreSQL unreachable, %d queued "
                "item(s) failed", w->name, n);
}

/* ------------------------------------------------------------------ writer --- */

static void group_round_cb(gt__pg_conn_t *c, int rc);

/* Runs the group's completions in order and empties it. lost: every batch GT_EIO. */
static void group_finish(slot_t *sl, int lost) {
  int n = sl->n;
  sl->n = 0;
  sl->aborting = 0;
  if (lost)
    gt_log_error("STORE-PG-TXN-LOST", "a group of %d batches was not committed (or its "
                 "COMMIT's outcome is unknown)", n);
  for (int i = 0; i < n; i++)
    gt__store_write_done(sl->w->s->st, sl->group[i], lost ? GT_EIO : sl->rc[i],
                         lost ? -1 : sl->failed[i]);
}

/* Sends the round of batch sl->idx (or the COMMIT when idx == n), after the control
 * statements settling batch idx - 1. */
static void group_send(slot_t *sl) {
  gt__pg_conn_t *c = &sl->conn;
  gt__pg_round_begin(c);
  if (sl->idx == 0) {
    if (sl->replay)
      gt__pg_round_add_sql(c, "ROLLBACK", 0);
    sl->replay = 0;
    gt__pg_round_add_sql(c, "BEGIN", 0);
  } else {
    if (sl->rc[sl->idx - 1])
      gt__pg_round_add_sql(c, "ROLLBACK TO SAVEPOINT b", 0);
    gt__pg_round_add_sql(c, "RELEASE SAVEPOINT b", 0);
  }
  sl->prefix = c->nq;
  if (sl->idx == sl->n) {
    gt__pg_round_add_sql(c, "COMMIT", 0);
  } else {
    gt__store_batch_t *b = sl->group[sl->idx];
    gt__pg_round_add_sql(c, "SAVEPOINT b", 0);
    if (b->shard_id >= 0) {
      gt_store_op_t f = {.stmt = GT_SQL__COUNT, .nparams = 1,
                         .params = {gt_val_int(b->shard_id)}, .expect_rows = -1};
      gt__pg_round_add(c, GT__PG_SHARD_RANGE, &f, 0);
    }
    for (int i = 0; i < b->nops; i++)
      gt__pg_round_add(c, (int)b->ops[i].stmt, &b->ops[i], 0);
  }
  gt__pg_round_send(c, group_round_cb);
}

/* The range_id in a fence query's result (TUPLES_OK), -1 when the shard has no row. */
static int64_t fence_range(const PGresult *r) {
  int64_t range = -1;
  gt_rows_t *rows = NULL;
  if (PQntuples(r) == 1 && gt__pg_rows_from(r, 1, &rows) == 0) {
    range = gt_rows_at(rows, 0, 0)->i;
    gt_store_rows_free(rows);
  }
  return range;
}

/* The outcome of batch idx from its round's results (after the prefix and SAVEPOINT).
 * OUT: *failed_op. Returns 0, GT_EFENCED, GT_ECONFLICT, GT_EEXISTS, GT_EIO. */
static int batch_outcome(slot_t *sl, int *failed_op) {
  gt__pg_conn_t *c = &sl->conn;
  gt__store_batch_t *b = sl->group[sl->idx];
  int k = sl->prefix + 1;
  *failed_op = -1;
  if (gt__chain_failed(b)) /* an earlier batch of its chain failed: rolled back to b */
    return GT_EUNAVAIL;
  if (!gt__pg_res_is(c, sl->prefix, PGRES_COMMAND_OK))
    return gt__pg_map_error(c->res[sl->prefix], "SAVEPOINT");
  if (b->shard_id >= 0) {
    const PGresult *r = c->res[k++];
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
      return gt__pg_map_error(r, "reading shards.range_id");
    int64_t range = fence_range(r);
    if (range != b->range_id) {
      gt_log_debug("STORE-FENCED", "shard %d: batch range_id %lld, stored %lld",
                   b->shard_id, (long long)b->range_id, (long long)range);
      return GT_EFENCED;
    }
  }
  for (int i = 0; i < b->nops; i++, k++) {
    const PGresult *r = c->res[k];
    *failed_op = i;
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
      return gt__pg_map_error(r, "a write");
    int changes = atoi(PQcmdTuples((PGresult *)r));
    if (b->ops[i].expect_rows >= 0 && changes != b->ops[i].expect_rows)
      return GT_ECONFLICT;
  }
  *failed_op = -1;
  return 0;
}

static void group_round_cb(gt__pg_conn_t *c, int rc) {
  slot_t *sl = c->data;
  if (rc) { /* connection lost: the server rolls the transaction back */
    group_finish(sl, 1);
    return; /* the worker pumps once the connection is back or declared down */
  }
  if (sl->aborting) {
    group_finish(sl, 1);
    pump(sl->w);
    return;
  }
  for (int i = 0; i < sl->prefix; i++) {
    if (!gt__pg_res_is(c, i, PGRES_COMMAND_OK)) {
      gt__pg_map_error(c->res[i], sl->idx == 0 ? "BEGIN" : "RELEASE/ROLLBACK TO");
      sl->aborting = 1;
    }
  }
  if (!sl->aborting && sl->idx == sl->n) {
    const PGresult *r = c->res[sl->prefix];
    /* An aborted transaction answers COMMIT with "ROLLBACK": nothing was committed. */
    if (r && PQresultStatus(r) == PGRES_COMMAND_OK &&
        strcmp(PQcmdStatus((PGresult *)r), "COMMIT") == 0) {
      gt__store_count_txn(sl->w->s->st);
      group_finish(sl, 0);
    } else {
      gt__pg_map_error(r, "COMMIT");
      group_finish(sl, 1);
    }
    pump(sl->w);
    return;
  }
  if (!sl->aborting) {
    sl->rc[sl->idx] = batch_outcome(sl, &sl->failed[sl->idx]);
    if (sl->rc[sl->idx]) /* before the chain's next batch is settled, in this group */
      gt__chain_fail(sl->group[sl->idx]);
    sl->idx++;
    group_send(sl);
    return;
  }
  gt__pg_round_begin(c);
  gt__pg_round_add_sql(c, "ROLLBACK", 0);
  gt__pg_round_send(c, group_round_cb);
}

/* The index of shard among the fast round's fences, or -1. */
static int fence_index(const slot_t *sl, int shard) {
  for (int j = 0; j < sl->nfence; j++)
    if (sl->fence_shard[j] == shard)
      return j;
  return -1;
}

/* 1 when every result of the fast round is what the group needs to commit: BEGIN, the
 * fences (each batch's range_id), every op with its expect_rows. No logging: whatever
 * failed is found again, and reported, by the replay. */
static int fast_all_ok(slot_t *sl) {
  gt__pg_conn_t *c = &sl->conn;
  if (!gt__pg_res_is(c, 0, PGRES_COMMAND_OK))
    return 0;
  for (int i = 0; i < sl->n; i++)
    if (gt__chain_failed(sl->group[i])) /* the replay fails it alone */
      return 0;
  for (int j = 0; j < sl->nfence; j++)
    if (!gt__pg_res_is(c, 1 + j, PGRES_TUPLES_OK))
      return 0;
  int k = 1 + sl->nfence;
  for (int i = 0; i < sl->n; i++) {
    gt__store_batch_t *b = sl->group[i];
    if (b->shard_id >= 0 &&
        fence_range(c->res[1 + fence_index(sl, b->shard_id)]) != b->range_id)
      return 0;
    if (sl->merged)
      continue;
    for (int op = 0; op < b->nops; op++, k++) {
      if (!gt__pg_res_is(c, k, PGRES_COMMAND_OK))
        return 0;
      int changes = atoi(PQcmdTuples(c->res[k]));
      if (b->ops[op].expect_rows >= 0 && changes != b->ops[op].expect_rows)
        return 0;
    }
  }
  return !sl->merged || gt__pg_arrays_ok(c, k, &sl->arrays);
}

static void fast_round_cb(gt__pg_conn_t *c, int rc) {
  slot_t *sl = c->data;
  if (rc) { /* connection lost: as in the careful path, every batch GT_EIO */
    group_finish(sl, 1);
    return;
  }
  if (fast_all_ok(sl)) { /* the COMMIT round of group_round_cb */
    sl->idx = sl->n;
    sl->prefix = 0;
    gt__pg_round_begin(c);
    gt__pg_round_add_sql(c, "COMMIT", 0);
    gt__pg_round_send(c, group_round_cb);
    return;
  }
  gt_log_debug("STORE-PG-REPLAY", "a group of %d batches is replayed batch by batch",
               sl->n);
  sl->idx = 0;
  sl->replay = 1;
  group_send(sl);
}

/* The fast round: BEGIN, one fence per distinct shard, every batch's ops: as a few
 * multi-row statements when the group allows it (pg_arrays.c), else one per op. */
static void fast_send(slot_t *sl) {
  gt__pg_conn_t *c = &sl->conn;
  gt__pg_round_begin(c);
  gt__pg_round_add_sql(c, "BEGIN", 0);
  sl->nfence = 0;
  for (int i = 0; i < sl->n; i++) {
    int shard = sl->group[i]->shard_id;
    if (shard < 0 || fence_index(sl, shard) >= 0)
      continue;
    sl->fence_shard[sl->nfence++] = shard;
    gt_store_op_t f = {.stmt = GT_SQL__COUNT, .nparams = 1,
                       .params = {gt_val_int(shard)}, .expect_rows = -1};
    gt__pg_round_add(c, GT__PG_SHARD_RANGE, &f, 0);
  }
  sl->merged = gt__pg_arrays_fit(sl->group, sl->n, &sl->arrays);
  if (sl->merged) {
    gt__pg_arrays_add(c, sl->group, sl->n, &sl->arrays);
  } else {
    for (int i = 0; i < sl->n; i++) {
      gt__store_batch_t *b = sl->group[i];
      for (int k = 0; k < b->nops; k++)
        gt__pg_round_add(c, (int)b->ops[k].stmt, &b->ops[k], 0);
    }
  }
  gt__pg_round_send(c, fast_round_cb);
}

/* Takes the consecutive batches at the head of the slot's queue and starts their
 * transaction. */
static void group_start(slot_t *sl) {
  sl->n = 0;
  sl->idx = 0;
  sl->aborting = 0;
  sl->replay = 0;
  while (sl->q.head && sl->q.head->kind == GT__ITEM_WRITE && sl->n < GROUP_CAP) {
    sl->rc[sl->n] = 0;
    sl->failed[sl->n] = -1;
    sl->group[sl->n++] = (gt__store_batch_t *)q_pop(&sl->q);
  }
  fast_send(sl);
}

static void acquire_cb(gt__pg_conn_t *c, int rc) {
  slot_t *sl = c->data;
  job_t *j = sl->job;
  sl->job = NULL;
  if (rc == 0) {
    const PGresult *r = c->res[0];
    gt_rows_t *rows = NULL;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
        gt__pg_rows_from(r, 1, &rows) == 0) {
      j->range_id = gt_rows_at(rows, 0, 0)->i;
      gt_store_rows_free(rows);
      gt__store_count_txn(sl->w->s->st);
    } else {
      rc = gt__pg_map_error(r, "acquiring a shard");
      rc = rc == GT_EEXISTS ? GT_EIO : rc;
    }
  }
  job_done(j, rc);
  if (c->state == GT__PG_READY)
    pump(sl->w);
}

static void acquire_start(slot_t *sl, job_t *j) {
  sl->job = j;
  gt_store_op_t op = {.stmt = GT_SQL__COUNT, .nparams = 2,
                      .params = {gt_val_int(j->shard_id), gt_val_text(j->owner)},
                      .expect_rows = -1};
  gt__pg_round_begin(&sl->conn);
  gt__pg_round_add(&sl->conn, GT__PG_ACQUIRE, &op, 0);
  gt__pg_round_send(&sl->conn, acquire_cb);
}

/* ------------------------------------------------------------------ readers --- */

static void reads_cb(gt__pg_conn_t *c, int rc) {
  slot_t *sl = c->data;
  int n = sl->nreads;
  sl->nreads = 0;
  for (int i = 0; i < n; i++) {
    gt__store_read_t *r = sl->reads[i];
    gt_rows_t *rows = NULL;
    int rrc = rc;
    if (rrc == 0) {
      const PGresult *res = c->res[i];
      if (res && PQresultStatus(res) == PGRES_TUPLES_OK)
        rrc = gt__pg_rows_from(
            res, r->sql ? PQnfields(res) : gt__store_stmt_info[r->op.stmt].ncols, &rows);
      else
        rrc = gt__pg_map_error(res, "a read");
      if (rrc)
        rrc = GT_EIO;
    }
    gt__store_read_done(sl->w->s->st, r, rrc, rows);
  }
  if (rc == 0)
    pump(sl->w);
}

static void reads_start(slot_t *sl) {
  worker_t *w = sl->w;
  gt__pg_round_begin(&sl->conn);
  sl->nreads = 0;
  while (w->local.head && sl->nreads < READ_PIPE) {
    gt__store_read_t *r = (gt__store_read_t *)q_pop(&w->local);
    sl->reads[sl->nreads++] = r;
    if (r->sql)
      gt__pg_round_add_params(&sl->conn, r->sql, r->sql_params, r->nsql_params, 1);
    else
      gt__pg_round_add(&sl->conn, (int)r->op.stmt, &r->op, 1);
  }
  gt__pg_round_send(&sl->conn, reads_cb);
}

/* ------------------------------------------------------------------ worker loop --- */

static void close_all(worker_t *w) {
  w->exiting = 1;
  for (int i = 0; i < w->nslots; i++)
    gt__pg_conn_close(&w->slots[i].conn);
  uv_close((uv_handle_t *)&w->retry, NULL);
  gt_wake_close(&w->wake, NULL);
}

static void on_retry(uv_timer_t *t) {
  worker_t *w = t->data;
  w->retry_armed = 0;
  for (int i = 0; i < w->nslots; i++) {
    if (w->slots[i].conn.state == GT__PG_DOWN)
      gt__pg_conn_start(&w->slots[i].conn);
  }
}

atomic_ulong gt__pg_conns_recycled;

/* maxConnLifetime: an idle connection that old is replaced before its next round (the
 * work waits for the new one, as after a loss). Returns 1 when c was. */
static int recycle_if_old(worker_t *w, gt__pg_conn_t *c) {
  if (!w->s->lifetime_ms || !gt__pg_conn_idle(c) ||
      uv_now(&w->loop) - c->ready_ms < w->s->lifetime_ms)
    return 0;
  gt_log_debug("STORE-PG-RECYCLE", "%s: a connection reached maxConnLifetime (%llu ms): "
               "connecting again", w->name, (unsigned long long)w->s->lifetime_ms);
  atomic_fetch_add_explicit(&gt__pg_conns_recycled, 1, memory_order_relaxed);
  gt__pg_conn_recycle(c);
  return 1;
}

/* Readers: hands the shared queue to idle connections. Returns the busy connections. */
static int pump_readers(worker_t *w) {
  int up = 0, connecting = 0, busy = 0;
  for (int i = 0; i < w->nslots; i++) {
    gt__pg_conn_t *c = &w->slots[i].conn;
    up += c->state == GT__PG_READY;
    connecting += c->state == GT__PG_CONNECTING || c->state == GT__PG_PREPARING;
    busy += c->busy;
  }
  if (!up && !connecting && w->local.head) {
    /* Demand pulls the next attempt forward: the queue waits for its outcome. */
    for (int i = 0; i < w->nslots; i++)
      gt__pg_conn_start(&w->slots[i].conn);
    return busy;
  }
  for (int i = 0; i < w->nslots && w->local.head; i++) {
    slot_t *sl = &w->slots[i];
    if (!gt__pg_conn_idle(&sl->conn) || recycle_if_old(w, &sl->conn))
      continue;
    busy++;
    reads_start(sl);
  }
  return busy;
}

/* Writer: each idle slot starts the group or acquire at the head of its own queue. A
 * slot that is down with items queued connects at once (its items wait for that
 * attempt). Returns the busy connections. */
static int pump_writer(worker_t *w) {
  int busy = 0;
  for (int i = 0; i < w->nslots; i++) {
    slot_t *sl = &w->slots[i];
    if (sl->q.head && sl->conn.state == GT__PG_DOWN)
      gt__pg_conn_start(&sl->conn);
    else if (sl->q.head && recycle_if_old(w, &sl->conn))
      ; /* its queue waits for the new connection */
    else if (sl->q.head && gt__pg_conn_idle(&sl->conn) &&
             sl->q.head->kind == GT__ITEM_WRITE)
      group_start(sl);
    else if (sl->q.head && gt__pg_conn_idle(&sl->conn))
      acquire_start(sl, (job_t *)q_pop(&sl->q));
    busy += sl->conn.busy;
  }
  return busy;
}

/* Hands queued work to idle connections (connecting when needed); exits the loop once
 * stopping and drained. */
static void pump(worker_t *w) {
  if (w->exiting)
    return;
  int stopping;
  fifo_take(w, &stopping);
  int busy = w->is_writer ? pump_writer(w) : pump_readers(w);
  if (stopping && !busy && queues_empty(w))
    close_all(w);
}

static void on_wake(gt_wake_t *a) { pump(a->data); }

static void on_conn_state(gt__pg_conn_t *c, int isup) {
  slot_t *sl = c->data;
  worker_t *w = sl->w;
  if (isup) {
    sl->was_up = 1;
    if (w->backoff_ms > BACKOFF_MIN_MS)
      gt_log_info("STORE-PG-RECONNECTED", "%s: connected again", w->name);
    w->backoff_ms = BACKOFF_MIN_MS;
    pump(w);
    return;
  }
  if (w->exiting)
    return;
  if (sl->was_up) { /* a loss: try again at once; the queue waits for this attempt */
    sl->was_up = 0;
    gt__pg_conn_start(c);
    pump(w);
    return;
  }
  int others = 0; /* can another connection still serve the items waiting for this one? */
  for (int i = 0; i < w->nslots && !w->is_writer; i++)
    others += w->slots[i].conn.state != GT__PG_DOWN;
  if (!others) { /* a writer slot's items wait for that slot alone */
    fail_queued(w, w->is_writer ? &sl->q : &w->local, GT_EUNAVAIL);
    pump(w); /* exits if stopping; new items trigger the next attempt */
  }
  if (!w->retry_armed && !w->exiting) {
    uv_timer_start(&w->retry, on_retry, (uint64_t)w->backoff_ms, 0);
    w->retry_armed = 1;
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
  }
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  pthread_setname_np(pthread_self(), w->is_writer ? "gt-pg-w" : "gt-pg-r");
  for (int i = 0; i < w->nslots; i++)
    gt__pg_conn_start(&w->slots[i].conn);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Sets w up (loop, handles, connections; no thread yet). Returns 0 or GT_ENOMEM. */
static int worker_init(worker_t *w, pg_store_t *s, const char *name, int is_writer,
                       int nslots) {
  memset(w, 0, sizeof(*w));
  w->s = s;
  w->name = name;
  w->is_writer = is_writer;
  w->backoff_ms = BACKOFF_MIN_MS;
  pthread_mutex_init(&w->mu, NULL);
  if (uv_loop_init(&w->loop) != 0)
    return GT_ENOMEM;
  if (gt_wake_init(&w->loop, &w->wake, on_wake) != 0)
    return GT_EIO; /* nothing else is set up yet: worker_fini closes only the loop */
  w->wake.data = w;
  uv_timer_init(&w->loop, &w->retry);
  w->retry.data = w;
  w->slots = calloc((size_t)nslots, sizeof(slot_t));
  if (!w->slots)
    return GT_ENOMEM;
  for (int i = 0; i < nslots; i++) {
    slot_t *sl = &w->slots[i];
    sl->w = w;
    w->nslots = i + 1;
    if (gt__pg_conn_init(&sl->conn, &w->loop, &s->params, on_conn_state, sl) != 0)
      return GT_ENOMEM;
  }
  return 0;
}

/* Stops the thread (after the FIFO drained) and frees the worker. */
static void worker_fini(worker_t *w) {
  pthread_mutex_lock(&w->mu);
  w->stopping = 1;
  pthread_mutex_unlock(&w->mu);
  if (w->started) {
    gt_wake_send(&w->wake);
    pthread_join(w->th, NULL);
  } else if (w->slots || w->nslots) {
    close_all(w);
  }
  uv_run(&w->loop, UV_RUN_DEFAULT); /* the close callbacks */
  int rc = uv_loop_close(&w->loop);
  if (rc != 0)
    gt_log_error("STORE-PG-CLOSE", "%s: loop not closed cleanly: %s", w->name,
                 uv_strerror(rc));
  GT_ASSERT(!w->head && queues_empty(w));
  for (int i = 0; i < w->nslots; i++)
    gt__pg_arrays_fini(&w->slots[i].arrays);
  free(w->slots);
  pthread_mutex_destroy(&w->mu);
}

/* ------------------------------------------------------------------ vtable --- */

static int pg_submit_write(void *impl, gt__store_batch_t *b) {
  pg_store_t *s = impl;
  return fifo_push(&s->writer, &b->link);
}

static int pg_submit_read(void *impl, gt__store_read_t *r) {
  pg_store_t *s = impl;
  return fifo_push(&s->readers, &r->link);
}

static int pg_acquire_shard(void *impl, int shard_id, const char *owner,
                            int64_t *range_id) {
  pg_store_t *s = impl;
  job_t j = {.link.kind = ITEM_ACQUIRE, .shard_id = shard_id, .owner = owner};
  pthread_mutex_init(&j.mu, NULL);
  pthread_cond_init(&j.cv, NULL);
  int rc = fifo_push(&s->writer, &j.link);
  if (rc == 0) {
    pthread_mutex_lock(&j.mu);
    while (!j.done)
      pthread_cond_wait(&j.cv, &j.mu);
    pthread_mutex_unlock(&j.mu);
    rc = j.rc;
  }
  pthread_mutex_destroy(&j.mu);
  pthread_cond_destroy(&j.cv);
  if (rc == 0)
    *range_id = j.range_id;
  return rc == 0 ? 0 : GT_EIO;
}

static void pg_close(void *impl) {
  pg_store_t *s = impl;
  /* Writer first: its completions may still queue reads, which the readers then serve. */
  worker_fini(&s->writer);
  worker_fini(&s->readers);
  free(s->conninfo);
  free(s);
}

/* The connections, within maxConns (Temporal's bound on open connections): readers
 * (reader_threads, 2 by default) leave the writer at least one, and the writer gets
 * GT_PG_WRITER_CONNS or what is left. Below 2 it cannot go: one writer, one reader. */
static void split_conns(const gt_store_config_t *cfg, int *nreaders, int *nwriters) {
  int max = cfg->pg_max_conns;
  int r = cfg->reader_threads > 0 ? cfg->reader_threads : 2;
  if (max > 0 && r > max - 1)
    r = max - 1 < 1 ? 1 : max - 1;
  int w = GT_PG_WRITER_CONNS;
  if (max > 0 && max - r < w)
    w = max - r < 1 ? 1 : max - r;
  if (max > 0 && max < 2)
    gt_log_warn("STORE-PG-MAXCONNS", "maxConns %d is below what the store needs: it uses "
                "2 connections (one writer, one reader)", max);
  *nreaders = r;
  *nwriters = w;
}

static int pg_open(gt_store_t *st, const gt_store_config_t *cfg, void **impl) {
  if (!cfg->pg_conninfo) {
    gt_log_error("STORE-PG-CONFIG", "the PostgreSQL store needs a conninfo string");
    return GT_EINVAL;
  }
  int rc = gt__pg_open_check(cfg->pg_conninfo, cfg->num_shards);
  if (rc)
    return rc;
  pg_store_t *s = calloc(1, sizeof(*s));
  if (!s)
    return GT_ENOMEM;
  s->st = st;
  s->lifetime_ms = cfg->pg_conn_lifetime_ms > 0 ? (uint64_t)cfg->pg_conn_lifetime_ms : 0;
  s->conninfo = strdup(cfg->pg_conninfo);
  if (!s->conninfo) {
    free(s);
    return GT_ENOMEM;
  }
  gt__pg_params_init(&s->params, s->conninfo);
  int nreaders, nwriters;
  split_conns(cfg, &nreaders, &nwriters);
  rc = worker_init(&s->writer, s, "writer", 1, nwriters);
  if (rc == 0)
    rc = worker_init(&s->readers, s, "readers", 0, nreaders);
  if (rc == 0 && pthread_create(&s->writer.th, NULL, worker_main, &s->writer) == 0)
    s->writer.started = 1;
  if (rc == 0 && pthread_create(&s->readers.th, NULL, worker_main, &s->readers) == 0)
    s->readers.started = 1;
  if (rc == 0 && !(s->writer.started && s->readers.started))
    rc = GT_ENOMEM;
  if (rc) {
    pg_close(s);
    return rc;
  }
  gt_log_info("STORE-PG-STARTED", "PostgreSQL store: %d writer, %d reader connections",
              nwriters, nreaders);
  *impl = s;
  return 0;
}

const gt_store_ops_t gt__pg_store_ops = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .submit_write = pg_submit_write,
    .submit_read = pg_submit_read,
    .acquire_shard = pg_acquire_shard,
};
