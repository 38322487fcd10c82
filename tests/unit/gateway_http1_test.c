/*
 * gateway_http1_test.c: the gateway's HTTP/1.1 port (actors/gateway/http1.c) and the
 * Prometheus rendering (runtime/metrics.c).
 *
 * DESIGN
 *   Three layers. The parser, the router and the renderers are called directly (every
 *   prefix of a request, malformed lines, size limits, cumulative buckets). Then a real
 *   gateway on 127.0.0.1 with a free HTTP port is driven over blocking sockets: status
 *   codes on the wire, keep-alive and pipelining, a request sent in pieces, errors that
 *   close, a taken port, stop with connections open. Last, gRPC calls through the same
 *   gateway (h2client.h) must show up in GET /metrics: service_requests, service_errors by
 *   status, and a service_latency histogram whose _count is the number of calls.
 *
 * THREADS
 *   The test thread is the client; the handler runs on the gateway thread and replies at
 *   once.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "actors/gateway/gateway.h"
#include "actors/gateway/gateway_int.h"
#include "runtime/err.h"
#include "runtime/metrics.h"

#include "h2client.h"

/* ---- parser ---- */

static int parse(const char *s, gt__http1_req_t *req) {
  return gt__http1_parse(s, strlen(s), req);
}

START_TEST(test_parse_complete_and_partial) {
  const char *r = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
  gt__http1_req_t req;
  ck_assert_int_eq(parse(r, &req), (int)strlen(r));
  ck_assert_int_eq((int)req.method_len, 3);
  ck_assert(memcmp(req.method, "GET", 3) == 0);
  ck_assert_int_eq((int)req.path_len, 8); /* the query is not part of the path */
  ck_assert(memcmp(req.path, "/metrics", 8) == 0);
  ck_assert_int_eq(req.minor, 1);
  ck_assert_int_eq(req.keep_alive, 1);
  ck_assert_int_eq(req.has_body, 0);
  /* Every strict prefix needs more bytes. */
  for (size_t n = 0; n < strlen(r); n++)
    ck_assert_msg(gt__http1_parse(r, n, &req) == 0, "prefix of %zu bytes", n);
  /* Pipelined: only the first head is consumed. */
  char two[256];
  snprintf(two, sizeof two, "%sGET /health HTTP/1.1\r\n\r\n", r);
  ck_assert_int_eq(parse(two, &req), (int)strlen(r));
  /* Bare LF line ends, HTTP/1.0 (closes), Connection tokens. */
  ck_assert_int_gt(parse("GET /health HTTP/1.0\n\n", &req), 0);
  ck_assert_int_eq(req.keep_alive, 0);
  ck_assert_int_gt(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req), 0);
  ck_assert_int_eq(req.keep_alive, 1);
  ck_assert_int_gt(parse("GET / HTTP/1.1\r\nconnection: te, close\r\n\r\n", &req), 0);
  ck_assert_int_eq(req.keep_alive, 0);
  /* A body is never read: the connection must close after the answer. */
  ck_assert_int_gt(parse("GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", &req), 0);
  ck_assert_int_eq(req.has_body, 1);
  ck_assert_int_eq(req.keep_alive, 0);
  ck_assert_int_gt(parse("GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &req), 0);
  ck_assert_int_eq(req.has_body, 0);
  /* Empty lines before the request line are tolerated. */
  ck_assert_int_gt(parse("\r\nGET / HTTP/1.1\r\n\r\n", &req), 0);
}
END_TEST

START_TEST(test_parse_bad_requests) {
  static const char *const bad[] = {
      "GET\r\n\r\n",
      "GET /\r\n\r\n",                          /* HTTP/0.9 */
      "GET  / HTTP/1.1\r\n\r\n",                /* two spaces */
      "GET http://a/ HTTP/1.1\r\n\r\n",         /* absolute form */
      "GET * HTTP/1.1\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "GET / HTTP/1.1 \r\n\r\n",
      "GET / http/1.1\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET /a\x01 HTTP/1.1\r\n\r\n",
      "\x16\x03\x01\x02\x31\x01\x05\x01\xfc\x03\x03\n",   /* TLS-like bytes */
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",       /* the HTTP/2 preface */
      "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost : a\r\n\r\n",     /* space before the colon */
      "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n",
      "GET / HTTP/1.1\r\n: empty\r\n\r\n",
  };
  gt__http1_req_t req;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(parse(bad[i], &req) == -400, "case %zu: %d", i, parse(bad[i], &req));
  /* A bad request line is refused as soon as it is complete, before the head ends. */
  ck_assert_int_eq(parse("BAD LINE\r\nHost: a\r\n", &req), -400);
}
END_TEST

START_TEST(test_parse_limits) {
  gt__http1_req_t req;
  size_t cap = 3 * GT__H1_MAX_HEAD;
  char *b = malloc(cap + 1);
  ck_assert_ptr_nonnull(b);
  /* Headers past 8 KiB: 431, complete or not. */
  size_t n = (size_t)snprintf(b, cap, "GET / HTTP/1.1\r\nX-Big: ");
  memset(b + n, 'a', GT__H1_MAX_HEAD);
  n += GT__H1_MAX_HEAD;
  ck_assert_int_eq(gt__http1_parse(b, n, &req), -431);
  memcpy(b + n, "\r\n\r\n", 4);
  ck_assert_int_eq(gt__http1_parse(b, n + 4, &req), -431);
  /* A request line that never ends. */
  memset(b, 'A', GT__H1_MAX_HEAD);
  ck_assert_int_eq(gt__http1_parse(b, GT__H1_MAX_HEAD, &req), -431);
  ck_assert_int_eq(gt__http1_parse(b, GT__H1_MAX_HEAD - 1, &req), 0);
  /* Too many header lines, each small. */
  n = (size_t)snprintf(b, cap, "GET / HTTP/1.1\r\n");
  for (int i = 0; i <= GT__H1_MAX_HEADERS; i++)
    n += (size_t)snprintf(b + n, cap - n, "a: b\r\n");
  n += (size_t)snprintf(b + n, cap - n, "\r\n");
  ck_assert_int_lt(n, GT__H1_MAX_HEAD);
  ck_assert_int_eq(gt__http1_parse(b, n, &req), -431);
  /* Exactly the limit of headers is fine. */
  n = (size_t)snprintf(b, cap, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < GT__H1_MAX_HEADERS; i++)
    n += (size_t)snprintf(b + n, cap - n, "a: b\r\n");
  n += (size_t)snprintf(b + n, cap - n, "\r\n");
  ck_assert_int_eq(gt__http1_parse(b, n, &req), (int)n);
  free(b);
}
END_TEST

/* Every byte value at every position of a small request: never a crash, and a result
 * that is one of the documented ones. */
START_TEST(test_parse_fuzz) {
  const char *base = "GET /health HTTP/1.1\r\nA: b\r\n\r\n";
  size_t n = strlen(base);
  char b[64];
  gt__http1_req_t req;
  for (size_t pos = 0; pos < n; pos++) {
    for (int v = 0; v < 256; v++) {
      memcpy(b, base, n);
      b[pos] = (char)v;
      int rc = gt__http1_parse(b, n, &req);
      ck_assert(rc == 0 || rc == -400 || rc == -431 || (rc > 0 && (size_t)rc <= n));
    }
  }
}
END_TEST

/* ---- router and renderers ---- */

static int route(const char *r, gt_metrics_buf_t *body, const char **ctype) {
  gt__http1_req_t req;
  ck_assert_int_gt(parse(r, &req), 0);
  gt_metrics_buf_init(body);
  return gt__http1_route(NULL, &req, body, ctype);
}

START_TEST(test_route) {
  gt_metrics_buf_t body;
  const char *ct;
  ck_assert_int_eq(route("GET /health HTTP/1.1\r\n\r\n", &body, &ct), 200);
  ck_assert_str_eq(body.p, "SERVING\n");
  ck_assert_str_eq(ct, "text/plain; charset=utf-8");
  gt_metrics_buf_fini(&body);
  ck_assert_int_eq(route("HEAD /health?probe=1 HTTP/1.1\r\n\r\n", &body, &ct), 200);
  gt_metrics_buf_fini(&body);
  ck_assert_int_eq(route("GET /metrics HTTP/1.1\r\n\r\n", &body, &ct), 200);
  ck_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
  gt_metrics_buf_fini(&body);
  ck_assert_int_eq(route("GET /healthz HTTP/1.1\r\n\r\n", &body, &ct), 404);
  gt_metrics_buf_fini(&body);
  ck_assert_int_eq(route("GET / HTTP/1.1\r\n\r\n", &body, &ct), 404);
  gt_metrics_buf_fini(&body);
  ck_assert_int_eq(route("POST /health HTTP/1.1\r\n\r\n", &body, &ct), 405);
  gt_metrics_buf_fini(&body);
  ck_assert_int_eq(route("get /health HTTP/1.1\r\n\r\n", &body, &ct), 405);
  gt_metrics_buf_fini(&body);
  ck_assert_int_eq(route("DELETE /metrics HTTP/1.1\r\n\r\n", &body, &ct), 405);
  gt_metrics_buf_fini(&body);

  char head[256];
  size_t n = gt__http1_head(head, sizeof head, 405, "text/plain", 3, 0);
  ck_assert_int_eq((int)n, (int)strlen(head));
  ck_assert_str_eq(head, "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain\r\n"
                         "Content-Length: 3\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n");
  gt__http1_head(head, sizeof head, 200, "text/plain", 8, 1);
  ck_assert_str_eq(head, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         "Content-Length: 8\r\nConnection: keep-alive\r\n\r\n");
}
END_TEST

/* The value of the sample line starting with `prefix` (name and labels), or -1. */
static double sample(const char *text, const char *prefix) {
  size_t pl = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, prefix, pl) == 0 && p[pl] == ' ')
      return strtod(p + pl + 1, NULL);
  }
  return -1;
}

