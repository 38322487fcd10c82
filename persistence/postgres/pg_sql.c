/*
 * pg_sql.c: the SQL of every named statement (store.h) for PostgreSQL, their parameter
 * types, the connection parameters, error mapping and result decoding.
 *
 * DESIGN
 *   SQL[] is indexed by GT_SQL_* then the internal GT__PG_* ids (pg_int.h). Parameters are
 *   $1..$N in the order store.h lists them; SIG[] gives each one's type so a statement is
 *   prepared with explicit types and values travel in binary (int8 big-endian, text and
 *   bytea as raw bytes): no quoting, no text round trip for blobs. Results are asked in
 *   binary too and decoded by column type (int2/4/8 -> int, text -> text, bytea -> blob).
 *   "Insert or replace" is INSERT ... ON CONFLICT DO UPDATE (one row changed, as SQLite's
 *   INSERT OR REPLACE reports). The fence reads shards.range_id FOR SHARE: the row stays
 *   locked until the group commits, so an acquire by another node waits for it instead of
 *   slipping between the check and the commit.
 *
 * INVARIANTS
 *   - strlen(SIG[id]) equals the contract's parameter count (asserted by the unit test).
 *   - 23505 (unique_violation) is the only error that maps to GT_EEXISTS.
 *
 * THREADS
 *   Pure functions and constant tables: any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "persistence/postgres/pg_int.h"
#include "persistence/store_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* Each written table's INSERT head and, for the upserts, the ON CONFLICT clause: shared
 * by the one-row statements (VALUES) and their multi-row forms (SELECT * FROM unnest of
 * one array per column, pg_arrays.c). */
#define EXECUTIONS_INSERT                                                          \
  "INSERT INTO executions (shard_id, namespace_id, workflow_id, run_id, "          \
  "next_event_id, db_version, state) "
#define CURRENT_INSERT                                                             \
  "INSERT INTO current_executions (shard_id, namespace_id, workflow_id, run_id, "  \
  "create_request_id, state, status, start_time) "
#define CURRENT_CONFLICT                                                           \
  " ON CONFLICT (shard_id, namespace_id, workflow_id) DO UPDATE SET "              \
  "run_id = EXCLUDED.run_id, create_request_id = EXCLUDED.create_request_id, "     \
  "state = EXCLUDED.state, status = EXCLUDED.status, "                             \
  "start_time = EXCLUDED.start_time"
#define HISTORY_INSERT                                                             \
  "INSERT INTO history (shard_id, namespace_id, workflow_id, run_id, "             \
  "first_event_id, last_event_id, data) "
#define VISIBILITY_INSERT "INSERT INTO visibility (" VIS_COLS ", search_json) "
/* A run's workflow id, type, task queue and start time are its own for good: the update
 * leaves them (and the indexes on them) alone. */
#define VISIBILITY_CONFLICT                                                        \
  " ON CONFLICT (namespace_id, run_id) DO UPDATE SET "                             \
  "status = EXCLUDED.status, "                                                     \
  "execution_time_ns = EXCLUDED.execution_time_ns, "                               \
  "close_time_ns = EXCLUDED.close_time_ns, "                                       \
  "history_length = EXCLUDED.history_length, memo = EXCLUDED.memo, "               \
  "search_json = EXCLUDED.search_json, "                                           \
  "search_attributes = EXCLUDED.search_attributes"
/* The outbox's apply (vis_outbox.c): a change never replaces a longer history. */
#define VISIBILITY_NEWER " WHERE EXCLUDED.history_length >= visibility.history_length"
#define VISIBILITY_TASK_INSERT "INSERT INTO visibility_tasks (shard_id, task_id, data) "
#define UNNEST13                                                                   \
  "SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
#define VALUES7 "VALUES ($1, $2, $3, $4, $5, $6, $7)"
#define VALUES8 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
#define UNNEST7 "SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7)"
#define UNNEST8 "SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8)"

#define VIS_COLS                                                                   \
  "namespace_id, run_id, workflow_id, workflow_type, task_queue, status, "         \
  "start_time_ns, execution_time_ns, close_time_ns, history_length, memo, "        \
  "search_attributes"

