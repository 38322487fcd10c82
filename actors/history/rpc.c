/*
 * rpc.c: the request message shared by the roles (gt_rpc_t), its replies, matching tasks,
 * and task tokens.
 *
 * DESIGN
 *   Task tokens are msgpack arrays: [version=1, kind, ns_id, workflow_id, run_id,
 *   scheduled_event_id, started_event_id, attempt]. They are opaque to clients; a token that
 *   does not decode is INVALID_ARGUMENT at the frontend.
 *
 * THREADS: any.
 */
#include "actors/history/history.h"

#include <msgpack.h>
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
  t->enqueued_ms = gt_now_ms();
  memcpy(t->workflow_id, workflow_id, wl + 1);
  return t;
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

void gt_rpc_free(gt_rpc_t *r) {
  if (!r)
    return;
  if (r->call) /* never leave a call unanswered */
    gt_gateway_reply(r->call, GT_GRPC_UNAVAILABLE, "request dropped", NULL, 0, NULL, 0);
  if (r->req)
    protobuf_c_message_free_unpacked(r->req, NULL);
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

void gt_rpc_reply_msg(gt_rpc_t *r, const ProtobufCMessage *resp) {
  gt_buf_t b;
  gt_buf_init(&b);
  gt_buf_pack(&b, resp);
  if (b.oom) {
    gt_buf_fini(&b);
    gt_rpc_reply_error(r, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  gt_rpc_reply_bytes(r, b.p, b.len);
  gt_buf_fini(&b);
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

/* ---- task tokens ---- */

#define TOKEN_VERSION 1

uint8_t *gt_task_token_encode(const gt_task_token_t *t, size_t *len) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 8);
  msgpack_pack_int(&pk, TOKEN_VERSION);
  msgpack_pack_int(&pk, t->kind);
  const char *strs[3] = {t->ns_id, t->workflow_id, t->run_id};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(strs[i]);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, strs[i], n);
  }
  msgpack_pack_int64(&pk, t->scheduled_event_id);
  msgpack_pack_int64(&pk, t->started_event_id);
  msgpack_pack_int32(&pk, t->attempt);
  *len = sb.size;
  return (uint8_t *)sb.data; /* malloc'd by the sbuffer; the caller frees */
}

static int copy_str(const msgpack_object *o, char *dst, size_t cap) {
  if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
    return GT_EINVAL;
  memcpy(dst, o->via.str.ptr, o->via.str.size);
  dst[o->via.str.size] = 0;
  return 0;
}

static int get_int(const msgpack_object *o, int64_t *v) {
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    *v = (int64_t)o->via.u64;
  else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    *v = o->via.i64;
  else
    return GT_EINVAL;
  return 0;
}

/* The bytes come from clients: check the shape before msgpack allocates anything. A token
 * is a fixarray of 8 (0x98) whose elements are ints or strings, never containers (a forged
 * array32 header would make the unpacker reserve gigabytes). */
static int token_shape_ok(const uint8_t *p, size_t len) {
  if (!p || len == 0 || len > 4096 || p[0] != 0x98)
    return 0;
  size_t i = 1;
  for (int e = 0; e < 8; e++) {
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
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  int rc = GT_EINVAL;
  if (msgpack_unpack_next(&u, (const char *)p, len, NULL) != MSGPACK_UNPACK_SUCCESS)
    goto out;
  const msgpack_object *o = &u.data;
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 8)
    goto out;
  const msgpack_object *a = o->via.array.ptr;
  int64_t ver, kind, sched, started, attempt;
  if (get_int(&a[0], &ver) || ver != TOKEN_VERSION || get_int(&a[1], &kind) ||
      copy_str(&a[2], t->ns_id, sizeof(t->ns_id)) ||
      copy_str(&a[3], t->workflow_id, sizeof(t->workflow_id)) ||
      copy_str(&a[4], t->run_id, sizeof(t->run_id)) || get_int(&a[5], &sched) ||
      get_int(&a[6], &started) || get_int(&a[7], &attempt))
    goto out;
  t->kind = (int)kind;
  t->scheduled_event_id = sched;
  t->started_event_id = started;
  t->attempt = (int32_t)attempt;
  rc = 0;
out:
  msgpack_unpacked_destroy(&u);
  return rc;
}
