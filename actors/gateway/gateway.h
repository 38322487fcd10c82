/*
 * gateway.h: gRPC over cleartext HTTP/2 (h2c, prior knowledge) with nghttp2 on libuv.
 *
 * DESIGN
 *   The gateway owns one thread running one uv loop: the TCP listener, every connection, and
 *   every nghttp2 session live there. It frames and unframes gRPC messages (5-byte prefix),
 *   inflates `grpc-encoding: gzip` requests, answers gzip when the client accepts it and the
 *   body is large enough, reads `grpc-timeout`, and writes trailers (`grpc-status`,
 *   `grpc-message` percent-encoded, `grpc-status-details-bin` base64). It knows nothing of
 *   Temporal: a complete request becomes one call handed to the handler; the handler replies
 *   exactly once, from any thread, with gt_gateway_reply(). Replies from other threads cross
 *   to the gateway loop through a queue and gt_wake_send.
 *   `/grpc.health.v1.Health/Check` is answered by the gateway itself (SERVING).
 *   On a second port the same loop serves HTTP/1.1 (http1.c): GET /health and GET /metrics
 *   (Prometheus text). For /metrics the gateway renders its own per-operation counters
 *   (requests, errors by status, latency histogram: the handler names a call's operation
 *   with gt_gateway_call_set_op) and then asks the owner's metrics_fn for the rest.
 *
 * INVARIANTS
 *   - Every call handed to the handler is replied to exactly once (by the handler), even when
 *     the client has gone: the gateway then drops the reply and frees the call.
 *   - A request whose message exceeds max_recv_bytes (default 4 MiB) gets RESOURCE_EXHAUSTED
 *     without reaching the handler; a bad frame or bad gzip gets INTERNAL / INVALID_ARGUMENT on
 *     that stream only; the connection survives where HTTP/2 allows.
 *   - Stopping answers every unanswered call UNAVAILABLE and closes every connection.
 *
 * THREADS
 *   gt_gateway_new/start/stop/free: the owning thread. The handler runs on the gateway
 *   thread and must not block. gt_gateway_reply/gt_gateway_call_*: any thread.
 */
#ifndef GT_GATEWAY_H
#define GT_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/metrics.h"

/* gRPC status codes. */
enum {
  GT_GRPC_OK = 0,
  GT_GRPC_CANCELLED = 1,
  GT_GRPC_UNKNOWN = 2,
  GT_GRPC_INVALID_ARGUMENT = 3,
  GT_GRPC_DEADLINE_EXCEEDED = 4,
  GT_GRPC_NOT_FOUND = 5,
  GT_GRPC_ALREADY_EXISTS = 6,
  GT_GRPC_PERMISSION_DENIED = 7,
  GT_GRPC_RESOURCE_EXHAUSTED = 8,
  GT_GRPC_FAILED_PRECONDITION = 9,
  GT_GRPC_ABORTED = 10,
  GT_GRPC_OUT_OF_RANGE = 11,
  GT_GRPC_UNIMPLEMENTED = 12,
  GT_GRPC_INTERNAL = 13,
  GT_GRPC_UNAVAILABLE = 14,
  GT_GRPC_DATA_LOSS = 15,
  GT_GRPC_UNAUTHENTICATED = 16,
};

typedef struct gt_gateway gt_gateway_t;
typedef struct gt_gateway_call gt_gateway_call_t;

/* Called on the gateway thread for each complete request. `method` is the :path, e.g.
 * "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"; `body`/`len`
 * is the (inflated) message, valid until the reply. Must reply exactly once, now or later. */
typedef void (*gt_gateway_handler_fn)(void *ctx, gt_gateway_call_t *call, const char *method,
                                      const uint8_t *body, size_t len);

/* Called on the gateway thread for each GET /metrics, after the gateway's own families:
 * appends the owner's families to out. Must not block. */
typedef void (*gt_gateway_metrics_fn)(void *ctx, gt_metrics_buf_t *out);

