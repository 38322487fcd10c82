/*
 * persistence_walbuf_test.c: the Check suite of persistence/sqlite/walbuf.c (the VFS shim
 * that coalesces WAL frame writes).
 *
 * DESIGN
 *   Each test runs in a fresh temporary directory, on a WAL database opened through the
 *   shim with plain sqlite3_open_v2 (so the test controls the pragmas), except the
 *   open_conn tests, which go through gt__sqlite_open_main. A transaction inserts ROWS
 *   rows of PAD random bytes: one row per 4 KiB page, ~60 frames per commit. Frames are
 *   counted with a WAL hook (autocheckpoint off, so the WAL only grows), real WAL writes
 *   with gt__sqlite_walbuf_flushes(). Reservation failures are injected with
 *   gt__sqlite_walbuf_fail_next_reserve().
 *
 * THREADS
 *   The test thread; the visibility test adds one reader thread with its own connection.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "persistence/sqlite/sqlite_int.h"
#include "persistence/sqlite/walbuf.h"
#include "tests/unit/sqlite_fixture.h"

#define ROWS 60   /* rows per transaction: ~60 pages */
#define PAD 3900  /* bytes per row: one row per 4 KiB page */

/* ------------------------------------------------------------------ helpers --- */

static char g_dir[64];
static char g_path[128];
static char g_wal[136];

static void tmp_setup(void) {
  fixture_tmp_db(g_dir, sizeof(g_dir), g_path, sizeof(g_path), "gt_walbuf_", "w.db");
  snprintf(g_wal, sizeof(g_wal), "%s-wal", g_path);
}

static void tmp_teardown(void) {
  fixture_rm_db(g_dir, g_path);
  gt__sqlite_walbuf_fail_next_reserve(0);
}

static sqlite3_int64 wal_frames; /* frames in the WAL after the last commit */

static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames) {
  wal_frames = frames;
  return SQLITE_OK;
}

/* Opens g_path through the shim; `writer` sets WAL mode, counts frames and turns
 * autocheckpoint off (the hook replaces it). */
static sqlite3 *open_shim(int writer) {
  ck_assert_int_eq(gt__sqlite_walbuf_register(), 0);
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(g_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           GT_SQLITE_WALBUF_VFS);
  ck_assert_int_eq(rc, SQLITE_OK);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, 5000);
  if (writer) {
    fixture_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                "PRAGMA cache_size=-65536;"
                "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, tx INT, pad BLOB)");
    sqlite3_wal_hook(db, wal_hook, NULL);
  }
  return db;
}

/* Inserts `rows` rows of transaction number `tx` and commits.
 * Returns the COMMIT's result code (the inserts must succeed). */
static int write_tx(sqlite3 *db, int tx, int rows) {
  fixture_exec(db, "BEGIN IMMEDIATE");
  sqlite3_stmt *s = NULL;
  ck_assert_int_eq(sqlite3_prepare_v2(db, "INSERT INTO t(tx, pad) VALUES(?1, randomblob(?2))",
                                      -1, &s, NULL),
                   SQLITE_OK);
  for (int i = 0; i < rows; i++) {
    sqlite3_bind_int(s, 1, tx);
    sqlite3_bind_int(s, 2, PAD);
    ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

static off_t file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? st.st_size : -1;
}

/* ------------------------------------------------------- visibility, counts --- */

typedef struct reader_arg {
  atomic_int stop;
  atomic_int max_seen; /* highest transaction number a read saw */
  int reads, bad;      /* reads done; reads whose rows did not match a whole commit */
  char err[160];
} reader_arg_t;

/* Reads continuously beside the writer: every snapshot must hold whole transactions
 * 1..max(tx) (ROWS rows each, full-size pads), never an error. */
static void *reader_main(void *p) {
  reader_arg_t *a = p;
  sqlite3 *db = open_shim(0);
  sqlite3_stmt *s = NULL;
  sqlite3_prepare_v2(db, "SELECT count(*), ifnull(max(tx),0), ifnull(sum(length(pad)),0) "
                         "FROM t", -1, &s, NULL);
  while (s && !atomic_load(&a->stop)) {
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
      snprintf(a->err, sizeof(a->err), "read: %s", sqlite3_errmsg(db));
      break;
    }
    sqlite3_int64 n = sqlite3_column_int64(s, 0), tx = sqlite3_column_int64(s, 1);
    if (n != tx * ROWS || sqlite3_column_int64(s, 2) != n * PAD)
      a->bad++;
    if (tx > atomic_load(&a->max_seen))
      atomic_store(&a->max_seen, (int)tx);
    a->reads++;
    sqlite3_reset(s);
  }
  if (!s)
    snprintf(a->err, sizeof(a->err), "prepare: %s", sqlite3_errmsg(db));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return NULL;
}

/* Many ~60-page commits: a reader connection in this thread sees each right after its
 * COMMIT, a reader thread never sees a partial one, and the WAL gets a few writes per
 * commit instead of two per frame. */
