/*
 * walbuf.c: the "gt-walbuf" VFS shim: the frames SQLite writes to a WAL file between
 * two points where they could be observed reach the file in one write, not two per
 * frame.
 *
 * DESIGN
 *   SQLite appends a commit to the WAL as two writes per frame (24-byte header, then the
 *   page): ~120 pwrite64 calls for a 60-page group commit, 26% of the writer thread in
 *   the kernel. The shim wraps the default ("unix") VFS. A file opened with
 *   SQLITE_OPEN_WAL gets a buffer (BUF_CAP, allocated at its first buffered write, kept
 *   until close): a write that starts where the pending bytes end is appended, any other
 *   write flushes them first. A flush is one pwrite on the shim's own descriptor of the
 *   file (below): not the real xWrite, which cannot write 128 KiB or more in one call
 *   (the unix VFS masks the length to 17 bits; without our descriptor, the flush goes
 *   through it in 64 KiB pieces). Pending bytes are flushed before anything that
 *   could observe the file: xRead, xSync, xTruncate, xFileSize, xFileControl, the lock
 *   methods, xClose, and before the buffer would exceed its cap (a write bigger than
 *   the cap then goes straight through).
 *   The main database file is wrapped too (journals and temp files are opened by the
 *   real VFS straight into our slot: no indirection for them). SQLite publishes a
 *   commit to the other connections by writing the wal-index header in shared memory
 *   around the database file's xShmBarrier (copy 1, barrier, copy 0; a reader accepts
 *   a header only when both copies agree), and readers' marks and the write lock go
 *   through its xShmLock. Both flush the pending bytes of the connection's WAL first,
 *   linked at the WAL's xOpen by sqlite3_database_file_object(zName).
 *   Why an xWrite that only buffered may return SQLITE_OK: the WAL protocol needs a
 *   frame in the file only (a) when a connection reads it: other connections learn of
 *   frames beyond their snapshot only from a header published after the barrier (which
 *   flushed), the writer's own reads go through xRead (which flushes); (b) when it is
 *   made durable: xSync flushes, and the server's syncer fdatasyncs after COMMIT
 *   returned, after the barrier; (c) when a checkpoint copies it: through xRead. Order
 *   is kept because a write that is not contiguous flushes the older bytes first, so
 *   the file ends as it would have without the shim. In heap-memory WAL mode
 *   (locking_mode=EXCLUSIVE before the WAL opened) SQLite calls no barrier, so a WAL
 *   buffers only once its database file has mapped shared memory.
 *   Space: a flush in xShmBarrier cannot report an error (void) and SQLite would then
 *   publish a commit whose frames are not in the file, so a failure there aborts the
 *   process (the syncer's policy for a failed fdatasync). ENOSPC is kept out of that
 *   path: before buffering a write that ends past the space reserved so far, xWrite
 *   reserves up to the next RESERVE_CHUNK boundary with fallocate(FALLOC_FL_KEEP_SIZE)
 *   and a failed reservation fails that xWrite (SQLITE_FULL for ENOSPC/EDQUOT, else
 *   SQLITE_IOERR_WRITE) before anything is buffered. fallocate and the flush need a
 *   descriptor: the shim opens its own, O_RDWR on the WAL path, at the first
 *   reservation. Not the unix VFS's: its unixFile layout is private to the SQLite
 *   build and no unix file control hands the descriptor out. A second descriptor is
 *   safe: SQLite takes no POSIX locks on a WAL (they are on the database and -shm
 *   files), so closing ours drops none (the syncer does the same); it names the same
 *   inode as SQLite's, because a WAL is deleted only by the last connection to close
 *   and ours is open; and writes through either reach the same page cache, so SQLite's
 *   reads and syncs and the syncer's fdatasync (all per inode) cover ours.
 *   Where fallocate is unsupported (EOPNOTSUPP) the file falls back to writing through
 *   every write that extends it; the WAL reuses its space after each checkpoint, so
 *   only the first pass is slow.
 *
 * INVARIANTS
 *   - The pending bytes of a WAL are one run [off, off + len) that xWrite received after
 *     every older byte it overlaps reached the file.
 *   - A commit is published (header copy 0 written after xShmBarrier) only after its
 *     frames reached the file; if that write fails the process aborts first.
 *   - Pending bytes lie inside the reserved space (without fallocate: inside the file),
 *     so a flush does not meet ENOSPC.
 *   - A failed flush keeps the bytes pending and returns the error: the next flush
 *     retries them, no later write or publication skips them. Exception: when the
 *     connection releases the WAL write lock (or unmaps, or closes) they are dropped:
 *     they were written under that lock and not committed (a commit flushes at its
 *     barrier), and writing them later could overwrite another writer's frames.
 *   - kill -9 loses at most the pending bytes: they belong to a transaction not yet
 *     published (the barrier flushes before publishing) and so not acknowledged (the
 *     server acknowledges after the syncer's fdatasync, which starts after COMMIT
 *     returned). Recovery ignores the frames after the last commit frame in the file.
 *   - The reservation restarts at 0 when the WAL header (offset 0) is written and at
 *     xTruncate: after a truncation by any connection the WAL restarts at its header,
 *     so a reservation the truncation freed is never trusted.
 *
 * THREADS
 *   A file belongs to one connection, used by one thread at a time (SQLite's rule); a
 *   WAL and its database file belong to the same connection (one pager), so the link
 *   needs no lock. Registration: pthread_once. The counter and the fault hook: relaxed
 *   atomics (statistics and a one-shot test switch; they order nothing).
 */
