/*
 * h2conn.c: one TCP connection = one nghttp2 server session (h2c, prior knowledge), its
 * streams, the gRPC request checks, and the responses.
 *
 * DESIGN
 *   Reads go straight into nghttp2_session_mem_recv from the gateway's read buffer.
 *   Writes: gt__conn_flush pulls frames with nghttp2_session_mem_send, copies them into
 *   batches of ~64 KiB and writes each batch with uv_try_write when nothing is queued,
 *   handing what the socket did not take to one uv_write. It stops pulling above
 *   GT__GW_WRITE_HIGH bytes in flight (the frames wait inside nghttp2, and reading pauses
 *   until the peer drains), and resumes from the write callback.
 *   A request: HEADERS (checked at once: POST, content-type application/grpc[+x|;x]), then
 *   DATA: the 5-byte prefix is read first, so an oversized message is refused before its
 *   bytes are buffered. At END_STREAM the frame must be exactly one message; it is inflated
 *   if flagged, and handed to the handler (or answered here: health check, errors).
 *   A response: OK with a body = HEADERS (:status, content-type, grpc-encoding when
 *   compressed: grpc-go's set), DATA (from the stream's buffer through a data
 *   provider), trailers submitted from inside the provider at EOF. Any other status is
 *   sent Trailers-Only (as grpc-go does): one HEADERS frame with :status 200,
 *   content-type, grpc-status, grpc-message, grpc-status-details-bin and END_STREAM.
 *
 * INVARIANTS
 *   - A stream is answered at most once (state GT__ST_DONE); later data is discarded.
 *   - conn->cur is NULL or a live stream of that connection (stream_free clears it).
 *   - nghttp2_session_del runs only in the close callback, never inside an nghttp2
 *     callback; nothing calls into the session once uv_close was issued except
 *     gt__stream_respond, which only queues.
 *   - When a stream or connection goes while its call is out with the handler, the call
 *     is detached (call->stream = NULL) and marked cancelled; the call lives on.
 *
 * THREADS
 *   Gateway loop only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define HEALTH_CHECK "/grpc.health.v1.Health/Check"

typedef struct wreq {
  uv_write_t req;
  gt__conn_t *conn;
  struct wreq *spare;         /* gw->spare_wreqs */
  size_t len, cap;
  uint8_t data[];
} wreq_t;

static nghttp2_nv nv(const char *name, const char *value) {
  nghttp2_nv h = {(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name),
                  strlen(value), NGHTTP2_NV_FLAG_NONE};
  return h;
}

