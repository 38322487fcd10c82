/*
 * frontend_test.c: the frontend role's helpers and registry: pb.c (buffer, wire format,
 * time conversions, google.rpc.Status, UUIDs), task tokens (history/rpc.c, used by the
 * frontend to route Respond* calls), namespaces.c against a real store, and the namespace
 * RPCs of frontend.c through the whole server.
 *
 * DESIGN
 *   Encodings are checked against hand-written wire bytes and by decoding them back with
 *   protobuf-c (google.rpc.Status, which has no generated type, with h2client.h's decoder).
 *   Namespace tests open an in-memory store (or a temp file to check reloads) and wait for
 *   the asynchronous register callback on a condition variable.
 *
 * THREADS
 *   The test thread; register callbacks run on a store thread; the server test drives the
 *   server over gRPC from the test thread (h2client.h).
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/frontend/namespaces.h"
#include "actors/frontend/pb.h"
#include "actors/frontend/server.h"
#include "actors/history/history.h"
#include "config/config.h"
#include "google/protobuf/any.pb-c.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "h2client.h"

#include <msgpack.h>

/* ---- gt_buf_* ---- */

static void assert_bytes(const gt_buf_t *b, const uint8_t *want, size_t n) {
  ck_assert_int_eq(b->oom, 0);
  ck_assert_uint_eq(b->len, n);
  ck_assert_int_eq(memcmp(b->p, want, n), 0);
}

