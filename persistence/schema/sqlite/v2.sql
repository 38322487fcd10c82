-- Genesis Temporal SQLite schema, version 2: the record of what a version 2
-- database holds (the server upgrades one at open by upgrade-v2-to-v3.sql; the
-- unit tests make one from this file). The schema the server creates is v3.sql.
-- A version 1 database is upgraded at open by upgrade-v1-to-v2.sql.
--
-- v2: the four tables written by every workflow are WITHOUT ROWID, clustered
-- on their primary key (one B-tree per table instead of a table and its key
-- index), and executions and history are keyed by the run id first. Run ids
-- are UUIDv7, ordered by creation time, so the rows of the runs in flight sit
-- together at the end of each tree: a group commit dirties a few tail pages
-- instead of one random leaf per workflow (28 -> ~18 WAL frames per commit of
-- a hello load). Run ids are unique (server-made UUIDs), so the keys stay
-- unique; the lookups all give the run id.

-- One row: the schema version checked at every open, and the cluster identity.
CREATE TABLE cluster_metadata (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL,
  cluster_id     TEXT NOT NULL
);
INSERT INTO cluster_metadata (id, schema_version, cluster_id)
  VALUES (1, 2, lower(hex(randomblob(16))));

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
  PRIMARY KEY (run_id)
) WITHOUT ROWID;

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
) WITHOUT ROWID;

-- Event batches: data is a serialized temporal.api.history.v1.History.
CREATE TABLE history (
  shard_id       INTEGER NOT NULL,
  namespace_id   TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  run_id         TEXT NOT NULL,
  first_event_id INTEGER NOT NULL,
  last_event_id  INTEGER NOT NULL,
  data           BLOB NOT NULL,
  PRIMARY KEY (run_id, first_event_id)
) WITHOUT ROWID;

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
) WITHOUT ROWID;
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
