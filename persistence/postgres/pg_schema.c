/*
 * pg_schema.c: connecting at open, creating and checking the PostgreSQL schema.
 *
 * DESIGN
 *   The schema is persistence/schema/postgres/v2.sql. The same text is embedded below as
 *   gt__pg_schema_v2 so the binary is self-contained: KEEP BOTH IDENTICAL (the unit test
 *   compares them). A database holds one cluster_metadata row whose schema_version must
 *   equal GT_PG_SCHEMA_VERSION; any other version is refused with GT_ECORRUPT. The schema
 *   tool (tools/schema-postgresql.sh upgrade) upgrades a version 1 database, as Temporal's
 *   own SQL schema tool does; the server never alters a schema it did not create.
 *   Several nodes may open one database at once: the check-and-create runs in one
 *   transaction holding a transaction-scoped advisory lock, so exactly one node creates
 *   the tables and the others then see them.
 *   This is the only blocking libpq use of the backend: gt_store_open runs on the owning
 *   thread at start-up (store.h), and connect_timeout bounds an unreachable server.
 *
 * INVARIANTS
 *   - The schema and the shard rows are created in one transaction: all or nothing.
 *   - A database of another version, or with foreign tables under our names, is refused
 *     with GT_ECORRUPT and one log line, and is not written to.
 *
 * THREADS
 *   The thread calling gt_store_open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/postgres/pg_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* KEEP IDENTICAL to persistence/schema/postgres/v2.sql (see the DESIGN note above). */
