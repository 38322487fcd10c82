/*
 * schema.c: opening the SQLite database, creating and checking the schema.
 *
 * DESIGN
 *   The schema is persistence/schema/sqlite/v3.sql. The same text is embedded below as
 *   gt__sqlite_schema_v3 so the binary is self-contained: KEEP BOTH IDENTICAL (the unit test
 *   compares them; likewise the upgrade scripts). A database holds one cluster_metadata row
 *   whose schema_version must equal GT_SQLITE_SCHEMA_VERSION. A version 1 or 2 database is
 *   upgraded at open (upgrade-v1-to-v2.sql then upgrade-v2-to-v3.sql, from its version on,
 *   in one IMMEDIATE transaction: all or nothing); any other version is refused with
 *   GT_ECORRUPT.
 *   Opening never writes to a file that is not ours: the 16-byte SQLite magic is checked
 *   with plain read(2) before SQLite touches the file, and a SQLite file is only written
 *   to (WAL switch, schema) after it proved to be empty or a Genesis Temporal database.
 *   ":memory:" (or no path) opens a private database on the memdb VFS (open_memdb).
 *
 * INVARIANTS
 *   - A file that is not SQLite, a torn/corrupt SQLite file, a foreign SQLite database and a
 *     database of another schema version are all refused with GT_ECORRUPT and one log line,
 *     and left byte-identical.
 *   - The schema is created inside one IMMEDIATE transaction: all tables or none.
 *
 * THREADS
 *   The thread calling gt_store_open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persistence/sqlite/sqlite_int.h"
#include "persistence/sqlite/walbuf.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* KEEP IDENTICAL to persistence/schema/sqlite/v3.sql (see the DESIGN note above). */
const char gt__sqlite_schema_v3[] =
    "-- Genesis Temporal SQLite schema, version 3.\n"
    "-- KEEP IDENTICAL to gt__sqlite_schema_v3 in persistence/sqlite/schema.c:\n"
    "-- the binary embeds that copy and runs it on an empty database; this file is\n"
    "-- the readable reference (persistence_test checks that both are the same).\n"
    "-- Changing a table means a new schema version (v4.sql), never an edit here.\n"
    "-- Older databases are upgraded at open: version 1 by upgrade-v1-to-v2.sql then\n"
    "-- upgrade-v2-to-v3.sql, version 2 by upgrade-v2-to-v3.sql.\n"
    "--\n"
    "-- v2: executions, current_executions and visibility are WITHOUT ROWID,\n"
    "-- clustered on their primary key (one B-tree per table instead of a table and\n"
    "-- its key index), and executions is keyed by the run id. Run ids are UUIDv7,\n"
    "-- ordered by creation time, so the rows of the runs in flight sit together at\n"
    "-- the end of the tree: a group commit dirties a few tail pages instead of one\n"
    "-- random leaf per workflow. Run ids are unique (server-made UUIDs), so the\n"
    "-- keys stay unique; the lookups all give the run id.\n"
    "-- v3: history is an ordinary rowid table again, its key (run_id,\n"
    "-- first_event_id) a separate index. Clustered on that key, the batches of the\n"
    "-- ~100 runs in flight interleaved over the tree's last few dozen leaves, so\n"
    "-- every group commit rewrote ~17 of them (the rows are ~250 bytes); by rowid a\n"
    "-- batch is appended at the end of the table, and only the small key entries\n"
    "-- (~50 bytes) interleave: history's WAL frames per commit of a hello load went\n"
    "-- from ~17 to ~8, all frames from ~40 to ~30.\n"
    "\n"
    "-- One row: the schema version checked at every open, and the cluster identity.\n"
    "CREATE TABLE cluster_metadata (\n"
    "  id             INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  schema_version INTEGER NOT NULL,\n"
    "  cluster_id     TEXT NOT NULL\n"
    ");\n"
    "INSERT INTO cluster_metadata (id, schema_version, cluster_id)\n"
    "  VALUES (1, 3, lower(hex(randomblob(16))));\n"
    "\n"
    "-- Namespaces; data is the serialized namespace record (msgpack).\n"
    "CREATE TABLE namespaces (\n"
    "  id         TEXT PRIMARY KEY,\n"
    "  name       TEXT NOT NULL,\n"
    "  data       BLOB,\n"
    "  is_default INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "\n"
    "-- Shard ownership. range_id is the fencing token checked by every write batch.\n"
    "CREATE TABLE shards (\n"
    "  shard_id INTEGER PRIMARY KEY,\n"
    "  range_id INTEGER NOT NULL,\n"
    "  owner    TEXT NOT NULL DEFAULT ''\n"
    ");\n"
    "\n"
    "-- Mutable state of one run (msgpack), versioned for optimistic concurrency.\n"
    "CREATE TABLE executions (\n"
    "  shard_id      INTEGER NOT NULL,\n"
    "  namespace_id  TEXT NOT NULL,\n"
    "  workflow_id   TEXT NOT NULL,\n"
    "  run_id        TEXT NOT NULL,\n"
    "  next_event_id INTEGER NOT NULL,\n"
    "  db_version    INTEGER NOT NULL,\n"
    "  state         BLOB,\n"
    "  PRIMARY KEY (run_id)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "-- namespace + workflow id -> the current run.\n"
    "CREATE TABLE current_executions (\n"
    "  shard_id          INTEGER NOT NULL,\n"
    "  namespace_id      TEXT NOT NULL,\n"
    "  workflow_id       TEXT NOT NULL,\n"
    "  run_id            TEXT NOT NULL,\n"
    "  create_request_id TEXT,\n"
    "  state             INTEGER NOT NULL,\n"
    "  status            INTEGER NOT NULL,\n"
    "  start_time        INTEGER NOT NULL,\n"
    "  PRIMARY KEY (shard_id, namespace_id, workflow_id)\n"
    ") WITHOUT ROWID;\n"
    "\n"
    "-- Event batches: data is a serialized temporal.api.history.v1.History.\n"
    "CREATE TABLE history (\n"
    "  shard_id       INTEGER NOT NULL,\n"
    "  namespace_id   TEXT NOT NULL,\n"
    "  workflow_id    TEXT NOT NULL,\n"
    "  run_id         TEXT NOT NULL,\n"
    "  first_event_id INTEGER NOT NULL,\n"
    "  last_event_id  INTEGER NOT NULL,\n"
    "  data           BLOB NOT NULL,\n"
    "  PRIMARY KEY (run_id, first_event_id)\n"
    ");\n"
    "\n"
    "-- The transactional outbox of each shard.\n"
    "CREATE TABLE transfer_tasks (\n"
    "  shard_id INTEGER NOT NULL,\n"
    "  task_id  INTEGER NOT NULL,\n"
    "  data     BLOB NOT NULL,\n"
    "  PRIMARY KEY (shard_id, task_id)\n"
    ");\n"
    "CREATE TABLE timer_tasks (\n"
    "  shard_id     INTEGER NOT NULL,\n"
    "  fire_time_ns INTEGER NOT NULL,\n"
    "  task_id      INTEGER NOT NULL,\n"
    "  data         BLOB NOT NULL,\n"
    "  PRIMARY KEY (shard_id, fire_time_ns, task_id)\n"
    ");\n"
    "CREATE TABLE visibility_tasks (\n"
    "  shard_id INTEGER NOT NULL,\n"
    "  task_id  INTEGER NOT NULL,\n"
    "  data     BLOB NOT NULL,\n"
    "  PRIMARY KEY (shard_id, task_id)\n"
    ");\n"
    "\n"
    "-- Matching backlog; kind: workflow or activity task.\n"
    "CREATE TABLE task_queue_tasks (\n"
    "  namespace_id TEXT NOT NULL,\n"
    "  task_queue   TEXT NOT NULL,\n"
    "  kind         INTEGER NOT NULL,\n"
    "  task_id      INTEGER NOT NULL,\n"
    "  data         BLOB NOT NULL,\n"
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
    "  status            INTEGER NOT NULL,\n"
    "  start_time_ns     INTEGER NOT NULL,\n"
    "  execution_time_ns INTEGER NOT NULL,\n"
    "  close_time_ns     INTEGER NOT NULL,\n"
    "  history_length    INTEGER NOT NULL,\n"
    "  memo              BLOB,\n"
    "  search_attributes BLOB,\n"
    "  -- the search attributes as one JSON object (what List queries filter on)\n"
    "  search_json       TEXT,\n"
    "  PRIMARY KEY (namespace_id, run_id)\n"
    ") WITHOUT ROWID;\n"
    "CREATE INDEX visibility_by_start ON visibility (namespace_id, start_time_ns);\n"
    "CREATE INDEX visibility_by_workflow ON visibility (namespace_id, workflow_id);\n"
    "\n"
    "-- Custom search attributes of a namespace; type: IndexedValueType.\n"
    "CREATE TABLE search_attributes (\n"
    "  namespace_id TEXT NOT NULL,\n"
    "  name         TEXT NOT NULL,\n"
    "  type         INTEGER NOT NULL,\n"
    "  PRIMARY KEY (namespace_id, name)\n"
    ");\n"
    "\n"
    "-- CHASM components (a later issue): state name, msgpack data, version.\n"
    "CREATE TABLE chasm_components (\n"
    "  namespace_id TEXT NOT NULL,\n"
    "  component_id TEXT NOT NULL,\n"
    "  type         TEXT NOT NULL,\n"
    "  state        TEXT NOT NULL,\n"
    "  data         BLOB,\n"
    "  version      INTEGER NOT NULL,\n"
    "  PRIMARY KEY (namespace_id, component_id)\n"
    ");\n";

