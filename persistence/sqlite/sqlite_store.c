/*
 * sqlite_store.c: the SQLite backend's threads: one writer doing group commit, a pool of
 * readers, and the gt_store_ops_t vtable that store.c dispatches to.
 *
 * DESIGN
 *   Writer: a FIFO of items (mutex + condvar: store threads are not actors, and submit only
 *   locks, appends and signals). Write batches are applied as they are taken, in order,
 *   to one open transaction (a group): BEGIN IMMEDIATE, then per batch the range_id fence
 *   (read once per shard per group) and the ops (expect_rows checked), no savepoints.
 *   If a batch fails, the transaction is rolled back and the group so far replayed the
 *   careful way: per batch SAVEPOINT b, fence, ops, ROLLBACK TO b on failure, RELEASE b;
 *   the transaction stays open for the batches that follow. Both give each batch the
 *   same outcome; the fast one saves 3 statements per batch and, above all, the
 *   savepoint sub-journal writes (in WAL mode every page a batch first touches was
 *   copied there: 147 -> 61 KB written per hello workflow). A read or a shard acquire in
 *   the FIFO first commits the open group, so FIFO order holds for everything on the
 *   writer.
 *   When a group commits: without a syncer (memory, or synchronous off), when the FIFO
 *   is drained. With one, when the syncer is idle: while it fsyncs the previous group,
 *   the writer keeps taking batches as they arrive and applies them, so a batch waits
 *   for the disk, not for the batches queued before it to be executed (the earlier
 *   design ran a group only after the previous COMMIT and then paced 800 us to let the
 *   next one fill; this one did +9-15% hello/s at 100 in flight on a file, p99 -1 to -4 ms,
 *   in interleaved runs). The group's size follows the fsync's duration: ~35 batches at
 *   5,000 hello/s here. syncer_idle (under wq.mu) is cleared when a group is handed over
 *   and set when an fdatasync returns with nothing more queued; a group also commits at
 *   once when it reaches GROUP_CAP or a read or acquire comes next.
 *   Durability off the writer (file DB, synchronous "FULL"): SQLite itself runs with
 *   synchronous=NORMAL, so COMMIT writes the WAL frames without waiting for the disk, and
 *   a syncer thread makes them durable: the writer hands each committed group's batches to
 *   the syncer's FIFO and goes on with the next group; the syncer takes everything queued,
 *   fdatasync()s the WAL (its own descriptor on the same file), then completes those
 *   batches. A batch is thus completed only after an fsync that began after its COMMIT
 *   returned: as durable as synchronous=FULL, but the writer runs the next group while the
 *   disk flushes (a flush under load takes ~1.5 ms here: it was 70% of the writer's time).
 *   Consistency after a power loss is SQLite's own for NORMAL in WAL mode (checksummed
 *   frames: recovery keeps a prefix of the commits; checkpoints are synced by SQLite).
 *   Readers (file DB only): N threads, each with its own query_only connection (WAL lets
 *   them run beside the writer), sharing one FIFO. With the in-memory DB there is a single
 *   connection, so reads go to the writer's FIFO.
 *
 * INVARIANTS
 *   - A batch is all-or-nothing: a failure rolls back the optimistic transaction, then the
 *     replay runs each batch inside its savepoint, rolled back on failure.
 *   - If the transaction is lost (COMMIT fails, or SQLite rolled it back after an I/O or
 *     disk-full error), every batch of the group completes with GT_EIO: none was committed.
 *   - A batch whose chain failed (gt_store_write_chained) is not applied: GT_EUNAVAIL. The
 *     writer marks a chain failed when it learns of the failure (a replayed batch, a lost
 *     group), before it applies any later batch, even though the completion waits for
 *     the syncer.
 *   - Completions run after the COMMIT returned (and, with the syncer, after the WAL was
 *     fdatasync'd since), in submission order, on the writer thread or the syncer.
 *   - If the WAL cannot be synced, the process aborts: the commits are in the file but
 *     not known durable, and answering either way could lie (PostgreSQL PANICs alike).
 *   - close: the FIFOs refuse new items (GT_ECLOSED) once stopping is set; the threads exit
 *     only when their FIFO is empty, so every accepted item completes.
 *
 * THREADS
 *   submit_*: any thread. writer_main: the writer thread (owns wconn). syncer_main: the
 *   syncer (owns wal_fd; sync_wal is also called by the writer for a shard acquire, under
 *   wal_mu). reader_main: reader threads (each owns its conn). open/close/acquire_shard:
 *   the owning thread.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persistence/sqlite/sqlite_int.h"
#include "persistence/store_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* Batches per transaction: bounds the latency of the first batch of a big group (and the
 * group arrays). */
