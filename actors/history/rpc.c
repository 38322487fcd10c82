/*
 * rpc.c: the request message shared by the roles (gt_rpc_t), its replies, matching tasks,
 * and task tokens.
 *
 * DESIGN
 *   Task tokens are msgpack arrays: [version=1, kind, ns_id, workflow_id, run_id,
 *   scheduled_event_id, started_event_id, attempt], coded by hand (see "task tokens").
 *   They are opaque to clients; a token that does not decode is INVALID_ARGUMENT at the
 *   frontend.
 *   A request the frontend decoded into an arena (rpc->arena) is released with the arena,
 *   not walked by protobuf_c_message_free_unpacked; replies built here are handed to the
 *   gateway without a copy (gt_gateway_reply_owned).
 *
 * THREADS: any.
 */
#include "actors/history/history.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"

gt_task_t *gt_task_new(gt_task_kind_t kind, const char *ns_id, const char *workflow_id,
                       const char *run_id, int64_t scheduled_event_id, int32_t attempt) {
  size_t wl = strlen(workflow_id);
  gt_task_t *t = malloc(sizeof(*t) + wl + 1);
  if (!t)
    return NULL;
  memset(t, 0, sizeof(*t));
  t->kind = kind;
  gt_copy_str(t->ns_id, sizeof(t->ns_id), ns_id);
  gt_copy_str(t->run_id, sizeof(t->run_id), run_id);
  t->scheduled_event_id = scheduled_event_id;
  t->attempt = attempt;
  memcpy(t->workflow_id, workflow_id, wl + 1);
  return t;
}

void gt_task_msg_dtor(gt_msg_t *m) {
  free(((gt_task_msg_t *)m)->task);
  free(m);
}

static void rpc_dtor(gt_msg_t *m) { gt_rpc_free((gt_rpc_t *)m); }

gt_rpc_t *gt_rpc_new(gt_server_t *srv, gt_rpc_kind_t kind, gt_gateway_call_t *call,
                     ProtobufCMessage *req) {
  gt_rpc_t *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  r->hdr.type = GT_MSG_RPC;
  r->hdr.dtor = rpc_dtor;
  r->srv = srv;
  r->kind = kind;
  r->call = call;
  r->req = req;
  return r;
}

/* An arena request goes with its arena: no walk over the message, one free. */
static void free_req(gt_rpc_t *r) {
  if (r->req && r->req != gt_pb_arena_root(r->arena))
    protobuf_c_message_free_unpacked(r->req, NULL);
  gt_pb_arena_free(r->arena);
  r->req = NULL;
  r->arena = NULL;
}

void gt_rpc_set_req(gt_rpc_t *r, ProtobufCMessage *req) {
  free_req(r);
  r->req = req;
}

void gt_rpc_free(gt_rpc_t *r) {
  if (!r)
    return;
  if (r->call) /* never leave a call unanswered */
    gt_gateway_reply(r->call, GT_GRPC_UNAVAILABLE, "request dropped", NULL, 0, NULL, 0);
  free_req(r);
  if (r->queue)
    gt_actor_release(r->queue);
  free(r->task);
  free(r->workflow_id);
  free(r);
}

void gt_rpc_reply_bytes(gt_rpc_t *r, const uint8_t *body, size_t len) {
  gt_gateway_reply(r->call, GT_GRPC_OK, NULL, body, len, NULL, 0);
  r->call = NULL;
  gt_rpc_free(r);
}

void gt_rpc_reply_owned(gt_rpc_t *r, uint8_t *body, size_t len) {
  gt_gateway_reply_owned(r->call, GT_GRPC_OK, NULL, body, len, NULL, 0);
  r->call = NULL;
  gt_rpc_free(r);
}

