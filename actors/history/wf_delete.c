/*
 * wf_delete.c: DeleteWorkflowExecution, and what deleting a run shares with retention
 * (retention.c): its rows, and its leaving memory.
 *
 * DESIGN
 *   A run is deleted by ONE batch, fenced by the shard's range_id like every write of the
 *   workflow actor and queued behind that actor's earlier batches (so it deletes what they
 *   wrote): its executions row, its history, its current_executions row only while that
 *   still names it (a newer run keeps its own), its visibility record (wf_delete_ops).
 *   DeleteWorkflowExecution is a wf_txn_t with delete_run set. A running run is first
 *   terminated as Temporal's history service does (service/history/api/deleteworkflow:
 *   WorkflowExecutionTerminated, reason "Delete workflow execution", no details, identity
 *   consts.IdentityHistoryService "history-service") by wf_terminate_run, the path of
 *   TerminateWorkflowExecution: its workflow task is failed, its timers and activities
 *   closed, and the close's effects (the parent's notice, the parent close policy of its
 *   children) go out after the commit. The batch writes none of the termination's rows
 *   though: it deletes them (wf_txn_commit), so a failed batch changes nothing in the
 *   store, and the actor, broken, reloads the run as it was (wf_txn_done).
 *   Temporal deletes asynchronously (a delete task after the termination) and answers at
 *   once; we answer when the deletion has committed, which is as cheap here and simpler
 *   to rely on and to test: an OK means the run is gone.
 *   After the commit the run leaves memory (wf_forget_run). When it was the current run
 *   the workflow id has none until the next start: the older runs still in memory are
 *   `detached`, so an empty run id names none of them (Temporal: no current_executions
 *   row, NOT_FOUND), while their own ids still name them.
 *
 * INVARIANTS
 *   - A run being deleted (`deleting`) is closed: nothing writes to it again, and a second
 *     DeleteWorkflowExecution answers NOT_FOUND at once.
 *   - The head of wf->runs is the current run, or it is detached and the workflow id has
 *     no current run.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <string.h>

#include "actors/history/wf_int.h"
#include "actors/visibility/vis_outbox.h"
#include "runtime/err.h"

int wf_delete_ops(const workflow_t *wf, const char *run_id, gt_store_op_t *ops,
                  struct gt_vis_task **vis) {
  static const gt_sql_stmt_t by_run[3] = {GT_SQL_EXECUTION_DELETE, GT_SQL_HISTORY_DELETE,
                                          GT_SQL_CURRENT_DELETE};
  memset(ops, 0, WF_DELETE_OPS * sizeof(*ops));
  for (int i = 0; i < 3; i++) {
    ops[i].stmt = by_run[i];
    ops[i].nparams = 4;
    ops[i].expect_rows = -1;
    ops[i].params[0] = gt_val_int(wf->shard);
    ops[i].params[1] = gt_val_text(wf->ns_id);
    ops[i].params[2] = gt_val_text(wf->workflow_id);
    ops[i].params[3] = gt_val_text(run_id);
  }
  *vis = NULL;
  if (gt_vis_outboxed(wf->srv)) {
    if (gt_vis_task_delete(wf->srv, wf->shard, wf->ns_id, run_id, &ops[3], vis) == 0)
      return WF_DELETE_OPS;
    return WF_DELETE_OPS - 1; /* out of memory: the record outlives its run */
  }
  ops[3].stmt = GT_SQL_VISIBILITY_DELETE;
  ops[3].nparams = 2;
  ops[3].expect_rows = -1;
  ops[3].params[0] = gt_val_text(wf->ns_id);
  ops[3].params[1] = gt_val_text(run_id);
  return WF_DELETE_OPS;
}

void wf_forget_run(workflow_t *wf, wf_run_t *run) {
  int newest = wf->runs == run;
  for (wf_run_t **pp = &wf->runs; *pp; pp = &(*pp)->next) {
    if (*pp == run) {
      *pp = run->next;
      break;
    }
  }
  /* the current run went (or none was): what is left is older, and never current again */
  for (wf_run_t *r = wf->runs; newest && r; r = r->next)
    r->detached = 1;
  wf_run_free(run);
}

void wf_on_delete(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__DeleteWorkflowExecutionRequest *req =
      (const void *)rpc->req;
  const char *run_id = req->workflow_execution && req->workflow_execution->run_id
                           ? req->workflow_execution->run_id
                           : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  if (!run || run->committed_ev == 0 || run->deleting) {
    wf_reply_not_found(rpc, run_id);
    return;
  }
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t) {
    gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  if (wf_running(run))
    wf_terminate_run(wf, run, WF_DELETE_REASON, NULL, WF_IDENTITY_HISTORY_SERVICE);
  t->delete_run = 1;
  run->deleting = 1;
  wf_txn_reply_empty(t, rpc); /* an empty DeleteWorkflowExecutionResponse */
  wf_txn_commit(t);
}
