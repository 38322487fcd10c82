/*
 * gateway_test.c: the gRPC gateway driven by a real nghttp2 client session over a
 * non-blocking socket polled by the test thread.
 *
 * DESIGN
 *   Each test starts a gateway on 127.0.0.1:0 with one handler that routes on the method:
 *     /test.Echo/Reverse  replies at once with the request bytes reversed
 *     /test.Echo/Echo     replies at once with the request bytes
 *     /test.Echo/Big      replies with 100 KiB of compressible bytes
 *     /test.Echo/Header   replies "<client-name>|<ms left before the deadline>"
 *     /test.Echo/Error    replies UNKNOWN with a message and binary details
 *     /test.Echo/Owned, BigOwned, OwnedError: Reverse, Big and Error through
 *                         gt_gateway_reply_owned (the gateway takes the body)
 *     /test.Echo/Held     parks the call; the test (or a worker thread) replies later
 *   The client helper writes what nghttp2 queues and feeds what it reads back, until a
 *   predicate holds (streams closed, EOF) or 10 s pass (then the test fails).
 *
 * THREADS
 *   The test thread drives the client; the handler runs on the gateway thread; the
 *   out-of-order test replies from a worker thread; the stop test stops from a thread.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <zlib.h>

#include "actors/gateway/gateway.h"
#include "actors/gateway/gateway_int.h"
#include "runtime/actor.h"
#include "runtime/err.h"

#define MAX_HELD 64
#define WAIT_MS 10000

/* ---- test handler ---- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  gt_gateway_call_t *held[MAX_HELD];
  int nheld;
} T = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static const uint8_t DETAILS[] = {0x08, 0x02, 0x12, 0x03, 'a', 0x00, 0xff};
static const char ERR_MSG[] = "bad: 100% sure \xc3\xa9t\xc3\xa9\nline2";

static void handler(void *ctx, gt_gateway_call_t *call, const char *method,
                    const uint8_t *body, size_t len) {
  if (strcmp(method, "/test.Echo/Reverse") == 0) {
    uint8_t *r = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
      r[i] = body[len - 1 - i];
    gt_gateway_reply(call, GT_GRPC_OK, NULL, r, len, NULL, 0);
    free(r);
  } else if (strcmp(method, "/test.Echo/Owned") == 0) {
    uint8_t *r = len ? malloc(len) : NULL; /* NULL: an empty body may come as NULL */
    for (size_t i = 0; i < len; i++)
      r[i] = body[len - 1 - i];
    gt_gateway_reply_owned(call, GT_GRPC_OK, NULL, r, len, NULL, 0);
  } else if (strcmp(method, "/test.Echo/BigOwned") == 0) {
    size_t n = 100 * 1024;
    uint8_t *r = malloc(n);
    for (size_t i = 0; i < n; i++)
      r[i] = (uint8_t)('a' + i % 7);
    gt_gateway_reply_owned(call, GT_GRPC_OK, NULL, r, n, NULL, 0);
  } else if (strcmp(method, "/test.Echo/OwnedError") == 0) {
    uint8_t *r = malloc(8); /* not sent: an error has no body; freed (ASan) */
    memcpy(r, "ignored!", 8);
    gt_gateway_reply_owned(call, GT_GRPC_UNKNOWN, ERR_MSG, r, 8, DETAILS, sizeof DETAILS);
  } else if (strcmp(method, "/test.Echo/Echo") == 0) {
    gt_gateway_reply(call, GT_GRPC_OK, NULL, body, len, NULL, 0);
  } else if (strcmp(method, "/test.Echo/Big") == 0) {
    size_t n = 100 * 1024;
    uint8_t *r = malloc(n);
    for (size_t i = 0; i < n; i++)
      r[i] = (uint8_t)('a' + i % 7);
    gt_gateway_reply(call, GT_GRPC_OK, NULL, r, n, NULL, 0);
    free(r);
  } else if (strcmp(method, "/test.Echo/Header") == 0) {
    char out[256];
    const char *name = gt_gateway_call_header(call, "client-name");
    uint64_t dl = gt_gateway_call_deadline(call), now = gt_now_ms();
    long long left = dl == 0 ? -1 : (long long)(dl - now);
    snprintf(out, sizeof out, "%s|%lld", name ? name : "(none)", left);
    gt_gateway_reply(call, GT_GRPC_OK, NULL, (const uint8_t *)out, strlen(out), NULL, 0);
  } else if (strcmp(method, "/test.Echo/Error") == 0) {
    gt_gateway_reply(call, GT_GRPC_UNKNOWN, ERR_MSG, NULL, 0, DETAILS, sizeof DETAILS);
  } else if (strcmp(method, "/test.Echo/Held") == 0) {
    pthread_mutex_lock(&T.mu);
    ck_assert_int_lt(T.nheld, MAX_HELD);
    T.held[T.nheld++] = call;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
  } else {
    gt_gateway_reply(call, GT_GRPC_UNIMPLEMENTED, "unknown method", NULL, 0, NULL, 0);
  }
}

/* Waits until n calls are held. 0, or -1 after WAIT_MS. */
static int wait_held(int n) {
  struct timespec ts;
  int rv = 0;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += WAIT_MS / 1000;
  pthread_mutex_lock(&T.mu);
  while (T.nheld < n && rv == 0)
    rv = pthread_cond_timedwait(&T.cv, &T.mu, &ts);
  pthread_mutex_unlock(&T.mu);
  return T.nheld >= n ? 0 : -1;
}

static gt_gateway_t *gw_start(size_t max_recv) {
  gt_gateway_t *gw;
  gt_gateway_config_t cfg = {.ip = "127.0.0.1", .port = 0, .max_recv_bytes = max_recv,
                             .handler = handler};
  T.nheld = 0;
  ck_assert_int_eq(gt_gateway_new(&gw, &cfg), 0);
  ck_assert_int_eq(gt_gateway_start(gw), 0);
  ck_assert_int_gt(gt_gateway_port(gw), 0);
  return gw;
}

/* ---- test client ---- */

typedef struct tstream {
  int32_t id;
  int done;
  uint32_t rst;
  char status[8];
  int grpc_status;  /* -1: none */
  int trailers_only;
  char message[512];
  char details[512];
  char encoding[32];
  char resp_hdrs[256];  /* names of the response HEADERS' fields, ' '-separated */
  uint8_t *data;
  size_t len, cap;
  uint8_t *req;     /* framed request */
  size_t req_len, req_off;
} tstream_t;

typedef struct tclient {
  int fd;
  nghttp2_session *ng;
  uint8_t *out;
  size_t olen, ooff, ocap;
  int eof, goaway;
} tclient_t;

