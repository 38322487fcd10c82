/*
 * h2client.h: a small gRPC-over-h2c test client (nghttp2 on a non-blocking socket polled
 * by the test thread), header-only so several Check suites can include it.
 *
 * DESIGN
 *   The client writes what nghttp2 queues and feeds back what it reads until a predicate
 *   holds (streams closed, EOF) or H2C_WAIT_MS pass (then the caller's assertion fails).
 *   One h2c_stream_t per call records :status, the grpc-* trailers and the DATA bytes.
 *   Several calls may be in flight on one connection: submit them, then wait on each.
 *   No grpc-accept-encoding is sent, so responses come uncompressed.
 *
 * THREADS: one client belongs to one thread (the test thread).
 */
#ifndef GT_TEST_H2CLIENT_H
#define GT_TEST_H2CLIENT_H

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <protobuf-c/protobuf-c.h>

#ifndef H2C_WAIT_MS
#define H2C_WAIT_MS 10000
#endif

#define H2C_WF_SERVICE "/temporal.api.workflowservice.v1.WorkflowService/"

typedef struct h2c_stream {
  int32_t id;
  int done;
  uint32_t rst;
  char status[8];
  int grpc_status; /* -1: none */
  char message[1024];  /* grpc-message, percent-decoded */
  char details[4096];  /* grpc-status-details-bin, still base64 */
  uint8_t *data;
  size_t len, cap;
  uint8_t *req; /* framed request */
  size_t req_len, req_off;
} h2c_stream_t;

typedef struct h2c_client {
  int fd;
  nghttp2_session *ng;
  uint8_t *out;
  size_t olen, ooff, ocap;
  int eof;
} h2c_client_t;

static inline uint64_t h2c_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void h2c_copy(char *dst, size_t cap, const uint8_t *v, size_t n) {
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, v, n);
  dst[n] = '\0';
}

static inline int h2c_unhex(char c) {
  return c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0';
}

/* Percent-decodes in place (grpc-message). */
static inline void h2c_pct_decode(char *s) {
  char *out = s;
  while (*s) {
    if (s[0] == '%' && s[1] && s[2]) {
      *out++ = (char)(h2c_unhex(s[1]) * 16 + h2c_unhex(s[2]));
      s += 3;
    } else {
      *out++ = *s++;
    }
  }
  *out = '\0';
}

/* Decodes base64 (padded or not) into out (room for strlen(in) bytes). Returns the length,
 * or (size_t)-1 on a character outside the alphabet. */
static inline size_t h2c_b64_decode(const char *in, uint8_t *out) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (; *in && *in != '='; in++) {
    const char *p = strchr(tab, *in);
    if (!p)
      return (size_t)-1;
    acc = acc << 6 | (uint32_t)(p - tab);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (uint8_t)(acc >> bits);
    }
  }
  return n;
}

static inline int h2c_on_header(nghttp2_session *ng, const nghttp2_frame *f,
                                const uint8_t *name, size_t nlen, const uint8_t *value,
                                size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  h2c_stream_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
  char n[64];
  if (s == NULL)
    return 0;
  h2c_copy(n, sizeof n, name, nlen);
  if (strcmp(n, ":status") == 0) {
    h2c_copy(s->status, sizeof s->status, value, vlen);
  } else if (strcmp(n, "grpc-status") == 0) {
    char v[16];
    h2c_copy(v, sizeof v, value, vlen);
    s->grpc_status = atoi(v);
  } else if (strcmp(n, "grpc-message") == 0) {
    h2c_copy(s->message, sizeof s->message, value, vlen);
    h2c_pct_decode(s->message);
  } else if (strcmp(n, "grpc-status-details-bin") == 0) {
    h2c_copy(s->details, sizeof s->details, value, vlen);
  }
  return 0;
}

static inline int h2c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id,
                              const uint8_t *d, size_t n, void *ud) {
  (void)flags;
  (void)ud;
  h2c_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
  if (s == NULL)
    return 0;
  if (s->len + n > s->cap) {
    s->cap = (s->len + n) * 2;
    s->data = realloc(s->data, s->cap);
    ck_assert_ptr_nonnull(s->data);
  }
  memcpy(s->data + s->len, d, n);
  s->len += n;
  return 0;
}

static inline int h2c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud) {
  (void)ud;
  h2c_stream_t *s = nghttp2_session_get_stream_user_data(ng, id);
  if (s != NULL) {
    s->done = 1;
    s->rst = code;
  }
  return 0;
}