static const char *const SQL[GT__PG__COUNT] = {
    [GT_SQL_NAMESPACE_UPSERT] =
        "INSERT INTO namespaces (id, name, data, is_default) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, data = EXCLUDED.data, "
        "is_default = EXCLUDED.is_default",
    [GT_SQL_EXECUTION_INSERT] = EXECUTIONS_INSERT VALUES7,
    [GT_SQL_EXECUTION_UPDATE] =
        "UPDATE executions SET next_event_id = $1, db_version = $2, state = $3 "
        "WHERE shard_id = $4 AND namespace_id = $5 AND workflow_id = $6 "
        "AND run_id = $7 AND db_version = $8",
    [GT_SQL_CURRENT_UPSERT] = CURRENT_INSERT VALUES8 CURRENT_CONFLICT,
    [GT_SQL_HISTORY_APPEND] = HISTORY_INSERT VALUES7,
    [GT_SQL_TRANSFER_TASK_INSERT] =
        "INSERT INTO transfer_tasks (shard_id, task_id, data) VALUES ($1, $2, $3)",
    [GT_SQL_TRANSFER_TASK_DELETE] =
        "DELETE FROM transfer_tasks WHERE shard_id = $1 AND task_id = $2",
    [GT_SQL_TIMER_TASK_INSERT] = "INSERT INTO timer_tasks (shard_id, fire_time_ns, "
                                 "task_id, data) VALUES ($1, $2, $3, $4)",
    [GT_SQL_TIMER_TASK_DELETE] = "DELETE FROM timer_tasks WHERE shard_id = $1 AND "
                                 "fire_time_ns = $2 AND task_id = $3",
    [GT_SQL_TQ_TASK_INSERT] = "INSERT INTO task_queue_tasks (namespace_id, task_queue, "
                              "kind, task_id, data) VALUES ($1, $2, $3, $4, $5)",
    [GT_SQL_TQ_TASK_DELETE] = "DELETE FROM task_queue_tasks WHERE namespace_id = $1 "
                              "AND task_queue = $2 AND kind = $3 AND task_id = $4",
    [GT_SQL_VISIBILITY_UPSERT] =
        VISIBILITY_INSERT "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        VISIBILITY_CONFLICT,

    [GT_SQL_NAMESPACE_LIST] =
        "SELECT id, name, data, is_default FROM namespaces ORDER BY name",
    [GT_SQL_EXECUTION_GET] =
        "SELECT next_event_id, db_version, state FROM executions WHERE shard_id = $1 "
        "AND namespace_id = $2 AND workflow_id = $3 AND run_id = $4",
    [GT_SQL_CURRENT_GET] =
        "SELECT run_id, create_request_id, state, status, start_time FROM "
        "current_executions WHERE shard_id = $1 AND namespace_id = $2 "
        "AND workflow_id = $3",
    [GT_SQL_HISTORY_GET] =
        "SELECT first_event_id, last_event_id, data FROM history WHERE shard_id = $1 "
        "AND namespace_id = $2 AND workflow_id = $3 AND run_id = $4 "
        "AND first_event_id >= $5 ORDER BY first_event_id",
    [GT_SQL_TRANSFER_TASK_SCAN] = "SELECT task_id, data FROM transfer_tasks WHERE "
                                  "shard_id = $1 ORDER BY task_id",
    [GT_SQL_TIMER_TASK_SCAN] =
        "SELECT fire_time_ns, task_id, data FROM timer_tasks WHERE shard_id = $1 "
        "AND fire_time_ns <= $2 ORDER BY fire_time_ns, task_id LIMIT $3",
    [GT_SQL_TQ_TASK_SCAN] =
        "SELECT task_id, data FROM task_queue_tasks WHERE namespace_id = $1 AND "
        "task_queue = $2 AND kind = $3 ORDER BY task_id LIMIT $4",
    [GT_SQL_VISIBILITY_GET] = "SELECT " VIS_COLS " FROM visibility WHERE "
                              "namespace_id = $1 AND run_id = $2",
    [GT_SQL_VISIBILITY_LIST] = "SELECT " VIS_COLS " FROM visibility WHERE "
                               "namespace_id = $1 ORDER BY start_time_ns DESC, "
                               "run_id DESC LIMIT $2 OFFSET $3",
    /* visibility_tasks too: task ids are allocated per shard across all queues. */
    [GT_SQL_TASK_ID_MAX] =
        "SELECT greatest(coalesce((SELECT max(task_id) FROM transfer_tasks WHERE "
        "shard_id = $1), 0), coalesce((SELECT max(task_id) FROM timer_tasks WHERE "
        "shard_id = $1), 0), coalesce((SELECT max(task_id) FROM visibility_tasks "
        "WHERE shard_id = $1), 0))",
    [GT_SQL_CURRENT_LIST_RUNNING] =
        "SELECT c.namespace_id, c.workflow_id, e.state FROM current_executions c "
        "LEFT JOIN executions e ON e.shard_id = c.shard_id AND "
        "e.namespace_id = c.namespace_id AND e.workflow_id = c.workflow_id AND "
        "e.run_id = c.run_id WHERE c.shard_id = $1 AND c.state = 1 "
        "ORDER BY c.namespace_id, c.workflow_id",
    [GT_SQL_SEARCH_ATTR_UPSERT] =
        "INSERT INTO search_attributes (namespace_id, name, type) VALUES ($1, $2, $3) "
        "ON CONFLICT (namespace_id, name) DO UPDATE SET type = EXCLUDED.type",
    [GT_SQL_SEARCH_ATTR_DELETE] =
        "DELETE FROM search_attributes WHERE namespace_id = $1 AND name = $2",
    [GT_SQL_VISIBILITY_EXPIRED] =
        "SELECT workflow_id, run_id FROM visibility WHERE namespace_id = $1 AND "
        "close_time_ns > 0 AND close_time_ns < $2 ORDER BY close_time_ns LIMIT $3",
    [GT_SQL_EXECUTION_DELETE] =
        "DELETE FROM executions WHERE shard_id = $1 AND namespace_id = $2 AND "
        "workflow_id = $3 AND run_id = $4",
    [GT_SQL_HISTORY_DELETE] =
        "DELETE FROM history WHERE shard_id = $1 AND namespace_id = $2 AND "
        "workflow_id = $3 AND run_id = $4",
    [GT_SQL_CURRENT_DELETE] =
        "DELETE FROM current_executions WHERE shard_id = $1 AND namespace_id = $2 AND "
        "workflow_id = $3 AND run_id = $4",
    [GT_SQL_VISIBILITY_DELETE] =
        "DELETE FROM visibility WHERE namespace_id = $1 AND run_id = $2",
    [GT_SQL_CURRENT_INSERT] = CURRENT_INSERT VALUES8,
    [GT_SQL_VISIBILITY_TASK_INSERT] = VISIBILITY_TASK_INSERT "VALUES ($1, $2, $3)",
    [GT_SQL_VISIBILITY_TASK_DELETE] =
        "DELETE FROM visibility_tasks WHERE shard_id = $1 AND task_id = $2",
    [GT_SQL_VISIBILITY_TASK_SCAN] = "SELECT task_id, data FROM visibility_tasks WHERE "
                                    "shard_id = $1 ORDER BY task_id LIMIT $2",
    [GT_SQL_VISIBILITY_APPLY] =
        VISIBILITY_INSERT "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        VISIBILITY_CONFLICT VISIBILITY_NEWER,

    [GT__PG_SHARD_RANGE] = "SELECT range_id FROM shards WHERE shard_id = $1 FOR SHARE",
    [GT__PG_ACQUIRE] =
        "INSERT INTO shards (shard_id, range_id, owner) VALUES ($1, 1, $2) "
        "ON CONFLICT (shard_id) DO UPDATE SET range_id = shards.range_id + 1, "
        "owner = EXCLUDED.owner RETURNING range_id",

    /* Multi-row forms: one array per parameter of the one-row statement, same order. */
    [GT__PG_ARR_EXECUTION_INSERT] = EXECUTIONS_INSERT UNNEST7,
    [GT__PG_ARR_CURRENT_INSERT] = CURRENT_INSERT UNNEST8,
    [GT__PG_ARR_CURRENT_UPSERT] = CURRENT_INSERT UNNEST8 CURRENT_CONFLICT,
    [GT__PG_ARR_HISTORY_APPEND] = HISTORY_INSERT UNNEST7,
    [GT__PG_ARR_VISIBILITY_UPSERT] =
        VISIBILITY_INSERT UNNEST13 VISIBILITY_CONFLICT,
    [GT__PG_ARR_VISIBILITY_TASK_INSERT] =
        VISIBILITY_TASK_INSERT "SELECT * FROM unnest($1, $2, $3)",
    [GT__PG_ARR_VISIBILITY_APPLY] = VISIBILITY_INSERT UNNEST13 VISIBILITY_CONFLICT VISIBILITY_NEWER,
};

