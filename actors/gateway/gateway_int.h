/*
 * gateway_int.h: the gateway's private types, shared by gateway.c (thread, listener,
 * reply queue, stop), h2conn.c (one nghttp2 server session per connection),
 * grpc_frame.c (gRPC message framing, gzip, grpc-timeout, trailer encodings) and
 * http1.c (the HTTP/1.1 port: /health, /metrics).
 *
 * OWNERSHIP (who frees what)
 *   - A stream (gt__stream_t) belongs to its connection; it is freed when nghttp2 closes
 *     it or when the connection closes.
 *   - A call (gt_gateway_call_t) is made by the gateway when a request is complete and
 *     handed to the handler. From then on the gateway never frees it on its own: the
 *     handler's gt_gateway_reply() hands it back. While the gateway runs, the reply goes
 *     through the reply queue and the loop sends it (if the stream is still open) and
 *     frees the call. Once the gateway has stopped (reply queue closed), the reply frees
 *     the call on the spot. So a call is freed exactly once, by whoever sees it last.
 *   - The reply queue (gt__replyq_t) is reference counted: the gateway holds one
 *     reference and every live call holds one, so a reply arriving after
 *     gt_gateway_free() still finds its queue (closed) and frees the call safely.
 */
#ifndef GT_GATEWAY_INT_H
#define GT_GATEWAY_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "actors/gateway/gateway.h"
#include "runtime/err.h"
#include "runtime/wake.h"

#define GT__GW_DEFAULT_MAX_RECV (4u * 1024u * 1024u)
#define GT__GW_WINDOW (16 * 1024 * 1024)  /* stream and connection windows */
#define GT__GW_MAX_STREAMS 1000u
#define GT__GW_GZIP_MIN 1024              /* smaller responses go uncompressed */
#define GT__GW_WRITE_HIGH (1u << 20)      /* stop pulling frames above this */
#define GT__GW_WRITE_BATCH (64u * 1024u)  /* one uv_write gathers this much */
#define GT__GW_WAKE_ROUNDS 4              /* reply-queue takes per wake-up */
#define GT__GW_MAX_HDR_BYTES (16u * 1024u)
#define GT__GW_STOP_GRACE_MS 2000         /* then connections are cut */
/* Recycling (loop thread only): spare streams, calls and write batches are kept, with
 * their buffers, so a request in steady state allocates nothing of its own. */
#define GT__GW_SPARE_MAX 512u             /* spare streams, and spare calls */
#define GT__GW_SPARE_WREQ 8u              /* spare write batches */
#define GT__GW_KEEP_BUF (16u * 1024u)     /* larger buffers are freed, not kept */
#define GT__POOL_CLASSES 9                /* 32 B .. 8 KiB, powers of two */
#define GT__POOL_KEEP (512u * 1024u)      /* bytes kept per class */

typedef struct gt__conn gt__conn_t;
typedef struct gt__stream gt__stream_t;
typedef struct gt__h1conn gt__h1conn_t;

/* Per-operation service metrics (gt_gateway_call_set_op). Gateway loop only: plain
 * integers, read by the /metrics handler on the same thread. */
typedef struct gt__op_stats {
  uint64_t requests;             /* service_requests */
  uint64_t errors[17];           /* service_errors by gRPC status (index 0 unused) */
  gt_metrics_hist_t latency;     /* service_latency */
} gt__op_stats_t;

/* Request headers: "name\0value\0" pairs in one buffer. */
typedef struct gt__hdrs {
  char *buf;
  size_t len, cap;
} gt__hdrs_t;

/* A size-class allocator for nghttp2 (gateway loop only): freed blocks wait on a list
 * per class instead of going back to malloc, which nghttp2 calls ~7 times a request. */
typedef struct gt__pool {
  void *spare[GT__POOL_CLASSES];      /* singly linked through the block header */
  size_t nspare[GT__POOL_CLASSES];
} gt__pool_t;