static inline void h2c_open(h2c_client_t *c, int port) {
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
  ck_assert_int_eq(nghttp2_session_callbacks_new(&cb), 0);
  nghttp2_session_callbacks_set_on_header_callback(cb, h2c_on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, h2c_on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, h2c_on_close);
  ck_assert_int_eq(nghttp2_session_client_new(&c->ng, cb, c), 0);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, 16 << 20);
}

static inline void h2c_close(h2c_client_t *c) {
  nghttp2_session_del(c->ng);
  if (c->fd >= 0)
    close(c->fd);
  free(c->out);
  memset(c, 0, sizeof *c);
  c->fd = -1;
}

/* Pulls what nghttp2 wants to send into c->out. */
static inline void h2c_fill_out(h2c_client_t *c) {
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
      ck_assert_ptr_nonnull(c->out);
    }
    memcpy(c->out + c->olen, d, (size_t)n);
    c->olen += (size_t)n;
  }
}

typedef int (*h2c_pred_fn)(h2c_client_t *c, void *arg);

/* Runs the client until pred holds (NULL: until everything queued is written), for at
 * most wait_ms. Returns 0, or -1 on timeout / EOF before pred. */
static inline int h2c_pump_for(h2c_client_t *c, h2c_pred_fn pred, void *arg,
                               uint64_t wait_ms) {
  uint64_t deadline = h2c_now_ms() + wait_ms;
  for (;;) {
    h2c_fill_out(c);
    if (pred ? pred(c, arg) : c->olen == c->ooff)
      return 0;
    if (c->eof || h2c_now_ms() > deadline)
      return -1;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (c->olen > c->ooff)
      p.events |= POLLOUT;
    if (poll(&p, 1, 50) <= 0)
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

static inline ssize_t h2c_read_req(nghttp2_session *ng, int32_t id, uint8_t *buf,
                                   size_t length, uint32_t *flags,
                                   nghttp2_data_source *src, void *ud) {
  (void)ng;
  (void)id;
  (void)ud;
  h2c_stream_t *s = src->ptr;
  size_t n = s->req_len - s->req_off;
  if (n > length)
    n = length;
  memcpy(buf, s->req + s->req_off, n);
  s->req_off += n;
  if (s->req_off == s->req_len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static inline nghttp2_nv h2c_nv(const char *n, const char *v) {
  nghttp2_nv h = {(uint8_t *)(uintptr_t)n, (uint8_t *)(uintptr_t)v, strlen(n), strlen(v),
                  NGHTTP2_NV_FLAG_NONE};
  return h;
}

/* Submits a unary gRPC call of raw message bytes on path. extra: NULL or NULL-terminated
 * name/value pairs (e.g. "grpc-timeout", "3S"). The stream must be zeroed. */
static inline void h2c_call_raw(h2c_client_t *c, h2c_stream_t *s, const char *path,
                                const uint8_t *msg, size_t len, const char *const *extra) {
  nghttp2_nv h[16];
  size_t n = 0;
  nghttp2_data_provider prd = {.source.ptr = s, .read_callback = h2c_read_req};
  s->grpc_status = -1;
  s->req = malloc(5 + len);
  ck_assert_ptr_nonnull(s->req);
  s->req[0] = 0;
  s->req[1] = (uint8_t)(len >> 24);
  s->req[2] = (uint8_t)(len >> 16);
  s->req[3] = (uint8_t)(len >> 8);
  s->req[4] = (uint8_t)len;
  if (len)
    memcpy(s->req + 5, msg, len);
  s->req_len = 5 + len;
  h[n++] = h2c_nv(":method", "POST");
  h[n++] = h2c_nv(":scheme", "http");
  h[n++] = h2c_nv(":authority", "localhost");
  h[n++] = h2c_nv(":path", path);
  h[n++] = h2c_nv("content-type", "application/grpc");
  h[n++] = h2c_nv("te", "trailers");
  for (; extra && extra[0] && n + 1 < sizeof h / sizeof h[0]; extra += 2)
    h[n++] = h2c_nv(extra[0], extra[1]);
  s->id = nghttp2_submit_request(c->ng, NULL, h, n, &prd, s);
  ck_assert_int_gt(s->id, 0);
}

/* Submits a WorkflowService call (method: "StartWorkflowExecution") with a packed msg. */
static inline void h2c_call(h2c_client_t *c, h2c_stream_t *s, const char *method,
                            const ProtobufCMessage *msg, const char *const *extra) {
  char path[256];
  snprintf(path, sizeof path, "%s%s", H2C_WF_SERVICE, method);
  size_t n = protobuf_c_message_get_packed_size(msg);
  uint8_t *b = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(b);
  protobuf_c_message_pack(msg, b);
  h2c_call_raw(c, s, path, b, n, extra);
  free(b);
}

static inline int h2c_stream_done(h2c_client_t *c, void *arg) {
  (void)c;
  return ((h2c_stream_t *)arg)->done;
}

/* Waits for a stream to close (fails the test after H2C_WAIT_MS). */
static inline void h2c_wait(h2c_client_t *c, h2c_stream_t *s) {
  ck_assert_msg(h2c_pump_for(c, h2c_stream_done, s, H2C_WAIT_MS) == 0,
                "stream %d did not finish in time", (int)s->id);
}

static inline void h2c_stream_free(h2c_stream_t *s) {
  free(s->data);
  free(s->req);
  memset(s, 0, sizeof *s);
}

/* The response message of a finished OK stream (no compression). OUT: *len. Points into
 * s->data. */
static inline const uint8_t *h2c_resp(const h2c_stream_t *s, size_t *len) {
  ck_assert_uint_ge(s->len, 5);
  ck_assert_uint_eq(s->data[0], 0);
  size_t n = (size_t)s->data[1] << 24 | (size_t)s->data[2] << 16 |
             (size_t)s->data[3] << 8 | s->data[4];
  ck_assert_uint_eq(s->len, 5 + n);
  *len = n;
  return s->data + 5;
}

/* Unpacks the response of a finished OK stream as `desc` (free with
 * protobuf_c_message_free_unpacked). Fails the test when it is not OK or does not parse. */
static inline void *h2c_unpack(const h2c_stream_t *s, const ProtobufCMessageDescriptor *desc) {
  ck_assert_msg(s->grpc_status == 0, "grpc-status %d: %s", s->grpc_status, s->message);
  size_t n;
  const uint8_t *p = h2c_resp(s, &n);
  void *m = protobuf_c_message_unpack(desc, NULL, n, p);
  ck_assert_ptr_nonnull(m);
  return m;
}

/* One call, waited for: submit + wait. */
static inline void h2c_unary(h2c_client_t *c, h2c_stream_t *s, const char *method,
                             const ProtobufCMessage *msg, const char *const *extra) {
  h2c_call(c, s, method, msg, extra);
  h2c_wait(c, s);
}

/* ---- google.rpc.Status, decoded by hand (no generated type for it) ---- */

#define H2C_MAX_DETAILS 4

/* Status {1 int32 code, 2 string message, 3 repeated Any details}; Any {1 type_url,
 * 2 value}. Pointers point into the decoded buffer. */
typedef struct h2c_rpc_status {
  int64_t code;
  const char *message; /* not NUL-terminated: message_len */
  size_t message_len;
  int n_details;
  const uint8_t *detail[H2C_MAX_DETAILS]; /* each an encoded Any */
  size_t detail_len[H2C_MAX_DETAILS];
} h2c_rpc_status_t;

/* Reads a varint at *p (< end). 0, or -1 when truncated / too long. */
static inline int h2c_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end)
      return -1;
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      return 0;
  }
  return -1;
}

/* Decodes a google.rpc.Status. Skips unknown varint/LEN fields. 0 or -1. */
static inline int h2c_rpc_status_decode(h2c_rpc_status_t *st, const uint8_t *p, size_t n) {
  const uint8_t *end = p + n;
  memset(st, 0, sizeof *st);
  while (p < end) {
    uint64_t key, v;
    if (h2c_varint(&p, end, &key) || h2c_varint(&p, end, &v))
      return -1;
    uint32_t field = (uint32_t)(key >> 3), wt = (uint32_t)(key & 7);
    if (wt == 0) {
      if (field == 1)
        st->code = (int64_t)v;
      continue;
    }
    if (wt != 2 || v > (uint64_t)(end - p))
      return -1;
    if (field == 2) {
      st->message = (const char *)p;
      st->message_len = (size_t)v;
    } else if (field == 3 && st->n_details < H2C_MAX_DETAILS) {
      st->detail[st->n_details] = p;
      st->detail_len[st->n_details++] = (size_t)v;
    }
    p += v;
  }
  return 0;
}

#endif
