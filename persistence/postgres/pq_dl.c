/*
 * pq_dl.c: loading libpq at the first PostgreSQL open (see pq_dl.h for why).
 *
 * DESIGN
 *   dlopen("libpq.so.5") once, then dlsym of every name in GT_PQ_FUNCS into gt__pq. The
 *   handle is never closed: the pointers stay valid for the life of the process.
 *
 * INVARIANTS
 *   - gt__pq is filled completely or the load fails: a missing symbol is an error, never a
 *     NULL pointer called later.
 *
 * THREADS
 *   Any thread; pthread_once makes the load happen once.
 */
#define GT_PQ_DL_IMPL
#include "persistence/postgres/pq_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"

#define LIBPQ_SONAME "libpq.so.5"

gt__pq_api_t gt__pq;
static int load_rc = GT_EIO;

/* Stores a dlsym result in a function pointer: ISO C has no cast between object and
 * function pointers, POSIX guarantees they have the same representation. */
static int resolve(void *lib, const char *name, void *fn_ptr, size_t size) {
  void *sym = dlsym(lib, name);
  if (!sym) {
    gt_log_error("STORE-PG-LIBPQ", "%s has no %s: libpq5 too old?", LIBPQ_SONAME, name);
    return GT_EIO;
  }
  memcpy(fn_ptr, &sym, size);
  return 0;
}

static void load_once(void) {
  void *lib = dlopen(LIBPQ_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    gt_log_error("STORE-PG-LIBPQ", "cannot load %s (%s): install the libpq5 package",
                 LIBPQ_SONAME, dlerror());
    return;
  }
  int rc = 0;
#define GT_PQ_RESOLVE(f)                                                                   \
  if (rc == 0)                                                                             \
    rc = resolve(lib, #f, &gt__pq.f_##f, sizeof(gt__pq.f_##f));
  GT_PQ_FUNCS(GT_PQ_RESOLVE)
#undef GT_PQ_RESOLVE
  if (rc) {
    memset(&gt__pq, 0, sizeof(gt__pq));
    return;
  }
  load_rc = 0;
}

int gt__pq_load(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, load_once);
  return load_rc;
}