START_TEST(test_commits_visible_and_coalesced) {
  sqlite3 *w = open_shim(1);
  sqlite3 *r = open_shim(0);
  reader_arg_t ra = {0};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, reader_main, &ra), 0);
  enum { TXS = 40 };
  uint64_t before = gt__sqlite_walbuf_flushes();
  sqlite3_int64 frames0 = wal_frames;
  for (int tx = 1; tx <= TXS; tx++) {
    ck_assert_int_eq(write_tx(w, tx, ROWS), SQLITE_OK);
    ck_assert_int_eq(fixture_i64(r, "SELECT count(*) FROM t"), (sqlite3_int64)tx * ROWS);
    ck_assert_int_eq(fixture_i64(r, "SELECT max(tx) FROM t"), tx);
  }
  uint64_t writes = gt__sqlite_walbuf_flushes() - before;
  sqlite3_int64 frames = wal_frames - frames0;
  atomic_store(&ra.stop, 1);
  pthread_join(th, NULL);
  ck_assert_msg(ra.err[0] == 0, "reader thread: %s", ra.err);
  ck_assert_int_eq(ra.bad, 0);
  ck_assert_int_gt(ra.reads, 0);
  ck_assert_int_ge(frames, (sqlite3_int64)TXS * ROWS);
  /* without the shim: 2 per frame (~4900); with it one per commit, plus one per commit
   * whose frames outgrow the 1 MiB buffer (none here) */
  ck_assert_msg(writes <= 2 * TXS, "%llu WAL writes for %d commits, %lld frames",
                (unsigned long long)writes, TXS, (long long)frames);
  ck_assert_int_ge(writes, TXS);
  /* checkpoint, truncate, reopen: every row is in the database file */
  ck_assert_int_eq(sqlite3_close(r), SQLITE_OK);
  fixture_exec(w, "PRAGMA wal_checkpoint(TRUNCATE)");
  ck_assert_int_eq(file_size(g_wal), 0);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
  w = open_shim(1);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), (sqlite3_int64)TXS * ROWS);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(DISTINCT tx) FROM t"), TXS);
  fixture_assert_integrity(w);
  /* the truncated WAL is written again from its start: reservation restarts */
  ck_assert_int_eq(write_tx(w, TXS + 1, ROWS), SQLITE_OK);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), (sqlite3_int64)(TXS + 1) * ROWS);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}
END_TEST

/* The database file's xShmBarrier (where SQLite publishes a commit) writes the frames
 * the same connection's WAL holds pending. Frames of an uncommitted transaction are
 * made pending by spilling a small page cache. */
START_TEST(test_barrier_flushes_pending) {
  sqlite3 *w = open_shim(1);
  ck_assert_int_eq(write_tx(w, 1, ROWS), SQLITE_OK);
  fixture_exec(w, "PRAGMA cache_size=20; BEGIN IMMEDIATE");
  for (int i = 0; i < 3; i++)
    fixture_exec(w, "INSERT INTO t(tx, pad) SELECT 2, randomblob(3900) FROM "
               "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<40) "
               "SELECT x FROM c)");
  sqlite3_file *dbf = NULL, *walf = NULL;
  ck_assert_int_eq(sqlite3_file_control(w, "main", SQLITE_FCNTL_FILE_POINTER, &dbf),
                   SQLITE_OK);
  ck_assert_int_eq(sqlite3_file_control(w, "main", SQLITE_FCNTL_JOURNAL_POINTER, &walf),
                   SQLITE_OK);
  ck_assert_ptr_nonnull(walf);
  off_t size0 = file_size(g_wal);
  uint64_t before = gt__sqlite_walbuf_flushes();
  dbf->pMethods->xShmBarrier(dbf);
  ck_assert_int_eq(gt__sqlite_walbuf_flushes() - before, 1);
  ck_assert_int_gt(file_size(g_wal), size0); /* the spilled frames were only pending */
  dbf->pMethods->xShmBarrier(dbf); /* nothing pending now: no write */
  ck_assert_int_eq(gt__sqlite_walbuf_flushes() - before, 1);
  fixture_exec(w, "ROLLBACK");
  /* the rolled-back frames are not published: the next commit overwrites them */
  ck_assert_int_eq(write_tx(w, 2, ROWS), SQLITE_OK);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), 2 * ROWS);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
  w = open_shim(1);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), 2 * ROWS);
  fixture_assert_integrity(w);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}
END_TEST

/* ------------------------------------------------------------ reservations --- */

/* A commit that needs more space when the reservation fails with ENOSPC gets
 * SQLITE_FULL and is rolled back; the database stays whole and writable. */
START_TEST(test_reserve_enospc_full) {
  sqlite3 *w = open_shim(1);
  for (int tx = 1; tx <= 3; tx++)
    ck_assert_int_eq(write_tx(w, tx, ROWS), SQLITE_OK);
  gt__sqlite_walbuf_fail_next_reserve(ENOSPC);
  /* ~5 MiB of frames: past the first 4 MiB reservation */
  int rc = write_tx(w, 4, 1300);
  ck_assert_int_eq(rc & 0xff, SQLITE_FULL);
  ck_assert_int_eq(sqlite3_get_autocommit(w), 1); /* SQLite rolled it back */
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), 3 * ROWS);
  ck_assert_int_eq(fixture_i64(w, "SELECT max(tx) FROM t"), 3);
  /* the fault was one-shot: the same commit now goes through */
  ck_assert_int_eq(write_tx(w, 4, 1300), SQLITE_OK);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
  w = open_shim(1);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), 3 * ROWS + 1300);
  fixture_assert_integrity(w);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}