const char gt__pg_schema_v2[] =
    "-- Genesis Temporal PostgreSQL schema, version 2.\n"
    "-- KEEP IDENTICAL to gt__pg_schema_v2 in persistence/postgres/pg_schema.c:\n"
    "-- the binary embeds that copy and runs it on a database without our tables;\n"
    "-- this file is the readable reference (persistence_postgres_test checks that\n"
    "-- both are the same). Changing a table means a new schema version (v3.sql).\n"
    "-- A version 1 database is brought to version 2 by upgrade-v1-to-v2.sql\n"
    "-- (tools/schema-postgresql.sh upgrade).\n"
    "--\n"
    "-- v2, as SQLite's v2: executions and history are keyed by the run id first.\n"
    "-- Run ids are UUIDv7 (time-ordered), so the key index of the runs in flight\n"
    "-- grows at its right edge instead of one random leaf per workflow. Run ids are\n"
    "-- unique (server-made UUIDs), so the keys stay unique; every lookup gives one.\n"
    "-- Every integer is BIGINT (the store binds int64), every blob BYTEA.\n"
    "\n"
    "-- One row: the schema version checked at every open, and the cluster identity.\n"
    "CREATE TABLE cluster_metadata (\n"
    "  id             BIGINT PRIMARY KEY CHECK (id = 1),\n"
    "  schema_version BIGINT NOT NULL,\n"
    "  cluster_id     TEXT NOT NULL\n"
    ");\n"
    "INSERT INTO cluster_metadata (id, schema_version, cluster_id)\n"
    "  VALUES (1, 2, replace(gen_random_uuid()::text, '-', ''));\n"
    "\n"
    "-- Namespaces; data is the serialized namespace record (msgpack).\n"
    "CREATE TABLE namespaces (\n"
    "  id         TEXT PRIMARY KEY,\n"
    "  name       TEXT NOT NULL,\n"
    "  data       BYTEA,\n"
    "  is_default BIGINT NOT NULL DEFAULT 0\n"
    ");\n"
    "\n"
    "-- Shard ownership. range_id is the fencing token checked by every write batch.\n"
    "CREATE TABLE shards (\n"
    "  shard_id BIGINT PRIMARY KEY,\n"
    "  range_id BIGINT NOT NULL,\n"
    "  owner    TEXT NOT NULL DEFAULT ''\n"
    ");\n"
    "\n"
    "-- Mutable state of one run (msgpack), versioned for optimistic concurrency.\n"
    "CREATE TABLE executions (\n"
    "  shard_id      BIGINT NOT NULL,\n"
    "  namespace_id  TEXT NOT NULL,\n"
    "  workflow_id   TEXT NOT NULL,\n"
    "  run_id        TEXT NOT NULL,\n"
    "  next_event_id BIGINT NOT NULL,\n"
    "  db_version    BIGINT NOT NULL,\n"
    "  state         BYTEA,\n"
    "  PRIMARY KEY (run_id)\n"
    ");\n"
    "\n"
    "-- namespace + workflow id -> the current run.\n"
    "CREATE TABLE current_executions (\n"
    "  shard_id          BIGINT NOT NULL,\n"
    "  namespace_id      TEXT NOT NULL,\n"
    "  workflow_id       TEXT NOT NULL,\n"
    "  run_id            TEXT NOT NULL,\n"
    "  create_request_id TEXT,\n"
    "  state             BIGINT NOT NULL,\n"
    "  status            BIGINT NOT NULL,\n"
    "  start_time        BIGINT NOT NULL,\n"
    "  PRIMARY KEY (shard_id, namespace_id, workflow_id)\n"
    ");\n"
    "\n"
    "-- Event batches: data is a serialized temporal.api.history.v1.History.\n"
    "CREATE TABLE history (\n"
    "  shard_id       BIGINT NOT NULL,\n"
    "  namespace_id   TEXT NOT NULL,\n"
    "  workflow_id    TEXT NOT NULL,\n"
    "  run_id         TEXT NOT NULL,\n"
    "  first_event_id BIGINT NOT NULL,\n"
    "  last_event_id  BIGINT NOT NULL,\n"
    "  data           BYTEA NOT NULL,\n"
    "  PRIMARY KEY (run_id, first_event_id)\n"
    ");\n"
    "\n"
    "-- The transactional outbox of each shard.\n"
    "CREATE TABLE transfer_tasks (\n"
    "  shard_id BIGINT NOT NULL,\n"
    "  task_id  BIGINT NOT NULL,\n"
    "  data     BYTEA NOT NULL,\n"
    "  PRIMARY KEY (shard_id, task_id)\n"
    ");\n"
    "CREATE TABLE timer_tasks (\n"
    "  shard_id     BIGINT NOT NULL,\n"
    "  fire_time_ns BIGINT NOT NULL,\n"
    "  task_id      BIGINT NOT NULL,\n"
    "  data         BYTEA NOT NULL,\n"
    "  PRIMARY KEY (shard_id, fire_time_ns, task_id)\n"
    ");\n"
    "CREATE TABLE visibility_tasks (\n"
    "  shard_id BIGINT NOT NULL,\n"
    "  task_id  BIGINT NOT NULL,\n"
    "  data     BYTEA NOT NULL,\n"
    "  PRIMARY KEY (shard_id, task_id)\n"
    ");\n"
    "\n"
    "-- Matching backlog; kind: workflow or activity task.\n"
    "CREATE TABLE task_queue_tasks (\n"
    "  namespace_id TEXT NOT NULL,\n"
    "  task_queue   TEXT NOT NULL,\n"
    "  kind         BIGINT NOT NULL,\n"
    "  task_id      BIGINT NOT NULL,\n"
    "  data         BYTEA NOT NULL,\n"
    "  PRIMARY KEY (namespace_id, task_queue, kind, task_id)\n"
    ");\n"
    "\n"
    "-- One row per run for List/Describe; close_time_ns 0 = still open.\n"
    "CREATE TABLE visibility (\n"
    "  namespace_id      TEXT NOT NULL,\n"
    "  run_id            TEXT NOT NULL,\n"
    "  workflow_id       TEXT NOT NULL,\n"
    "  workflow_type     TEXT NOT NULL,\n"
    "  task_queue        TEXT NOT NULL,\n"
    "  status            BIGINT NOT NULL,\n"
    "  start_time_ns     BIGINT NOT NULL,\n"
    "  execution_time_ns BIGINT NOT NULL,\n"
    "  close_time_ns     BIGINT NOT NULL,\n"
    "  history_length    BIGINT NOT NULL,\n"
    "  memo              BYTEA,\n"
    "  search_attributes BYTEA,\n"
    "  -- the search attributes as one JSON object (what List queries filter on)\n"
    "  search_json       TEXT,\n"
    "  PRIMARY KEY (namespace_id, run_id)\n"
    ");\n"
    "CREATE INDEX visibility_by_start ON visibility (namespace_id, start_time_ns);\n"
    "CREATE INDEX visibility_by_workflow ON visibility (namespace_id, workflow_id);\n"
    "\n"
    "-- Custom search attributes of a namespace; type: IndexedValueType.\n"
    "CREATE TABLE search_attributes (\n"
    "  namespace_id TEXT NOT NULL,\n"
    "  name         TEXT NOT NULL,\n"
    "  type         BIGINT NOT NULL,\n"
    "  PRIMARY KEY (namespace_id, name)\n"
    ");\n"
    "\n"
    "-- CHASM components (a later issue): state name, msgpack data, version.\n"
    "CREATE TABLE chasm_components (\n"
    "  namespace_id TEXT NOT NULL,\n"
    "  component_id TEXT NOT NULL,\n"
    "  type         TEXT NOT NULL,\n"
    "  state        TEXT NOT NULL,\n"
    "  data         BYTEA,\n"
    "  version      BIGINT NOT NULL,\n"
    "  PRIMARY KEY (namespace_id, component_id)\n"
    ");\n";

/* Any 64-bit key works; every node must use the same one. ("GTSCHEMA") */
#define SCHEMA_LOCK_KEY "5644410522208241985"

/* Runs sql, expecting `want`. OUT: *out (the result, when out is non-NULL and the status
 * matches; PQclear it). Returns 0 or a mapped GT_E* (logged). */