#include "persistence/sqlite/walbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/log.h"

/* Pending bytes per WAL: ~250 commits-worth of 60 frames fit in 16; 1 MiB holds a
 * typical group commit with room, and bounds the memory of a huge transaction. */
#define BUF_CAP ((size_t)1 << 20)
/* Space reserved per fallocate: one call per ~16 typical commits. */
#define RESERVE_CHUNK ((sqlite3_int64)4 << 20)
/* Largest piece handed to the real xWrite (which cannot take 128 KiB or more). */
#define WRITE_PIECE ((size_t)64 << 10)

enum { SPACE_RESERVE, SPACE_EXTEND_SYNC };

/* Our sqlite3_file subclass, for main database files and WAL files; the real VFS's
 * file follows it at REAL_OFF in the same allocation (szOsFile covers both). */
typedef struct wb_file {
  sqlite3_file base;     /* pMethods: one of db_methods[] or &wal_methods */
  sqlite3_file *real;    /* the real VFS's file */
  struct wb_file *peer;  /* db: its open WAL or NULL; WAL: its db or NULL */
  int shm;               /* db: xShmMap was called (SQLite will use xShmBarrier) */
  const char *path;      /* WAL: zName of xOpen (SQLite keeps it until xClose) */
  unsigned char *buf;    /* WAL: pending bytes (BUF_CAP), NULL until first needed */
  sqlite3_int64 off;     /* WAL: file offset of buf[0] */
  size_t len;            /* WAL: number of pending bytes */
  int fd;                /* WAL: our descriptor for fallocate, -1 until needed */
  int space;             /* WAL: SPACE_RESERVE, or SPACE_EXTEND_SYNC without fallocate */
  sqlite3_int64 reserved; /* SPACE_RESERVE: [0, reserved) has blocks */
  sqlite3_int64 size;     /* SPACE_EXTEND_SYNC: the file's size */
} wb_file;

/* The shm lock slot of the WAL write lock: WAL_WRITE_LOCK in SQLite's wal.c, part of
 * the WAL-index format shared by every SQLite version, so it cannot change. */
#define SHM_WRITE_LOCK 0

#define REAL_OFF ((sizeof(wb_file) + 15) & ~(size_t)15)
#define REAL_VFS(v) ((sqlite3_vfs *)(v)->pAppData)

