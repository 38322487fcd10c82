-- Genesis Temporal SQLite schema, version 1: superseded by v2.sql.
-- Kept as the record of what a version 1 database holds: the server upgrades
-- such a file at open (upgrade-v1-to-v2.sql), and persistence_test builds its
-- version 1 database from this file. Never edit a table here.

-- One row: the schema version checked at every open, and the cluster identity.
CREATE TABLE cluster_metadata (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL,
  cluster_id     TEXT NOT NULL
);
INSERT INTO cluster_metadata (id, schema_version, cluster_id)
  VALUES (1, 1, lower(hex(randomblob(16))));

-- Namespaces; data is the serialized namespace record (msgpack).
CREATE TABLE namespaces (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  data       BLOB,
  is_default INTEGER NOT NULL DEFAULT 0
);

-- Shard ownership. range_id is the fencing token checked by every write batch.
CREATE TABLE shards (
  shard_id INTEGER PRIMARY KEY,
  range_id INTEGER NOT NULL,
  owner    TEXT NOT NULL DEFAULT ''
);

-- Mutable state of one run (msgpack), versioned for optimistic concurrency.
CREATE TABLE executions (
  shard_id      INTEGER NOT NULL,
  namespace_id  TEXT NOT NULL,
  workflow_id   TEXT NOT NULL,
  run_id        TEXT NOT NULL,
  next_event_id INTEGER NOT NULL,
  db_version    INTEGER NOT NULL,
  state         BLOB,
  PRIMARY KEY (shard_id, namespace_id, workflow_id, run_id)
);

-- namespace + workflow id -> the current run.
CREATE TABLE current_executions (
  shard_id          INTEGER NOT NULL,
  namespace_id      TEXT NOT NULL,
  workflow_id       TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  create_request_id TEXT,
  state             INTEGER NOT NULL,
  status            INTEGER NOT NULL,
  start_time        INTEGER NOT NULL,
  PRIMARY KEY (shard_id, namespace_id, workflow_id)
);

-- Event batches: data is a serialized temporal.api.history.v1.History.
CREATE TABLE history (
  shard_id       INTEGER NOT NULL,
  namespace_id   TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  run_id         TEXT NOT NULL,
  first_event_id INTEGER NOT NULL,
  last_event_id  INTEGER NOT NULL,
  data           BLOB NOT NULL,
  PRIMARY KEY (shard_id, namespace_id, workflow_id, run_id, first_event_id)
);

-- The transactional outbox of each shard.
CREATE TABLE transfer_tasks (
  shard_id INTEGER NOT NULL,
  task_id  INTEGER NOT NULL,
  data     BLOB NOT NULL,
  PRIMARY KEY (shard_id, task_id)
);
CREATE TABLE timer_tasks (
  shard_id     INTEGER NOT NULL,
  fire_time_ns INTEGER NOT NULL,
  task_id      INTEGER NOT NULL,
  data         BLOB NOT NULL,
  PRIMARY KEY (shard_id, fire_time_ns, task_id)
);
CREATE TABLE visibility_tasks (
  shard_id INTEGER NOT NULL,
  task_id  INTEGER NOT NULL,
  data     BLOB NOT NULL,
  PRIMARY KEY (shard_id, task_id)
);

-- Matching backlog; kind: workflow or activity task.
CREATE TABLE task_queue_tasks (
  namespace_id TEXT NOT NULL,
  task_queue   TEXT NOT NULL,
  kind         INTEGER NOT NULL,
  task_id      INTEGER NOT NULL,
  data         BLOB NOT NULL,
  PRIMARY KEY (namespace_id, task_queue, kind, task_id)
);

-- One row per run for List/Describe; close_time_ns 0 = still open.
CREATE TABLE visibility (
  namespace_id      TEXT NOT NULL,
  run_id            TEXT NOT NULL,
  workflow_id       TEXT NOT NULL,
  workflow_type     TEXT NOT NULL,
  task_queue        TEXT NOT NULL,
  status            INTEGER NOT NULL,
  start_time_ns     INTEGER NOT NULL,
  execution_time_ns INTEGER NOT NULL,
  close_time_ns     INTEGER NOT NULL,
  history_length    INTEGER NOT NULL,
  memo              BLOB,
  search_attributes BLOB,
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
  type         INTEGER NOT NULL,
  PRIMARY KEY (namespace_id, name)
);

-- CHASM components (a later issue): state name, msgpack data, version.
CREATE TABLE chasm_components (
  namespace_id TEXT NOT NULL,
  component_id TEXT NOT NULL,
  type         TEXT NOT NULL,
  state        TEXT NOT NULL,
  data         BLOB,
  version      INTEGER NOT NULL,
  PRIMARY KEY (namespace_id, component_id)
);