#define GROUP_CAP 512
/* Shards whose range_id one group remembers (more are read per batch). */
#define FENCE_CACHE 64

enum { ITEM_ACQUIRE = GT__ITEM_BACKEND, ITEM_EXEC, ITEM_CALL };

/* gt__sqlite_call_on_writer's item: heap-allocated, freed by the writer after the call. */
typedef struct call_item {
  gt__store_item_t link;
  void (*fn)(void *);
  void *arg;
} call_item_t;

typedef struct fifo {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  gt__store_item_t *head, *tail; /* under mu */
  int stopping;                  /* under mu: refuse new items, exit when empty */
} fifo_t;

/* A synchronous job on the writer (acquire a shard, or gt__sqlite_exec_sync's SQL): lives
 * on the caller's stack while it waits. */
typedef struct job {
  gt__store_item_t link;
  int shard_id;
  const char *owner; /* ITEM_ACQUIRE */
  const char *sql;   /* ITEM_EXEC */
  int64_t range_id;  /* OUT */
  int rc;            /* OUT */
  int done;          /* under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv;
} job_t;

typedef struct sqlite_store sqlite_store_t;

typedef struct reader {
  pthread_t th;
  gt__sqlite_conn_t conn; /* reader thread */
  sqlite_store_t *s;
} reader_t;

struct sqlite_store {
  gt_store_t *st; /* for the completions and stats */
  int in_memory;  /* read-only after open */
  fifo_t wq;      /* writer FIFO: batches, acquires, and reads when in_memory */
  fifo_t rq;      /* reader FIFO (file DB) */
  pthread_t writer;
  int writer_started;
  gt__sqlite_conn_t wconn; /* writer thread */
  int nreaders, readers_started;
  reader_t *readers;
  /* The syncer (file DB with durable commits): NULL wal_path = none, the writer completes. */
  char *wal_path;       /* "<db>-wal" */
  fifo_t sq;            /* committed batches waiting for the WAL fsync */
  pthread_t syncer;
  int syncer_started;
  pthread_mutex_t wal_mu; /* wal_fd, wal_dev, wal_ino */
  int wal_fd;             /* our descriptor on the WAL file, -1 until first needed */
  dev_t wal_dev;
  ino_t wal_ino;
  /* writer thread scratch for one group */
  gt__store_batch_t *group[GROUP_CAP];
  int group_rc[GROUP_CAP];
  int group_failed[GROUP_CAP];
  int open_n;      /* writer: batches applied in the open transaction (group[0..open_n)) */
  int syncer_idle; /* under wq.mu: nothing committed waits for the syncer's fsync */
  int nfence; /* the group's fence cache (check_fence) */
  int fence_shard[FENCE_CACHE];
  int64_t fence_range[FENCE_CACHE];
};

/* ------------------------------------------------------------------ FIFOs --- */

static void fifo_init(fifo_t *q) {
  memset(q, 0, sizeof(*q));
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->cv, NULL);
}

static void fifo_fini(fifo_t *q) {
  GT_ASSERT(!q->head);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->cv);
}

