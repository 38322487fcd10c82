/*
 * statements.c: the SQL of every named statement (store.h) for SQLite, preparing them per
 * connection, binding values, running writes and reads, mapping SQLite errors.
 *
 * DESIGN
 *   SQL[] is indexed by GT_SQL_* then the internal GT__SQ_* ids (sqlite_int.h). Parameters
 *   are numbered ?1..?N in the order store.h lists them, so a statement may use one twice
 *   (TASK_ID_MAX) and binding is a plain loop. Every statement is prepared once per
 *   connection with SQLITE_PREPARE_PERSISTENT and reset (and its bindings cleared) after
 *   each use, so nothing keeps pointing into a freed batch.
 *   Values are bound SQLITE_STATIC: the batch/read copy outlives the step.
 *   Upserts of hot rows (current_executions, visibility) are INSERT ... ON CONFLICT DO
 *   UPDATE, not INSERT OR REPLACE: REPLACE deletes the row and inserts it under a new rowid,
 *   rewriting an entry in every index; the update in place dirties only the row's page, so
 *   closing a run writes fewer pages to the WAL (fewer bytes for each commit's fsync).
 *
 * INVARIANTS
 *   - After any function here returns, no statement of the connection is mid-step: every
 *     path resets what it stepped (so COMMIT/ROLLBACK and sqlite3_close never see an
 *     active statement).
 *   - SQLITE_CONSTRAINT is the only code that maps to GT_EEXISTS; every other failure is
 *     GT_EIO with a log line naming its cause.
 *
 * THREADS
 *   The thread owning the connection (see sqlite_int.h).
 */
#include <string.h>

#include "persistence/sqlite/sqlite_int.h"
#include "persistence/store_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* The current_executions insert: GT_SQL_CURRENT_INSERT as is, GT_SQL_CURRENT_UPSERT with
 * its ON CONFLICT clause. */
#define CURRENT_INSERT_SQL                                                         \
  "INSERT INTO current_executions (shard_id, namespace_id, workflow_id, run_id, "  \
  "create_request_id, state, status, start_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"

#define VIS_COLS                                                                   \
  "namespace_id, run_id, workflow_id, workflow_type, task_queue, status, "         \
  "start_time_ns, execution_time_ns, close_time_ns, history_length, memo, "        \
  "search_attributes"

/* A run's workflow id, type, task queue and start time are its own for good: the update
 * leaves them (and the indexes on them) alone. */
#define VISIBILITY_UPSERT_SQL                                                      \
  "INSERT INTO visibility (" VIS_COLS ", search_json) VALUES "                     \
  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "                      \
  "ON CONFLICT (namespace_id, run_id) DO UPDATE SET "                              \
  "status = excluded.status, "                                                     \
  "execution_time_ns = excluded.execution_time_ns, "                               \
  "close_time_ns = excluded.close_time_ns, history_length = excluded.history_length, " \
  "memo = excluded.memo, search_attributes = excluded.search_attributes, "         \
  "search_json = excluded.search_json"

