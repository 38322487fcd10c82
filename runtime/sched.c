/*
 * sched.c: scheduler threads, run queues, gt_runtime_post and the runtime
 * lifecycle.
 *
 * DESIGN
 *   Each scheduler thread runs one uv_loop_t. Its run queue is an MPSC queue
 *   (mpscq.c) of embedded actor nodes, post items and an exit node; pushers
 *   wake the loop with gt_wake_send (wake.h), which merges wake-ups. The wake's
 *   callback drains the run queue: an actor runs for at most GT_ACTOR_BATCH messages
 *   (actor.c); if it still has work it is parked on a local `later` list and
 *   pushed back at the end of the callback; the wake's `more` hook (rq_pending)
 *   then finds the queue non-empty and wakes the loop again, so it polls I/O and
 *   timers between batches.
 *   Loop lag: each loop runs a timer every LAG_MS (unreferenced: it does not keep the
 *   loop alive) and observes how late it fires into a histogram the metrics read
 *   (gt_runtime_loop_lag): a loop busy with a long batch, or a thread waiting for a core,
 *   shows there.
 *
 * gt_runtime_stop runs in phases, on the owning thread:
 *   1. stopping = 1 (no more redelivering stops); GT_MSG_SHUTDOWN to every
 *      live actor; then probe rounds (a post to every thread that reports
 *      whether it did any work since the last probe) until two rounds in a row
 *      are quiet, or drain_ms passes.
 *   2. closing = 1 (no more activations); every thread stops its home actors.
 *   3. Wait until every actor struct is freed (each queued or running actor
 *      holds a ref, so after this no actor can be pushed on a run queue).
 *   4. Close posts (a seq_cst handshake with in-flight posters), push the exit
 *      node to each thread: it drains its run queue, closes its handles, and
 *      its loop ends.
 *   5. Join; uv_loop_close() on each loop.
 *
 * INVARIANTS
 *   - A post accepted (0 returned) runs exactly once: posts close only after no
 *     poster is between its check and its push, and exit nodes go behind every
 *     accepted post.
 *   - A thread's loop closes only after its run queue is empty and no actor
 *     exists.
 *
 * THREADS
 *   new/start/stop/free: the owning thread (never a scheduler thread). post,
 *   schedule: any. Everything else here: the loop thread of `t`.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/runtime_int.h"

#define DRAIN_MS_DEFAULT 2000
#define ACTOR_FREE_WAIT_MS 5000
/* The loop-lag timer's period: 10 wake-ups a second per thread when idle. */
#define LAG_MS 100
#define ITEMS_PER_WAKE                                                         \
  1024 /* run-queue items per async callback before polling I/O */

typedef struct post_item {
  gt_msg_t hdr; /* type GT__RUN_POST */
  void (*fn)(void *arg);
  void *arg;
} post_item_t;

static _Thread_local gt__thread_t *self_thread;

gt__thread_t *gt__thread_self(void) { return self_thread; }

static void wake(gt__thread_t *t) { gt_wake_send(&t->wake); }

void gt__thread_schedule(gt__thread_t *t, gt__actor_int_t *ai) {
  gt__mpscq_push(&t->rq, &ai->runnode);
  wake(t);
}

/* ---- the loop side ---- */

static void close_stray(uv_handle_t *h, void *arg) {
  gt__thread_t *t = arg;
  if (uv_is_closing(h))
    return;
  if (h == gt_wake_handle(&t->wake)) {
    gt_wake_close(&t->wake, NULL); /* also closes its eventfd */
    return;
  }
  if (h != (uv_handle_t *)&t->lag_timer)
    gt_log_warn("RT-HANDLE-LEAK", "thread %d: closing a %s handle left open",
                t->index, uv_handle_type_name(uv_handle_get_type(h)));
  uv_close(h, NULL);
}