START_TEST(test_exposition) {
  gt_metrics_hist_t h;
  memset(&h, 0, sizeof h);
  const uint64_t ms = 1000000;
  uint64_t obs[] = {ms / 2, ms, 3 * ms, 2000 * ms, 2000000 * ms, 7 * ms};
  for (size_t i = 0; i < sizeof obs / sizeof obs[0]; i++)
    gt_metrics_hist_observe(&h, obs[i]);
  gt_metrics_buf_t b;
  gt_metrics_buf_init(&b);
  gt_metrics_family(&b, "lat", "histogram", "A latency.");
  gt_metrics_hist_render(&b, "lat", "op=\"x\"", &h);
  gt_metrics_family(&b, "plain", "counter", "No labels.");
  gt_metrics_sample(&b, "plain", NULL, 7);
  gt_metrics_printf(&b, "esc{v=\"");
  gt_metrics_escape(&b, "a\"b\\c\nd");
  gt_metrics_printf(&b, "\"} 1\n");
  ck_assert_int_eq(b.oom, 0);
  const char *t = b.p;
  ck_assert_ptr_nonnull(strstr(t, "# HELP lat A latency.\n# TYPE lat histogram\n"));
  ck_assert_ptr_nonnull(strstr(t, "# TYPE plain counter\nplain 7\n"));
  ck_assert_ptr_nonnull(strstr(t, "esc{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
  /* le is an upper bound, inclusive: 1 ms lands in le="0.001". */
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"0.001\"}") == 2);
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"0.002\"}") == 2);
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"0.005\"}") == 3);
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"0.01\"}") == 4);
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"1\"}") == 4);
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"2\"}") == 5);
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"1000\"}") == 5);
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"2000\"}") == -1); /* no such bound */
  ck_assert(sample(t, "lat_bucket{op=\"x\",le=\"+Inf\"}") == 6);
  ck_assert(sample(t, "lat_count{op=\"x\"}") == 6);
  double sum = sample(t, "lat_sum{op=\"x\"}");
  ck_assert_msg(sum > 2002.0114 && sum < 2002.0116, "sum %f", sum);
  /* Buckets are cumulative: never decreasing, in bound order, +Inf last. */
  double prev = -1;
  int nb = 0;
  for (const char *p = strstr(t, "lat_bucket"); p; p = strstr(p + 1, "lat_bucket")) {
    const char *sp = strchr(p, ' ');
    double v = strtod(sp + 1, NULL);
    ck_assert_msg(v >= prev, "bucket %d: %f after %f", nb, v, prev);
    prev = v;
    nb++;
  }
  ck_assert_int_eq(nb, GT_METRICS_NBOUNDS + 1);
  /* Without labels. */
  gt_metrics_buf_t c;
  gt_metrics_buf_init(&c);
  gt_metrics_hist_render(&c, "l", NULL, &h);
  ck_assert_ptr_nonnull(strstr(c.p, "l_bucket{le=\"0.001\"} 2\n"));
  ck_assert_ptr_nonnull(strstr(c.p, "\nl_count 6\n"));
  gt_metrics_buf_fini(&c);
  gt_metrics_buf_fini(&b);
}
END_TEST