static const char *const SQL[GT__SQ__COUNT] = {
    [GT_SQL_NAMESPACE_UPSERT] = "INSERT OR REPLACE INTO namespaces (id, name, data, "
                                "is_default) VALUES (?1, ?2, ?3, ?4)",
    [GT_SQL_EXECUTION_INSERT] =
        "INSERT INTO executions (shard_id, namespace_id, workflow_id, run_id, "
        "next_event_id, db_version, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [GT_SQL_EXECUTION_UPDATE] =
        "UPDATE executions SET next_event_id = ?1, db_version = ?2, state = ?3 "
        "WHERE shard_id = ?4 AND namespace_id = ?5 AND workflow_id = ?6 "
        "AND run_id = ?7 AND db_version = ?8",
    [GT_SQL_CURRENT_UPSERT] =
        CURRENT_INSERT_SQL " ON CONFLICT (shard_id, namespace_id, workflow_id) DO UPDATE SET "
        "run_id = excluded.run_id, create_request_id = excluded.create_request_id, "
        "state = excluded.state, status = excluded.status, "
        "start_time = excluded.start_time",
    [GT_SQL_HISTORY_APPEND] =
        "INSERT INTO history (shard_id, namespace_id, workflow_id, run_id, "
        "first_event_id, last_event_id, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [GT_SQL_TRANSFER_TASK_INSERT] =
        "INSERT INTO transfer_tasks (shard_id, task_id, data) VALUES (?1, ?2, ?3)",
    [GT_SQL_TRANSFER_TASK_DELETE] =
        "DELETE FROM transfer_tasks WHERE shard_id = ?1 AND task_id = ?2",
    [GT_SQL_TIMER_TASK_INSERT] = "INSERT INTO timer_tasks (shard_id, fire_time_ns, "
                                 "task_id, data) VALUES (?1, ?2, ?3, ?4)",
    [GT_SQL_TIMER_TASK_DELETE] = "DELETE FROM timer_tasks WHERE shard_id = ?1 AND "
                                 "fire_time_ns = ?2 AND task_id = ?3",
    [GT_SQL_TQ_TASK_INSERT] = "INSERT INTO task_queue_tasks (namespace_id, task_queue, "
                              "kind, task_id, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    [GT_SQL_TQ_TASK_DELETE] = "DELETE FROM task_queue_tasks WHERE namespace_id = ?1 "
                              "AND task_queue = ?2 AND kind = ?3 AND task_id = ?4",
    [GT_SQL_VISIBILITY_UPSERT] = VISIBILITY_UPSERT_SQL,
    [GT_SQL_NAMESPACE_LIST] =
        "SELECT id, name, data, is_default FROM namespaces ORDER BY name",
    [GT_SQL_EXECUTION_GET] =
        "SELECT next_event_id, db_version, state FROM executions WHERE shard_id = ?1 "
        "AND namespace_id = ?2 AND workflow_id = ?3 AND run_id = ?4",
    [GT_SQL_CURRENT_GET] =
        "SELECT run_id, create_request_id, state, status, start_time FROM "
        "current_executions WHERE shard_id = ?1 AND namespace_id = ?2 "
        "AND workflow_id = ?3",
    [GT_SQL_HISTORY_GET] =
        "SELECT first_event_id, last_event_id, data FROM history WHERE shard_id = ?1 "
        "AND namespace_id = ?2 AND workflow_id = ?3 AND run_id = ?4 "
        "AND first_event_id >= ?5 ORDER BY first_event_id",
    [GT_SQL_TRANSFER_TASK_SCAN] = "SELECT task_id, data FROM transfer_tasks WHERE "
                                  "shard_id = ?1 ORDER BY task_id",
    [GT_SQL_TIMER_TASK_SCAN] =
        "SELECT fire_time_ns, task_id, data FROM timer_tasks WHERE shard_id = ?1 "
        "AND fire_time_ns <= ?2 ORDER BY fire_time_ns, task_id LIMIT ?3",
    [GT_SQL_TQ_TASK_SCAN] =
        "SELECT task_id, data FROM task_queue_tasks WHERE namespace_id = ?1 AND "
        "task_queue = ?2 AND kind = ?3 ORDER BY task_id LIMIT ?4",
    [GT_SQL_VISIBILITY_GET] = "SELECT " VIS_COLS " FROM visibility WHERE "
                              "namespace_id = ?1 AND run_id = ?2",
    [GT_SQL_VISIBILITY_LIST] = "SELECT " VIS_COLS " FROM visibility WHERE "
                               "namespace_id = ?1 ORDER BY start_time_ns DESC, "
                               "run_id DESC LIMIT ?2 OFFSET ?3",
    /* visibility_tasks too: task ids are allocated per shard across all queues. */
    [GT_SQL_TASK_ID_MAX] =
        "SELECT max(coalesce((SELECT max(task_id) FROM transfer_tasks WHERE "
        "shard_id = ?1), 0), coalesce((SELECT max(task_id) FROM timer_tasks WHERE "
        "shard_id = ?1), 0), coalesce((SELECT max(task_id) FROM visibility_tasks "
        "WHERE shard_id = ?1), 0))",

    [GT_SQL_CURRENT_LIST_RUNNING] =
        "SELECT c.namespace_id, c.workflow_id, e.state FROM current_executions c "
        "LEFT JOIN executions e ON e.shard_id = c.shard_id AND "
        "e.namespace_id = c.namespace_id AND e.workflow_id = c.workflow_id AND "
        "e.run_id = c.run_id WHERE c.shard_id = ?1 AND c.state = 1",
    [GT_SQL_SEARCH_ATTR_UPSERT] = "INSERT OR REPLACE INTO search_attributes "
                                  "(namespace_id, name, type) VALUES (?1, ?2, ?3)",
    [GT_SQL_SEARCH_ATTR_DELETE] = "DELETE FROM search_attributes WHERE namespace_id = ?1 "
                                  "AND name = ?2",
    [GT_SQL_VISIBILITY_EXPIRED] =
        "SELECT workflow_id, run_id FROM visibility WHERE namespace_id = ?1 AND "
        "close_time_ns > 0 AND close_time_ns < ?2 ORDER BY close_time_ns LIMIT ?3",
    [GT_SQL_EXECUTION_DELETE] =
        "DELETE FROM executions WHERE shard_id = ?1 AND namespace_id = ?2 AND "
        "workflow_id = ?3 AND run_id = ?4",
    [GT_SQL_HISTORY_DELETE] =
        "DELETE FROM history WHERE shard_id = ?1 AND namespace_id = ?2 AND "
        "workflow_id = ?3 AND run_id = ?4",
    [GT_SQL_CURRENT_DELETE] =
        "DELETE FROM current_executions WHERE shard_id = ?1 AND namespace_id = ?2 AND "
        "workflow_id = ?3 AND run_id = ?4",
    [GT_SQL_VISIBILITY_DELETE] =
        "DELETE FROM visibility WHERE namespace_id = ?1 AND run_id = ?2",
    [GT_SQL_CURRENT_INSERT] = CURRENT_INSERT_SQL,
    [GT_SQL_VISIBILITY_TASK_INSERT] =
        "INSERT INTO visibility_tasks (shard_id, task_id, data) VALUES (?1, ?2, ?3)",
    [GT_SQL_VISIBILITY_TASK_DELETE] =
        "DELETE FROM visibility_tasks WHERE shard_id = ?1 AND task_id = ?2",
    [GT_SQL_VISIBILITY_TASK_SCAN] = "SELECT task_id, data FROM visibility_tasks WHERE "
                                    "shard_id = ?1 ORDER BY task_id LIMIT ?2",
    [GT_SQL_VISIBILITY_APPLY] =
        VISIBILITY_UPSERT_SQL " WHERE excluded.history_length >= visibility.history_length",

    [GT__SQ_BEGIN] = "BEGIN IMMEDIATE",
    [GT__SQ_COMMIT] = "COMMIT",
    [GT__SQ_ROLLBACK] = "ROLLBACK",
    [GT__SQ_SAVEPOINT] = "SAVEPOINT b",
    [GT__SQ_RELEASE] = "RELEASE b",
    [GT__SQ_ROLLBACK_TO] = "ROLLBACK TO b",
    [GT__SQ_SHARD_RANGE] = "SELECT range_id FROM shards WHERE shard_id = ?1",
    [GT__SQ_SHARD_ENSURE] = "INSERT OR IGNORE INTO shards (shard_id, range_id, owner) "
                            "VALUES (?1, 0, ?2)",
    [GT__SQ_SHARD_BUMP] = "UPDATE shards SET range_id = range_id + 1, owner = ?2 "
                          "WHERE shard_id = ?1",
};

