/*
 * visibility.c: visibility records and RPCs (see visibility.h).
 *
 * The record is one row of the `visibility` table (GT_SQL_VISIBILITY_UPSERT); memo and
 * search attributes are stored as their packed protobuf messages.
 *
 * THREADS: see visibility.h.
 */
#include "actors/visibility/visibility.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"

int gt_visibility_upsert_op(gt_store_op_t *op, const gt_vis_record_t *rec,
                            gt_vis_scratch_t *scratch) {
  memset(scratch, 0, sizeof(*scratch));
  memset(op, 0, sizeof(*op));
  op->stmt = GT_SQL_VISIBILITY_UPSERT;
  op->expect_rows = -1;
  op->nparams = 12;
  op->params[0] = gt_val_text(rec->ns_id);
  op->params[1] = gt_val_text(rec->run_id);
  op->params[2] = gt_val_text(rec->workflow_id);
  op->params[3] = gt_val_text(rec->workflow_type);
  op->params[4] = gt_val_text(rec->task_queue);
  op->params[5] = gt_val_int(rec->status);
  op->params[6] = gt_val_int(rec->start_ns);
  op->params[7] = gt_val_int(rec->execution_ns);
  op->params[8] = gt_val_int(rec->close_ns);
  op->params[9] = gt_val_int(rec->history_length);
  op->params[10] = rec->memo ? gt_val_blob(rec->memo, rec->memo_len)
                             : (gt_val_t){GT_VAL_NULL, 0, 0, 0};
  op->params[11] = rec->search_attrs ? gt_val_blob(rec->search_attrs, rec->search_attrs_len)
                                     : (gt_val_t){GT_VAL_NULL, 0, 0, 0};
  return 0;
}

void gt_visibility_scratch_fini(gt_vis_scratch_t *scratch) {
  free(scratch->p);
  memset(scratch, 0, sizeof(*scratch));
}

int gt_visibility_serves(const char *service, const char *method) {
  (void)service;
  (void)method;
  return 0; /* List/Count/Scan: not yet */
}

void gt_visibility_dispatch(gt_server_t *srv, gt_gateway_call_t *call, const char *method,
                            ProtobufCMessage *req) {
  (void)srv;
  protobuf_c_message_free_unpacked(req, NULL);
  gt_gateway_reply(call, GT_GRPC_UNIMPLEMENTED, method, NULL, 0, NULL, 0);
}
