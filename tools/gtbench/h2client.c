/*
 * h2client.c: a minimal gRPC client (unary calls, h2c) on nghttp2 and libuv, for gtbench.
 *
 * DESIGN
 *   One h2c_t is one TCP connection and one nghttp2 client session. A call packs its
 *   request into a gRPC frame (flag 0 = identity, 4-byte big-endian length, message) and
 *   submits HEADERS + DATA; nghttp2 queues streams beyond the peer's
 *   MAX_CONCURRENT_STREAMS by itself. Outgoing frames are not written per call: a
 *   uv_prepare handle drains nghttp2 into one uv_write just before the loop blocks, so a
 *   burst of calls made in one loop turn leaves in one write.
 *   Finished calls are collected while nghttp2 parses input and their callbacks run after
 *   nghttp2_session_mem_recv returns, so a callback may start new calls (or close) freely.
 *
 * INVARIANTS
 *   - Every call is on c->calls until its callback runs; its callback runs exactly once.
 *   - Once c->broken is set the session is gone and every remaining call has ended with
 *     H2C_TRANSPORT.
 *
 * THREADS: the loop thread only.
 */
#include "tools/gtbench/gtbench.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nghttp2/nghttp2.h>

#define WINDOW (16 * 1024 * 1024)
#define READ_BUF (256 * 1024)
#define PATH_PREFIX "/temporal.api.workflowservice.v1.WorkflowService/"

static h2c_observer observer; /* loop thread */
static void *observer_ud;

void h2c_observe(h2c_observer fn, void *ud) {
  observer = fn;
  observer_ud = ud;
}

typedef struct call {
  struct call *prev, *next;  /* on c->calls, or on the done list */
  h2c_t *c;
  h2c_cb cb;
  void *ud;
  uint8_t *req;              /* the framed request */
  size_t req_len, req_off;
  uint8_t *resp;             /* DATA bytes received */
  size_t resp_len, resp_cap;
  int status;                /* grpc-status, or -2 before it is seen */
  int http_status;
  uint32_t reset_code;
  int closed;                /* the stream is closed (on the done list) */
  char msg[256];
  const char *method;        /* as given to h2c_call (for the observer) */
  uint64_t t_start_us;
} call_t;

struct h2c {
  uv_loop_t *loop;
  uv_tcp_t tcp;
  uv_connect_t conn_req;
  uv_prepare_t flush;
  nghttp2_session *ng;
  char authority[128];
  int connected, broken, closing, handles;
  size_t inflight;
  call_t *calls;             /* in flight */
  call_t *done;              /* finished, callbacks pending */
  char rbuf[READ_BUF];
};

typedef struct wreq {
  uv_write_t w;
  uint8_t *p;
} wreq_t;

/* ---- call bookkeeping ---- */

static void list_push(call_t **head, call_t *x) {
  x->prev = NULL;
  x->next = *head;
  if (*head)
    (*head)->prev = x;
  *head = x;
}

static void list_del(call_t **head, call_t *x) {
  if (x->prev)
    x->prev->next = x->next;
  else
    *head = x->next;
  if (x->next)
    x->next->prev = x->prev;
  x->prev = x->next = NULL;
}

static void call_free(call_t *k) {
  free(k->req);
  free(k->resp);
  free(k);
}

/* Runs one finished call's callback with its parsed result, then frees it. */
static void call_finish(call_t *k) {
  const uint8_t *body = NULL;
  size_t len = 0;
  int status = k->status;
  if (status == -2) {
    status = H2C_TRANSPORT;
    if (k->reset_code)
      snprintf(k->msg, sizeof(k->msg), "stream reset, HTTP/2 error %u", k->reset_code);
    else if (k->http_status && k->http_status != 200)
      snprintf(k->msg, sizeof(k->msg), "HTTP status %d", k->http_status);
    else if (!k->msg[0])
      snprintf(k->msg, sizeof(k->msg), "stream ended without grpc-status");
  } else if (status == 0) {
    /* one length-prefixed message: flag, 4-byte length, bytes */
    if (k->resp_len < 5 || k->resp[0] != 0) {
      status = H2C_TRANSPORT;
      snprintf(k->msg, sizeof(k->msg), k->resp_len < 5 ? "OK without a message"
                                                       : "compressed response");
    } else {
      uint32_t n = ((uint32_t)k->resp[1] << 24) | ((uint32_t)k->resp[2] << 16) |
                   ((uint32_t)k->resp[3] << 8) | k->resp[4];
      if ((size_t)n > k->resp_len - 5) {
        status = H2C_TRANSPORT;
        snprintf(k->msg, sizeof(k->msg), "truncated gRPC frame");
      } else {
        body = k->resp + 5;
        len = n;
      }
    }
  }
  if (observer)
    observer(observer_ud, k->method, now_us() - k->t_start_us);
  k->cb(k->ud, status, k->msg, body, len);
  call_free(k);
}