/* A ready-to-send response: built by gt_gateway_reply (any thread) or by the loop. */
typedef struct gt__resp {
  int status;
  char *message;     /* percent-encoded grpc-message, or NULL */
  char *details;     /* base64 (unpadded) grpc-status-details-bin, or NULL */
  uint8_t *data;     /* framed message (5-byte prefix + payload); NULL: trailers only.
                      * With split: the bare payload, its prefix in prefix[] */
  size_t len;        /* bytes to send: 5 + payload in both layouts */
  int gzip;          /* data is gzip: send grpc-encoding: gzip */
  int split;         /* data was the replier's own buffer, taken without a copy */
  uint8_t prefix[5]; /* split: the gRPC prefix sent before data */
} gt__resp_t;

/* The reply queue: other threads -> gateway loop. Reference counted (see OWNERSHIP). */
typedef struct gt__replyq {
  uv_mutex_t mu;
  int open;                        /* mu: 0 once the gateway stops */
  gt_wake_t *wake;                 /* mu: valid while open */
  gt_gateway_call_t *head, *tail;  /* mu: FIFO of replied calls */
  atomic_int refs;                 /* gateway + live calls */
} gt__replyq_t;

struct gt_gateway_call {
  /* Immutable from hand-off to reply. */
  gt__replyq_t *q;
  gt_gateway_t *gw;
  char *method;               /* malloc, method_cap bytes; kept when recycled */
  size_t method_cap;
  uint8_t *body;              /* malloc, body_cap bytes; kept when recycled */
  size_t len, body_cap;
  gt__hdrs_t hdrs;
  uint64_t deadline_ms;
  /* Where grpc-accept-encoding's value sits in hdrs (offset + 1, 0 absent). The replier
   * looks for gzip in it on its own thread (call_accepts_gzip), not the loop. */
  uint32_t accept_at;
  /* Gateway loop only: metrics (set at hand-off and by gt_gateway_call_set_op). */
  int op;                     /* index into gw->ops, or -1 */
  uint64_t t0_ns;             /* uv_hrtime() at hand-off */
  /* Any thread. relaxed: a hint only, nothing else is published through it. */
  atomic_int cancelled;
  /* Gateway loop only. */
  gt__stream_t *stream;                 /* NULL once the stream is gone */
  gt_gateway_call_t *live_prev, *live_next;  /* gw->live: handed out, not drained */
  /* Written by the replier before the push (published by q->mu). */
  gt__resp_t resp;
  int queued;                           /* q->mu */
  gt_gateway_call_t *qnext;             /* q->mu */
};

enum { GT__ST_RECV = 0, GT__ST_CALL, GT__ST_DONE };

/* One HTTP/2 stream. Gateway loop only. */
struct gt__stream {
  gt__conn_t *conn;
  int32_t id;
  gt__stream_t *prev, *next;  /* conn->streams */
  int state;                  /* GT__ST_*: receiving, handed to a call, answered */
  int is_post;
  int have_path;              /* :path was received */
  char *path;                 /* malloc, path_cap bytes (swapped with the call's) */
  size_t path_cap, path_len;
  gt__hdrs_t hdrs;
  /* Where the headers the gateway reads sit in hdrs: value offset + 1, 0 when absent
   * (the first occurrence, as gt__hdrs_get would find). Saves a scan per lookup. */
  uint32_t h_ctype, h_enc, h_timeout, h_accept;
  uint8_t prefix[5];          /* the gRPC frame prefix, once received */
  uint8_t *body;              /* the message after the prefix */
  size_t len, cap;            /* len counts the prefix too */
  gt_gateway_call_t *call;    /* while state == GT__ST_CALL */
  gt__resp_t resp;            /* the answer being sent */
  size_t resp_off;
};

