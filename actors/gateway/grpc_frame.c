/*
 * grpc_frame.c: the pure parts of gRPC over HTTP/2: message framing, gzip, grpc-timeout,
 * grpc-message percent-encoding, base64 for -bin headers, the request-header blob.
 *
 * DESIGN
 *   Wire frame of one gRPC message (both directions):
 *     byte 0      compressed flag: 0 identity, 1 compressed with the grpc-encoding
 *     bytes 1..4  message length, unsigned 32-bit big-endian
 *     bytes 5..   the message
 *   gzip uses zlib with windowBits 15+16 (gzip wrapper). Inflation stops as soon as the
 *   output passes the limit, so a small gzip bomb costs at most max+1 bytes of memory.
 *   A response is compressed only when the client accepts gzip, the message is at least
 *   GT__GW_GZIP_MIN bytes and gzip actually makes it smaller.
 *
 * INVARIANTS
 *   - gt__resp_build never fails to leave a sendable response: on ENOMEM it degrades to
 *     INTERNAL with no body and no message.
 *
 * THREADS
 *   Any: no shared state. gt__resp_build runs on the replier's thread, so compression
 *   work stays off the gateway loop.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "actors/gateway/gateway_int.h"
#include "runtime/err.h"

/* ---- grpc-timeout ---- */

int gt__grpc_timeout_parse(const char *text, uint64_t *ms) {
  uint64_t v = 0;
  size_t n = 0;
  if (text == NULL)
    return GT_EINVAL;
  while (text[n] >= '0' && text[n] <= '9') {
    if (n == 8) /* the spec allows at most 8 digits */
      return GT_EINVAL;
    v = v * 10 + (uint64_t)(text[n] - '0');
    n++;
  }
  if (n == 0 || text[n] == '\0' || text[n + 1] != '\0')
    return GT_EINVAL;
  switch (text[n]) {
  case 'H': *ms = v * 3600000u; break;
  case 'M': *ms = v * 60000u; break;
  case 'S': *ms = v * 1000u; break;
  case 'm': *ms = v; break;
  case 'u': *ms = (v + 999u) / 1000u; break;
  case 'n': *ms = (v + 999999u) / 1000000u; break;
  default: return GT_EINVAL;
  }
  return 0;
}

/* ---- grpc-message and -bin encodings ---- */

char *gt__grpc_pct_encode(const char *text) {
  static const char hex[] = "0123456789ABCDEF";
  size_t n = strlen(text);
  char *out = malloc(n * 3 + 1), *p = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c < 0x20 || c > 0x7E || c == '%') {
      *p++ = '%';
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
    } else {
      *p++ = (char)c;
    }
  }
  *p = '\0';
  return out;
}

char *gt__base64_encode(const uint8_t *d, size_t len) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc((len + 2) / 3 * 4 + 1), *p = out;
  size_t i = 0;
  if (out == NULL)
    return NULL;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    *p++ = tab[v >> 18];
    *p++ = tab[(v >> 12) & 63];
    *p++ = tab[(v >> 6) & 63];
    *p++ = tab[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)d[i] << 16;
    *p++ = tab[v >> 18];
    *p++ = tab[(v >> 12) & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
    *p++ = tab[v >> 18];
    *p++ = tab[(v >> 12) & 63];
    *p++ = tab[(v >> 6) & 63];
  }
  *p = '\0';
  return out;
}

/* ---- gzip ---- */