static void copy_val(char *dst, size_t cap, const uint8_t *v, size_t n) {
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, v, n);
  dst[n] = '\0';
}

static int c_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                       size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
                       void *ud) {
  tstream_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
  char n[64];
  if (s == NULL)
    return 0;
  copy_val(n, sizeof n, name, nlen);
  if (f->headers.cat == NGHTTP2_HCAT_RESPONSE &&
      strlen(s->resp_hdrs) + strlen(n) + 2 < sizeof s->resp_hdrs) {
    if (s->resp_hdrs[0])
      strcat(s->resp_hdrs, " ");
    strcat(s->resp_hdrs, n);
  }
  if (strcmp(n, ":status") == 0)
    copy_val(s->status, sizeof s->status, value, vlen);
  else if (strcmp(n, "grpc-status") == 0) {
    char v[16];
    copy_val(v, sizeof v, value, vlen);
    s->grpc_status = atoi(v);
    s->trailers_only = f->headers.cat == NGHTTP2_HCAT_RESPONSE;
  } else if (strcmp(n, "grpc-message") == 0)
    copy_val(s->message, sizeof s->message, value, vlen);
  else if (strcmp(n, "grpc-status-details-bin") == 0)
    copy_val(s->details, sizeof s->details, value, vlen);
  else if (strcmp(n, "grpc-encoding") == 0)
    copy_val(s->encoding, sizeof s->encoding, value, vlen);
  return 0;
}

static int c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *d,
                     size_t n, void *ud) {
  tstream_t *s = nghttp2_session_get_stream_user_data(ng, id);
  if (s == NULL)
    return 0;
  if (s->len + n > s->cap) {
    s->cap = (s->len + n) * 2;
    s->data = realloc(s->data, s->cap);
  }
  memcpy(s->data + s->len, d, n);
  s->len += n;
  return 0;
}

static int c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud) {
  tstream_t *s = nghttp2_session_get_stream_user_data(ng, id);
  if (s != NULL) {
    s->done = 1;
    s->rst = code;
  }
  return 0;
}

static int c_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
  tclient_t *c = ud;
  if (f->hd.type == NGHTTP2_GOAWAY)
    c->goaway = 1;
  return 0;
}

static void client_open(tclient_t *c, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  nghttp2_session_callbacks *cb;
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20},
                                 {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  memset(c, 0, sizeof *c);
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(c->fd, 0);
  ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof sa), 0);
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
  ck_assert_int_eq(nghttp2_session_client_new(&c->ng, cb, c), 0);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20);
}

static void client_close(tclient_t *c) {
  nghttp2_session_del(c->ng);
  if (c->fd >= 0)
    close(c->fd);
  free(c->out);
}

/* Pulls what nghttp2 wants to send into c->out. */
static void fill_out(tclient_t *c) {
  if (c->ooff == c->olen)
    c->ooff = c->olen = 0;
  while (c->olen < (1u << 20)) {
    const uint8_t *d;
    ssize_t n = nghttp2_session_mem_send(c->ng, &d);
    ck_assert_int_ge(n, 0);
    if (n == 0)
      break;
    if (c->olen + (size_t)n > c->ocap) {
      c->ocap = (c->olen + (size_t)n) * 2;
      c->out = realloc(c->out, c->ocap);
    }
    memcpy(c->out + c->olen, d, (size_t)n);
    c->olen += (size_t)n;
  }
}

typedef int (*pred_fn)(tclient_t *c, void *arg);

/* Runs the client until pred holds (NULL: until everything queued is written).
 * 0, or -1 on timeout / EOF before pred. */
static int pump(tclient_t *c, pred_fn pred, void *arg) {
  uint64_t deadline = gt_now_ms() + WAIT_MS;
  for (;;) {
    fill_out(c);
    if (pred ? pred(c, arg) : c->olen == c->ooff)
      return 0;
    if (c->eof || gt_now_ms() > deadline)
      return -1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (c->olen > c->ooff)
      p.events |= POLLOUT;
    if (poll(&p, 1, 100) <= 0)
      continue;
    if (p.revents & POLLOUT) {
      ssize_t n = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
      if (n > 0)
        c->ooff += (size_t)n;
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      uint8_t buf[65536];
      ssize_t n = recv(c->fd, buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        c->eof = 1;
        continue; /* pred may now hold */
      }
      if (n > 0)
        ck_assert_int_ge(nghttp2_session_mem_recv(c->ng, buf, (size_t)n), 0);
    }
  }
}

