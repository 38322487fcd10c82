/*
 * http1.c: the gateway's HTTP/1.1 port: GET /health and GET /metrics (Prometheus text
 * exposition 0.0.4), on the gateway's loop beside the gRPC listener.
 *
 * DESIGN
 *   A small, strict server for probes and scrapers, not a general HTTP server. Each
 *   connection has one fixed buffer of GT__H1_MAX_HEAD bytes for the request head; a head
 *   that does not fit is answered 431. A connection reads until it holds a complete head,
 *   stops reading, writes the whole response (head and body in one uv_write), then either
 *   goes back to reading (keep-alive; pipelined bytes already received are parsed first)
 *   or lingers: it shuts its side down and discards what the client still sends until EOF
 *   or GT__H1_LINGER_MS, so that closing does not reset a response the client has not
 *   read yet. Request bodies are never read: a request announcing one is answered and the
 *   connection then closes. One repeating sweep timer (1 s) closes connections past their
 *   deadline (GT__H1_IDLE_MS without a complete exchange: slow or stuck clients), so no
 *   connection needs a timer of its own.
 *   Routing: GET or HEAD only (else 405 with Allow), /health -> "SERVING\n",
 *   /metrics -> the gateway's service_* families then the owner's metrics_fn, anything
 *   else 404. A malformed request line or header -> 400. Every error closes.
 *
 * INVARIANTS
 *   - A connection is on gw->h1conns from accept until its close callback, which frees it;
 *     `closing` is set once, when uv_close is issued.
 *   - At most one uv_write is in flight per connection, and reading is stopped meanwhile,
 *     so the buffer is not touched by a read during a write.
 *   - c->len < GT__H1_MAX_HEAD whenever reading is on (a full buffer without a complete
 *     head has been answered 431), so the read buffer offered is never empty.
 *   - Counters in gw->ops are read here on the loop thread that writes them.
 *
 * THREADS
 *   The gateway loop, except gt__http1_listen (the owner thread before the loop runs) and
 *   gt__http1_stop when start failed (the owner thread, the loop never ran). The parser
 *   and the renderers are pure functions of their arguments (the unit tests call them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actors/gateway/gateway_int.h"
#include "runtime/actor.h"
#include "runtime/log.h"

enum { H1_READ = 0, H1_WRITE, H1_LINGER };

struct gt__h1conn {
  gt_gateway_t *gw;
  uv_tcp_t tcp;
  gt__h1conn_t *prev, *next;  /* gw->h1conns */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  char head[256];             /* the response head being written */
  gt_metrics_buf_t body;      /* the response body being written */
  uint64_t deadline_ms;       /* the sweep closes the connection past it */
  size_t len;                 /* bytes of buf holding the request(s) */
  int state;                  /* H1_* */
  int keep_alive;             /* after the response being written */
  int reading;
  int closing;
  char buf[GT__H1_MAX_HEAD];
};

/* ---- parsing (pure) ---- */

static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* The end of the line starting at p (the '\n'), or NULL when not received yet. */
static const char *line_end(const char *p, const char *end) {
  return memchr(p, '\n', (size_t)(end - p));
}

/* The line [p, nl) without its optional '\r'. */
static size_t line_len(const char *p, const char *nl) {
  size_t n = (size_t)(nl - p);
  return n > 0 && p[n - 1] == '\r' ? n - 1 : n;
}

/* Does the comma-separated header value v (n bytes) hold the token tok? */
static int has_token(const char *v, size_t n, const char *tok) {
  size_t tl = strlen(tok);
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t s = i;
    while (i < n && v[i] != ',')
      i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
      return 1;
  }
  return 0;
}

/* "METHOD SP origin-form SP HTTP/1.d". 0 or -400. */
static int parse_request_line(const char *p, size_t n, gt__http1_req_t *req) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)p[i]))
    i++;
  if (i == 0 || i >= n || p[i] != ' ')
    return -400;
  req->method = p;
  req->method_len = i;
  size_t t = ++i;
  if (i >= n || p[i] != '/')
    return -400; /* origin-form only: no "*", no absolute URI */
  while (i < n && p[i] != ' ') {
    unsigned char ch = (unsigned char)p[i];
    if (ch <= 0x20 || ch >= 0x7f)
      return -400;
    i++;
  }
  if (i >= n)
    return -400;
  req->path = p + t;
  const char *q = memchr(req->path, '?', i - t);
  req->path_len = q != NULL ? (size_t)(q - req->path) : i - t;
  i++;
  if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || p[i + 7] < '0' || p[i + 7] > '9')
    return -400;
  req->minor = p[i + 7] - '0';
  req->keep_alive = req->minor >= 1;
  return 0;
}

