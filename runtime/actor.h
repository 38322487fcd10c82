/*
 * actor.h: the actor runtime on libuv.
 *
 * DESIGN
 *   A runtime owns N scheduler threads, each running one uv_loop_t. An actor is a struct whose
 *   first member is gt_actor_t, with a type (name, size, hooks) and an MPSC mailbox. It is
 *   pinned to one home thread chosen by hashing its key, and every message to it is handled on
 *   that thread, one at a time: actor code takes no locks.
 *   Actors are virtual: gt_actor_get() activates one by (type, key) on first use (allocating
 *   type->size bytes, zeroed, and running type->start on the home thread before any message)
 *   and returns a counted reference. Sending never blocks and never allocates: the message is
 *   caller-allocated with gt_msg_t as its first member (intrusive MPSC list, one atomic
 *   exchange per push). If the actor was idle it goes on its thread's run queue and the thread
 *   is woken with gt_wake_send. A thread drains an actor for at most GT_ACTOR_BATCH messages,
 *   then moves on, so no actor starves the others.
 *
 * INVARIANTS
 *   - Messages from one sender thread to one actor are received in send order.
 *   - type->receive runs only on the actor's home thread, never concurrently with itself.
 *   - After gt_actor_stop(self) (own thread only), the actor receives nothing more; messages
 *     still queued, or sent later, are freed with gt_msg_free() unhandled, unless its type
 *     sets redeliver_on_stop (see there): then they go to the key's next activation. Its
 *     memory is freed when the last reference is released (refs held by the registry count
 *     as one).
 *   - gt_actor_send owns the message once it returns 0; on error the caller keeps it.
 *
 * THREADS
 *   gt_runtime_new/start/stop/free: the owning (main) thread. gt_actor_get/send/release/
 *   gt_runtime_post: any thread. Everything that takes a `self`: the actor's home thread only.
 */
#ifndef GT_ACTOR_H
#define GT_ACTOR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define GT_ACTOR_BATCH 64
#define GT_ACTOR_KEY_MAX 512

typedef struct gt_runtime gt_runtime_t;
typedef struct gt_actor gt_actor_t;
typedef struct gt_msg gt_msg_t;

/* The header of every message. Embed it as the FIRST member of your message struct. */
struct gt_msg {
  _Atomic(gt_msg_t *) next; /* mailbox link; runtime-owned while queued */
  int32_t type;             /* the receiver's message kind; GT_MSG_* below are reserved */
  uint32_t flags;           /* free for the sender's use */
  /* Called by gt_msg_free(); NULL means free(msg). Lets pooled messages go home. */
  void (*dtor)(gt_msg_t *msg);
};

/* Reserved message types (negative); user types are >= 0. */
enum {
  GT_MSG_TIMER = -1,    /* a gt_timer_msg_t from gt_actor_timer_start */
  GT_MSG_SHUTDOWN = -2, /* the runtime is stopping: finish or answer what is in flight */
};

typedef struct gt_timer_msg {
  gt_msg_t hdr;
  uint64_t timer_id; /* as returned by gt_actor_timer_start */
  uint64_t token;    /* as given to gt_actor_timer_start */
} gt_timer_msg_t;

/* Frees a message: msg->dtor(msg) if set, else free(msg). NULL is a no-op. */
void gt_msg_free(gt_msg_t *msg);

/* calloc(1, n) for the hot paths (a message, a run, a txn): malloc + memset. glibc's calloc
 * bypasses its per-thread cache: ~250 instructions more for a small block (callgrind). The
 * empty asm hides where p comes from, or GCC folds malloc + memset back into calloc.
 * Returns the zeroed block (free() it), or NULL out of memory. Any thread. */
static inline void *gt_zalloc(size_t n) {
  void *p = malloc(n);
  if (p != NULL) {
    __asm__("" : "+r"(p));
    memset(p, 0, n);
  }
  return p;
}