/* Inflates into a fresh buffer with an initialized stream (not ended here). */
static int inflate_into(z_stream *zs, const uint8_t *in, size_t len, size_t max,
                        uint8_t **out, size_t *out_len) {
  size_t cap = len * 4 + 64, have = 0;
  uint8_t *buf;
  int rv, err = 0;
  if (cap > max + 1)
    cap = max + 1;
  buf = malloc(cap ? cap : 1);
  if (buf == NULL)
    return GT_ENOMEM;
  zs->next_in = (Bytef *)(uintptr_t)in;
  zs->avail_in = (uInt)len;
  for (;;) {
    if (have == cap) {
      if (cap > max) { /* max + 1 bytes out: over the limit */
        err = GT_ETOOBIG;
        break;
      }
      size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
      uint8_t *nb = realloc(buf, ncap);
      if (nb == NULL) {
        err = GT_ENOMEM;
        break;
      }
      buf = nb;
      cap = ncap;
    }
    zs->next_out = buf + have;
    zs->avail_out = (uInt)(cap - have);
    rv = inflate(zs, Z_NO_FLUSH);
    have = cap - zs->avail_out;
    if (rv == Z_STREAM_END)
      break;
    if (rv == Z_OK)
      continue;
    if (rv == Z_BUF_ERROR && zs->avail_out == 0)
      continue; /* needs more room */
    err = rv == Z_MEM_ERROR ? GT_ENOMEM : GT_ECORRUPT; /* bad data or truncated */
    break;
  }
  if (err == 0 && have > max)
    err = GT_ETOOBIG;
  if (err != 0) {
    free(buf);
    return err;
  }
  *out = buf;
  *out_len = have;
  return 0;
}

int gt__gzip_inflate(const uint8_t *in, size_t len, size_t max, uint8_t **out,
                     size_t *out_len) {
  void *zs = NULL;
  int rv = gt__gzip_inflate_with(&zs, in, len, max, out, out_len);
  gt__gzip_end(&zs);
  return rv;
}

int gt__gzip_inflate_with(void **zsp, const uint8_t *in, size_t len, size_t max,
                          uint8_t **out, size_t *out_len) {
  z_stream *zs = *zsp;
  if (zs == NULL) {
    zs = calloc(1, sizeof *zs);
    if (zs == NULL)
      return GT_ENOMEM;
    if (inflateInit2(zs, 15 + 16) != Z_OK) {
      free(zs);
      return GT_ENOMEM;
    }
    *zsp = zs;
  } else if (inflateReset(zs) != Z_OK) { /* keeps the window allocated */
    return GT_ENOMEM;
  }
  return inflate_into(zs, in, len, max, out, out_len);
}

void gt__gzip_end(void **zsp) {
  z_stream *zs = *zsp;
  if (zs == NULL)
    return;
  inflateEnd(zs);
  free(zs);
  *zsp = NULL;
}

/* Writes the 5-byte prefix. */
static void put_prefix(uint8_t *p, int compressed, size_t len) {
  p[0] = compressed ? 1 : 0;
  p[1] = (uint8_t)(len >> 24);
  p[2] = (uint8_t)(len >> 16);
  p[3] = (uint8_t)(len >> 8);
  p[4] = (uint8_t)len;
}

/* Gzips msg behind a prefix. 0, GT_ENOMEM, GT_EINVAL (no gain: caller sends identity). */
static int frame_gzip(gt__resp_t *r, const uint8_t *msg, size_t len) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK)
    return GT_ENOMEM;
  size_t bound = deflateBound(&zs, (uLong)len);
  uint8_t *buf = malloc(5 + bound);
  if (buf == NULL) {
    deflateEnd(&zs);
    return GT_ENOMEM;
  }
  zs.next_in = (Bytef *)(uintptr_t)msg;
  zs.avail_in = (uInt)len;
  zs.next_out = buf + 5;
  zs.avail_out = (uInt)bound;
  int rv = deflate(&zs, Z_FINISH);
  size_t out = bound - zs.avail_out;
  deflateEnd(&zs);
  if (rv != Z_STREAM_END || out >= len) {
    free(buf);
    return rv == Z_STREAM_END ? GT_EINVAL : GT_ENOMEM;
  }
  put_prefix(buf, 1, out);
  r->data = buf;
  r->len = 5 + out;
  r->gzip = 1;
  return 0;
}

int gt__grpc_frame(gt__resp_t *r, const uint8_t *msg, size_t len, int want_gzip) {
  if (want_gzip && len >= GT__GW_GZIP_MIN && frame_gzip(r, msg, len) == 0)
    return 0;
  r->data = malloc(5 + len);
  if (r->data == NULL)
    return GT_ENOMEM;
  put_prefix(r->data, 0, len);
  if (len)
    memcpy(r->data + 5, msg, len);
  r->len = 5 + len;
  r->gzip = 0;
  return 0;
}

