/*
 * store.h: the persistence interface. One asynchronous API, a backend per database.
 *
 * DESIGN
 *   Callers speak in named statements (GT_SQL_* below) with bound values, never SQL text:
 *   each backend holds its own SQL for every statement (sqlite/, postgres/). A write is a
 *   BATCH of statements that commits atomically, fenced by the owning shard's range_id: the
 *   backend first checks `shards.range_id == batch.range_id` (for shard_id >= 0) and aborts
 *   the batch with GT_EFENCED otherwise. A statement may demand a row count (expect_rows);
 *   a mismatch aborts the batch with GT_ECONFLICT (optimistic concurrency, e.g. an executions
 *   row updated with the wrong db_version) or GT_EEXISTS for a failed insert-if-absent.
 *   Group commit: one writer thread takes every queued batch, runs each inside a SAVEPOINT of
 *   one transaction, and commits them all with one fsync; a failed batch is rolled back to its
 *   savepoint alone. Completions then run on the writer thread, in submission order (per
 *   shard: PostgreSQL runs groups of different shards on several connections at once).
 *   Reads run on a small pool of reader connections (WAL); with the in-memory database, reads
 *   go through the writer's connection, FIFO with the writes.
 *
 * INVARIANTS
 *   - A batch is all-or-nothing. Its completion is called exactly once, after the commit is
 *     durable (or with the error), on a store thread: it must not block; it usually posts a
 *     message to an actor.
 *   - Values handed in are copied at submit time; the caller may free its buffers at once.
 *   - Result rows passed to a completion are valid only during the callback.
 *
 * THREADS
 *   gt_store_open/close and the *_sync calls: the owning thread (start-up, tools, tests).
 *   gt_store_write/gt_store_read: any thread, never blocking (they only enqueue).
 */
#ifndef GT_STORE_H
#define GT_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The statements. Parameters and result columns are listed in order; "blob" values are
 * opaque bytes (msgpack or protobuf), "text" UTF-8, "int" int64. */
