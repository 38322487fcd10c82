-- Genesis Temporal SQLite schema: upgrade from version 1 to version 2.
-- KEEP IDENTICAL to gt__sqlite_upgrade_v1_v2 in persistence/sqlite/schema.c.
-- The server runs it at open on a version 1 database, inside one IMMEDIATE
-- transaction: all of it or nothing. Each of the four tables v2 clusters is
-- copied into its v2 form, then replaces the old one (the visibility indexes
-- go with their table and are made again).

CREATE TABLE executions_v2 (
  shard_id      INTEGER NOT NULL,
  namespace_id  TEXT NOT NULL,
  workflow_id   TEXT NOT NULL,
  run_id        TEXT NOT NULL,
  next_event_id INTEGER NOT NULL,
  db_version    INTEGER NOT NULL,
  state         BLOB,
  PRIMARY KEY (run_id)
) WITHOUT ROWID;
INSERT INTO executions_v2 SELECT * FROM executions;
DROP TABLE executions;
ALTER TABLE executions_v2 RENAME TO executions;

CREATE TABLE current_executions_v2 (
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
INSERT INTO current_executions_v2 SELECT * FROM current_executions;
DROP TABLE current_executions;
ALTER TABLE current_executions_v2 RENAME TO current_executions;

CREATE TABLE history_v2 (
  shard_id       INTEGER NOT NULL,
  namespace_id   TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  run_id         TEXT NOT NULL,
  first_event_id INTEGER NOT NULL,
  last_event_id  INTEGER NOT NULL,
  data           BLOB NOT NULL,
  PRIMARY KEY (run_id, first_event_id)
) WITHOUT ROWID;
INSERT INTO history_v2 SELECT * FROM history;
DROP TABLE history;
ALTER TABLE history_v2 RENAME TO history;

CREATE TABLE visibility_v2 (
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
INSERT INTO visibility_v2 SELECT * FROM visibility;
DROP TABLE visibility;
ALTER TABLE visibility_v2 RENAME TO visibility;

CREATE INDEX visibility_by_start ON visibility (namespace_id, start_time_ns);
CREATE INDEX visibility_by_workflow ON visibility (namespace_id, workflow_id);
UPDATE cluster_metadata SET schema_version = 2 WHERE id = 1;
