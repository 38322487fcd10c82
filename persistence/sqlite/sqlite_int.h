/*
 * sqlite_int.h: what the files of the SQLite backend share (schema.c, statements.c,
 * sqlite_store.c). Nothing outside persistence/sqlite/ includes it, except the unit test.
 *
 * THREADS
 *   A gt__sqlite_conn_t is used by one thread at a time: the opening thread until the store
 *   thread that owns it starts, then that thread, then the closing thread after the join.
 */
#ifndef GT_SQLITE_INT_H
#define GT_SQLITE_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "persistence/store.h"

/* The schema version this build writes and accepts (cluster_metadata.schema_version). */
#define GT_SQLITE_SCHEMA_VERSION 3

/* The embedded schema (schema.c); identical to persistence/schema/sqlite/v3.sql. */
extern const char gt__sqlite_schema_v3[];

/* The embedded upgrades from versions 1 and 2 (schema.c); identical to
 * persistence/schema/sqlite/upgrade-v1-to-v2.sql and upgrade-v2-to-v3.sql. */
extern const char gt__sqlite_upgrade_v1_v2[];
extern const char gt__sqlite_upgrade_v2_v3[];

/* Statements of the backend: the public GT_SQL_* ids, then internal ones. */
enum {
  GT__SQ_BEGIN = GT_SQL__COUNT, /* BEGIN IMMEDIATE */
  GT__SQ_COMMIT,
  GT__SQ_ROLLBACK,
  GT__SQ_SAVEPOINT,    /* SAVEPOINT b: one per batch inside the group transaction */
  GT__SQ_RELEASE,      /* RELEASE b */
  GT__SQ_ROLLBACK_TO,  /* ROLLBACK TO b */
  GT__SQ_SHARD_RANGE,  /* (shard_id) -> range_id: the fence and acquire's result */
  GT__SQ_SHARD_ENSURE, /* (shard_id, owner) insert or ignore with range_id 0 */
  GT__SQ_SHARD_BUMP,   /* (shard_id, owner) range_id + 1 */
  GT__SQ__COUNT
};

typedef struct gt__sqlite_conn {
  sqlite3 *db;
  sqlite3_stmt *stmt[GT__SQ__COUNT]; /* prepared once (persistent); NULL if not needed */
} gt__sqlite_conn_t;

/* --- schema.c --- */

/* Opens the read-write connection of `path` (NULL or ":memory:" = private in-memory DB),
 * refuses a file that is not ours without writing to it, creates the schema on an empty
 * database (with shards 1..num_shards), sets WAL + synchronous for a file.
 * OUT: *db. Returns 0, GT_EIO, GT_ECORRUPT, GT_ENOMEM. */
int gt__sqlite_open_main(const char *path, int sync_full, int num_shards, sqlite3 **db);

/* Opens a reader connection (query_only) of an existing file DB. OUT: *db.
 * Returns 0 or GT_EIO. */
int gt__sqlite_open_reader(const char *path, sqlite3 **db);

/* --- pcache.c --- */

/* Makes SQLite's page caches skip truncations with nothing to drop (see pcache.c). Call
 * before SQLite initializes (sqlite3_config). Returns 0, or GT_EIO if SQLite refused. */
int gt__sqlite_pcache_install(void);

/* Test hook: truncations skipped and passed to SQLite's cache so far by the connections
 * the calling thread used. Returns 1 if the wrapper is installed, else 0. */
int gt__sqlite_pcache_stats(uint64_t *skipped, uint64_t *passed);

/* --- sqlite_store.c --- */

/* Test and tool hook: runs SQL text on the writer's connection, FIFO with the queued work
 * (e.g. PRAGMA max_page_count to simulate a full disk, or wal_checkpoint). Blocks.
 * Returns 0, GT_EINVAL (not a SQLite store), GT_EIO. */
int gt__sqlite_exec_sync(gt_store_t *st, const char *sql);

/* Test hook: queues fn(arg) to run on the writer thread, FIFO with the queued work, and
 * returns at once; fn may block, holding the writer (tests queue batches behind it to see
 * them grouped). Returns 0, GT_EINVAL, GT_ENOMEM, GT_ECLOSED. */
int gt__sqlite_call_on_writer(gt_store_t *st, void (*fn)(void *), void *arg);

/* --- statements.c --- */

/* Prepares every statement (reads_only: only the GT_SQL_* reads). Returns 0 or GT_EIO. */
int gt__sqlite_conn_prepare(gt__sqlite_conn_t *c, int reads_only);

/* Finalizes every statement and closes the connection (logs if sqlite3_close fails). */
void gt__sqlite_conn_close(gt__sqlite_conn_t *c);

/* Steps a parameterless internal statement to completion. Returns a SQLite code
 * (SQLITE_DONE on success). */
int gt__sqlite_step_simple(gt__sqlite_conn_t *c, int id);

/* Runs one write op. OUT: *changes (rows changed). Returns 0, GT_EEXISTS, GT_EIO. */
int gt__sqlite_run_write(gt__sqlite_conn_t *c, const gt_store_op_t *op, int *changes);

/* Reads shards.range_id. OUT: *range_id (-1 when the row is absent). Returns 0 or GT_EIO. */
int gt__sqlite_shard_range(gt__sqlite_conn_t *c, int shard_id, int64_t *range_id);

/* Runs the acquire statements (ensure + bump) inside the caller's transaction.
 * Returns 0 or GT_EIO. */
int gt__sqlite_shard_bump(gt__sqlite_conn_t *c, int shard_id, const char *owner);

/* Runs one read op. OUT: *rows (one allocation, gt_store_rows_free). Returns 0 or GT_EIO. */
int gt__sqlite_run_read(gt__sqlite_conn_t *c, const gt_store_op_t *op, gt_rows_t **rows);

/* Runs SQL text with vals[0..n) bound as ?1..?N, prepared for this call only.
 * OUT: *rows. Returns 0 or GT_EIO. */
int gt__sqlite_run_read_sql(gt__sqlite_conn_t *c, const char *sql, const gt_val_t *vals,
                            int n, gt_rows_t **rows);

/* Maps a SQLite result code to GT_E*, logging the cause of I/O-class failures under `what`.
 * SQLITE_CONSTRAINT -> GT_EEXISTS; everything else -> GT_EIO. */
int gt__sqlite_map(sqlite3 *db, int src, const char *what);

#endif