START_TEST(test_buf_varint) {
  static const struct {
    uint64_t v;
    uint8_t bytes[10];
    size_t n;
  } cases[] = {
      {0, {0x00}, 1},
      {1, {0x01}, 1},
      {127, {0x7f}, 1},
      {128, {0x80, 0x01}, 2},
      {300, {0xac, 0x02}, 2},
      {16383, {0xff, 0x7f}, 2},
      {16384, {0x80, 0x80, 0x01}, 3},
      {UINT64_MAX, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    gt_buf_t b;
    gt_buf_init(&b);
    gt_buf_varint(&b, cases[i].v);
    assert_bytes(&b, cases[i].bytes, cases[i].n);
    ck_assert_uint_eq(gt_pb_varint_size(cases[i].v), cases[i].n);
    gt_buf_fini(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
  }
}
END_TEST

START_TEST(test_buf_fields) {
  gt_buf_t b;
  gt_buf_init(&b);
  gt_buf_field_varint(&b, 1, 150);
  static const uint8_t v150[] = {0x08, 0x96, 0x01};
  assert_bytes(&b, v150, sizeof v150);
  gt_buf_fini(&b);

  gt_buf_field_bytes(&b, 2, "testing", 7);
  static const uint8_t s2[] = {0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'};
  assert_bytes(&b, s2, sizeof s2);
  gt_buf_fini(&b);

  /* field 16 needs a two-byte key; an empty LEN field is key + 0 */
  gt_buf_field_bytes(&b, 16, "", 0);
  static const uint8_t f16[] = {0x82, 0x01, 0x00};
  assert_bytes(&b, f16, sizeof f16);
  gt_buf_fini(&b);

  /* field_len + hand-written payload == field_bytes */
  gt_buf_t a;
  gt_buf_init(&a);
  gt_buf_field_len(&a, 5, 3);
  gt_buf_put(&a, "xyz", 3);
  gt_buf_field_bytes(&b, 5, "xyz", 3);
  ck_assert_uint_eq(a.len, b.len);
  ck_assert_int_eq(memcmp(a.p, b.p, a.len), 0);
  gt_buf_fini(&a);
  gt_buf_fini(&b);

  /* what protobuf-c reads back: WorkflowExecution {1 workflow_id, 2 run_id} */
  gt_buf_field_bytes(&b, 1, "wf-1", 4);
  gt_buf_field_bytes(&b, 2, "run-9", 5);
  pb_wfexec_t *ex = temporal__api__common__v1__workflow_execution__unpack(NULL, b.len, b.p);
  ck_assert_ptr_nonnull(ex);
  ck_assert_str_eq(ex->workflow_id, "wf-1");
  ck_assert_str_eq(ex->run_id, "run-9");
  temporal__api__common__v1__workflow_execution__free_unpacked(ex, NULL);
  gt_buf_fini(&b);
}
END_TEST

/* History assembled by concatenation, as the workflow actor does (pb.h DESIGN). */
START_TEST(test_buf_pack_and_concat) {
  pb_event_t e1 = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  pb_event_t e2 = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  e1.event_id = 1;
  e1.event_type = PB_EV(WORKFLOW_EXECUTION_STARTED);
  e2.event_id = 2;
  e2.event_type = PB_EV(WORKFLOW_TASK_SCHEDULED);
  Temporal__Api__History__V1__History h = TEMPORAL__API__HISTORY__V1__HISTORY__INIT;
  pb_event_t *ev[] = {&e1};
  h.n_events = 1;
  h.events = ev;

  gt_buf_t b;
  gt_buf_init(&b);
  gt_buf_pack(&b, &h.base);                 /* History{events:[e1]} */
  ck_assert_uint_eq(b.len, protobuf_c_message_get_packed_size(&h.base));
  gt_buf_field_msg(&b, 1, &e2.base);        /* + events: e2 */
  Temporal__Api__History__V1__History *got =
      temporal__api__history__v1__history__unpack(NULL, b.len, b.p);
  ck_assert_ptr_nonnull(got);
  ck_assert_uint_eq(got->n_events, 2);
  ck_assert_int_eq(got->events[0]->event_id, 1);
  ck_assert_int_eq(got->events[0]->event_type, PB_EV(WORKFLOW_EXECUTION_STARTED));
  ck_assert_int_eq(got->events[1]->event_id, 2);
  ck_assert_int_eq(got->events[1]->event_type, PB_EV(WORKFLOW_TASK_SCHEDULED));
  temporal__api__history__v1__history__free_unpacked(got, NULL);

  /* an empty message packs to nothing and field_msg still writes its header */
  gt_buf_fini(&b);
  pb_event_t empty = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  gt_buf_pack(&b, &empty.base);
  ck_assert_uint_eq(b.len, 0);
  gt_buf_field_msg(&b, 1, &empty.base);
  static const uint8_t hdr[] = {0x0a, 0x00};
  assert_bytes(&b, hdr, sizeof hdr);
  gt_buf_fini(&b);
}
END_TEST

START_TEST(test_buf_take_and_growth) {
  gt_buf_t b;
  gt_buf_init(&b);
  size_t len = 99;
  uint8_t *p = gt_buf_take(&b, &len); /* empty: a valid, freeable pointer */
  ck_assert_ptr_nonnull(p);
  ck_assert_uint_eq(len, 0);
  free(p);

  gt_buf_put(&b, "abc", 0); /* no-op */
  ck_assert_uint_eq(b.len, 0);
  ck_assert_ptr_null(b.p);

  /* grow well past the first capacity, byte pattern intact */
  for (int i = 0; i < 100000; i++) {
    uint8_t v = (uint8_t)(i * 7);
    gt_buf_put(&b, &v, 1);
  }
  ck_assert_int_eq(b.oom, 0);
  ck_assert_uint_eq(b.len, 100000);
  ck_assert_uint_ge(b.cap, b.len);
  ck_assert_int_eq(gt_buf_reserve(&b, 1 << 20), 0);
  ck_assert_uint_ge(b.cap, b.len + (1 << 20));
  p = gt_buf_take(&b, &len);
  ck_assert_uint_eq(len, 100000);
  for (int i = 0; i < 100000; i++)
    ck_assert_uint_eq(p[i], (uint8_t)(i * 7));
  free(p);
  /* take resets the buffer */
  ck_assert_ptr_null(b.p);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_uint_eq(b.cap, 0);
  gt_buf_put(&b, "z", 1);
  ck_assert_uint_eq(b.len, 1);
  gt_buf_fini(&b);
}
END_TEST

/* ---- time ---- */

START_TEST(test_ts_roundtrip) {
  pb_ts_t ts;
  gt_pb_ts(&ts, 1500000007LL);
  ck_assert_int_eq(ts.seconds, 1);
  ck_assert_int_eq(ts.nanos, 500000007);
  ck_assert_int_eq(gt_pb_ts_ns(&ts), 1500000007LL);
  int64_t now = 1733000000123456789LL;
  gt_pb_ts(&ts, now);
  ck_assert_int_eq(ts.seconds, 1733000000LL);
  ck_assert_int_eq(ts.nanos, 123456789);
  ck_assert_int_eq(gt_pb_ts_ns(&ts), now);
  gt_pb_ts(&ts, 0);
  ck_assert_int_eq(ts.seconds, 0);
  ck_assert_int_eq(ts.nanos, 0);
  ck_assert_int_eq(gt_pb_ts_ns(NULL), 0);
  /* the packed message is a Timestamp protobuf-c reads back */
  gt_pb_ts(&ts, now);
  gt_buf_t b;
  gt_buf_init(&b);
  gt_buf_pack(&b, &ts.base);
  pb_ts_t *got = google__protobuf__timestamp__unpack(NULL, b.len, b.p);
  ck_assert_ptr_nonnull(got);
  ck_assert_int_eq(gt_pb_ts_ns(got), now);
  google__protobuf__timestamp__free_unpacked(got, NULL);
  gt_buf_fini(&b);
}
END_TEST

/* BUG: google.protobuf.Timestamp requires nanos in [0, 1e9) even before the epoch
 * (seconds -1, nanos 999999999 for -1 ns); gt_pb_ts gives nanos -1. Enable when fixed. */
START_TEST(test_ts_negative_normalized) {
  pb_ts_t ts;
  gt_pb_ts(&ts, -1);
  ck_assert_int_eq(ts.seconds, -1);
  ck_assert_int_eq(ts.nanos, 999999999);
  ck_assert_int_eq(gt_pb_ts_ns(&ts), -1);
  gt_pb_ts(&ts, -1500000000LL);
  ck_assert_int_eq(ts.seconds, -2);
  ck_assert_int_eq(ts.nanos, 500000000);
  ck_assert_int_eq(gt_pb_ts_ns(&ts), -1500000000LL);
}
END_TEST

START_TEST(test_dur) {
  pb_dur_t d;
  gt_pb_dur(&d, 1500);
  ck_assert_int_eq(d.seconds, 1);
  ck_assert_int_eq(d.nanos, 500000000);
  ck_assert_int_eq(gt_pb_dur_ms(&d), 1500);
  gt_pb_dur(&d, 0);
  ck_assert_int_eq(d.seconds, 0);
  ck_assert_int_eq(d.nanos, 0);
  ck_assert_int_eq(gt_pb_dur_ms(&d), 0);
  gt_pb_dur(&d, 86400000LL * 365);
  ck_assert_int_eq(gt_pb_dur_ms(&d), 86400000LL * 365);
  /* a negative duration keeps the sign on both parts (valid Duration) */
  gt_pb_dur(&d, -1500);
  ck_assert_int_eq(d.seconds, -1);
  ck_assert_int_eq(d.nanos, -500000000);
  ck_assert_int_eq(gt_pb_dur_ms(&d), -1);
  ck_assert_int_eq(gt_pb_dur_ms(NULL), 0);

  /* sub-millisecond remainders round up, so a tiny timeout never means "none" */
  google__protobuf__duration__init(&d);
  d.nanos = 1;
  ck_assert_int_eq(gt_pb_dur_ms(&d), 1);
  d.nanos = 999999;
  ck_assert_int_eq(gt_pb_dur_ms(&d), 1);
  d.nanos = 1000000;
  ck_assert_int_eq(gt_pb_dur_ms(&d), 1);
  d.nanos = 1000001;
  ck_assert_int_eq(gt_pb_dur_ms(&d), 2);
  d.seconds = 3;
  d.nanos = 0;
  ck_assert_int_eq(gt_pb_dur_ms(&d), 3000);
  /* any negative part is invalid: -1 */
  d.seconds = 0;
  d.nanos = -1;
  ck_assert_int_eq(gt_pb_dur_ms(&d), -1);
  d.seconds = -5;
  d.nanos = 0;
  ck_assert_int_eq(gt_pb_dur_ms(&d), -1);
}
END_TEST

/* BUG: gt_pb_dur_ms multiplies a client-supplied seconds by 1000 without a range check:
 * seconds = INT64_MAX is signed overflow (UBSan aborts the server with the sanitizer
 * build; a release build gets a garbage, possibly negative/small timeout). Durations beyond
 * protobuf's documented range (+-315,576,000,000 s) should be rejected (-1) or clamped.
 * Enable when fixed. */
START_TEST(test_dur_huge_seconds) {
  pb_dur_t d;
  google__protobuf__duration__init(&d);
  d.seconds = INT64_MAX;
  int64_t ms = gt_pb_dur_ms(&d);
  ck_assert(ms == -1 || ms >= 315576000000LL * 1000);
  d.seconds = 315576000000LL; /* the documented maximum is fine */
  ck_assert_int_eq(gt_pb_dur_ms(&d), 315576000000LL * 1000);
}
END_TEST

/* ---- google.rpc.Status ---- */

START_TEST(test_rpc_status) {
  Temporal__Api__Errordetails__V1__WorkflowExecutionAlreadyStartedFailure f =
      TEMPORAL__API__ERRORDETAILS__V1__WORKFLOW_EXECUTION_ALREADY_STARTED_FAILURE__INIT;
  f.start_request_id = "req-1";
  f.run_id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
  gt_buf_t b;
  gt_buf_init(&b);
  gt_pb_rpc_status(&b, GT_GRPC_ALREADY_EXISTS, "already started", &f.base);
  ck_assert_int_eq(b.oom, 0);

  h2c_rpc_status_t st;
  ck_assert_int_eq(h2c_rpc_status_decode(&st, b.p, b.len), 0);
  ck_assert_int_eq(st.code, GT_GRPC_ALREADY_EXISTS);
  ck_assert_uint_eq(st.message_len, strlen("already started"));
  ck_assert_int_eq(memcmp(st.message, "already started", st.message_len), 0);
  ck_assert_int_eq(st.n_details, 1);
  Google__Protobuf__Any *any =
      google__protobuf__any__unpack(NULL, st.detail_len[0], st.detail[0]);
  ck_assert_ptr_nonnull(any);
  ck_assert_str_eq(any->type_url, "type.googleapis.com/"
                                  "temporal.api.errordetails.v1."
                                  "WorkflowExecutionAlreadyStartedFailure");
  Temporal__Api__Errordetails__V1__WorkflowExecutionAlreadyStartedFailure *got =
      temporal__api__errordetails__v1__workflow_execution_already_started_failure__unpack(
          NULL, any->value.len, any->value.data);
  ck_assert_ptr_nonnull(got);
  ck_assert_str_eq(got->start_request_id, "req-1");
  ck_assert_str_eq(got->run_id, f.run_id);
  temporal__api__errordetails__v1__workflow_execution_already_started_failure__free_unpacked(
      got, NULL);
  google__protobuf__any__free_unpacked(any, NULL);
  gt_buf_fini(&b);

  /* no detail: code and message only */
  gt_pb_rpc_status(&b, GT_GRPC_NOT_FOUND, "gone", NULL);
  ck_assert_int_eq(h2c_rpc_status_decode(&st, b.p, b.len), 0);
  ck_assert_int_eq(st.code, GT_GRPC_NOT_FOUND);
  ck_assert_uint_eq(st.message_len, 4);
  ck_assert_int_eq(st.n_details, 0);
  gt_buf_fini(&b);

  /* OK with no message is the empty Status (proto3 defaults are not written) */
  gt_pb_rpc_status(&b, 0, "", NULL);
  ck_assert_uint_eq(b.len, 0);
  gt_pb_rpc_status(&b, 0, NULL, NULL);
  ck_assert_uint_eq(b.len, 0);

  /* an empty detail message: Any with an empty value still decodes */
  Temporal__Api__Errordetails__V1__NotFoundFailure nf =
      TEMPORAL__API__ERRORDETAILS__V1__NOT_FOUND_FAILURE__INIT;
  gt_pb_rpc_status(&b, GT_GRPC_NOT_FOUND, "x", &nf.base);
  ck_assert_int_eq(h2c_rpc_status_decode(&st, b.p, b.len), 0);
  ck_assert_int_eq(st.n_details, 1);
  any = google__protobuf__any__unpack(NULL, st.detail_len[0], st.detail[0]);
  ck_assert_ptr_nonnull(any);
  ck_assert_str_eq(any->type_url,
                   "type.googleapis.com/temporal.api.errordetails.v1.NotFoundFailure");
  ck_assert_uint_eq(any->value.len, 0);
  google__protobuf__any__free_unpacked(any, NULL);
  gt_buf_fini(&b);
}
END_TEST

/* ---- ids ---- */

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static int cmp_str37(const void *a, const void *b) { return strcmp(a, b); }

START_TEST(test_uuid4) {
  enum { N = 2000 };
  char(*ids)[37] = malloc(N * sizeof *ids);
  ck_assert_ptr_nonnull(ids);
  for (int i = 0; i < N; i++) {
    char *u = ids[i];
    gt_uuid4(u);
    ck_assert_uint_eq(strlen(u), 36);
    for (int k = 0; k < 36; k++) {
      if (k == 8 || k == 13 || k == 18 || k == 23)
        ck_assert_int_eq(u[k], '-');
      else
        ck_assert_msg(is_hex(u[k]), "non-hex char in %s", u);
    }
    ck_assert_int_eq(u[14], '4');                   /* version 4 */
    ck_assert_ptr_nonnull(strchr("89ab", u[19]));   /* RFC 4122 variant */
  }
  qsort(ids, N, sizeof *ids, cmp_str37);
  for (int i = 1; i < N; i++)
    ck_assert_str_ne(ids[i - 1], ids[i]);
  free(ids);

  char *s = gt_strdup0(NULL);
  ck_assert_str_eq(s, "");
  free(s);
  s = gt_strdup0("x");
  ck_assert_str_eq(s, "x");
  free(s);
}
END_TEST

/* ---- task tokens ---- */

static void fill_token(gt_task_token_t *t, size_t wid_len) {
  memset(t, 0, sizeof *t);
  snprintf(t->ns_id, sizeof t->ns_id, "%s", "0a6c1cbe-9a3b-4c61-8d5e-1d2f3e4a5b6c");
  memset(t->workflow_id, 'w', wid_len);
  t->workflow_id[wid_len] = 0;
  snprintf(t->run_id, sizeof t->run_id, "%s", "1b4e28ba-2fa1-41d2-883f-0016d3cca427");
  t->scheduled_event_id = 5;
  t->started_event_id = (int64_t)1 << 40;
  t->attempt = 7;
  t->kind = GT_TASK_ACTIVITY;
}

START_TEST(test_token_roundtrip) {
  gt_task_token_t t, got;
  size_t lens[] = {1, 31, 32, 255, 256, 1023};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    fill_token(&t, lens[i]);
    if (i % 2)
      t.kind = GT_TASK_WORKFLOW;
    size_t n = 0;
    uint8_t *p = gt_task_token_encode(&t, &n);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_gt(n, lens[i]);
    ck_assert_int_eq(gt_task_token_decode(&got, p, n), 0);
    ck_assert_str_eq(got.ns_id, t.ns_id);
    ck_assert_str_eq(got.workflow_id, t.workflow_id);
    ck_assert_str_eq(got.run_id, t.run_id);
    ck_assert_int_eq(got.scheduled_event_id, t.scheduled_event_id);
    ck_assert_int_eq(got.started_event_id, t.started_event_id);
    ck_assert_int_eq(got.attempt, t.attempt);
    ck_assert_int_eq(got.kind, t.kind);
    free(p);
  }
  /* negative and zero values survive too */
  fill_token(&t, 3);
  t.scheduled_event_id = -1;
  t.started_event_id = 0;
  t.attempt = -2;
  size_t n;
  uint8_t *p = gt_task_token_encode(&t, &n);
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), 0);
  ck_assert_int_eq(got.scheduled_event_id, -1);
  ck_assert_int_eq(got.started_event_id, 0);
  ck_assert_int_eq(got.attempt, -2);
  ck_assert_int_eq(got.epoch, 0);
  free(p);
  /* a speculative workflow task's: a ninth element, the activation's epoch */
  fill_token(&t, 3);
  t.epoch = ((int64_t)0x7fffffff << 32) | 7;
  p = gt_task_token_encode(&t, &n);
  ck_assert_uint_eq(p[0], 0x99);
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), 0);
  ck_assert_int_eq(got.epoch, t.epoch);
  ck_assert_int_eq(got.scheduled_event_id, t.scheduled_event_id);
  for (size_t k = 1; k < n; k++) /* every truncation is refused, the 8 fields one too */
    ck_assert_msg(gt_task_token_decode(&got, p, k) == GT_EINVAL, "prefix %zu accepted", k);
  free(p);
  t.epoch = 0;
  p = gt_task_token_encode(&t, &n);
  ck_assert_uint_eq(p[0], 0x98);
  p[0] = 0x99; /* announced and missing */
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), GT_EINVAL);
  free(p);
}
END_TEST