static ssize_t c_read_req(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                          uint32_t *flags, nghttp2_data_source *src, void *ud) {
  tstream_t *s = src->ptr;
  size_t n = s->req_len - s->req_off;
  if (n > length)
    n = length;
  memcpy(buf, s->req + s->req_off, n);
  s->req_off += n;
  if (s->req_off == s->req_len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static nghttp2_nv mknv(const char *n, const char *v) {
  nghttp2_nv h = {(uint8_t *)(uintptr_t)n, (uint8_t *)(uintptr_t)v, strlen(n), strlen(v),
                  NGHTTP2_NV_FLAG_NONE};
  return h;
}

/* Frames msg into s->req: flag + big-endian length + bytes (raw: frame as given). */
static void set_req(tstream_t *s, int flag, uint32_t declared, const uint8_t *msg,
                    size_t len) {
  s->req = malloc(5 + len);
  s->req[0] = (uint8_t)flag;
  s->req[1] = (uint8_t)(declared >> 24);
  s->req[2] = (uint8_t)(declared >> 16);
  s->req[3] = (uint8_t)(declared >> 8);
  s->req[4] = (uint8_t)declared;
  if (len)
    memcpy(s->req + 5, msg, len);
  s->req_len = 5 + len;
}

/* Submits a request. extra: NULL-terminated name/value pairs. */
static void submit(tclient_t *c, tstream_t *s, const char *method, const char *path,
                   const char *ctype, const char *const *extra) {
  nghttp2_nv h[16];
  size_t n = 0;
  nghttp2_data_provider prd = {.source.ptr = s, .read_callback = c_read_req};
  s->grpc_status = -1;
  h[n++] = mknv(":method", method);
  h[n++] = mknv(":scheme", "http");
  h[n++] = mknv(":authority", "localhost");
  h[n++] = mknv(":path", path);
  h[n++] = mknv("content-type", ctype);
  h[n++] = mknv("te", "trailers");
  for (; extra && extra[0]; extra += 2)
    h[n++] = mknv(extra[0], extra[1]);
  s->id = nghttp2_submit_request(c->ng, NULL, h, n, s->req ? &prd : NULL, s);
  ck_assert_int_gt(s->id, 0);
}

static void call(tclient_t *c, tstream_t *s, const char *path, const uint8_t *msg,
                 size_t len, const char *const *extra) {
  set_req(s, 0, (uint32_t)len, msg, len);
  submit(c, s, "POST", path, "application/grpc", extra);
}

static int all_done(tclient_t *c, void *arg) {
  tstream_t **v = arg;
  for (; *v; v++)
    if (!(*v)->done)
      return 0;
  return 1;
}

static void wait_done(tclient_t *c, tstream_t *s) {
  tstream_t *v[] = {s, NULL};
  ck_assert_int_eq(pump(c, all_done, v), 0);
}

static void ts_free(tstream_t *s) {
  free(s->data);
  free(s->req);
  memset(s, 0, sizeof *s);
}

/* The response message, inflated if flagged. OUT: *len. malloc'd. */
static uint8_t *resp_msg(const tstream_t *s, size_t *len) {
  ck_assert_uint_ge(s->len, 5);
  size_t n = (size_t)s->data[1] << 24 | (size_t)s->data[2] << 16 |
             (size_t)s->data[3] << 8 | s->data[4];
  ck_assert_uint_eq(s->len, 5 + n);
  if (s->data[0] == 0) {
    uint8_t *m = malloc(n + 1);
    memcpy(m, s->data + 5, n);
    *len = n;
    return m;
  }
  ck_assert_str_eq(s->encoding, "gzip");
  uint8_t *out;
  ck_assert_int_eq(gt__gzip_inflate(s->data + 5, n, 64 << 20, &out, len), 0);
  return out;
}

static uint8_t *gzip(const uint8_t *in, size_t len, size_t *out_len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
                   Z_OK);
  size_t cap = deflateBound(&zs, len);
  uint8_t *out = malloc(cap);
  zs.next_in = (Bytef *)(uintptr_t)in;
  zs.avail_in = (uInt)len;
  zs.next_out = out;
  zs.avail_out = (uInt)cap;
  ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
  *out_len = cap - zs.avail_out;
  deflateEnd(&zs);
  return out;
}

static int unhex(char c) {
  return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
}

static void pct_decode(const char *in, char *out) {
  while (*in) {
    if (in[0] == '%' && in[1] && in[2]) {
      *out++ = (char)(unhex(in[1]) * 16 + unhex(in[2]));
      in += 3;
    } else {
      *out++ = *in++;
    }
  }
  *out = '\0';
}

static size_t b64_decode(const char *in, uint8_t *out) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (; *in && *in != '='; in++) {
    const char *p = strchr(tab, *in);
    ck_assert_ptr_nonnull(p);
    acc = acc << 6 | (uint32_t)(p - tab);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (uint8_t)(acc >> bits);
    }
  }
  return n;
}

/* ---- tests ---- */

/* The loop's pool: blocks are reused per class, realloc keeps content, calloc zeroes a
 * reused block, large blocks bypass the classes, fini frees the spares (ASan: no leak). */
START_TEST(test_pool) {
  gt__pool_t p;
  memset(&p, 0, sizeof p);
  uint8_t *a = gt__pool_malloc(&p, 40);
  ck_assert_ptr_nonnull(a);
  ck_assert_uint_eq((uintptr_t)a % 16, 0);
  memset(a, 0xab, 40);
  gt__pool_free(&p, a);
  ck_assert_uint_eq(p.nspare[1], 1);
  uint8_t *b = gt__pool_calloc(&p, 8, 7); /* 56 bytes: same class, same block */
  ck_assert_ptr_eq(b, a);
  ck_assert_uint_eq(p.nspare[1], 0);
  for (int i = 0; i < 56; i++)
    ck_assert_uint_eq(b[i], 0);
  for (int i = 0; i < 56; i++)
    b[i] = (uint8_t)i;
  uint8_t *c = gt__pool_realloc(&p, b, 64); /* still fits its block */
  ck_assert_ptr_eq(c, b);
  c = gt__pool_realloc(&p, c, 5000); /* moves to the 8 KiB class */
  for (int i = 0; i < 56; i++)
    ck_assert_uint_eq(c[i], (uint8_t)i);
  ck_assert_uint_eq(p.nspare[1], 1); /* the old block went back */
  uint8_t *big = gt__pool_malloc(&p, 100000);
  ck_assert_ptr_nonnull(big);
  memset(big, 1, 100000);
  big = gt__pool_realloc(&p, big, 200000);
  ck_assert_uint_eq(big[99999], 1);
  gt__pool_free(&p, big); /* too large to keep */
  gt__pool_free(&p, c);
  gt__pool_free(&p, NULL);
  void *r = gt__pool_realloc(&p, NULL, 10);
  ck_assert_ptr_nonnull(r);
  gt__pool_free(&p, r);
  ck_assert_ptr_null(gt__pool_calloc(&p, SIZE_MAX / 2, 4));
  /* a class keeps at most GT__POOL_KEEP bytes of spares */
  void *v[GT__POOL_KEEP / 32 + 10];
  size_t nv = sizeof v / sizeof v[0];
  for (size_t i = 0; i < nv; i++)
    v[i] = gt__pool_malloc(&p, 32);
  for (size_t i = 0; i < nv; i++)
    gt__pool_free(&p, v[i]);
  ck_assert_uint_eq(p.nspare[0], GT__POOL_KEEP / 32);
  /* class boundaries: the smallest power of two from 32 B holding n, none past 8 KiB */
  static const struct { size_t n; int cls; } bnd[] = {
      {0, 0},   {1, 0},     {32, 0},    {33, 1},    {64, 1},   {65, 2},
      {128, 2}, {129, 3},   {4096, 7},  {4097, 8},  {8192, 8}, {8193, -1}};
  for (size_t i = 0; i < sizeof bnd / sizeof bnd[0]; i++) {
    size_t before[GT__POOL_CLASSES];
    memcpy(before, p.nspare, sizeof before);
    uint8_t *q = gt__pool_malloc(&p, bnd[i].n);
    ck_assert_ptr_nonnull(q);
    if (bnd[i].n)
      memset(q, 0x5a, bnd[i].n); /* ASan: the block really holds n bytes */
    if (bnd[i].cls >= 0 && before[bnd[i].cls] > 0) /* a spare of that class was taken */
      ck_assert_uint_eq(p.nspare[bnd[i].cls], before[bnd[i].cls] - 1);
    gt__pool_free(&p, q);
    for (int k = 0; k < GT__POOL_CLASSES; k++) /* back where it came from, or freed */
      ck_assert_uint_eq(p.nspare[k], before[k] + (k == bnd[i].cls && before[k] == 0));
  }
  gt__pool_fini(&p);
  for (int i = 0; i < GT__POOL_CLASSES; i++) {
    ck_assert_ptr_null(p.spare[i]);
    ck_assert_uint_eq(p.nspare[i], 0);
  }
}
END_TEST