/* KEEP IDENTICAL to persistence/schema/sqlite/upgrade-v1-to-v2.sql. */
const char gt__sqlite_upgrade_v1_v2[] =
    "-- Genesis Temporal SQLite schema: upgrade from version 1 to version 2.\n"
    "-- KEEP IDENTICAL to gt__sqlite_upgrade_v1_v2 in persistence/sqlite/schema.c.\n"
    "-- The server runs it at open on a version 1 database, inside one IMMEDIATE\n"
    "-- transaction: all of it or nothing. Each of the four tables v2 clusters is\n"
    "-- copied into its v2 form, then replaces the old one (the visibility indexes\n"
    "-- go with their table and are made again).\n"
    "\n"
    "CREATE TABLE executions_v2 (\n"
    "  shard_id      INTEGER NOT NULL,\n"
    "  namespace_id  TEXT NOT NULL,\n"
    "  workflow_id   TEXT NOT NULL,\n"
    "  run_id        TEXT NOT NULL,\n"
    "  next_event_id INTEGER NOT NULL,\n"
    "  db_version    INTEGER NOT NULL,\n"
    "  state         BLOB,\n"
    "  PRIMARY KEY (run_id)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO executions_v2 SELECT * FROM executions;\n"
    "DROP TABLE executions;\n"
    "ALTER TABLE executions_v2 RENAME TO executions;\n"
    "\n"
    "CREATE TABLE current_executions_v2 (\n"
    "  shard_id          INTEGER NOT NULL,\n"
    "  namespace_id      TEXT NOT NULL,\n"
    "  workflow_id       TEXT NOT NULL,\n"
    "  run_id            TEXT NOT NULL,\n"
    "  create_request_id TEXT,\n"
    "  state             INTEGER NOT NULL,\n"
    "  status            INTEGER NOT NULL,\n"
    "  start_time        INTEGER NOT NULL,\n"
    "  PRIMARY KEY (shard_id, namespace_id, workflow_id)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO current_executions_v2 SELECT * FROM current_executions;\n"
    "DROP TABLE current_executions;\n"
    "ALTER TABLE current_executions_v2 RENAME TO current_executions;\n"
    "\n"
    "CREATE TABLE history_v2 (\n"
    "  shard_id       INTEGER NOT NULL,\n"
    "  namespace_id   TEXT NOT NULL,\n"
    "  workflow_id    TEXT NOT NULL,\n"
    "  run_id         TEXT NOT NULL,\n"
    "  first_event_id INTEGER NOT NULL,\n"
    "  last_event_id  INTEGER NOT NULL,\n"
    "  data           BLOB NOT NULL,\n"
    "  PRIMARY KEY (run_id, first_event_id)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO history_v2 SELECT * FROM history;\n"
    "DROP TABLE history;\n"
    "ALTER TABLE history_v2 RENAME TO history;\n"
    "\n"
    "CREATE TABLE visibility_v2 (\n"
    "  namespace_id      TEXT NOT NULL,\n"
    "  run_id            TEXT NOT NULL,\n"
    "  workflow_id       TEXT NOT NULL,\n"
    "  workflow_type     TEXT NOT NULL,\n"
    "  task_queue        TEXT NOT NULL,\n"
    "  status            INTEGER NOT NULL,\n"
    "  start_time_ns     INTEGER NOT NULL,\n"
    "  execution_time_ns INTEGER NOT NULL,\n"
    "  close_time_ns     INTEGER NOT NULL,\n"
    "  history_length    INTEGER NOT NULL,\n"
    "  memo              BLOB,\n"
    "  search_attributes BLOB,\n"
    "  -- the search attributes as one JSON object (what List queries filter on)\n"
    "  search_json       TEXT,\n"
    "  PRIMARY KEY (namespace_id, run_id)\n"
    ") WITHOUT ROWID;\n"
    "INSERT INTO visibility_v2 SELECT * FROM visibility;\n"
    "DROP TABLE visibility;\n"
    "ALTER TABLE visibility_v2 RENAME TO visibility;\n"
    "\n"
    "CREATE INDEX visibility_by_start ON visibility (namespace_id, start_time_ns);\n"
    "CREATE INDEX visibility_by_workflow ON visibility (namespace_id, workflow_id);\n"
    "UPDATE cluster_metadata SET schema_version = 2 WHERE id = 1;\n";