static void requeue_later(gt__thread_t *t) {
  if (t->later == NULL)
    return;
  while (t->later != NULL) {
    gt__actor_int_t *ai = t->later;
    t->later = ai->later_next;
    ai->later_next = NULL;
    gt__mpscq_push(&t->rq, &ai->runnode);
  }
}

static int run_item(gt__thread_t *t, gt_msg_t *m) {
  switch (m->type) {
  case GT__RUN_ACTOR: {
    gt__actor_int_t *ai =
        (gt__actor_int_t *)((char *)m - offsetof(gt__actor_int_t, runnode));
    if (gt__actor_run(ai)) {
      ai->later_next = t->later;
      t->later = ai;
    }
    return 0;
  }
  case GT__RUN_POST: {
    post_item_t *p = (post_item_t *)m;
    p->fn(p->arg);
    free(p);
    return 0;
  }
  case GT__RUN_EXIT:
    t->exiting = 1;
    return 0;
  case GT__RUN_REAP:
    gt__actor_reap(
        (gt__actor_int_t *)((char *)m - offsetof(gt__actor_int_t, runnode)));
    return 0;
  }
  GT_PANIC("run queue: bad node type %d", (int)m->type);
}

static void on_wake(gt_wake_t *h) {
  gt__thread_t *t = h->data;
  int busy = 0;
  for (int i = 0; i < ITEMS_PER_WAKE; i++) {
    gt_msg_t *m = gt__mpscq_pop(&t->rq, &busy);
    if (m == NULL)
      break;
    run_item(t, m);
    if (i == ITEMS_PER_WAKE - 1)
      busy = 1; /* items left: not done, whatever exiting says */
  }
  /* No wake-up of our own for what is left: items past ITEMS_PER_WAKE, actors
   * requeued here, or a producer between its exchange and its link (busy) all
   * leave the run queue non-empty, and the wake's `more` hook (rq_pending) sees
   * that once this callback returns and brings us back after polling I/O. */
  requeue_later(t);
  if (t->exiting && !busy && t->later == NULL) {
    /* Stop hooks closed the actors' handles; anything left is someone's leak.
     * Closing it lets the loop end and uv_loop_close() succeed. */
    uv_walk(&t->loop, close_stray, t);
  }
}

/* The loop-lag timer: how much later than due it fired (uv_hrtime against the due time
 * set at the previous firing: libuv's millisecond loop clock can make it fire up to ~1
 * ms early or late of that, so lags under a millisecond are noise). */
static void on_lag(uv_timer_t *h) {
  gt__thread_t *t = h->data;
  uint64_t now = uv_hrtime();
  gt_metrics_ahist_observe(&t->lag, now > t->lag_due_ns ? now - t->lag_due_ns : 0);
  t->lag_due_ns = now + LAG_MS * 1000000ull;
}

/* The wake's `more` hook: anything on the run queue (or being linked) that the callback
 * left, requeued actors included. */
static int rq_pending(gt_wake_t *w) {
  gt__thread_t *t = w->data;
  return !gt__mpscq_is_empty(&t->rq);
}

static void thread_main(void *arg) {
  gt__thread_t *t = arg;
  self_thread = t;
  char name[16]; /* readable profiles and top -H; Linux caps names at 15 chars */
  snprintf(name, sizeof(name), "gt-sched-%d", t->index);
  pthread_setname_np(pthread_self(), name);
  t->lag_due_ns = uv_hrtime() + LAG_MS * 1000000ull;
  uv_timer_start(&t->lag_timer, on_lag, LAG_MS, LAG_MS);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  self_thread = NULL;
}

/* ---- lifecycle ---- */

static int default_threads(void) {
  unsigned n = uv_available_parallelism();
  return n > 0 ? (int)n : 1;
}

static void thread_fini(gt__thread_t *t) {
  int rc = uv_loop_close(&t->loop);
  if (rc != 0)
    gt_log_error("RT-LOOP-BUSY", "thread %d: uv_loop_close: %s", t->index,
                 uv_strerror(rc));
  uv_mutex_destroy(&t->lock);
  free(t->buckets);
}