START_TEST(test_token_bad) {
  gt_task_token_t t, got;
  fill_token(&t, 40);
  size_t n;
  uint8_t *p = gt_task_token_encode(&t, &n);
  ck_assert_ptr_nonnull(p);

  ck_assert_int_eq(gt_task_token_decode(&got, NULL, 0), GT_EINVAL);
  ck_assert_int_eq(gt_task_token_decode(&got, p, 0), GT_EINVAL);
  /* every truncation is refused */
  for (size_t k = 1; k < n; k++)
    ck_assert_msg(gt_task_token_decode(&got, p, k) == GT_EINVAL, "prefix %zu accepted", k);

  /* wrong version: [fixarray 8][version 1] -> version 2 */
  ck_assert_uint_eq(p[0], 0x98);
  ck_assert_uint_eq(p[1], 0x01);
  p[1] = 0x02;
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), GT_EINVAL);
  p[1] = 0x01;
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), 0);
  /* wrong arity */
  p[0] = 0x97;
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), GT_EINVAL);
  p[0] = 0x98;
  /* a string where the kind (an int) belongs: fixstr "a" */
  uint8_t kind = p[2];
  p[2] = 0xa1;
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), GT_EINVAL);
  p[2] = kind;
  free(p);

  /* garbage: not msgpack arrays, random bytes */
  static const uint8_t junk1[] = {0xc1};                   /* never used */
  static const uint8_t junk2[] = {0x0a, 0x03, 'a', 'b', 'c'}; /* a protobuf field */
  static const uint8_t junk3[] = {0x90};                   /* empty array */
  ck_assert_int_eq(gt_task_token_decode(&got, junk1, sizeof junk1), GT_EINVAL);
  ck_assert_int_eq(gt_task_token_decode(&got, junk2, sizeof junk2), GT_EINVAL);
  ck_assert_int_eq(gt_task_token_decode(&got, junk3, sizeof junk3), GT_EINVAL);
  unsigned seed = 12345;
  uint8_t rnd[64];
  for (int i = 0; i < 2000; i++) {
    size_t len = 1 + (size_t)(rand_r(&seed) % (int)sizeof rnd);
    for (size_t k = 0; k < len; k++) {
      rnd[k] = (uint8_t)rand_r(&seed);
      /* array32/map32 headers are test_token_huge_array's (a known bug) */
      if (rnd[k] == 0xdd || rnd[k] == 0xdf)
        rnd[k] = 0xdc;
    }
    (void)gt_task_token_decode(&got, rnd, len); /* must not crash (ASan) */
  }
  /* mutations of a valid token */
  fill_token(&t, 20);
  p = gt_task_token_encode(&t, &n);
  uint8_t *m = malloc(n);
  for (int i = 0; i < 2000; i++) {
    memcpy(m, p, n);
    for (int k = 0; k < 3; k++) {
      size_t at = (size_t)rand_r(&seed) % n;
      m[at] = (uint8_t)rand_r(&seed);
      if (m[at] == 0xdd || m[at] == 0xdf)
        m[at] = 0xdc;
    }
    if (gt_task_token_decode(&got, m, n) == 0) /* whatever decodes is bounded */
      ck_assert_uint_lt(strlen(got.workflow_id), sizeof got.workflow_id);
  }
  free(m);
  free(p);

  /* over-long strings do not fit the decoded struct: EINVAL, not truncation */
  gt_task_token_t big;
  fill_token(&big, 1023);
  p = gt_task_token_encode(&big, &n);
  ck_assert_int_eq(gt_task_token_decode(&got, p, n), 0);
  free(p);
  /* a 1024-byte workflow id, built by hand: encode a 1023 one and patch the str32/16 len */
  char *wid = malloc(1100);
  memset(wid, 'x', 1024);
  wid[1024] = 0;
  uint8_t hand[1200];
  size_t o = 0;
  hand[o++] = 0x98;
  hand[o++] = 0x01;
  hand[o++] = 0x01;
  hand[o++] = 0xa1;
  hand[o++] = 'n';
  hand[o++] = 0xda; /* str16 */
  hand[o++] = 0x04;
  hand[o++] = 0x00;
  memcpy(hand + o, wid, 1024);
  o += 1024;
  hand[o++] = 0xa1;
  hand[o++] = 'r';
  hand[o++] = 0x01;
  hand[o++] = 0x02;
  hand[o++] = 0x03;
  ck_assert_int_eq(gt_task_token_decode(&got, hand, o), GT_EINVAL);
  hand[6] = 0x03; /* 1023 bytes... */
  hand[7] = 0xff;
  memmove(hand + 8 + 1023, hand + 8 + 1024, o - (8 + 1024));
  ck_assert_int_eq(gt_task_token_decode(&got, hand, o - 1), 0);
  ck_assert_uint_eq(strlen(got.workflow_id), 1023);
  ck_assert_str_eq(got.ns_id, "n");
  ck_assert_int_eq(got.attempt, 3);
  free(wid);
}
END_TEST