/* KEEP IDENTICAL to persistence/schema/sqlite/upgrade-v2-to-v3.sql. */
const char gt__sqlite_upgrade_v2_v3[] =
    "-- Genesis Temporal SQLite schema: upgrade from version 2 to version 3.\n"
    "-- KEEP IDENTICAL to gt__sqlite_upgrade_v2_v3 in persistence/sqlite/schema.c.\n"
    "-- The server runs it at open on a version 2 database (after\n"
    "-- upgrade-v1-to-v2.sql on a version 1 one), inside one IMMEDIATE transaction:\n"
    "-- all of it or nothing. history is copied into its v3 form (a rowid table,\n"
    "-- its key an index), which then replaces the old one.\n"
    "\n"
    "CREATE TABLE history_v3 (\n"
    "  shard_id       INTEGER NOT NULL,\n"
    "  namespace_id   TEXT NOT NULL,\n"
    "  workflow_id    TEXT NOT NULL,\n"
    "  run_id         TEXT NOT NULL,\n"
    "  first_event_id INTEGER NOT NULL,\n"
    "  last_event_id  INTEGER NOT NULL,\n"
    "  data           BLOB NOT NULL,\n"
    "  PRIMARY KEY (run_id, first_event_id)\n"
    ");\n"
    "INSERT INTO history_v3 SELECT * FROM history ORDER BY run_id, first_event_id;\n"
    "DROP TABLE history;\n"
    "ALTER TABLE history_v3 RENAME TO history;\n"
    "UPDATE cluster_metadata SET schema_version = 3 WHERE id = 1;\n";