int gt__sqlite_map(sqlite3 *db, int src, const char *what) {
  if ((src & 0xff) == SQLITE_CONSTRAINT)
    return GT_EEXISTS;
  int prim = src & 0xff;
  const char *id = (prim == SQLITE_FULL || prim == SQLITE_IOERR) ? "STORE-SQLITE-IO"
                                                                    : "STORE-SQLITE-ERR";
  gt_log_error(id, "%s failed: %s (%s, code %d)", what, sqlite3_errstr(src),
               db ? sqlite3_errmsg(db) : "-", src);
  return GT_EIO;
}

int gt__sqlite_conn_prepare(gt__sqlite_conn_t *c, int reads_only) {
  for (int id = 0; id < GT__SQ__COUNT; id++) {
    if (reads_only && (id >= GT_SQL__COUNT || !gt__store_stmt_info[id].is_read))
      continue;
    GT_ASSERT(SQL[id]);
    int rc = sqlite3_prepare_v3(c->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT,
                                &c->stmt[id], NULL);
    if (rc != SQLITE_OK) {
      gt_log_error("STORE-SQLITE-PREPARE", "statement %d: %s", id, sqlite3_errmsg(c->db));
      return GT_EIO;
    }
    /* The contract's parameter counts and our SQL must agree. */
    GT_ASSERT(id >= GT_SQL__COUNT ||
              sqlite3_bind_parameter_count(c->stmt[id]) == gt__store_stmt_info[id].nparams);
  }
  return 0;
}

