/*
 * pb.h: protobuf helpers shared by the Temporal roles.
 *
 * DESIGN
 *   protobuf-c generates very long names; the short aliases below are the ones our code uses.
 *   Most messages are packed with protobuf-c, but history is kept as pre-framed event bytes
 *   (each event stored as `0x0a <varint len> <HistoryEvent>`, i.e. one `History.events`
 *   field), so a History, or a response carrying one, is assembled by concatenation without
 *   unpacking any event: protobuf allows a message's fields in any order and concatenated
 *   encodings of a message merge. gt_buf_t is the growable byte buffer used for that.
 *
 * INVARIANTS
 *   A gt_buf_t owns its bytes; gt_buf_fini frees them. On allocation failure gt_buf_* set
 *   buf->oom and become no-ops, so callers check once at the end.
 */
#ifndef GT_PB_H
#define GT_PB_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "temporal/api/workflowservice/v1/service.pb-c.h"
#include "temporal/api/operatorservice/v1/service.pb-c.h"
#include "temporal/api/workflowservice/v1/request_response.pb-c.h"
#include "temporal/api/history/v1/message.pb-c.h"
#include "temporal/api/command/v1/message.pb-c.h"
#include "temporal/api/failure/v1/message.pb-c.h"
#include "temporal/api/errordetails/v1/message.pb-c.h"
#include "temporal/api/enums/v1/event_type.pb-c.h"
#include "temporal/api/enums/v1/workflow.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/duration.pb-c.h"

/* ---- short names ---- */
typedef Temporal__Api__History__V1__HistoryEvent pb_event_t;
typedef Temporal__Api__Common__V1__Payloads pb_payloads_t;
typedef Temporal__Api__Common__V1__WorkflowExecution pb_wfexec_t;
typedef Temporal__Api__Common__V1__WorkflowType pb_wftype_t;
typedef Temporal__Api__Common__V1__ActivityType pb_acttype_t;
typedef Temporal__Api__Taskqueue__V1__TaskQueue pb_taskqueue_t;
typedef Temporal__Api__Failure__V1__Failure pb_failure_t;
typedef Temporal__Api__Common__V1__RetryPolicy pb_retry_t;
typedef Google__Protobuf__Timestamp pb_ts_t;
typedef Google__Protobuf__Duration pb_dur_t;
typedef Temporal__Api__Command__V1__Command pb_command_t;

#define PB_EV(x) TEMPORAL__API__ENUMS__V1__EVENT_TYPE__EVENT_TYPE_##x
#define PB_ATTR(x) TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__ATTRIBUTES_##x
#define PB_CMD(x) TEMPORAL__API__ENUMS__V1__COMMAND_TYPE__COMMAND_TYPE_##x
#define PB_STATUS(x) \
  TEMPORAL__API__ENUMS__V1__WORKFLOW_EXECUTION_STATUS__WORKFLOW_EXECUTION_STATUS_##x

/* ---- growable buffer ---- */
typedef struct gt_buf {
  uint8_t *p;
  size_t len;
  size_t cap;
  int oom;
} gt_buf_t;

void gt_buf_init(gt_buf_t *b);
void gt_buf_fini(gt_buf_t *b);
/* Ensures room for n more bytes. 0 or GT_ENOMEM (and b->oom set). */
int gt_buf_reserve(gt_buf_t *b, size_t n);
void gt_buf_put(gt_buf_t *b, const void *p, size_t n);
void gt_buf_varint(gt_buf_t *b, uint64_t v);
/* Appends field `field` of wire type LEN holding n bytes p. */
void gt_buf_field_bytes(gt_buf_t *b, uint32_t field, const void *p, size_t n);
/* Appends a LEN field header for a payload of n bytes (the payload follows by hand). */
void gt_buf_field_len(gt_buf_t *b, uint32_t field, size_t n);
/* Appends a varint field. */
void gt_buf_field_varint(gt_buf_t *b, uint32_t field, uint64_t v);
/* Packs msg and appends it. */
void gt_buf_pack(gt_buf_t *b, const ProtobufCMessage *msg);
/* Packs msg as field `field` of wire type LEN. */
void gt_buf_field_msg(gt_buf_t *b, uint32_t field, const ProtobufCMessage *msg);
/* Takes the bytes out: returns them (caller frees) and resets b. NULL if b->oom. */
uint8_t *gt_buf_take(gt_buf_t *b, size_t *len);

/* ---- request arenas ----
 * A request is unpacked into one arena: protobuf-c's allocations bump a pointer through
 * one block sized from the wire length (more blocks only when a request needs them), its
 * frees are no-ops, and the whole message goes with one gt_pb_arena_free. Saves a malloc
 * per submessage, string and array on the gateway thread, and the free_unpacked walk on
 * the thread that replies. An arena belongs to one thread at a time (it moves with the
 * request); the message must never reach protobuf_c_message_free_unpacked. */
typedef struct gt_pb_arena gt_pb_arena_t;

/* Unpacks a message of type d from p/len into a new arena. OUT: *arena (NULL on failure).
 * Returns the message (inside the arena), or NULL when the bytes do not parse or memory
 * runs out. */
ProtobufCMessage *gt_pb_unpack_arena(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                                     size_t len, gt_pb_arena_t **arena);
/* The message gt_pb_unpack_arena put in the arena (NULL for NULL). */
ProtobufCMessage *gt_pb_arena_root(const gt_pb_arena_t *a);
/* Releases an arena and everything in it. NULL is a no-op. Any thread. */
void gt_pb_arena_free(gt_pb_arena_t *a);

/* Size of a varint. */
size_t gt_pb_varint_size(uint64_t v);

/* ---- time ---- */
/* Fills ts from nanoseconds since the epoch. */
void gt_pb_ts(pb_ts_t *ts, int64_t ns);
/* Nanoseconds of a Timestamp (NULL -> 0). */
int64_t gt_pb_ts_ns(const pb_ts_t *ts);
/* Fills d from milliseconds. */
void gt_pb_dur(pb_dur_t *d, int64_t ms);
/* Milliseconds of a Duration (NULL -> 0; negative -> -1). */
int64_t gt_pb_dur_ms(const pb_dur_t *d);

/* ---- errors ---- */
/* Encodes a google.rpc.Status {code, message, details: [Any{type_url, value}]} into out
 * (details may be NULL). Used for grpc-status-details-bin. */
void gt_pb_rpc_status(gt_buf_t *out, int code, const char *message,
                      const ProtobufCMessage *detail);

/* ---- ids ---- */
/* Writes a random RFC 4122 version-4 UUID (36 chars + NUL) into out[37]. */
void gt_uuid4(char out[37]);

/* strdup that maps NULL to "" (so protobuf-c string fields are never NULL). */
char *gt_strdup0(const char *s);

/* Copies a NUL-terminated string into a fixed array of cap > 0 bytes, truncating: what
 * snprintf(dst, cap, "%s", src) does, without the format machinery (hot paths). */
void gt_copy_str(char *dst, size_t cap, const char *src);

#endif