static const char SQLITE_MAGIC[16] = "SQLite format 3";

static int is_memory_path(const char *path) {
  return !path || !path[0] || strcmp(path, ":memory:") == 0;
}

/* Refuses an existing non-empty file that does not start with the SQLite magic, without
 * opening it for writing. Returns 0 (absent, empty or SQLite), GT_ECORRUPT, GT_EIO. */
static int check_magic(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0 || sb.st_size == 0)
    return 0; /* absent (SQLite creates it) or empty (SQLite treats it as a new DB) */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    gt_log_error("STORE-SQLITE-OPEN", "cannot read %s: %s", path, strerror(errno));
    return GT_EIO;
  }
  char head[16];
  ssize_t n = read(fd, head, sizeof(head));
  close(fd);
  if (n != (ssize_t)sizeof(head) || memcmp(head, SQLITE_MAGIC, sizeof(head)) != 0) {
    gt_log_error("STORE-SQLITE-NOT-DB",
                 "%s is not a database (no SQLite header); refusing to open it, "
                 "left untouched", path);
    return GT_ECORRUPT;
  }
  return 0;
}

/* Runs a one-integer query. OUT: *val (untouched when no row). Returns a SQLite code. */
static int query_int(sqlite3 *db, const char *sql, int64_t *val) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
      *val = sqlite3_column_int64(s, 0);
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
  }
  sqlite3_finalize(s);
  return rc;
}