struct gt__conn {
  gt_gateway_t *gw;
  uv_tcp_t tcp;
  nghttp2_session *ng;
  gt__conn_t *prev, *next;    /* gw->conns */
  gt__stream_t *streams;
  gt__stream_t *cur;          /* the stream last looked up (h2conn.c stream_of), or NULL */
  size_t wpending;            /* bytes handed to uv_write, not yet done */
  int paused;                 /* reading stopped for backpressure */
  int draining;               /* stopping: shut down once writes drain */
  int shut;                   /* uv_shutdown issued */
  int closing;                /* uv_close issued */
  int dirty;                  /* responses submitted since the last flush */
  uv_shutdown_t shutdown_req;
};

struct gt_gateway {
  /* Owner thread, immutable after start. */
  char *ip;
  int port;
  size_t max_recv;
  gt_gateway_handler_fn handler;
  void *handler_ctx;
  int started, stopped;
  uv_thread_t thread;
  /* Gateway loop. */
  uv_loop_t loop;
  uv_tcp_t listener;
  gt_wake_t wake;             /* the reply queue's wake-up */
  uv_timer_t grace;           /* cuts connections that do not drain at stop */
  int stopping;
  gt__conn_t *conns;
  gt_gateway_call_t *live;    /* calls handed to the handler, reply not drained */
  gt__pool_t pool;            /* nghttp2's allocations */
  gt__stream_t *spare_streams;   /* through next */
  gt_gateway_call_t *spare_calls; /* through live_next */
  void *spare_wreqs;          /* h2conn.c's write batches */
  unsigned nspare_streams, nspare_calls, nspare_wreqs;
  void *zinflate;             /* a z_stream reused for every gzip request, or NULL */
  /* Metrics (gateway loop; op_names and the callback are immutable after new). */
  gt__op_stats_t *ops;        /* n_ops entries, or NULL */
  const char *const *op_names;
  int n_ops;
  gt_gateway_metrics_fn metrics_fn;
  void *metrics_ctx;
  /* The HTTP/1.1 port (http1.c). http_port: as configured until start, then bound. */
  int http_port;
  int http_on;                /* the listener and sweep timer are open */
  uv_tcp_t http_listener;
  uv_timer_t http_sweep;      /* closes idle and stuck HTTP connections */
  gt__h1conn_t *h1conns;
  unsigned n_h1conns;
  char rbuf[64 * 1024];       /* read buffer: mem_recv consumes it synchronously */
  /* Any thread. */
  gt__replyq_t *q;
  atomic_int stop_requested;  /* release/acquire with the wake-up */
};

/* ---- h2conn.c ---- */

/* Accepts one connection on the listener. Loop thread. */
void gt__conn_accept(gt_gateway_t *gw);

/* Sends a response on a stream and marks it answered; takes resp's buffers. */
void gt__stream_respond(gt__stream_t *s, gt__resp_t *resp);

/* Writes what nghttp2 has queued; closes the connection when the session ends. */
void gt__conn_flush(gt__conn_t *c);

/* Flushes every connection with submitted, unwritten responses. */
void gt__conn_flush_dirty(gt_gateway_t *gw);

/* Stop: answers open streams UNAVAILABLE, sends GOAWAY, shuts down after writing. */
void gt__conn_drain(gt__conn_t *c);

/* Closes now (pending writes are dropped). */
void gt__conn_close(gt__conn_t *c);

/* Frees the spare streams and write batches (the loop has ended). */
void gt__conn_spares_free(gt_gateway_t *gw);

/* ---- gateway.c ---- */

/* Hands a complete request to the handler: takes the stream's path, headers and body
 * (s->body, s->len - 5 bytes), giving the stream a recycled call's empty buffers. */
void gt__gw_dispatch(gt_gateway_t *gw, gt__stream_t *s, uint64_t deadline_ms);

/* The loop's pool (see gt__pool_t). gt__pool_free(NULL) is a no-op; gt__pool_fini
 * frees the spare blocks. Gateway loop only (or after it ended). */
