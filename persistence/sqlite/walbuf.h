/*
 * walbuf.h: a SQLite VFS shim that turns the WAL frame writes of one commit into one
 * write (see the DESIGN comment of walbuf.c).
 */
#ifndef GT_SQLITE_WALBUF_H
#define GT_SQLITE_WALBUF_H

#include <stdint.h>

/* Name of the shim VFS; pass it to sqlite3_open_v2 for file databases. */
#define GT_SQLITE_WALBUF_VFS "gt-walbuf"

/* Registers the shim over the default VFS, once per process (thread-safe; later calls
 * return the first result). Does not make it the default.
 * Returns 0 or GT_EIO (logged: no default VFS, or sqlite3_vfs_register failed). */
int gt__sqlite_walbuf_register(void);

/* Test hook: the number of writes the shim has issued to WAL files through the real VFS
 * since the process started (flushes of the buffer and writes passed through), all
 * files and threads together. */
uint64_t gt__sqlite_walbuf_flushes(void);

/* Test hook: the next space reservation (fallocate) of any WAL file fails as if
 * fallocate had set errno to `err` (ENOSPC, EIO, EOPNOTSUPP, ...). 0 cancels. */
void gt__sqlite_walbuf_fail_next_reserve(int err);

#endif