static atomic_uint_fast64_t n_writes; /* real writes to WAL files (test hook) */
static atomic_int fail_next;          /* errno the next reservation fakes, or 0 */

/* ------------------------------------------------------------ WAL buffering --- */

/* One write through the real file, counted. Returns its SQLite code. */
static int real_write(wb_file *w, const void *p, int n, sqlite3_int64 off) {
  atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
  int rc = w->real->pMethods->xWrite(w->real, p, n, off);
  if (rc == SQLITE_OK && off + n > w->size)
    w->size = off + n;
  return rc;
}

/* Writes the pending bytes to the file at w->off.
 * Returns SQLITE_OK, SQLITE_FULL (ENOSPC, EDQUOT, or no progress) or SQLITE_IOERR_WRITE. */
static int pwrite_all(wb_file *w) {
  size_t done = 0;
  while (done < w->len) {
    atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
    ssize_t k = pwrite(w->fd, w->buf + done, w->len - done, (off_t)(w->off + (off_t)done));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      int err = k < 0 ? errno : ENOSPC;
      gt_log_warn("WALBUF-WRITE", "cannot write %zu bytes at %lld of %s: %s", w->len - done,
                  (long long)(w->off + (off_t)done), w->path, strerror(err));
      return err == ENOSPC || err == EDQUOT ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    }
    done += (size_t)k;
  }
  if (w->off + (sqlite3_int64)w->len > w->size)
    w->size = w->off + (sqlite3_int64)w->len;
  return SQLITE_OK;
}

/* Writes the pending bytes; on failure they stay pending (see INVARIANTS). One pwrite
 * on our descriptor; without one, pieces through the real xWrite (it writes at most
 * 128 KiB - 1 per call: the unix VFS masks the length to 17 bits).
 * Returns SQLITE_OK or the write's error. */
static int flush(wb_file *w) {
  if (w->len == 0)
    return SQLITE_OK;
  int rc = SQLITE_OK;
  if (w->fd >= 0) {
    rc = pwrite_all(w);
  } else {
    for (size_t at = 0; rc == SQLITE_OK && at < w->len; at += WRITE_PIECE) {
      size_t n = w->len - at < WRITE_PIECE ? w->len - at : WRITE_PIECE;
      rc = real_write(w, w->buf + at, (int)n, w->off + (sqlite3_int64)at);
    }
  }
  if (rc == SQLITE_OK)
    w->len = 0;
  return rc;
}

/* Flush where the caller cannot keep the bytes (lock release, unmap, close): a failure
 * drops them, logged. `why` names the caller for the log. */
static void flush_or_drop(wb_file *w, const char *why) {
  if (flush(w) == SQLITE_OK)
    return;
  gt_log_warn("WALBUF-DROP", "%s: dropping %zu unpublished WAL bytes at %lld of %s", why,
              w->len, (long long)w->off, w->path);
  w->len = 0;
}

/* Switches `w` to writing through every write that extends the file.
 * Returns SQLITE_OK or the error of the flush / xFileSize it needs. */
static int fall_back(wb_file *w, const char *why) {
  int rc = flush(w);
  sqlite3_int64 sz = 0;
  if (rc == SQLITE_OK)
    rc = w->real->pMethods->xFileSize(w->real, &sz);
  if (rc != SQLITE_OK)
    return rc;
  gt_log_info("WALBUF-NO-RESERVE", "%s: %s; WAL writes that extend it go straight through",
              w->path, why);
  w->space = SPACE_EXTEND_SYNC;
  w->size = sz;
  return SQLITE_OK;
}

/* Reserves [reserved, end rounded up to RESERVE_CHUNK) of the WAL.
 * Returns SQLITE_OK (also after falling back when fallocate is unsupported),
 * SQLITE_FULL (ENOSPC, EDQUOT) or SQLITE_IOERR_WRITE (other errors, logged). */
