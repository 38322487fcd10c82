/*
 * runtime_int.h: internals shared by the runtime's .c files (mpscq.c, sched.c,
 * actor.c, timer.c). Nothing outside runtime/ may include this.
 *
 * Fields are grouped by who touches them, as in Pony's actor.h: producer-side
 * atomics, the consumer (home thread) fields, immutable fields, and fields
 * guarded by a shard lock. The producer-side atomics sit on their own cache
 * line (padding, not alignas: the structs are calloc'd and UBSan checks member
 * alignment).
 */
#ifndef GT_RUNTIME_INT_H
#define GT_RUNTIME_INT_H

#include <stdint.h>

#include "runtime/actor.h"
#include "runtime/metrics.h"
#include "runtime/wake.h"

#define GT__CACHELINE 64

/* Internal node kinds. They never reach an actor's receive hook. */
enum {
  GT__MSG_STOP = -100,  /* embedded in the actor: a deferred gt_actor_stop */
  GT__RUN_ACTOR = -101, /* run-queue node embedded in the actor */
  GT__RUN_POST = -102,  /* heap item from gt_runtime_post */
  GT__RUN_EXIT = -103,  /* embedded in the thread: close the loop */
  GT__RUN_REAP = -104,  /* the actor's runnode, reused: free it (home thread) */
};

/* ---- intrusive MPSC queue (mpscq.c) ----
 * Vyukov's intrusive queue with a stub node, plus Pony's tag bit on `head`: a
 * tagged head means "empty and nobody is running the consumer", so the producer
 * whose exchange returns a tagged pointer learns, in the same atomic operation,
 * that it must schedule the consumer. */
typedef struct gt__mpscq {
  _Atomic(gt_msg_t *) head; /* producers: last pushed node (bit 0: idle) */
  char pad0[GT__CACHELINE - sizeof(void *)];
  gt_msg_t *tail; /* consumer only: next node to hand out (or the stub) */
  gt_msg_t stub;  /* consumer only: keeps the list non-empty */
} gt__mpscq_t;

/* Initializes q, empty. idle != 0 tags head so that the first push reports "was
 * idle". */
void gt__mpscq_init(gt__mpscq_t *q, int idle);

/* Any thread. Appends m. Returns 1 when the queue was idle (the caller must now
 * schedule the consumer), else 0. */
int gt__mpscq_push(gt__mpscq_t *q, gt_msg_t *m);

/* Consumer only. Returns the oldest node, or NULL. On NULL, *busy is 1 when a
 * producer is half-way through a push (try again later) and 0 when the queue is
 * really empty. */
gt_msg_t *gt__mpscq_pop(gt__mpscq_t *q, int *busy);

/* Any thread. Like gt__mpscq_push (a CAS instead of an exchange) but fails
 * with -1, m not pushed, once the queue is closed. */
int gt__mpscq_push_open(gt__mpscq_t *q, gt_msg_t *m);

/* Consumer only. Closes q: every later push_open fails. Nodes already in (or
 * being linked) stay to be popped; pop hands out the last one without the
 * stub dance. Never try_idle a closed queue. */
void gt__mpscq_close(gt__mpscq_t *q);

/* Consumer only. 1 when nothing is queued or being linked (final once closed).
 */
int gt__mpscq_is_empty(gt__mpscq_t *q);

/* Consumer only, after gt__mpscq_pop returned NULL with *busy == 0. Marks the
 * queue idle. Returns 1 on success (the consumer gives up its turn), 0 when a
 * producer raced in (keep consuming). */
int gt__mpscq_try_idle(gt__mpscq_t *q);

/* ---- scheduler threads (sched.c) ---- */
typedef struct gt__actor_int gt__actor_int_t;

typedef struct gt__thread {
  gt__mpscq_t rq; /* run queue: actors, posts, exit; any thread pushes */
  gt_runtime_t *rt;
  int index;
  uv_loop_t loop;
  gt_wake_t wake; /* any thread: gt_wake_send after a push to rq */
  /* loop lag: a timer every LAG_MS (sched.c); how late it fires */
  uv_timer_t lag_timer;
  uint64_t lag_due_ns;    /* loop thread */
  gt_metrics_ahist_t lag; /* the loop thread observes, any thread reads */
  uv_thread_t tid;
  gt_msg_t exitnode;
  /* loop thread only */
  gt__actor_int_t *current; /* actor whose receive is running, or NULL */
  gt__actor_int_t *later;   /* actors to requeue after this wake-up's drain */
  uint64_t work;            /* receives since the last shutdown probe */
  int exiting;
  /* registry shard of the actors homed here (under lock) */
  uv_mutex_t lock;
  gt__actor_int_t **buckets;
  size_t nbuckets;
  size_t count;
} gt__thread_t;