/* Appends it. Returns 0 or GT_ECLOSED. Only a short lock: never blocks for long. */
static int fifo_push(fifo_t *q, gt__store_item_t *it) {
  it->next = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->stopping) {
    pthread_mutex_unlock(&q->mu);
    return GT_ECLOSED;
  }
  if (q->tail)
    q->tail->next = it;
  else
    q->head = it;
  q->tail = it;
  pthread_mutex_unlock(&q->mu);
  /* after the unlock: a consumer woken under our lock would at once block on it (glibc
   * does not hand the mutex over with the wake-up). The consumer waits only with the
   * lock released and re-checks under it, so this wake cannot be lost. */
  pthread_cond_signal(&q->cv);
  return 0;
}

/* Detaches up to max items from the head as a NULL-terminated chain (NULL if empty).
 * Under q->mu. */
static gt__store_item_t *fifo_detach_locked(fifo_t *q, int max) {
  gt__store_item_t *first = q->head, *last = q->head;
  if (!first)
    return NULL;
  for (int n = 1; n < max && last->next; n++)
    last = last->next;
  q->head = last->next;
  if (!q->head)
    q->tail = NULL;
  last->next = NULL;
  return first;
}

/* Waits for items and detaches up to max of them as a NULL-terminated chain. Returns NULL
 * once stopping is set and the FIFO is empty. */
static gt__store_item_t *fifo_take(fifo_t *q, int max) {
  pthread_mutex_lock(&q->mu);
  while (!q->head && !q->stopping)
    pthread_cond_wait(&q->cv, &q->mu);
  gt__store_item_t *first = fifo_detach_locked(q, max);
  pthread_mutex_unlock(&q->mu);
  return first;
}

static void fifo_stop(fifo_t *q) {
  pthread_mutex_lock(&q->mu);
  q->stopping = 1;
  pthread_cond_broadcast(&q->cv);
  pthread_mutex_unlock(&q->mu);
}

/* ------------------------------------------------------------------ writes --- */

/* Fence of one batch, with the group's cache of shard ranges (the fast path and the
 * careful replay alike): acquire (the only writer of shards.range_id) commits the open
 * group before it runs, so a range read once holds for the whole group. Returns 0,
 * GT_EFENCED, GT_EIO. */
static int check_fence(sqlite_store_t *s, gt__store_batch_t *b) {
  if (b->shard_id < 0)
    return 0;
  int64_t range = -1;
  int i = 0;
  while (i < s->nfence && s->fence_shard[i] != b->shard_id)
    i++;
  if (i < s->nfence) {
    range = s->fence_range[i];
  } else {
    int rc = gt__sqlite_shard_range(&s->wconn, b->shard_id, &range);
    if (rc)
      return rc;
    if (s->nfence < FENCE_CACHE) {
      s->fence_shard[s->nfence] = b->shard_id;
      s->fence_range[s->nfence++] = range;
    }
  }
  if (range == b->range_id)
    return 0;
  gt_log_debug("STORE-FENCED", "shard %d: batch range_id %lld, stored %lld", b->shard_id,
               (long long)b->range_id, (long long)range);
  return GT_EFENCED;
}

/* Runs a batch's ops in order, each checked against its expect_rows. Returns 0, or the
 * first failure (GT_ECONFLICT, GT_EEXISTS, GT_EIO) with OUT *failed_op its index. */
static int run_ops(gt__sqlite_conn_t *c, gt__store_batch_t *b, int *failed_op) {
  for (int i = 0; i < b->nops; i++) {
    int changes = 0;
    int rc = gt__sqlite_run_write(c, &b->ops[i], &changes);
    if (rc == 0 && b->ops[i].expect_rows >= 0 && changes != b->ops[i].expect_rows)
      rc = GT_ECONFLICT;
    if (rc) {
      *failed_op = i;
      return rc;
    }
  }
  return 0;
}

/* Runs one batch inside its savepoint. OUT: *failed_op. Returns 0, GT_EFENCED,
 * GT_ECONFLICT, GT_EEXISTS, GT_EIO. */
