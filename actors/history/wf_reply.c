/*
 * wf_reply.c: the two hot poll replies, PollWorkflowTaskQueueResponse (its fields before
 * the history) and PollActivityTaskQueueResponse, encoded by hand.
 *
 * DESIGN
 *   A hello workflow answers two workflow-task polls and one activity poll. Built with
 *   protobuf-c these cost a scheduler thread ~4.6k instructions (workflow task: a walk
 *   over 19 field descriptors to size the message, another to write it, and again for each
 *   submessage) and ~23k (activity task: the ActivityTaskScheduled event, already encoded
 *   in the run's history, was unpacked into malloc'd structs, its fields repacked, then
 *   freed): together 17% of the thread's instructions (callgrind, 2000 file-store hellos).
 *   Here the few scalar fields are written directly, and the activity's fields come from
 *   the stored event as raw byte slices: a message's encoding is the concatenation of its
 *   fields, so a submessage slice copied under a new tag is the submessage. Stored events
 *   are written by protobuf-c (wf_encode.c), so each slice is already what protobuf-c
 *   would write for its unpacked form, and the result is byte for byte protobuf-c's.
 *   An event the fast path does not expect (a field twice, a wire type it does not know)
 *   is left to the protobuf-c path (wf_act_reply_pb), which is also the unit test's
 *   reference.
 *
 * INVARIANTS
 *   - wf_wft_reply_head(b, in) appends exactly what wf_wft_reply_head_pb(b, in) does.
 *   - wf_act_reply(b, in, ev) appends exactly what wf_act_reply_pb(b, in, ev) does, or
 *     returns GT_EINVAL having appended nothing (history_test checks both byte-exact).
 *   - Fields are written in field-number order with proto3 defaults omitted, as
 *     protobuf-c writes them.
 *
 * THREADS: any (pure functions of their arguments).
 */
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"

/* ---- writing ----
 * The callers reserve the reply's bound once (HEAD_BOUND plus the strings and copied
 * bytes), then every write goes straight into the buffer: through gt_buf_varint each
 * varint cost ~55 instructions (a reserve check, a memcpy call), ~5x the varint. */

/* Tags, varints and lengths of every field the replies write, strings and copied bytes
 * apart: 22 fields of at most 2 + 10 + 10 bytes. */
#define HEAD_BOUND 512

static void vi(gt_buf_t *b, uint64_t v) {
  uint8_t *p = b->p + b->len;
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  b->len = (size_t)(p - b->p);
}

static void put_len(gt_buf_t *b, uint32_t field, size_t n) {
  vi(b, ((uint64_t)field << 3) | 2);
  vi(b, n);
}