static int reserve(wb_file *w, sqlite3_int64 end) {
  if (w->fd < 0)
    w->fd = open(w->path, O_RDWR | O_CLOEXEC);
  if (w->fd < 0)
    return fall_back(w, strerror(errno));
  sqlite3_int64 to = (end + RESERVE_CHUNK - 1) / RESERVE_CHUNK * RESERVE_CHUNK;
  int err = atomic_load_explicit(&fail_next, memory_order_relaxed);
  if (err)
    err = atomic_exchange_explicit(&fail_next, 0, memory_order_relaxed);
  while (!err && fallocate(w->fd, FALLOC_FL_KEEP_SIZE, w->reserved, to - w->reserved) != 0)
    if (errno != EINTR)
      err = errno;
  if (!err) {
    w->reserved = to;
    return SQLITE_OK;
  }
  if (err == EOPNOTSUPP || err == ENOSYS)
    return fall_back(w, "fallocate is not supported");
  gt_log_warn("WALBUF-RESERVE", "cannot reserve %lld bytes of %s: %s",
              (long long)(to - w->reserved), w->path, strerror(err));
  return err == ENOSPC || err == EDQUOT ? SQLITE_FULL : SQLITE_IOERR_WRITE;
}

/* Whether `w` may buffer now: linked to a database file using shared memory. */
static int buffering(const wb_file *w) { return w->peer && w->peer->shm; }

static int wal_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off) {
  wb_file *w = (wb_file *)f;
  if (!buffering(w)) { /* nothing pending unless the link went away: keep the order */
    int rc = flush(w);
    return rc == SQLITE_OK ? real_write(w, p, n, off) : rc;
  }
  if (off == 0)
    w->reserved = 0; /* the WAL restarts: maybe truncated by another connection */
  sqlite3_int64 end = off + n;
  if (w->space == SPACE_RESERVE && end > w->reserved) {
    int rc = reserve(w, end);
    if (rc != SQLITE_OK)
      return rc;
  }
  int rc = SQLITE_OK;
  if (w->len && (off != w->off + (sqlite3_int64)w->len || w->len + (size_t)n > BUF_CAP))
    rc = flush(w);
  if (rc != SQLITE_OK)
    return rc;
  if (!w->buf && (size_t)n <= BUF_CAP)
    w->buf = malloc(BUF_CAP); /* NULL: write through, correct */
  int through = !w->buf || (size_t)n > BUF_CAP ||
                (w->space == SPACE_EXTEND_SYNC && end > w->size);
  if (through) {
    rc = flush(w);
    return rc == SQLITE_OK ? real_write(w, p, n, off) : rc;
  }
  if (w->len == 0)
    w->off = off;
  memcpy(w->buf + w->len, p, (size_t)n);
  w->len += (size_t)n;
  return SQLITE_OK;
}

static int wal_close(sqlite3_file *f) {
  wb_file *w = (wb_file *)f;
  flush_or_drop(w, "close");
  if (w->peer)
    w->peer->peer = NULL;
  free(w->buf);
  if (w->fd >= 0)
    close(w->fd);
  return w->real->pMethods->xClose(w->real);
}

static int wal_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xRead(w->real, p, n, off);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  if (rc == SQLITE_OK)
    rc = w->real->pMethods->xTruncate(w->real, size);
  w->reserved = 0; /* truncation frees blocks past the size, reserved ones too */
  if (rc == SQLITE_OK)
    w->size = size;
  return rc;
}

static int wal_sync(sqlite3_file *f, int flags) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *out) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, out);
}

static int wal_lock(sqlite3_file *f, int level) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xLock(w->real, level);
}

static int wal_unlock(sqlite3_file *f, int level) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xUnlock(w->real, level);
}

static int wal_check_reserved(sqlite3_file *f, int *out) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xCheckReservedLock(w->real, out);
}

static int wal_file_control(sqlite3_file *f, int op, void *arg) {
  wb_file *w = (wb_file *)f;
  int rc = flush(w);
  return rc != SQLITE_OK ? rc : w->real->pMethods->xFileControl(w->real, op, arg);
}