static int is_corruption(int rc) {
  rc &= 0xff;
  return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

/* Classifies the opened database. OUT: *empty (1: no tables at all), *version_out (ours:
 * its schema version, GT_SQLITE_SCHEMA_VERSION or an older one open_main upgrades).
 * Returns 0 (empty, or ours with a version this build opens), GT_ECORRUPT, GT_EIO.
 * Reads only. */
static int check_existing(sqlite3 *db, const char *path, int *empty, int64_t *version_out) {
  int64_t ntables = 0;
  int rc = query_int(db, "SELECT count(*) FROM sqlite_master", &ntables);
  if (rc != SQLITE_OK) {
    if (is_corruption(rc)) {
      gt_log_error("STORE-SQLITE-NOT-DB", "%s: %s; refusing to open it, left untouched",
                   path, sqlite3_errmsg(db));
      return GT_ECORRUPT;
    }
    return gt__sqlite_map(db, rc, "reading the schema");
  }
  *empty = ntables == 0;
  if (*empty)
    return 0;
  int64_t version = -1;
  rc = query_int(db, "SELECT schema_version FROM cluster_metadata WHERE id = 1", &version);
  if (rc != SQLITE_OK && rc != SQLITE_ERROR)
    return is_corruption(rc) ? GT_ECORRUPT : gt__sqlite_map(db, rc, "reading the version");
  if (rc == SQLITE_ERROR || version < 0) {
    gt_log_error("STORE-SQLITE-FOREIGN",
                 "%s is a SQLite database but not a Genesis Temporal one "
                 "(no cluster_metadata row); refusing to open it", path);
    return GT_ECORRUPT;
  }
  if (version < 1 || version > GT_SQLITE_SCHEMA_VERSION) {
    gt_log_error("STORE-SQLITE-SCHEMA-VERSION",
                 "%s has schema version %lld, this build needs %d; refusing to open it",
                 path, (long long)version, GT_SQLITE_SCHEMA_VERSION);
    return GT_ECORRUPT;
  }
  *version_out = version;
  return 0;
}

/* Executes SQL text (pragmas, the schema). Returns 0 or a mapped GT_E*. */
static int exec(sqlite3 *db, const char *sql, const char *what) {
  int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : gt__sqlite_map(db, rc, what);
}

/* Creates the schema and the shard rows in one transaction. Returns 0 or GT_EIO. */
static int create_schema(sqlite3 *db, const char *path, int num_shards) {
  int rc = exec(db, "BEGIN IMMEDIATE", "creating the schema");
  if (rc)
    return rc;
  rc = exec(db, gt__sqlite_schema_v3, "creating the schema");
  for (int i = 1; rc == 0 && i <= num_shards; i++) {
    char sql[96];
    snprintf(sql, sizeof(sql),
             "INSERT OR IGNORE INTO shards (shard_id, range_id, owner) VALUES (%d, 0, '')", i);
    rc = exec(db, sql, "creating the shards");
  }
  if (rc == 0)
    rc = exec(db, "COMMIT", "creating the schema");
  if (rc) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  gt_log_info("STORE-SQLITE-CREATED", "created schema v%d in %s (%d shards)",
              GT_SQLITE_SCHEMA_VERSION, path, num_shards);
  return 0;
}

/* Upgrades a database of an older version to GT_SQLITE_SCHEMA_VERSION in one transaction,
 * each step's script in turn: all or nothing.
 * Returns 0 or GT_EIO (logged; the database is left at its version). */
static int upgrade(sqlite3 *db, const char *path, int64_t from) {
  static const char *const step[] = {NULL, gt__sqlite_upgrade_v1_v2, gt__sqlite_upgrade_v2_v3};
  int rc = exec(db, "BEGIN IMMEDIATE", "upgrading the schema");
  for (int64_t v = from; rc == 0 && v < GT_SQLITE_SCHEMA_VERSION; v++)
    rc = exec(db, step[v], "upgrading the schema");
  if (rc == 0)
    rc = exec(db, "COMMIT", "upgrading the schema");
  if (rc) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    gt_log_error("STORE-SQLITE-UPGRADE", "%s: upgrading schema v%lld to v%d failed; left at "
                 "v%lld", path, (long long)from, GT_SQLITE_SCHEMA_VERSION, (long long)from);
    return GT_EIO;
  }
  gt_log_info("STORE-SQLITE-UPGRADED", "upgraded %s from schema v%lld to v%d", path,
              (long long)from, GT_SQLITE_SCHEMA_VERSION);
  return 0;
}