/* "name: value": updates keep_alive and has_body. 0 or -400. */
static int parse_header(const char *p, size_t n, gt__http1_req_t *req) {
  size_t i = 0;
  while (i < n && is_tchar((unsigned char)p[i]))
    i++;
  if (i == 0 || i >= n || p[i] != ':')
    return -400; /* no name, whitespace before ':', or an obsolete folded line */
  size_t name_len = i++;
  for (size_t k = i; k < n; k++) {
    unsigned char ch = (unsigned char)p[k];
    if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
      return -400;
  }
  while (i < n && (p[i] == ' ' || p[i] == '\t'))
    i++;
  const char *v = p + i;
  size_t vn = n - i;
  if (name_len == 10 && strncasecmp(p, "connection", 10) == 0) {
    if (has_token(v, vn, "close"))
      req->keep_alive = 0;
    else if (has_token(v, vn, "keep-alive"))
      req->keep_alive = 1;
  } else if (name_len == 14 && strncasecmp(p, "content-length", 14) == 0) {
    for (size_t k = 0; k < vn; k++)
      if (v[k] != '0' && v[k] != ' ' && v[k] != '\t')
        req->has_body = 1; /* any non-zero (or malformed) length */
  } else if (name_len == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
    req->has_body = 1;
  }
  return 0;
}

int gt__http1_parse(const char *buf, size_t len, gt__http1_req_t *req) {
  const char *p = buf, *end = buf + len;
  memset(req, 0, sizeof *req);
  /* Tolerate empty lines before a request (RFC 9112 2.2). */
  while (p < end && (*p == '\r' || *p == '\n'))
    p++;
  const char *nl = line_end(p, end);
  if (nl == NULL)
    return len >= GT__H1_MAX_HEAD ? -431 : 0;
  int rc = parse_request_line(p, line_len(p, nl), req);
  if (rc != 0)
    return rc;
  int nhdr = 0;
  for (p = nl + 1;; p = nl + 1) {
    nl = line_end(p, end);
    if (nl == NULL)
      return len >= GT__H1_MAX_HEAD ? -431 : 0;
    size_t n = line_len(p, nl);
    if (n == 0)
      break; /* the empty line ends the head */
    if (++nhdr > GT__H1_MAX_HEADERS)
      return -431;
    if ((rc = parse_header(p, n, req)) != 0)
      return rc;
  }
  size_t head = (size_t)(nl + 1 - buf);
  if (head > GT__H1_MAX_HEAD)
    return -431;
  if (req->has_body)
    req->keep_alive = 0; /* the body is not read: the connection cannot continue */
  return (int)head;
}

/* ---- routing and rendering ---- */

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 431: return "Request Header Fields Too Large";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

size_t gt__http1_head(char *out, size_t out_cap, int status, const char *ctype,
                      size_t body_len, int keep_alive) {
  int n = snprintf(out, out_cap,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "%sConnection: %s\r\n\r\n",
                   status, reason(status), ctype, body_len,
                   status == 405 ? "Allow: GET, HEAD\r\n" : "",
                   keep_alive ? "keep-alive" : "close");
  GT_ASSERT(n > 0 && (size_t)n < out_cap);
  return (size_t)n;
}

