/*
 * sqlite_fixture.h: what the SQLite Check suites (persistence_test, persistence_walbuf_test)
 * share: a temporary database path and its removal with the WAL, SHM and journal files,
 * and plain-SQLite checks (run SQL, read one integer, integrity). Header-only, like
 * h2client.h, so each suite stays one file.
 *
 * THREADS: the test thread.
 */
#ifndef GT_TEST_SQLITE_FIXTURE_H
#define GT_TEST_SQLITE_FIXTURE_H

#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Makes a fresh directory /tmp/<prefix>XXXXXX (into dir) and the database path <dir>/<name>
 * (into path). */
static inline void fixture_tmp_db(char *dir, size_t dir_size, char *path, size_t path_size,
                                  const char *prefix, const char *name) {
  snprintf(dir, dir_size, "/tmp/%sXXXXXX", prefix);
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, path_size, "%s/%s", dir, name);
}

/* Removes the database at path with its -wal, -shm and -journal files, then dir. */
static inline void fixture_rm_db(const char *dir, const char *path) {
  static const char *sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[512];
  for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
    unlink(p);
  }
  rmdir(dir);
}

/* Runs SQL text on db; fails the test with SQLite's message if it does not succeed. */
static inline void fixture_exec(sqlite3 *db, const char *sql) {
  char *err = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
  ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
}

/* The first column of the first row of sql, as an integer (the row must exist). */
static inline sqlite3_int64 fixture_i64(sqlite3 *db, const char *sql) {
  sqlite3_stmt *s = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
  ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
  sqlite3_int64 v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* Fails the test unless PRAGMA integrity_check answers only "ok". */
static inline void fixture_assert_integrity(sqlite3 *db) {
  ck_assert_int_eq(fixture_i64(db, "SELECT count(*) FROM pragma_integrity_check "
                                   "WHERE integrity_check <> 'ok'"),
                   0);
}

#endif