struct gt_runtime {
  int nthreads;
  gt__thread_t *threads;
  int started;               /* owning thread */
  int stopped;               /* owning thread */
  _Atomic int closing;       /* no more activations (stop phase 2) */
  _Atomic int stopping;      /* gt_runtime_stop began: stops free, never
                                redeliver (actor.c) */
  _Atomic int post_open;     /* gt_runtime_post accepts work */
  _Atomic int post_inflight; /* posts between their check and their push */
  _Atomic uint64_t next_timer_id;
  _Atomic int loops_down; /* no scheduler thread runs (before start, after
                             join): dead actors are freed at once */
  uint64_t drain_ms;      /* stop phase 1 budget */
  uv_mutex_t lock;        /* guards actors, and the cond below */
  uv_cond_t cond;
  long actors; /* allocated actor structs (under lock) */
};

/* The scheduler thread running the caller, or NULL. */
gt__thread_t *gt__thread_self(void);

/* Puts an actor on its home thread's run queue and wakes the thread. */
void gt__thread_schedule(gt__thread_t *t, gt__actor_int_t *ai);

/* ---- actors (actor.c) ---- */
typedef struct gt__timer gt__timer_t;

struct gt__actor_int {
  gt__mpscq_t mq;           /* mailbox; mq.head is the senders' cache line */
  _Atomic uint32_t depth;   /* queued messages, for introspection (relaxed) */
  _Atomic int stopped;      /* set once by the home thread; senders read it */
  _Atomic uint32_t refs;    /* registry (1) + users + "scheduled" (1) */
  _Atomic uint64_t handled; /* written by the home thread, read by foreach */
  _Atomic uint64_t gauge;   /* gt_actor_set_gauge: home thread writes, foreach reads */
  char pad1[GT__CACHELINE];
  /* home thread only */
  gt_msg_t runnode;  /* our link in the home run queue */
  gt_msg_t stopnode; /* pushed by an out-of-turn gt_actor_stop */
  gt__actor_int_t *later_next;
  int started;     /* start hook has run */
  int start_ok;    /* ... and returned 0 (so the stop hook is owed) */
  int stop_req;    /* gt_actor_stop was called */
  int stop_queued; /* stopnode is in the mailbox */
  /* Redelivering stops (actor.c, invariant 5). handoff is written before the
   * release store of `stopped`, so others read it after seeing stopped. */
  int handoff;    /* stopped with redelivery: mq is closed */
  int handed_off; /* a successor consumes our mq: our run pops no more */
  /* Predecessors whose leftovers we receive before our own mailbox, oldest
   * first, linked by pred_next; each link holds a reference. */
  gt__actor_int_t *pred, *pred_last, *pred_next;
  gt__timer_t *timers;
  uv_idle_t reaper; /* closed twice to defer the free (actor.c) */
  /* immutable after activation */
  gt_runtime_t *rt;
  gt__thread_t *home;
  const gt_actor_type_t *type;
  void *arg; /* for the start hook, and a redelivery's re-activation */
  uint64_t hash;
  size_t keylen;
  const unsigned char *key;
  gt_actor_t *pub;
  /* under home->lock */
  gt__actor_int_t *hnext;
  int registered;
  int has_succ; /* handoff: a successor adopted us (pred holds our ref) */
};

/* Home thread: runs an actor for one turn. Returns 1 when it must be requeued,
 * 0 when it went idle (and may have been freed). */
int gt__actor_run(gt__actor_int_t *ai);

/* Home thread: frees ai (refs 0) after two closing passes of its loop. */
void gt__actor_reap(gt__actor_int_t *ai);

/* Home thread: stops every actor homed on t (stop phase 2). */
void gt__actor_stop_all(gt__thread_t *t);

/* Calls fn on a retained snapshot of the live actors homed on t; releases them
 * after. */
void gt__actor_each(gt__thread_t *t, void (*fn)(gt__actor_int_t *, void *),
                    void *arg);

/* Pushes msg to ai's mailbox, scheduling ai when it was idle. No stopped check.
 */
void gt__actor_enqueue(gt__actor_int_t *ai, gt_msg_t *msg);

/* ---- timers (timer.c) ---- */

/* Home thread: cancels and frees every timer of ai. */
void gt__timer_close_all(gt__actor_int_t *ai);

#endif