static int run_batch(sqlite_store_t *s, gt__store_batch_t *b, int *failed_op) {
  gt__sqlite_conn_t *c = &s->wconn;
  *failed_op = -1;
  int src = gt__sqlite_step_simple(c, GT__SQ_SAVEPOINT);
  if (src != SQLITE_DONE)
    return gt__sqlite_map(c->db, src, "SAVEPOINT");
  int rc = check_fence(s, b);
  if (rc == 0)
    rc = run_ops(c, b, failed_op);
  if (rc && sqlite3_get_autocommit(c->db))
    return rc; /* SQLite already rolled the whole transaction back (disk full, I/O) */
  if (rc) {
    src = gt__sqlite_step_simple(c, GT__SQ_ROLLBACK_TO);
    if (src != SQLITE_DONE)
      rc = gt__sqlite_map(c->db, src, "ROLLBACK TO");
  }
  src = gt__sqlite_step_simple(c, GT__SQ_RELEASE);
  if (src != SQLITE_DONE && rc == 0)
    rc = gt__sqlite_map(c->db, src, "RELEASE");
  return rc;
}


/* Applies one batch to the open transaction the fast way (no savepoint, the group's
 * fence cache). Returns 0 or the batch's error; on error the transaction may hold part
 * of the batch: the caller rolls it back and replays the group the careful way. */
static int apply_fast(sqlite_store_t *s, gt__store_batch_t *b) {
  int failed_op;
  int rc = check_fence(s, b);
  return rc ? rc : run_ops(&s->wconn, b, &failed_op);
}

/* Replays group[0..n) the careful way after the fast path failed and was rolled back:
 * BEGIN, then each batch inside its savepoint (rolled back alone on failure), which
 * gives each batch its own outcome in group_rc/group_failed. Returns 0 with the
 * transaction open, or 1 if it is lost (BEGIN failed, or SQLite rolled everything back
 * after a disk-full or I/O error): nothing of the group is applied. */
static int replay_careful(sqlite_store_t *s, int n) {
  gt__sqlite_conn_t *c = &s->wconn;
  int src = gt__sqlite_step_simple(c, GT__SQ_BEGIN);
  if (src != SQLITE_DONE) {
    gt__sqlite_map(c->db, src, "BEGIN");
    return 1;
  }
  s->nfence = 0;
  for (int i = 0; i < n; i++) {
    if (gt__chain_failed(s->group[i])) { /* an earlier batch of its chain failed */
      s->group_rc[i] = GT_EUNAVAIL;
      s->group_failed[i] = -1;
      continue;
    }
    s->group_rc[i] = run_batch(s, s->group[i], &s->group_failed[i]);
    if (s->group_rc[i])
      gt__chain_fail(s->group[i]);
    /* After a disk-full or I/O error SQLite may have rolled the whole transaction
     * back: the batches released before this one are gone too. */
    if (sqlite3_get_autocommit(c->db))
      return 1;
  }
  return 0;
}

/* Ends the open transaction holding group[0..open_n) (lost: there is none, every batch
 * fails with GT_EIO): COMMIT, then the completions in order, through the syncer when
 * there is one. */
static void finish_group(sqlite_store_t *s, int lost) {
  gt__sqlite_conn_t *c = &s->wconn;
  int n = s->open_n;
  s->open_n = 0;
  if (!lost) {
    int src = gt__sqlite_step_simple(c, GT__SQ_COMMIT);
    if (src != SQLITE_DONE) {
      gt__sqlite_map(c->db, src, "COMMIT");
      if (!sqlite3_get_autocommit(c->db))
        gt__sqlite_step_simple(c, GT__SQ_ROLLBACK);
      lost = 1;
    } else {
      gt__store_count_txn(s->st);
    }
  }
  if (lost)
    gt_log_error("STORE-SQLITE-TXN-LOST", "a group of %d batches was not committed", n);
  if (s->wal_path) { /* the syncer has work: the next group waits for its fsync */
    pthread_mutex_lock(&s->wq.mu);
    s->syncer_idle = 0;
    pthread_mutex_unlock(&s->wq.mu);
  }
  for (int i = 0; i < n; i++) {
    gt__store_batch_t *b = s->group[i];
    b->done_rc = lost ? GT_EIO : s->group_rc[i];
    b->done_failed_op = lost ? -1 : s->group_failed[i];
    if (b->done_rc) /* now: the chain's next batch may be applied before this completes */
      gt__chain_fail(b);
    /* the syncer's FIFO is stopped only after this thread has exited */
    if (!s->wal_path || fifo_push(&s->sq, &b->link) != 0)
      gt__store_write_done(s->st, b, b->done_rc, b->done_failed_op);
  }
}

