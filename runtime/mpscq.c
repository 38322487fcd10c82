/*
 * mpscq.c: the intrusive multi-producer single-consumer queue behind mailboxes
 * and run queues.
 *
 * DESIGN
 *   Vyukov's intrusive MPSC list with a stub node. Producers append with one
 *   atomic exchange on `head` and then link the previous node to theirs. The
 *   consumer walks from `tail`. When it takes the last real node it re-inserts
 *   the stub, so a handed-out node is never part of the list again and its
 *   receiver may free it at once (Pony instead keeps the last message as the
 *   stub, which works only because Pony's runtime frees messages itself).
 *   Pony's tag bit: bit 0 of `head` means "idle". Only the consumer sets it (a
 *   CAS from stub to stub|1, when the list is empty); the next producer's
 *   exchange sees the tag and so knows, at no extra cost, that it must schedule
 *   the consumer.
 *
 * INVARIANTS
 *   - A pushed node is handed out exactly once, in push order per producer.
 *   - head is tagged only when head == stub and the consumer is not running.
 *   - Bit 1 of head means "closed" (redelivering stops, actor.c). Only the
 *     consumer sets it, with one RMW on head, so every gt__mpscq_push_open
 *     (a CAS on head) is ordered before it (the node is in the list) or after
 *     it (the push fails): no push can land later. After the close head
 *     changes only by the consumer. Plain gt__mpscq_push must not be used on a
 *     queue that may be closed (its exchange would clear the bit).
 *   - Between a producer's exchange and its link store the list is "busy": the
 *     consumer sees a NULL next with tail != head and must come back later (the
 *     producer will schedule it only if the queue was idle, so a busy consumer
 *     must requeue itself).
 *
 * THREADS
 *   push / push_open: any thread. pop / try_idle / close / is_empty: the one
 *   consumer.
 */
#include "runtime/runtime_int.h"

#define TAG ((uintptr_t)1)    /* idle: the pusher schedules the consumer */
#define CLOSED ((uintptr_t)2) /* closed: push_open fails; head is frozen */

static gt_msg_t *untag(gt_msg_t *p) {
  return (gt_msg_t *)((uintptr_t)p & ~(TAG | CLOSED));
}

void gt__mpscq_init(gt__mpscq_t *q, int idle) {
  atomic_init(&q->stub.next, NULL);
  q->stub.type = 0;
  q->stub.flags = 0;
  q->stub.dtor = NULL;
  q->tail = &q->stub;
  gt_msg_t *h = idle ? (gt_msg_t *)((uintptr_t)&q->stub | TAG) : &q->stub;
  atomic_init(&q->head, h);
}

int gt__mpscq_push(gt__mpscq_t *q, gt_msg_t *m) {
  atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
  /* acq_rel: release publishes m->next == NULL to the next producer, whose
   * exchange reads m (acquire) before it links m->next; acquire orders our link
   * store after the previous producer's NULL store, or after the consumer's
   * stub reset when the tag was set. */
  gt_msg_t *prev = atomic_exchange_explicit(&q->head, m, memory_order_acq_rel);
  int was_idle = ((uintptr_t)prev & TAG) != 0;
  /* release: the consumer's acquire load of prev->next then sees all of m's
   * contents. */
  atomic_store_explicit(&untag(prev)->next, m, memory_order_release);
  return was_idle;
}

gt_msg_t *gt__mpscq_pop(gt__mpscq_t *q, int *busy) {
  gt_msg_t *tail = q->tail;
  gt_msg_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  *busy = 0;
  if (tail == &q->stub) {
    if (next == NULL) {
      /* Empty, unless a producer has exchanged head but not linked yet. */
      *busy = untag(atomic_load_explicit(&q->head, memory_order_acquire)) !=
              &q->stub;
      return NULL;
    }
    q->tail = next;
    tail = next;
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
  }
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  /* tail is the last linked node. If it is also head, re-insert the stub behind
   * it so tail can be handed out without leaving the list empty of nodes. */
  gt_msg_t *h = atomic_load_explicit(&q->head, memory_order_acquire);
  if (untag(h) != tail) {
    *busy = 1;
    return NULL;
  }
  if ((uintptr_t)h & CLOSED) {
    /* Nobody can link behind tail any more: hand it out and leave the queue
     * empty (stub only). Only the consumer writes a closed head. */
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    q->tail = &q->stub;
    atomic_store_explicit(&q->head, (gt_msg_t *)((uintptr_t)&q->stub | CLOSED),
                          memory_order_relaxed);
    return tail;
  }
  gt__mpscq_push(q, &q->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  *busy =
      1; /* a producer slipped in before our stub push and is still linking */
  return NULL;
}

int gt__mpscq_push_open(gt__mpscq_t *q, gt_msg_t *m) {
  atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
  /* relaxed: only the CLOSED bit of a failed read is used, and then m is not
   * published. */
  gt_msg_t *prev = atomic_load_explicit(&q->head, memory_order_relaxed);
  do {
    if ((uintptr_t)prev & CLOSED)
      return -1;
    /* acq_rel on success: as the exchange in gt__mpscq_push. */
  } while (!atomic_compare_exchange_weak_explicit(
      &q->head, &prev, m, memory_order_acq_rel, memory_order_relaxed));
  atomic_store_explicit(&untag(prev)->next, m, memory_order_release);
  return ((uintptr_t)prev & TAG) != 0;
}

void gt__mpscq_close(gt__mpscq_t *q) {
  gt_msg_t *h = atomic_load_explicit(&q->head, memory_order_relaxed);
  /* acq_rel: the RMW chain on head orders us after every push that got in
   * (their nodes are ours to drain) and before every push_open that fails. */
  while (!atomic_compare_exchange_weak_explicit(
      &q->head, &h, (gt_msg_t *)((uintptr_t)h | CLOSED), memory_order_acq_rel,
      memory_order_relaxed))
    ;
}

int gt__mpscq_is_empty(gt__mpscq_t *q) {
  return q->tail == &q->stub &&
         untag(atomic_load_explicit(&q->head, memory_order_acquire)) ==
             &q->stub;
}

int gt__mpscq_try_idle(gt__mpscq_t *q) {
  gt_msg_t *expect = &q->stub;
  gt_msg_t *idle = (gt_msg_t *)((uintptr_t)&q->stub | TAG);
  /* release: a producer that reads the tag (acquire exchange) then writes
   * stub.next; our earlier reset of stub.next (in the stub push) must happen
   * before that write. */
  return atomic_compare_exchange_strong_explicit(
      &q->head, &expect, idle, memory_order_release, memory_order_relaxed);
}