static int run(PGconn *pg, const char *sql, ExecStatusType want, const char *what,
               PGresult **out) {
  PGresult *r = PQexec(pg, sql);
  if (r && PQresultStatus(r) == want) {
    if (out)
      *out = r;
    else
      PQclear(r);
    return 0;
  }
  int rc = gt__pg_map_error(r, what);
  PQclear(r);
  return rc == GT_EEXISTS ? GT_EIO : rc;
}

/* Reads the version row of an existing schema. Returns 0, GT_ECORRUPT, GT_EIO. */
static int check_version(PGconn *pg) {
  PGresult *r = PQexec(pg, "SELECT schema_version FROM cluster_metadata WHERE id = 1");
  if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    const char *msg = r ? PQresultErrorMessage(r) : "";
    gt_log_error("STORE-PG-FOREIGN",
                 "database has a cluster_metadata table without a Genesis Temporal "
                 "version row (%.200s); refusing to use it", msg[0] ? msg : "no row");
    PQclear(r);
    return GT_ECORRUPT;
  }
  long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  if (v != GT_PG_SCHEMA_VERSION) {
    gt_log_error("STORE-PG-SCHEMA-VERSION",
                 "database has schema version %lld, this build needs %d; refusing to "
                 "open it%s", v, GT_PG_SCHEMA_VERSION,
                 v < GT_PG_SCHEMA_VERSION ? " (upgrade it: make install-schema-postgresql)"
                                          : "");
    return GT_ECORRUPT;
  }
  return 0;
}

/* Creates the tables and shards 1..num_shards (inside the caller's transaction).
 * Returns 0, GT_ECORRUPT (a table of ours exists already: foreign), GT_EIO. */
static int create_schema(PGconn *pg, int num_shards) {
  PGresult *r = PQexec(pg, gt__pg_schema_v2);
  if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "42P07") == 0) { /* duplicate_table */
      const char *msg = PQresultErrorMessage(r);
      gt_log_error("STORE-PG-FOREIGN",
                   "database has tables named like ours but no cluster_metadata "
                   "(%.*s); refusing to use it", (int)strcspn(msg, "\n"), msg);
      PQclear(r);
      return GT_ECORRUPT;
    }
    int rc = gt__pg_map_error(r, "creating the schema");
    PQclear(r);
    return rc == GT_EEXISTS ? GT_EIO : rc;
  }
  PQclear(r);
  char sql[192];
  snprintf(sql, sizeof(sql),
           "INSERT INTO shards (shard_id, range_id, owner) SELECT g, 0, '' "
           "FROM generate_series(1, %d) g ON CONFLICT DO NOTHING",
           num_shards > 0 ? num_shards : 0);
  int rc = run(pg, sql, PGRES_COMMAND_OK, "creating the shards", NULL);
  if (rc == 0)
    gt_log_info("STORE-PG-CREATED", "created schema v%d (%d shards)", GT_PG_SCHEMA_VERSION,
                num_shards);
  return rc;
}

/* The check-or-create transaction. Returns 0, GT_ECORRUPT, GT_EIO. */
static int check_or_create(PGconn *pg, int num_shards) {
  int rc = run(pg, "BEGIN", PGRES_COMMAND_OK, "BEGIN", NULL);
  if (rc == 0)
    rc = run(pg, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")", PGRES_TUPLES_OK,
             "locking the schema", NULL);
  PGresult *r = NULL;
  if (rc == 0)
    rc = run(pg, "SELECT to_regclass('cluster_metadata') IS NOT NULL", PGRES_TUPLES_OK,
             "reading the catalog", &r);
  if (rc == 0) {
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    rc = exists ? check_version(pg) : create_schema(pg, num_shards);
  }
  if (rc == 0)
    rc = run(pg, "COMMIT", PGRES_COMMAND_OK, "COMMIT", NULL);
  if (rc)
    PQclear(PQexec(pg, "ROLLBACK"));
  return rc;
}

int gt__pg_open_check(const char *conninfo, int num_shards) {
  if (gt__pq_load() != 0)
    return GT_EIO;
  gt__pg_params_t params;
  gt__pg_params_init(&params, conninfo);
  PGconn *pg = PQconnectdbParams(params.keys, params.vals, 1);
  if (!pg)
    return GT_ENOMEM;
  if (PQstatus(pg) != CONNECTION_OK) {
    const char *msg = PQerrorMessage(pg);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
      n--;
    gt_log_error("STORE-PG-CONNECT", "cannot connect to PostgreSQL: %.*s", (int)n, msg);
    PQfinish(pg);
    return GT_EIO;
  }
  int rc = check_or_create(pg, num_shards);
  if (rc == 0) {
    gt_log_info("STORE-PG-OPEN", "connected to PostgreSQL %d on %s:%s/%s (schema v%d)",
                PQserverVersion(pg), PQhost(pg), PQport(pg), PQdb(pg),
                GT_PG_SCHEMA_VERSION);
  }
  PQfinish(pg);
  return rc;
}