/* One inflater serves many messages, also after a corrupt one. */
START_TEST(test_gzip_reuse) {
  void *zs = NULL;
  uint8_t msg[3000], *out;
  size_t zlen, out_len;
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i * 7 % 13);
  uint8_t *z = gzip(msg, sizeof msg, &zlen);
  for (int round = 0; round < 3; round++) {
    ck_assert_int_eq(gt__gzip_inflate_with(&zs, z, zlen, 1 << 20, &out, &out_len), 0);
    ck_assert_ptr_nonnull(zs);
    ck_assert_uint_eq(out_len, sizeof msg);
    ck_assert_int_eq(memcmp(out, msg, sizeof msg), 0);
    free(out);
    /* truncated, then over the limit: errors that must not spoil the next round */
    ck_assert_int_eq(gt__gzip_inflate_with(&zs, z, zlen / 2, 1 << 20, &out, &out_len),
                     GT_ECORRUPT);
    ck_assert_int_eq(gt__gzip_inflate_with(&zs, z, zlen, 100, &out, &out_len),
                     GT_ETOOBIG);
  }
  gt__gzip_end(&zs);
  ck_assert_ptr_null(zs);
  gt__gzip_end(&zs);
  free(z);
}
END_TEST

/* Streams and calls are recycled with their buffers: on one connection, requests of
 * alternating sizes, paths, encodings and headers must each see only their own. */
START_TEST(test_recycled_buffers) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  size_t sizes[] = {10, 40000, 0, 3, 20000, 1, 100000, 7};
  client_open(&c, gt_gateway_port(gw));
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      tstream_t s = {0};
      size_t n = sizes[i];
      uint8_t *m = malloc(n + 1);
      for (size_t k = 0; k < n; k++)
        m[k] = (uint8_t)(k * 31 + i);
      if (i % 2) { /* gzip requests use the shared inflater */
        size_t zl;
        uint8_t *z = gzip(m, n, &zl);
        const char *enc[] = {"grpc-encoding", "gzip", NULL};
        set_req(&s, 1, (uint32_t)zl, z, zl);
        submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", enc);
        free(z);
      } else {
        char longpath[600];
        snprintf(longpath, sizeof longpath, "/test.Echo/Echo%0500d", 0);
        call(&c, &s, i == 4 ? longpath : "/test.Echo/Echo", m, n, NULL);
      }
      wait_done(&c, &s);
      if (i == 4) { /* an unknown (long) method */
        ck_assert_int_eq(s.grpc_status, GT_GRPC_UNIMPLEMENTED);
      } else {
        size_t got;
        ck_assert_int_eq(s.grpc_status, 0);
        uint8_t *r = resp_msg(&s, &got);
        ck_assert_uint_eq(got, n);
        ck_assert_int_eq(memcmp(r, m, n), 0);
        free(r);
      }
      ts_free(&s);
      tstream_t h = {0};
      const char *hdr[] = {"client-name", i % 2 ? "odd" : "even", NULL};
      call(&c, &h, "/test.Echo/Header", NULL, 0, i % 3 ? hdr : NULL);
      wait_done(&c, &h);
      char want[32];
      snprintf(want, sizeof want, "%s|-1", i % 3 ? (i % 2 ? "odd" : "even") : "(none)");
      ck_assert_uint_eq(h.len - 5, strlen(want));
      ck_assert_int_eq(memcmp(h.data + 5, want, strlen(want)), 0);
      ts_free(&h);
      free(m);
    }
  }
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_unary_roundtrip) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  size_t n;
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Reverse", (const uint8_t *)"hello", 5, NULL);
  wait_done(&c, &s);
  ck_assert_str_eq(s.status, "200");
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_int_eq(s.trailers_only, 0);
  ck_assert_str_eq(s.resp_hdrs, ":status content-type"); /* grpc-go's set, no more */
  uint8_t *m = resp_msg(&s, &n);
  ck_assert_uint_eq(n, 5);
  ck_assert_int_eq(memcmp(m, "olleh", 5), 0);
  free(m);
  ts_free(&s);
  /* an empty message works too */
  call(&c, &s, "/test.Echo/Reverse", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_uint_eq(s.len, 5);
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_gzip_request_and_response) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  size_t zlen, n;
  const char *gz[] = {"grpc-encoding", "gzip", "grpc-accept-encoding", "identity,gzip",
                      NULL};
  client_open(&c, gt_gateway_port(gw));
  /* compressed request, small response: identity */
  uint8_t *z = gzip((const uint8_t *)"abcdef", 6, &zlen);
  set_req(&s, 1, (uint32_t)zlen, z, zlen);
  submit(&c, &s, "POST", "/test.Echo/Reverse", "application/grpc", gz);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_int_eq(s.data[0], 0);
  uint8_t *m = resp_msg(&s, &n);
  ck_assert_uint_eq(n, 6);
  ck_assert_int_eq(memcmp(m, "fedcba", 6), 0);
  free(m);
  free(z);
  ts_free(&s);
  /* compressed empty request (the Rust client compresses everything) */
  z = gzip(NULL, 0, &zlen);
  set_req(&s, 1, (uint32_t)zlen, z, zlen);
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc+proto", gz);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_uint_eq(s.len, 5);
  free(z);
  ts_free(&s);
  /* large response, client accepts gzip: compressed */
  call(&c, &s, "/test.Echo/Big", NULL, 0, gz + 2);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_str_eq(s.encoding, "gzip");
  ck_assert_str_eq(s.resp_hdrs, ":status content-type grpc-encoding");
  ck_assert_int_eq(s.data[0], 1);
  ck_assert_uint_lt(s.len, 20 * 1024);
  m = resp_msg(&s, &n);
  ck_assert_uint_eq(n, 100 * 1024);
  ck_assert_int_eq(m[n - 1], 'a' + (int)((n - 1) % 7));
  free(m);
  ts_free(&s);
  /* large response, no grpc-accept-encoding: identity */
  call(&c, &s, "/test.Echo/Big", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.data[0], 0);
  ck_assert_uint_eq(s.len, 5 + 100 * 1024);
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_bad_encodings) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  const char *snappy[] = {"grpc-encoding", "snappy", NULL};
  const char *gz[] = {"grpc-encoding", "gzip", NULL};
  client_open(&c, gt_gateway_port(gw));
  set_req(&s, 1, 3, (const uint8_t *)"xyz", 3);
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", snappy);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNIMPLEMENTED);
  ck_assert_ptr_nonnull(strstr(s.message, "Decompressor is not installed"));
  ts_free(&s);
  set_req(&s, 1, 3, (const uint8_t *)"xyz", 3); /* flagged, not gzip */
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", gz);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INTERNAL);
  ts_free(&s);
  set_req(&s, 1, 3, (const uint8_t *)"xyz", 3); /* flagged, no encoding */
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INTERNAL);
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

