/*
 * vis_outbox.h: visibility records kept in a separate visibility store, through an outbox
 * in the default store.
 *
 * DESIGN
 *   When persistence.visibilityStore names another database than defaultStore, the server
 *   opens a second store there (srv->vis_store). A run's visibility change cannot join
 *   its run's transaction any more, so it goes as Temporal's visibility tasks do: the
 *   run's batch writes it as a row of visibility_tasks (shard, task id, the packed change)
 *   in the default store, and after that batch committed the change is applied to the
 *   visibility store (GT_SQL_VISIBILITY_APPLY or GT_SQL_VISIBILITY_DELETE), then its task
 *   row is deleted. Visibility is therefore eventually consistent with the run, as in
 *   Temporal with a separate visibility store, and nothing is lost in between: a change
 *   the visibility store did not take (down, full, a crash before it answered) stays in
 *   visibility_tasks, and the "vis-outbox" actor's sweep applies every task left there,
 *   in task id order per shard, at start and whenever an apply or a delete failed.
 *   Order: a run's changes are applied in its commit order (one actor's effects, one
 *   store FIFO); while a sweep is due or running, direct applies are skipped and left to
 *   it (or to the next sweep, run at once), and
 *   GT_SQL_VISIBILITY_APPLY never lets an older change (a shorter history) overwrite a
 *   newer one, so a late change from a sweep cannot undo a close.
 *   With one store (the default) none of this runs: records join the run's transaction
 *   (gt_visibility_upsert_op).
 *
 * INVARIANTS
 *   - A task row is deleted only after the visibility store committed its change.
 *   - Store callbacks only post to the outbox actor or write to the visibility store;
 *     nothing of the visibility store's completions touches the default store directly
 *     (they post), so the stores close in order: default first, then visibility.
 *
 * THREADS
 *   gt_vis_task_*: any thread. The outbox actor: its home thread.
 */
#ifndef GT_VIS_OUTBOX_H
#define GT_VIS_OUTBOX_H

#include "actors/frontend/server.h"
#include "actors/visibility/visibility.h"

typedef struct gt_vis_task gt_vis_task_t;

/* 1 when visibility records go through the outbox (a separate visibility store). */
static inline int gt_vis_outboxed(const gt_server_t *srv) {
  return srv->vis_store != srv->store;
}

/* Builds the outbox row of a run's visibility change: *op becomes the
 * GT_SQL_VISIBILITY_TASK_INSERT to add to the run's batch (it points into the task: keep
 * the task until the batch is queued). OUT: *task (owned: gt_vis_task_apply or
 * gt_vis_task_free). Returns 0 or GT_ENOMEM. */
int gt_vis_task_upsert(gt_server_t *srv, int shard, const gt_vis_record_t *rec,
                       gt_store_op_t *op, gt_vis_task_t **task);

/* The same for the deletion of a run's record (ns_id, run_id). */
int gt_vis_task_delete(gt_server_t *srv, int shard, const char *ns_id, const char *run_id,
                       gt_store_op_t *op, gt_vis_task_t **task);

/* After the batch holding the task's row committed: applies the change to the visibility
 * store, then deletes the row. Takes the task. */
void gt_vis_task_apply(gt_vis_task_t *task);

/* Frees a task whose batch did not commit (or was not sent). NULL: no-op. */
void gt_vis_task_free(gt_vis_task_t *task);

/* Leaves the outbox's rows to the next sweep (within a second): for a batch committed
 * where no task could follow it (retention's deletes). Any thread. */
void gt_vis_outbox_sweep_soon(gt_server_t *srv);

/* Starts the outbox actor, whose first sweep applies what a previous process left in
 * visibility_tasks. Only when gt_vis_outboxed(srv). Returns 0 or a GT_E* code. */
int gt_vis_outbox_start(gt_server_t *srv);

/* Test hooks: decodes a task row's data into a visibility store op (pointing into data).
 * Returns 0 or GT_ECORRUPT. */
int gt__vis_task_decode(const uint8_t *data, size_t len, gt_store_op_t *op);

#endif