static int path_is(const gt__http1_req_t *req, const char *path) {
  return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

int gt__http1_route(gt_gateway_t *gw, const gt__http1_req_t *req, gt_metrics_buf_t *body,
                    const char **ctype) {
  *ctype = "text/plain; charset=utf-8";
  int get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;
  int head = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
  if (!get && !head) {
    gt_metrics_printf(body, "method not allowed: only GET and HEAD\n");
    return 405;
  }
  if (path_is(req, "/health")) {
    gt_metrics_printf(body, "SERVING\n");
    return 200;
  }
  if (path_is(req, "/metrics")) {
    *ctype = GT_METRICS_CONTENT_TYPE;
    if (gw != NULL) {
      gt__gw_metrics_render(gw, body);
      if (gw->metrics_fn != NULL)
        gw->metrics_fn(gw->metrics_ctx, body);
    }
    return 200;
  }
  gt_metrics_printf(body, "not found: try /health or /metrics\n");
  return 404;
}

/* gRPC status names as grpc-go prints them (codes.Code.String). */
static const char *const status_names[17] = {
    "OK",           "Canceled",          "Unknown",          "InvalidArgument",
    "DeadlineExceeded", "NotFound",      "AlreadyExists",    "PermissionDenied",
    "ResourceExhausted", "FailedPrecondition", "Aborted",   "OutOfRange",
    "Unimplemented", "Internal",         "Unavailable",      "DataLoss",
    "Unauthenticated"};

void gt__gw_count_reply(gt_gateway_t *gw, gt_gateway_call_t *call, int status) {
  gt__op_stats_t *st = &gw->ops[call->op];
  if (status > 0 && status <= 16)
    st->errors[status]++;
  gt_metrics_hist_observe(&st->latency, uv_hrtime() - call->t0_ns);
}

void gt__gw_metrics_render(gt_gateway_t *gw, gt_metrics_buf_t *b) {
  char labels[200];
  gt_metrics_family(b, "service_requests", "counter",
                    "gRPC requests received, by operation.");
  for (int i = 0; i < gw->n_ops; i++) {
    if (gw->ops[i].requests == 0)
      continue;
    snprintf(labels, sizeof labels, "operation=\"%s\"", gw->op_names[i]);
    gt_metrics_sample(b, "service_requests", labels, gw->ops[i].requests);
  }
  gt_metrics_family(b, "service_errors", "counter",
                    "gRPC replies with a status other than OK, by operation and status.");
  for (int i = 0; i < gw->n_ops; i++) {
    for (int s = 1; s <= 16; s++) {
      if (gw->ops[i].errors[s] == 0)
        continue;
      snprintf(labels, sizeof labels, "operation=\"%s\",status_code=\"%s\"",
               gw->op_names[i], status_names[s]);
      gt_metrics_sample(b, "service_errors", labels, gw->ops[i].errors[s]);
    }
  }
  gt_metrics_family(b, "service_latency", "histogram",
                    "Seconds from a request received to its reply handed to the "
                    "connection, by operation.");
  for (int i = 0; i < gw->n_ops; i++) {
    if (gw->ops[i].latency.count == 0)
      continue;
    snprintf(labels, sizeof labels, "operation=\"%s\"", gw->op_names[i]);
    gt_metrics_hist_render(b, "service_latency", labels, &gw->ops[i].latency);
  }
}

/* ---- connections ---- */

static void conn_on_close(uv_handle_t *h) {
  gt__h1conn_t *c = h->data;
  gt_gateway_t *gw = c->gw;
  if (c->prev)
    c->prev->next = c->next;
  else
    gw->h1conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  gw->n_h1conns--;
  gt_metrics_buf_fini(&c->body);
  free(c);
}

static void conn_close(gt__h1conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, conn_on_close);
}

static void conn_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  gt__h1conn_t *c = h->data;
  if (c->state == H1_LINGER)
    c->len = 0; /* discarded */
  GT_ASSERT(c->len < sizeof c->buf);
  *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_process(gt__h1conn_t *c);

static void read_on(gt__h1conn_t *c) {
  if (c->reading || c->closing)
    return;
  int rv = uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read);
  if (rv != 0) {
    conn_close(c);
    return;
  }
  c->reading = 1;
}

static void read_off(gt__h1conn_t *c) {
  if (c->reading)
    uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

static void conn_on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status; /* the lingering read ends the connection (EOF, error or deadline) */
}

static void conn_on_write(uv_write_t *req, int status) {
  gt__h1conn_t *c = req->data;
  gt_metrics_buf_fini(&c->body);
  if (c->closing)
    return; /* stop, or the sweep: the close callback frees c */
  if (status < 0) {
    conn_close(c);
    return;
  }
  if (!c->keep_alive) {
    c->state = H1_LINGER;
    c->deadline_ms = gt__gw_now_ms() + GT__H1_LINGER_MS;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, conn_on_shutdown) != 0) {
      conn_close(c);
      return;
    }
    read_on(c);
    return;
  }
  c->state = H1_READ;
  c->deadline_ms = gt__gw_now_ms() + GT__H1_IDLE_MS;
  conn_process(c); /* pipelined requests already received */
}

/* Writes a response and stops reading until it is written. */
static void conn_respond(gt__h1conn_t *c, int status, const char *ctype, int head_only,
                         int keep_alive) {
  if (c->body.oom) {
    gt_metrics_buf_fini(&c->body);
    gt_log_error("GW-HTTP-NOMEM", "gateway: out of memory rendering an HTTP response");
    status = 503;
    ctype = "text/plain; charset=utf-8";
    keep_alive = 0;
  }
  size_t blen = c->body.len;
  size_t hlen = gt__http1_head(c->head, sizeof c->head, status, ctype, blen, keep_alive);
  uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)hlen),
                      uv_buf_init(c->body.p, (unsigned)blen)};
  read_off(c);
  c->keep_alive = keep_alive;
  c->state = H1_WRITE;
  c->deadline_ms = gt__gw_now_ms() + GT__H1_IDLE_MS;
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, head_only || blen == 0 ? 1 : 2,
               conn_on_write) != 0) {
    gt_metrics_buf_fini(&c->body);
    conn_close(c);
  }
}