/* A header of two string literals: nghttp2 need not copy them (they outlive it). */
#define NV_STATIC(n, v)                                                            \
  ((nghttp2_nv){(uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, \
                sizeof(v) - 1,                                                     \
                NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE})

/* grpc-status values as text, so a reply formats nothing. */
static const char *const status_text[] = {"0", "1", "2",  "3",  "4",  "5",
                                          "6", "7", "8",  "9",  "10", "11",
                                          "12", "13", "14", "15", "16"};

/* ---- streams ---- */

/* The stream of a frame. A request's HEADERS, its header fields and (usually) its DATA
 * arrive back to back, so the last stream looked up is remembered: callgrind counted
 * ~12 nghttp2 map lookups per request (one per header field), 33 instructions each. */
static gt__stream_t *stream_of(gt__conn_t *c, int32_t id) {
  if (c->cur != NULL && c->cur->id == id)
    return c->cur;
  gt__stream_t *s = nghttp2_session_get_stream_user_data(c->ng, id);
  if (s != NULL)
    c->cur = s;
  return s;
}

/* Frees a buffer unless it is small enough to keep with a recycled stream. */
static void keep_or_free(void **buf, size_t *cap) {
  if (*cap > GT__GW_KEEP_BUF) {
    free(*buf);
    *buf = NULL;
    *cap = 0;
  }
}

static void stream_destroy(gt__stream_t *s) {
  free(s->path);
  free(s->body);
  gt__hdrs_free(&s->hdrs);
  gt__resp_clear(&s->resp);
  free(s);
}

/* A recycled stream (buffers kept, emptied) or a new one. NULL on ENOMEM. */
static gt__stream_t *stream_get(gt_gateway_t *gw) {
  gt__stream_t *s = gw->spare_streams;
  if (s == NULL)
    return calloc(1, sizeof *s);
  gw->spare_streams = s->next;
  gw->nspare_streams--;
  char *path = s->path;
  uint8_t *body = s->body;
  size_t path_cap = s->path_cap, cap = s->cap;
  gt__hdrs_t hdrs = s->hdrs;
  memset(s, 0, sizeof *s);
  s->path = path;
  s->path_cap = path_cap;
  s->body = body;
  s->cap = cap;
  s->hdrs = hdrs;
  s->hdrs.len = 0;
  return s;
}

void gt__conn_spares_free(gt_gateway_t *gw) {
  while (gw->spare_streams != NULL) {
    gt__stream_t *s = gw->spare_streams;
    gw->spare_streams = s->next;
    stream_destroy(s);
  }
  gw->nspare_streams = 0;
  while (gw->spare_wreqs != NULL) {
    wreq_t *w = gw->spare_wreqs;
    gw->spare_wreqs = w->spare;
    free(w);
  }
  gw->nspare_wreqs = 0;
}

static void stream_free(gt__stream_t *s) {
  gt__conn_t *c = s->conn;
  gt_gateway_t *gw = c->gw;
  if (c->cur == s)
    c->cur = NULL;
  if (s->prev)
    s->prev->next = s->next;
  else
    c->streams = s->next;
  if (s->next)
    s->next->prev = s->prev;
  if (s->call != NULL) { /* the handler still has it: detach, the reply is still due */
    s->call->stream = NULL;
    atomic_store_explicit(&s->call->cancelled, 1, memory_order_relaxed);
  }
  gt__resp_clear(&s->resp);
  if (gw->nspare_streams >= GT__GW_SPARE_MAX) {
    stream_destroy(s);
    return;
  }
  keep_or_free((void **)&s->path, &s->path_cap);
  keep_or_free((void **)&s->body, &s->cap);
  keep_or_free((void **)&s->hdrs.buf, &s->hdrs.cap);
  s->next = gw->spare_streams;
  gw->spare_streams = s;
  gw->nspare_streams++;
}

/* Fills the trailer fields; `code` is the caller's storage. Returns the count. */
static size_t status_nv(const gt__resp_t *r, nghttp2_nv *out, char code[12]) {
  size_t n = 0;
  if (r->status >= 0 && r->status < (int)(sizeof status_text / sizeof *status_text)) {
    const char *t = status_text[r->status];
    out[n++] = (nghttp2_nv){(uint8_t *)"grpc-status", (uint8_t *)(uintptr_t)t, 11,
                            r->status < 10 ? 1 : 2,
                            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  } else {
    snprintf(code, 12, "%d", r->status);
    out[n++] = nv("grpc-status", code);
  }
  if (r->message)
    out[n++] = nv("grpc-message", r->message);
  if (r->details)
    out[n++] = nv("grpc-status-details-bin", r->details);
  return n;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud) {
  gt__stream_t *s = src->ptr;
  size_t n = s->resp.len - s->resp_off;
  if (n > length)
    n = length;
  gt__resp_copy(&s->resp, s->resp_off, buf, n);
  s->resp_off += n;
  if (s->resp_off == s->resp.len) {
    nghttp2_nv tr[3];
    char code[12];
    size_t nt = status_nv(&s->resp, tr, code);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    /* Trailers end the stream; if they cannot be queued, end it with this DATA. */
    if (nghttp2_submit_trailer(ng, id, tr, nt) == 0)
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  }
  return (ssize_t)n;
}

void gt__stream_respond(gt__stream_t *s, gt__resp_t *resp) {
  nghttp2_nv h[6];
  char code[12];
  size_t n = 0;
  int rv;
  if (s->state == GT__ST_DONE || s->conn->closing) {
    gt__resp_clear(resp);
    return;
  }
  s->state = GT__ST_DONE;
  s->len = 0; /* the body buffer stays, for the stream's next use */
  s->resp = *resp;
  memset(resp, 0, sizeof *resp);
  h[n++] = NV_STATIC(":status", "200");
  h[n++] = NV_STATIC("content-type", "application/grpc");
  if (s->resp.data != NULL) {
    nghttp2_data_provider prd;
    prd.source.ptr = s;
    prd.read_callback = read_body;
    /* No grpc-accept-encoding: grpc-go's server sends none in responses (only
     * :status, content-type, grpc-encoding), the SDKs compress by their own settings,
     * and the field cost ~550 instructions a response in nghttp2 (callgrind). */
    if (s->resp.gzip)
      h[n++] = NV_STATIC("grpc-encoding", "gzip");
    rv = nghttp2_submit_response(s->conn->ng, s->id, h, n, &prd);
  } else {
    n += status_nv(&s->resp, h + n, code);
    rv = nghttp2_submit_response(s->conn->ng, s->id, h, n, NULL);
  }
  if (rv != 0)
    gt_log_debug("GW-H2-SUBMIT", "gateway: stream %d: %s", s->id, nghttp2_strerror(rv));
  s->conn->dirty = 1;
}

static void respond_status(gt__stream_t *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void respond_status(gt__stream_t *s, int status, const char *fmt, ...) {
  char msg[256];
  gt__resp_t r;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gt__resp_build(&r, status, msg, NULL, 0, NULL, 0, 0);
  gt__stream_respond(s, &r);
}

/* A plain HTTP error (not gRPC): the request is not a gRPC call at all. */
static void respond_http(gt__stream_t *s, const char *code) {
  nghttp2_nv h[2] = {nv(":status", code), NV_STATIC("content-type", "text/plain")};
  s->state = GT__ST_DONE;
  s->len = 0;
  nghttp2_submit_response(s->conn->ng, s->id, h, 2, NULL);
  s->conn->dirty = 1;
}

/* ---- requests ---- */

/* A header value recorded by on_header (offset + 1, 0 absent), or NULL. */
static const char *hval(const gt__stream_t *s, uint32_t at) {
  return at ? s->hdrs.buf + at - 1 : NULL;
}

static void headers_done(gt__stream_t *s) {
  const char *ct = hval(s, s->h_ctype);
  if (!s->is_post) {
    respond_http(s, "405");
    return;
  }
  if (ct == NULL || strncmp(ct, "application/grpc", 16) != 0 ||
      (ct[16] != '\0' && ct[16] != '+' && ct[16] != ';')) {
    respond_http(s, "415");
    return;
  }
}

static uint32_t prefix_len(const gt__stream_t *s) {
  const uint8_t *p = s->prefix;
  return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
}

/* The prefix is complete: refuse an oversized message before buffering it. */
static void prefix_done(gt__stream_t *s) {
  size_t max = s->conn->gw->max_recv;
  uint32_t len = prefix_len(s);
  if (len > max)
    respond_status(s, GT_GRPC_RESOURCE_EXHAUSTED,
                   "grpc: received message larger than max (%u vs. %zu)", len, max);
}

static void body_append(gt__stream_t *s, const uint8_t *d, size_t n) {
  while (n > 0 && s->state == GT__ST_RECV) {
    if (s->len < 5) {
      size_t take = 5 - s->len < n ? 5 - s->len : n;
      memcpy(s->prefix + s->len, d, take);
      s->len += take;
      d += take;
      n -= take;
      if (s->len == 5)
        prefix_done(s);
      continue;
    }
    size_t want = prefix_len(s), have = s->len - 5;
    if (have + n > want) {
      respond_status(s, GT_GRPC_INTERNAL,
                     "grpc: request carries more than one message (prefix %zu bytes)",
                     want);
      return;
    }
    if (have + n > s->cap) { /* grow by doubling, never past the declared length */
      size_t ncap = s->cap ? s->cap * 2 : 64 * 1024;
      while (ncap < have + n)
        ncap *= 2;
      if (ncap > want)
        ncap = want;
      uint8_t *nb = realloc(s->body, ncap);
      if (nb == NULL) {
        respond_status(s, GT_GRPC_RESOURCE_EXHAUSTED, "grpc: server out of memory");
        return;
      }
      s->body = nb;
      s->cap = ncap;
    }
    memcpy(s->body + have, d, n);
    s->len += n;
    n = 0;
  }
}

/* Inflates the message in place if flagged. 0, or answers the stream and returns -1. */
static int decode_body(gt__stream_t *s) {
  const char *enc = hval(s, s->h_enc);
  size_t max = s->conn->gw->max_recv, out_len;
  uint8_t *out;
  if (s->prefix[0] == 0)
    return 0;
  if (s->prefix[0] != 1) {
    respond_status(s, GT_GRPC_INTERNAL, "grpc: invalid compressed flag %u",
                   s->prefix[0]);
    return -1;
  }
  if (enc == NULL || strcmp(enc, "identity") == 0) {
    respond_status(s, GT_GRPC_INTERNAL,
                   "grpc: compressed flag set with identity or empty encoding");
    return -1;
  }
  if (strcmp(enc, "gzip") != 0) {
    respond_status(s, GT_GRPC_UNIMPLEMENTED,
                   "grpc: Decompressor is not installed for grpc-encoding \"%s\"", enc);
    return -1;
  }
  int rv = gt__gzip_inflate_with(&s->conn->gw->zinflate, s->body, s->len - 5, max, &out,
                                 &out_len);
  if (rv == GT_ETOOBIG) {
    respond_status(s, GT_GRPC_RESOURCE_EXHAUSTED,
                   "grpc: received message after decompression larger than max (%zu)",
                   max);
    return -1;
  }
  if (rv != 0) {
    respond_status(s, GT_GRPC_INTERNAL,
                   "grpc: failed to decompress the received message: %s",
                   gt_strerror(rv));
    return -1;
  }
  free(s->body);
  s->body = out;
  s->cap = out_len;
  s->len = 5 + out_len;
  return 0;
}

static void request_done(gt__stream_t *s) {
  gt_gateway_t *gw = s->conn->gw;
  uint64_t deadline = 0, ms;
  if (s->state != GT__ST_RECV)
    return;
  if (s->len < 5 || s->len != 5 + (size_t)prefix_len(s)) {
    respond_status(s, GT_GRPC_INTERNAL,
                   "grpc: malformed message frame (%zu bytes received)", s->len);
    return;
  }
  if (decode_body(s) != 0)
    return;
  if (s->path_len == sizeof HEALTH_CHECK - 1 &&
      memcmp(s->path, HEALTH_CHECK, sizeof HEALTH_CHECK - 1) == 0) {
    static const uint8_t serving[] = {0x08, 0x01}; /* HealthCheckResponse{SERVING} */
    gt__resp_t r;
    gt__resp_build(&r, GT_GRPC_OK, NULL, serving, sizeof serving, NULL, 0, 0);
    gt__stream_respond(s, &r);
    return;
  }
  if (gw->stopping) {
    respond_status(s, GT_GRPC_UNAVAILABLE, "server is shutting down");
    return;
  }
  const char *t = hval(s, s->h_timeout);
  if (t != NULL && gt__grpc_timeout_parse(t, &ms) == 0)
    deadline = gt__gw_now_ms() + ms;
  gt__gw_dispatch(gw, s, deadline);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
  gt__conn_t *c = ud;
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  gt__stream_t *s = stream_get(c->gw);
  if (s == NULL)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets just this stream */
  s->conn = c;
  s->id = f->hd.stream_id;
  s->next = c->streams;
  if (c->streams)
    c->streams->prev = s;
  c->streams = s;
  c->cur = s;
  nghttp2_session_set_stream_user_data(ng, s->id, s);
  return 0;
}

/* Copies :path into the stream's (recycled) buffer. 0 or a callback failure. */
static int path_set(gt__stream_t *s, const uint8_t *value, size_t vlen) {
  if (vlen + 1 > s->path_cap) {
    char *np = realloc(s->path, vlen + 1);
    if (np == NULL)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->path = np;
    s->path_cap = vlen + 1;
  }
  memcpy(s->path, value, vlen);
  s->path[vlen] = '\0';
  s->path_len = vlen;
  s->have_path = 1;
  return 0;
}

/* Remembers where the headers the gateway reads are (the first of each). HTTP/2 names
 * are lower case (RFC 9113 8.2.1); nghttp2 resets a stream that sends an upper-case
 * one. The length picks the candidate, so most names cost one compare. */
static void note_header(gt__stream_t *s, const uint8_t *name, size_t nlen, uint32_t at) {
  uint32_t *slot;
  switch (nlen) {
  case 12:
    if (memcmp(name, "content-type", 12) == 0)
      slot = &s->h_ctype;
    else if (memcmp(name, "grpc-timeout", 12) == 0)
      slot = &s->h_timeout;
    else
      return;
    break;
  case 13:
    if (memcmp(name, "grpc-encoding", 13) != 0)
      return;
    slot = &s->h_enc;
    break;
  case 20:
    if (memcmp(name, "grpc-accept-encoding", 20) != 0)
      return;
    slot = &s->h_accept;
    break;
  default:
    return;
  }
  if (*slot == 0)
    *slot = at;
}

/* A request's pseudo-header. nghttp2 has already refused unknown pseudo-headers, and
 * the only request ones of these lengths are :path (5) and :method/:scheme (7). */
static int on_pseudo(gt__stream_t *s, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen) {
  if (nlen == 5 && memcmp(name, ":path", 5) == 0)
    return path_set(s, value, vlen);
  if (nlen == 7 && memcmp(name, ":method", 7) == 0)
    s->is_post = vlen == 4 && memcmp(value, "POST", 4) == 0;
  return 0;
}

/* nghttp2's HTTP checks are on (new_session), so a name or value reaching here holds no
 * NUL (RFC 9113 8.2.1: nghttp2 resets the stream), and the "name\0value\0" layout of
 * the header blob is safe without a scan of our own (it was 2 memchr per field). */
static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
                     void *ud) {
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST ||
      nlen == 0)
    return 0;
  gt__stream_t *s = stream_of(ud, f->hd.stream_id);
  if (s == NULL)
    return 0;
  if (name[0] == ':')
    return on_pseudo(s, name, nlen, value, vlen);
  size_t at = s->hdrs.len + nlen + 1 + 1; /* where the value lands, + 1 */
  /* Past GT__GW_MAX_HDR_BYTES further headers are dropped, not fatal. */
  int rv = gt__hdrs_add(&s->hdrs, name, nlen, value, vlen);
  if (rv == GT_ENOMEM)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (rv == 0)
    note_header(s, name, nlen, (uint32_t)at);
  return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud) {
  gt__stream_t *s;
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
    return 0;
  s = stream_of(ud, f->hd.stream_id);
  if (s == NULL)
    return 0;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST &&
      !s->have_path)
    respond_http(s, "400"); /* nghttp2 checks :path, this is belt and braces */
  else if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
    headers_done(s);
  if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
    request_done(s);
  return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud) {
  gt__stream_t *s = stream_of(ud, id);
  if (s != NULL)
    body_append(s, data, len);
  return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud) {
  gt__stream_t *s = stream_of(ud, id);
  if (s != NULL)
    stream_free(s);
  return 0;
}