/* BUG: gt_task_token_decode hands client bytes to msgpack_unpack_next, which allocates
 * count * sizeof(msgpack_object) for an array32/map32 header before reading any element:
 * a 5-byte task token (dd ff ff ff ff) asks for ~96 GiB (ASan aborts the server; a
 * release build gets NULL or a huge untouched mapping). A token is always fixarray(8) of
 * ints and strings: check that shape before (or instead of) msgpack's object unpacker.
 * Enable when fixed. */
START_TEST(test_token_huge_array) {
  gt_task_token_t got;
  static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  static const uint8_t nested[] = {0x98, 0x01, 0xdd, 0x7f, 0xff, 0xff, 0xff};
  static const uint8_t map32[] = {0xdf, 0x7f, 0xff, 0xff, 0xff};
  ck_assert_int_eq(gt_task_token_decode(&got, arr32, sizeof arr32), GT_EINVAL);
  ck_assert_int_eq(gt_task_token_decode(&got, nested, sizeof nested), GT_EINVAL);
  ck_assert_int_eq(gt_task_token_decode(&got, map32, sizeof map32), GT_EINVAL);
}
END_TEST

/* ---- task tokens against msgpack-c ----
 * rpc.c codes tokens by hand; these are the msgpack-c encoder and decoder it replaced
 * (kept here as the reference): the bytes and the accept/reject decisions must match. */

static uint8_t *ref_encode(const gt_task_token_t *t, size_t *len) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 8);
  msgpack_pack_int(&pk, 1);
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
  return (uint8_t *)sb.data;
}

static int ref_str(const msgpack_object *o, char *dst, size_t cap) {
  if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
    return -1;
  if (o->via.str.size) /* msgpack-c points an empty string at NULL */
    memcpy(dst, o->via.str.ptr, o->via.str.size);
  dst[o->via.str.size] = 0;
  return 0;
}

static int ref_int(const msgpack_object *o, int64_t *v) {
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    *v = (int64_t)o->via.u64;
  else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    *v = o->via.i64;
  else
    return -1;
  return 0;
}

/* The old decoder minus its shape pre-check, which the caller applies (msgpack_unpack_next
 * is only safe on bytes that pass it: see test_token_huge_array). */
static int ref_decode(gt_task_token_t *t, const uint8_t *p, size_t len) {
  memset(t, 0, sizeof(*t));
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  int rc = GT_EINVAL;
  size_t off = 0;
  if (msgpack_unpack_next(&u, (const char *)p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
      off != len)
    goto out;
  const msgpack_object *o = &u.data;
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 8)
    goto out;
  const msgpack_object *a = o->via.array.ptr;
  int64_t ver, kind, sched, started, attempt;
  if (ref_int(&a[0], &ver) || ver != 1 || ref_int(&a[1], &kind) ||
      ref_str(&a[2], t->ns_id, sizeof(t->ns_id)) ||
      ref_str(&a[3], t->workflow_id, sizeof(t->workflow_id)) ||
      ref_str(&a[4], t->run_id, sizeof(t->run_id)) || ref_int(&a[5], &sched) ||
      ref_int(&a[6], &started) || ref_int(&a[7], &attempt))
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

/* Only fixarray 8 of ints and short strings reaches msgpack in the reference. */
static int ref_safe(const uint8_t *p, size_t len) {
  if (len == 0 || len > 4096 || p[0] != 0x98)
    return 0;
  for (size_t i = 1; i < len; i++)
    if (p[i] == 0xdd || p[i] == 0xdf)
      return 0; /* may be an array32/map32 header: msgpack would reserve gigabytes */
  return 1;
}

static void assert_same_decode(const uint8_t *p, size_t len) {
  gt_task_token_t a, b;
  int ra = gt_task_token_decode(&a, p, len);
  if (!ref_safe(p, len))
    return; /* decoded without crashing (ASan) is all that can be checked */
  int rb = ref_decode(&b, p, len);
  ck_assert_msg((ra == 0) == (rb == 0), "rc %d vs msgpack %d (len %zu)", ra, rb, len);
  if (ra != 0)
    return;
  ck_assert_str_eq(a.ns_id, b.ns_id);
  ck_assert_str_eq(a.workflow_id, b.workflow_id);
  ck_assert_str_eq(a.run_id, b.run_id);
  ck_assert_int_eq(a.kind, b.kind);
  ck_assert_int_eq(a.scheduled_event_id, b.scheduled_event_id);
  ck_assert_int_eq(a.started_event_id, b.started_event_id);
  ck_assert_int_eq(a.attempt, b.attempt);
}

START_TEST(test_token_matches_msgpack) {
  static const int64_t vals[] = {0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536,
                                 4294967295LL, 4294967296LL, INT64_MAX, -1, -31, -32,
                                 -33, -127, -128, -129, -32767, -32768, -32769,
                                 INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN};
  static const size_t lens[] = {0, 1, 31, 32, 255, 256, 1023};
  size_t nv = sizeof vals / sizeof vals[0];
  gt_task_token_t t;
  unsigned seed = 777;
  for (size_t i = 0; i < nv; i++) {
    for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
      fill_token(&t, lens[j]);
      t.ns_id[i % 37] = 0; /* ns ids of 0..36 bytes */
      t.kind = (int)(i % 3);
      t.scheduled_event_id = vals[i];
      t.started_event_id = vals[(i + j) % nv];
      t.attempt = (int32_t)vals[(i * 3 + j) % nv]; /* int32 truncation as a real one */
      size_t n1, n2;
      uint8_t *a = gt_task_token_encode(&t, &n1), *b = ref_encode(&t, &n2);
      ck_assert_uint_eq(n1, n2);
      ck_assert_msg(memcmp(a, b, n1) == 0, "bytes differ: value %lld, wid %zu",
                    (long long)vals[i], lens[j]);
      assert_same_decode(a, n1);
      /* mutations: any byte to any value, type bytes to other int/str tags */
      static const uint8_t tags[] = {0x00, 0x7f, 0x80, 0xa0, 0xa5, 0xbf, 0xc0, 0xc2,
                                     0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3,
                                     0xd9, 0xda, 0xe0, 0xff, 0x90, 0x98, 0xc4, 0xca};
      uint8_t *m = malloc(n1);
      for (int k = 0; k < 40; k++) {
        memcpy(m, a, n1);
        size_t at = (size_t)rand_r(&seed) % n1;
        m[at] = k % 2 ? tags[(size_t)rand_r(&seed) % sizeof tags] : (uint8_t)rand_r(&seed);
        assert_same_decode(m, n1);
        assert_same_decode(m, n1 - (size_t)rand_r(&seed) % n1); /* truncated too */
      }
      free(m);
      free(a);
      free(b);
    }
  }
}
END_TEST

/* ---- request arenas ---- */

typedef Temporal__Api__Workflowservice__V1__SignalWorkflowExecutionRequest signal_req_t;
typedef Temporal__Api__Common__V1__Payload payload_t;
typedef Temporal__Api__Common__V1__Payload__MetadataEntry meta_t;

