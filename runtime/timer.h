/*
 * timer.h: internals of runtime/timer.c that tests look at. The timer API itself is in
 * runtime/actor.h (gt_actor_timer_start, gt_actor_timer_cancel).
 */
#ifndef GT_RUNTIME_TIMER_H
#define GT_RUNTIME_TIMER_H

#include <stddef.h>

/* How many closed timers the calling thread holds for reuse by its next arms. Call it
 * on a scheduler thread (from an actor) to see that thread's cache. */
size_t gt__timer_cached(void);

#endif