typedef enum gt_sql_stmt {
  /* --- writes --- */
  /* (id text, name text, data blob, is_default int) insert or replace by id */
  GT_SQL_NAMESPACE_UPSERT = 0,
  /* (shard_id int, ns_id text, workflow_id text, run_id text, next_event_id int,
   *  db_version int, state blob) plain insert: fails (GT_EEXISTS) when the row exists */
  GT_SQL_EXECUTION_INSERT,
  /* (next_event_id int, db_version int, state blob, shard_id int, ns_id text,
   *  workflow_id text, run_id text, expected_db_version int)
   *  UPDATE ... WHERE keys AND db_version = expected_db_version (use expect_rows = 1) */
  GT_SQL_EXECUTION_UPDATE,
  /* (shard_id int, ns_id text, workflow_id text, run_id text, create_request_id text,
   *  state int, status int, start_time int) insert or replace by (shard_id, ns_id, wf_id) */
  GT_SQL_CURRENT_UPSERT,
  /* (shard_id int, ns_id text, workflow_id text, run_id text, first_event_id int,
   *  last_event_id int, data blob) one batch of events: a serialized
   *  temporal.api.history.v1.History; primary key (shard, ns, wf, run, first_event_id) */
  GT_SQL_HISTORY_APPEND,
  /* (shard_id int, task_id int, data blob) */
  GT_SQL_TRANSFER_TASK_INSERT,
  /* (shard_id int, task_id int) */
  GT_SQL_TRANSFER_TASK_DELETE,
  /* (shard_id int, fire_time_ns int, task_id int, data blob) */
  GT_SQL_TIMER_TASK_INSERT,
  /* (shard_id int, fire_time_ns int, task_id int) */
  GT_SQL_TIMER_TASK_DELETE,
  /* (ns_id text, task_queue text, kind int, task_id int, data blob) */
  GT_SQL_TQ_TASK_INSERT,
  /* (ns_id text, task_queue text, kind int, task_id int) */
  GT_SQL_TQ_TASK_DELETE,
  /* (ns_id text, run_id text, workflow_id text, workflow_type text, task_queue text,
   *  status int, start_time_ns int, execution_time_ns int, close_time_ns int (0 = open),
   *  history_length int, memo blob, search_attributes blob, search_json text: the search
   *  attributes as one JSON object, what queries filter on; NULL when none)
   *  insert by (ns, run), or update what may change for a run (status, times, length,
   *  memo, search attributes): a run's workflow id, type, task queue and start time are
   *  its own for good, and leaving them out spares the indexes on them a rewrite at close */
  GT_SQL_VISIBILITY_UPSERT,

  /* --- reads --- */
  /* () -> (id text, name text, data blob, is_default int) ordered by name */
  GT_SQL_NAMESPACE_LIST,
  /* (shard_id int, ns_id text, workflow_id text, run_id text)
   *  -> (next_event_id int, db_version int, state blob) */
  GT_SQL_EXECUTION_GET,
  /* (shard_id int, ns_id text, workflow_id text)
   *  -> (run_id text, create_request_id text, state int, status int, start_time int) */
  GT_SQL_CURRENT_GET,
  /* (shard_id int, ns_id text, workflow_id text, run_id text, min_first_event_id int)
   *  -> (first_event_id int, last_event_id int, data blob) ordered by first_event_id */
  GT_SQL_HISTORY_GET,
  /* (shard_id int) -> (task_id int, data blob) ordered by task_id */
  GT_SQL_TRANSFER_TASK_SCAN,
  /* (shard_id int, max_fire_time_ns int, limit int)
   *  -> (fire_time_ns int, task_id int, data blob) ordered by (fire_time_ns, task_id) */
  GT_SQL_TIMER_TASK_SCAN,
  /* (ns_id text, task_queue text, kind int, limit int) -> (task_id int, data blob) by task_id */
  GT_SQL_TQ_TASK_SCAN,
  /* (ns_id text, run_id text) -> the visibility columns as in VISIBILITY_UPSERT */
  GT_SQL_VISIBILITY_GET,
  /* (ns_id text, limit int, offset int) -> visibility columns, newest start first */
  GT_SQL_VISIBILITY_LIST,
  /* (shard_id int) -> (max task id used in transfer_tasks and timer_tasks, 0 if none) */
  GT_SQL_TASK_ID_MAX,
  /* (shard_id int) -> (ns_id text, workflow_id text, state blob: its executions.state,
   * NULL if missing) of every current execution whose state is 1 (running): the
   * workflows to recover after a restart */
  GT_SQL_CURRENT_LIST_RUNNING,

  /* --- writes (added with visibility) --- */
  /* (ns_id text, name text, type int: IndexedValueType) a custom search attribute of a
   * namespace; insert or replace by (ns, name) */
  GT_SQL_SEARCH_ATTR_UPSERT,
  /* (ns_id text, name text) */
  GT_SQL_SEARCH_ATTR_DELETE,

  /* --- retention: deleting closed runs --- */
  /* (ns_id text, close_before_ns int, limit int) -> (workflow_id text, run_id text) of
   * closed runs (close_time_ns > 0) that closed before close_before_ns, oldest first */
  GT_SQL_VISIBILITY_EXPIRED,
  /* (shard_id int, ns_id text, workflow_id text, run_id text) */
  GT_SQL_EXECUTION_DELETE,
  /* (shard_id int, ns_id text, workflow_id text, run_id text) every batch of the run */
  GT_SQL_HISTORY_DELETE,
  /* (shard_id int, ns_id text, workflow_id text, run_id text) only while it names run_id */
  GT_SQL_CURRENT_DELETE,
  /* (ns_id text, run_id text) */
  GT_SQL_VISIBILITY_DELETE,

  /* --- a new workflow id's first run, without reading first --- */
  /* (as GT_SQL_CURRENT_UPSERT) plain insert: fails (GT_EEXISTS) when the workflow id
   * already has a row, so a start may be written before anyone looked */
  GT_SQL_CURRENT_INSERT,

  /* --- the visibility outbox (actors/visibility/vis_outbox.c): used only when
   * persistence.visibilityStore names another database than defaultStore --- */
  /* (shard_id int, task_id int, data blob: the packed visibility change) in the default
   * store, in the run's own batch */
  GT_SQL_VISIBILITY_TASK_INSERT,
  /* (shard_id int, task_id int) once the change is in the visibility store */
  GT_SQL_VISIBILITY_TASK_DELETE,
  /* (shard_id int, limit int) -> (task_id int, data blob) ordered by task_id */
  GT_SQL_VISIBILITY_TASK_SCAN,
  /* (as GT_SQL_VISIBILITY_UPSERT) in the visibility store: the update is skipped when the
   * row already holds a longer history (a change applied late, after a newer one, by the
   * outbox's sweep) */
  GT_SQL_VISIBILITY_APPLY,

  GT_SQL__COUNT
} gt_sql_stmt_t;