END_TEST

/* Another reservation error (EIO) fails the write with an I/O error, not FULL. */
START_TEST(test_reserve_eio) {
  sqlite3 *w = open_shim(1);
  ck_assert_int_eq(write_tx(w, 1, ROWS), SQLITE_OK);
  gt__sqlite_walbuf_fail_next_reserve(EIO);
  ck_assert_int_eq(write_tx(w, 2, 1300), SQLITE_IOERR_WRITE); /* past 4 MiB */
  ck_assert_int_eq(sqlite3_get_autocommit(w), 1);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), ROWS);
  ck_assert_int_eq(write_tx(w, 2, ROWS), SQLITE_OK);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), 2 * ROWS);
  fixture_assert_integrity(w);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}
END_TEST

/* Without fallocate (EOPNOTSUPP) every write that extends the WAL goes straight
 * through; once a checkpoint lets the WAL restart inside its old size, commits are
 * coalesced again. The data is right either way. */
START_TEST(test_no_fallocate_fallback) {
  gt__sqlite_walbuf_fail_next_reserve(EOPNOTSUPP); /* the fresh WAL's first write */
  sqlite3 *w = open_shim(1);
  uint64_t before = gt__sqlite_walbuf_flushes();
  for (int tx = 1; tx <= 5; tx++)
    ck_assert_int_eq(write_tx(w, tx, ROWS), SQLITE_OK);
  uint64_t extending = gt__sqlite_walbuf_flushes() - before;
  ck_assert_uint_ge(extending, 5 * ROWS); /* unbuffered: about two per frame */
  fixture_exec(w, "PRAGMA wal_checkpoint(RESTART)");
  before = gt__sqlite_walbuf_flushes();
  for (int tx = 6; tx <= 8; tx++)
    ck_assert_int_eq(write_tx(w, tx, ROWS), SQLITE_OK);
  ck_assert_uint_le(gt__sqlite_walbuf_flushes() - before, 2 * 3);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
  w = open_shim(1);
  ck_assert_int_eq(fixture_i64(w, "SELECT count(*) FROM t"), 8 * ROWS);
  fixture_assert_integrity(w);
  ck_assert_int_eq(sqlite3_close(w), SQLITE_OK);
}
END_TEST

/* ---------------------------------------------------------- through open_conn --- */

static const char *vfs_name(sqlite3 *db) {
  sqlite3_vfs *v = NULL;
  ck_assert_int_eq(sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &v), SQLITE_OK);
  return v->zName;
}

/* The store's open path: a file database uses the shim, the in-memory one memdb. */
START_TEST(test_open_conn_vfs) {
  sqlite3 *db = NULL;
  ck_assert_int_eq(gt__sqlite_open_main(g_path, 0, 2, &db), 0);
  ck_assert_str_eq(vfs_name(db), GT_SQLITE_WALBUF_VFS);
  uint64_t before = gt__sqlite_walbuf_flushes();
  fixture_exec(db, "CREATE TABLE x(a); INSERT INTO x VALUES(1)");
  ck_assert_uint_gt(gt__sqlite_walbuf_flushes(), before);
  ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
  ck_assert_int_eq(gt__sqlite_open_main(":memory:", 0, 2, &db), 0);
  ck_assert_str_eq(vfs_name(db), "memdb");
  fixture_exec(db, "CREATE TABLE x(a); INSERT INTO x VALUES(1)");
  ck_assert_int_eq(fixture_i64(db, "SELECT count(*) FROM x"), 1);
  ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}
END_TEST

START_TEST(test_register_idempotent) {
  ck_assert_int_eq(gt__sqlite_walbuf_register(), 0);
  ck_assert_int_eq(gt__sqlite_walbuf_register(), 0);
  sqlite3_vfs *v = sqlite3_vfs_find(GT_SQLITE_WALBUF_VFS);
  ck_assert_ptr_nonnull(v);
  ck_assert_ptr_ne(v, sqlite3_vfs_find(NULL)); /* not made the default */
}
END_TEST

static Suite *walbuf_suite(void) {
  Suite *s = suite_create("persistence_walbuf");
  TCase *tc = tcase_create("walbuf");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_register_idempotent);
  tcase_add_test(tc, test_commits_visible_and_coalesced);
  tcase_add_test(tc, test_barrier_flushes_pending);
  tcase_add_test(tc, test_reserve_enospc_full);
  tcase_add_test(tc, test_reserve_eio);
  tcase_add_test(tc, test_no_fallocate_fallback);
  tcase_add_test(tc, test_open_conn_vfs);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(walbuf_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