/* Runs the callbacks of the calls finished so far. */
static void run_done(h2c_t *c) {
  while (c->done) {
    call_t *k = c->done;
    list_del(&c->done, k);
    c->inflight--;
    call_finish(k);
  }
}

/* Ends every call with a transport error; the session is dropped first so no nghttp2
 * callback can see a freed call. */
static void fail_all(h2c_t *c, const char *why) {
  if (!c->broken && !c->closing)
    fprintf(stderr, "gtbench: connection to %s lost: %s\n", c->authority, why);
  c->broken = 1;
  if (c->ng) {
    nghttp2_session_del(c->ng);
    c->ng = NULL;
  }
  while (c->calls) {
    call_t *k = c->calls;
    list_del(&c->calls, k);
    k->status = -2;
    k->reset_code = 0;
    snprintf(k->msg, sizeof(k->msg), "connection lost: %s", why);
    list_push(&c->done, k);
  }
  run_done(c);
}

/* ---- nghttp2 callbacks ---- */

static void pct_decode(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    unsigned v;
    if (p[0] == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
      *o++ = (char)v;
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *ud) {
  call_t *k = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
  if (!k)
    return 0;
  char v[256];
  size_t n = valuelen < sizeof(v) - 1 ? valuelen : sizeof(v) - 1;
  memcpy(v, value, n);
  v[n] = 0;
  if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
    k->http_status = atoi(v);
  } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
    k->status = atoi(v);
  } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
    pct_decode(v);
    snprintf(k->msg, sizeof(k->msg), "%s", v);
  }
  return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *ud) {
  call_t *k = nghttp2_session_get_stream_user_data(ng, stream_id);
  if (!k)
    return 0;
  if (k->resp_len + len > k->resp_cap) {
    size_t cap = k->resp_cap ? k->resp_cap : 1024;
    while (cap < k->resp_len + len)
      cap *= 2;
    uint8_t *p = realloc(k->resp, cap);
    if (!p)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    k->resp = p;
    k->resp_cap = cap;
  }
  memcpy(k->resp + k->resp_len, data, len);
  k->resp_len += len;
  return 0;
}

static int on_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *ud) {
  h2c_t *c = ud;
  call_t *k = nghttp2_session_get_stream_user_data(ng, stream_id);
  if (!k || k->closed)
    return 0;
  k->closed = 1;
  /* a stream reset after a complete trailer is still a finished call */
  if (k->status == -2)
    k->reset_code = error_code;
  list_del(&c->calls, k);
  list_push(&c->done, k);
  return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *src, void *ud) {
  call_t *k = src->ptr;
  size_t n = k->req_len - k->req_off;
  if (n > length)
    n = length;
  memcpy(buf, k->req + k->req_off, n);
  k->req_off += n;
  if (k->req_off == k->req_len)
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* ---- I/O ---- */

static void on_written(uv_write_t *w, int status) {
  wreq_t *r = (wreq_t *)w;
  h2c_t *c = w->data;
  free(r->p);
  free(r);
  if (status < 0 && !c->broken && !c->closing)
    fail_all(c, uv_strerror(status));
}

/* Drains nghttp2's outgoing frames into one write. */
static void flush_out(h2c_t *c) {
  if (!c->ng || !c->connected || c->broken)
    return;
  uint8_t *out = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(c->ng, &p);
    if (n < 0) {
      free(out);
      fail_all(c, nghttp2_strerror((int)n));
      return;
    }
    if (n == 0)
      break;
    if (len + (size_t)n > cap) {
      cap = cap ? cap * 2 : 16384;
      while (cap < len + (size_t)n)
        cap *= 2;
      uint8_t *q = realloc(out, cap);
      if (!q) {
        free(out);
        fail_all(c, "out of memory");
        return;
      }
      out = q;
    }
    memcpy(out + len, p, (size_t)n);
    len += (size_t)n;
  }
  if (len) {
    wreq_t *r = malloc(sizeof(*r));
    if (!r) {
      free(out);
      fail_all(c, "out of memory");
      return;
    }
    r->p = out;
    r->w.data = c;
    uv_buf_t b = uv_buf_init((char *)out, (unsigned)len);
    int rc = uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc < 0) {
      free(out);
      free(r);
      fail_all(c, uv_strerror(rc));
      return;
    }
  }
  if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
    fail_all(c, "session ended (GOAWAY)");
}

static void on_prepare(uv_prepare_t *h) { flush_out(h->data); }

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  h2c_t *c = h->data;
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  h2c_t *c = s->data;
  if (n == 0 || c->broken)
    return;
  if (n < 0) {
    fail_all(c, n == UV_EOF ? "server closed the connection" : uv_strerror((int)n));
    return;
  }
  ssize_t rc = nghttp2_session_mem_recv(c->ng, (const uint8_t *)buf->base, (size_t)n);
  if (rc < 0) {
    fail_all(c, nghttp2_strerror((int)rc));
    return;
  }
  run_done(c);
}