void gt__sqlite_conn_close(gt__sqlite_conn_t *c) {
  if (!c->db)
    return;
  for (int id = 0; id < GT__SQ__COUNT; id++) {
    sqlite3_finalize(c->stmt[id]);
    c->stmt[id] = NULL;
  }
  int rc = sqlite3_close(c->db);
  if (rc != SQLITE_OK)
    gt_log_error("STORE-SQLITE-CLOSE", "sqlite3_close: %s", sqlite3_errstr(rc));
  c->db = NULL;
}

int gt__sqlite_step_simple(gt__sqlite_conn_t *c, int id) {
  sqlite3_stmt *s = c->stmt[id];
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  return rc;
}

/* Binds vals[0..n) as ?1..?N. Returns a SQLite code. */
static int bind_vals(sqlite3_stmt *s, const gt_val_t *vals, int n) {
  for (int i = 0; i < n; i++) {
    const gt_val_t *v = &vals[i];
    int rc;
    switch (v->kind) {
    case GT_VAL_INT:
      rc = sqlite3_bind_int64(s, i + 1, v->i);
      break;
    case GT_VAL_TEXT:
      rc = sqlite3_bind_text64(s, i + 1, v->p, v->len, SQLITE_STATIC, SQLITE_UTF8);
      break;
    case GT_VAL_BLOB: /* a NULL pointer would bind NULL: keep empty blobs blobs */
      rc = v->len ? sqlite3_bind_blob64(s, i + 1, v->p, v->len, SQLITE_STATIC)
                  : sqlite3_bind_zeroblob(s, i + 1, 0);
      break;
    default:
      rc = sqlite3_bind_null(s, i + 1);
      break;
    }
    if (rc != SQLITE_OK)
      return rc;
  }
  return SQLITE_OK;
}

static int bind_op(sqlite3_stmt *s, const gt_store_op_t *op) {
  return bind_vals(s, op->params, op->nparams);
}