/* Commits the open transaction, if any. */
static void commit_open(sqlite_store_t *s) {
  if (s->open_n > 0)
    finish_group(s, 0);
}

/* Applies a write batch to the open transaction (opening one if none is). The common
 * case, every batch succeeds, runs without savepoints. If this batch fails, the
 * transaction is rolled back and the group so far, this batch included, replayed the
 * careful way; the transaction stays open for the batches that follow. */
static void apply_write(sqlite_store_t *s, gt__store_batch_t *b) {
  gt__sqlite_conn_t *c = &s->wconn;
  if (s->open_n == GROUP_CAP)
    commit_open(s);
  int i = s->open_n++;
  s->group[i] = b;
  s->group_rc[i] = 0;
  s->group_failed[i] = -1;
  if (gt__chain_failed(b)) { /* kept in the group only to complete in order */
    s->group_rc[i] = GT_EUNAVAIL;
    if (i > 0)
      return;
  }
  if (i == 0) {
    s->nfence = 0;
    if (gt__sqlite_step_simple(c, GT__SQ_BEGIN) != SQLITE_DONE) {
      if (!sqlite3_get_autocommit(c->db))
        gt__sqlite_step_simple(c, GT__SQ_ROLLBACK);
      finish_group(s, replay_careful(s, 1)); /* BEGIN once more; GT_EIO if it fails */
      return;
    }
  }
  if (s->group_rc[i] || apply_fast(s, b) == 0)
    return;
  if (!sqlite3_get_autocommit(c->db))
    gt__sqlite_step_simple(c, GT__SQ_ROLLBACK);
  if (replay_careful(s, s->open_n))
    finish_group(s, 1);
}

/* ------------------------------------------------------------------ syncer --- */

/* Makes everything written to the WAL so far durable. The descriptor is (re)opened when
 * the WAL file is not the one it names (first use; a WAL recreated by SQLite). A WAL that
 * does not exist yet holds nothing to sync. Aborts when the sync fails. */
static void sync_wal(sqlite_store_t *s) {
  pthread_mutex_lock(&s->wal_mu);
  struct stat st;
  if (stat(s->wal_path, &st) != 0) {
    pthread_mutex_unlock(&s->wal_mu);
    return;
  }
  if (s->wal_fd < 0 || st.st_dev != s->wal_dev || st.st_ino != s->wal_ino) {
    if (s->wal_fd >= 0)
      close(s->wal_fd);
    s->wal_fd = open(s->wal_path, O_RDWR | O_CLOEXEC);
    s->wal_dev = st.st_dev;
    s->wal_ino = st.st_ino;
  }
  if (s->wal_fd < 0 || fdatasync(s->wal_fd) != 0) {
    gt_log_error("STORE-SQLITE-SYNC", "cannot sync %s: %m; committed writes may not be "
                 "durable, stopping the server", s->wal_path);
    abort();
  }
  pthread_mutex_unlock(&s->wal_mu);
}

static void *syncer_main(void *arg) {
  sqlite_store_t *s = arg;
  gt__store_item_t *chain;
  pthread_setname_np(pthread_self(), "gt-sqlite-sync");
  while ((chain = fifo_take(&s->sq, 1 << 30)) != NULL) {
    sync_wal(s);
    /* The disk is free: if no group waits for it, the writer may commit its open one now,
     * while this thread runs the completions (~35 callbacks under load). A group handed
     * over between the check and the flag commits one group early, never late: the next
     * fdatasync takes both. */
    pthread_mutex_lock(&s->sq.mu);
    int empty = s->sq.head == NULL;
    pthread_mutex_unlock(&s->sq.mu);
    if (empty) {
      pthread_mutex_lock(&s->wq.mu);
      s->syncer_idle = 1;
      pthread_mutex_unlock(&s->wq.mu);
      pthread_cond_signal(&s->wq.cv); /* after the unlock, as in fifo_push */
    }
    while (chain) {
      gt__store_batch_t *b = (gt__store_batch_t *)chain;
      chain = chain->next; /* b is freed by its completion */
      gt__store_write_done(s->st, b, b->done_rc, b->done_failed_op);
    }
  }
  return NULL;
}

