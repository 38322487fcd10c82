/*
 * frontend.h: the gateway handler that serves the Temporal API (see frontend.c).
 */
#ifndef GT_FRONTEND_H
#define GT_FRONTEND_H

#include "actors/frontend/server.h"

/* gt_gateway_handler_fn for the Temporal services; ctx is the gt_server_t. */
void gt_frontend_handle(void *ctx, gt_gateway_call_t *call, const char *method,
                        const uint8_t *body, size_t len);

#endif
