/*
 * timer.c: actor timers and the clocks.
 *
 * DESIGN
 *   One uv_timer_t per armed timer, on the actor's home loop: libuv keeps its
 *   timers in a min-heap already, so this is the heap the design asks for
 *   without a second one. The gt_timer_msg_t is allocated when the timer is
 *   armed, so firing cannot fail. Each actor keeps its live timers on a list:
 *   cancel and stop find them there.
 *   Every workflow and activity task arms a timeout timer and nearly always
 *   cancels it, so arming was two callocs and closing two frees: 7% of a
 *   scheduler thread in a hello workflow (callgrind). A closed timer's memory
 *   goes to a free list of its thread (up to TIMER_CACHE_MAX, freed when the
 *   thread exits) and the next arm takes it from there; the message is
 *   malloc'd and filled field by field (glibc's calloc bypasses its per-thread
 *   cache: ~255 instructions against ~50).
 *
 * INVARIANTS
 *   - A timer is either on its actor's list (armed, message owned by the timer)
 *     or closing (message delivered or freed). Firing unlinks it before
 *     delivering, so cancel after the fire returns GT_ENOTFOUND and the actor
 *     receives the message exactly once.
 *   - Cancel and stop run on the home thread, as the timer callback does: once
 *     they return, the callback cannot run (uv_timer_stop + uv_close), so
 *     nothing is delivered later.
 *   - The timer struct is freed or cached only in its close callback (libuv
 *     handle rule); a cached struct is not a libuv handle until uv_timer_init.
 *
 * THREADS
 *   gt_actor_timer_*: the actor's home thread. gt_now_ms, gt_wall_ns: any
 *   thread. The free list is thread-local: close callbacks run on the loop's
 *   (home) thread, as arming does.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/runtime_int.h"
#include "runtime/timer.h"

struct gt__timer {
  uv_timer_t handle; /* first: the close callback casts back */
  gt__actor_int_t *ai;
  gt_timer_msg_t *msg; /* NULL once delivered */
  uint64_t id;
  gt__timer_t *prev, *next; /* the actor's list */
};

/* Closed timers kept per thread; 256 covers a scheduler's burst of task timeouts
 * (64 KiB at most) without holding memory after a spike. */
#define TIMER_CACHE_MAX 256

static _Thread_local gt__timer_t *cache; /* linked through next */
static _Thread_local unsigned n_cache;
static pthread_key_t cache_key; /* its destructor empties an exiting thread's cache */
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_key_ok;

static void cache_drain(void *unused) {
  (void)unused;
  while (cache != NULL) {
    gt__timer_t *tm = cache;
    cache = tm->next;
    free(tm);
  }
  n_cache = 0;
}

static void cache_key_init(void) {
  cache_key_ok = pthread_key_create(&cache_key, cache_drain) == 0;
}

static void on_closed(uv_handle_t *h) {
  gt__timer_t *tm = (gt__timer_t *)h;
  if (n_cache == 0) { /* first into this thread's cache: arm its exit hook */
    pthread_once(&cache_once, cache_key_init);
    if (!cache_key_ok || pthread_setspecific(cache_key, (void *)1) != 0) {
      free(tm); /* no hook, no cache: it would leak at thread exit */
      return;
    }
  }
  if (n_cache >= TIMER_CACHE_MAX) {
    free(tm);
    return;
  }
  tm->next = cache;
  cache = tm;
  n_cache++;
}

/* A timer struct from this thread's cache, or a new one; NULL on OOM. */
static gt__timer_t *timer_alloc(void) {
  gt__timer_t *tm = cache;
  if (tm == NULL)
    return malloc(sizeof(*tm));
  cache = tm->next;
  n_cache--;
  return tm;
}

size_t gt__timer_cached(void) { return n_cache; }

static void unlink_timer(gt__timer_t *tm) {
  gt__actor_int_t *ai = tm->ai;
  if (tm->prev != NULL)
    tm->prev->next = tm->next;
  else
    ai->timers = tm->next;
  if (tm->next != NULL)
    tm->next->prev = tm->prev;
  tm->prev = tm->next = NULL;
}

/* Unlinks, frees the undelivered message, and closes the handle. */
static void discard(gt__timer_t *tm) {
  uv_timer_stop(&tm->handle);
  unlink_timer(tm);
  free(tm->msg);
  tm->msg = NULL;
  uv_close((uv_handle_t *)&tm->handle, on_closed);
}

static void on_fire(uv_timer_t *h) {
  gt__timer_t *tm = (gt__timer_t *)h;
  gt__actor_int_t *ai = tm->ai;
  gt_timer_msg_t *msg = tm->msg;
  tm->msg = NULL;
  unlink_timer(tm);
  uv_close((uv_handle_t *)h, on_closed);
  /* Not stopped (stop closes every timer first), so the registry reference
   * keeps ai. */
  gt__actor_enqueue(ai, &msg->hdr);
}

uint64_t gt_actor_timer_start(gt_actor_t *self, uint64_t ms, uint64_t token) {
  gt__actor_int_t *ai = self->internal;
  GT_ASSERT(gt__thread_self() == ai->home);
  if (atomic_load_explicit(&ai->stopped, memory_order_relaxed))
    return 0; /* would never fire */
  gt_timer_msg_t *msg = malloc(sizeof(*msg));
  gt__timer_t *tm = msg != NULL ? timer_alloc() : NULL;
  if (tm == NULL) {
    free(msg);
    return 0;
  }
  uv_loop_t *loop = &ai->home->loop;
  uv_timer_init(loop, &tm->handle); /* cannot fail on unix; sets every field */
  /* relaxed: ids only need to be unique */
  tm->id = atomic_fetch_add_explicit(&ai->rt->next_timer_id, 1,
                                     memory_order_relaxed);
  tm->ai = ai;
  tm->msg = msg;
  tm->prev = NULL;
  atomic_init(&msg->hdr.next, NULL);
  msg->hdr.type = GT_MSG_TIMER;
  msg->hdr.flags = 0;
  msg->hdr.dtor = NULL;
  msg->timer_id = tm->id;
  msg->token = token;
  /* The loop's clock is cached and may be behind, and it counts whole
   * milliseconds: refresh it and add one, so the timer never fires before `ms`
   * have really passed. */
  uv_update_time(loop);
  uv_timer_start(&tm->handle, on_fire, ms > 0 ? ms + 1 : 0, 0);
  tm->next = ai->timers;
  if (ai->timers != NULL)
    ai->timers->prev = tm;
  ai->timers = tm;
  return tm->id;
}

int gt_actor_timer_cancel(gt_actor_t *self, uint64_t timer_id) {
  gt__actor_int_t *ai = self->internal;
  GT_ASSERT(gt__thread_self() == ai->home);
  for (gt__timer_t *tm = ai->timers; tm != NULL; tm = tm->next) {
    if (tm->id == timer_id) {
      discard(tm);
      return 0;
    }
  }
  return GT_ENOTFOUND;
}

void gt__timer_close_all(gt__actor_int_t *ai) {
  while (ai->timers != NULL)
    discard(ai->timers);
}

uint64_t gt_now_ms(void) { return uv_hrtime() / 1000000u; }

int64_t gt_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