static int thread_init(gt_runtime_t *rt, gt__thread_t *t, int index) {
  t->rt = rt;
  t->index = index;
  gt__mpscq_init(&t->rq, 0);
  atomic_init(&t->exitnode.next, NULL);
  t->exitnode.type = GT__RUN_EXIT;
  t->nbuckets = 64;
  t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
  if (t->buckets == NULL)
    return GT_ENOMEM;
  if (uv_mutex_init(&t->lock) != 0)
    goto err_buckets;
  if (uv_loop_init(&t->loop) != 0)
    goto err_lock;
  if (gt_wake_init(&t->loop, &t->wake, on_wake) != 0)
    goto err_loop;
  t->wake.data = t;
  gt_wake_set_more(&t->wake, rq_pending);
  uv_timer_init(&t->loop, &t->lag_timer); /* cannot fail */
  t->lag_timer.data = t;
  uv_unref((uv_handle_t *)&t->lag_timer); /* it does not keep the loop alive */
  return 0;
err_loop:
  uv_loop_close(&t->loop);
err_lock:
  uv_mutex_destroy(&t->lock);
err_buckets:
  free(t->buckets);
  return GT_ENOMEM;
}

/* Closes the wake handle of a loop that never ran a thread. */
static void thread_close_unstarted(gt__thread_t *t) {
  gt_wake_close(&t->wake, NULL);
  uv_close((uv_handle_t *)&t->lag_timer, NULL);
  uv_run(&t->loop, UV_RUN_DEFAULT);
}

int gt_runtime_new(gt_runtime_t **out, int threads) {
  if (out == NULL || threads < 0)
    return GT_EINVAL;
  if (threads == 0)
    threads = default_threads();
  gt_runtime_t *rt = calloc(1, sizeof(*rt));
  if (rt == NULL)
    return GT_ENOMEM;
  rt->threads = calloc((size_t)threads, sizeof(*rt->threads));
  if (rt->threads == NULL)
    goto err_rt;
  if (uv_mutex_init(&rt->lock) != 0)
    goto err_threads;
  if (uv_cond_init(&rt->cond) != 0)
    goto err_lock;
  atomic_init(&rt->closing, 0);
  atomic_init(&rt->stopping, 0);
  atomic_init(&rt->post_open, 1);
  atomic_init(&rt->post_inflight, 0);
  atomic_init(&rt->next_timer_id, 1);
  atomic_init(&rt->loops_down, 1);
  rt->drain_ms = DRAIN_MS_DEFAULT;
  for (int i = 0; i < threads; i++) {
    if (thread_init(rt, &rt->threads[i], i) != 0) {
      for (int j = 0; j < i; j++) {
        thread_close_unstarted(&rt->threads[j]);
        thread_fini(&rt->threads[j]);
      }
      goto err_cond;
    }
    rt->nthreads = i + 1;
  }
  *out = rt;
  return 0;
err_cond:
  uv_cond_destroy(&rt->cond);
err_lock:
  uv_mutex_destroy(&rt->lock);
err_threads:
  free(rt->threads);
err_rt:
  free(rt);
  return GT_ENOMEM;
}

int gt_runtime_start(gt_runtime_t *rt) {
  GT_ASSERT(rt != NULL && !rt->started);
  atomic_store_explicit(&rt->loops_down, 0, memory_order_release);
  for (int i = 0; i < rt->nthreads; i++) {
    gt__thread_t *t = &rt->threads[i];
    if (uv_thread_create(&t->tid, thread_main, t) != 0) {
      gt_log_error("RT-THREAD-FAIL", "cannot start scheduler thread %d", i);
      /* Stop the ones already running: their loops hold nothing yet. */
      for (int j = 0; j < i; j++) {
        gt__mpscq_push(&rt->threads[j].rq, &rt->threads[j].exitnode);
        wake(&rt->threads[j]);
        uv_thread_join(&rt->threads[j].tid);
      }
      for (int j = i; j < rt->nthreads; j++)
        thread_close_unstarted(&rt->threads[j]);
      rt->started = rt->stopped = 1;
      atomic_store_explicit(&rt->loops_down, 1, memory_order_release);
      return GT_EIO;
    }
  }
  rt->started = 1;
  return 0;
}

