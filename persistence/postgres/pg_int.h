/*
 * pg_int.h: what the files of the PostgreSQL backend share (pg_schema.c, pg_sql.c,
 * pg_conn.c, pg_store.c). Nothing outside persistence/postgres/ includes it, except the
 * unit test.
 *
 * THREADS
 *   gt__pg_open_check: the thread calling gt_store_open (blocking libpq, start-up only).
 *   A gt__pg_conn_t belongs to one store thread and its uv loop: every function taking
 *   one runs on that thread.
 */
#ifndef GT_PG_INT_H
#define GT_PG_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "persistence/postgres/pq_dl.h"
#include "persistence/store.h"
#include "persistence/store_int.h"

/* The schema version this build writes and accepts (cluster_metadata.schema_version). */
#define GT_PG_SCHEMA_VERSION 2

/* The writer's connections (pg_store.c), each with a group in flight, so one group's
 * statements overlap another's COMMIT (its WAL flush) and PostgreSQL's group commit can
 * merge their flushes. Batches are spread by shard (shard % W): more connections than
 * shards stay idle, and each connection's groups are smaller, so each batch carries more
 * of the per-group cost (round trips, BEGIN/COMMIT, fences). tools/bench.sh (4 shards,
 * PostgreSQL on the same 2 busy cores, runs +-25% apart): against one connection, W = 2
 * gave hello/s ~+15% and steps10 even, at ~+15% server CPU per workflow; W = 4 and 8
 * cost ~+40% CPU and lost ~20% of steps10: the machine is CPU-bound more than it waits
 * for flushes. A store config's pg_max_conns lowers it. */
#define GT_PG_WRITER_CONNS 2

/* Seconds libpq may spend connecting, unless the conninfo says otherwise. */
#define GT_PG_CONNECT_TIMEOUT_S 5

/* The embedded schema (pg_schema.c); identical to persistence/schema/postgres/v2.sql. */
extern const char gt__pg_schema_v2[];

/* Statements: the public GT_SQL_* ids, then the backend's own. */
enum {
  GT__PG_SHARD_RANGE = GT_SQL__COUNT, /* (shard_id) -> range_id FOR SHARE: the fence */
  GT__PG_ACQUIRE,                     /* (shard_id, owner) -> the new range_id */
  /* The multi-row forms of the writes a workflow makes (pg_arrays.c): the parameters of
   * the one-row statement, each an array with one element per row, in the same order. */
  GT__PG_ARR_EXECUTION_INSERT,
  GT__PG_ARR_CURRENT_INSERT,
  GT__PG_ARR_CURRENT_UPSERT,
  GT__PG_ARR_HISTORY_APPEND,
  GT__PG_ARR_VISIBILITY_UPSERT,
  GT__PG_ARR_VISIBILITY_TASK_INSERT, /* the visibility outbox's rows (vis_outbox.c) */
  GT__PG_ARR_VISIBILITY_APPLY,       /* ...applied to the visibility store */
  GT__PG__COUNT
};

/* --- pg_sql.c --- */

/* The SQL text of statement id. */
const char *gt__pg_sql(int id);

/* Parameter types of statement id, one char per parameter: 'i' int8, 't' text,
 * 'b' bytea; 'I', 'T', 'B' an array of them. Its length is the parameter count. */
const char *gt__pg_sig(int id);

/* The type oid of a signature character: int8, text, bytea, or an array of one. */
unsigned gt__pg_type_oid(char sig);

/* libpq connection keywords/values for `conninfo`: our defaults (connect_timeout,
 * application_name, synchronous_commit=on) then the conninfo itself, expanded, so the
 * conninfo overrides a default. Pass both to PQconnect*Params with expand_dbname = 1.
 * The arrays point at static strings and at conninfo. */
typedef struct gt__pg_params {
  const char *keys[5];
  const char *vals[5];
} gt__pg_params_t;
void gt__pg_params_init(gt__pg_params_t *p, const char *conninfo);

/* Maps a failed result to GT_E*: unique violation (23505) -> GT_EEXISTS (no log);
 * everything else -> GT_EIO, logged with `what` and the server's message. */
int gt__pg_map_error(const PGresult *res, const char *what);

/* Appends the rows of a binary-format result to a new result set.
 * OUT: *rows. Returns 0, GT_EIO (a column of an unexpected type), GT_ENOMEM. */
int gt__pg_rows_from(const PGresult *res, int ncols, gt_rows_t **rows);

/* --- pg_schema.c --- */

/* Connects (blocking, connect_timeout bounded), creates the schema when our tables are
 * absent (with shards 1..num_shards) or checks its version, disconnects.
 * Returns 0, GT_EIO (unreachable, or a server error; logged), GT_ECORRUPT (another schema
 * version, or foreign tables with our names; logged). */
int gt__pg_open_check(const char *conninfo, int num_shards);

/* --- pg_conn.c: one non-blocking connection in pipeline mode on a uv loop --- */

enum { GT__PG_DOWN = 0, GT__PG_CONNECTING, GT__PG_PREPARING, GT__PG_READY };

typedef struct gt__pg_conn gt__pg_conn_t;

/* A round ended: rc 0 with one result per query in c->res (NULL for a query that
 * produced none), or GT_EIO when the connection was lost (c->res must not be read). The
 * callback may start the next round only after it has finished reading c->res. */
typedef void (*gt__pg_round_cb)(gt__pg_conn_t *c, int rc);

/* The connection came up (up = 1: connected, statements prepared) or went down / failed
 * to come up (up = 0). */