typedef struct gt_actor_type {
  const char *name; /* "workflow", "task-queue", ... */
  size_t size;      /* sizeof the actor struct whose first member is gt_actor_t */
  /* On the home thread, before the first message. arg is gt_actor_get's arg. Returning
   * non-zero stops the actor at once (it receives nothing; queued messages are freed). */
  int (*start)(gt_actor_t *self, void *arg);
  /* Handles one message. The receiver owns msg and must gt_msg_free() it (or keep it and free
   * it later, e.g. a parked long poll). */
  void (*receive)(gt_actor_t *self, gt_msg_t *msg);
  /* On the home thread when the actor stops (gt_actor_stop or runtime stop). May be NULL.
   * Release resources here; the struct itself is freed by the runtime. */
  void (*stop)(gt_actor_t *self);
  /* Writes a one-line state summary for gtctl/metrics. May be NULL. Returns bytes written. */
  int (*describe)(gt_actor_t *self, char *buf, size_t len);
  /* Non-zero: stopping never loses a message (passivation). When the actor stops by
   * gt_actor_stop (from any hook, start included), every message still queued to it, or
   * that reached its mailbox before the stop, is not freed but received by the key's next
   * activation, before anything sent to that activation directly, in the order
   * the stopped actor would have received it (so per-sender order holds across
   * activations). If such leftovers exist the runtime activates the key at once, running
   * start with the `arg` the stopped activation was created with; otherwise the next
   * gt_actor_get activates it as usual (with its caller's arg). A send that arrives after
   * the stop fails with GT_ECLOSED, the caller keeping msg; gt_actor_send_key retries it on
   * the next activation, so for these types it never returns GT_ECLOSED except when the
   * runtime is closing. Callers of gt_actor_send that keep a reference must do the same
   * (release, gt_actor_get again, resend).
   * Not redelivered (freed as without the flag): GT_MSG_SHUTDOWN and GT_MSG_TIMER messages
   * of the stopped activation (its timers never fire after the stop); everything when the
   * start hook returned non-zero; everything once gt_runtime_stop has begun.
   * Costs one CAS per send instead of an atomic exchange. */
  int redeliver_on_stop;
} gt_actor_type_t;

/* The header of every actor. Fields are the runtime's; read them through the accessors. */
struct gt_actor {
  const gt_actor_type_t *type;
  gt_runtime_t *rt;
  void *internal; /* runtime-private state (mailbox, key, refcount, thread) */
};

/* ---- runtime lifecycle (owning thread) ---- */

/* Creates a runtime with `threads` scheduler threads (0 = number of cores).
 * OUT: *out. Returns 0, GT_ENOMEM, GT_EINVAL. */
int gt_runtime_new(gt_runtime_t **out, int threads);

/* Starts the scheduler threads. Returns 0 or GT_EIO. */
int gt_runtime_start(gt_runtime_t *rt);

/* Stops the runtime: sends GT_MSG_SHUTDOWN to every live actor, lets each thread drain its
 * mailboxes, runs every actor's stop hook on its home thread, closes every handle, joins the
 * threads. Blocks. Afterwards every uv loop has closed cleanly. */
void gt_runtime_stop(gt_runtime_t *rt);

/* Frees a stopped (or never started) runtime. */
void gt_runtime_free(gt_runtime_t *rt);

/* Number of scheduler threads. */
int gt_runtime_threads(gt_runtime_t *rt);

/* How late scheduler thread `thread`'s loop comes back to its timers (a 100 ms timer,
 * each firing's lateness observed): how long a message may wait for its thread. Any
 * thread. OUT: *out (runtime/metrics.h). */
struct gt_metrics_hist;
void gt_runtime_loop_lag(gt_runtime_t *rt, int thread, struct gt_metrics_hist *out);

/* Runs fn(arg) on scheduler thread `thread` (any thread may call). Returns 0, GT_ENOMEM,
 * GT_ECLOSED (runtime stopping). fn runs exactly once when 0 is returned. */
int gt_runtime_post(gt_runtime_t *rt, int thread, void (*fn)(void *arg), void *arg);

/* ---- actors (any thread) ---- */