static int any_sector_size(sqlite3_file *f) {
  wb_file *w = (wb_file *)f;
  return w->real->pMethods->xSectorSize(w->real);
}

static int any_device_chars(sqlite3_file *f) {
  wb_file *w = (wb_file *)f;
  return w->real->pMethods->xDeviceCharacteristics(w->real);
}

/* Version 1: SQLite calls the shm and mmap methods on database files only. */
static const sqlite3_io_methods wal_methods = {
    .iVersion = 1,
    .xClose = wal_close,
    .xRead = wal_read,
    .xWrite = wal_write,
    .xTruncate = wal_truncate,
    .xSync = wal_sync,
    .xFileSize = wal_file_size,
    .xLock = wal_lock,
    .xUnlock = wal_unlock,
    .xCheckReservedLock = wal_check_reserved,
    .xFileControl = wal_file_control,
    .xSectorSize = any_sector_size,
    .xDeviceCharacteristics = any_device_chars,
};

/* ---------------------------------------------------------- database files --- */

static int db_close(sqlite3_file *f) {
  wb_file *d = (wb_file *)f;
  if (d->peer) /* SQLite closes the WAL first; be safe if it did not */
    d->peer->peer = NULL;
  return d->real->pMethods->xClose(d->real);
}

static int db_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xRead(d->real, p, n, off);
}

static int db_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xWrite(d->real, p, n, off);
}

static int db_truncate(sqlite3_file *f, sqlite3_int64 size) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xTruncate(d->real, size);
}

static int db_sync(sqlite3_file *f, int flags) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xSync(d->real, flags);
}

static int db_file_size(sqlite3_file *f, sqlite3_int64 *out) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xFileSize(d->real, out);
}

static int db_lock(sqlite3_file *f, int level) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xLock(d->real, level);
}

static int db_unlock(sqlite3_file *f, int level) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xUnlock(d->real, level);
}

static int db_check_reserved(sqlite3_file *f, int *out) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xCheckReservedLock(d->real, out);
}

static int db_file_control(sqlite3_file *f, int op, void *arg) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xFileControl(d->real, op, arg);
}

static int db_shm_map(sqlite3_file *f, int page, int size, int extend, void volatile **pp) {
  wb_file *d = (wb_file *)f;
  d->shm = 1;
  return d->real->pMethods->xShmMap(d->real, page, size, extend, pp);
}

/* A lock taken or released on the wal-index may let another connection read or write
 * the WAL: the pending bytes go first. Taking a lock fails if they cannot. Releasing
 * the write lock drops them (INVARIANTS); releasing another lock keeps them pending:
 * the write lock still keeps other writers out, the barrier will retry them. */
static int db_shm_lock(sqlite3_file *f, int ofst, int n, int flags) {
  wb_file *d = (wb_file *)f;
  if (d->peer && d->peer->len) {
    if (!(flags & SQLITE_SHM_UNLOCK)) {
      int rc = flush(d->peer);
      if (rc != SQLITE_OK)
        return rc;
    } else if (ofst <= SHM_WRITE_LOCK && SHM_WRITE_LOCK < ofst + n) {
      flush_or_drop(d->peer, "releasing the WAL write lock");
    } else {
      (void)flush(d->peer);
    }
  }
  return d->real->pMethods->xShmLock(d->real, ofst, n, flags);
}

/* SQLite publishes a commit's wal-index header around this barrier: its frames must be
 * in the file first, and there is no way to report failure (DESIGN). */
static void db_shm_barrier(sqlite3_file *f) {
  wb_file *d = (wb_file *)f;
  if (d->peer && d->peer->len) {
    int rc = flush(d->peer);
    if (rc != SQLITE_OK) {
      gt_log_error("WALBUF-PUBLISH", "cannot write %zu WAL bytes at %lld of %s before "
                   "publishing a commit (sqlite error %d); aborting",
                   d->peer->len, (long long)d->peer->off, d->peer->path, rc);
      abort();
    }
  }
  d->real->pMethods->xShmBarrier(d->real);
}

