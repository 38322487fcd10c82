/*
 * wake.h: a cross-thread wake-up for one libuv loop, as uv_async_t but without its spin.
 *
 * Why not uv_async_t: libuv 1.44 (Debian 12) marks an async "busy" while its sender is in
 * the eventfd write, and the loop that drains it spins (up to 997 pause instructions,
 * then sched_yield, again) until the sender is out. Under load, with more threads than
 * cores and slow system calls (this machine's guest), that spin was ~3% of the server's
 * CPU and 0.18 sched_yield calls per hello workflow (perf, `perf stat`). Here the sender
 * only writes the eventfd when it turned the pending flag on; the loop reads the
 * eventfd, turns the flag off, then calls back: nothing to wait for.
 *
 * Contract (as uv_async_t's): gt_wake_send may be called from any thread, any number of
 * times, until gt_wake_close; wake-ups sent close together may merge into one callback,
 * and a callback may come with nothing new to do. A sender pushes its work, then sends.
 *
 * With a `more` hook (gt_wake_set_more), the flag stays on during the callback, so what
 * senders push while it drains costs them no system call and the loop no second wake-up:
 * after the callback the flag goes off and `more` says whether work arrived since the
 * callback last looked; if so the loop wakes itself (after polling I/O, as any wake-up).
 * Without the hook the flag goes off before the callback, which then sees every push
 * whose send found it on.
 */
#ifndef GT_RUNTIME_WAKE_H
#define GT_RUNTIME_WAKE_H

#include <stdatomic.h>
#include <uv.h>

typedef struct gt_wake gt_wake_t;
typedef void (*gt_wake_cb)(gt_wake_t *w);

struct gt_wake {
  uv_poll_t poll;     /* the loop's watch on fd; first, so the handle is the wake */
  int fd;             /* eventfd, nonblocking; -1 once closed */
  atomic_int pending; /* 1 from a send that wrote the eventfd until the callback */
  gt_wake_cb cb;
  gt_wake_cb close_cb; /* optional: once the loop let go of the handle */
  int (*more)(gt_wake_t *w); /* optional, loop thread: work queued that the callback left */
  void *data;          /* the owner's */
};

/* Loop thread. 0, or a negative error (GT_EIO: no eventfd or no poll handle; if the
 * handle was made but could not start, it is closing: the loop must run before it closes). */
int gt_wake_init(uv_loop_t *loop, gt_wake_t *w, gt_wake_cb cb);
/* Loop thread, before the first send: see the contract above. */
static inline void gt_wake_set_more(gt_wake_t *w, int (*more)(gt_wake_t *w)) {
  w->more = more;
}
/* Any thread, until gt_wake_close. */
void gt_wake_send(gt_wake_t *w);
/* Loop thread. The eventfd is closed once libuv has closed the handle, then close_cb
 * (may be NULL) runs; w must stay valid until then. */
void gt_wake_close(gt_wake_t *w, gt_wake_cb close_cb);
/* The uv handle, for uv_walk comparisons. */
static inline uv_handle_t *gt_wake_handle(gt_wake_t *w) { return (uv_handle_t *)&w->poll; }

#endif
