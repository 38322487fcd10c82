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
 *   - Between a producer's exchange and its link store the list is "busy": the
 *     consumer sees a NULL next with tail != head and must come back later (the
 *     producer will schedule it only if the queue was idle, so a busy consumer
 *     must requeue itself).
 *
 * THREADS
 *   gt__mpscq_push: any thread. pop / try_idle: the one consumer.
 */
#include "runtime/runtime_int.h"

#define TAG ((uintptr_t)1)

static gt_msg_t *untag(gt_msg_t *p) {
  return (gt_msg_t *)((uintptr_t)p & ~TAG);
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
      *busy = atomic_load_explicit(&q->head, memory_order_acquire) != &q->stub;
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
  if (atomic_load_explicit(&q->head, memory_order_acquire) != tail) {
    *busy = 1;
    return NULL;
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

int gt__mpscq_try_idle(gt__mpscq_t *q) {
  gt_msg_t *expect = &q->stub;
  gt_msg_t *idle = (gt_msg_t *)((uintptr_t)&q->stub | TAG);
  /* release: a producer that reads the tag (acquire exchange) then writes
   * stub.next; our earlier reset of stub.next (in the stub push) must happen
   * before that write. */
  return atomic_compare_exchange_strong_explicit(
      &q->head, &expect, idle, memory_order_release, memory_order_relaxed);
}