static int new_session(gt__conn_t *c) {
  nghttp2_session_callbacks *cb;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, GT__GW_MAX_STREAMS},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GT__GW_WINDOW},
  };
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return GT_ENOMEM;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_option *opt;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    return GT_ENOMEM;
  }
  /* We send no priorities: closed streams need not linger for the priority tree. */
  nghttp2_option_set_no_closed_streams(opt, 1);
  /* nghttp2's HTTP-messaging checks (RFC 9113 section 8: header characters, pseudo-header
   * order, :path syntax, content-length) stay on although they are ~40% of its receive
   * cost per request: a server facing the network rejects malformed requests as the
   * protocol says, before our own checks (POST, :path, content type, one gRPC message,
   * no NUL in a header) see them. */
  /* nghttp2 allocates through the gateway's pool (loop thread only, like nghttp2). */
  nghttp2_mem mem = gt__pool_nghttp2_mem(&c->gw->pool);
  int rv = nghttp2_session_server_new3(&c->ng, cb, c, opt, &mem);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0)
    return GT_ENOMEM;
  if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 2) != 0 ||
      nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0,
                                            GT__GW_WINDOW) != 0)
    return GT_ENOMEM;
  return 0;
}

/* ---- connection I/O ---- */

static void on_conn_closed(uv_handle_t *h) {
  gt__conn_t *c = h->data;
  gt_gateway_t *gw = c->gw;
  while (c->streams != NULL)
    stream_free(c->streams);
  nghttp2_session_del(c->ng); /* runs no stream callbacks: streams went above */
  if (c->prev)
    c->prev->next = c->next;
  else if (gw->conns == c)
    gw->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  free(c);
  gt__gw_conn_gone(gw);
}

