/*
 * store_int.h: what store.c shares with the backends (sqlite/, later postgres/).
 *
 * DESIGN
 *   store.c owns everything that does not depend on the database: argument checks, the
 *   deep copy of a batch or a read at submit time (one allocation each), the completion
 *   path (stats, callback, free), the sync wrappers and the result-set builder. A backend
 *   is a gt_store_ops_t vtable: it queues the items it is handed, runs them on its own
 *   threads and hands each one back through gt__store_write_done/gt__store_read_done.
 *
 * INVARIANTS
 *   - A backend's submit either returns 0 and later calls the matching *_done exactly once,
 *     or returns an error and never calls it (store.c then frees the item).
 *   - Items are handed to a backend fully built; the backend only touches `link`.
 *
 * THREADS
 *   submit_*: any thread. *_done: a store thread of the backend. open/close/acquire: the
 *   owning thread.
 */
#ifndef GT_STORE_INT_H
#define GT_STORE_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "persistence/store.h"
#include "runtime/metrics.h"

/* What a queued item is. Backends may add their own kinds from GT__ITEM_BACKEND on. */
enum { GT__ITEM_WRITE = 1, GT__ITEM_READ = 2, GT__ITEM_BACKEND = 16 };

typedef struct gt__store_item {
  struct gt__store_item *next; /* backend queue link; owned by the backend's queue lock */
  int kind;                    /* GT__ITEM_*; set before submit, read-only after */
} gt__store_item_t;

/* A write batch, its ops and every value byte in one allocation (see store.c). */
typedef struct gt__store_batch {
  gt__store_item_t link;
  uint64_t submit_ns;   /* monotonic, for persistence_latency */
  int shard_id;         /* < 0: no fence */
  int64_t range_id;     /* the fence: shards.range_id must equal it */
  int nops;
  gt_store_op_t *ops;   /* points into this allocation */
  gt_store_write_cb cb; /* may be NULL */
  void *ctx;
  gt_store_chain_t *chain; /* may be NULL; see gt_store_write_chained */
  /* Backend scratch: the outcome, kept with the batch while its completion waits (the
   * SQLite backend's syncer, which completes a batch only once its commit is on disk). */
  int done_rc;
  int done_failed_op;
} gt__store_batch_t;

struct gt__sync_wait;

/* One read request, the op and its value bytes in one allocation. */
typedef struct gt__store_read {
  gt__store_item_t link;
  gt_store_op_t op; /* values point into this allocation */
  /* gt_store_read_sql: sql != NULL, then `op` is unused and these hold the statement and
   * its values (pointing into this allocation). */
  const char *sql;
  int nsql_params;
  gt_val_t *sql_params;
  gt_store_read_cb cb;
  void *ctx;
  struct gt__sync_wait *sync; /* non-NULL: gt_store_read_sync waits; rows are handed over */
  uint64_t submit_ns;         /* monotonic, for persistence_latency */
} gt__store_read_t;

/* The vtable of a backend. `impl` is the backend's private state. */
typedef struct gt_store_ops {
  const char *name;
  /* Opens the database and starts the threads. OUT: *impl.
   * Returns 0, GT_EIO, GT_ECORRUPT, GT_ENOMEM, GT_EINVAL. */
  int (*open)(gt_store_t *st, const gt_store_config_t *cfg, void **impl);
  /* Drains every queued item (their *_done run), stops the threads, frees impl. */
  void (*close)(void *impl);
  /* Queue a batch / a read. Returns 0 (done will be called) or GT_ECLOSED. Never blocks
   * beyond a short lock. */
  int (*submit_write)(void *impl, gt__store_batch_t *b);
  int (*submit_read)(void *impl, gt__store_read_t *r);
  /* gt_store_acquire_shard_sync, serialized with the writes. Returns 0, GT_EIO. */
  int (*acquire_shard)(void *impl, int shard_id, const char *owner, int64_t *range_id);
} gt_store_ops_t;

struct gt_store {
  const gt_store_ops_t *ops; /* read-only after open */
  void *impl;                /* the backend's state */
  /* Counters: relaxed atomics, they are statistics only. */
  _Atomic uint64_t batches_committed;
  _Atomic uint64_t transactions;
  _Atomic uint64_t batches_failed;
  _Atomic uint64_t batches_fenced; /* of batches_failed: GT_EFENCED */
  _Atomic uint64_t reads;
  _Atomic uint64_t reads_failed;   /* of reads: an error other than GT_ENOTFOUND */
  _Atomic uint32_t queue_depth; /* items submitted and not yet completed */
  /* Completed write batches waiting to be freed by the next submitter (store.c,
   * "Freeing"): a stack pushed by completions, taken whole by submits and close. */
  _Atomic(gt__store_item_t *) graveyard;
  /* Submit-to-completion latency of write batches [0] and reads [1], observed by the
   * completing thread. */
  gt_metrics_ahist_t lat[2];
};

extern const gt_store_ops_t gt__sqlite_store_ops;

/* Statement metadata from store.h: parameter and result-column counts, read or write. */
typedef struct gt__stmt_info {
  int nparams;
  int ncols; /* result columns; 0 for writes */
  int is_read;
} gt__stmt_info_t;
extern const gt__stmt_info_t gt__store_stmt_info[GT_SQL__COUNT];

/* Chains (gt_store_write_chained). A backend checks gt__chain_failed before it applies a
 * batch, and calls gt__chain_fail as soon as it knows a batch failed, on the thread that
 * applies the chain's next batch (gt__store_write_done also marks it, for the failures
 * completed at once). relaxed: one thread both writes and reads a chain's flag while
 * batches of it are queued; the completion callbacks synchronize through their own
 * queues. */
static inline int gt__chain_failed(const gt__store_batch_t *b) {
  return b->chain && atomic_load_explicit(&b->chain->failed, memory_order_relaxed);
}
static inline void gt__chain_fail(gt__store_batch_t *b) {
  if (b->chain)
    atomic_store_explicit(&b->chain->failed, 1, memory_order_relaxed);
}

/* Completion of a batch: updates stats, runs the callback, frees b. Backend thread. */
void gt__store_write_done(gt_store_t *st, gt__store_batch_t *b, int rc, int failed_op);

/* Completion of a read: takes `rows` (from gt__rows_finish, or NULL with rc < 0), runs the
 * callback, frees rows and r (or hands rows to a sync waiter). Backend thread. */
void gt__store_read_done(gt_store_t *st, gt__store_read_t *r, int rc, gt_rows_t *rows);

static inline void gt__store_count_txn(gt_store_t *st) {
  atomic_fetch_add_explicit(&st->transactions, 1, memory_order_relaxed);
}

/* Result-set builder: values are appended row-major; text/blob bytes are copied (with a
 * trailing NUL, not counted in len). gt__rows_finish packs everything into ONE allocation
 * (gt_rows_t + vals + bytes) freed with gt_store_rows_free. */
typedef struct gt__rows_builder {
  int ncols;
  size_t nvals, vcap;
  gt_val_t *vals; /* p holds an offset into bytes until finish */
  size_t nbytes, bcap;
  char *bytes;
} gt__rows_builder_t;

void gt__rows_init(gt__rows_builder_t *b, int ncols);
/* Returns 0 or GT_ENOMEM. */
int gt__rows_add(gt__rows_builder_t *b, gt_val_kind_t kind, int64_t i, const void *p,
                 size_t len);
/* OUT: *out. Returns 0 or GT_ENOMEM. Always releases the builder's buffers. */
int gt__rows_finish(gt__rows_builder_t *b, gt_rows_t **out);
void gt__rows_fini(gt__rows_builder_t *b);

#endif
