/*
 * wf_encode.c: the fast path that serializes a HistoryEvent onto a run's history.
 *
 * DESIGN
 *   protobuf-c packs a message generically: it walks every field descriptor of the message
 *   twice (once to size it, once to write it). HistoryEvent has five header fields and a
 *   oneof of some sixty attribute messages, so every event appended cost two walks over
 *   ~65 descriptors before any real work: 40% of a scheduler thread's instructions in a
 *   hello workflow. Here the header fields are written by hand and only the one attribute
 *   message goes through protobuf-c. The bytes are a valid encoding of the same message
 *   (fields in number order, proto3 defaults omitted, as protobuf-c writes them); events
 *   using the rarer header fields (worker_may_ignore, user_metadata, links, principal,
 *   event group markers) take the generic path.
 *
 * INVARIANTS
 *   - wf_buf_field_event(b, f, ev) appends exactly what gt_buf_field_msg(b, f, &ev->base)
 *     would (checked by the history unit test on every event type the server writes).
 *
 * THREADS: any (pure function of its arguments).
 */
#include <string.h>

#include "actors/history/wf_int.h"

/* A varint into p (at least 10 bytes). Returns its length. */
static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* A varint field (wire type 0) unless v is the proto3 default 0. */
static size_t put_varint_field(uint8_t *p, uint32_t field, uint64_t v) {
  if (!v)
    return 0;
  size_t n = put_varint(p, (uint64_t)field << 3);
  return n + put_varint(p + n, v);
}

void wf_buf_field_event(gt_buf_t *b, uint32_t field, const pb_event_t *ev) {
  const ProtobufCMessage *attr = NULL;
  if (ev->attributes_case != 0 && !ev->worker_may_ignore && !ev->user_metadata &&
      !ev->n_links && !ev->principal && !ev->n_event_group_markers) {
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field(ev->base.descriptor, ev->attributes_case);
    if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE)
      attr = *(const ProtobufCMessage *const *)((const char *)ev + fd->offset);
  }
  if (!attr) {
    gt_buf_field_msg(b, field, &ev->base);
    return;
  }
  /* header fields 1..5: at most 5 varint fields and a Timestamp, well under 80 bytes */
  uint8_t hdr[80];
  size_t h = put_varint_field(hdr, 1, (uint64_t)ev->event_id);
  if (ev->event_time) {
    uint8_t ts[24];
    size_t t = put_varint_field(ts, 1, (uint64_t)ev->event_time->seconds);
    t += put_varint_field(ts + t, 2, (uint64_t)(int64_t)ev->event_time->nanos);
    hdr[h++] = (2 << 3) | 2;
    h += put_varint(hdr + h, t);
    memcpy(hdr + h, ts, t);
    h += t;
  }
  h += put_varint_field(hdr + h, 3, (uint64_t)(int64_t)ev->event_type);
  h += put_varint_field(hdr + h, 4, (uint64_t)ev->version);
  h += put_varint_field(hdr + h, 5, (uint64_t)ev->task_id);
  size_t alen = protobuf_c_message_get_packed_size(attr);
  uint64_t atag = ((uint64_t)ev->attributes_case << 3) | 2;
  size_t total = h + varint_len(atag) + varint_len(alen) + alen;
  /* one reserve, then direct writes (gt_buf_varint costs a reserve and a memcpy call per
   * varint: ~55 instructions, 5 per event) */
  if (gt_buf_reserve(b, 20 + total) != 0)
    return;
  uint8_t *p = b->p + b->len;
  p += put_varint(p, ((uint64_t)field << 3) | 2);
  p += put_varint(p, total);
  memcpy(p, hdr, h);
  p += h;
  p += put_varint(p, atag);
  p += put_varint(p, alen);
  p += protobuf_c_message_pack(attr, p);
  b->len = (size_t)(p - b->p);
}