/* Returns a counted reference to the actor (type, key), activating it if it does not exist.
 * `arg` is passed to type->start on activation only. The same (type, key) always yields the
 * same live actor. OUT: *out. Returns 0, GT_ENOMEM, GT_EINVAL (key too long), GT_ECLOSED. */
int gt_actor_get(gt_runtime_t *rt, const gt_actor_type_t *type, const void *key,
                 size_t keylen, void *arg, gt_actor_t **out);

/* Like gt_actor_get but never activates: GT_ENOTFOUND when not live. */
int gt_actor_find(gt_runtime_t *rt, const gt_actor_type_t *type, const void *key,
                  size_t keylen, gt_actor_t **out);

/* Takes another reference. */
void gt_actor_retain(gt_actor_t *a);

/* Drops a reference. */
void gt_actor_release(gt_actor_t *a);

/* Enqueues msg for actor a. Never blocks, never allocates. Takes msg on 0.
 * Returns 0, or GT_ECLOSED when the actor has stopped (the caller keeps msg). */
int gt_actor_send(gt_actor_t *a, gt_msg_t *msg);

/* gt_actor_get + gt_actor_send + gt_actor_release in one call. Takes msg on 0. For a
 * type with redeliver_on_stop, a GT_ECLOSED from the send (the actor stopped meanwhile) is
 * retried with a fresh gt_actor_get. */
int gt_actor_send_key(gt_runtime_t *rt, const gt_actor_type_t *type, const void *key,
                      size_t keylen, void *arg, gt_msg_t *msg);

/* ---- inside an actor (home thread only) ---- */

/* The actor's key (not NUL-terminated unless the caller's key was). OUT: *len. */
const void *gt_actor_key(gt_actor_t *self, size_t *len);

/* The home thread's loop, for handles the actor owns (close them in its stop hook). */
uv_loop_t *gt_actor_loop(gt_actor_t *self);

/* Index of the home thread, 0..threads-1. */
int gt_actor_thread(gt_actor_t *self);

/* Stops the actor after the current message: the stop hook runs, the registry forgets the
 * key (a later gt_actor_get activates a fresh one), queued messages are freed (or, with
 * type->redeliver_on_stop, passed to the next activation). */
void gt_actor_stop(gt_actor_t *self);

/* Arms a one-shot timer: after `ms` milliseconds a gt_timer_msg_t (type GT_MSG_TIMER, with
 * `token`) is delivered to self. Returns a timer id > 0 (0 on GT_ENOMEM). Timers of a stopped
 * actor never fire. */
uint64_t gt_actor_timer_start(gt_actor_t *self, uint64_t ms, uint64_t token);

/* Cancels a timer that has not fired yet. Returns 0 or GT_ENOTFOUND (fired or unknown). */
int gt_actor_timer_cancel(gt_actor_t *self, uint64_t timer_id);

/* Milliseconds from a monotonic clock (any thread). */
uint64_t gt_now_ms(void);

/* Wall clock, nanoseconds since the Unix epoch (any thread). */
int64_t gt_wall_ns(void);

/* ---- introspection (any thread; a snapshot, for gtctl and metrics) ---- */

/* Publishes a number about this actor for introspection (metrics: a task queue's backlog).
 * Home thread; readers see it through gt_runtime_foreach (relaxed: a statistic). */
void gt_actor_set_gauge(gt_actor_t *self, uint64_t value);

typedef struct gt_actor_info {
  const char *type_name;
  char key[128];       /* printable: as is; else hex */
  const void *raw_key; /* the key's bytes (valid during the callback only) */
  size_t raw_keylen;
  int thread;
  uint32_t mailbox_depth;
  uint64_t messages_handled;
  uint64_t gauge; /* the actor's gt_actor_set_gauge value, 0 if never set */
} gt_actor_info_t;

/* Calls fn for every live actor. Returns the number of actors visited. */
int gt_runtime_foreach(gt_runtime_t *rt, void (*fn)(const gt_actor_info_t *, void *), void *arg);

#endif
