/*
 * actor.c: actors: activation by key, the registry, references, sending,
 * running, stopping.
 *
 * DESIGN
 *   An actor is one calloc'd block: [gt__actor_int_t | the user's struct
 *   (type->size) | key]. The registry is sharded by home thread (home =
 *   hash(key) % threads), each shard a chained hash table under its own mutex;
 *   runtime code only, actor code never takes it. Activation (gt_actor_get)
 *   links the new actor, then schedules it with an empty mailbox; its first run
 *   calls type->start before popping anything, so start precedes every message
 *   whatever the senders do meanwhile. A send is one exchange on the mailbox
 *   head (mpscq.c). If the mailbox was idle, the sender takes the "scheduled"
 *   reference and pushes the actor on its home run queue. A run handles at most
 *   GT_ACTOR_BATCH messages; when the mailbox is empty it tags it idle and
 *   drops the scheduled reference.
 *   When the last reference goes, the block is freed on the home thread two
 *   closing passes of its loop later, so handles embedded in the actor and
 *   closed by its stop hook have finished closing.
 *
 * INVARIANTS
 *   1. refs = (registered ? 1 : 0) + user references + (scheduled ? 1 : 0). The
 *      struct is freed at 0, which implies stopped, not scheduled, and an empty
 *      mailbox (a sender must hold a reference, so nobody can push any more).
 *   2. start runs exactly once per activation, on the home thread, before any
 *      receive; stop runs at most once, after start returned 0. A stopped actor
 *      runs no hook again.
 *   3. `stopped` goes 0 -> 1 once, on the home thread, before the stop hook.
 *      Senders that see it get GT_ECLOSED; a message that races past the check
 *      is freed unhandled by the run (unless handoff, invariant 5).
 *   4. A stopped actor stays in the registry until its stop hook returned (so
 *      no fresh actor of the same key overlaps it), but lookups skip it; a get
 *      that finds it unlinks it and activates a fresh one, whose start runs
 *      after the old stop on the same thread.
 *   5. Redelivery (type->redeliver_on_stop; `handoff` = such a stop outside
 *      gt_runtime_stop, after a successful start). The stopping home thread
 *      closes the mailbox (one RMW on mq.head, mpscq.c) BEFORE its release
 *      store of `stopped`. Senders of these types push with a CAS on the same
 *      head, so each push is ordered before the close (its node is in the old
 *      mailbox, maybe still being linked) or after it (GT_ECLOSED, the sender
 *      keeps msg): there is no window in which a push can land in a mailbox
 *      nobody will drain, however late the sender read `stopped`. The flag is
 *      only a fast path; the close is the gate.
 *      The old mailbox is then drained by the key's NEXT activation, not
 *      re-sent: an activation holds a list of predecessors (`pred`, oldest
 *      first, each link owning the predecessor's former registry reference)
 *      and takes their leftovers before its own mailbox, on the same home
 *      thread (same key, same home), so the single-consumer rule holds. The
 *      successor is made by do_stop when leftovers exist (with the stored
 *      activation arg), or by a gt_actor_get that unlinks the stopped actor
 *      first; has_succ (under the shard lock) says which, so exactly one
 *      successor adopts it. A handed-off actor's run pops nothing more and
 *      drops its scheduled reference; an activation with predecessors never
 *      goes idle, so it keeps running until they are drained (it waits out
 *      in-flight links as `busy`). If no successor can be made (closing, no
 *      memory) the stopped actor drains itself, freeing.
 *      Order: activations of a key form a sequence; each later one's list
 *      holds every earlier one that still has leftovers, and a sender's next
 *      push can only reach the same or a later activation (an earlier one is
 *      closed). So per-sender FIFO holds across activations, and every
 *      message a send accepted (0) is received exactly once.
 *
 * THREADS
 *   get/find/retain/release/send: any thread. run, stop, accessors: the home
 *   thread.
 */
#include <ctype.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/runtime_int.h"

#define HEADER_SIZE                                                            \
  ((sizeof(gt__actor_int_t) + alignof(max_align_t) - 1) &                      \
   ~(alignof(max_align_t) - 1))

