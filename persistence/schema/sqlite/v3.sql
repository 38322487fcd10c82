-- Genesis Temporal SQLite schema, version 3.
-- KEEP IDENTICAL to gt__sqlite_schema_v3 in persistence/sqlite/schema.c:
-- the binary embeds that copy and runs it on an empty database; this file is
-- the readable reference (persistence_test checks that both are the same).
-- Changing a table means a new schema version (v4.sql), never an edit here.
-- Older databases are upgraded at open: version 1 by upgrade-v1-to-v2.sql then
-- upgrade-v2-to-v3.sql, version 2 by upgrade-v2-to-v3.sql.
--
-- v2: executions, current_executions and visibility are WITHOUT ROWID,
-- clustered on their primary key (one B-tree per table instead of a table and
-- its key index), and executions is keyed by the run id. Run ids are UUIDv7,
-- ordered by creation time, so the rows of the runs in flight sit together at
-- the end of the tree: a group commit dirties a few tail pages instead of one
-- random leaf per workflow. Run ids are unique (server-made UUIDs), so the
-- keys stay unique; the lookups all give the run id.
-- v3: history is an ordinary rowid table again, its key (run_id,
-- first_event_id) a separate index. Clustered on that key, the batches of the
-- ~100 runs in flight interleaved over the tree's last few dozen leaves, so
-- every group commit rewrote ~17 of them (the rows are ~250 bytes); by rowid a
-- batch is appended at the end of the table, and only the small key entries
-- (~50 bytes) interleave: history's WAL frames per commit of a hello load went
-- from ~17 to ~8, all frames from ~40 to ~30.

-- One row: the schema version checked at every open, and the cluster identity.
CREATE TABLE cluster_metadata (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL,
  cluster_id     TEXT NOT NULL
);
INSERT INTO cluster_metadata (id, schema_version, cluster_id)
  VALUES (1, 3, lower(hex(randomblob(16))));

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