/* Parameter types: i int8, t text, b bytea (store.h lists the same order); I, T, B: an
 * array of int8, text, bytea. */
static const char *const SIG[GT__PG__COUNT] = {
    [GT_SQL_NAMESPACE_UPSERT] = "ttbi",
    [GT_SQL_EXECUTION_INSERT] = "itttiib",
    [GT_SQL_EXECUTION_UPDATE] = "iibittti",
    [GT_SQL_CURRENT_UPSERT] = "ittttiii",
    [GT_SQL_HISTORY_APPEND] = "itttiib",
    [GT_SQL_TRANSFER_TASK_INSERT] = "iib",
    [GT_SQL_TRANSFER_TASK_DELETE] = "ii",
    [GT_SQL_TIMER_TASK_INSERT] = "iiib",
    [GT_SQL_TIMER_TASK_DELETE] = "iii",
    [GT_SQL_TQ_TASK_INSERT] = "ttiib",
    [GT_SQL_TQ_TASK_DELETE] = "ttii",
    [GT_SQL_VISIBILITY_UPSERT] = "tttttiiiiibbt",
    [GT_SQL_NAMESPACE_LIST] = "",
    [GT_SQL_EXECUTION_GET] = "ittt",
    [GT_SQL_CURRENT_GET] = "itt",
    [GT_SQL_HISTORY_GET] = "ittti",
    [GT_SQL_TRANSFER_TASK_SCAN] = "i",
    [GT_SQL_TIMER_TASK_SCAN] = "iii",
    [GT_SQL_TQ_TASK_SCAN] = "ttii",
    [GT_SQL_VISIBILITY_GET] = "tt",
    [GT_SQL_VISIBILITY_LIST] = "tii",
    [GT_SQL_TASK_ID_MAX] = "i",
    [GT_SQL_CURRENT_LIST_RUNNING] = "i",
    [GT_SQL_SEARCH_ATTR_UPSERT] = "tti",
    [GT_SQL_SEARCH_ATTR_DELETE] = "tt",
    [GT_SQL_VISIBILITY_EXPIRED] = "tii",
    [GT_SQL_EXECUTION_DELETE] = "ittt",
    [GT_SQL_HISTORY_DELETE] = "ittt",
    [GT_SQL_CURRENT_DELETE] = "ittt",
    [GT_SQL_VISIBILITY_DELETE] = "tt",
    [GT_SQL_CURRENT_INSERT] = "ittttiii",
    [GT_SQL_VISIBILITY_TASK_INSERT] = "iib",
    [GT_SQL_VISIBILITY_TASK_DELETE] = "ii",
    [GT_SQL_VISIBILITY_TASK_SCAN] = "ii",
    [GT_SQL_VISIBILITY_APPLY] = "tttttiiiiibbt",
    [GT__PG_SHARD_RANGE] = "i",
    [GT__PG_ACQUIRE] = "it",
    /* upper case: an array of that type */
    [GT__PG_ARR_EXECUTION_INSERT] = "ITTTIIB",
    [GT__PG_ARR_CURRENT_INSERT] = "ITTTTIII",
    [GT__PG_ARR_CURRENT_UPSERT] = "ITTTTIII",
    [GT__PG_ARR_HISTORY_APPEND] = "ITTTIIB",
    [GT__PG_ARR_VISIBILITY_UPSERT] = "TTTTTIIIIIBBT",
    [GT__PG_ARR_VISIBILITY_TASK_INSERT] = "IIB",
    [GT__PG_ARR_VISIBILITY_APPLY] = "TTTTTIIIIIBBT",
};