static gt__actor_int_t *int_of(gt_actor_t *a) { return a->internal; }

void gt_msg_free(gt_msg_t *msg) {
  if (msg == NULL)
    return;
  if (msg->dtor != NULL)
    msg->dtor(msg);
  else
    free(msg);
}

/* ---- references ---- */

static void actor_free(gt__actor_int_t *ai) {
  gt_runtime_t *rt = ai->rt;
  free(ai);
  uv_mutex_lock(&rt->lock);
  if (--rt->actors == 0)
    uv_cond_broadcast(&rt->cond);
  uv_mutex_unlock(&rt->lock);
}

/* Freeing is deferred by two closing passes of the home loop: a stop hook may
 * have uv_close()d handles embedded in the actor struct, and libuv touches
 * them until their close callbacks, which run in the next closing pass. Our
 * first close lands in that same pass (in any order); the second close, made
 * from its callback, lands in the pass after, when theirs are all done. */
static void reap_second(uv_handle_t *h) {
  actor_free(
      (gt__actor_int_t *)((char *)h - offsetof(gt__actor_int_t, reaper)));
}

static void reap_first(uv_handle_t *h) {
  uv_idle_init(h->loop, (uv_idle_t *)h); /* a closed handle may be reused */
  uv_close(h, reap_second);
}

void gt__actor_reap(gt__actor_int_t *ai) {
  GT_ASSERT(gt__thread_self() == ai->home);
  uv_idle_init(&ai->home->loop, &ai->reaper);
  uv_close((uv_handle_t *)&ai->reaper, reap_first);
}

/* The last reference is gone: reap on the home thread. */
static void actor_dead(gt__actor_int_t *ai) {
  if (gt__thread_self() == ai->home) {
    gt__actor_reap(ai);
  } else if (atomic_load_explicit(&ai->rt->loops_down, memory_order_acquire)) {
    actor_free(ai); /* no loop runs, so no handle can be closing */
  } else {
    /* Not scheduled (that holds a reference), so runnode is free to reuse. Once pushed,
     * the home thread may reap and free ai at any moment: read home before. */
    gt__thread_t *home = ai->home;
    ai->runnode.type = GT__RUN_REAP;
    gt__mpscq_push(&home->rq, &ai->runnode);
    gt_wake_send(&home->wake);
  }
}

static void ref(gt__actor_int_t *ai) {
  /* relaxed: the caller already holds a reference, so the count cannot be
   * racing to 0. */
  atomic_fetch_add_explicit(&ai->refs, 1, memory_order_relaxed);
}

static void unref(gt__actor_int_t *ai) {
  /* acq_rel: release makes our writes visible to whoever frees; acquire (for
   * the last one) makes everyone's writes visible before free. */
  if (atomic_fetch_sub_explicit(&ai->refs, 1, memory_order_acq_rel) == 1)
    actor_dead(ai);
}

void gt_actor_retain(gt_actor_t *a) { ref(int_of(a)); }

void gt_actor_release(gt_actor_t *a) {
  if (a != NULL)
    unref(int_of(a));
}

/* ---- registry (one shard per home thread, under its lock) ---- */