/* Switches the journal mode to `mode` (lower case) and checks that it took.
 * Returns 0 or GT_EIO (logged). */
static int set_journal_mode(sqlite3 *db, const char *mode) {
  char sql[64];
  snprintf(sql, sizeof(sql), "PRAGMA journal_mode=%s", mode);
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
    const char *got = (const char *)sqlite3_column_text(s, 0);
    if (!got || strcmp(got, mode) != 0)
      rc = SQLITE_ERROR;
  } else if (rc == SQLITE_OK) {
    rc = sqlite3_errcode(db);
  }
  sqlite3_finalize(s);
  if (rc != SQLITE_OK) {
    gt_log_error("STORE-SQLITE-OPEN", "cannot switch to journal mode %s: %s", mode,
                 sqlite3_errmsg(db));
    return GT_EIO;
  }
  return 0;
}

/* Sets the file-database pragmas. WAL lets the readers run beside the writer. */
static int set_file_pragmas(sqlite3 *db, int sync_full) {
  int rc = set_journal_mode(db, "wal");
  if (rc)
    return rc;
  rc = exec(db, sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
            "setting synchronous");
  /* 32 MiB of page cache instead of 2: the writer's B-tree pages stay in memory instead
   * of being read back from the WAL or the OS at every transaction. */
  if (rc == 0)
    rc = exec(db, "PRAGMA cache_size=-32768", "setting cache_size");
  return rc;
}

/* Process-wide settings, before SQLite initializes: no memory statistics (they take a
 * global mutex on every allocation SQLite makes: 6% of the writer's instructions), and
 * page caches that skip truncations with nothing to drop (pcache.c: 12% of the writer).
 * A MISUSE (SQLite already initialized by someone else, e.g. a test) leaves the
 * defaults. */
static void configure_sqlite(void) {
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  gt__sqlite_pcache_install();
}