static void *reply_reversed(void *arg) {
  int n = *(int *)arg;
  if (wait_held(n) != 0)
    return NULL;
  pthread_mutex_lock(&T.mu);
  for (int i = n - 1; i >= 0; i--) { /* the last call first */
    char body[32];
    snprintf(body, sizeof body, "reply-%d", i);
    gt_gateway_reply(T.held[i], GT_GRPC_OK, NULL, (const uint8_t *)body, strlen(body),
                     NULL, 0);
    T.held[i] = NULL;
  }
  pthread_mutex_unlock(&T.mu);
  return NULL;
}

START_TEST(test_concurrent_out_of_order) {
  enum { N = 20 };
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s[N];
  tstream_t *v[N + 1];
  pthread_t th;
  int n = N;
  memset(s, 0, sizeof s);
  client_open(&c, gt_gateway_port(gw));
  ck_assert_int_eq(pthread_create(&th, NULL, reply_reversed, &n), 0);
  for (int i = 0; i < N; i++) {
    char body[32];
    snprintf(body, sizeof body, "req-%d", i);
    call(&c, &s[i], "/test.Echo/Held", (const uint8_t *)body, strlen(body), NULL);
    v[i] = &s[i];
  }
  v[N] = NULL;
  ck_assert_int_eq(pump(&c, all_done, v), 0);
  pthread_join(th, NULL);
  for (int i = 0; i < N; i++) {
    char want[32];
    size_t len;
    snprintf(want, sizeof want, "reply-%d", i);
    ck_assert_int_eq(s[i].grpc_status, 0);
    uint8_t *m = resp_msg(&s[i], &len);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_int_eq(memcmp(m, want, len), 0);
    free(m);
    ts_free(&s[i]);
  }
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_error_status_details) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  char msg[512];
  uint8_t det[512];
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Error", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_str_eq(s.status, "200");
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNKNOWN);
  ck_assert_int_eq(s.trailers_only, 1);
  ck_assert_uint_eq(s.len, 0);
  ck_assert_ptr_null(strchr(s.message, '\n')); /* encoded on the wire */
  ck_assert_ptr_nonnull(strstr(s.message, "100%25"));
  pct_decode(s.message, msg);
  ck_assert_str_eq(msg, ERR_MSG);
  ck_assert_ptr_null(strchr(s.details, '='));  /* unpadded */
  ck_assert_uint_eq(b64_decode(s.details, det), sizeof DETAILS);
  ck_assert_int_eq(memcmp(det, DETAILS, sizeof DETAILS), 0);
  ts_free(&s);
  /* an unknown method is the handler's business: it says UNIMPLEMENTED */
  call(&c, &s, "/test.Echo/Nope", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNIMPLEMENTED);
  ck_assert_str_eq(s.message, "unknown method");
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_oversized_then_next_call) {
  gt_gateway_t *gw = gw_start(0); /* 4 MiB default */
  tclient_t c;
  tstream_t s = {0};
  size_t big = 4 * 1024 * 1024 + 1, n;
  uint8_t *m = calloc(1, big);
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Echo", m, big, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_RESOURCE_EXHAUSTED);
  ck_assert_str_eq(s.message,
                   "grpc: received message larger than max (4194305 vs. 4194304)");
  ts_free(&s);
  /* the connection still serves; 3 MiB flows both ways within the windows */
  for (size_t i = 0; i < 3u << 20; i++)
    m[i] = (uint8_t)i;
  call(&c, &s, "/test.Echo/Echo", m, 3u << 20, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  uint8_t *r = resp_msg(&s, &n);
  ck_assert_uint_eq(n, 3u << 20);
  ck_assert_int_eq(memcmp(r, m, n), 0);
  free(r);
  ts_free(&s);
  /* a gzip bomb: 5 MiB of zeros in a few KiB */
  size_t zlen;
  const char *gz[] = {"grpc-encoding", "gzip", NULL};
  memset(m, 0, big);
  uint8_t *z = gzip(m, 5u << 20 > big ? big : 5u << 20, &zlen);
  ck_assert_uint_lt(zlen, 64 * 1024);
  set_req(&s, 1, (uint32_t)zlen, z, zlen);
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", gz);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_RESOURCE_EXHAUSTED);
  ck_assert_ptr_nonnull(strstr(s.message, "after decompression"));
  ts_free(&s);
  free(z);
  free(m);
  call(&c, &s, "/test.Echo/Reverse", (const uint8_t *)"ab", 2, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_malformed_frames) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  client_open(&c, gt_gateway_port(gw));
  set_req(&s, 0, 100, (const uint8_t *)"0123456789", 10); /* prefix says 100 */
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INTERNAL);
  ck_assert_ptr_nonnull(strstr(s.message, "malformed"));
  ts_free(&s);
  set_req(&s, 0, 2, (const uint8_t *)"0123456789", 10); /* trailing bytes */
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INTERNAL);
  ts_free(&s);
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", NULL); /* no body */
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INTERNAL);
  ts_free(&s);
  s.req = malloc(3); /* a short prefix */
  memcpy(s.req, "\0\0\0", 3);
  s.req_len = 3;
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpc", NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INTERNAL);
  ts_free(&s);
  /* not gRPC at all */
  submit(&c, &s, "GET", "/test.Echo/Echo", "application/grpc", NULL);
  wait_done(&c, &s);
  ck_assert_str_eq(s.status, "405");
  ts_free(&s);
  set_req(&s, 0, 2, (const uint8_t *)"hi", 2);
  submit(&c, &s, "POST", "/test.Echo/Echo", "text/plain", NULL);
  wait_done(&c, &s);
  ck_assert_str_eq(s.status, "415");
  ts_free(&s);
  set_req(&s, 0, 2, (const uint8_t *)"hi", 2);
  submit(&c, &s, "POST", "/test.Echo/Echo", "application/grpcx", NULL);
  wait_done(&c, &s);
  ck_assert_str_eq(s.status, "415");
  ts_free(&s);
  /* and the connection still works */
  call(&c, &s, "/test.Echo/Reverse", (const uint8_t *)"ab", 2, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_int_eq(s.data[5], 'b');
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_timeout_parse) {
  uint64_t ms = 0;
  ck_assert_int_eq(gt__grpc_timeout_parse("1S", &ms), 0);
  ck_assert_uint_eq(ms, 1000);
  ck_assert_int_eq(gt__grpc_timeout_parse("2H", &ms), 0);
  ck_assert_uint_eq(ms, 7200000);
  ck_assert_int_eq(gt__grpc_timeout_parse("3M", &ms), 0);
  ck_assert_uint_eq(ms, 180000);
  ck_assert_int_eq(gt__grpc_timeout_parse("100m", &ms), 0);
  ck_assert_uint_eq(ms, 100);
  ck_assert_int_eq(gt__grpc_timeout_parse("1500u", &ms), 0);
  ck_assert_uint_eq(ms, 2); /* rounds up */
  ck_assert_int_eq(gt__grpc_timeout_parse("1n", &ms), 0);
  ck_assert_uint_eq(ms, 1);
  ck_assert_int_eq(gt__grpc_timeout_parse("0m", &ms), 0);
  ck_assert_uint_eq(ms, 0);
  ck_assert_int_eq(gt__grpc_timeout_parse("99999999H", &ms), 0);
  ck_assert_uint_eq(ms, 99999999ull * 3600000ull);
  ck_assert_int_eq(gt__grpc_timeout_parse("123456789S", &ms), GT_EINVAL);
  ck_assert_int_eq(gt__grpc_timeout_parse("", &ms), GT_EINVAL);
  ck_assert_int_eq(gt__grpc_timeout_parse("S", &ms), GT_EINVAL);
  ck_assert_int_eq(gt__grpc_timeout_parse("10", &ms), GT_EINVAL);
  ck_assert_int_eq(gt__grpc_timeout_parse("10x", &ms), GT_EINVAL);
  ck_assert_int_eq(gt__grpc_timeout_parse("10SS", &ms), GT_EINVAL);
  ck_assert_int_eq(gt__grpc_timeout_parse("-1S", &ms), GT_EINVAL);
  ck_assert_int_eq(gt__grpc_timeout_parse(NULL, &ms), GT_EINVAL);
}
END_TEST