/* ---- a live gateway ---- */

static const char *const OPS[] = {"Echo", "Fail"};

static void handler(void *ctx, gt_gateway_call_t *call, const char *method,
                    const uint8_t *body, size_t len) {
  if (strcmp(method, "/test.Svc/Echo") == 0) {
    gt_gateway_call_set_op(call, 0);
    gt_gateway_reply(call, GT_GRPC_OK, NULL, body, len, NULL, 0);
  } else if (strcmp(method, "/test.Svc/Fail") == 0) {
    gt_gateway_call_set_op(call, 1);
    gt_gateway_reply(call, GT_GRPC_NOT_FOUND, "no such thing", NULL, 0, NULL, 0);
  } else {
    gt_gateway_call_set_op(call, 99); /* out of range: ignored */
    gt_gateway_reply(call, GT_GRPC_UNIMPLEMENTED, "unknown", NULL, 0, NULL, 0);
  }
}

static void extra_metrics(void *ctx, gt_metrics_buf_t *out) {
  gt_metrics_family(out, "test_extra", "gauge", "From the owner.");
  gt_metrics_sample(out, "test_extra", NULL, 42);
}

static gt_gateway_t *start_gw(int http_port) {
  gt_gateway_config_t cfg = {.ip = "127.0.0.1", .port = 0, .http_port = http_port,
                             .handler = handler, .op_names = OPS, .n_ops = 2,
                             .metrics_fn = extra_metrics};
  gt_gateway_t *gw;
  ck_assert_int_eq(gt_gateway_new(&gw, &cfg), 0);
  ck_assert_int_eq(gt_gateway_start(gw), 0);
  return gw;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void send_all(int fd, const void *p, size_t n) {
  ck_assert_int_eq((int)send(fd, p, n, MSG_NOSIGNAL), (int)n);
}

/* Reads until the server closes (fails after 10 s). NUL-terminated; returns the length. */
static size_t read_to_eof(int fd, char *out, size_t cap) {
  size_t len = 0;
  for (;;) {
    ck_assert_int_lt(len, cap - 1);
    ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
    ck_assert_msg(n >= 0, "no EOF from the server in time");
    if (n == 0)
      break;
    len += (size_t)n;
  }
  out[len] = '\0';
  return len;
}

/* One request on a fresh connection, read to EOF. */
static size_t exchange(int port, const char *req, size_t n, char *out, size_t cap) {
  int fd = connect_to(port);
  send_all(fd, req, n);
  size_t len = read_to_eof(fd, out, cap);
  close(fd);
  return len;
}

static size_t count_of(const char *hay, const char *needle) {
  size_t k = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    k++;
  return k;
}

START_TEST(test_wire_statuses) {
  gt_gateway_t *gw = start_gw(GT_GATEWAY_PORT_ANY);
  int port = gt_gateway_http_port(gw);
  ck_assert_int_gt(port, 0);
  ck_assert_int_ne(port, gt_gateway_port(gw));
  static char out[65536];
  const char *r = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  exchange(port, r, strlen(r), out, sizeof out);
  ck_assert_str_eq(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: 8\r\nConnection: close\r\n\r\nSERVING\n");
  r = "HEAD /health HTTP/1.0\r\n\r\n";
  exchange(port, r, strlen(r), out, sizeof out);
  ck_assert_ptr_nonnull(strstr(out, "Content-Length: 8\r\n"));
  ck_assert_ptr_null(strstr(out, "SERVING")); /* HEAD: no body */
  r = "GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n";
  exchange(port, r, strlen(r), out, sizeof out);
  ck_assert_int_eq(strncmp(out, "HTTP/1.1 404 ", 13), 0);
  /* 405 closes even when the client asked to keep the connection. */
  r = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  exchange(port, r, strlen(r), out, sizeof out);
  ck_assert_int_eq(strncmp(out, "HTTP/1.1 405 ", 13), 0);
  ck_assert_ptr_nonnull(strstr(out, "Allow: GET, HEAD\r\n"));
  r = "HELLO\r\n\r\n";
  exchange(port, r, strlen(r), out, sizeof out);
  ck_assert_int_eq(strncmp(out, "HTTP/1.1 400 ", 13), 0);
  ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n"));
  /* 12 KiB of headers: 431, then the server closes (lingering past the rest). */
  char big[12288 + 64];
  size_t n = (size_t)snprintf(big, sizeof big, "GET /health HTTP/1.1\r\nX: ");
  memset(big + n, 'z', 12288);
  n += 12288;
  memcpy(big + n, "\r\n\r\n", 4);
  exchange(port, big, n + 4, out, sizeof out);
  ck_assert_int_eq(strncmp(out, "HTTP/1.1 431 ", 13), 0);
  /* Binary garbage. */
  uint8_t junk[256];
  for (int i = 0; i < 256; i++)
    junk[i] = (uint8_t)(i * 37 + 11);
  exchange(port, (const char *)junk, sizeof junk, out, sizeof out);
  ck_assert_int_eq(strncmp(out, "HTTP/1.1 400 ", 13), 0);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_wire_keepalive_pipelined_slow) {
  gt_gateway_t *gw = start_gw(GT_GATEWAY_PORT_ANY);
  int port = gt_gateway_http_port(gw);
  static char out[262144];
  /* Three requests in one write; the last one closes. */
  const char *r = "GET /health HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"
                  "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
  exchange(port, r, strlen(r), out, sizeof out);
  ck_assert_int_eq((int)count_of(out, "HTTP/1.1 200 OK\r\n"), 3);
  ck_assert_int_eq((int)count_of(out, "SERVING\n"), 2);
  ck_assert_ptr_nonnull(strstr(out, "Content-Type: text/plain; version=0.0.4"));
  /* Two requests, one after the other's answer, on one connection. */
  int fd = connect_to(port);
  r = "GET /health HTTP/1.1\r\n\r\n";
  send_all(fd, r, strlen(r));
  char one[256];
  size_t got = 0, want = strlen("HTTP/1.1 200 OK\r\nContent-Type: text/plain; "
                                "charset=utf-8\r\nContent-Length: 8\r\nConnection: "
                                "keep-alive\r\n\r\nSERVING\n");
  while (got < want) {
    ssize_t k = recv(fd, one + got, want - got, 0);
    ck_assert_int_gt((int)k, 0);
    got += (size_t)k;
  }
  one[got] = '\0';
  ck_assert_ptr_nonnull(strstr(one, "Connection: keep-alive"));
  /* The next request byte by byte, with pauses: a slow client. */
  r = "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n";
  for (size_t i = 0; i < strlen(r); i++) {
    send_all(fd, r + i, 1);
    if (i % 8 == 0)
      usleep(2000);
  }
  read_to_eof(fd, out, sizeof out);
  close(fd);
  ck_assert_int_eq(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0);
  ck_assert_ptr_nonnull(strstr(out, "SERVING\n"));
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_metrics_count_grpc_calls) {
  gt_gateway_t *gw = start_gw(GT_GATEWAY_PORT_ANY);
  h2c_client_t c;
  h2c_open(&c, gt_gateway_port(gw));
  const char *paths[] = {"/test.Svc/Echo", "/test.Svc/Echo", "/test.Svc/Fail",
                         "/test.Svc/Echo", "/test.Svc/Fail", "/test.Svc/Nope"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    h2c_stream_t s;
    memset(&s, 0, sizeof s);
    h2c_call_raw(&c, &s, paths[i], (const uint8_t *)"hi", 2, NULL);
    h2c_wait(&c, &s);
    ck_assert_int_eq(s.grpc_status, strcmp(paths[i], "/test.Svc/Echo") == 0   ? 0
                                    : strcmp(paths[i], "/test.Svc/Fail") == 0 ? 5
                                                                              : 12);
    h2c_stream_free(&s);
  }
  h2c_close(&c);
  static char out[262144];
  const char *r = "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n";
  exchange(gt_gateway_http_port(gw), r, strlen(r), out, sizeof out);
  ck_assert_int_eq(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0);
  const char *t = strstr(out, "\r\n\r\n");
  ck_assert_ptr_nonnull(t);
  ck_assert(sample(t, "service_requests{operation=\"Echo\"}") == 3);
  ck_assert(sample(t, "service_requests{operation=\"Fail\"}") == 2);
  ck_assert(sample(t, "service_errors{operation=\"Fail\",status_code=\"NotFound\"}") == 2);
  ck_assert_ptr_null(strstr(t, "service_errors{operation=\"Echo\""));
  ck_assert_ptr_nonnull(strstr(t, "# TYPE service_latency histogram\n"));
  ck_assert(sample(t, "service_latency_count{operation=\"Echo\"}") == 3);
  ck_assert(sample(t, "service_latency_bucket{operation=\"Echo\",le=\"+Inf\"}") == 3);
  ck_assert(sample(t, "service_latency_count{operation=\"Fail\"}") == 2);
  ck_assert(sample(t, "service_latency_bucket{operation=\"Fail\",le=\"1000\"}") == 2);
  ck_assert(sample(t, "test_extra") == 42);
  /* The unknown op was not counted anywhere. */
  ck_assert_int_eq((int)count_of(t, "service_requests{"), 2);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_port_off_taken_and_stop) {
  /* Port 0: no HTTP listener. */
  gt_gateway_t *gw = start_gw(0);
  ck_assert_int_eq(gt_gateway_http_port(gw), 0);
  gt_gateway_free(gw);
  /* A taken port: start fails, nothing is left listening. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  ck_assert_int_eq(listen(fd, 4), 0);
  socklen_t al = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &al);
  int taken = ntohs(a.sin_port);
  gt_gateway_config_t cfg = {.ip = "127.0.0.1", .port = 0, .http_port = taken,
                             .handler = handler};
  ck_assert_int_eq(gt_gateway_new(&gw, &cfg), 0);
  ck_assert_int_eq(gt_gateway_start(gw), GT_EIO);
  gt_gateway_free(gw);
  close(fd);
  cfg.http_port = -2;
  ck_assert_int_eq(gt_gateway_new(&gw, &cfg), GT_EINVAL);
  cfg.http_port = 65536;
  ck_assert_int_eq(gt_gateway_new(&gw, &cfg), GT_EINVAL);
  /* Stop with connections open: one idle, one mid-request, one mid-response. */
  gw = start_gw(GT_GATEWAY_PORT_ANY);
  int port = gt_gateway_http_port(gw);
  int idle = connect_to(port);
  int half = connect_to(port);
  send_all(half, "GET /heal", 9);
  int many = connect_to(port);
  static char req[64 * 30];
  size_t n = 0;
  for (int i = 0; i < 60; i++)
    n += (size_t)snprintf(req + n, sizeof req - n, "GET /metrics HTTP/1.1\r\n\r\n");
  send_all(many, req, n); /* never read: the server's writes back up */
  usleep(100000);
  gt_gateway_free(gw);
  char out[64];
  ck_assert_int_eq((int)recv(idle, out, sizeof out, 0), 0);
  ck_assert_int_eq((int)recv(half, out, sizeof out, 0), 0);
  close(idle);
  close(half);
  close(many);
}
END_TEST

static Suite *http1_suite(void) {
  Suite *s = suite_create("gateway_http1");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_parse_complete_and_partial);
  tcase_add_test(tc, test_parse_bad_requests);
  tcase_add_test(tc, test_parse_limits);
  tcase_add_test(tc, test_parse_fuzz);
  tcase_add_test(tc, test_route);
  tcase_add_test(tc, test_exposition);
  tcase_add_test(tc, test_wire_statuses);
  tcase_add_test(tc, test_wire_keepalive_pipelined_slow);
  tcase_add_test(tc, test_metrics_count_grpc_calls);
  tcase_add_test(tc, test_port_off_taken_and_stop);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  SRunner *sr = srunner_create(http1_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
