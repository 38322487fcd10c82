/*
 * wake.c: gt_wake_t, a cross-thread wake-up on an eventfd watched by a uv_poll_t (wake.h
 * says why not uv_async_t).
 *
 * INVARIANTS
 *   - pending is 1 from the send that wrote the eventfd until the loop has read the
 *     eventfd and exchanged it for 0: before the callback without a `more` hook, after
 *     it with one. Both sides exchange (read-modify-write), so the loop's exchange reads
 *     the 1 of the last sender that found the flag on, or a later one, and synchronizes
 *     with it: that sender's push is visible to what follows (the callback, or the
 *     `more` check). A sender that sees 0 writes the eventfd, so another callback
 *     comes. No wake-up is lost and no side waits for the other.
 *   - The eventfd is read only by the loop thread and closed only after uv_close's
 *     callback (no poll on a closed descriptor).
 *
 * THREADS: send: any thread. Everything else: the loop thread.
 */
#include "runtime/wake.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/err.h"

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  gt_wake_t *w = (gt_wake_t *)h;
  uint64_t count;
  if (status == 0) {
    ssize_t n;
    do
      n = read(w->fd, &count, sizeof count); /* resets the counter */
    while (n < 0 && errno == EINTR);
  }
  if (w->more == NULL) {
    atomic_exchange_explicit(&w->pending, 0, memory_order_seq_cst);
    w->cb(w);
    return;
  }
  w->cb(w);
  atomic_exchange_explicit(&w->pending, 0, memory_order_seq_cst);
  if (!uv_is_closing((uv_handle_t *)&w->poll) && w->more(w))
    gt_wake_send(w); /* come back after polling I/O */
}

int gt_wake_init(uv_loop_t *loop, gt_wake_t *w, gt_wake_cb cb) {
  w->cb = cb;
  w->close_cb = NULL;
  w->more = NULL;
  atomic_init(&w->pending, 0);
  w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (w->fd < 0)
    return GT_EIO;
  if (uv_poll_init(loop, &w->poll, w->fd) != 0) {
    close(w->fd);
    w->fd = -1;
    return GT_EIO;
  }
  if (uv_poll_start(&w->poll, UV_READABLE, on_readable) != 0) {
    gt_wake_close(w, NULL); /* the handle exists: the loop must let go of it first */
    return GT_EIO;
  }
  return 0;
}

void gt_wake_send(gt_wake_t *w) {
  if (atomic_exchange_explicit(&w->pending, 1, memory_order_seq_cst) != 0)
    return; /* a callback is due and will see what the caller pushed */
  static const uint64_t one = 1;
  ssize_t n;
  do
    n = write(w->fd, &one, sizeof one);
  while (n < 0 && errno == EINTR);
  /* EAGAIN: the counter is at its maximum, so the eventfd is readable anyway */
}

static void on_closed(uv_handle_t *h) {
  gt_wake_t *w = (gt_wake_t *)h;
  close(w->fd);
  w->fd = -1;
  if (w->close_cb)
    w->close_cb(w);
}

void gt_wake_close(gt_wake_t *w, gt_wake_cb close_cb) {
  w->close_cb = close_cb;
  uv_close((uv_handle_t *)&w->poll, on_closed);
}
