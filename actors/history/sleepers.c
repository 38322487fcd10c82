/*
 * sleepers.c: wakes passivated workflows when their next timer falls due.
 *
 * DESIGN
 *   A workflow actor whose open run only waits (on user timers, its run or execution
 *   timeout, or a message) stops to free its memory (wf_maybe_passivate). Whatever waits on
 *   it by message (a signal, a child's result, a poll) activates it again through its key.
 *   Time is the one thing no message brings: before stopping, the actor sends this actor a
 *   wake message naming its key and the wall-clock millisecond of its earliest deadline.
 *   The sleepers actor keeps those messages in a min-heap by due time with one actor timer
 *   armed for the earliest; when it fires, each due message is sent on, as is, to the
 *   workflow's key: that activates the workflow, whose load re-arms its timers from the
 *   history and fires the overdue ones (as after a restart).
 *   A sleeping workflow thus costs one small message here (its key and due time) instead of
 *   its actor, runs and history in memory.
 *
 * INVARIANTS
 *   - Every message taken is either in the heap or sent on (or freed at stop): no leak.
 *   - A wake that comes early or for a workflow already awake is harmless: activation
 *     loads, finds nothing due, and the workflow sleeps again.
 *   - The heap is in memory only: after a restart the server's recovery registers again
 *     the runs whose executions.state says they sleep (gt_history_recover), and activates
 *     the others.
 *
 * THREADS: the sleepers actor's home thread; wf_sleep_until on a workflow actor's thread.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define SLEEPERS_KEY "sleepers"

typedef struct wake_msg {
  gt_msg_t hdr;      /* GT_MSG_WAKE */
  int64_t due_ms;    /* wall clock */
  size_t keylen;
  char key[];        /* the workflow actor's key */
} wake_msg_t;

typedef struct sleepers {
  gt_actor_t base;
  gt_server_t *srv;
  wake_msg_t **heap; /* min-heap by due_ms */
  size_t n, cap;
  uint64_t timer;    /* armed actor timer, 0 = none */
  int64_t timer_due_ms;
  uint64_t woken;
} sleepers_t;

static void heap_swap(wake_msg_t **h, size_t a, size_t b) {
  wake_msg_t *t = h[a];
  h[a] = h[b];
  h[b] = t;
}

static int heap_push(sleepers_t *s, wake_msg_t *m) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    wake_msg_t **h = realloc(s->heap, cap * sizeof(*h));
    if (!h)
      return GT_ENOMEM;
    s->heap = h;
    s->cap = cap;
  }
  size_t i = s->n++;
  s->heap[i] = m;
  while (i > 0 && s->heap[(i - 1) / 2]->due_ms > s->heap[i]->due_ms) {
    heap_swap(s->heap, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  return 0;
}

static wake_msg_t *heap_pop(sleepers_t *s) {
  wake_msg_t *top = s->heap[0];
  s->heap[0] = s->heap[--s->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < s->n && s->heap[l]->due_ms < s->heap[m]->due_ms)
      m = l;
    if (r < s->n && s->heap[r]->due_ms < s->heap[m]->due_ms)
      m = r;
    if (m == i)
      break;
    heap_swap(s->heap, i, m);
    i = m;
  }
  return top;
}

/* Arms the timer for the earliest entry, unless it is armed for that time already. */
static void arm(sleepers_t *s) {
  if (s->n == 0)
    return;
  int64_t due = s->heap[0]->due_ms;
  if (s->timer && s->timer_due_ms <= due)
    return;
  if (s->timer)
    gt_actor_timer_cancel(&s->base, s->timer);
  int64_t left = due - gt_wall_ns() / 1000000;
  s->timer = gt_actor_timer_start(&s->base, (uint64_t)(left > 0 ? left : 0), 0);
  s->timer_due_ms = due;
}

/* Sends a wake message on, as is, to its workflow's key (which activates it). */
static void send_wake(sleepers_t *s, wake_msg_t *m) {
  if (gt_actor_send_key(s->srv->rt, &gt_workflow_actor_type, m->key, m->keylen, s->srv,
                        &m->hdr) != 0) {
    gt_log_warn("HIST-WAKE-LOST", "could not wake a sleeping workflow (stopping?)");
    gt_msg_free(&m->hdr);
  }
}

static void wake_due(sleepers_t *s) {
  int64_t now = gt_wall_ns() / 1000000;
  while (s->n && s->heap[0]->due_ms <= now) {
    wake_msg_t *m = heap_pop(s);
    s->woken++;
    size_t nl = strnlen(m->key, m->keylen);
    gt_log_debug("HIST-WAKE", "waking workflow %.*s", (int)(m->keylen - nl - (nl < m->keylen)),
                 m->key + nl + (nl < m->keylen));
    send_wake(s, m);
  }
}

static int sl_start(gt_actor_t *self, void *arg) {
  ((sleepers_t *)self)->srv = arg;
  return 0;
}

static void sl_receive(gt_actor_t *self, gt_msg_t *m) {
  sleepers_t *s = (sleepers_t *)self;
  if (m->type == GT_MSG_WAKE) {
    if (heap_push(s, (wake_msg_t *)m) != 0) {
      send_wake(s, (wake_msg_t *)m); /* cannot keep it: wake the workflow now */
      return;
    }
    arm(s);
    return;
  }
  if (m->type == GT_MSG_TIMER) {
    s->timer = 0;
    wake_due(s);
    arm(s);
  }
  gt_msg_free(m);
}

static void sl_stop(gt_actor_t *self) {
  sleepers_t *s = (sleepers_t *)self;
  while (s->n)
    gt_msg_free(&heap_pop(s)->hdr);
  free(s->heap);
}

static int sl_describe(gt_actor_t *self, char *buf, size_t len) {
  sleepers_t *s = (sleepers_t *)self;
  return snprintf(buf, len, "sleeping=%zu woken=%llu next_due_ms=%lld", s->n,
                  (unsigned long long)s->woken, s->n ? (long long)s->heap[0]->due_ms : 0LL);
}

static const gt_actor_type_t sleepers_type = {
    .name = "sleepers",
    .size = sizeof(sleepers_t),
    .start = sl_start,
    .receive = sl_receive,
    .stop = sl_stop,
    .describe = sl_describe,
};

int wf_sleep_until(workflow_t *wf, int64_t due_ms) {
  size_t kl;
  const void *key = gt_actor_key(&wf->base, &kl);
  return wf_sleep_key_until(wf->srv, key, kl, due_ms);
}

int wf_sleep_key_until(gt_server_t *srv, const void *key, size_t kl, int64_t due_ms) {
  wake_msg_t *m = malloc(sizeof(*m) + kl);
  if (!m)
    return GT_ENOMEM;
  memset(&m->hdr, 0, sizeof(m->hdr));
  m->hdr.type = GT_MSG_WAKE;
  m->due_ms = due_ms;
  m->keylen = kl;
  memcpy(m->key, key, kl);
  int rc = gt_actor_send_key(srv->rt, &sleepers_type, SLEEPERS_KEY,
                             sizeof(SLEEPERS_KEY) - 1, srv, &m->hdr);
  if (rc != 0)
    free(m);
  return rc;
}