/* A signal request of n payloads (two metadata entries each), one of them big bytes. */
static uint8_t *signal_bytes(size_t n, size_t big, size_t *len) {
  signal_req_t r = TEMPORAL__API__WORKFLOWSERVICE__V1__SIGNAL_WORKFLOW_EXECUTION_REQUEST__INIT;
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  pb_payloads_t in = TEMPORAL__API__COMMON__V1__PAYLOADS__INIT;
  payload_t *p = calloc(n ? n : 1, sizeof *p);
  payload_t **pp = calloc(n ? n : 1, sizeof *pp);
  meta_t *m = calloc(2 * (n ? n : 1), sizeof *m);
  meta_t **mp = calloc(2 * (n ? n : 1), sizeof *mp);
  uint8_t *bigdata = calloc(big ? big : 1, 1);
  for (size_t i = 0; i < big; i++)
    bigdata[i] = (uint8_t)i;
  for (size_t i = 0; i < n; i++) {
    temporal__api__common__v1__payload__init(&p[i]);
    for (int k = 0; k < 2; k++) {
      temporal__api__common__v1__payload__metadata_entry__init(&m[2 * i + k]);
      m[2 * i + k].key = k ? "encodingDecoded" : "encoding";
      m[2 * i + k].value.data = (uint8_t *)"json/plain";
      m[2 * i + k].value.len = 10;
      mp[2 * i + k] = &m[2 * i + k];
    }
    p[i].n_metadata = 2;
    p[i].metadata = &mp[2 * i];
    p[i].data.data = i == 0 && big ? bigdata : (uint8_t *)"\"Temporal\"";
    p[i].data.len = i == 0 && big ? big : 10;
    pp[i] = &p[i];
  }
  in.n_payloads = n;
  in.payloads = pp;
  ex.workflow_id = "wf-arena";
  ex.run_id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
  r.namespace_ = "default";
  r.workflow_execution = &ex;
  r.signal_name = "go";
  r.input = &in;
  r.identity = "1234@host";
  *len = protobuf_c_message_get_packed_size(&r.base);
  uint8_t *out = malloc(*len ? *len : 1);
  protobuf_c_message_pack(&r.base, out);
  free(p);
  free(pp);
  free(m);
  free(mp);
  free(bigdata);
  return out;
}

/* Decoding into an arena gives the message malloc decoding gives (packed back, the same
 * bytes), from one block up to requests that need many more (large bytes, thousands
 * of small allocations); bad bytes give NULL and no arena. */
START_TEST(test_arena_unpack) {
  const ProtobufCMessageDescriptor *d =
      &temporal__api__workflowservice__v1__signal_workflow_execution_request__descriptor;
  static const size_t shapes[][2] = {{0, 0}, {1, 0}, {3, 0}, {1, 100000}, {2000, 5000}};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    size_t len;
    uint8_t *wire = signal_bytes(shapes[i][0], shapes[i][1], &len);
    gt_pb_arena_t *a = NULL;
    ProtobufCMessage *m = gt_pb_unpack_arena(d, wire, len, &a);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(gt_pb_arena_root(a), m);
    ck_assert_uint_eq((uintptr_t)m % 16, 0);
    const signal_req_t *sr = (const void *)m;
    ck_assert_str_eq(sr->namespace_, "default");
    ck_assert_str_eq(sr->workflow_execution->workflow_id, "wf-arena");
    ck_assert_uint_eq(sr->input->n_payloads, shapes[i][0]);
    size_t n2 = protobuf_c_message_get_packed_size(m);
    ck_assert_uint_eq(n2, len);
    uint8_t *back = malloc(n2 ? n2 : 1);
    protobuf_c_message_pack(m, back);
    ck_assert_int_eq(memcmp(back, wire, len), 0);
    free(back);
    gt_pb_arena_free(a);
    free(wire);
  }
  /* an empty body is an all-defaults message */
  gt_pb_arena_t *a = NULL;
  ProtobufCMessage *m = gt_pb_unpack_arena(d, (const uint8_t *)"", 0, &a);
  ck_assert_ptr_nonnull(m);
  ck_assert_str_eq(((const signal_req_t *)m)->namespace_, "");
  gt_pb_arena_free(a);
  /* garbage and truncations: NULL, no arena, nothing leaked (ASan) */
  size_t len;
  uint8_t *wire = signal_bytes(50, 300, &len);
  for (size_t k = 1; k < len; k += 7) {
    a = (gt_pb_arena_t *)&len; /* overwritten */
    m = gt_pb_unpack_arena(d, wire, k, &a);
    if (m == NULL)
      ck_assert_ptr_null(a);
    gt_pb_arena_free(a);
  }
  static const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'};
  a = (gt_pb_arena_t *)&len;
  ck_assert_ptr_null(gt_pb_unpack_arena(d, junk, sizeof junk, &a));
  ck_assert_ptr_null(a);
  gt_pb_arena_free(NULL);
  ck_assert_ptr_null(gt_pb_arena_root(NULL));
  free(wire);
}
END_TEST

/* An rpc releases an arena request with its arena; gt_rpc_set_req swaps in a heap
 * request and releases the arena one (ASan: no leak, no bad free). */
START_TEST(test_rpc_arena_ownership) {
  const ProtobufCMessageDescriptor *d =
      &temporal__api__workflowservice__v1__signal_workflow_execution_request__descriptor;
  size_t len;
  uint8_t *wire = signal_bytes(20, 2000, &len);
  for (int mode = 0; mode < 3; mode++) {
    gt_pb_arena_t *a = NULL;
    ProtobufCMessage *m = gt_pb_unpack_arena(d, wire, len, &a);
    ck_assert_ptr_nonnull(m);
    gt_rpc_t *r = gt_rpc_new(NULL, GT_RPC_SIGNAL, NULL, m);
    ck_assert_ptr_nonnull(r);
    r->arena = a;
    if (mode >= 1) { /* what wf_byid.c does: the request replaced by a heap copy */
      ProtobufCMessage *h = protobuf_c_message_unpack(d, NULL, len, wire);
      ck_assert_ptr_nonnull(h);
      gt_rpc_set_req(r, h);
      ck_assert_ptr_eq(r->req, h);
      ck_assert_ptr_null(r->arena);
    }
    if (mode == 2) /* and replaced again: the heap one is freed by free_unpacked */
      gt_rpc_set_req(r, protobuf_c_message_unpack(d, NULL, len, wire));
    gt_rpc_free(r);
  }
  /* a heap request without an arena, as before */
  gt_rpc_t *r = gt_rpc_new(NULL, GT_RPC_SIGNAL, NULL, protobuf_c_message_unpack(d, NULL, len, wire));
  gt_rpc_free(r);
  free(wire);
}
END_TEST

/* ---- namespaces ---- */

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int n, rc;
} W = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static void reg_cb(void *ctx, int rc) {
  pthread_mutex_lock(&W.mu);
  W.n++;
  W.rc = rc;
  *(int *)ctx = rc;
  pthread_cond_broadcast(&W.cv);
  pthread_mutex_unlock(&W.mu);
}

/* Waits until `want` callbacks have run in total (fails after 10 s). */
static void wait_cbs(int want) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 10;
  pthread_mutex_lock(&W.mu);
  while (W.n < want)
    if (pthread_cond_timedwait(&W.cv, &W.mu, &ts) != 0)
      break;
  int n = W.n;
  pthread_mutex_unlock(&W.mu);
  ck_assert_int_eq(n, want);
}

static gt_store_t *open_store(const char *path) {
  gt_store_config_t sc = {.backend = GT_STORE_SQLITE,
                          .sqlite_path = path,
                          .sqlite_synchronous_full = 1,
                          .num_shards = 2};
  gt_store_t *st = NULL;
  ck_assert_int_eq(gt_store_open(&st, &sc), 0);
  return st;
}

typedef Temporal__Api__Workflowservice__V1__RegisterNamespaceRequest reg_req_t;
typedef Temporal__Api__Workflowservice__V1__DescribeNamespaceResponse describe_t;