static void on_connect(uv_connect_t *req, int status) {
  h2c_t *c = req->data;
  if (c->closing)
    return;
  if (status < 0) {
    fail_all(c, uv_strerror(status));
    return;
  }
  c->connected = 1;
  uv_tcp_nodelay(&c->tcp, 1);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- public ---- */

static int resolve(const char *addr, struct sockaddr_storage *ss, char *auth, size_t authlen) {
  char host[128];
  const char *colon = strrchr(addr, ':');
  if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
    fprintf(stderr, "gtbench: --addr wants host:port, got '%s'\n", addr);
    return -1;
  }
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = 0;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  struct addrinfo *ai = NULL;
  int rc = getaddrinfo(host, colon + 1, &hints, &ai);
  if (rc != 0 || !ai) {
    fprintf(stderr, "gtbench: cannot resolve '%s': %s\n", addr, gai_strerror(rc));
    return -1;
  }
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(ai);
  snprintf(auth, authlen, "%s", addr);
  return 0;
}

int h2c_open(uv_loop_t *loop, const char *addr, h2c_t **out) {
  struct sockaddr_storage ss;
  h2c_t *c = calloc(1, sizeof(*c));
  if (!c)
    return -1;
  if (resolve(addr, &ss, c->authority, sizeof(c->authority)) != 0) {
    free(c);
    return -1;
  }
  c->loop = loop;
  nghttp2_session_callbacks *cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
  int rc = nghttp2_session_client_new(&c->ng, cbs, c);
  nghttp2_session_callbacks_del(cbs);
  if (rc != 0) {
    free(c);
    return -1;
  }
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                 {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW},
                                 {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100}};
  nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 3);
  nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, WINDOW);
  uv_tcp_init(loop, &c->tcp);
  uv_prepare_init(loop, &c->flush);
  c->handles = 2;
  c->tcp.data = c;
  c->flush.data = c;
  c->conn_req.data = c;
  uv_prepare_start(&c->flush, on_prepare);
  rc = uv_tcp_connect(&c->conn_req, &c->tcp, (struct sockaddr *)&ss, on_connect);
  if (rc < 0) {
    fprintf(stderr, "gtbench: connect %s: %s\n", addr, uv_strerror(rc));
    c->broken = 1; /* h2c_close frees it */
    h2c_close(c);
    return -1;
  }
  *out = c;
  return 0;
}

int h2c_call(h2c_t *c, const char *method, const ProtobufCMessage *req, const char *timeout,
             h2c_cb cb, void *ud) {
  if (c->broken || c->closing)
    return -1;
  call_t *k = calloc(1, sizeof(*k));
  size_t n = protobuf_c_message_get_packed_size(req);
  if (!k || !(k->req = malloc(5 + n))) {
    free(k);
    return -1;
  }
  k->req[0] = 0;
  k->req[1] = (uint8_t)(n >> 24);
  k->req[2] = (uint8_t)(n >> 16);
  k->req[3] = (uint8_t)(n >> 8);
  k->req[4] = (uint8_t)n;
  protobuf_c_message_pack(req, k->req + 5);
  k->req_len = 5 + n;
  k->c = c;
  k->cb = cb;
  k->ud = ud;
  k->status = -2;
  k->method = method;
  k->t_start_us = observer ? now_us() : 0;
  char path[160];
  snprintf(path, sizeof(path), PATH_PREFIX "%s", method);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}
  nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path),
                     NV(":authority", c->authority), NV("content-type", "application/grpc"),
                     NV("te", "trailers"), NV("grpc-accept-encoding", "identity"),
                     NV("user-agent", "gtbench/1"), NV("grpc-timeout", timeout ? timeout : "")};
#undef NV
  size_t nnv = sizeof(nv) / sizeof(nv[0]) - (timeout ? 0 : 1);
  nghttp2_data_provider dp = {.source.ptr = k, .read_callback = read_body};
  int32_t id = nghttp2_submit_request(c->ng, NULL, nv, nnv, &dp, k);
  if (id < 0) {
    call_free(k);
    return -1;
  }
  list_push(&c->calls, k);
  c->inflight++;
  return 0;
}

size_t h2c_inflight(const h2c_t *c) { return c->inflight; }

int h2c_broken(const h2c_t *c) { return c->broken; }

static void on_handle_closed(uv_handle_t *h) {
  h2c_t *c = h->data;
  if (--c->handles == 0)
    free(c);
}

void h2c_close(h2c_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  fail_all(c, "closed by gtbench");
  uv_close((uv_handle_t *)&c->flush, on_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}
