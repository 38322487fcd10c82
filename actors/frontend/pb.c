/*
 * pb.c: protobuf helpers (see pb.h): the growable buffer, wire-format appends, time
 * conversions, google.rpc.Status for error details, UUIDs, request arenas.
 *
 * DESIGN
 *   Request arena: one malloc holds the arena header and its first block, sized from the
 *   wire length (a decoded message takes a few times its wire size: structs, NULs,
 *   pointer arrays). protobuf-c's allocations bump through it, 16-byte aligned like
 *   malloc's; one that does not fit gets a fresh ARENA_MORE block (or a block of its own
 *   when it is large), so any request decodes, the common one with a single malloc.
 *   protobuf-c's frees (its scratch slabs, a failed unpack) are no-ops.
 *
 * THREADS: every function is reentrant; a gt_buf_t or an arena belongs to one thread at a
 * time.
 */
#include "actors/frontend/pb.h"

#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "runtime/err.h"

void gt_buf_init(gt_buf_t *b) { memset(b, 0, sizeof(*b)); }

void gt_buf_fini(gt_buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

int gt_buf_reserve(gt_buf_t *b, size_t n) {
  if (b->oom)
    return GT_ENOMEM;
  if (b->len + n <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 1024; /* a short workflow's whole history */
  while (cap < b->len + n)
    cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return GT_ENOMEM;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void gt_buf_put(gt_buf_t *b, const void *p, size_t n) {
  if (n == 0 || gt_buf_reserve(b, n) != 0)
    return;
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* ---- request arenas ---- */

#define ARENA_ALIGN 16u
#define ARENA_MORE 4096u  /* an extra block when the current one is full */
#define ARENA_BIG 1024u   /* an allocation this large gets a block of its own */

typedef struct arena_more {
  struct arena_more *next;
  max_align_t data[];
} arena_more_t;

struct gt_pb_arena {
  ProtobufCAllocator pa;  /* allocator_data = the arena */
  ProtobufCMessage *root;
  arena_more_t *more;     /* extra blocks, newest first */
  unsigned char *cur;     /* the bump pointer, `left` bytes before its block ends */
  size_t left;
  max_align_t first[];    /* the first block */
};

static void *arena_alloc(void *ud, size_t n) {
  gt_pb_arena_t *a = ud;
  if (n > SIZE_MAX / 2)
    return NULL;
  n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (n <= a->left) {
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
  }
  size_t cap = n >= ARENA_BIG ? n : ARENA_MORE;
  arena_more_t *m = malloc(sizeof *m + cap);
  if (m == NULL)
    return NULL;
  m->next = a->more;
  a->more = m;
  if (cap == ARENA_MORE) { /* small: bump on in the new block */
    a->cur = (unsigned char *)m->data + n;
    a->left = cap - n;
  }
  return m->data;
}

static void arena_nofree(void *ud, void *p) {
  (void)ud;
  (void)p;
}

ProtobufCMessage *gt_pb_unpack_arena(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                                     size_t len, gt_pb_arena_t **out) {
  *out = NULL;
  if (len > SIZE_MAX / 8)
    return NULL;
  /* The first block: the top message, then about 4x the wire bytes (measured on the SDK's
   * requests: strings gain a NUL, small submessages become 40..200-byte structs). */
  size_t first = d->sizeof_message + 256 + (len <= 16384 ? len * 4 : len + 49152);
  first = (first + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  gt_pb_arena_t *a = malloc(sizeof *a + first);
  if (a == NULL)
    return NULL;
  a->pa.alloc = arena_alloc;
  a->pa.free = arena_nofree;
  a->pa.allocator_data = a;
  a->more = NULL;
  a->cur = (unsigned char *)a->first;
  a->left = first;
  a->root = protobuf_c_message_unpack(d, &a->pa, len, p);
  if (a->root == NULL) {
    gt_pb_arena_free(a);
    return NULL;
  }
  *out = a;
  return a->root;
}

ProtobufCMessage *gt_pb_arena_root(const gt_pb_arena_t *a) { return a ? a->root : NULL; }

void gt_pb_arena_free(gt_pb_arena_t *a) {
  if (a == NULL)
    return;
  while (a->more != NULL) {
    arena_more_t *m = a->more;
    a->more = m->next;
    free(m);
  }
  free(a);
}

size_t gt_pb_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

void gt_buf_varint(gt_buf_t *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  gt_buf_put(b, tmp, n);
}

void gt_buf_field_len(gt_buf_t *b, uint32_t field, size_t n) {
  gt_buf_varint(b, ((uint64_t)field << 3) | 2);
  gt_buf_varint(b, n);
}

void gt_buf_field_bytes(gt_buf_t *b, uint32_t field, const void *p, size_t n) {
  gt_buf_field_len(b, field, n);
  gt_buf_put(b, p, n);
}

void gt_buf_field_varint(gt_buf_t *b, uint32_t field, uint64_t v) {
  gt_buf_varint(b, (uint64_t)field << 3);
  gt_buf_varint(b, v);
}

void gt_buf_pack(gt_buf_t *b, const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  if (gt_buf_reserve(b, n) != 0)
    return;
  b->len += protobuf_c_message_pack(msg, b->p + b->len);
}

void gt_buf_field_msg(gt_buf_t *b, uint32_t field, const ProtobufCMessage *msg) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  gt_buf_field_len(b, field, n);
  if (gt_buf_reserve(b, n) != 0)
    return;
  b->len += protobuf_c_message_pack(msg, b->p + b->len);
}

uint8_t *gt_buf_take(gt_buf_t *b, size_t *len) {
  if (b->oom) {
    gt_buf_fini(b);
    *len = 0;
    return NULL;
  }
  uint8_t *p = b->p;
  *len = b->len;
  if (!p) /* an empty message is valid: hand out a 1-byte allocation */
    p = malloc(1);
  memset(b, 0, sizeof(*b));
  return p;
}

void gt_pb_ts(pb_ts_t *ts, int64_t ns) {
  google__protobuf__timestamp__init(ts);
  int64_t sec = ns / 1000000000, nsec = ns % 1000000000;
  if (nsec < 0) { /* protobuf wants nanos in [0, 1e9) */
    nsec += 1000000000;
    sec--;
  }
  ts->seconds = sec;
  ts->nanos = (int32_t)nsec;
}

int64_t gt_pb_ts_ns(const pb_ts_t *ts) {
  if (!ts)
    return 0;
  return ts->seconds * 1000000000 + ts->nanos;
}

void gt_pb_dur(pb_dur_t *d, int64_t ms) {
  google__protobuf__duration__init(d);
  d->seconds = ms / 1000;
  d->nanos = (int32_t)((ms % 1000) * 1000000);
}

int64_t gt_pb_dur_ms(const pb_dur_t *d) {
  if (!d)
    return 0;
  /* the protobuf Duration range is +-10,000 years; beyond it is invalid input */
  if (d->seconds < 0 || d->nanos < 0 || d->seconds > 315576000000LL || d->nanos > 999999999)
    return -1;
  /* round up sub-millisecond remainders so a tiny timeout never becomes "none" */
  return d->seconds * 1000 + (d->nanos + 999999) / 1000000;
}

void gt_pb_rpc_status(gt_buf_t *out, int code, const char *message,
                      const ProtobufCMessage *detail) {
  /* google.rpc.Status: 1 int32 code, 2 string message, 3 repeated Any details.
   * google.protobuf.Any: 1 string type_url, 2 bytes value. */
  if (code)
    gt_buf_field_varint(out, 1, (uint64_t)code);
  if (message && *message)
    gt_buf_field_bytes(out, 2, message, strlen(message));
  if (detail) {
    char url[256];
    int ul = snprintf(url, sizeof(url), "type.googleapis.com/%s",
                      detail->descriptor->name);
    size_t vn = protobuf_c_message_get_packed_size(detail);
    size_t any_len = 1 + gt_pb_varint_size((uint64_t)ul) + (size_t)ul + 1 +
                     gt_pb_varint_size(vn) + vn;
    gt_buf_field_len(out, 3, any_len);
    gt_buf_field_bytes(out, 1, url, (size_t)ul);
    gt_buf_field_msg(out, 2, detail);
  }
}

/* Random bytes for ids come from a per-thread pool refilled by one getrandom() per 32 ids:
 * a hello workflow makes four ids (run, request and task ids), and a syscall each was 4 of
 * the server's ~20 syscalls per workflow. Ids need uniqueness, not secrecy; the pool is
 * the kernel's CSPRNG output all the same. */
#define UUID_POOL_BYTES 512
static _Thread_local uint8_t uuid_pool[UUID_POOL_BYTES];
static _Thread_local size_t uuid_pool_left;

static void uuid_random16(uint8_t r[16]) {
  if (uuid_pool_left < 16) {
    if (getrandom(uuid_pool, sizeof(uuid_pool), 0) != (ssize_t)sizeof(uuid_pool)) {
      /* getrandom does not fail once the kernel is seeded; fall back all the same */
      for (size_t i = 0; i < sizeof(uuid_pool); i++)
        uuid_pool[i] = (uint8_t)rand();
    }
    uuid_pool_left = sizeof(uuid_pool);
  }
  uuid_pool_left -= 16; /* the bytes below are never handed out again */
  memcpy(r, uuid_pool + uuid_pool_left, 16);
}

/* The two lowercase hex digits of each byte value. */
#define HEX_DIGIT(d) ((char)((d) < 10 ? '0' + (d) : 'a' + (d) - 10))
#define HEX_PAIR(b) {HEX_DIGIT((b) >> 4), HEX_DIGIT((b) & 15)}
#define HEX_PAIR4(b) HEX_PAIR(b), HEX_PAIR((b) + 1), HEX_PAIR((b) + 2), HEX_PAIR((b) + 3)
#define HEX_PAIR16(b) HEX_PAIR4(b), HEX_PAIR4((b) + 4), HEX_PAIR4((b) + 8), HEX_PAIR4((b) + 12)
#define HEX_PAIR64(b) \
  HEX_PAIR16(b), HEX_PAIR16((b) + 16), HEX_PAIR16((b) + 32), HEX_PAIR16((b) + 48)
static const char hex_pair[256][2] = {HEX_PAIR64(0), HEX_PAIR64(64), HEX_PAIR64(128),
                                      HEX_PAIR64(192)};

void gt_uuid4(char out[37]) {
  uint8_t r[16];
  uuid_random16(r);
  r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
  r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
  /* both digits of a byte from one table, at fixed places (a workflow makes four ids on
   * the scheduler threads; a digit at a time with a test for the dashes took ~300
   * instructions an id) */
  static const uint8_t at[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  for (int i = 0; i < 16; i++)
    memcpy(out + at[i], hex_pair[r[i]], 2);
  out[8] = out[13] = out[18] = out[23] = '-';
  out[36] = 0;
}

char *gt_strdup0(const char *s) { return strdup(s ? s : ""); }

void gt_copy_str(char *dst, size_t cap, const char *src) {
  size_t n = strnlen(src, cap - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}
