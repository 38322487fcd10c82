/*
 * frontend.h: the gateway handler that serves the Temporal API (see frontend.c).
 */
#ifndef GT_FRONTEND_H
#define GT_FRONTEND_H

#include "actors/frontend/server.h"

/* gt_gateway_handler_fn for the Temporal services; ctx is the gt_server_t. */
void gt_frontend_handle(void *ctx, gt_gateway_call_t *call, const char *method,
                        const uint8_t *body, size_t len);

/* The operation names the gateway's metrics are labelled with (op_names of
 * gt_gateway_config_t): every WorkflowService and OperatorService method, as Temporal names
 * its `operation` tag (e.g. "StartWorkflowExecution"). Static; any thread. OUT: *n. */
const char *const *gt_frontend_op_names(int *n);

/* gt_gateway_metrics_fn for the server (metrics.c): persistence, runtime (live actors by
 * type), workflow outcomes and process families. ctx is the gt_server_t. Gateway thread. */
void gt_server_metrics_render(void *ctx, gt_metrics_buf_t *out);

#endif