void gt__conn_close(gt__conn_t *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  gt__conn_t *c = h->data;
  *buf = uv_buf_init(c->gw->rbuf, sizeof c->gw->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  gt__conn_t *c = st->data;
  if (nread < 0) {
    if (nread != UV_EOF)
      gt_log_debug("GW-CONN-READ", "gateway: read: %s", uv_strerror((int)nread));
    gt__conn_close(c);
    return;
  }
  if (nread == 0 || c->closing || c->shut)
    return; /* after our FIN we only wait for the peer's */
  ssize_t rv = nghttp2_session_mem_recv(c->ng, (const uint8_t *)buf->base,
                                        (size_t)nread);
  if (rv < 0) {
    gt_log_warn("GW-H2-PROTO", "gateway: closing connection: %s",
                nghttp2_strerror((int)rv));
    gt__conn_close(c);
    return;
  }
  gt__conn_flush(c);
}

/* Keeps a standard-size write batch for the next flush, or frees it. */
static void wreq_release(gt_gateway_t *gw, wreq_t *w) {
  if (w->cap != GT__GW_WRITE_BATCH || gw->nspare_wreqs >= GT__GW_SPARE_WREQ) {
    free(w);
    return;
  }
  w->spare = gw->spare_wreqs;
  gw->spare_wreqs = w;
  gw->nspare_wreqs++;
}

static void on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  gt__conn_t *c = w->conn;
  c->wpending -= w->len;
  wreq_release(c->gw, w);
  if (status < 0) {
    gt__conn_close(c);
    return;
  }
  if (!c->closing)
    gt__conn_flush(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  gt__conn_t *c = req->handle->data;
  if (status < 0)
    gt__conn_close(c); /* else: wait for the peer's EOF (or the grace timer) */
}

/* Collects up to a batch of frames. OUT: *out (NULL when none). 0, or a negative error. */
static int collect(gt__conn_t *c, wreq_t **out) {
  wreq_t *w = NULL;
  *out = NULL;
  for (;;) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->ng, &data);
    if (n < 0) {
      free(w);
      return (int)n;
    }
    if (n == 0)
      break;
    if (w == NULL && c->gw->spare_wreqs != NULL) { /* a kept batch: no allocation */
      w = c->gw->spare_wreqs;
      c->gw->spare_wreqs = w->spare;
      c->gw->nspare_wreqs--;
      w->len = 0;
    }
    size_t have = w ? w->len : 0, cap = w ? w->cap : 0;
    if (have + (size_t)n > cap) {
      size_t ncap = have + (size_t)n > GT__GW_WRITE_BATCH ? have + (size_t)n
                                                         : GT__GW_WRITE_BATCH;
      wreq_t *nw = realloc(w, sizeof *nw + ncap);
      if (nw == NULL) {
        free(w);
        return NGHTTP2_ERR_NOMEM;
      }
      w = nw;
      w->len = have;
      w->cap = ncap;
    }
    memcpy(w->data + w->len, data, (size_t)n);
    w->len += (size_t)n;
    if (w->len >= GT__GW_WRITE_BATCH)
      break;
  }
  *out = w;
  return 0;
}