static void done_with(sqlite3_stmt *s) {
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

int gt__sqlite_run_write(gt__sqlite_conn_t *c, const gt_store_op_t *op, int *changes) {
  sqlite3_stmt *s = c->stmt[op->stmt];
  *changes = 0;
  int rc = bind_op(s, op);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  int out = 0;
  if (rc == SQLITE_DONE)
    *changes = sqlite3_changes(c->db);
  else if ((rc & 0xff) == SQLITE_CONSTRAINT) /* an insert of an existing row: no log */
    out = GT_EEXISTS;
  else
    out = gt__sqlite_map(c->db, rc, "a write"); /* before the reset: errmsg is still set */
  done_with(s);
  return out;
}

int gt__sqlite_shard_range(gt__sqlite_conn_t *c, int shard_id, int64_t *range_id) {
  sqlite3_stmt *s = c->stmt[GT__SQ_SHARD_RANGE];
  *range_id = -1;
  sqlite3_bind_int64(s, 1, shard_id);
  int rc = sqlite3_step(s);
  int out = 0;
  if (rc == SQLITE_ROW)
    *range_id = sqlite3_column_int64(s, 0);
  else if (rc != SQLITE_DONE)
    out = gt__sqlite_map(c->db, rc, "reading shards.range_id");
  done_with(s);
  return out;
}

int gt__sqlite_shard_bump(gt__sqlite_conn_t *c, int shard_id, const char *owner) {
  static const int ids[2] = {GT__SQ_SHARD_ENSURE, GT__SQ_SHARD_BUMP};
  for (int k = 0; k < 2; k++) {
    sqlite3_stmt *s = c->stmt[ids[k]];
    sqlite3_bind_int64(s, 1, shard_id);
    sqlite3_bind_text(s, 2, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    int out = rc == SQLITE_DONE ? 0 : gt__sqlite_map(c->db, rc, "acquiring a shard");
    done_with(s);
    if (out)
      return out;
  }
  return 0;
}

/* Appends column `col` of the current row to the builder. Returns 0 or GT_ENOMEM. */
static int add_column(gt__rows_builder_t *b, sqlite3_stmt *s, int col) {
  switch (sqlite3_column_type(s, col)) {
  case SQLITE_INTEGER:
  case SQLITE_FLOAT:
    return gt__rows_add(b, GT_VAL_INT, sqlite3_column_int64(s, col), NULL, 0);
  case SQLITE_TEXT: {
    const unsigned char *t = sqlite3_column_text(s, col);
    return gt__rows_add(b, GT_VAL_TEXT, 0, t, (size_t)sqlite3_column_bytes(s, col));
  }
  case SQLITE_BLOB: {
    const void *p = sqlite3_column_blob(s, col);
    return gt__rows_add(b, GT_VAL_BLOB, 0, p, (size_t)sqlite3_column_bytes(s, col));
  }
  default:
    return gt__rows_add(b, GT_VAL_NULL, 0, NULL, 0);
  }
}

/* Steps s (bound already) to the end, copying its rows. Resets s. OUT: *rows.
 * Returns 0 or GT_EIO. */
static int collect_rows(gt__sqlite_conn_t *c, sqlite3_stmt *s, int rc, gt_rows_t **rows) {
  int ncols = sqlite3_column_count(s), err = 0;
  gt__rows_builder_t b;
  gt__rows_init(&b, ncols);
  while (rc == SQLITE_OK || rc == SQLITE_ROW) {
    rc = sqlite3_step(s);
    for (int col = 0; rc == SQLITE_ROW && col < ncols && !err; col++)
      err = add_column(&b, s, col);
    if (err)
      break;
  }
  if (!err && rc != SQLITE_DONE)
    gt__sqlite_map(c->db, rc, "a read");
  else if (err)
    gt_log_error("STORE-SQLITE-ERR", "a read: out of memory copying the rows");
  done_with(s);
  if (err || rc != SQLITE_DONE) {
    gt__rows_fini(&b);
    return GT_EIO;
  }
  return gt__rows_finish(&b, rows) ? GT_EIO : 0;
}

int gt__sqlite_run_read(gt__sqlite_conn_t *c, const gt_store_op_t *op, gt_rows_t **rows) {
  sqlite3_stmt *s = c->stmt[op->stmt];
  GT_ASSERT(s && sqlite3_column_count(s) == gt__store_stmt_info[op->stmt].ncols);
  *rows = NULL;
  return collect_rows(c, s, bind_op(s, op), rows);
}

int gt__sqlite_run_read_sql(gt__sqlite_conn_t *c, const char *sql, const gt_val_t *vals,
                            int n, gt_rows_t **rows) {
  *rows = NULL;
  sqlite3_stmt *s = NULL;
  /* Prepared per call: compiled queries vary, and caching them is not worth the memory. */
  int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
  if (rc != SQLITE_OK) {
    gt__sqlite_map(c->db, rc, "preparing a SQL read");
    sqlite3_finalize(s);
    return GT_EIO;
  }
  if (sqlite3_bind_parameter_count(s) > n) {
    gt_log_error("STORE-SQLITE-ERR", "a SQL read uses %d parameters, %d given",
                 sqlite3_bind_parameter_count(s), n);
    sqlite3_finalize(s);
    return GT_EIO;
  }
  int out = collect_rows(c, s, bind_vals(s, vals, n), rows);
  sqlite3_finalize(s);
  return out;
}