static int db_shm_unmap(sqlite3_file *f, int delete_flag) {
  wb_file *d = (wb_file *)f;
  if (d->peer && d->peer->len)
    flush_or_drop(d->peer, "shm unmap");
  return d->real->pMethods->xShmUnmap(d->real, delete_flag);
}

static int db_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xFetch(d->real, off, n, pp);
}

static int db_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p) {
  wb_file *d = (wb_file *)f;
  return d->real->pMethods->xUnfetch(d->real, off, p);
}

/* The methods of version `v`; a database file gets the version of its real file, so
 * SQLite sees the same capabilities (no shared memory: no WAL, as without the shim). */
#define DB_METHODS(v)                                                                   \
  {                                                                                     \
    .iVersion = (v), .xClose = db_close, .xRead = db_read, .xWrite = db_write,          \
    .xTruncate = db_truncate, .xSync = db_sync, .xFileSize = db_file_size,              \
    .xLock = db_lock, .xUnlock = db_unlock, .xCheckReservedLock = db_check_reserved,    \
    .xFileControl = db_file_control, .xSectorSize = any_sector_size,                    \
    .xDeviceCharacteristics = any_device_chars, .xShmMap = (v) >= 2 ? db_shm_map : 0,   \
    .xShmLock = (v) >= 2 ? db_shm_lock : 0, .xShmBarrier = (v) >= 2 ? db_shm_barrier : 0, \
    .xShmUnmap = (v) >= 2 ? db_shm_unmap : 0, .xFetch = (v) >= 3 ? db_fetch : 0,        \
    .xUnfetch = (v) >= 3 ? db_unfetch : 0,                                              \
  }
static const sqlite3_io_methods db_methods[3] = {DB_METHODS(1), DB_METHODS(2), DB_METHODS(3)};

/* -------------------------------------------------------------------- VFS --- */

/* Links the WAL `w` to its database file (ours, same connection) if there is one. */
static void link_wal(wb_file *w, const char *name) {
  sqlite3_file *db = sqlite3_database_file_object(name);
  for (int i = 0; db && i < 3; i++) {
    if (db->pMethods == &db_methods[i]) {
      w->peer = (wb_file *)db;
      w->peer->peer = w;
    }
  }
}

/* Main database and WAL files get our subclass; other files are the real VFS's own,
 * opened straight into our slot (szOsFile is larger than the real one). */