int gt_runtime_threads(gt_runtime_t *rt) { return rt->nthreads; }

void gt_runtime_loop_lag(gt_runtime_t *rt, int thread, gt_metrics_hist_t *out) {
  gt_metrics_ahist_read(&rt->threads[thread].lag, out);
}

int gt_runtime_post(gt_runtime_t *rt, int thread, void (*fn)(void *arg),
                    void *arg) {
  if (thread < 0 || thread >= rt->nthreads || fn == NULL)
    return GT_EINVAL;
  /* seq_cst on both sides (here and in close_posts): a Dekker handshake. Either
   * we see post_open == 0, or close_posts sees our increment and waits for our
   * push. */
  atomic_fetch_add_explicit(&rt->post_inflight, 1, memory_order_seq_cst);
  if (!atomic_load_explicit(&rt->post_open, memory_order_seq_cst)) {
    atomic_fetch_sub_explicit(&rt->post_inflight, 1, memory_order_release);
    return GT_ECLOSED;
  }
  post_item_t *p = malloc(sizeof(*p));
  if (p == NULL) {
    atomic_fetch_sub_explicit(&rt->post_inflight, 1, memory_order_release);
    return GT_ENOMEM;
  }
  p->hdr.type = GT__RUN_POST;
  p->hdr.flags = 0;
  p->hdr.dtor = NULL;
  p->fn = fn;
  p->arg = arg;
  gt__mpscq_push(&rt->threads[thread].rq, &p->hdr);
  wake(&rt->threads[thread]);
  atomic_fetch_sub_explicit(&rt->post_inflight, 1, memory_order_release);
  return 0;
}

static void close_posts(gt_runtime_t *rt) {
  atomic_store_explicit(&rt->post_open, 0, memory_order_seq_cst);
  while (atomic_load_explicit(&rt->post_inflight, memory_order_seq_cst) != 0)
    sched_yield(); /* a poster is between two instructions; this is brief */
}

/* ---- stop: run a function on every thread and wait ---- */

typedef struct barrier {
  gt_runtime_t *rt;
  void (*fn)(gt__thread_t *t, struct barrier *b);
  int remaining; /* under rt->lock */
  int busy;      /* under rt->lock: some thread reported work */
} barrier_t;

typedef struct barrier_arg {
  barrier_t *b;
  gt__thread_t *t;
} barrier_arg_t;

static void barrier_run(void *arg) {
  barrier_arg_t *ba = arg;
  barrier_t *b = ba->b;
  b->fn(ba->t, b);
  uv_mutex_lock(&b->rt->lock);
  if (--b->remaining == 0)
    uv_cond_broadcast(&b->rt->cond);
  uv_mutex_unlock(&b->rt->lock);
}

/* Runs fn on every thread, waits for all. Returns 1 when any reported busy. */
static int on_all_threads(gt_runtime_t *rt,
                          void (*fn)(gt__thread_t *, barrier_t *)) {
  barrier_t b = {.rt = rt, .fn = fn, .remaining = rt->nthreads};
  barrier_arg_t args[rt->nthreads];
  for (int i = 0; i < rt->nthreads; i++) {
    args[i] = (barrier_arg_t){&b, &rt->threads[i]};
    while (gt_runtime_post(rt, i, barrier_run, &args[i]) == GT_ENOMEM)
      sched_yield(); /* out of memory during shutdown: nothing better to do than
                        retry */
  }
  uv_mutex_lock(&rt->lock);
  while (b.remaining > 0)
    uv_cond_wait(&rt->cond, &rt->lock);
  uv_mutex_unlock(&rt->lock);
  return b.busy;
}

