/*
 * matching.h: task-queue actors (Temporal's matching role).
 *
 * DESIGN
 *   One actor per (namespace id, kind, task queue name) holds the parked long polls and the
 *   backlog of tasks. A task arriving while a poll is parked is matched at once (sync
 *   match); otherwise it waits in the backlog, FIFO. A match sends the poll (gt_rpc_t with
 *   .task) to the task's workflow actor, which records the task as started and replies to the
 *   poller, or sends the poll back (GT_MSG_RPC again) when the task was stale.
 *   A parked poll is answered with an empty response shortly before its deadline (at most
 *   60 s: matching.longPollExpirationInterval), never letting the client's deadline fire.
 *
 * THREADS
 *   gt_matching_* may be called from any thread; the actor's state is its own.
 */
#ifndef GT_MATCHING_H
#define GT_MATCHING_H

#include "actors/history/history.h"

/* Hands a poll (GT_RPC_POLL_*_TASK) to its task queue, or a GT_RPC_DESCRIBE_TASK_QUEUE
 * (rpc->attempt: 1 for the activity queue, 0 for the workflow queue). Takes rpc. */
void gt_matching_poll(gt_server_t *srv, gt_rpc_t *rpc, const char *queue_name);

/* Adds a task to a task queue. Takes task. */
void gt_matching_add_task(gt_server_t *srv, const char *queue_name, gt_task_t *task);

/* Returns a poll whose matched task was stale to the queue it came from. Takes rpc. */
void gt_matching_repark(gt_rpc_t *rpc);

/* ShutdownWorker: the worker that polled sticky queue `sticky_queue` of namespace ns_id
 * is gone; its parked polls are answered and its tasks go back to their workflows (for the
 * normal queue). Any thread. */
void gt_matching_shutdown_worker(gt_server_t *srv, const char *ns_id,
                                 const char *sticky_queue);

extern const gt_actor_type_t gt_taskqueue_actor_type;

#endif