static uint64_t key_hash(const void *key, size_t len) {
  const unsigned char *p = key;
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  /* splitmix64 finalizer: FNV's low bits are weak, and we take both % threads
   * and a mask */
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

static size_t bucket_of(size_t nbuckets, const gt_actor_type_t *type,
                        uint64_t h) {
  uint64_t x = (h >> 16) ^ ((uint64_t)(uintptr_t)type * 0x9e3779b97f4a7c15ull);
  x ^= x >> 29;
  return (size_t)(x & (nbuckets - 1));
}

static gt__actor_int_t *lookup(gt__thread_t *t, const gt_actor_type_t *type,
                               uint64_t h, const void *key, size_t keylen) {
  gt__actor_int_t *ai = t->buckets[bucket_of(t->nbuckets, type, h)];
  for (; ai != NULL; ai = ai->hnext) {
    if (ai->type == type && ai->hash == h && ai->keylen == keylen &&
        (keylen == 0 || memcmp(ai->key, key, keylen) == 0))
      return ai;
  }
  return NULL;
}

static void grow(gt__thread_t *t) {
  size_t n = t->nbuckets * 2;
  gt__actor_int_t **b = calloc(n, sizeof(*b));
  if (b == NULL)
    return; /* longer chains, still correct */
  for (size_t i = 0; i < t->nbuckets; i++) {
    gt__actor_int_t *ai = t->buckets[i], *next;
    for (; ai != NULL; ai = next) {
      next = ai->hnext;
      size_t j = bucket_of(n, ai->type, ai->hash);
      ai->hnext = b[j];
      b[j] = ai;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
}

static void link_actor(gt__thread_t *t, gt__actor_int_t *ai) {
  if (t->count >= t->nbuckets)
    grow(t);
  size_t i = bucket_of(t->nbuckets, ai->type, ai->hash);
  ai->hnext = t->buckets[i];
  t->buckets[i] = ai;
  ai->registered = 1;
  t->count++;
}

/* Returns 1 when ai was linked (the caller then drops the registry reference).
 */
static int unlink_actor(gt__thread_t *t, gt__actor_int_t *ai) {
  if (!ai->registered)
    return 0;
  gt__actor_int_t **pp =
      &t->buckets[bucket_of(t->nbuckets, ai->type, ai->hash)];
  while (*pp != ai)
    pp = &(*pp)->hnext;
  *pp = ai->hnext;
  ai->hnext = NULL;
  ai->registered = 0;
  t->count--;
  return 1;
}

static int is_stopped(gt__actor_int_t *ai) {
  /* acquire: pairs with the release store in do_stop */
  return atomic_load_explicit(&ai->stopped, memory_order_acquire);
}

/* ---- activation ---- */

/* Under t->lock. succ, a fresh activation not yet scheduled, will receive
 * old's leftovers before its own mailbox. old's registry reference (old was
 * just unlinked) becomes succ's pred reference. */
static void adopt(gt__actor_int_t *succ, gt__actor_int_t *old) {
  succ->pred = succ->pred_last = old;
  old->has_succ = 1;
}

static gt__actor_int_t *actor_new(gt_runtime_t *rt, gt__thread_t *t,
                                  const gt_actor_type_t *type, uint64_t h,
                                  const void *key, size_t keylen, void *arg,
                                  uint32_t refs) {
  char *block = calloc(1, HEADER_SIZE + type->size + keylen);
  if (block == NULL)
    return NULL;
  gt__actor_int_t *ai = (gt__actor_int_t *)block;
  ai->pub = (gt_actor_t *)(block + HEADER_SIZE);
  ai->pub->type = type;
  ai->pub->rt = rt;
  ai->pub->internal = ai;
  unsigned char *k = (unsigned char *)ai->pub + type->size;
  if (keylen > 0)
    memcpy(k, key, keylen);
  ai->key = k;
  ai->keylen = keylen;
  ai->hash = h;
  ai->rt = rt;
  ai->home = t;
  ai->type = type;
  ai->arg = arg;
  /* Not idle: the actor starts out scheduled (its first run calls start). */
  gt__mpscq_init(&ai->mq, 0);
  atomic_init(&ai->depth, 0);
  atomic_init(&ai->stopped, 0);
  atomic_init(&ai->handled, 0);
  atomic_init(&ai->gauge, 0);
  atomic_init(&ai->refs, refs); /* registry + scheduled (+ caller) */
  ai->runnode.type = GT__RUN_ACTOR;
  ai->stopnode.type = GT__MSG_STOP;
  uv_mutex_lock(&rt->lock);
  rt->actors++;
  uv_mutex_unlock(&rt->lock);
  return ai;
}

static int check_args(gt_runtime_t *rt, const gt_actor_type_t *type,
                      const void *key, size_t keylen, gt_actor_t **out) {
  if (rt == NULL || type == NULL || out == NULL || (keylen > 0 && key == NULL))
    return GT_EINVAL;
  if (keylen > GT_ACTOR_KEY_MAX || type->size < sizeof(gt_actor_t) ||
      type->receive == NULL)
    return GT_EINVAL;
  return 0;
}

int gt_actor_get(gt_runtime_t *rt, const gt_actor_type_t *type, const void *key,
                 size_t keylen, void *arg, gt_actor_t **out) {
  int rc = check_args(rt, type, key, keylen, out);
  if (rc != 0)
    return rc;
  uint64_t h = key_hash(key, keylen);
  gt__thread_t *t = &rt->threads[h % (uint64_t)rt->nthreads];
  gt__actor_int_t *old = NULL;
  uv_mutex_lock(&t->lock);
  /* acquire: pairs with gt_runtime_stop's release; the lock alone would do
   * (stop_all takes it after the store), this documents the intent. */
  if (atomic_load_explicit(&rt->closing, memory_order_acquire)) {
    uv_mutex_unlock(&t->lock);
    return GT_ECLOSED;
  }
  gt__actor_int_t *ai = lookup(t, type, h, key, keylen);
  if (ai != NULL && is_stopped(ai)) {
    unlink_actor(t, ai); /* invariant 4 */
    old = ai;
    ai = NULL;
  }
  if (ai != NULL) {
    ref(ai);
    uv_mutex_unlock(&t->lock);
    *out = ai->pub;
    return 0;
  }
  ai = actor_new(rt, t, type, h, key, keylen, arg, 3);
  if (ai != NULL) {
    link_actor(t, ai);
    /* handoff was written before `stopped`, which we read with acquire */
    if (old != NULL && old->handoff) {
      adopt(ai, old);
      old = NULL;
    }
  }
  uv_mutex_unlock(&t->lock);
  if (old != NULL)
    unref(old);
  if (ai == NULL)
    return GT_ENOMEM;
  gt__thread_schedule(t, ai);
  *out = ai->pub;
  return 0;
}

int gt_actor_find(gt_runtime_t *rt, const gt_actor_type_t *type,
                  const void *key, size_t keylen, gt_actor_t **out) {
  int rc = check_args(rt, type, key, keylen, out);
  if (rc != 0)
    return rc;
  uint64_t h = key_hash(key, keylen);
  gt__thread_t *t = &rt->threads[h % (uint64_t)rt->nthreads];
  uv_mutex_lock(&t->lock);
  gt__actor_int_t *ai = lookup(t, type, h, key, keylen);
  if (ai != NULL && !is_stopped(ai))
    ref(ai);
  else
    ai = NULL;
  uv_mutex_unlock(&t->lock);
  if (ai == NULL)
    return GT_ENOTFOUND;
  *out = ai->pub;
  return 0;
}

/* ---- sending ---- */

/* Returns 0 or GT_ECLOSED (a redelivering type's mailbox is closed). */
static int push_msg(gt__actor_int_t *ai, gt_msg_t *msg) {
  /* relaxed: a statistic; incremented before the push so it never goes below
   * zero. */
  atomic_fetch_add_explicit(&ai->depth, 1, memory_order_relaxed);
  /* Redelivering types pay a CAS (the mailbox can close under us, invariant
   * 5); the others keep the single exchange. */
  int r = ai->type->redeliver_on_stop ? gt__mpscq_push_open(&ai->mq, msg)
                                      : gt__mpscq_push(&ai->mq, msg);
  if (r < 0) {
    atomic_fetch_sub_explicit(&ai->depth, 1, memory_order_relaxed);
    return GT_ECLOSED;
  }
  if (r) {
    /* It was idle: we schedule it. The caller's reference keeps ai alive until
     * here. */
    ref(ai);
    gt__thread_schedule(ai->home, ai);
  }
  return 0;
}

void gt__actor_enqueue(gt__actor_int_t *ai, gt_msg_t *msg) {
  /* Callers (timers, out-of-turn stop) run on the home thread of an actor
   * that has not stopped, so its mailbox is open. */
  int rc = push_msg(ai, msg);
  GT_ASSERT(rc == 0);
}

int gt_actor_send(gt_actor_t *a, gt_msg_t *msg) {
  GT_ASSERT(a != NULL && msg != NULL);
  gt__actor_int_t *ai = int_of(a);
  if (is_stopped(ai))
    return GT_ECLOSED; /* a fast path; the closed mailbox is the real gate */
  return push_msg(ai, msg);
}

int gt_actor_send_key(gt_runtime_t *rt, const gt_actor_type_t *type,
                      const void *key, size_t keylen, void *arg,
                      gt_msg_t *msg) {
  for (;;) {
    gt_actor_t *a;
    int rc = gt_actor_get(rt, type, key, keylen, arg, &a);
    if (rc != 0)
      return rc;
    rc = gt_actor_send(a, msg);
    gt_actor_release(a);
    /* The actor stopped between our get and our push: for a redelivering
     * type, the next get finds (or makes) the activation that follows it,
     * which receives the old one's leftovers first, so order holds. Each
     * retry means an activation stopped meanwhile: progress. */
    if (rc != GT_ECLOSED || !type->redeliver_on_stop)
      return rc;
  }
}

/* ---- running and stopping (home thread) ---- */

static void do_stop(gt__actor_int_t *ai);

static void do_start(gt__actor_int_t *ai) {
  ai->started = 1;
  int rc = 0;
  if (ai->type->start != NULL) {
    ai->home->current = ai;
    rc = ai->type->start(ai->pub, ai->arg);
    ai->home->current = NULL;
  }
  ai->start_ok = rc == 0;
  if (rc != 0 || ai->stop_req)
    do_stop(ai);
}

static void do_stop(gt__actor_int_t *ai) {
  if (atomic_load_explicit(&ai->stopped, memory_order_relaxed))
    return;
  if (!ai->started) {
    do_start(
        ai); /* invariant 2: every activation runs start, even at shutdown */
    if (atomic_load_explicit(&ai->stopped, memory_order_relaxed))
      return;
  }
  ai->stop_req = 1;
  /* Invariant 5. acquire: pairs with gt_runtime_stop; a stale 0 only means a
   * redelivery the closing check below (under the shard lock) may refuse. */
  ai->handoff = ai->type->redeliver_on_stop && ai->start_ok &&
                !atomic_load_explicit(&ai->rt->stopping, memory_order_acquire);
  if (ai->handoff)
    gt__mpscq_close(&ai->mq); /* before `stopped`: see invariant 5 */
  /* release: senders that see 1 (acquire) stop pushing, and get sees handoff;
   * see invariants 3 and 5 */
  atomic_store_explicit(&ai->stopped, 1, memory_order_release);
  gt__timer_close_all(ai);
  if (ai->start_ok && ai->type->stop != NULL)
    ai->type->stop(ai->pub);
  gt__thread_t *t = ai->home;
  gt__actor_int_t *succ = NULL;
  uv_mutex_lock(&t->lock);
  int linked = unlink_actor(t, ai);
  int leftovers =
      ai->handoff && (ai->pred != NULL || !gt__mpscq_is_empty(&ai->mq));
  if (linked && leftovers &&
      !atomic_load_explicit(&ai->rt->closing, memory_order_acquire)) {
    /* The runtime re-activates the key itself, with the arg this activation
     * was created with; refs: registry + scheduled. */
    succ = actor_new(ai->rt, t, ai->type, ai->hash, ai->key, ai->keylen,
                     ai->arg, 2);
    if (succ != NULL) {
      link_actor(t, succ);
      adopt(succ, ai);
      linked = 0; /* our registry reference is succ's now */
    }
  }
  ai->handed_off = ai->has_succ; /* by us, or by a gt_actor_get meanwhile */
  uv_mutex_unlock(&t->lock);
  if (succ != NULL)
    gt__thread_schedule(t, succ);
  else if (leftovers && !ai->handed_off &&
           !atomic_load_explicit(&ai->rt->closing, memory_order_acquire))
    gt_log_error("RT-REDELIVER-NOMEM",
                 "%s actor: no memory to re-activate it; its queued messages "
                 "are dropped",
                 ai->type->name);
  if (linked)
    unref(
        ai); /* never the last: the caller holds a run or snapshot reference */
}

static gt_msg_t *pop_mq(gt__actor_int_t *x, int *busy) {
  gt_msg_t *m = gt__mpscq_pop(&x->mq, busy);
  if (m != NULL)
    atomic_fetch_sub_explicit(&x->depth, 1, memory_order_relaxed);
  return m;
}

/* The next message for ai: its predecessors' leftovers, oldest activation
 * first, then its own mailbox. *inherited tells which. NULL with *busy == 0
 * means every predecessor is drained (and released) and mq is empty. */
static gt_msg_t *next_msg(gt__actor_int_t *ai, int *busy, int *inherited) {
  *inherited = 0;
  while (ai->pred != NULL) {
    gt__actor_int_t *p = ai->pred;
    if (p->pred != NULL) {
      /* p was handed off before draining its own predecessors: theirs come
       * first. Splice p's list in front of p. */
      p->pred_last->pred_next = p;
      ai->pred = p->pred;
      p->pred = p->pred_last = NULL;
      continue;
    }
    gt_msg_t *m = pop_mq(p, busy);
    if (m != NULL || *busy) {
      *inherited = m != NULL;
      return m;
    }
    /* p's mailbox is closed and empty, for good: p is done. */
    ai->pred = p->pred_next;
    if (ai->pred == NULL)
      ai->pred_last = NULL;
    p->pred_next = NULL;
    unref(p);
  }
  return pop_mq(ai, busy);
}

static void deliver(gt__actor_int_t *ai, gt_msg_t *m, int inherited) {
  gt__thread_t *t = ai->home;
  if (m->type == GT__MSG_STOP) {
    if (m == &ai->stopnode) /* a predecessor's is embedded in it: skip */
      do_stop(ai);
    return;
  }
  /* A stopped actor's leftovers, or a predecessor's shutdown and timer
   * messages (those were for it alone), are freed unhandled. */
  if (atomic_load_explicit(&ai->stopped, memory_order_relaxed) ||
      (inherited && (m->type == GT_MSG_SHUTDOWN || m->type == GT_MSG_TIMER))) {
    gt_msg_free(m);
    return;
  }
  t->current = ai;
  ai->type->receive(ai->pub, m);
  t->current = NULL;
  t->work++;
  atomic_store_explicit(
      &ai->handled,
      atomic_load_explicit(&ai->handled, memory_order_relaxed) + 1,
      memory_order_relaxed);
  if (ai->stop_req)
    do_stop(ai);
}

int gt__actor_run(gt__actor_int_t *ai) {
  if (!ai->started)
    do_start(ai);
  int n = 0, busy = 0, inherited;
  while (n < GT_ACTOR_BATCH && !ai->handed_off) {
    gt_msg_t *m = next_msg(ai, &busy, &inherited);
    if (m == NULL)
      break;
    n++;
    deliver(ai, m, inherited);
  }
  if (ai->handed_off) {
    /* Our successor drains our mailbox; nobody can schedule us again (it is
     * closed). */
    unref(ai); /* the scheduled reference */
    return 0;
  }
  if (n == GT_ACTOR_BATCH || busy)
    return 1;
  /* No predecessor left and mq empty; a closed mq stays so: no idle tag. */
  if (!ai->handoff && !gt__mpscq_try_idle(&ai->mq))
    return 1;
  unref(ai); /* the scheduled reference; ai may be gone now */
  return 0;
}

void gt_actor_stop(gt_actor_t *self) {
  gt__actor_int_t *ai = int_of(self);
  GT_ASSERT(gt__thread_self() == ai->home);
  if (ai->stop_req || atomic_load_explicit(&ai->stopped, memory_order_relaxed))
    return;
  ai->stop_req = 1;
  if (ai->home->current == ai)
    return; /* in a hook: the run stops it when the hook returns */
  /* Out of turn (a uv callback, a post): stop at the actor's next turn, which
   * also keeps self valid for the caller until it returns. */
  gt__actor_enqueue(ai, &ai->stopnode);
}

/* ---- snapshots ---- */

static gt__actor_int_t **snapshot(gt__thread_t *t, size_t *n) {
  uv_mutex_lock(&t->lock);
  gt__actor_int_t **v = malloc((t->count + 1) * sizeof(*v));
  size_t k = 0;
  for (size_t i = 0; v != NULL && i < t->nbuckets; i++) {
    for (gt__actor_int_t *ai = t->buckets[i]; ai != NULL; ai = ai->hnext) {
      if (!is_stopped(ai)) {
        ref(ai);
        v[k++] = ai;
      }
    }
  }
  uv_mutex_unlock(&t->lock);
  if (v == NULL)
    gt_log_error("RT-SNAPSHOT-NOMEM", "thread %d: no memory to list actors",
                 t->index);
  *n = k;
  return v;
}

void gt__actor_each(gt__thread_t *t, void (*fn)(gt__actor_int_t *, void *),
                    void *arg) {
  size_t n;
  gt__actor_int_t **v = snapshot(t, &n);
  for (size_t i = 0; i < n; i++) {
    fn(v[i], arg);
    unref(v[i]);
  }
  free(v);
}

static void stop_one(gt__actor_int_t *ai, void *arg) { do_stop(ai); }

void gt__actor_stop_all(gt__thread_t *t) {
  GT_ASSERT(gt__thread_self() == t);
  gt__actor_each(t, stop_one, NULL);
}

static void format_key(const gt__actor_int_t *ai, char *out, size_t cap) {
  int printable = 1;
  for (size_t i = 0; i < ai->keylen && printable; i++)
    printable = isprint(ai->key[i]);
  size_t o = 0;
  if (printable) {
    for (size_t i = 0; i < ai->keylen && o + 1 < cap; i++)
      out[o++] = (char)ai->key[i];
  } else {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < ai->keylen && o + 2 < cap; i++) {
      out[o++] = hex[ai->key[i] >> 4];
      out[o++] = hex[ai->key[i] & 15];
    }
  }
  out[o] = '\0';
}

typedef struct foreach_ctx {
  void (*fn)(const gt_actor_info_t *, void *);
  void *arg;
  int visited;
} foreach_ctx_t;

static void visit(gt__actor_int_t *ai, void *arg) {
  foreach_ctx_t *c = arg;
  gt_actor_info_t info;
  info.type_name = ai->type->name;
  format_key(ai, info.key, sizeof(info.key));
  info.raw_key = ai->key;
  info.raw_keylen = ai->keylen;
  info.gauge = atomic_load_explicit(&ai->gauge, memory_order_relaxed);
  info.thread = ai->home->index;
  info.mailbox_depth = atomic_load_explicit(&ai->depth, memory_order_relaxed);
  info.messages_handled =
      atomic_load_explicit(&ai->handled, memory_order_relaxed);
  c->fn(&info, c->arg);
  c->visited++;
}

void gt_actor_set_gauge(gt_actor_t *self, uint64_t value) {
  atomic_store_explicit(&int_of(self)->gauge, value, memory_order_relaxed);
}

int gt_runtime_foreach(gt_runtime_t *rt,
                       void (*fn)(const gt_actor_info_t *, void *), void *arg) {
  foreach_ctx_t c = {fn, arg, 0};
  for (int i = 0; i < rt->nthreads; i++)
    gt__actor_each(&rt->threads[i], visit, &c);
  return c.visited;
}

/* ---- accessors (home thread) ---- */

const void *gt_actor_key(gt_actor_t *self, size_t *len) {
  gt__actor_int_t *ai = int_of(self);
  if (len != NULL)
    *len = ai->keylen;
  return ai->key;
}

uv_loop_t *gt_actor_loop(gt_actor_t *self) { return &int_of(self)->home->loop; }

int gt_actor_thread(gt_actor_t *self) { return int_of(self)->home->index; }