START_TEST(test_encoders) {
  char *e = gt__grpc_pct_encode("a b%c\x01\xff~");
  ck_assert_str_eq(e, "a b%25c%01%FF~");
  free(e);
  const char *want[] = {"", "YQ", "YWI", "YWJj", "YWJjZA"};
  for (int i = 0; i < 5; i++) {
    e = gt__base64_encode((const uint8_t *)"abcd", (size_t)i);
    ck_assert_str_eq(e, want[i]);
    free(e);
  }
}
END_TEST

START_TEST(test_headers_deadline_health) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  const char *hdr[] = {"client-name", "temporal-typescript", "grpc-timeout", "5S", NULL};
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Header", NULL, 0, hdr);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  char body[128] = {0};
  memcpy(body, s.data + 5, s.len - 5);
  long long left = atoll(strchr(body, '|') + 1);
  ck_assert_int_eq(strncmp(body, "temporal-typescript|", 20), 0);
  ck_assert_int_gt(left, 4000);
  ck_assert_int_le(left, 5000);
  ts_free(&s);
  call(&c, &s, "/test.Echo/Header", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(memcmp(s.data + 5, "(none)|-1", 9), 0);
  ts_free(&s);
  call(&c, &s, "/grpc.health.v1.Health/Check", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_uint_eq(s.len, 7);
  ck_assert_int_eq(memcmp(s.data, "\0\0\0\0\x02\x08\x01", 7), 0);
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_client_cancel) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0}, s2 = {0};
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Held", (const uint8_t *)"x", 1, NULL);
  ck_assert_int_eq(pump(&c, NULL, NULL), 0);
  ck_assert_int_eq(wait_held(1), 0);
  ck_assert_int_eq(gt_gateway_call_cancelled(T.held[0]), 0);
  nghttp2_submit_rst_stream(c.ng, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
  /* frames are handled in order: once this answer is back, the reset was seen */
  call(&c, &s2, "/test.Echo/Reverse", (const uint8_t *)"ab", 2, NULL);
  wait_done(&c, &s2);
  ck_assert_int_eq(gt_gateway_call_cancelled(T.held[0]), 1);
  ck_assert_str_eq(gt_gateway_call_header(T.held[0], "te"), "trailers");
  gt_gateway_reply(T.held[0], GT_GRPC_OK, NULL, (const uint8_t *)"late", 4, NULL, 0);
  T.held[0] = NULL; /* so that a call the gateway failed to free shows as a leak */
  ts_free(&s2);
  call(&c, &s2, "/test.Echo/Reverse", (const uint8_t *)"cd", 2, NULL);
  wait_done(&c, &s2);
  ck_assert_int_eq(s2.grpc_status, 0);
  ck_assert_int_eq(s2.data[5], 'd');
  ts_free(&s2);
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

START_TEST(test_client_disconnect) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Held", (const uint8_t *)"x", 1, NULL);
  ck_assert_int_eq(pump(&c, NULL, NULL), 0);
  ck_assert_int_eq(wait_held(1), 0);
  client_close(&c);
  /* The gateway exposes no event for "peer gone" (the flag is a hint), so poll it,
   * bounded. */
  uint64_t deadline = gt_now_ms() + WAIT_MS;
  while (!gt_gateway_call_cancelled(T.held[0]) && gt_now_ms() < deadline) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  ck_assert_int_eq(gt_gateway_call_cancelled(T.held[0]), 1);
  ck_assert_str_eq(gt_gateway_call_header(T.held[0], "content-type"),
                   "application/grpc");
  /* the reply is still due, and is dropped (ASan checks it is freed) */
  gt_gateway_reply(T.held[0], GT_GRPC_OK, NULL, (const uint8_t *)"late", 4, NULL, 0);
  T.held[0] = NULL;
  ts_free(&s);
  gt_gateway_free(gw);
}
END_TEST

/* The split layout (a taken body behind a separate prefix) reads out byte for byte like
 * the framed copy, from every offset and length; gzip and NULL bodies fall back. */