/* Registers and waits; returns the callback's rc (or the synchronous error). */
static int register_ns(gt_namespaces_t *nss, const char *name, int64_t retention_ms,
                       const char *desc) {
  reg_req_t req = TEMPORAL__API__WORKFLOWSERVICE__V1__REGISTER_NAMESPACE_REQUEST__INIT;
  pb_dur_t ret;
  req.namespace_ = (char *)name;
  req.description = (char *)(desc ? desc : "");
  if (retention_ms) {
    gt_pb_dur(&ret, retention_ms);
    req.workflow_execution_retention_period = &ret;
  }
  pthread_mutex_lock(&W.mu);
  int before = W.n;
  pthread_mutex_unlock(&W.mu);
  int cbrc = 12345;
  int rc = gt_namespaces_register(nss, &req, reg_cb, &cbrc);
  if (rc != 0)
    return rc;
  wait_cbs(before + 1);
  return cbrc;
}

static describe_t *describe(gt_namespaces_t *nss, const char *name, const char *id) {
  gt_buf_t b;
  gt_buf_init(&b);
  int rc = gt_namespaces_describe(nss, name, id, &b);
  if (rc != 0) {
    ck_assert_uint_eq(b.len, 0);
    gt_buf_fini(&b);
    return NULL;
  }
  describe_t *d = temporal__api__workflowservice__v1__describe_namespace_response__unpack(
      NULL, b.len, b.p);
  gt_buf_fini(&b);
  ck_assert_ptr_nonnull(d);
  return d;
}

static int list_names(gt_namespaces_t *nss, int offset, int limit, int *next, char *names,
                      size_t cap) {
  gt_buf_t b;
  gt_buf_init(&b);
  int n = gt_namespaces_list(nss, offset, limit, &b, next);
  Temporal__Api__Workflowservice__V1__ListNamespacesResponse *r =
      temporal__api__workflowservice__v1__list_namespaces_response__unpack(NULL, b.len,
                                                                           b.len ? b.p : (const uint8_t *)"");
  ck_assert_ptr_nonnull(r);
  ck_assert_uint_eq(r->n_namespaces, (size_t)n);
  names[0] = 0;
  for (size_t i = 0; i < r->n_namespaces; i++) {
    ck_assert_ptr_nonnull(r->namespaces[i]->namespace_info);
    size_t l = strlen(names);
    snprintf(names + l, cap - l, "%s%s", i ? "," : "", r->namespaces[i]->namespace_info->name);
  }
  temporal__api__workflowservice__v1__list_namespaces_response__free_unpacked(r, NULL);
  gt_buf_fini(&b);
  return n;
}

static void valid_uuid(const char *u) {
  ck_assert_uint_eq(strlen(u), 36);
  ck_assert_int_eq(u[8], '-');
  ck_assert_int_eq(u[23], '-');
}

START_TEST(test_ns_memory) {
  gt_store_t *st = open_store(":memory:");
  gt_namespaces_t *nss = NULL;
  ck_assert_int_eq(gt_namespaces_load(&nss, st, NULL), 0);
  gt_ns_info_t info, info2;
  ck_assert_int_eq(gt_namespaces_get(nss, "default", &info), GT_ENOTFOUND);

  ck_assert_int_eq(gt_namespaces_ensure_sync(nss, "default", 24LL * 3600 * 1000), 0);
  ck_assert_int_eq(gt_namespaces_get(nss, "default", &info), 0);
  ck_assert_str_eq(info.name, "default");
  valid_uuid(info.id);
  ck_assert_int_eq(info.retention_ms, 24LL * 3600 * 1000);
  /* idempotent: same id, still one namespace */
  ck_assert_int_eq(gt_namespaces_ensure_sync(nss, "default", 5000), 0);
  ck_assert_int_eq(gt_namespaces_get(nss, "default", &info2), 0);
  ck_assert_str_eq(info2.id, info.id);
  ck_assert_int_eq(info2.retention_ms, 24LL * 3600 * 1000);
  int next = -1;
  char names[512];
  ck_assert_int_eq(list_names(nss, 0, 0, &next, names, sizeof names), 1);
  ck_assert_int_eq(next, 0);

  ck_assert_int_eq(gt_namespaces_get_by_id(nss, info.id, &info2), 0);
  ck_assert_str_eq(info2.name, "default");
  ck_assert_int_eq(gt_namespaces_get_by_id(nss, "no-such-id", &info2), GT_ENOTFOUND);
  ck_assert_int_eq(gt_namespaces_get(nss, "nope", &info2), GT_ENOTFOUND);

  /* register */
  ck_assert_int_eq(register_ns(nss, "ns-a", 48LL * 3600 * 1000, "first"), 0);
  ck_assert_int_eq(gt_namespaces_get(nss, "ns-a", &info2), 0);
  ck_assert_int_eq(info2.retention_ms, 48LL * 3600 * 1000);
  ck_assert_str_ne(info2.id, info.id);
  describe_t *d = describe(nss, "ns-a", NULL);
  ck_assert_str_eq(d->namespace_info->name, "ns-a");
  ck_assert_str_eq(d->namespace_info->id, info2.id);
  ck_assert_str_eq(d->namespace_info->description, "first");
  ck_assert_int_eq(d->namespace_info->state,
                   TEMPORAL__API__ENUMS__V1__NAMESPACE_STATE__NAMESPACE_STATE_REGISTERED);
  ck_assert_ptr_nonnull(d->config);
  ck_assert_int_eq(gt_pb_dur_ms(d->config->workflow_execution_retention_ttl),
                   48LL * 3600 * 1000);
  temporal__api__workflowservice__v1__describe_namespace_response__free_unpacked(d, NULL);
  /* by id */
  d = describe(nss, NULL, info2.id);
  ck_assert_ptr_nonnull(d);
  ck_assert_str_eq(d->namespace_info->name, "ns-a");
  temporal__api__workflowservice__v1__describe_namespace_response__free_unpacked(d, NULL);
  d = describe(nss, "", info.id); /* empty name falls back on the id */
  ck_assert_ptr_nonnull(d);
  ck_assert_str_eq(d->namespace_info->name, "default");
  temporal__api__workflowservice__v1__describe_namespace_response__free_unpacked(d, NULL);
  ck_assert_ptr_null(describe(nss, "nope", NULL));
  ck_assert_ptr_null(describe(nss, NULL, "nope"));

  /* duplicates fail at once; the callback never runs */
  pthread_mutex_lock(&W.mu);
  int cbs = W.n;
  pthread_mutex_unlock(&W.mu);
  ck_assert_int_eq(register_ns(nss, "ns-a", 0, NULL), GT_EEXISTS);
  ck_assert_int_eq(register_ns(nss, "default", 0, NULL), GT_EEXISTS);
  pthread_mutex_lock(&W.mu);
  ck_assert_int_eq(W.n, cbs);
  pthread_mutex_unlock(&W.mu);

  /* two registrations of one name in flight: exactly one is accepted */
  reg_req_t req = TEMPORAL__API__WORKFLOWSERVICE__V1__REGISTER_NAMESPACE_REQUEST__INIT;
  req.namespace_ = "ns-b";
  int rc1 = 99, rc2 = 99;
  ck_assert_int_eq(gt_namespaces_register(nss, &req, reg_cb, &rc1), 0);
  ck_assert_int_eq(gt_namespaces_register(nss, &req, reg_cb, &rc2), GT_EEXISTS);
  wait_cbs(cbs + 1);
  ck_assert_int_eq(rc1, 0);
  ck_assert_int_eq(rc2, 99);
  /* no retention given: Temporal's default of 3 days */
  ck_assert_int_eq(gt_namespaces_get(nss, "ns-b", &info2), 0);
  ck_assert_int_eq(info2.retention_ms, 72LL * 3600 * 1000);

  ck_assert_int_eq(register_ns(nss, "ns-c", 0, NULL), 0);

  /* paging: default, ns-a, ns-b, ns-c in registration order */
  ck_assert_int_eq(list_names(nss, 0, 0, &next, names, sizeof names), 4);
  ck_assert_str_eq(names, "default,ns-a,ns-b,ns-c");
  ck_assert_int_eq(next, 0);
  ck_assert_int_eq(list_names(nss, 0, 3, &next, names, sizeof names), 3);
  ck_assert_str_eq(names, "default,ns-a,ns-b");
  ck_assert_int_eq(next, 3);
  ck_assert_int_eq(list_names(nss, next, 3, &next, names, sizeof names), 1);
  ck_assert_str_eq(names, "ns-c");
  ck_assert_int_eq(next, 0);
  ck_assert_int_eq(list_names(nss, 0, 2, &next, names, sizeof names), 2);
  ck_assert_int_eq(next, 2);
  ck_assert_int_eq(list_names(nss, 2, 2, &next, names, sizeof names), 2);
  ck_assert_str_eq(names, "ns-b,ns-c");
  ck_assert_int_eq(next, 0);
  ck_assert_int_eq(list_names(nss, 10, 2, &next, names, sizeof names), 0);
  ck_assert_int_eq(next, 0);
  ck_assert_int_eq(list_names(nss, -5, 1, &next, names, sizeof names), 1);
  ck_assert_str_eq(names, "default");
  ck_assert_int_eq(next, 1);

  gt_namespaces_free(nss);
  gt_store_close(st);
}
END_TEST