void *gt__pool_malloc(gt__pool_t *p, size_t n);
void *gt__pool_calloc(gt__pool_t *p, size_t nmemb, size_t n);
void *gt__pool_realloc(gt__pool_t *p, void *ptr, size_t n);
void gt__pool_free(gt__pool_t *p, void *ptr);
void gt__pool_fini(gt__pool_t *p);
/* The pool as nghttp2's allocator (mem_user_data = p). */
nghttp2_mem gt__pool_nghttp2_mem(gt__pool_t *p);

/* A connection has closed (its close callback ran). */
void gt__gw_conn_gone(gt_gateway_t *gw);

/* Milliseconds of the monotonic clock: uv_hrtime() / 1e6, the clock of gt_now_ms(). */
uint64_t gt__gw_now_ms(void);

/* Counts a delivered reply in its operation's metrics (no-op without an op). */
void gt__gw_count_reply(gt_gateway_t *gw, gt_gateway_call_t *call, int status);

/* ---- http1.c ---- */

#define GT__H1_MAX_HEAD 8192u      /* request line + headers; beyond: 431 */
#define GT__H1_MAX_HEADERS 100     /* header lines; beyond: 431 */
#define GT__H1_MAX_CONNS 64u       /* more are accepted and closed at once */
#define GT__H1_IDLE_MS 30000       /* a connection without a complete exchange */
#define GT__H1_LINGER_MS 2000      /* after the last response, before the close */

/* A parsed request head; pointers into the parsed buffer. */
typedef struct gt__http1_req {
  const char *method;
  size_t method_len;
  const char *path;           /* the target without its query */
  size_t path_len;
  int minor;                  /* HTTP/1.minor */
  int keep_alive;             /* from the version and Connection */
  int has_body;               /* Content-Length > 0 or Transfer-Encoding: not read */
} gt__http1_req_t;

/* Parses a request head (request line, header lines, empty line; CRLF or bare LF).
 *   buf/len: the bytes received so far
 *   OUT: *req (when complete)
 * Returns the head's length (> 0) when complete; 0 when more bytes are needed (and len <
 * GT__H1_MAX_HEAD); -400 for a malformed request line or header (found as soon as the
 * line is complete); -431 when the head exceeds GT__H1_MAX_HEAD bytes or
 * GT__H1_MAX_HEADERS lines. */
int gt__http1_parse(const char *buf, size_t len, gt__http1_req_t *req);

/* Answers a parsed request (gw may be NULL: /metrics is then empty).
 *   OUT: body (appended), *ctype.
 * Returns the status: 200 (/health, /metrics), 404 (other paths), 405 (not GET/HEAD). */
int gt__http1_route(gt_gateway_t *gw, const gt__http1_req_t *req, gt_metrics_buf_t *body,
                    const char **ctype);

/* Writes a response head into out (out_cap bytes; 256 is enough).
 *   body_len: the Content-Length; keep_alive: Connection: keep-alive or close.
 * Returns the head's length. */
size_t gt__http1_head(char *out, size_t out_cap, int status, const char *ctype,
                      size_t body_len, int keep_alive);

/* Appends the gateway's own families (service_requests, service_errors,
 * service_latency) to b. Gateway loop. */
void gt__gw_metrics_render(gt_gateway_t *gw, gt_metrics_buf_t *b);

/* Binds and listens on gw->http_port (the loop is not running yet) and records the bound
 * port there. 0 or a libuv error. Whatever it opened (the listener, the sweep timer) it
 * marks with gw->http_on, success or not: gt__http1_stop closes it. Owner thread, from
 * gt_gateway_start. */
int gt__http1_listen(gt_gateway_t *gw);

/* Closes the listener, the sweep timer and every HTTP connection (no-op when none is
 * open). Gateway loop at stop, or the owner thread when start failed. */
void gt__http1_stop(gt_gateway_t *gw);

/* ---- grpc_frame.c ---- */

/* Parses a grpc-timeout value ("1-8 digits" + H/M/S/m/u/n). Sub-millisecond units round
 * up. OUT: *ms. 0, GT_EINVAL (malformed). */