static void put_bytes(gt_buf_t *b, uint32_t field, const void *p, size_t n) {
  put_len(b, field, n);
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* A varint field unless v is 0 (proto3 default). int32 values come in sign-extended. */
static void put_varint_field(gt_buf_t *b, uint32_t field, uint64_t v) {
  if (v) {
    vi(b, (uint64_t)field << 3);
    vi(b, v);
  }
}

/* Bytes a string field takes (absent when empty). */
static size_t str_field_size(size_t n) { return n ? 1 + gt_pb_varint_size(n) + n : 0; }

/* A string field unless empty (protobuf-c's proto3 rule: NULL or ""). */
static void put_str_field(gt_buf_t *b, uint32_t field, const char *s, size_t n) {
  if (n)
    put_bytes(b, field, s, n);
}

static size_t slen(const char *s) { return s ? strlen(s) : 0; }

/* A message holding only string field 1 (WorkflowType, ActivityType, ...). */
static void put_name_msg(gt_buf_t *b, uint32_t field, const char *s) {
  size_t n = slen(s);
  put_len(b, field, str_field_size(n));
  put_str_field(b, 1, s, n);
}

/* WorkflowExecution{workflow_id = 1, run_id = 2}. */
static void put_wfexec(gt_buf_t *b, uint32_t field, const char *wid, const char *rid) {
  size_t wl = slen(wid), rl = slen(rid);
  put_len(b, field, str_field_size(wl) + str_field_size(rl));
  put_str_field(b, 1, wid, wl);
  put_str_field(b, 2, rid, rl);
}

/* Timestamp{seconds = 1, nanos = 2} of ns, normalized as gt_pb_ts does. */
static void put_ts(gt_buf_t *b, uint32_t field, int64_t ns) {
  pb_ts_t ts;
  gt_pb_ts(&ts, ns);
  uint64_t s = (uint64_t)ts.seconds, n = (uint64_t)(int64_t)ts.nanos;
  size_t len = (s ? 1 + gt_pb_varint_size(s) : 0) + (n ? 1 + gt_pb_varint_size(n) : 0);
  put_len(b, field, len);
  put_varint_field(b, 1, s);
  put_varint_field(b, 2, n);
}

/* ---- PollWorkflowTaskQueueResponse ---- */

void wf_wft_reply_head(gt_buf_t *b, const wf_wft_reply_t *in) {
  size_t ql = slen(in->task_queue);
  if (gt_buf_reserve(b, HEAD_BOUND + in->toklen + slen(in->workflow_id) + slen(in->run_id) +
                            slen(in->workflow_type) + ql) != 0)
    return; /* b->oom */
  if (in->toklen)
    put_bytes(b, 1, in->token, in->toklen);
  put_wfexec(b, 2, in->workflow_id, in->run_id);
  put_name_msg(b, 3, in->workflow_type);
  put_varint_field(b, 4, (uint64_t)in->previous_started_id);
  put_varint_field(b, 5, (uint64_t)in->started_id);
  put_varint_field(b, 6, (uint64_t)(int64_t)in->attempt);
  /* TaskQueue{name = 1, kind = 2 (NORMAL)} */
  put_len(b, 11, str_field_size(ql) + 2);
  put_str_field(b, 1, in->task_queue, ql);
  put_varint_field(b, 2, TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL);
  put_ts(b, 12, in->scheduled_ns);
  put_ts(b, 13, in->started_ns);
}

void wf_wft_reply_head_pb(gt_buf_t *b, const wf_wft_reply_t *in) {
  Temporal__Api__Workflowservice__V1__PollWorkflowTaskQueueResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_WORKFLOW_TASK_QUEUE_RESPONSE__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  pb_ts_t sched, started;
  r.task_token.data = (uint8_t *)in->token;
  r.task_token.len = in->toklen;
  ex.workflow_id = (char *)in->workflow_id;
  ex.run_id = (char *)in->run_id;
  r.workflow_execution = &ex;
  wt.name = (char *)in->workflow_type;
  r.workflow_type = &wt;
  r.previous_started_event_id = in->previous_started_id;
  r.started_event_id = in->started_id;
  r.attempt = in->attempt;
  tq.name = (char *)in->task_queue;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  r.workflow_execution_task_queue = &tq;
  gt_pb_ts(&sched, in->scheduled_ns);
  gt_pb_ts(&started, in->started_ns);
  r.scheduled_time = &sched;
  r.started_time = &started;
  gt_buf_pack(b, &r.base);
}

/* ---- reading an encoded message ---- */

typedef struct {
  const uint8_t *p;
  size_t len;
} slice_t;

/* A varint at p[*i] (< end). 0 or GT_EINVAL (truncated, longer than 10 bytes). */
static int get_varint(const uint8_t *p, size_t end, size_t *i, uint64_t *v) {
  uint64_t r = 0;
  for (unsigned shift = 0; shift < 70 && *i < end; shift += 7) {
    uint8_t c = p[(*i)++];
    r |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) {
      *v = r;
      return 0;
    }
  }
  return GT_EINVAL;
}

/* One field at p[*i]: its number, wire type, and its value (varint in *v, LEN in *s).
 * 0 or GT_EINVAL (truncated, or a wire type other than VARINT, I64, LEN, I32). */