const char *gt__pg_sql(int id) {
  GT_ASSERT(id >= 0 && id < GT__PG__COUNT && SQL[id]);
  return SQL[id];
}

unsigned gt__pg_type_oid(char sig) {
  switch (sig) {
  case 'i': return 20;   /* int8 */
  case 't': return 25;   /* text */
  case 'I': return 1016; /* int8[] */
  case 'T': return 1009; /* text[] */
  case 'B': return 1001; /* bytea[] */
  default: return 17;    /* bytea */
  }
}

const char *gt__pg_sig(int id) {
  GT_ASSERT(id >= 0 && id < GT__PG__COUNT && SIG[id]);
  return SIG[id];
}

void gt__pg_params_init(gt__pg_params_t *p, const char *conninfo) {
  /* "dbname" last: with expand_dbname its connection string overrides our defaults. */
  static const char *const keys[] = {"connect_timeout", "application_name", "options",
                                     "dbname"};
  static const char timeout[] = {'0' + GT_PG_CONNECT_TIMEOUT_S, 0};
  const char *vals[] = {timeout, "genesis-temporal", "-c synchronous_commit=on",
                        conninfo ? conninfo : ""};
  _Static_assert(GT_PG_CONNECT_TIMEOUT_S < 10, "one digit");
  for (int i = 0; i < 4; i++) {
    p->keys[i] = keys[i];
    p->vals[i] = vals[i];
  }
  p->keys[4] = NULL;
  p->vals[4] = NULL;
}