/* http_port: any free port (tests; see gt_gateway_http_port). */
#define GT_GATEWAY_PORT_ANY (-1)

typedef struct gt_gateway_config {
  const char *ip;          /* "127.0.0.1" (IPv4 or IPv6 literal) */
  int port;                /* 7233; 0 = pick a free port (see gt_gateway_port) */
  int http_port;           /* HTTP/1.1 (health, metrics): 0 = do not listen;
                            * GT_GATEWAY_PORT_ANY = pick a free port */
  size_t max_recv_bytes;   /* 0 = 4 MiB */
  gt_gateway_handler_fn handler;
  void *handler_ctx;
  /* Operation names for the per-operation metrics, indexed by the op the handler passes
   * to gt_gateway_call_set_op (e.g. "StartWorkflowExecution"); the array and its strings
   * must outlive the gateway. NULL / 0: no per-operation metrics. */
  const char *const *op_names;
  int n_ops;
  gt_gateway_metrics_fn metrics_fn; /* NULL: only the gateway's own metrics */
  void *metrics_ctx;
} gt_gateway_config_t;

/* Creates a gateway (does not listen yet). OUT: *out. 0, GT_ENOMEM, GT_EINVAL. */
int gt_gateway_new(gt_gateway_t **out, const gt_gateway_config_t *cfg);

/* Binds, listens (the gRPC port, and the HTTP port unless it is 0) and starts the gateway
 * thread. Returns once listening: 0, GT_EIO (bind/listen failed on either port, e.g. it
 * is taken: logged with the port and the reason; nothing is left listening). */
int gt_gateway_start(gt_gateway_t *gw);

/* The bound port (useful with port 0). */
int gt_gateway_port(gt_gateway_t *gw);

/* The bound HTTP port (useful with GT_GATEWAY_PORT_ANY); 0 when not listening. */
int gt_gateway_http_port(gt_gateway_t *gw);

/* Stops accepting, answers unanswered calls UNAVAILABLE, closes connections, joins the
 * thread. Blocks. */
void gt_gateway_stop(gt_gateway_t *gw);

void gt_gateway_free(gt_gateway_t *gw);

/* The call's deadline from grpc-timeout, in gt_now_ms() milliseconds; 0 when none. */
uint64_t gt_gateway_call_deadline(const gt_gateway_call_t *call);

/* A request header's value (e.g. "client-name"), or NULL. Valid until the reply. */
const char *gt_gateway_call_header(const gt_gateway_call_t *call, const char *name);

/* Names the call's operation (an index into the config's op_names) and counts it in
 * service_requests; its reply is then counted in service_latency and, when not OK,
 * service_errors. Gateway thread only: inside the handler, before replying, at most once.
 * An op outside [0, n_ops) is ignored. */
void gt_gateway_call_set_op(gt_gateway_call_t *call, int op);

/* True once the client has reset or closed the stream (a hint: the reply is still due). */
int gt_gateway_call_cancelled(const gt_gateway_call_t *call);

/* Replies to a call and releases it. Any thread, exactly once per call.
 *   status:   GT_GRPC_*; body is sent only when status == GT_GRPC_OK.
 *   message:  grpc-message text (may be NULL); copied.
 *   body/len: the serialized response message; copied.
 *   details/details_len: a serialized google.rpc.Status for grpc-status-details-bin, or NULL;
 *             copied. */
void gt_gateway_reply(gt_gateway_call_t *call, int status, const char *message,
                      const uint8_t *body, size_t len, const uint8_t *details,
                      size_t details_len);

/* gt_gateway_reply taking the body instead of copying it: body is a malloc'd buffer (or
 * NULL when len is 0) that the gateway frees with free() once sent, or at once when it is
 * not sent (status != OK, gzip applies, the client is gone). Any thread, exactly once per
 * call, like gt_gateway_reply. */
void gt_gateway_reply_owned(gt_gateway_call_t *call, int status, const char *message,
                            uint8_t *body, size_t len, const uint8_t *details,
                            size_t details_len);

#endif