static int open_conn(const char *path, int flags, sqlite3 **db) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, configure_sqlite);
  /* File databases go through the WAL write-coalescing shim (walbuf.c), registered after
   * configure_sqlite (it initializes SQLite). A URI's "?vfs=" (memdb) overrides this
   * argument. If the shim cannot register (logged), the default VFS serves, slower. */
  const char *vfs = gt__sqlite_walbuf_register() == 0 ? GT_SQLITE_WALBUF_VFS : NULL;
  int rc = sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, vfs);
  if (rc != SQLITE_OK) {
    gt_log_error("STORE-SQLITE-OPEN", "cannot open %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
    sqlite3_close(*db);
    *db = NULL;
    return rc == SQLITE_NOMEM ? GT_ENOMEM : GT_EIO;
  }
  sqlite3_extended_result_codes(*db, 1);
  sqlite3_busy_timeout(*db, 5000);
  /* small allocations (cursors, records) from a per-connection arena rather than malloc:
   * 512 slots of 512 bytes instead of SQLite's default 100 of 1200 */
  sqlite3_db_config(*db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 512, 512);
  return 0;
}

/* A private in-memory database on the memdb VFS, not ":memory:". A ":memory:" pager keeps
 * every page in its page cache and truncates that cache at every COMMIT, a walk over the
 * cache's whole hash table (15-20% of the server's CPU under load, growing with the
 * database). memdb keeps the pages in its own buffer, behind an ordinary bounded page
 * cache: SQLite's default 2 MB (measured: 32 MB brings much of the walk back, 0.5 MB
 * gains nothing). The name is unique per open (pid + counter) because memdb names
 * starting with '/' are shared within the process; the buffer is freed when the
 * connection closes. memdb holds no journal file: the journal lives in memory (OFF
 * would break savepoints). Its 1 GiB default size cap is lifted. */
static int open_memdb(sqlite3 **db) {
  static atomic_int seq;
  char name[96];
  snprintf(name, sizeof(name), "file:/gt-mem-%ld-%d?vfs=memdb", (long)getpid(),
           atomic_fetch_add(&seq, 1));
  int rc = open_conn(name, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI, db);
  if (rc)
    return rc;
  sqlite3_int64 cap = (sqlite3_int64)1 << 46;
  if (sqlite3_file_control(*db, "main", SQLITE_FCNTL_SIZE_LIMIT, &cap) != SQLITE_OK) {
    gt_log_error("STORE-SQLITE-OPEN", "memdb: cannot lift the size limit");
    rc = GT_EIO;
  }
  if (rc == 0)
    rc = set_journal_mode(*db, "memory");
  if (rc) {
    sqlite3_close(*db);
    *db = NULL;
  }
  return rc;
}

int gt__sqlite_open_main(const char *path, int sync_full, int num_shards, sqlite3 **out) {
  *out = NULL;
  int mem = is_memory_path(path);
  const char *name = mem ? ":memory:" : path;
  int rc = mem ? 0 : check_magic(path);
  if (rc)
    return rc;
  sqlite3 *db = NULL;
  if (mem)
    rc = open_memdb(&db);
  else
    rc = open_conn(name, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &db);
  if (rc)
    return rc;
  int empty = 0;
  int64_t version = GT_SQLITE_SCHEMA_VERSION;
  rc = check_existing(db, name, &empty, &version);
  if (rc == 0 && !mem)
    rc = set_file_pragmas(db, sync_full);
  if (rc == 0 && empty)
    rc = create_schema(db, name, num_shards);
  else if (rc == 0 && version < GT_SQLITE_SCHEMA_VERSION)
    rc = upgrade(db, name, version);
  if (rc) {
    sqlite3_close(db);
    return rc;
  }
  *out = db;
  return 0;
}

int gt__sqlite_open_reader(const char *path, sqlite3 **db) {
  int rc = open_conn(path, SQLITE_OPEN_READWRITE, db);
  if (rc)
    return rc;
  rc = exec(*db, "PRAGMA query_only=1", "opening a reader");
  if (rc) {
    sqlite3_close(*db);
    *db = NULL;
  }
  return rc;
}