START_TEST(test_resp_owned_layout) {
  uint8_t msg[40];
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)(i * 7 + 1);
  gt__resp_t framed, split;
  memset(&framed, 0, sizeof framed);
  memset(&split, 0, sizeof split);
  ck_assert_int_eq(gt__grpc_frame(&framed, msg, sizeof msg, 0), 0);
  uint8_t *own = malloc(sizeof msg);
  memcpy(own, msg, sizeof msg);
  ck_assert_int_eq(gt__grpc_frame_owned(&split, own, sizeof msg, 1), 0); /* too small */
  ck_assert_int_eq(split.split, 1);
  ck_assert_ptr_eq(split.data, own); /* taken, not copied */
  ck_assert_uint_eq(split.len, framed.len);
  for (size_t off = 0; off <= framed.len; off++) {
    for (size_t n = 0; off + n <= framed.len; n++) {
      uint8_t a[64], b[64];
      memset(a, 0xee, sizeof a);
      memset(b, 0xee, sizeof b);
      gt__resp_copy(&framed, off, a, n);
      gt__resp_copy(&split, off, b, n);
      ck_assert_msg(memcmp(a, b, sizeof a) == 0, "off %zu n %zu", off, n);
      ck_assert_msg(n == 0 || memcmp(a, framed.data + off, n) == 0, "off %zu", off);
    }
  }
  gt__resp_clear(&framed);
  gt__resp_clear(&split);
  /* large and compressible with gzip wanted: compressed into a new buffer, body freed */
  size_t big = 64 * 1024;
  own = malloc(big);
  memset(own, 'z', big);
  ck_assert_int_eq(gt__grpc_frame_owned(&split, own, big, 1), 0);
  ck_assert_int_eq(split.split, 0);
  ck_assert_int_eq(split.gzip, 1);
  ck_assert_uint_lt(split.len, big / 10);
  gt__resp_clear(&split);
  /* an empty body given as NULL still frames (5 bytes), so the reply has DATA */
  ck_assert_int_eq(gt__grpc_frame_owned(&split, NULL, 0, 0), 0);
  ck_assert_ptr_nonnull(split.data);
  ck_assert_uint_eq(split.len, 5);
  gt__resp_clear(&split);
  /* an error status drops the body (no leak under ASan), keeps message and details */
  own = malloc(3);
  ck_assert_int_eq(gt__resp_build_owned(&split, GT_GRPC_NOT_FOUND, "gone", own, 3, DETAILS,
                                        sizeof DETAILS, 0),
                   0);
  ck_assert_ptr_null(split.data);
  ck_assert_str_eq(split.message, "gone");
  ck_assert_ptr_nonnull(split.details);
  gt__resp_clear(&split);
}
END_TEST

/* gt_gateway_reply_owned end to end: small, empty, large (many DATA frames, the prefix
 * in the first), gzip, an error, and a late reply to a client that left. */
START_TEST(test_reply_owned) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  size_t n;
  const char *gz[] = {"grpc-accept-encoding", "identity,gzip", NULL};
  client_open(&c, gt_gateway_port(gw));
  for (int round = 0; round < 3; round++) { /* recycled streams and calls too */
    call(&c, &s, "/test.Echo/Owned", (const uint8_t *)"hello", 5, NULL);
    wait_done(&c, &s);
    ck_assert_int_eq(s.grpc_status, 0);
    ck_assert_int_eq(s.data[0], 0);
    uint8_t *m = resp_msg(&s, &n);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(memcmp(m, "olleh", 5), 0);
    free(m);
    ts_free(&s);
  }
  call(&c, &s, "/test.Echo/Owned", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_int_eq(s.trailers_only, 0);
  ck_assert_uint_eq(s.len, 5);
  ts_free(&s);
  call(&c, &s, "/test.Echo/BigOwned", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ck_assert_uint_eq(s.len, 5 + 100 * 1024);
  uint8_t *m = resp_msg(&s, &n);
  ck_assert_uint_eq(n, 100 * 1024);
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(m[i], 'a' + (int)(i % 7));
  free(m);
  ts_free(&s);
  call(&c, &s, "/test.Echo/BigOwned", NULL, 0, gz);
  wait_done(&c, &s);
  ck_assert_str_eq(s.encoding, "gzip");
  m = resp_msg(&s, &n);
  ck_assert_uint_eq(n, 100 * 1024);
  ck_assert_int_eq(m[n - 1], 'a' + (int)((n - 1) % 7));
  free(m);
  ts_free(&s);
  call(&c, &s, "/test.Echo/OwnedError", NULL, 0, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNKNOWN);
  ck_assert_int_eq(s.trailers_only, 1);
  ts_free(&s);
  /* a held call whose client left: the owned body is dropped with the call */
  call(&c, &s, "/test.Echo/Held", (const uint8_t *)"x", 1, NULL);
  ck_assert_int_eq(pump(&c, NULL, NULL), 0);
  ck_assert_int_eq(wait_held(1), 0);
  client_close(&c);
  uint8_t *late = malloc(4);
  memcpy(late, "late", 4);
  gt_gateway_reply_owned(T.held[0], GT_GRPC_OK, NULL, late, 4, NULL, 0);
  T.held[0] = NULL;
  T.nheld = 0;
  ts_free(&s);
  gt_gateway_free(gw);
}
END_TEST

/* Malformed requests (RFC 9113 section 8: a NUL in a header value, an upper-case header
 * name, no :path) get their stream reset, and the connection goes on serving. */
START_TEST(test_header_checks) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  client_open(&c, gt_gateway_port(gw));
  nghttp2_nv h[6];
  size_t n = 0;
  h[n++] = mknv(":method", "POST");
  h[n++] = mknv(":scheme", "http");
  h[n++] = mknv(":path", "/test.Echo/Echo");
  h[n++] = mknv("content-type", "application/grpc");
  h[n] = mknv("client-name", "a");
  h[n].value = (uint8_t *)"a\0b";
  h[n++].valuelen = 3;
  s.grpc_status = -1;
  s.id = nghttp2_submit_request(c.ng, NULL, h, n, NULL, &s);
  ck_assert_int_gt(s.id, 0);
  wait_done(&c, &s);
  ck_assert_uint_ne(s.rst, 0);
  ck_assert_int_eq(s.grpc_status, -1);
  ts_free(&s);
  /* "Content-Type": not an HTTP/2 header name */
  h[3] = mknv("Content-Type", "application/grpc");
  h[3].flags |= NGHTTP2_NV_FLAG_NO_COPY_NAME; /* else nghttp2 lower-cases a copy */
  n = 4;
  s.grpc_status = -1;
  s.id = nghttp2_submit_request(c.ng, NULL, h, n, NULL, &s);
  wait_done(&c, &s);
  ck_assert_uint_ne(s.rst, 0);
  ck_assert_int_eq(s.grpc_status, -1);
  ts_free(&s);
  /* no :path at all */
  h[2] = mknv("content-type", "application/grpc");
  n = 3;
  s.grpc_status = -1;
  s.id = nghttp2_submit_request(c.ng, NULL, h, n, NULL, &s);
  wait_done(&c, &s);
  ck_assert_uint_ne(s.rst, 0);
  ck_assert_int_eq(s.grpc_status, -1);
  ts_free(&s);
  /* the connection still serves */
  call(&c, &s, "/test.Echo/Echo", (const uint8_t *)"ok", 2, NULL);
  wait_done(&c, &s);
  ck_assert_int_eq(s.grpc_status, 0);
  ts_free(&s);
  client_close(&c);
  gt_gateway_free(gw);
}
END_TEST