typedef enum { GT_VAL_NULL = 0, GT_VAL_INT, GT_VAL_TEXT, GT_VAL_BLOB } gt_val_kind_t;

typedef struct gt_val {
  gt_val_kind_t kind;
  int64_t i;       /* GT_VAL_INT */
  const void *p;   /* GT_VAL_TEXT / GT_VAL_BLOB: bytes (text need not be NUL-terminated) */
  size_t len;      /* byte length of p */
} gt_val_t;

#define GT_STORE_MAX_PARAMS 16

static inline gt_val_t gt_val_int(int64_t i) { return (gt_val_t){GT_VAL_INT, i, 0, 0}; }
static inline gt_val_t gt_val_blob(const void *p, size_t n) {
  return (gt_val_t){GT_VAL_BLOB, 0, p, n};
}
gt_val_t gt_val_text(const char *s); /* strlen(s); NULL -> GT_VAL_NULL */
static inline gt_val_t gt_val_textn(const char *s, size_t n) {
  return (gt_val_t){GT_VAL_TEXT, 0, s, n};
}

typedef struct gt_store_op {
  gt_sql_stmt_t stmt;
  int nparams;
  gt_val_t params[GT_STORE_MAX_PARAMS]; /* the first nparams; the rest may be unset */
  int expect_rows; /* -1: any; otherwise rows changed must equal it (GT_ECONFLICT if not) */
} gt_store_op_t;

/* A result set: rows * cols values, row-major. Text/blob pointers live as long as the set. */
typedef struct gt_rows {
  int nrows;
  int ncols;
  const gt_val_t *vals; /* vals[r * ncols + c] */
} gt_rows_t;

static inline const gt_val_t *gt_rows_at(const gt_rows_t *rs, int r, int c) {
  return &rs->vals[(size_t)r * (size_t)rs->ncols + (size_t)c];
}

typedef struct gt_store gt_store_t;

typedef enum { GT_STORE_SQLITE = 0, GT_STORE_POSTGRES = 1 } gt_store_backend_t;

typedef struct gt_store_config {
  gt_store_backend_t backend;
  /* SQLite: a file path, or ":memory:" (or NULL) for a private in-memory database. */
  const char *sqlite_path;
  int sqlite_synchronous_full; /* 1: synchronous=FULL; 0: NORMAL (WAL) */
  int reader_threads;          /* 0 = 2 */
  /* PostgreSQL (a later issue): conninfo string. */
  const char *pg_conninfo;
  /* PostgreSQL: Temporal's maxConns, a bound on the store's connections; 0 = none. The
   * readers keep reader_threads; the writer gets what is left of it, 1 to
   * GT_PG_WRITER_CONNS (2, pg_int.h) connections. */
  int pg_max_conns;
  /* PostgreSQL: Temporal's maxConnLifetime in ms: a connection this old is closed and
   * opened again before its next request (never during one); 0 = kept for good. */
  int64_t pg_conn_lifetime_ms;
  int num_shards; /* rows created in `shards` on first open */
} gt_store_config_t;

/* Opens the database, creates the schema when absent (schema/ + version check: a database of
 * another schema version, or a file that is not a database, is refused with GT_ECORRUPT and a
 * logged reason), starts the writer and reader threads. OUT: *out.
 * Returns 0, GT_EIO, GT_ECORRUPT, GT_ENOMEM, GT_EINVAL. */
int gt_store_open(gt_store_t **out, const gt_store_config_t *cfg);

/* Drains every queued batch and read (their completions run), stops the threads, closes the
 * database. Blocks. */
void gt_store_close(gt_store_t *st);

/* Acquires shard ownership: increments shards.range_id for shard_id (creating the row with
 * range_id 1 when absent) and returns the new value. Synchronous; start-up only.
 * OUT: *range_id. Returns 0, GT_EIO. */
int gt_store_acquire_shard_sync(gt_store_t *st, int shard_id, const char *owner,
                                int64_t *range_id);

/* Completion of a write batch. rc: 0, GT_EFENCED, GT_ECONFLICT, GT_EEXISTS, GT_EIO.
 * failed_op: index of the op that failed (or -1). */
typedef void (*gt_store_write_cb)(void *ctx, int rc, int failed_op);

/* Queues an atomic batch of ops, fenced by (shard_id, range_id); shard_id < 0 = no fence.
 * Copies ops and every value. cb may be NULL. Returns 0 (cb will run exactly once),
 * GT_ENOMEM, GT_ECLOSED, GT_EINVAL (cb never runs). */
