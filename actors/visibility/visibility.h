/*
 * visibility.h: Temporal's visibility role: the per-run records that List/Count/Scan
 * search, and the RPCs that read them.
 *
 * DESIGN
 *   The history role records a run (at start, on close, on search-attribute or memo
 *   changes) by adding the op built by gt_visibility_upsert_op to the run's own transaction,
 *   so the record is exactly as durable as the run; with a visibility store in another
 *   database, through the outbox of vis_outbox.h instead. Reads (from srv->vis_store) are
 *   served here: the frontend
 *   hands every method gt_visibility_serves() claims to gt_visibility_dispatch().
 *
 * THREADS
 *   gt_visibility_upsert_op: any thread (pure). gt_visibility_dispatch: the gateway thread;
 *   replies come from store threads.
 */
#ifndef GT_VISIBILITY_H
#define GT_VISIBILITY_H

#include "actors/frontend/pb.h"
#include "actors/frontend/server.h"
#include "persistence/store.h"

typedef struct gt_vis_record {
  const char *ns_id, *run_id, *workflow_id, *workflow_type, *task_queue;
  int status; /* WorkflowExecutionStatus */
  int64_t start_ns, execution_ns, close_ns; /* close_ns 0 while running */
  int64_t history_length;
  const uint8_t *memo; /* packed temporal.api.common.v1.Memo, or NULL */
  size_t memo_len;
  const uint8_t *search_attrs; /* packed temporal.api.common.v1.SearchAttributes, or NULL */
  size_t search_attrs_len;
} gt_vis_record_t;

/* Fills *op with the write that records rec. The op points into rec's strings and bytes,
 * which must stay valid until the op is submitted (gt_store_write copies then).
 * Returns 0, or GT_ENOMEM / GT_EINVAL (op untouched). `scratch` is caller storage the op may
 * point into (e.g. an encoding of the search attributes); free it with
 * gt_visibility_scratch_fini after submitting. */
typedef struct gt_vis_scratch {
  void *p;
  size_t len;
} gt_vis_scratch_t;
int gt_visibility_upsert_op(gt_store_op_t *op, const gt_vis_record_t *rec,
                            gt_vis_scratch_t *scratch);
void gt_visibility_scratch_fini(gt_vis_scratch_t *scratch);

/* True when `method` (e.g. "ListWorkflowExecutions") of `service` (the full service name,
 * e.g. "temporal.api.workflowservice.v1.WorkflowService") is served by visibility. */
int gt_visibility_serves(const char *service, const char *method);

/* Serves a claimed method. Takes req (frees it). Replies exactly once on `call`. */
void gt_visibility_dispatch(gt_server_t *srv, gt_gateway_call_t *call, const char *method,
                            ProtobufCMessage *req);

#endif