static void job_done(job_t *a, int rc) {
  pthread_mutex_lock(&a->mu);
  a->rc = rc;
  a->done = 1;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

/* Acquire: its own transaction, serialized with the batches by the FIFO. */
static void run_acquire(sqlite_store_t *s, job_t *a) {
  gt__sqlite_conn_t *c = &s->wconn;
  int src = gt__sqlite_step_simple(c, GT__SQ_BEGIN);
  int rc = src == SQLITE_DONE ? 0 : gt__sqlite_map(c->db, src, "BEGIN");
  if (rc == 0)
    rc = gt__sqlite_shard_bump(c, a->shard_id, a->owner);
  if (rc == 0)
    rc = gt__sqlite_shard_range(c, a->shard_id, &a->range_id);
  if (rc == 0) {
    src = gt__sqlite_step_simple(c, GT__SQ_COMMIT);
    if (src != SQLITE_DONE)
      rc = gt__sqlite_map(c->db, src, "COMMIT");
    else
      gt__store_count_txn(s->st);
  }
  if (rc == 0 && s->wal_path) /* the new range_id fences the old owner: durable first */
    sync_wal(s);
  if (rc && !sqlite3_get_autocommit(c->db))
    gt__sqlite_step_simple(c, GT__SQ_ROLLBACK);
  job_done(a, rc);
}

static void run_exec(sqlite_store_t *s, job_t *a) {
  int src = sqlite3_exec(s->wconn.db, a->sql, NULL, NULL, NULL);
  job_done(a, src == SQLITE_OK ? 0 : gt__sqlite_map(s->wconn.db, src, "exec"));
}

static void run_read(sqlite_store_t *s, gt__sqlite_conn_t *c, gt__store_read_t *r) {
  gt_rows_t *rows = NULL;
  int rc = r->sql ? gt__sqlite_run_read_sql(c, r->sql, r->sql_params, r->nsql_params, &rows)
                  : gt__sqlite_run_read(c, &r->op, &rows);
  gt__store_read_done(s->st, r, rc, rows);
}

/* Runs a chain taken from the writer FIFO, in order: writes join the open transaction;
 * anything else first commits it, so FIFO order holds for everything on the writer. */
static void run_items(sqlite_store_t *s, gt__store_item_t *it) {
  while (it) {
    gt__store_item_t *next = it->next; /* it may be freed by its completion */
    if (it->kind == GT__ITEM_WRITE) {
      apply_write(s, (gt__store_batch_t *)it);
    } else {
      commit_open(s);
      if (it->kind == GT__ITEM_READ)
        run_read(s, &s->wconn, (gt__store_read_t *)it);
      else if (it->kind == ITEM_ACQUIRE)
        run_acquire(s, (job_t *)it);
      else if (it->kind == ITEM_CALL) {
        call_item_t *ci = (call_item_t *)it;
        ci->fn(ci->arg);
        free(ci);
      } else
        run_exec(s, (job_t *)it);
    }
    it = next;
  }
}

/* The writer's wait: returns the queued items (at most GROUP_CAP) as a chain, or NULL
 * when the open transaction should be committed now (the syncer went idle, or the store
 * is stopping), or NULL with nothing open when the store is stopping and drained.
 * While a transaction is open and the syncer busy, new batches are taken as they come
 * and applied at once: they are ready when the syncer is. */
static gt__store_item_t *writer_take(sqlite_store_t *s) {
  fifo_t *q = &s->wq;
  pthread_mutex_lock(&q->mu);
  while (!q->head && !q->stopping && !(s->open_n > 0 && s->syncer_idle))
    pthread_cond_wait(&q->cv, &q->mu);
  gt__store_item_t *first = fifo_detach_locked(q, GROUP_CAP);
  pthread_mutex_unlock(&q->mu);
  return first;
}

static int syncer_is_idle(sqlite_store_t *s) {
  pthread_mutex_lock(&s->wq.mu);
  int idle = s->syncer_idle;
  pthread_mutex_unlock(&s->wq.mu);
  return idle;
}

static void *writer_main(void *arg) {
  sqlite_store_t *s = arg;
  pthread_setname_np(pthread_self(), "gt-sqlite-w");
  for (;;) {
    gt__store_item_t *chain = writer_take(s);
    if (chain == NULL) {
      if (s->open_n == 0)
        break; /* stopping, drained */
      commit_open(s);
      continue;
    }
    run_items(s, chain);
    /* Without a syncer a group commits when the queue is drained; with one, when the
     * syncer can take it at once (else the next batches join it meanwhile). */
    if (s->open_n > 0 && (!s->wal_path || syncer_is_idle(s)))
      commit_open(s);
  }
  return NULL;
}

static void *reader_main(void *arg) {
  reader_t *r = arg;
  gt__store_item_t *it;
  pthread_setname_np(pthread_self(), "gt-sqlite-r");
  while ((it = fifo_take(&r->s->rq, 1)) != NULL)
    run_read(r->s, &r->conn, (gt__store_read_t *)it);
  return NULL;
}

/* ------------------------------------------------------------------ vtable --- */

static int sq_submit_write(void *impl, gt__store_batch_t *b) {
  sqlite_store_t *s = impl;
  return fifo_push(&s->wq, &b->link);
}

static int sq_submit_read(void *impl, gt__store_read_t *r) {
  sqlite_store_t *s = impl;
  return fifo_push(s->in_memory ? &s->wq : &s->rq, &r->link);
}

/* Queues job a on the writer and waits for it. Returns its rc, or GT_EIO if closed. */
static int run_job_sync(sqlite_store_t *s, job_t *a) {
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  int rc = fifo_push(&s->wq, &a->link);
  if (rc == 0) {
    pthread_mutex_lock(&a->mu);
    while (!a->done)
      pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    rc = a->rc;
  }
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->cv);
  return rc == GT_ECLOSED ? GT_EIO : rc;
}