int gt__grpc_frame_owned(gt__resp_t *r, uint8_t *msg, size_t len, int want_gzip) {
  if (msg == NULL || (want_gzip && len >= GT__GW_GZIP_MIN)) {
    int rv = gt__grpc_frame(r, msg, len, want_gzip);
    free(msg);
    return rv;
  }
  put_prefix(r->prefix, 0, len);
  r->data = msg;
  r->len = 5 + len;
  r->gzip = 0;
  r->split = 1;
  return 0;
}

void gt__resp_copy(const gt__resp_t *r, size_t off, uint8_t *out, size_t n) {
  if (!r->split) {
    memcpy(out, r->data + off, n);
    return;
  }
  if (off < 5) {
    size_t k = 5 - off < n ? 5 - off : n;
    memcpy(out, r->prefix + off, k);
    out += k;
    off += k;
    n -= k;
  }
  if (n > 0)
    memcpy(out, r->data + (off - 5), n);
}

/* ---- responses ---- */

void gt__resp_clear(gt__resp_t *r) {
  free(r->message);
  free(r->details);
  free(r->data);
  memset(r, 0, sizeof *r);
}

/* Status, message and details (the part of a response that is not the body). */
static int resp_head(gt__resp_t *r, int status, const char *message,
                     const uint8_t *details, size_t details_len) {
  memset(r, 0, sizeof *r);
  r->status = status;
  if (message != NULL && message[0] != '\0' &&
      (r->message = gt__grpc_pct_encode(message)) == NULL)
    return GT_ENOMEM;
  if (details != NULL && details_len > 0 &&
      (r->details = gt__base64_encode(details, details_len)) == NULL)
    return GT_ENOMEM;
  return 0;
}

static int resp_nomem(gt__resp_t *r) {
  gt__resp_clear(r);
  r->status = GT_GRPC_INTERNAL;
  return GT_ENOMEM;
}

int gt__resp_build(gt__resp_t *r, int status, const char *message, const uint8_t *body,
                   size_t len, const uint8_t *details, size_t details_len, int want_gzip) {
  if (resp_head(r, status, message, details, details_len) != 0 ||
      (status == GT_GRPC_OK && gt__grpc_frame(r, body, len, want_gzip) != 0))
    return resp_nomem(r);
  return 0;
}

int gt__resp_build_owned(gt__resp_t *r, int status, const char *message, uint8_t *body,
                         size_t len, const uint8_t *details, size_t details_len,
                         int want_gzip) {
  if (resp_head(r, status, message, details, details_len) != 0) {
    free(body);
    return resp_nomem(r);
  }
  if (status != GT_GRPC_OK) {
    free(body); /* only an OK reply carries a body */
    return 0;
  }
  if (gt__grpc_frame_owned(r, body, len, want_gzip) != 0)
    return resp_nomem(r);
  return 0;
}

/* ---- request header blob ---- */

int gt__hdrs_grow(gt__hdrs_t *h, size_t need) {
  size_t ncap = h->cap ? h->cap * 2 : 512;
  while (ncap < need)
    ncap *= 2;
  char *nb = realloc(h->buf, ncap);
  if (nb == NULL)
    return GT_ENOMEM;
  h->buf = nb;
  h->cap = ncap;
  return 0;
}

const char *gt__hdrs_get(const gt__hdrs_t *h, const char *name) {
  size_t off = 0;
  while (off < h->len) {
    const char *n = h->buf + off;
    const char *v = n + strlen(n) + 1;
    if (strcasecmp(n, name) == 0)
      return v;
    off = (size_t)(v - h->buf) + strlen(v) + 1;
  }
  return NULL;
}

void gt__hdrs_free(gt__hdrs_t *h) {
  free(h->buf);
  memset(h, 0, sizeof *h);
}