static void probe(gt__thread_t *t, barrier_t *b) {
  int busy = t->work != 0 || t->later != NULL;
  t->work = 0;
  if (busy) {
    uv_mutex_lock(&b->rt->lock);
    b->busy = 1;
    uv_mutex_unlock(&b->rt->lock);
  }
}

static void send_shutdown(gt__actor_int_t *ai, void *arg) {
  gt_msg_t *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    gt_log_warn("RT-SHUTDOWN-NOMEM", "no memory for a shutdown message");
    return;
  }
  m->type = GT_MSG_SHUTDOWN;
  if (gt_actor_send(ai->pub, m) != 0)
    free(m);
}

static void shutdown_home(gt__thread_t *t, barrier_t *b) {
  gt__actor_each(t, send_shutdown, NULL);
  t->work = 0;
}

static void stop_home(gt__thread_t *t, barrier_t *b) { gt__actor_stop_all(t); }

static void drain(gt_runtime_t *rt) {
  on_all_threads(rt, shutdown_home);
  uint64_t deadline = gt_now_ms() + rt->drain_ms;
  int quiet = 0;
  while (quiet < 2) {
    if (gt_now_ms() > deadline) {
      gt_log_warn("RT-DRAIN-TIMEOUT",
                  "actors still busy after %llu ms; stopping them",
                  (unsigned long long)rt->drain_ms);
      return;
    }
    quiet = on_all_threads(rt, probe) ? 0 : quiet + 1;
  }
}

static void wait_actors_freed(gt_runtime_t *rt) {
  uint64_t deadline = uv_hrtime() + (uint64_t)ACTOR_FREE_WAIT_MS * 1000000u;
  uv_mutex_lock(&rt->lock);
  while (rt->actors > 0) {
    uint64_t now = uv_hrtime();
    if (now >= deadline ||
        uv_cond_timedwait(&rt->cond, &rt->lock, deadline - now) != 0) {
      if (rt->actors > 0)
        gt_log_error("RT-ACTOR-LEAK",
                     "%ld actor(s) still referenced at shutdown", rt->actors);
      break;
    }
  }
  uv_mutex_unlock(&rt->lock);
}

void gt_runtime_stop(gt_runtime_t *rt) {
  GT_ASSERT(gt__thread_self() == NULL); /* would wait for itself */
  if (rt->stopped)
    return;
  rt->stopped = 1;
  if (!rt->started)
    return;
  /* release: from here stops free queued messages instead of redelivering
   * them (actor.c, invariant 5), so the drain can end. */
  atomic_store_explicit(&rt->stopping, 1, memory_order_release);
  drain(rt);
  /* release: pairs with the acquire in gt_actor_get; the shard locks order it
   * anyway. */
  atomic_store_explicit(&rt->closing, 1, memory_order_release);
  on_all_threads(rt, stop_home);
  wait_actors_freed(rt);
  close_posts(rt);
  for (int i = 0; i < rt->nthreads; i++) {
    gt__mpscq_push(&rt->threads[i].rq, &rt->threads[i].exitnode);
    wake(&rt->threads[i]);
  }
  for (int i = 0; i < rt->nthreads; i++)
    uv_thread_join(&rt->threads[i].tid);
  atomic_store_explicit(&rt->loops_down, 1, memory_order_release);
}

void gt_runtime_free(gt_runtime_t *rt) {
  if (rt == NULL)
    return;
  if (rt->started && !rt->stopped)
    gt_runtime_stop(rt);
  for (int i = 0; i < rt->nthreads; i++) {
    if (!rt->started)
      thread_close_unstarted(&rt->threads[i]);
    thread_fini(&rt->threads[i]);
  }
  uv_cond_destroy(&rt->cond);
  uv_mutex_destroy(&rt->lock);
  free(rt->threads);
  free(rt);
}