static void *stopper(void *arg) {
  gt_gateway_stop(arg);
  return NULL;
}

static int done_and_eof(tclient_t *c, void *arg) {
  return ((tstream_t *)arg)->done && c->eof;
}

START_TEST(test_stop_with_unanswered_call) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  pthread_t th;
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Held", (const uint8_t *)"x", 1, NULL);
  ck_assert_int_eq(pump(&c, NULL, NULL), 0);
  ck_assert_int_eq(wait_held(1), 0);
  ck_assert_int_eq(pthread_create(&th, NULL, stopper, gw), 0);
  ck_assert_int_eq(pump(&c, done_and_eof, &s), 0);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNAVAILABLE);
  ck_assert_str_eq(s.message, "server is shutting down");
  ck_assert_int_eq(c.goaway, 1);
  client_close(&c); /* the gateway waits for our side to close */
  pthread_join(th, NULL);
  ck_assert_int_eq(gt_gateway_call_cancelled(T.held[0]), 1);
  gt_gateway_free(gw);
  /* the handler's late reply after free is a safe no-op that frees the call */
  gt_gateway_reply(T.held[0], GT_GRPC_OK, NULL, (const uint8_t *)"late", 4, NULL, 0);
  T.held[0] = NULL;
  ts_free(&s);
}
END_TEST

static int done_and_goaway(tclient_t *c, void *arg) {
  return ((tstream_t *)arg)->done && c->goaway;
}

START_TEST(test_stop_cuts_lingering_client) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  pthread_t th;
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Held", (const uint8_t *)"x", 1, NULL);
  ck_assert_int_eq(pump(&c, NULL, NULL), 0);
  ck_assert_int_eq(wait_held(1), 0);
  ck_assert_int_eq(pthread_create(&th, NULL, stopper, gw), 0);
  ck_assert_int_eq(pump(&c, done_and_goaway, &s), 0);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNAVAILABLE);
  /* we keep the connection open: the grace timer cuts it and stop returns */
  pthread_join(th, NULL);
  ck_assert_int_eq(pump(&c, NULL, NULL), 0);
  c.eof = 0;
  ck_assert_int_eq(pump(&c, done_and_eof, &s), 0);
  client_close(&c);
  gt_gateway_reply(T.held[0], GT_GRPC_OK, NULL, NULL, 0, NULL, 0);
  T.held[0] = NULL;
  gt_gateway_free(gw);
  ts_free(&s);
}
END_TEST

START_TEST(test_port_taken_and_ipv6) {
  gt_gateway_t *a = gw_start(0), *b;
  gt_gateway_config_t cfg = {.ip = "127.0.0.1", .port = gt_gateway_port(a),
                             .handler = handler};
  ck_assert_int_eq(gt_gateway_new(&b, &cfg), 0);
  ck_assert_int_eq(gt_gateway_start(b), GT_EIO);
  gt_gateway_free(b);
  cfg.ip = "not-an-ip";
  cfg.port = 0;
  ck_assert_int_eq(gt_gateway_new(&b, &cfg), 0);
  ck_assert_int_eq(gt_gateway_start(b), GT_EIO);
  gt_gateway_free(b);
  cfg.handler = NULL;
  ck_assert_int_eq(gt_gateway_new(&b, &cfg), GT_EINVAL);
  cfg.handler = handler;
  cfg.ip = "::1";
  ck_assert_int_eq(gt_gateway_new(&b, &cfg), 0);
  if (gt_gateway_start(b) == 0) /* hosts without IPv6 loopback skip this half */
    ck_assert_int_gt(gt_gateway_port(b), 0);
  gt_gateway_free(b);
  gt_gateway_free(a);
}
END_TEST

START_TEST(test_stop_idle_and_never_started) {
  gt_gateway_t *gw = gw_start(0);
  tclient_t c;
  tstream_t s = {0};
  client_open(&c, gt_gateway_port(gw));
  call(&c, &s, "/test.Echo/Reverse", (const uint8_t *)"ab", 2, NULL);
  wait_done(&c, &s);
  client_close(&c); /* the gateway sees EOF and closes */
  ts_free(&s);
  gt_gateway_stop(gw);
  gt_gateway_stop(gw); /* idempotent */
  gt_gateway_free(gw);
  gt_gateway_config_t cfg = {.ip = "127.0.0.1", .handler = handler};
  ck_assert_int_eq(gt_gateway_new(&gw, &cfg), 0);
  gt_gateway_free(gw);
}
END_TEST

static Suite *gateway_suite(void) {
  Suite *s = suite_create("gateway");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_timeout_parse);
  tcase_add_test(tc, test_encoders);
  tcase_add_test(tc, test_pool);
  tcase_add_test(tc, test_gzip_reuse);
  tcase_add_test(tc, test_recycled_buffers);
  tcase_add_test(tc, test_unary_roundtrip);
  tcase_add_test(tc, test_resp_owned_layout);
  tcase_add_test(tc, test_reply_owned);
  tcase_add_test(tc, test_header_checks);
  tcase_add_test(tc, test_gzip_request_and_response);
  tcase_add_test(tc, test_bad_encodings);
  tcase_add_test(tc, test_concurrent_out_of_order);
  tcase_add_test(tc, test_error_status_details);
  tcase_add_test(tc, test_oversized_then_next_call);
  tcase_add_test(tc, test_malformed_frames);
  tcase_add_test(tc, test_headers_deadline_health);
  tcase_add_test(tc, test_client_cancel);
  tcase_add_test(tc, test_client_disconnect);
  tcase_add_test(tc, test_stop_with_unanswered_call);
  tcase_add_test(tc, test_stop_cuts_lingering_client);
  tcase_add_test(tc, test_port_taken_and_ipv6);
  tcase_add_test(tc, test_stop_idle_and_never_started);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  /* as the server's main does: a client closing while the in-process server still
   * writes (e.g. its SETTINGS frame at teardown) must give EPIPE, not kill the suite */
  signal(SIGPIPE, SIG_IGN);
  SRunner *sr = srunner_create(gateway_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