void gt_rpc_reply_msg(gt_rpc_t *r, const ProtobufCMessage *resp) {
  /* Packed straight into a buffer of the exact size, which the gateway then sends as is
   * (gt_buf_pack would start at 1 KiB and double). */
  size_t n = protobuf_c_message_get_packed_size(resp);
  uint8_t *p = malloc(n ? n : 1);
  if (!p) {
    gt_rpc_reply_error(r, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t len = protobuf_c_message_pack(resp, p);
  gt_rpc_reply_owned(r, p, len);
}

static void reply_error_v(gt_rpc_t *r, int status, const ProtobufCMessage *detail,
                          const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  gt_buf_t det;
  gt_buf_init(&det);
  if (detail)
    gt_pb_rpc_status(&det, status, msg, detail);
  gt_gateway_reply(r->call, status, msg, NULL, 0, detail && !det.oom ? det.p : NULL,
                   det.len);
  gt_buf_fini(&det);
  r->call = NULL;
  gt_rpc_free(r);
}

void gt_rpc_reply_error(gt_rpc_t *r, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  reply_error_v(r, status, NULL, fmt, ap);
  va_end(ap);
}

void gt_rpc_reply_error_detail(gt_rpc_t *r, int status, const ProtobufCMessage *detail,
                               const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  reply_error_v(r, status, detail, fmt, ap);
  va_end(ap);
}

/* ---- task tokens ----
 * Written and read by hand, byte for byte what msgpack-c's packer writes and what it
 * reads back (the format is on clients' disks and in flight: it must not change), without
 * its sbuffer (8 KiB for ~100 bytes) or the unpacker's malloc'd zone.
 *   token  = fixarray 8 (0x98), then in order:
 *     version   int, 1                     kind               int (gt_task_kind_t)
 *     ns_id     str                        workflow_id        str
 *     run_id    str                        scheduled_event_id int
 *     started_event_id int                 attempt            int
 *   A workflow task handed out before the events it shows were durable (speculative, see
 *   wf_tasks.c record_wft_started) has a ninth element, fixarray 9 (0x99):
 *     epoch     int, > 0: the workflow actor's activation that handed it out
 *   int: the shortest msgpack form of the value (positive/negative fixint, uint8..64,
 *   int8..64); str: fixstr, str8 or str16 (never longer: ids fit 1023 bytes). */

#define TOKEN_VERSION 1

/* Bytes msgpack takes for v (msgpack-c's choice of the shortest form). */
static size_t int_size(int64_t v) {
  if (v >= -32 && v < 128)
    return 1;
  if (v >= 0)
    return v < 256 ? 2 : v < 65536 ? 3 : v < ((int64_t)1 << 32) ? 5 : 9;
  return v >= -128 ? 2 : v >= -32768 ? 3 : v >= INT32_MIN ? 5 : 9;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return p + n;
}

static uint8_t *put_int(uint8_t *p, int64_t v) {
  size_t n = int_size(v);
  if (n == 1) {
    *p++ = (uint8_t)v; /* positive fixint, or negative fixint 0xe0..0xff */
    return p;
  }
  static const uint8_t utag[] = {0, 0, 0xcc, 0xcd, 0, 0xce, 0, 0, 0, 0xcf};
  static const uint8_t stag[] = {0, 0, 0xd0, 0xd1, 0, 0xd2, 0, 0, 0, 0xd3};
  *p++ = v >= 0 ? utag[n] : stag[n];
  return put_be(p, (uint64_t)v, n - 1);
}

static uint8_t *put_str(uint8_t *p, const char *s, size_t n) {
  if (n < 32) {
    *p++ = (uint8_t)(0xa0 | n);
  } else if (n < 256) {
    *p++ = 0xd9;
    *p++ = (uint8_t)n;
  } else {
    *p++ = 0xda;
    p = put_be(p, n, 2);
  }
  memcpy(p, s, n);
  return p + n;
}

_Static_assert(GT_TASK_TOKEN_MAX >= 1 + 6 * 9 + 3 * 3 + sizeof(((gt_task_token_t *)0)->ns_id) - 1 +
                                        sizeof(((gt_task_token_t *)0)->workflow_id) - 1 +
                                        sizeof(((gt_task_token_t *)0)->run_id) - 1,
               "GT_TASK_TOKEN_MAX holds the longest token of gt_task_token_put");

size_t gt_task_token_put(uint8_t *out, int kind, const char *ns_id, const char *workflow_id,
                         const char *run_id, int64_t scheduled_event_id,
                         int64_t started_event_id, int32_t attempt, int64_t epoch) {
  const char *strs[3] = {ns_id, workflow_id, run_id};
  /* cut as gt_copy_str into gt_task_token_t's arrays would cut them (each < 64 KiB: a
   * str16 at most) */
  size_t sl[3] = {strnlen(ns_id, sizeof(((gt_task_token_t *)0)->ns_id) - 1),
                  strnlen(workflow_id, sizeof(((gt_task_token_t *)0)->workflow_id) - 1),
                  strnlen(run_id, sizeof(((gt_task_token_t *)0)->run_id) - 1)};
  uint8_t *p = out;
  *p++ = epoch > 0 ? 0x99 : 0x98;
  p = put_int(p, TOKEN_VERSION);
  p = put_int(p, kind);
  for (int i = 0; i < 3; i++)
    p = put_str(p, strs[i], sl[i]);
  p = put_int(p, scheduled_event_id);
  p = put_int(p, started_event_id);
  p = put_int(p, attempt);
  if (epoch > 0)
    p = put_int(p, epoch);
  return (size_t)(p - out);
}

uint8_t *gt_task_token_encode(const gt_task_token_t *t, size_t *len) {
  uint8_t tmp[GT_TASK_TOKEN_MAX];
  size_t n = gt_task_token_put(tmp, t->kind, t->ns_id, t->workflow_id, t->run_id,
                               t->scheduled_event_id, t->started_event_id, t->attempt,
                               t->epoch);
  uint8_t *buf = malloc(n);
  if (!buf)
    return NULL;
  memcpy(buf, tmp, n);
  *len = n;
  return buf; /* the caller frees */
}

static uint64_t get_be(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* One element at p[*i] (in bounds: token_shape_ok ran). Reads an int into *v, or a
 * string into dst (cap bytes with its NUL) when dst is set. 0 or GT_EINVAL (wrong
 * type, a string too long for dst). */
static int get_elem(const uint8_t *p, size_t *i, int64_t *v, char *dst, size_t cap) {
  uint8_t b = p[(*i)++];
  size_t sn;
  if ((b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda) {
    sn = (b & 0xe0) == 0xa0 ? (size_t)(b & 0x1f) : (size_t)get_be(p + *i, b == 0xd9 ? 1 : 2);
    *i += b == 0xd9 ? 1 : b == 0xda ? 2 : 0;
    if (!dst || sn >= cap)
      return GT_EINVAL;
    memcpy(dst, p + *i, sn);
    dst[sn] = 0;
    *i += sn;
    return 0;
  }
  if (dst)
    return GT_EINVAL;
  if (b <= 0x7f || b >= 0xe0) {
    *v = b <= 0x7f ? (int64_t)b : (int64_t)(int8_t)b; /* 0xe0..0xff: -32..-1 */
    return 0;
  }
  size_t n = (size_t)1 << ((b & 0x03)); /* 0xcc..0xcf, 0xd0..0xd3: 1, 2, 4, 8 bytes */
  uint64_t u = get_be(p + *i, n);
  *i += n;
  if (b >= 0xd0 && n < 8) /* sign-extend the shorter signed forms */
    u = (uint64_t)(((int64_t)(u << (64 - 8 * n))) >> (64 - 8 * n));
  *v = (int64_t)u; /* uint64 above INT64_MAX wraps, as msgpack-c's u64 cast did */
  return 0;
}

/* The bytes come from clients: check the shape before reading it. A token
 * is a fixarray of 8 or 9 (0x98, 0x99) whose elements are ints or strings, never
 * containers (a forged array32 header would make the unpacker reserve gigabytes). */
static int token_shape_ok(const uint8_t *p, size_t len) {
  if (!p || len == 0 || len > 4096 || (p[0] != 0x98 && p[0] != 0x99))
    return 0;
  size_t i = 1;
  for (int e = 0; e < (p[0] & 0x0f); e++) {
    if (i >= len)
      return 0;
    uint8_t b = p[i];
    size_t skip;
    if (b <= 0x7f || b >= 0xe0)
      skip = 1; /* fixint */
    else if ((b & 0xe0) == 0xa0)
      skip = 1 + (b & 0x1f); /* fixstr */
    else if (b == 0xcc || b == 0xd0)
      skip = 2;
    else if (b == 0xcd || b == 0xd1)
      skip = 3;
    else if (b == 0xce || b == 0xd2)
      skip = 5;
    else if (b == 0xcf || b == 0xd3)
      skip = 9;
    else if (b == 0xd9 && i + 1 < len)
      skip = 2 + (size_t)p[i + 1];
    else if (b == 0xda && i + 2 < len)
      skip = 3 + ((size_t)p[i + 1] << 8 | p[i + 2]);
    else
      return 0; /* containers, str32, floats, ext: never in a token */
    i += skip;
  }
  return i == len;
}

int gt_task_token_decode(gt_task_token_t *t, const uint8_t *p, size_t len) {
  memset(t, 0, sizeof(*t));
  if (!token_shape_ok(p, len))
    return GT_EINVAL;
  size_t i = 1;
  int64_t ver, kind, sched, started, attempt;
  if (get_elem(p, &i, &ver, NULL, 0) || ver != TOKEN_VERSION ||
      get_elem(p, &i, &kind, NULL, 0) ||
      get_elem(p, &i, NULL, t->ns_id, sizeof(t->ns_id)) ||
      get_elem(p, &i, NULL, t->workflow_id, sizeof(t->workflow_id)) ||
      get_elem(p, &i, NULL, t->run_id, sizeof(t->run_id)) ||
      get_elem(p, &i, &sched, NULL, 0) || get_elem(p, &i, &started, NULL, 0) ||
      get_elem(p, &i, &attempt, NULL, 0)) {
    memset(t, 0, sizeof(*t));
    return GT_EINVAL;
  }
  int64_t epoch = 0;
  if (p[0] == 0x99 && (get_elem(p, &i, &epoch, NULL, 0) || epoch <= 0)) {
    memset(t, 0, sizeof(*t));
    return GT_EINVAL;
  }
  t->epoch = epoch;
  t->kind = (int)kind;
  t->scheduled_event_id = sched;
  t->started_event_id = started;
  t->attempt = (int32_t)attempt;
  return 0;
}