int gt__pg_map_error(const PGresult *res, const char *what) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  if (state && strcmp(state, "23505") == 0)
    return GT_EEXISTS; /* an insert of an existing row: the caller's answer, no log */
  const char *msg = res ? PQresultErrorMessage(res) : "no result";
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
    n--;
  gt_log_error("STORE-PG-ERR", "%s failed: %.*s (sqlstate %s)", what, (int)n, msg,
               state ? state : "-");
  return GT_EIO;
}

/* PostgreSQL type oids (pg_type.dat); stable across versions. */
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_NAME = 19, OID_INT8 = 20, OID_INT2 = 21,
       OID_INT4 = 23, OID_TEXT = 25, OID_VARCHAR = 1043 };

static int64_t be_int(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | p[i];
  if (n < 8 && (v >> (n * 8 - 1)) & 1) /* sign-extend int2/int4 */
    v |= ~(uint64_t)0 << (n * 8);
  return (int64_t)v;
}

/* Appends one binary-format value. Returns 0, GT_EIO (unknown type), GT_ENOMEM. */
static int add_value(gt__rows_builder_t *b, const PGresult *res, int r, int c) {
  if (PQgetisnull(res, r, c))
    return gt__rows_add(b, GT_VAL_NULL, 0, NULL, 0);
  const unsigned char *p = (const unsigned char *)PQgetvalue(res, r, c);
  int len = PQgetlength(res, r, c);
  switch (PQftype(res, c)) {
  case OID_INT8:
  case OID_INT4:
  case OID_INT2:
  case OID_BOOL:
    if (len < 1 || len > 8)
      return GT_EIO;
    return gt__rows_add(b, GT_VAL_INT, be_int(p, len), NULL, 0);
  case OID_TEXT:
  case OID_VARCHAR:
  case OID_NAME:
    return gt__rows_add(b, GT_VAL_TEXT, 0, p, (size_t)len);
  case OID_BYTEA:
    return gt__rows_add(b, GT_VAL_BLOB, 0, p, (size_t)len);
  default:
    gt_log_error("STORE-PG-TYPE", "result column %d has type oid %u, not decoded", c,
                 (unsigned)PQftype(res, c));
    return GT_EIO;
  }
}

int gt__pg_rows_from(const PGresult *res, int ncols, gt_rows_t **rows) {
  *rows = NULL;
  if (PQnfields(res) != ncols) {
    gt_log_error("STORE-PG-TYPE", "a read returned %d columns, %d expected",
                 PQnfields(res), ncols);
    return GT_EIO;
  }
  gt__rows_builder_t b;
  gt__rows_init(&b, ncols);
  int nrows = PQntuples(res);
  for (int r = 0; r < nrows; r++) {
    for (int c = 0; c < ncols; c++) {
      int rc = add_value(&b, res, r, c);
      if (rc) {
        gt__rows_fini(&b);
        return rc;
      }
    }
  }
  return gt__rows_finish(&b, rows);
}