static int next_field(const uint8_t *p, size_t end, size_t *i, uint32_t *field, int *wt,
                      uint64_t *v, slice_t *s) {
  uint64_t tag;
  if (get_varint(p, end, i, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
    return GT_EINVAL;
  *field = (uint32_t)(tag >> 3);
  *wt = (int)(tag & 7);
  switch (*wt) {
  case 0:
    return get_varint(p, end, i, v);
  case 1:
  case 5: {
    size_t n = *wt == 1 ? 8 : 4;
    if (end - *i < n)
      return GT_EINVAL;
    *i += n;
    return 0;
  }
  case 2:
    if (get_varint(p, end, i, v) || *v > end - *i)
      return GT_EINVAL;
    s->p = p + *i;
    s->len = (size_t)*v;
    *i += s->len;
    return 0;
  default:
    return GT_EINVAL;
  }
}

/* ---- PollActivityTaskQueueResponse ---- */

/* The ActivityTaskScheduledEventAttributes fields the reply copies, by attribute field
 * number, and the response field each goes to. */
enum { A_ID = 1, A_TYPE = 2, A_HEADER = 5, A_INPUT = 6, A_S2C = 7, A_ST2C = 9, A_HB = 10,
       A_RETRY = 12, A_PRIORITY = 14, A_MAX = 15 };

typedef struct {
  int64_t event_ns;   /* event_time, as gt_pb_ts_ns reads it */
  slice_t f[A_MAX];   /* raw fields of the attributes; p == NULL: absent */
} act_sched_raw_t;

/* Timestamp{seconds, nanos} bytes into ns. 0 or GT_EINVAL. */
static int parse_ts(slice_t s, int64_t *ns) {
  int64_t sec = 0;
  int32_t nanos = 0;
  size_t i = 0;
  while (i < s.len) {
    uint32_t f;
    int wt;
    uint64_t v = 0;
    slice_t x;
    if (next_field(s.p, s.len, &i, &f, &wt, &v, &x) || wt != 0)
      return GT_EINVAL;
    if (f == 1)
      sec = (int64_t)v;
    else if (f == 2)
      nanos = (int32_t)(uint32_t)v; /* protobuf-c's int32: the low 32 bits */
    else
      return GT_EINVAL;
  }
  *ns = sec * 1000000000 + nanos;
  return 0;
}

static int parse_attrs(slice_t s, act_sched_raw_t *out) {
  size_t i = 0;
  while (i < s.len) {
    uint32_t f;
    int wt;
    uint64_t v;
    slice_t x;
    if (next_field(s.p, s.len, &i, &f, &wt, &v, &x))
      return GT_EINVAL;
    int copied = f == A_ID || f == A_TYPE || f == A_HEADER || f == A_INPUT || f == A_S2C ||
                 f == A_ST2C || f == A_HB || f == A_RETRY || f == A_PRIORITY;
    if (!copied)
      continue;
    if (wt != 2 || out->f[f].p) /* a repeated singular field merges: leave it to protobuf-c */
      return GT_EINVAL;
    out->f[f] = x;
  }
  return 0;
}

/* A HistoryEvent's bytes: event_time and the ActivityTaskScheduled attributes. */
static int parse_event(const uint8_t *ev, size_t len, act_sched_raw_t *out) {
  memset(out, 0, sizeof(*out));
  const uint32_t attr_field = PB_ATTR(ACTIVITY_TASK_SCHEDULED_EVENT_ATTRIBUTES);
  slice_t ts = {0}, attrs = {0};
  size_t i = 0;
  while (i < len) {
    uint32_t f;
    int wt;
    uint64_t v;
    slice_t x;
    if (next_field(ev, len, &i, &f, &wt, &v, &x))
      return GT_EINVAL;
    if (f != 2 && f != attr_field)
      continue;
    slice_t *dst = f == 2 ? &ts : &attrs;
    if (wt != 2 || dst->p)
      return GT_EINVAL;
    *dst = x;
  }
  if (!attrs.p || (ts.p && parse_ts(ts, &out->event_ns)))
    return GT_EINVAL;
  return parse_attrs(attrs, out);
}

/* A copied field under a new tag; a Duration field absent gets an empty one (zero). */
static void put_slice(gt_buf_t *b, uint32_t field, slice_t s, int zero_if_absent) {
  if (s.p || zero_if_absent)
    put_bytes(b, field, s.p, s.len);
}

/* A copied string: absent and empty are both left out. */
static void put_slice_str(gt_buf_t *b, uint32_t field, slice_t s) {
  if (s.len)
    put_bytes(b, field, s.p, s.len);
}

int wf_act_reply(gt_buf_t *b, const wf_act_reply_t *in, const uint8_t *ev, size_t len) {
  act_sched_raw_t a;
  if (parse_event(ev, len, &a))
    return GT_EINVAL;
  size_t nl = slen(in->ns_name);
  size_t strs = nl + slen(in->workflow_type) + slen(in->workflow_id) + slen(in->run_id);
  /* one allocation: the copied slices are parts of the event */
  if (gt_buf_reserve(b, HEAD_BOUND + in->toklen + strs + len + in->heartbeat_len) != 0)
    return 0; /* b->oom: the caller answers out of memory */
  if (in->toklen)
    put_bytes(b, 1, in->token, in->toklen);
  put_str_field(b, 2, in->ns_name, nl);
  put_name_msg(b, 3, in->workflow_type);
  put_wfexec(b, 4, in->workflow_id, in->run_id);
  put_slice(b, 5, a.f[A_TYPE], 0);
  put_slice_str(b, 6, a.f[A_ID]);
  put_slice(b, 7, a.f[A_HEADER], 0);
  put_slice(b, 8, a.f[A_INPUT], 0);
  if (in->heartbeat) /* packed Payloads: a present message, even empty */
    put_bytes(b, 9, in->heartbeat, in->heartbeat_len);
  put_ts(b, 10, a.event_ns);
  put_ts(b, 11, in->scheduled_ns);
  put_ts(b, 12, in->started_ns);
  put_varint_field(b, 13, (uint64_t)(int64_t)in->attempt);
  /* the TS worker needs all three timeouts present (a zero Duration is fine) */
  put_slice(b, 14, a.f[A_S2C], 1);
  put_slice(b, 15, a.f[A_ST2C], 1);
  put_slice(b, 16, a.f[A_HB], 1);
  put_slice(b, 17, a.f[A_RETRY], 0);
  put_slice(b, 19, a.f[A_PRIORITY], 0);
  return 0;
}

int wf_act_reply_pb(gt_buf_t *b, const wf_act_reply_t *in, const uint8_t *ev, size_t len) {
  pb_event_t *sev = (pb_event_t *)protobuf_c_message_unpack(
      &temporal__api__history__v1__history_event__descriptor, NULL, len, ev);
  if (!sev || sev->attributes_case != PB_ATTR(ACTIVITY_TASK_SCHEDULED_EVENT_ATTRIBUTES)) {
    if (sev)
      protobuf_c_message_free_unpacked(&sev->base, NULL);
    return GT_EINVAL;
  }
  const Temporal__Api__History__V1__ActivityTaskScheduledEventAttributes *a =
      sev->activity_task_scheduled_event_attributes;
  Temporal__Api__Workflowservice__V1__PollActivityTaskQueueResponse r =
      TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_ACTIVITY_TASK_QUEUE_RESPONSE__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  pb_ts_t sched, cur, started;
  pb_dur_t zero;
  gt_pb_dur(&zero, 0);
  r.task_token.data = (uint8_t *)in->token;
  r.task_token.len = in->toklen;
  r.workflow_namespace = (char *)in->ns_name;
  wt.name = (char *)in->workflow_type;
  r.workflow_type = &wt;
  ex.workflow_id = (char *)in->workflow_id;
  ex.run_id = (char *)in->run_id;
  r.workflow_execution = &ex;
  r.activity_type = a->activity_type;
  r.activity_id = a->activity_id;
  r.header = a->header;
  r.input = a->input;
  gt_pb_ts(&sched, gt_pb_ts_ns(sev->event_time));
  gt_pb_ts(&cur, in->scheduled_ns);
  gt_pb_ts(&started, in->started_ns);
  r.scheduled_time = &sched;
  r.current_attempt_scheduled_time = &cur;
  r.started_time = &started;
  r.attempt = in->attempt;
  r.schedule_to_close_timeout = a->schedule_to_close_timeout ? a->schedule_to_close_timeout : &zero;
  r.start_to_close_timeout = a->start_to_close_timeout ? a->start_to_close_timeout : &zero;
  r.heartbeat_timeout = a->heartbeat_timeout ? a->heartbeat_timeout : &zero;
  r.retry_policy = a->retry_policy;
  r.priority = a->priority;
  if (in->heartbeat &&
      !(r.heartbeat_details = (pb_payloads_t *)protobuf_c_message_unpack(
            &temporal__api__common__v1__payloads__descriptor, NULL, in->heartbeat_len,
            in->heartbeat))) {
    protobuf_c_message_free_unpacked(&sev->base, NULL);
    return GT_EINVAL;
  }
  gt_buf_pack(b, &r.base);
  if (r.heartbeat_details)
    protobuf_c_message_free_unpacked(&r.heartbeat_details->base, NULL);
  protobuf_c_message_free_unpacked(&sev->base, NULL);
  return 0;
}

void wf_event_bytes(const wf_run_t *run, size_t i, const uint8_t **p, size_t *len) {
  const uint8_t *e = run->hist.p + run->ev_off[i];
  size_t end = (i + 1 < run->n_ev ? run->ev_off[i + 1] : run->hist.len) - run->ev_off[i];
  /* skip the History.events framing: tag 0x0a + varint length */
  size_t k = 1;
  while (k < end && (e[k] & 0x80))
    k++;
  k++;
  *p = e + k;
  *len = end - k;
}
