-- Genesis Temporal SQLite schema: upgrade from version 2 to version 3.
-- KEEP IDENTICAL to gt__sqlite_upgrade_v2_v3 in persistence/sqlite/schema.c.
-- The server runs it at open on a version 2 database (after
-- upgrade-v1-to-v2.sql on a version 1 one), inside one IMMEDIATE transaction:
-- all of it or nothing. history is copied into its v3 form (a rowid table,
-- its key an index), which then replaces the old one.

CREATE TABLE history_v3 (
  shard_id       INTEGER NOT NULL,
  namespace_id   TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  run_id         TEXT NOT NULL,
  first_event_id INTEGER NOT NULL,
  last_event_id  INTEGER NOT NULL,
  data           BLOB NOT NULL,
  PRIMARY KEY (run_id, first_event_id)
);
INSERT INTO history_v3 SELECT * FROM history ORDER BY run_id, first_event_id;
DROP TABLE history;
ALTER TABLE history_v3 RENAME TO history;
UPDATE cluster_metadata SET schema_version = 3 WHERE id = 1;