void gt__conn_flush(gt__conn_t *c) {
  if (c->closing || c->shut)
    return;
  c->dirty = 0;
  while (c->wpending < GT__GW_WRITE_HIGH) {
    wreq_t *w;
    int rv = collect(c, &w);
    if (rv != 0) {
      gt_log_warn("GW-H2-SEND", "gateway: closing connection: %s", nghttp2_strerror(rv));
      gt__conn_close(c);
      return;
    }
    if (w == NULL)
      break;
    w->conn = c;
    size_t done = 0;
    if (c->wpending == 0) {
      /* Nothing queued: write straight away. A uv_write that completes at once still
       * costs an epoll_ctl on the next loop turn (libuv stops watching for POLLOUT when
       * its queue drains), one per flush; uv_try_write costs only the write. */
      uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
      rv = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
      if (rv < 0 && rv != UV_EAGAIN) {
        wreq_release(c->gw, w);
        gt__conn_close(c);
        return;
      }
      done = rv > 0 ? (size_t)rv : 0;
      if (done == w->len) {
        wreq_release(c->gw, w);
        continue;
      }
    }
    /* the rest waits for the socket: uv_write keeps it queued in order */
    uv_buf_t b = uv_buf_init((char *)w->data + done, (unsigned)(w->len - done));
    if ((rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write)) != 0) {
      free(w);
      gt__conn_close(c);
      return;
    }
    w->len -= done; /* on_write subtracts what was handed to uv_write */
    c->wpending += w->len;
  }
  if (c->wpending >= GT__GW_WRITE_HIGH && !c->paused) {
    uv_read_stop((uv_stream_t *)&c->tcp); /* the peer is not reading: stop reading it */
    c->paused = 1;
  } else if (c->wpending < GT__GW_WRITE_HIGH && c->paused) {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->paused = 0;
  }
  if (c->wpending != 0)
    return;
  if (c->draining) {
    c->shut = 1;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
      gt__conn_close(c);
  } else if (!nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng)) {
    gt__conn_close(c); /* the session is over (GOAWAY both ways, or a fatal error) */
  }
}