typedef void (*gt__pg_state_cb)(gt__pg_conn_t *c, int up);

struct gt__pg_conn {
  uv_loop_t *loop;
  const gt__pg_params_t *params; /* read-only, outlives the conn */
  gt__pg_state_cb on_state;
  void *data; /* the owner's */
  int state;  /* GT__PG_* */
  PGconn *pg;
  uv_poll_t *poll; /* heap: freed by its close callback (the fd changes per connect) */
  int poll_fd;
  int poll_events;
  uv_timer_t timer; /* connect timeout, and deferred loss (kick) */
  int timer_started;
  int connect_fails; /* consecutive failed attempts (to thin out the logs) */
  int lost_pending; /* a send failed: the loss is reported from the timer, not inline */
  /* the round in flight */
  int busy;
  gt__pg_round_cb cb;
  int nq, qcap;
  PGresult **res; /* res[i]: query i's result, owned until the next round or close */
  int syncs_sent, syncs_recv;
  int qi;      /* the query whose results are being read */
  int cur_has; /* query qi has produced its result; the next NULL ends it */
  int send_failed;
  int last_synced; /* the last query added was followed by a sync */
  uint64_t ready_ms; /* uv_now when it became READY (maxConnLifetime) */
};

/* Sets c up on loop (no connection yet). Returns 0 or GT_ENOMEM. */
int gt__pg_conn_init(gt__pg_conn_t *c, uv_loop_t *loop, const gt__pg_params_t *params,
                     gt__pg_state_cb on_state, void *data);

/* Starts connecting asynchronously (state DOWN only); on_state reports the outcome. */
void gt__pg_conn_start(gt__pg_conn_t *c);

/* 1 when a round can start (READY and not busy). */
static inline int gt__pg_conn_idle(const gt__pg_conn_t *c) {
  return c->state == GT__PG_READY && !c->busy;
}

/* Starts building a round (frees the previous round's results). */
void gt__pg_round_begin(gt__pg_conn_t *c);

/* Queues statement id with op's values (NULL: none), binary results; sync_after: a
 * pipeline sync follows, so an error before it does not abort the queries after it. */
void gt__pg_round_add(gt__pg_conn_t *c, int id, const gt_store_op_t *op, int sync_after);

/* Queues SQL text with vals[0..n) as $1..$N (text form, typed int8/text/bytea; bytea
 * binary), binary results: gt_store_read_sql. */
void gt__pg_round_add_params(gt__pg_conn_t *c, const char *sql, const gt_val_t *vals, int n,
                             int sync_after);

/* Queues SQL text without parameters (BEGIN, SAVEPOINT, ...). */
void gt__pg_round_add_sql(gt__pg_conn_t *c, const char *sql, int sync_after);

/* Sends the round (adding a final sync); cb runs exactly once, later, on the loop. */
void gt__pg_round_send(gt__pg_conn_t *c, gt__pg_round_cb cb);

/* Status helper: 1 if result i exists with status st. */
static inline int gt__pg_res_is(const gt__pg_conn_t *c, int i, ExecStatusType st) {
  return i < c->nq && c->res[i] && PQresultStatus(c->res[i]) == st;
}

/* Replaces an idle connection (gt__pg_conn_idle) by a new one: disconnects and starts
 * connecting again at once, with no loss reported; on_state(c, 1) follows once it is up
 * (or on_state(c, 0) if that fails). */
void gt__pg_conn_recycle(gt__pg_conn_t *c);

/* Connections replaced for their age (maxConnLifetime), a statistic for tests. */
extern atomic_ulong gt__pg_conns_recycled;

/* Disconnects and closes the handles (loop thread). The loop must run once more before
 * the memory of c goes away (uv_close callbacks). */
void gt__pg_conn_close(gt__pg_conn_t *c);

/* --- pg_arrays.c: a write group's ops as multi-row statements (the fast round) --- */

#define GT__PG_ARR_KINDS 8 /* the kinds of op a merged group may hold */

/* A writer slot's plan and buffers for its groups (zeroed = empty; owned by the slot). */
typedef struct gt__pg_arrays {
  int nops[GT__PG_ARR_KINDS]; /* the group's ops of each kind */
  unsigned char *buf;         /* one statement's encoded arrays */
  size_t cap;
  uint64_t *set; /* hashes of the rows met, while fitting a group */
  size_t set_cap, set_bytes;
} gt__pg_arrays_t;

/* 1 when every op of group[0..n) can go in the multi-row statements with the same outcome
 * as one statement per op, and the buffers are ready; 0 otherwise (out of memory too). */
int gt__pg_arrays_fit(gt__store_batch_t *const *group, int n, gt__pg_arrays_t *a);

/* Queues the multi-row statements of the group gt__pg_arrays_fit accepted (no sync). */
void gt__pg_arrays_add(gt__pg_conn_t *c, gt__store_batch_t *const *group, int n,
                       gt__pg_arrays_t *a);

/* 1 when the results from c->res[first] on are what the statements must report. */
int gt__pg_arrays_ok(const gt__pg_conn_t *c, int first, const gt__pg_arrays_t *a);

/* Frees the buffers. */
void gt__pg_arrays_fini(gt__pg_arrays_t *a);

/* Since the process started (for tests): groups sent as multi-row statements; and those
 * whose statements did not all report what they had to (the group was then replayed). */
extern atomic_ulong gt__pg_arrays_groups, gt__pg_arrays_misses;

#endif