static int sq_acquire_shard(void *impl, int shard_id, const char *owner,
                            int64_t *range_id) {
  job_t a = {.link.kind = ITEM_ACQUIRE, .shard_id = shard_id, .owner = owner};
  int rc = run_job_sync(impl, &a);
  if (rc == 0)
    *range_id = a.range_id;
  return rc;
}

int gt__sqlite_exec_sync(gt_store_t *st, const char *sql) {
  if (!st || st->ops != &gt__sqlite_store_ops || !sql)
    return GT_EINVAL;
  job_t a = {.link.kind = ITEM_EXEC, .sql = sql};
  return run_job_sync(st->impl, &a);
}

int gt__sqlite_call_on_writer(gt_store_t *st, void (*fn)(void *), void *arg) {
  if (!st || st->ops != &gt__sqlite_store_ops || !fn)
    return GT_EINVAL;
  call_item_t *ci = calloc(1, sizeof(*ci));
  if (!ci)
    return GT_ENOMEM;
  ci->link.kind = ITEM_CALL;
  ci->fn = fn;
  ci->arg = arg;
  sqlite_store_t *s = st->impl;
  int rc = fifo_push(&s->wq, &ci->link);
  if (rc)
    free(ci);
  return rc;
}

/* Stops the threads that were started (draining their FIFOs), closes every connection,
 * frees s. Also the error path of sq_open. */
