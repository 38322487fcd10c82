/*
 * pcache.c: a thin wrapper around SQLite's default page cache that skips the cache
 * truncations that have nothing to drop.
 *
 * WHY
 *   At the end of every write transaction the pager truncates its page cache to the
 *   database size (xTruncate(dbSize + 1)). The default cache (pcache1) skips that only
 *   when the largest key it ever held is below the limit; otherwise it walks hash slots,
 *   and when that key is far above the limit it walks the WHOLE hash table and every
 *   chain. A B-tree page split (balance_nonroot) renumbers pages through a temporary key
 *   far above the database (262145 with 4 KiB pages), so after any split the largest key
 *   stays there and the next COMMIT walks the whole cache: with the writer's 32 MiB cache
 *   that was 12% of the writer thread's CPU (perf, file-store hello benchmark), for a
 *   truncation that drops nothing since the page was renumbered back at once.
 *
 * DESIGN
 *   Each cache created through the wrapper keeps a conservative upper bound of the keys it
 *   may hold: `bound` covers every key fetched since the last real truncation, `moved[]`
 *   lists the keys above `bound` that pages were renumbered to and not (yet) away from.
 *   xTruncate(limit) reaches pcache1 only when the bound or a moved key is >= limit; after a
 *   real truncation every key is < limit, so the bound becomes limit - 1. A renumbering
 *   away from a listed key removes it. When moved[] is full the wrapper stops tracking
 *   (`untracked`) and the next truncation is passed through.
 *   The wrapped methods are SQLite's own default ones (SQLITE_CONFIG_GETPCACHE2), so the
 *   allocation, eviction and recycling behaviour is unchanged.
 *
 * INVARIANTS
 *   - Every key the inner cache holds is <= bound, or is in moved[], or untracked is set.
 *     Hence a skipped truncation never leaves a page at or above the limit behind.
 *   - Installed before SQLite initializes, or not at all (sqlite3_config refuses later).
 *
 * THREADS
 *   gt__sqlite_pcache_install: once, before the first connection (schema.c calls it under
 *   pthread_once). A cache instance is used by its connection's thread only.
 */
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "persistence/sqlite/sqlite_int.h"
#include "runtime/err.h"

#define MOVED_MAX 8

typedef struct {
  sqlite3_pcache *inner;
  unsigned bound;            /* every fetched key since the last real truncation is <= */
  unsigned n_moved;          /* entries of moved[] */
  unsigned moved[MOVED_MAX]; /* renumbered-to keys above bound, not renumbered away */
  int untracked;             /* moved[] overflowed: the next truncation must run */
} wrapped_cache_t;

static sqlite3_pcache_methods2 inner_methods; /* SQLite's defaults, copied at install */
static atomic_int installed;
/* Truncations of the caches used by this thread, for the unit test: per thread, so the
 * writer's COMMIT and every reader's transaction touch no shared cache line. */
static _Thread_local uint64_t n_skipped, n_passed;

static int w_init(void *arg) { return inner_methods.xInit ? inner_methods.xInit(arg) : 0; }

static void w_shutdown(void *arg) {
  if (inner_methods.xShutdown)
    inner_methods.xShutdown(arg);
}

static sqlite3_pcache *w_create(int page_size, int extra_size, int purgeable) {
  wrapped_cache_t *w = calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->inner = inner_methods.xCreate(page_size, extra_size, purgeable);
  if (!w->inner) {
    free(w);
    return NULL;
  }
  return (sqlite3_pcache *)w;
}

static wrapped_cache_t *W(sqlite3_pcache *p) { return (wrapped_cache_t *)p; }

static void w_cachesize(sqlite3_pcache *p, int n) { inner_methods.xCachesize(W(p)->inner, n); }

static int w_pagecount(sqlite3_pcache *p) { return inner_methods.xPagecount(W(p)->inner); }

static sqlite3_pcache_page *w_fetch(sqlite3_pcache *p, unsigned key, int create) {
  wrapped_cache_t *w = W(p);
  sqlite3_pcache_page *pg = inner_methods.xFetch(w->inner, key, create);
  if (pg && key > w->bound)
    w->bound = key;
  return pg;
}

static void w_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard) {
  inner_methods.xUnpin(W(p)->inner, pg, discard);
}

static void forget_moved(wrapped_cache_t *w, unsigned key) {
  for (unsigned i = 0; i < w->n_moved; i++) {
    if (w->moved[i] == key) {
      w->moved[i] = w->moved[--w->n_moved];
      return;
    }
  }
}

static void w_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned old_key,
                    unsigned new_key) {
  wrapped_cache_t *w = W(p);
  inner_methods.xRekey(w->inner, pg, old_key, new_key);
  forget_moved(w, old_key);
  if (new_key <= w->bound)
    return;
  if (w->n_moved < MOVED_MAX)
    w->moved[w->n_moved++] = new_key;
  else
    w->untracked = 1;
}

/* Whether the inner cache may hold a key >= limit (see INVARIANTS). */
static int may_hold_from(const wrapped_cache_t *w, unsigned limit) {
  if (w->untracked || w->bound >= limit)
    return 1;
  for (unsigned i = 0; i < w->n_moved; i++)
    if (w->moved[i] >= limit)
      return 1;
  return 0;
}

static void w_truncate(sqlite3_pcache *p, unsigned limit) {
  wrapped_cache_t *w = W(p);
  if (!may_hold_from(w, limit)) {
    n_skipped++;
    return;
  }
  n_passed++;
  inner_methods.xTruncate(w->inner, limit);
  w->bound = limit ? limit - 1 : 0;
  w->n_moved = 0;
  w->untracked = 0;
}

static void w_destroy(sqlite3_pcache *p) {
  inner_methods.xDestroy(W(p)->inner);
  free(p);
}

static void w_shrink(sqlite3_pcache *p) {
  if (inner_methods.xShrink)
    inner_methods.xShrink(W(p)->inner);
}

int gt__sqlite_pcache_install(void) {
  sqlite3_pcache_methods2 def;
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &def) != SQLITE_OK || !def.xCreate)
    return GT_EIO;
  inner_methods = def;
  sqlite3_pcache_methods2 wrapped = {
      .iVersion = 1,
      .pArg = def.pArg,
      .xInit = w_init,
      .xShutdown = w_shutdown,
      .xCreate = w_create,
      .xCachesize = w_cachesize,
      .xPagecount = w_pagecount,
      .xFetch = w_fetch,
      .xUnpin = w_unpin,
      .xRekey = w_rekey,
      .xTruncate = w_truncate,
      .xDestroy = w_destroy,
      .xShrink = w_shrink,
  };
  if (sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapped) != SQLITE_OK)
    return GT_EIO;
  atomic_store(&installed, 1);
  return 0;
}

int gt__sqlite_pcache_stats(uint64_t *skipped, uint64_t *passed) {
  *skipped = n_skipped;
  *passed = n_passed;
  return atomic_load(&installed);
}
