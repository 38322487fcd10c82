-- Genesis Temporal PostgreSQL schema: upgrade from version 1 to version 2.
-- tools/schema-postgresql.sh upgrade (or setup, make install-schema-postgresql)
-- runs it in one transaction: all of it or nothing. The server does not: it
-- refuses a version 1 database and names the command. executions and history
-- get the run-id-first keys of v2.

ALTER TABLE executions DROP CONSTRAINT executions_pkey;
ALTER TABLE executions ADD PRIMARY KEY (run_id);
ALTER TABLE history DROP CONSTRAINT history_pkey;
ALTER TABLE history ADD PRIMARY KEY (run_id, first_event_id);
UPDATE cluster_metadata SET schema_version = 2 WHERE id = 1;