static void sq_close(void *impl) {
  sqlite_store_t *s = impl;
  /* Writer first: its completions may still queue reads, which the readers then serve. */
  fifo_stop(&s->wq);
  if (s->writer_started)
    pthread_join(s->writer, NULL);
  fifo_stop(&s->sq); /* after the writer: it has handed over its last batches */
  if (s->syncer_started)
    pthread_join(s->syncer, NULL);
  fifo_stop(&s->rq);
  for (int i = 0; i < s->readers_started; i++)
    pthread_join(s->readers[i].th, NULL);

  for (int i = 0; i < s->nreaders; i++)
    gt__sqlite_conn_close(&s->readers[i].conn);
  gt__sqlite_conn_close(&s->wconn);
  fifo_fini(&s->wq);
  fifo_fini(&s->rq);
  fifo_fini(&s->sq);
  if (s->wal_fd >= 0)
    close(s->wal_fd);
  pthread_mutex_destroy(&s->wal_mu);
  free(s->wal_path);
  free(s->readers);
  free(s);
}

static int open_readers(sqlite_store_t *s, const char *path, int n) {
  s->readers = calloc((size_t)n, sizeof(reader_t));
  if (!s->readers)
    return GT_ENOMEM;
  for (int i = 0; i < n; i++) {
    reader_t *r = &s->readers[i];
    r->s = s;
    s->nreaders = i + 1;
    int rc = gt__sqlite_open_reader(path, &r->conn.db);
    if (rc == 0)
      rc = gt__sqlite_conn_prepare(&r->conn, 1);
    if (rc)
      return rc;
  }
  return 0;
}

static int start_threads(sqlite_store_t *s) {
  if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
    return GT_ENOMEM;
  s->writer_started = 1;
  if (s->wal_path) {
    if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0)
      return GT_ENOMEM;
    s->syncer_started = 1;
  }
  for (int i = 0; i < s->nreaders; i++) {
    if (pthread_create(&s->readers[i].th, NULL, reader_main, &s->readers[i]) != 0)
      return GT_ENOMEM;
    s->readers_started = i + 1;
  }
  return 0;
}

static int sq_open(gt_store_t *st, const gt_store_config_t *cfg, void **impl) {
  const char *path = cfg->sqlite_path;
  sqlite_store_t *s = calloc(1, sizeof(*s));
  if (!s)
    return GT_ENOMEM;
  s->st = st;
  s->in_memory = !path || !path[0] || strcmp(path, ":memory:") == 0;
  fifo_init(&s->wq);
  fifo_init(&s->rq);
  fifo_init(&s->sq);
  pthread_mutex_init(&s->wal_mu, NULL);
  s->wal_fd = -1;
  s->syncer_idle = 1;
  /* durable commits on a file: SQLite's NORMAL + our syncer (see DESIGN) */
  int syncer = !s->in_memory && cfg->sqlite_synchronous_full;
  if (syncer) {
    size_t n = strlen(path) + sizeof("-wal");
    s->wal_path = malloc(n);
    if (!s->wal_path) {
      sq_close(s);
      return GT_ENOMEM;
    }
    snprintf(s->wal_path, n, "%s-wal", path);
  }
  int rc = gt__sqlite_open_main(path, 0, cfg->num_shards, &s->wconn.db);
  if (rc == 0)
    rc = gt__sqlite_conn_prepare(&s->wconn, 0);
  if (rc == 0 && !s->in_memory)
    rc = open_readers(s, path, cfg->reader_threads > 0 ? cfg->reader_threads : 2);
  if (rc == 0)
    rc = start_threads(s);
  if (rc) {
    sq_close(s);
    return rc;
  }
  if (s->in_memory)
    gt_log_info("STORE-SQLITE-OPEN", "opened :memory: (reads run on the writer)");
  else
    gt_log_info("STORE-SQLITE-OPEN", "opened %s (WAL, %d readers, %s)", path, s->nreaders,
                syncer ? "commits durable: fdatasync by the syncer before completion"
                       : "synchronous=NORMAL: commits not synced");
  *impl = s;
  return 0;
}

const gt_store_ops_t gt__sqlite_store_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .submit_write = sq_submit_write,
    .submit_read = sq_submit_read,
    .acquire_shard = sq_acquire_shard,
};