START_TEST(test_ns_reload_from_file) {
  char dir[] = "/tmp/gt-ns-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[64];
  snprintf(path, sizeof path, "%s/ns.db", dir);

  gt_store_t *st = open_store(path);
  gt_namespaces_t *nss = NULL;
  ck_assert_int_eq(gt_namespaces_load(&nss, st, NULL), 0);
  ck_assert_int_eq(gt_namespaces_ensure_sync(nss, "default", 3600000), 0);
  ck_assert_int_eq(register_ns(nss, "orders", 7LL * 24 * 3600 * 1000, "orders team"), 0);
  gt_ns_info_t def, orders;
  ck_assert_int_eq(gt_namespaces_get(nss, "default", &def), 0);
  ck_assert_int_eq(gt_namespaces_get(nss, "orders", &orders), 0);
  gt_namespaces_free(nss);
  gt_store_close(st);

  st = open_store(path);
  ck_assert_int_eq(gt_namespaces_load(&nss, st, NULL), 0);
  gt_ns_info_t got;
  ck_assert_int_eq(gt_namespaces_get(nss, "orders", &got), 0);
  ck_assert_str_eq(got.id, orders.id);
  ck_assert_int_eq(got.retention_ms, 7LL * 24 * 3600 * 1000);
  ck_assert_int_eq(gt_namespaces_get_by_id(nss, def.id, &got), 0);
  ck_assert_str_eq(got.name, "default");
  ck_assert_int_eq(got.retention_ms, 3600000);
  /* the default namespace is not created twice on the next start */
  ck_assert_int_eq(gt_namespaces_ensure_sync(nss, "default", 3600000), 0);
  int next;
  char names[256];
  ck_assert_int_eq(list_names(nss, 0, 0, &next, names, sizeof names), 2);
  describe_t *d = describe(nss, "orders", NULL);
  ck_assert_str_eq(d->namespace_info->description, "orders team");
  temporal__api__workflowservice__v1__describe_namespace_response__free_unpacked(d, NULL);
  /* and a duplicate is still refused after the reload */
  ck_assert_int_eq(register_ns(nss, "orders", 0, NULL), GT_EEXISTS);
  gt_namespaces_free(nss);
  gt_store_close(st);

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Capabilities are the server's: stamped into a new namespace's record, and into a stored
 * record at load, so a record written under other settings shows the current ones. */
START_TEST(test_ns_capabilities_follow_the_server) {
  char dir[] = "/tmp/gt-ns-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[64];
  snprintf(path, sizeof path, "%s/ns.db", dir);

  gt_store_t *st = open_store(path);
  gt_namespaces_t *nss = NULL;
  gt_ns_caps_t none = {0}, all = {.eager_workflow_start = 1, .sync_update = 1,
                                  .async_update = 1};
  ck_assert_int_eq(gt_namespaces_load(&nss, st, &none), 0);
  ck_assert_int_eq(register_ns(nss, "orders", 0, "orders team"), 0);
  describe_t *d = describe(nss, "orders", NULL);
  ck_assert_ptr_nonnull(d->namespace_info->capabilities);
  ck_assert_int_eq(d->namespace_info->capabilities->eager_workflow_start, 0);
  ck_assert_int_eq(d->namespace_info->capabilities->sync_update, 0);
  temporal__api__workflowservice__v1__describe_namespace_response__free_unpacked(d, NULL);
  gt_namespaces_free(nss);
  gt_store_close(st);

  st = open_store(path);
  ck_assert_int_eq(gt_namespaces_load(&nss, st, &all), 0);
  d = describe(nss, "orders", NULL);
  ck_assert_int_eq(d->namespace_info->capabilities->eager_workflow_start, 1);
  ck_assert_int_eq(d->namespace_info->capabilities->sync_update, 1);
  ck_assert_int_eq(d->namespace_info->capabilities->async_update, 1);
  ck_assert_str_eq(d->namespace_info->description, "orders team"); /* the rest is kept */
  temporal__api__workflowservice__v1__describe_namespace_response__free_unpacked(d, NULL);
  ck_assert_int_eq(register_ns(nss, "billing", 0, NULL), 0);
  d = describe(nss, "billing", NULL);
  ck_assert_int_eq(d->namespace_info->capabilities->eager_workflow_start, 1);
  temporal__api__workflowservice__v1__describe_namespace_response__free_unpacked(d, NULL);
  gt_namespaces_free(nss);
  gt_store_close(st);

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- frontend.c over gRPC: namespace RPCs and dispatch ---- */

static gt_config_t g_cfg;
static gt_server_t *g_srv;

static void srv_setup(void) {
  gt_log_setup(GT_LOG_ERROR, GT_LOG_TEXT);
  gt_config_defaults(&g_cfg);
  g_cfg.grpc_port = 0;
  g_cfg.http_port = 0; /* no HTTP port: tests run side by side */
  g_cfg.scheduler_threads = 2;
  ck_assert_int_eq(gt_server_start(&g_srv, &g_cfg), 0);
}

static void srv_teardown(void) {
  gt_server_stop(g_srv);
  g_srv = NULL;
  gt_config_fini(&g_cfg);
}

/* schedulerThreads 0 means one per core but one, at least one (server.c); a number given
 * is taken as it is. */
START_TEST(test_scheduler_threads_default) {
  unsigned cores = uv_available_parallelism();
  int want_default = cores > 1 ? (int)cores - 1 : 1;
  int given[2] = {0, 3}, want[2] = {want_default, 3};
  for (int i = 0; i < 2; i++) {
    gt_config_t cfg;
    gt_server_t *srv = NULL;
    gt_config_defaults(&cfg);
    cfg.grpc_port = 0;
    cfg.http_port = 0;
    cfg.scheduler_threads = given[i];
    ck_assert_int_eq(gt_server_start(&srv, &cfg), 0);
    ck_assert_int_eq(gt_runtime_threads(srv->rt), want[i]);
    gt_server_stop(srv);
    gt_config_fini(&cfg);
  }
}
END_TEST

START_TEST(test_rpc_namespaces) {
  h2c_client_t c;
  h2c_open(&c, gt_gateway_port(g_srv->gw));

  /* RegisterNamespace validation */
  struct {
    const char *name;
    int64_t ret_ms; /* 0: unset */
    int status;
    const char *msg;
  } cases[] = {
      {"", 0, GT_GRPC_INVALID_ARGUMENT, "Namespace not set on request."},
      {"a", 0, GT_GRPC_INVALID_ARGUMENT,
       "Namespace name must be 2-255 characters of [a-zA-Z0-9._-]."},
      {"bad name", 0, GT_GRPC_INVALID_ARGUMENT,
       "Namespace name must be 2-255 characters of [a-zA-Z0-9._-]."},
      {"short-ret", 60000, GT_GRPC_INVALID_ARGUMENT,
       "WorkflowExecutionRetentionPeriod should be at least 1 hour."},
      {"neg-ret", -3600000, GT_GRPC_INVALID_ARGUMENT,
       "WorkflowExecutionRetentionPeriod should be at least 1 hour."},
      {"default", 0, GT_GRPC_ALREADY_EXISTS, "Namespace already exists."},
      {"team.x_1-y", 2 * 3600000, GT_GRPC_OK, ""},
      {"team.x_1-y", 0, GT_GRPC_ALREADY_EXISTS, "Namespace already exists."},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    reg_req_t req = TEMPORAL__API__WORKFLOWSERVICE__V1__REGISTER_NAMESPACE_REQUEST__INIT;
    pb_dur_t ret;
    req.namespace_ = (char *)cases[i].name;
    if (cases[i].ret_ms) {
      gt_pb_dur(&ret, cases[i].ret_ms);
      req.workflow_execution_retention_period = &ret;
    }
    h2c_stream_t s = {0};
    h2c_unary(&c, &s, "RegisterNamespace", &req.base, NULL);
    ck_assert_msg(s.grpc_status == cases[i].status, "case %zu: status %d (%s)", i,
                  s.grpc_status, s.message);
    ck_assert_str_eq(s.message, cases[i].msg);
    h2c_stream_free(&s);
  }

  /* Describe by name, by id; unknown; unset */
  Temporal__Api__Workflowservice__V1__DescribeNamespaceRequest dreq =
      TEMPORAL__API__WORKFLOWSERVICE__V1__DESCRIBE_NAMESPACE_REQUEST__INIT;
  dreq.namespace_ = "team.x_1-y";
  h2c_stream_t s = {0};
  h2c_unary(&c, &s, "DescribeNamespace", &dreq.base, NULL);
  describe_t *d = h2c_unpack(&s, &temporal__api__workflowservice__v1__describe_namespace_response__descriptor);
  ck_assert_str_eq(d->namespace_info->name, "team.x_1-y");
  ck_assert_int_eq(gt_pb_dur_ms(d->config->workflow_execution_retention_ttl), 2 * 3600000);
  char id[37];
  snprintf(id, sizeof id, "%s", d->namespace_info->id);
  protobuf_c_message_free_unpacked(&d->base, NULL);
  h2c_stream_free(&s);

  dreq.namespace_ = "";
  dreq.id = id;
  h2c_unary(&c, &s, "DescribeNamespace", &dreq.base, NULL);
  d = h2c_unpack(&s, &temporal__api__workflowservice__v1__describe_namespace_response__descriptor);
  ck_assert_str_eq(d->namespace_info->name, "team.x_1-y");
  protobuf_c_message_free_unpacked(&d->base, NULL);
  h2c_stream_free(&s);

  dreq.namespace_ = "missing";
  dreq.id = "";
  h2c_unary(&c, &s, "DescribeNamespace", &dreq.base, NULL);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_NOT_FOUND);
  ck_assert_str_eq(s.message, "Namespace missing is not found.");
  h2c_stream_free(&s);

  dreq.namespace_ = "";
  h2c_unary(&c, &s, "DescribeNamespace", &dreq.base, NULL);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INVALID_ARGUMENT);
  ck_assert_str_eq(s.message, "Namespace not set on request.");
  h2c_stream_free(&s);

  /* ListNamespaces pages with an opaque token */
  Temporal__Api__Workflowservice__V1__ListNamespacesRequest lreq =
      TEMPORAL__API__WORKFLOWSERVICE__V1__LIST_NAMESPACES_REQUEST__INIT;
  lreq.page_size = 1;
  h2c_unary(&c, &s, "ListNamespaces", &lreq.base, NULL);
  Temporal__Api__Workflowservice__V1__ListNamespacesResponse *lr =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__list_namespaces_response__descriptor);
  ck_assert_uint_eq(lr->n_namespaces, 1);
  ck_assert_str_eq(lr->namespaces[0]->namespace_info->name, "default");
  ck_assert_uint_gt(lr->next_page_token.len, 0);
  uint8_t tok[32];
  size_t tokn = lr->next_page_token.len;
  ck_assert_uint_lt(tokn, sizeof tok);
  memcpy(tok, lr->next_page_token.data, tokn);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  h2c_stream_free(&s);
  lreq.next_page_token.data = tok;
  lreq.next_page_token.len = tokn;
  h2c_unary(&c, &s, "ListNamespaces", &lreq.base, NULL);
  lr = h2c_unpack(&s, &temporal__api__workflowservice__v1__list_namespaces_response__descriptor);
  ck_assert_uint_eq(lr->n_namespaces, 1);
  ck_assert_str_eq(lr->namespaces[0]->namespace_info->name, "team.x_1-y");
  ck_assert_uint_eq(lr->next_page_token.len, 0);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  h2c_stream_free(&s);

  /* GetClusterInfo */
  Temporal__Api__Workflowservice__V1__GetClusterInfoRequest creq =
      TEMPORAL__API__WORKFLOWSERVICE__V1__GET_CLUSTER_INFO_REQUEST__INIT;
  h2c_unary(&c, &s, "GetClusterInfo", &creq.base, NULL);
  Temporal__Api__Workflowservice__V1__GetClusterInfoResponse *cr =
      h2c_unpack(&s, &temporal__api__workflowservice__v1__get_cluster_info_response__descriptor);
  ck_assert_int_eq(cr->history_shard_count, g_cfg.num_history_shards);
  ck_assert_str_eq(cr->cluster_id, g_srv->cluster_id);
  ck_assert_str_eq(cr->persistence_store, "sqlite");
  protobuf_c_message_free_unpacked(&cr->base, NULL);
  h2c_stream_free(&s);

  /* dispatch: unknown service, unknown method, known but unimplemented, bad body */
  h2c_call_raw(&c, &s, "/no.Such/Thing", NULL, 0, NULL);
  h2c_wait(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNIMPLEMENTED);
  h2c_stream_free(&s);
  h2c_call_raw(&c, &s, H2C_WF_SERVICE "NoSuchMethod", NULL, 0, NULL);
  h2c_wait(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNIMPLEMENTED);
  h2c_stream_free(&s);
  h2c_call_raw(&c, &s, H2C_WF_SERVICE "ListSchedules", NULL, 0, NULL);
  h2c_wait(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_UNIMPLEMENTED);
  ck_assert_ptr_nonnull(strstr(s.message, "ListSchedules"));
  h2c_stream_free(&s);
  static const uint8_t junk[] = {0x0a, 0x7f, 'x'}; /* LEN field longer than the body */
  h2c_call_raw(&c, &s, H2C_WF_SERVICE "DescribeNamespace", junk, sizeof junk, NULL);
  h2c_wait(&c, &s);
  ck_assert_int_eq(s.grpc_status, GT_GRPC_INVALID_ARGUMENT);
  h2c_stream_free(&s);

  h2c_close(&c);
}
END_TEST