/* Parses what the buffer holds: answers one request, or waits for more bytes. */
static void conn_process(gt__h1conn_t *c) {
  gt__http1_req_t req;
  int n = gt__http1_parse(c->buf, c->len, &req);
  if (n == 0) {
    read_on(c);
    return;
  }
  gt_metrics_buf_init(&c->body);
  if (n < 0) {
    int status = -n;
    gt_metrics_printf(&c->body, "%s\n", status == 431 ? "request head too large"
                                                      : "malformed request");
    c->len = 0;
    conn_respond(c, status, "text/plain; charset=utf-8", 0, 0);
    return;
  }
  const char *ctype;
  int status = gt__http1_route(c->gw, &req, &c->body, &ctype);
  int head_only = req.method_len == 4 && memcmp(req.method, "HEAD", 4) == 0;
  int keep_alive = req.keep_alive && status != 405 && !c->gw->stopping;
  memmove(c->buf, c->buf + n, c->len - (size_t)n); /* keep pipelined bytes */
  c->len -= (size_t)n;
  conn_respond(c, status, ctype, head_only, keep_alive);
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  gt__h1conn_t *c = s->data;
  (void)buf;
  if (nread < 0) {
    conn_close(c); /* EOF, reset, or a read error */
    return;
  }
  if (nread == 0 || c->state == H1_LINGER)
    return;
  c->len += (size_t)nread;
  if (c->state == H1_READ)
    conn_process(c);
}

static void on_http_connection(uv_stream_t *server, int status) {
  gt_gateway_t *gw = server->data;
  if (status < 0) {
    gt_log_warn("GW-HTTP-ACCEPT", "gateway: HTTP accept failed: %s", uv_strerror(status));
    return;
  }
  gt__h1conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    gt_log_error("GW-HTTP-NOMEM", "gateway: out of memory for an HTTP connection");
    return; /* the connection waits in the backlog */
  }
  c->gw = gw;
  uv_tcp_init(&gw->loop, &c->tcp);
  c->tcp.data = c;
  c->next = gw->h1conns;
  if (gw->h1conns)
    gw->h1conns->prev = c;
  gw->h1conns = c;
  gw->n_h1conns++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      gw->n_h1conns > GT__H1_MAX_CONNS) {
    conn_close(c);
    return;
  }
  c->deadline_ms = gt__gw_now_ms() + GT__H1_IDLE_MS;
  read_on(c);
}

static void on_sweep(uv_timer_t *t) {
  gt_gateway_t *gw = t->data;
  uint64_t now = gt__gw_now_ms();
  for (gt__h1conn_t *c = gw->h1conns; c != NULL; c = c->next)
    if (now >= c->deadline_ms)
      conn_close(c); /* unlinked later, by its close callback */
}

/* ---- listener ---- */

int gt__http1_listen(gt_gateway_t *gw) {
  struct sockaddr_storage ss;
  int port = gw->http_port == GT_GATEWAY_PORT_ANY ? 0 : gw->http_port;
  uv_tcp_init(&gw->loop, &gw->http_listener);
  gw->http_listener.data = gw;
  uv_timer_init(&gw->loop, &gw->http_sweep);
  gw->http_sweep.data = gw;
  gw->http_on = 1;
  int rv = strchr(gw->ip, ':')
               ? uv_ip6_addr(gw->ip, port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(gw->ip, port, (struct sockaddr_in *)&ss);
  if (rv == 0)
    rv = uv_tcp_bind(&gw->http_listener, (const struct sockaddr *)&ss, 0);
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)&gw->http_listener, 128, on_http_connection);
  if (rv == 0) {
    int n = sizeof ss;
    rv = uv_tcp_getsockname(&gw->http_listener, (struct sockaddr *)&ss, &n);
    if (rv == 0)
      gw->http_port = ntohs(ss.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                : ((struct sockaddr_in *)&ss)->sin_port);
  }
  if (rv == 0)
    rv = uv_timer_start(&gw->http_sweep, on_sweep, 1000, 1000);
  return rv;
}

void gt__http1_stop(gt_gateway_t *gw) {
  if (!gw->http_on)
    return;
  gw->http_on = 0;
  uv_close((uv_handle_t *)&gw->http_listener, NULL);
  uv_close((uv_handle_t *)&gw->http_sweep, NULL);
  for (gt__h1conn_t *c = gw->h1conns; c != NULL; c = c->next)
    conn_close(c);
}
