-- Genesis Temporal PostgreSQL schema, version 2.
-- KEEP IDENTICAL to gt__pg_schema_v2 in persistence/postgres/pg_schema.c:
-- the binary embeds that copy and runs it on a database without our tables;
-- this file is the readable reference (persistence_postgres_test checks that
-- both are the same). Changing a table means a new schema version (v3.sql).
-- A version 1 database is brought to version 2 by upgrade-v1-to-v2.sql
-- (tools/schema-postgresql.sh upgrade).
--
-- v2, as SQLite's v2: executions and history are keyed by the run id first.
-- Run ids are UUIDv7 (time-ordered), so the key index of the runs in flight
-- grows at its right edge instead of one random leaf per workflow. Run ids are
-- unique (server-made UUIDs), so the keys stay unique; every lookup gives one.
-- Every integer is BIGINT (the store binds int64), every blob BYTEA.

-- One row: the schema version checked at every open, and the cluster identity.
CREATE TABLE cluster_metadata (
  id             BIGINT PRIMARY KEY CHECK (id = 1),
  schema_version BIGINT NOT NULL,
  cluster_id     TEXT NOT NULL
);
INSERT INTO cluster_metadata (id, schema_version, cluster_id)
  VALUES (1, 2, replace(gen_random_uuid()::text, '-', ''));

-- Namespaces; data is the serialized namespace record (msgpack).
CREATE TABLE namespaces (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  data       BYTEA,
  is_default BIGINT NOT NULL DEFAULT 0
);

-- Shard ownership. range_id is the fencing token checked by every write batch.
CREATE TABLE shards (
  shard_id BIGINT PRIMARY KEY,
  range_id BIGINT NOT NULL,
  owner    TEXT NOT NULL DEFAULT ''
);

-- Mutable state of one run (msgpack), versioned for optimistic concurrency.
CREATE TABLE executions (
  shard_id      BIGINT NOT NULL,
  namespace_id  TEXT NOT NULL,
  workflow_id   TEXT NOT NULL,
  run_id        TEXT NOT NULL,
  next_event_id BIGINT NOT NULL,
  db_version    BIGINT NOT NULL,
  state         BYTEA,
  PRIMARY KEY (run_id)
);

-- namespace + workflow id -> the current run.
CREATE TABLE current_executions (
  shard_id          BIGINT NOT NULL,
  namespace_id      TEXT NOT NULL,
  workflow_id       TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  create_request_id TEXT,
  state             BIGINT NOT NULL,
  status            BIGINT NOT NULL,
  start_time        BIGINT NOT NULL,
  PRIMARY KEY (shard_id, namespace_id, workflow_id)
);

-- Event batches: data is a serialized temporal.api.history.v1.History.
CREATE TABLE history (
  shard_id       BIGINT NOT NULL,
  namespace_id   TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  run_id         TEXT NOT NULL,
  first_event_id BIGINT NOT NULL,
  last_event_id  BIGINT NOT NULL,
  data           BYTEA NOT NULL,
  PRIMARY KEY (run_id, first_event_id)
);

-- The transactional outbox of each shard.
CREATE TABLE transfer_tasks (
  shard_id BIGINT NOT NULL,
  task_id  BIGINT NOT NULL,
  data     BYTEA NOT NULL,
  PRIMARY KEY (shard_id, task_id)
);
CREATE TABLE timer_tasks (
  shard_id     BIGINT NOT NULL,
  fire_time_ns BIGINT NOT NULL,
  task_id      BIGINT NOT NULL,
  data         BYTEA NOT NULL,
  PRIMARY KEY (shard_id, fire_time_ns, task_id)
);
CREATE TABLE visibility_tasks (
  shard_id BIGINT NOT NULL,
  task_id  BIGINT NOT NULL,
  data     BYTEA NOT NULL,
  PRIMARY KEY (shard_id, task_id)
);

-- Matching backlog; kind: workflow or activity task.
CREATE TABLE task_queue_tasks (
  namespace_id TEXT NOT NULL,
  task_queue   TEXT NOT NULL,
  kind         BIGINT NOT NULL,
  task_id      BIGINT NOT NULL,
  data         BYTEA NOT NULL,
  PRIMARY KEY (namespace_id, task_queue, kind, task_id)
);

-- One row per run for List/Describe; close_time_ns 0 = still open.
CREATE TABLE visibility (
  namespace_id      TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  workflow_id       TEXT NOT NULL,
  workflow_type     TEXT NOT NULL,
  task_queue        TEXT NOT NULL,
  status            BIGINT NOT NULL,
  start_time_ns     BIGINT NOT NULL,
  execution_time_ns BIGINT NOT NULL,
  close_time_ns     BIGINT NOT NULL,
  history_length    BIGINT NOT NULL,
  memo              BYTEA,
  search_attributes BYTEA,
  -- the search attributes as one JSON object (what List queries filter on)
  search_json       TEXT,
  PRIMARY KEY (namespace_id, run_id)
);
CREATE INDEX visibility_by_start ON visibility (namespace_id, start_time_ns);
CREATE INDEX visibility_by_workflow ON visibility (namespace_id, workflow_id);

-- Custom search attributes of a namespace; type: IndexedValueType.
CREATE TABLE search_attributes (
  namespace_id TEXT NOT NULL,
  name         TEXT NOT NULL,
  type         BIGINT NOT NULL,
  PRIMARY KEY (namespace_id, name)
);

-- CHASM components (a later issue): state name, msgpack data, version.
CREATE TABLE chasm_components (
  namespace_id TEXT NOT NULL,
  component_id TEXT NOT NULL,
  type         TEXT NOT NULL,
  state        TEXT NOT NULL,
  data         BYTEA,
  version      BIGINT NOT NULL,
  PRIMARY KEY (namespace_id, component_id)
);