int gt_store_write(gt_store_t *st, int shard_id, int64_t range_id, const gt_store_op_t *ops,
                   int nops, gt_store_write_cb cb, void *ctx);

/* A write chain: batches that build on each other in submission order (a workflow's
 * transactions, each appending events after the previous one's). Once a batch of a chain
 * fails (any error, an unknown outcome included), every later batch of the chain fails
 * with GT_EUNAVAIL and nothing of it is applied: a batch never commits without the ones
 * submitted before it on its chain, so a history cannot get a gap even when the caller
 * submits before it knows the earlier outcomes. A chain's batches must all carry one
 * shard_id (the order backends keep is per shard). The caller owns the chain (zeroed:
 * intact) and keeps it alive until each of its batches has completed; a failed chain
 * stays failed. */
typedef struct gt_store_chain {
  _Atomic int failed;
} gt_store_chain_t;

/* gt_store_write for a batch of `chain` (NULL: none, as gt_store_write). */
int gt_store_write_chained(gt_store_t *st, int shard_id, int64_t range_id,
                           const gt_store_op_t *ops, int nops, gt_store_write_cb cb, void *ctx,
                           gt_store_chain_t *chain);

/* Completion of a read: rc 0 with rows (possibly 0 rows), or GT_EIO with rows NULL. */
typedef void (*gt_store_read_cb)(void *ctx, int rc, const gt_rows_t *rows);

/* Queues one read statement. Copies the op. Returns 0 (cb runs exactly once), GT_ENOMEM,
 * GT_ECLOSED, GT_EINVAL. */
int gt_store_read(gt_store_t *st, const gt_store_op_t *op, gt_store_read_cb cb, void *ctx);

/* The backend the store runs on: callers that build SQL text (gt_store_read_sql) pick the
 * dialect with it. */
gt_store_backend_t gt_store_backend(const gt_store_t *st);

/* The most parameters a gt_store_read_sql may bind. */
#define GT_STORE_SQL_MAX_PARAMS 1024

/* Queues one read given as SQL text in the store's dialect (SQLite: ?1..?N, PostgreSQL:
 * $1..$N), with bound values only: the text must never carry a value. It is prepared per
 * call (not cached). Result columns as the SQL selects them (int, text or blob; PostgreSQL
 * types int2/4/8, bool, text, bytea). Copies sql and params.
 * Returns 0 (cb runs exactly once: rc 0 with rows, or GT_EIO, e.g. a bad statement),
 * GT_ENOMEM, GT_ECLOSED, GT_EINVAL (cb never runs). */
int gt_store_read_sql(gt_store_t *st, const char *sql, const gt_val_t *params, int nparams,
                      gt_store_read_cb cb, void *ctx);
/* Its synchronous form (tests, tools); rows until gt_store_rows_free. */
int gt_store_read_sql_sync(gt_store_t *st, const char *sql, const gt_val_t *params,
                           int nparams, gt_rows_t **rows);

/* Synchronous forms for start-up, tools and tests (owning thread; not while serving on a
 * scheduler thread). gt_store_read_sync's rows stay valid until gt_store_rows_free. */
int gt_store_write_sync(gt_store_t *st, int shard_id, int64_t range_id,
                        const gt_store_op_t *ops, int nops, int *failed_op);
int gt_store_read_sync(gt_store_t *st, const gt_store_op_t *op, gt_rows_t **rows);
void gt_store_rows_free(gt_rows_t *rows);

/* Counters for metrics and gtctl (any thread; approximate). */
typedef struct gt_store_stats {
  uint64_t batches_committed;
  uint64_t transactions;   /* commits; batches/transactions = the group-commit factor */
  uint64_t batches_failed;
  uint64_t batches_fenced; /* of batches_failed: refused by the shard fence */
  uint64_t reads;
  uint64_t reads_failed;   /* of reads: an error other than GT_ENOTFOUND */
  uint32_t queue_depth;
} gt_store_stats_t;
void gt_store_get_stats(gt_store_t *st, gt_store_stats_t *out);

/* A snapshot of the submit-to-completion latency of write batches (reads = 0) or reads
 * (reads = 1): queueing, the transaction, and for a durable write its fsync. Any thread;
 * approximate under load (the buckets are read one by one), but _count is the sum of
 * the buckets taken. */
struct gt_metrics_hist;
void gt_store_latency(gt_store_t *st, int reads, struct gt_metrics_hist *out);

#endif