int gt__grpc_timeout_parse(const char *text, uint64_t *ms);

/* Percent-encodes a grpc-message (bytes outside 0x20..0x7E and '%'). NULL on ENOMEM. */
char *gt__grpc_pct_encode(const char *text);

/* Standard base64, padding stripped (as gRPC sends binary headers). NULL on ENOMEM. */
char *gt__base64_encode(const uint8_t *data, size_t len);

/* Inflates a gzip member, refusing output over max bytes.
 * OUT: *out (malloc, caller frees), *out_len.
 * 0, GT_ETOOBIG (over max), GT_ECORRUPT (not gzip / truncated), GT_ENOMEM. */
int gt__gzip_inflate(const uint8_t *in, size_t len, size_t max, uint8_t **out,
                     size_t *out_len);

/* The same with a reusable inflater: *zs is NULL (one is made and left there) or one
 * made by an earlier call; it is reset, not rebuilt, per message (the gzip window costs
 * ~40 KiB of allocation each time otherwise). gt__gzip_end frees it. */
int gt__gzip_inflate_with(void **zs, const uint8_t *in, size_t len, size_t max,
                          uint8_t **out, size_t *out_len);
void gt__gzip_end(void **zs);

/* Builds a framed message (5-byte prefix + payload), gzip when asked and worthwhile.
 * OUT: resp->data, resp->len, resp->gzip. 0, GT_ENOMEM. */
int gt__grpc_frame(gt__resp_t *resp, const uint8_t *msg, size_t len, int want_gzip);

/* Fills a response: status, encoded message and details, and (status OK) the framed body.
 * 0, GT_ENOMEM (resp then carries INTERNAL with no body: still sendable). */
int gt__resp_build(gt__resp_t *resp, int status, const char *message, const uint8_t *body,
                   size_t len, const uint8_t *details, size_t details_len, int want_gzip);

/* gt__grpc_frame and gt__resp_build taking the message: msg (malloc'd, or NULL when len
 * is 0) is freed by them or kept as resp->data (split layout, no copy) when it goes
 * uncompressed. Same returns; msg is gone whatever they return. */
int gt__grpc_frame_owned(gt__resp_t *resp, uint8_t *msg, size_t len, int want_gzip);
int gt__resp_build_owned(gt__resp_t *resp, int status, const char *message, uint8_t *body,
                         size_t len, const uint8_t *details, size_t details_len,
                         int want_gzip);

/* Copies n bytes of the framed message from offset off (either layout) into out. */
void gt__resp_copy(const gt__resp_t *resp, size_t off, uint8_t *out, size_t n);

/* Frees a response's buffers and clears it. */
void gt__resp_clear(gt__resp_t *resp);

/* Header blob: grows the buffer to hold need bytes (0, GT_ENOMEM); appends a pair (0,
 * GT_ENOMEM, GT_ETOOBIG); looks a name up; frees. gt__hdrs_add is inline: h2conn.c's
 * on_header runs it for every request header. */
int gt__hdrs_grow(gt__hdrs_t *h, size_t need);

static inline int gt__hdrs_add(gt__hdrs_t *h, const uint8_t *name, size_t nlen,
                               const uint8_t *value, size_t vlen) {
  size_t need = h->len + nlen + vlen + 2;
  if (need > GT__GW_MAX_HDR_BYTES)
    return GT_ETOOBIG;
  if (need > h->cap && gt__hdrs_grow(h, need) != 0)
    return GT_ENOMEM;
  char *p = h->buf + h->len;
  memcpy(p, name, nlen);
  p[nlen] = '\0';
  memcpy(p + nlen + 1, value, vlen);
  p[nlen + 1 + vlen] = '\0';
  h->len = need;
  return 0;
}

const char *gt__hdrs_get(const gt__hdrs_t *h, const char *name);
void gt__hdrs_free(gt__hdrs_t *h);

#endif