void gt__conn_flush_dirty(gt_gateway_t *gw) {
  for (gt__conn_t *c = gw->conns; c != NULL; c = c->next)
    if (c->dirty)
      gt__conn_flush(c);
}

void gt__conn_drain(gt__conn_t *c) {
  if (c->closing)
    return;
  c->draining = 1;
  for (gt__stream_t *s = c->streams; s != NULL; s = s->next)
    if (s->state != GT__ST_DONE)
      respond_status(s, GT_GRPC_UNAVAILABLE, "server is shutting down");
  nghttp2_submit_goaway(c->ng, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(c->ng), NGHTTP2_NO_ERROR,
                        NULL, 0);
  gt__conn_flush(c);
}

void gt__conn_accept(gt_gateway_t *gw) {
  gt__conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    gt_log_error("GW-NOMEM", "gateway: out of memory accepting a connection");
    return;
  }
  c->gw = gw;
  uv_tcp_init(&gw->loop, &c->tcp);
  c->tcp.data = c;
  c->next = gw->conns;
  if (gw->conns)
    gw->conns->prev = c;
  gw->conns = c;
  int rv = uv_accept((uv_stream_t *)&gw->listener, (uv_stream_t *)&c->tcp);
  if (rv == 0 && new_session(c) != 0)
    rv = UV_ENOMEM;
  if (rv == 0)
    rv = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (rv != 0) {
    gt_log_warn("GW-ACCEPT", "gateway: cannot set up a connection: %s", uv_strerror(rv));
    gt__conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  gt__conn_flush(c);
}