static Suite *frontend_suite(void) {
  Suite *s = suite_create("frontend");
  TCase *tc = tcase_create("pb");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_buf_varint);
  tcase_add_test(tc, test_buf_fields);
  tcase_add_test(tc, test_buf_pack_and_concat);
  tcase_add_test(tc, test_buf_take_and_growth);
  tcase_add_test(tc, test_ts_roundtrip);
  tcase_add_test(tc, test_dur);
  tcase_add_test(tc, test_rpc_status);
  tcase_add_test(tc, test_uuid4);
  tcase_add_test(tc, test_token_roundtrip);
  tcase_add_test(tc, test_token_bad);
  /* regressions: bugs these tests found, now fixed */
  tcase_add_test(tc, test_ts_negative_normalized);
  tcase_add_test(tc, test_dur_huge_seconds);
  tcase_add_test(tc, test_token_huge_array);
  tcase_add_test(tc, test_token_matches_msgpack);
  tcase_add_test(tc, test_arena_unpack);
  tcase_add_test(tc, test_rpc_arena_ownership);
  suite_add_tcase(s, tc);

  TCase *ns = tcase_create("namespaces");
  tcase_set_timeout(ns, 30);
  tcase_add_test(ns, test_ns_memory);
  tcase_add_test(ns, test_ns_reload_from_file);
  tcase_add_test(ns, test_ns_capabilities_follow_the_server);
  suite_add_tcase(s, ns);

  TCase *rpc = tcase_create("rpc");
  tcase_set_timeout(rpc, 30);
  tcase_add_checked_fixture(rpc, srv_setup, srv_teardown);
  tcase_add_test(rpc, test_rpc_namespaces);
  suite_add_tcase(s, rpc);

  TCase *srv = tcase_create("server");
  tcase_set_timeout(srv, 30);
  tcase_add_test(srv, test_scheduler_threads_default);
  suite_add_tcase(s, srv);
  return s;
}

int main(void) {
  gt_log_setup(GT_LOG_ERROR, GT_LOG_TEXT);
  /* as the server's main does: a client closing while the in-process server still
   * writes (e.g. its SETTINGS frame at teardown) must give EPIPE, not kill the suite */
  signal(SIGPIPE, SIG_IGN);
  SRunner *sr = srunner_create(frontend_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