static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                    int *out_flags) {
  sqlite3_vfs *rv = REAL_VFS(vfs);
  if (!(flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)))
    return rv->xOpen(rv, name, f, flags, out_flags);
  wb_file *w = (wb_file *)f;
  memset(w, 0, sizeof(*w));
  w->real = (sqlite3_file *)((char *)f + REAL_OFF);
  w->fd = -1;
  int rc = rv->xOpen(rv, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods)
      w->real->pMethods->xClose(w->real);
    return rc; /* base.pMethods stays NULL: SQLite will not call xClose */
  }
  if (flags & SQLITE_OPEN_WAL) {
    w->path = name;
    link_wal(w, name);
    w->base.pMethods = &wal_methods;
    return SQLITE_OK;
  }
  int v = w->real->pMethods->iVersion;
  w->base.pMethods = &db_methods[(v < 1 ? 1 : v > 3 ? 3 : v) - 1];
  return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir) {
  return REAL_VFS(v)->xDelete(REAL_VFS(v), name, sync_dir);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out) {
  return REAL_VFS(v)->xAccess(REAL_VFS(v), name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out) {
  return REAL_VFS(v)->xFullPathname(REAL_VFS(v), name, n, out);
}

static void *vfs_dlopen(sqlite3_vfs *v, const char *name) {
  return REAL_VFS(v)->xDlOpen(REAL_VFS(v), name);
}

static void vfs_dlerror(sqlite3_vfs *v, int n, char *out) {
  REAL_VFS(v)->xDlError(REAL_VFS(v), n, out);
}

static void (*vfs_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void) {
  return REAL_VFS(v)->xDlSym(REAL_VFS(v), h, sym);
}

static void vfs_dlclose(sqlite3_vfs *v, void *h) { REAL_VFS(v)->xDlClose(REAL_VFS(v), h); }

static int vfs_randomness(sqlite3_vfs *v, int n, char *out) {
  return REAL_VFS(v)->xRandomness(REAL_VFS(v), n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int us) { return REAL_VFS(v)->xSleep(REAL_VFS(v), us); }

static int vfs_current_time(sqlite3_vfs *v, double *out) {
  return REAL_VFS(v)->xCurrentTime(REAL_VFS(v), out);
}

static int vfs_last_error(sqlite3_vfs *v, int n, char *out) {
  return REAL_VFS(v)->xGetLastError(REAL_VFS(v), n, out);
}

static int vfs_current_time64(sqlite3_vfs *v, sqlite3_int64 *out) {
  return REAL_VFS(v)->xCurrentTimeInt64(REAL_VFS(v), out);
}

static int vfs_set_syscall(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr p) {
  return REAL_VFS(v)->xSetSystemCall(REAL_VFS(v), name, p);
}

static sqlite3_syscall_ptr vfs_get_syscall(sqlite3_vfs *v, const char *name) {
  return REAL_VFS(v)->xGetSystemCall(REAL_VFS(v), name);
}

static const char *vfs_next_syscall(sqlite3_vfs *v, const char *name) {
  return REAL_VFS(v)->xNextSystemCall(REAL_VFS(v), name);
}

static sqlite3_vfs shim_vfs;
static int register_rc;

static void register_once(void) {
  sqlite3_vfs *rv = sqlite3_vfs_find(NULL);
  if (!rv) {
    gt_log_error("WALBUF-REGISTER", "no default SQLite VFS to wrap");
    register_rc = GT_EIO;
    return;
  }
  /* the same version as the wrapped VFS: SQLite calls only what that version has */
  shim_vfs = (sqlite3_vfs){
      .iVersion = rv->iVersion > 3 ? 3 : rv->iVersion,
      .szOsFile = (int)REAL_OFF + rv->szOsFile,
      .mxPathname = rv->mxPathname,
      .zName = GT_SQLITE_WALBUF_VFS,
      .pAppData = rv,
      .xOpen = vfs_open,
      .xDelete = vfs_delete,
      .xAccess = vfs_access,
      .xFullPathname = vfs_full_pathname,
      .xDlOpen = vfs_dlopen,
      .xDlError = vfs_dlerror,
      .xDlSym = vfs_dlsym,
      .xDlClose = vfs_dlclose,
      .xRandomness = vfs_randomness,
      .xSleep = vfs_sleep,
      .xCurrentTime = vfs_current_time,
      .xGetLastError = vfs_last_error,
      .xCurrentTimeInt64 = vfs_current_time64,
      .xSetSystemCall = vfs_set_syscall,
      .xGetSystemCall = vfs_get_syscall,
      .xNextSystemCall = vfs_next_syscall,
  };
  int rc = sqlite3_vfs_register(&shim_vfs, 0);
  if (rc != SQLITE_OK) {
    gt_log_error("WALBUF-REGISTER", "cannot register the %s VFS: %s", GT_SQLITE_WALBUF_VFS,
                 sqlite3_errstr(rc));
    register_rc = GT_EIO;
  }
}

int gt__sqlite_walbuf_register(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, register_once);
  return register_rc;
}

uint64_t gt__sqlite_walbuf_flushes(void) {
  return atomic_load_explicit(&n_writes, memory_order_relaxed);
}

void gt__sqlite_walbuf_fail_next_reserve(int err) {
  atomic_store_explicit(&fail_next, err, memory_order_relaxed);
}
