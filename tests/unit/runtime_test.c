/*
 * runtime_test.c: the runtime module: error names, logging (levels, text and
 * JSON lines), the actor runtime (per-sender FIFO, cross-thread delivery,
 * activation by key, stop, start failure, timers and cancel, posts, batching
 * fairness, introspection), a shutdown with busy actors and armed timers
 * that must leak nothing (ASan/LSan), redelivery across activations
 * (redeliver_on_stop: exactly once, per-sender order, not at shutdown), and
 * gt_wake_t (no wake-up lost under concurrent senders, its eventfd closed).
 *
 * Actor hooks never call ck_assert (they run on scheduler threads): they count
 * violations, and the test thread asserts the counts. Waiting is on a condition
 * variable (latch), never a sleep.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "runtime/actor.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/runtime_int.h" /* drain_ms, to keep one test short */
#include "runtime/timer.h"
#include "runtime/wake.h"

/* ---- helpers ---- */

/* A counter the test thread can wait on. */
static uv_mutex_t latch_lock;
static uv_cond_t latch_cond;
static long latch_count;

static void latch_reset(void) {
  uv_mutex_init(&latch_lock);
  uv_cond_init(&latch_cond);
  latch_count = 0;
}

static void latch_add(long n) {
  uv_mutex_lock(&latch_lock);
  latch_count += n;
  uv_cond_broadcast(&latch_cond);
  uv_mutex_unlock(&latch_lock);
}

/* Waits until the count reaches target, at most 10 s. Returns the count. */
static long latch_wait(long target) {
  uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
  uv_mutex_lock(&latch_lock);
  while (latch_count < target) {
    uint64_t now = uv_hrtime();
    if (now >= deadline ||
        uv_cond_timedwait(&latch_cond, &latch_lock, deadline - now) != 0)
      break;
  }
  long n = latch_count;
  uv_mutex_unlock(&latch_lock);
  return n;
}

static void latch_fini(void) {
  uv_cond_destroy(&latch_cond);
  uv_mutex_destroy(&latch_lock);
}

enum {
  M_DATA = 1,
  M_PING,
  M_PONG,
  M_STOP,
  M_ARM,
  M_ARM_CANCEL,
  M_WHERE,
  M_FLOOD,
  M_BOUNCE,
  M_CHURN,
  M_CACHED
};

typedef struct tmsg {
  gt_msg_t hdr;
  int sender;
  long seq;
  gt_actor_t *reply; /* a reference the message owns */
  uint64_t ms, token;
} tmsg_t;

static atomic_long msgs_freed;

static void tmsg_dtor(gt_msg_t *m) {
  tmsg_t *t = (tmsg_t *)m;
  if (t->reply != NULL)
    gt_actor_release(t->reply);
  atomic_fetch_add(&msgs_freed, 1);
  free(t);
}

static tmsg_t *tmsg_new(int type) {
  tmsg_t *m = calloc(1, sizeof(*m));
  ck_assert_ptr_nonnull(m);
  m->hdr.type = type;
  m->hdr.dtor = tmsg_dtor;
  return m;
}

static void send_ok(gt_actor_t *a, tmsg_t *m) {
  ck_assert_int_eq(gt_actor_send(a, &m->hdr), 0);
}

/* The test actor; its behaviour depends on the message. */
typedef struct tactor {
  gt_actor_t base;
  int started;
  int gen;
  long last_seq[8];
  long received;
  uint64_t armed_at;
  uint64_t expect_id;
} tactor_t;

static atomic_int starts, stops, violations, shutdowns, timer_fires, pongs;
static atomic_long handled;
static atomic_long flood_seen_by_b;   /* A's count when B ran */
static atomic_long flood_count;       /* A's messages handled so far */
static atomic_uintptr_t where_thread; /* pthread that handled M_WHERE */
static atomic_ulong fired_token, fired_elapsed, fired_id;

static void reset_counters(void) {
  atomic_store(&msgs_freed, 0);
  atomic_store(&starts, 0);
  atomic_store(&stops, 0);
  atomic_store(&violations, 0);
  atomic_store(&shutdowns, 0);
  atomic_store(&timer_fires, 0);
  atomic_store(&pongs, 0);
  atomic_store(&handled, 0);
  gt_log_setup(GT_LOG_INFO, GT_LOG_TEXT); /* earlier tests may change it */
  latch_reset();
}

static int t_start(gt_actor_t *self, void *arg) {
  tactor_t *a = (tactor_t *)self;
  if (a->started)
    atomic_fetch_add(&violations, 1);
  a->started = 1;
  a->gen = atomic_fetch_add(&starts, 1) + 1;
  for (int i = 0; i < 8; i++)
    a->last_seq[i] = -1;
  return arg == (void *)-1 ? -1 : 0;
}

static void t_stop(gt_actor_t *self) {
  atomic_fetch_add(&stops, 1);
  latch_add(1000000); /* stop events are counted in millions */
}

static void on_timer(tactor_t *a, gt_timer_msg_t *tm) {
  atomic_store(&fired_token, tm->token);
  atomic_store(&fired_id, tm->timer_id);
  atomic_store(&fired_elapsed, gt_now_ms() - a->armed_at);
  atomic_fetch_add(&timer_fires, 1);
  latch_add(1);
}

static void on_data(tactor_t *a, tmsg_t *m) {
  if (m->seq != a->last_seq[m->sender] + 1)
    atomic_fetch_add(&violations, 1);
  a->last_seq[m->sender] = m->seq;
  latch_add(1);
}

static void on_arm(tactor_t *a, tmsg_t *m) {
  a->armed_at = gt_now_ms();
  uint64_t id = gt_actor_timer_start(&a->base, m->ms, m->token);
  if (id == 0)
    atomic_fetch_add(&violations, 1);
  if (m->hdr.type == M_ARM_CANCEL) {
    /* A shorter timer, cancelled at once: it must never be delivered. */
    uint64_t c = gt_actor_timer_start(&a->base, m->ms / 4, 999);
    if (gt_actor_timer_cancel(&a->base, c) != 0 ||
        gt_actor_timer_cancel(&a->base, c) != GT_ENOTFOUND)
      atomic_fetch_add(&violations, 1);
  }
  a->expect_id = id;
}

/* M_CHURN: arms CHURN_N timers of m->ms and cancels the even ones, noting the
 * thread's timer cache before and after arming. */
enum { CHURN_N = 16 };
#define CHURN_TOKEN 1000000u
static atomic_long churn_cached_before, churn_cached_after, churn_fires, cached_probe;

static void on_churn(tactor_t *a, tmsg_t *m) {
  uint64_t ids[CHURN_N];
  atomic_store(&churn_cached_before, (long)gt__timer_cached());
  for (int i = 0; i < CHURN_N; i++)
    if ((ids[i] = gt_actor_timer_start(&a->base, m->ms, CHURN_TOKEN + i)) == 0)
      atomic_fetch_add(&violations, 1);
  atomic_store(&churn_cached_after, (long)gt__timer_cached());
  for (int i = 0; i < CHURN_N; i += 2)
    if (gt_actor_timer_cancel(&a->base, ids[i]) != 0)
      atomic_fetch_add(&violations, 1);
  latch_add(1);
}

/* A churn timer fired: only the odd ones may (the even ones were cancelled). */
static void on_churn_fire(gt_timer_msg_t *tm) {
  if ((tm->token - CHURN_TOKEN) % 2 == 0)
    atomic_fetch_add(&violations, 1);
  atomic_fetch_add(&churn_fires, 1);
  latch_add(1);
}

static void t_receive(gt_actor_t *self, gt_msg_t *msg) {
  tactor_t *a = (tactor_t *)self;
  tmsg_t *m = (tmsg_t *)msg;
  if (!a->started)
    atomic_fetch_add(&violations, 1);
  a->received++;
  atomic_fetch_add(&handled, 1);
  switch (msg->type) {
  case GT_MSG_TIMER:
    if (((gt_timer_msg_t *)msg)->token >= CHURN_TOKEN) {
      on_churn_fire((gt_timer_msg_t *)msg);
      break;
    }
    on_timer(a, (gt_timer_msg_t *)msg);
    if (((gt_timer_msg_t *)msg)->timer_id != a->expect_id)
      atomic_fetch_add(&violations, 1);
    break;
  case GT_MSG_SHUTDOWN:
    atomic_fetch_add(&shutdowns, 1);
    break;
  case M_DATA:
    on_data(a, m);
    break;
  case M_PING: { /* answer on the reply actor */
    tmsg_t *r = tmsg_new(M_PONG);
    atomic_fetch_add(&pongs, 1);
    r->sender = gt_actor_thread(self);
    if (gt_actor_send(m->reply, &r->hdr) != 0)
      gt_msg_free(&r->hdr);
    break;
  }
  case M_PONG:
    atomic_store(&where_thread, (uintptr_t)pthread_self());
    latch_add(1);
    break;
  case M_STOP:
    gt_actor_stop(self);
    break;
  case M_ARM:
  case M_ARM_CANCEL:
    on_arm(a, m);
    break;
  case M_BOUNCE: { /* back to the sender, forever; ignores GT_MSG_SHUTDOWN */
    tmsg_t *r = tmsg_new(M_BOUNCE);
    atomic_fetch_add(&pongs, 1);
    r->reply = self;
    gt_actor_retain(self);
    if (gt_actor_send(m->reply, &r->hdr) != 0)
      gt_msg_free(&r->hdr);
    if (a->received == 500)
      latch_add(1);
    break;
  }
  case M_CHURN:
    on_churn(a, m);
    break;
  case M_CACHED: /* the thread's timer cache, for a test awaiting close callbacks */
    atomic_store(&cached_probe, (long)gt__timer_cached());
    latch_add(1);
    break;
  case M_WHERE:
    atomic_store(&where_thread, (uintptr_t)pthread_self());
    latch_add(1);
    break;
  }
  gt_msg_free(msg);
}

static const gt_actor_type_t test_type = {
    .name = "test",
    .size = sizeof(tactor_t),
    .start = t_start,
    .receive = t_receive,
    .stop = t_stop,
};

static gt_runtime_t *rt_up(int threads) {
  gt_runtime_t *rt;
  ck_assert_int_eq(gt_runtime_new(&rt, threads), 0);
  ck_assert_int_eq(gt_runtime_threads(rt), threads);
  ck_assert_int_eq(gt_runtime_start(rt), 0);
  return rt;
}

static gt_actor_t *get(gt_runtime_t *rt, const char *key) {
  gt_actor_t *a;
  ck_assert_int_eq(gt_actor_get(rt, &test_type, key, strlen(key), NULL, &a), 0);
  return a;
}

/* An actor whose home thread is `thread` (keys are tried in turn). */
static gt_actor_t *get_on(gt_runtime_t *rt, int thread, char *key, size_t cap) {
  for (int i = 0; i < 1000; i++) {
    snprintf(key, cap, "k%d-%d", thread, i);
    gt_actor_t *a;
    if (gt_actor_find(rt, &test_type, key, strlen(key), &a) == 0) {
      gt_actor_release(a);
      continue; /* taken by an earlier call */
    }
    a = get(rt, key);
    if (gt_actor_thread(a) == thread)
      return a;
    gt_actor_release(a);
  }
  ck_abort_msg("no key hashes to thread %d", thread);
  return NULL;
}

/* ---- err and log ---- */

/* ---- gt_wake_t (wake.h) ---- */

#define WAKE_SENDERS 4
#define WAKE_PER_SENDER 20000
#define WAKE_PINGPONG 20000

typedef struct wake_fixture {
  gt_wake_t wake;
  uv_timer_t guard;         /* fails the test instead of hanging on a lost wake-up */
  atomic_long pushed;       /* items the senders made visible before each send */
  atomic_long seen;         /* the count the last callback saw */
  long want;                /* the count at which the loop closes the wake */
  long callbacks;           /* loop thread */
  int use_more;             /* set the `more` hook */
  int closed, timed_out;
} wake_fixture_t;

static void wake_closed(gt_wake_t *w) { ((wake_fixture_t *)w->data)->closed = 1; }

static void wake_cb(gt_wake_t *w) {
  wake_fixture_t *f = w->data;
  f->callbacks++;
  atomic_store(&f->seen, atomic_load(&f->pushed));
  if (atomic_load(&f->seen) == f->want && !uv_is_closing(gt_wake_handle(w))) {
    gt_wake_close(w, wake_closed);
    uv_close((uv_handle_t *)&f->guard, NULL);
  }
}

static int wake_more(gt_wake_t *w) {
  wake_fixture_t *f = w->data;
  return atomic_load(&f->pushed) != atomic_load(&f->seen);
}

static void wake_guard(uv_timer_t *t) {
  wake_fixture_t *f = t->data;
  f->timed_out = 1;
  atomic_store(&f->seen, -1); /* releases a ping-pong sender */
  gt_wake_close(&f->wake, wake_closed);
  uv_close((uv_handle_t *)t, NULL);
}

/* Many senders at once: sends merge, and the last one is seen. */
static void *wake_sender(void *arg) {
  wake_fixture_t *f = arg;
  for (int i = 0; i < WAKE_PER_SENDER; i++) {
    atomic_fetch_add(&f->pushed, 1); /* the "push", then the send, as a poster does */
    gt_wake_send(&f->wake);
  }
  return NULL;
}

/* One sender that waits for each push to be seen before the next: every send lands right
 * after a callback, where a wake that cleared its flag late would lose it. */
static void *wake_pingpong(void *arg) {
  wake_fixture_t *f = arg;
  for (long i = 1; i <= WAKE_PINGPONG; i++) {
    atomic_store(&f->pushed, i);
    gt_wake_send(&f->wake);
    long s;
    while ((s = atomic_load(&f->seen)) >= 0 && s < i)
      ;
    if (s < 0)
      break; /* the guard fired */
  }
  return NULL;
}

static void wake_run(wake_fixture_t *f, int nthreads, void *(*fn)(void *), long want) {
  uv_loop_t loop;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  f->want = want;
  ck_assert_int_eq(gt_wake_init(&loop, &f->wake, wake_cb), 0);
  f->wake.data = f;
  if (f->use_more)
    gt_wake_set_more(&f->wake, wake_more);
  int fd = f->wake.fd;
  uv_timer_init(&loop, &f->guard);
  f->guard.data = f;
  uv_timer_start(&f->guard, wake_guard, 20000, 0);
  pthread_t th[WAKE_SENDERS];
  for (int i = 0; i < nthreads; i++)
    ck_assert_int_eq(pthread_create(&th[i], NULL, fn, f), 0);
  /* runs until the callback that saw every push closed the wake (or the guard fired) */
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < nthreads; i++)
    pthread_join(th[i], NULL);
  ck_assert_int_eq(f->timed_out, 0);
  ck_assert_int_eq(atomic_load(&f->seen), want);
  ck_assert_int_eq(f->closed, 1);
  ck_assert_int_eq(f->wake.fd, -1);
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* the eventfd was closed */
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(wake_loses_nothing_and_merges) {
  wake_fixture_t f = {0};
  wake_run(&f, WAKE_SENDERS, wake_sender, (long)WAKE_SENDERS * WAKE_PER_SENDER);
  ck_assert_int_ge(f.callbacks, 1);
  ck_assert_int_lt(f.callbacks, (long)WAKE_SENDERS * WAKE_PER_SENDER); /* merged */
}
END_TEST

START_TEST(wake_send_right_after_callback) {
  wake_fixture_t f = {0};
  wake_run(&f, 1, wake_pingpong, WAKE_PINGPONG);
  ck_assert_int_ge(f.callbacks, WAKE_PINGPONG); /* one per push: none merged, none lost */
}
END_TEST

/* The same two with the `more` hook: the flag stays on through the callback. */
START_TEST(wake_more_loses_nothing) {
  wake_fixture_t f = {.use_more = 1};
  wake_run(&f, WAKE_SENDERS, wake_sender, (long)WAKE_SENDERS * WAKE_PER_SENDER);
  ck_assert_int_lt(f.callbacks, (long)WAKE_SENDERS * WAKE_PER_SENDER);
  wake_fixture_t g = {.use_more = 1};
  wake_run(&g, 1, wake_pingpong, WAKE_PINGPONG);
  ck_assert_int_ge(g.callbacks, WAKE_PINGPONG);
}
END_TEST

START_TEST(err_names_and_texts) {
  ck_assert_str_eq(gt_errname(0), "GT_OK");
  ck_assert_str_eq(gt_errname(GT_ENOTFOUND), "GT_ENOTFOUND");
  ck_assert_str_eq(gt_errname(GT_EFULL), "GT_EFULL");
  ck_assert_str_eq(gt_errname(-999), "GT_E?");
  ck_assert_str_eq(gt_strerror(0), "ok");
  ck_assert_str_eq(gt_strerror(GT_ECLOSED), "closed");
  ck_assert_str_eq(gt_strerror(GT_ENOMEM), "out of memory");
  ck_assert_str_eq(gt_strerror(12345), "unknown error");
}
END_TEST

START_TEST(log_parse) {
  gt_log_level_t l;
  gt_log_format_t f;
  ck_assert_int_eq(gt_log_parse_level("debug", &l), 0);
  ck_assert_int_eq(l, GT_LOG_DEBUG);
  ck_assert_int_eq(gt_log_parse_level("INFO", &l), 0);
  ck_assert_int_eq(l, GT_LOG_INFO);
  ck_assert_int_eq(gt_log_parse_level("warn", &l), 0);
  ck_assert_int_eq(l, GT_LOG_WARN);
  ck_assert_int_eq(gt_log_parse_level("warning", &l), 0);
  ck_assert_int_eq(l, GT_LOG_WARN);
  ck_assert_int_eq(gt_log_parse_level("error", &l), 0);
  ck_assert_int_eq(l, GT_LOG_ERROR);
  ck_assert_int_eq(gt_log_parse_level("off", &l), 0);
  ck_assert_int_eq(l, GT_LOG_OFF);
  ck_assert_int_eq(gt_log_parse_level("fatal", &l), 0);
  ck_assert_int_eq(l, GT_LOG_OFF);
  ck_assert_int_eq(gt_log_parse_level("loud", &l), GT_EINVAL);
  ck_assert_int_eq(gt_log_parse_level(NULL, &l), GT_EINVAL);
  ck_assert_int_eq(gt_log_parse_format("json", &f), 0);
  ck_assert_int_eq(f, GT_LOG_JSON);
  ck_assert_int_eq(gt_log_parse_format("console", &f), 0);
  ck_assert_int_eq(f, GT_LOG_TEXT);
  ck_assert_int_eq(gt_log_parse_format("logfmt", &f), 0);
  ck_assert_int_eq(f, GT_LOG_TEXT);
  ck_assert_int_eq(gt_log_parse_format("xml", &f), GT_EINVAL);
  gt_log_setup(GT_LOG_WARN, GT_LOG_TEXT);
  ck_assert(!gt_log_enabled(GT_LOG_INFO));
  ck_assert(gt_log_enabled(GT_LOG_WARN));
  ck_assert(gt_log_enabled(GT_LOG_ERROR));
  gt_log_setup(GT_LOG_OFF, GT_LOG_TEXT);
  ck_assert(!gt_log_enabled(GT_LOG_ERROR));
}
END_TEST

/* Runs the logging calls with stderr on a pipe; returns what was written. */
static char captured[8192];

static void capture_begin(int *saved, int p[2]) {
  ck_assert_int_eq(pipe(p), 0);
  *saved = dup(STDERR_FILENO);
  ck_assert_int_ge(*saved, 0);
  ck_assert_int_ge(dup2(p[1], STDERR_FILENO), 0);
}

static const char *capture_end(int saved, int p[2]) {
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(p[1]);
  ssize_t n = read(p[0], captured, sizeof(captured) - 1);
  close(p[0]);
  captured[n > 0 ? n : 0] = '\0';
  return captured;
}

START_TEST(log_text_line) {
  int saved, p[2];
  capture_begin(&saved, p);
  gt_log_setup(GT_LOG_INFO, GT_LOG_TEXT);
  gt_log_debug("T-HIDDEN", "not shown");
  gt_log_info("HIST-SHARD-LOST", "shard %d\nlost", 7);
  const char *out = capture_end(saved, p);
  /* 2026-11-26T06:00:00.123Z INFO  HIST-SHARD-LOST shard 7 lost\n */
  ck_assert_int_eq(strlen(out),
                   24 + strlen(" INFO  HIST-SHARD-LOST shard 7 lost\n"));
  ck_assert_int_eq(out[4], '-');
  ck_assert_int_eq(out[10], 'T');
  ck_assert_int_eq(out[19], '.');
  ck_assert_int_eq(out[23], 'Z');
  ck_assert_str_eq(out + 24, " INFO  HIST-SHARD-LOST shard 7 lost\n");
}
END_TEST

START_TEST(log_json_line) {
  int saved, p[2];
  capture_begin(&saved, p);
  gt_log_setup(GT_LOG_DEBUG, GT_LOG_JSON);
  gt_log_warn("T-JSON", "say \"hi\" \\ tab\there\x01");
  const char *out = capture_end(saved, p);
  ck_assert_int_eq(strncmp(out, "{\"ts\":\"", 7), 0);
  ck_assert_int_eq(out[7 + 23], 'Z');
  ck_assert_str_eq(out + 7 + 24,
                   "\",\"level\":\"warn\",\"msg_id\":\"T-JSON\",\"msg\":"
                   "\"say \\\"hi\\\" \\\\ tab\\there\\u0001\"}\n");
}
END_TEST

/* ---- actors ---- */

typedef struct sender_arg {
  gt_actor_t *to;
  int id;
  long count;
} sender_arg_t;

static void sender_main(void *arg) {
  sender_arg_t *s = arg;
  for (long i = 0; i < s->count; i++) {
    tmsg_t *m = tmsg_new(M_DATA);
    m->sender = s->id;
    m->seq = i;
    send_ok(s->to, m);
  }
}

START_TEST(fifo_per_sender) {
  enum { SENDERS = 4, COUNT = 10000 };
  reset_counters();
  gt_runtime_t *rt = rt_up(4);
  gt_actor_t *sink = get(rt, "sink");
  sender_arg_t args[SENDERS];
  uv_thread_t tid[SENDERS];
  for (int i = 0; i < SENDERS; i++) {
    args[i] = (sender_arg_t){sink, i, COUNT};
    ck_assert_int_eq(uv_thread_create(&tid[i], sender_main, &args[i]), 0);
  }
  for (int i = 0; i < SENDERS; i++)
    uv_thread_join(&tid[i]);
  ck_assert_int_eq(latch_wait(SENDERS * COUNT), SENDERS * COUNT);
  ck_assert_int_eq(((tactor_t *)sink)->received, SENDERS * COUNT);
  gt_actor_release(sink);
  gt_runtime_stop(
      rt); /* joins: the frees after the last receive are visible now */
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(atomic_load(&msgs_freed), SENDERS * COUNT);
  latch_fini();
}
END_TEST

START_TEST(cross_thread_reply) {
  reset_counters();
  gt_runtime_t *rt = rt_up(4);
  char k0[32], k1[32];
  gt_actor_t *ping = get_on(rt, 1, k0, sizeof(k0));
  gt_actor_t *pong = get_on(rt, 3, k1, sizeof(k1));
  /* where M_WHERE on thread 1 runs, to tell the pthreads apart */
  send_ok(ping, tmsg_new(M_WHERE));
  ck_assert_int_eq(latch_wait(1), 1);
  uintptr_t ping_thread = atomic_load(&where_thread);
  tmsg_t *m = tmsg_new(M_PING);
  gt_actor_retain(pong);
  m->reply = pong;
  send_ok(ping, m);
  ck_assert_int_eq(latch_wait(2), 2);
  uintptr_t pong_thread = atomic_load(&where_thread);
  ck_assert(pong_thread != ping_thread);
  ck_assert(pong_thread != (uintptr_t)pthread_self());
  ck_assert(ping_thread != (uintptr_t)pthread_self());
  gt_actor_release(ping);
  gt_actor_release(pong);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(atomic_load(&starts), atomic_load(&stops));
  latch_fini();
}
END_TEST

START_TEST(activation_by_key) {
  reset_counters();
  gt_runtime_t *rt = rt_up(2);
  gt_actor_t *a = get(rt, "alpha");
  /* Messages sent right after activation still come after start (checked in
   * receive). */
  for (int i = 0; i < 100; i++) {
    tmsg_t *m = tmsg_new(M_DATA);
    m->seq = i;
    send_ok(a, m);
  }
  gt_actor_t *a2 = get(rt, "alpha");
  gt_actor_t *b = get(rt, "beta");
  ck_assert_ptr_eq(a, a2);
  ck_assert_ptr_ne(a, b);
  gt_actor_t *found;
  ck_assert_int_eq(gt_actor_find(rt, &test_type, "alpha", 5, &found), 0);
  ck_assert_ptr_eq(found, a);
  gt_actor_release(found);
  ck_assert_int_eq(gt_actor_find(rt, &test_type, "gamma", 5, &found),
                   GT_ENOTFOUND);
  char big[GT_ACTOR_KEY_MAX + 1] = {0};
  ck_assert_int_eq(gt_actor_get(rt, &test_type, big, sizeof(big), NULL, &found),
                   GT_EINVAL);
  ck_assert_int_eq(latch_wait(100), 100);
  send_ok(b,
          tmsg_new(
              M_WHERE)); /* so beta's start has run before alpha's second one */
  ck_assert_int_eq(latch_wait(101), 101);

  /* stop, then get: a fresh actor, and the old reference is closed */
  send_ok(a, tmsg_new(M_STOP));
  ck_assert_int_eq(latch_wait(1000101), 1000101); /* the stop hook ran */
  tmsg_t *late = tmsg_new(M_DATA);
  ck_assert_int_eq(gt_actor_send(a, &late->hdr), GT_ECLOSED);
  gt_msg_free(&late->hdr);
  ck_assert_int_eq(gt_actor_find(rt, &test_type, "alpha", 5, &found),
                   GT_ENOTFOUND);
  gt_actor_t *a3 = get(rt, "alpha");
  ck_assert_ptr_ne(a3, a);
  send_ok(a3, tmsg_new(M_WHERE));
  ck_assert_int_eq(latch_wait(1000102), 1000102);
  ck_assert_int_eq(((tactor_t *)a3)->gen, 3); /* alpha, beta, alpha again */
  ck_assert_int_eq(atomic_load(&starts), 3);
  gt_actor_release(a);
  gt_actor_release(a2);
  gt_actor_release(a3);
  gt_actor_release(b);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(atomic_load(&stops), 3);
  latch_fini();
}
END_TEST

START_TEST(start_failure_frees_messages) {
  reset_counters();
  gt_runtime_t *rt = rt_up(1);
  gt_actor_t *a;
  ck_assert_int_eq(gt_actor_get(rt, &test_type, "bad", 3, (void *)-1, &a), 0);
  int sent = 0;
  for (int i = 0; i < 50; i++) {
    tmsg_t *m = tmsg_new(M_DATA);
    if (gt_actor_send(a, &m->hdr) == 0)
      sent++;
    else
      gt_msg_free(&m->hdr);
  }
  gt_actor_release(a);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&handled), 0);
  ck_assert_int_eq(atomic_load(&msgs_freed), 50);
  ck_assert_int_eq(atomic_load(&starts), 1);
  ck_assert_int_eq(atomic_load(&stops),
                   0); /* no stop hook after a failed start */
  latch_fini();
}
END_TEST

START_TEST(timer_fires_with_token) {
  reset_counters();
  gt_runtime_t *rt = rt_up(2);
  gt_actor_t *a = get(rt, "timed");
  tmsg_t *m = tmsg_new(M_ARM);
  m->ms = 30;
  m->token = 4242;
  send_ok(a, m);
  ck_assert_int_eq(latch_wait(1), 1);
  ck_assert_uint_eq(atomic_load(&fired_token), 4242);
  ck_assert_uint_ge(atomic_load(&fired_elapsed), 30);
  ck_assert_uint_gt(atomic_load(&fired_id), 0);
  gt_actor_release(a);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0);
  latch_fini();
}
END_TEST

START_TEST(timer_cancel_prevents_delivery) {
  reset_counters();
  gt_runtime_t *rt = rt_up(2);
  gt_actor_t *a = get(rt, "timed");
  tmsg_t *m =
      tmsg_new(M_ARM_CANCEL); /* arms 80 ms, arms 20 ms and cancels it */
  m->ms = 80;
  m->token = 7;
  send_ok(a, m);
  ck_assert_int_eq(latch_wait(1), 1);
  /* The cancelled timer was due first; only the kept one was delivered. */
  ck_assert_int_eq(atomic_load(&timer_fires), 1);
  ck_assert_uint_eq(atomic_load(&fired_token), 7);
  gt_actor_release(a);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(atomic_load(&timer_fires), 1);
  latch_fini();
}
END_TEST

/* Closed timers are reused by the next arms on their thread, and reused ones still
 * fire and cancel exactly as new ones do. */
START_TEST(timer_memory_reused) {
  reset_counters();
  atomic_store(&churn_fires, 0);
  gt_runtime_t *rt = rt_up(1); /* one scheduler thread: one cache */
  gt_actor_t *a = get(rt, "churn");
  long n = 0;
  for (int round = 0; round < 2; round++) {
    tmsg_t *m = tmsg_new(M_CHURN);
    m->ms = 5;
    send_ok(a, m);
    n += 1 + CHURN_N / 2; /* the handler, then the odd timers firing */
    ck_assert_int_eq(latch_wait(n), n);
    ck_assert_int_eq(atomic_load(&churn_fires), (round + 1) * CHURN_N / 2);
    /* round 0 starts from an empty cache; round 1 takes all CHURN_N back */
    ck_assert_int_eq(atomic_load(&churn_cached_before), round ? CHURN_N : 0);
    ck_assert_int_eq(atomic_load(&churn_cached_after), 0);
    /* the timers' close callbacks run on a later loop turn: probe the cache, one message
     * (one loop turn) at a time, until all CHURN_N are back */
    atomic_store(&cached_probe, -1);
    for (int probe = 0; probe < 10000 && atomic_load(&cached_probe) != CHURN_N; probe++) {
      send_ok(a, tmsg_new(M_CACHED));
      ck_assert_int_eq(latch_wait(++n), n);
    }
    ck_assert_int_eq(atomic_load(&cached_probe), CHURN_N);
  }
  gt_actor_release(a);
  gt_runtime_stop(rt);
  gt_runtime_free(rt); /* the thread exits: its cache is freed (ASan: no leak) */
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(atomic_load(&churn_fires), CHURN_N);
  latch_fini();
}
END_TEST

static atomic_uintptr_t posted_thread;

static void record_thread(void *arg) {
  atomic_store(&posted_thread, (uintptr_t)pthread_self());
  latch_add(1);
}

START_TEST(post_runs_on_thread) {
  reset_counters();
  enum { N = 3 };
  gt_runtime_t *rt = rt_up(N);
  long n = 0;
  uintptr_t seen[N];
  for (int i = 0; i < N; i++) {
    char key[32];
    gt_actor_t *a = get_on(rt, i, key, sizeof(key));
    send_ok(a, tmsg_new(M_WHERE));
    ck_assert_int_eq(latch_wait(++n), n);
    ck_assert_int_eq(gt_runtime_post(rt, i, record_thread, NULL), 0);
    ck_assert_int_eq(latch_wait(++n), n);
    ck_assert(atomic_load(&posted_thread) == atomic_load(&where_thread));
    seen[i] = atomic_load(&posted_thread);
    for (int j = 0; j < i; j++)
      ck_assert(seen[j] != seen[i]);
    gt_actor_release(a);
  }
  ck_assert_int_eq(gt_runtime_post(rt, N, record_thread, NULL), GT_EINVAL);
  ck_assert_int_eq(gt_runtime_post(rt, -1, record_thread, NULL), GT_EINVAL);
  gt_runtime_stop(rt);
  ck_assert_int_eq(gt_runtime_post(rt, 0, record_thread, NULL), GT_ECLOSED);
  gt_actor_t *x;
  ck_assert_int_eq(gt_actor_get(rt, &test_type, "late", 4, NULL, &x),
                   GT_ECLOSED);
  gt_runtime_free(rt);
  latch_fini();
}
END_TEST

/* Fairness: with one thread blocked, A gets 10 batches of work and B one
 * message; when the thread resumes, B must run after A's first batch, not after
 * all of A. */
static uv_sem_t gate;

static void block_thread(void *arg) {
  if (arg != NULL)
    latch_add(1); /* the thread is now parked here, all earlier work done */
  uv_sem_wait(&gate);
}

static void flood_receive(gt_actor_t *self, gt_msg_t *msg) {
  size_t len;
  const char *key = gt_actor_key(self, &len);
  if (len == 1 && key[0] == 'A')
    gt_actor_set_gauge(self, 40 + (uint64_t)atomic_fetch_add(&flood_count, 1));
  else
    atomic_store(&flood_seen_by_b, atomic_load(&flood_count));
  latch_add(1);
  gt_msg_free(msg);
}

static const gt_actor_type_t flood_type = {
    .name = "flood", .size = sizeof(gt_actor_t), .receive = flood_receive};

START_TEST(batch_fairness) {
  enum { FLOOD = GT_ACTOR_BATCH * 10 };
  reset_counters();
  atomic_store(&flood_count, 0);
  atomic_store(&flood_seen_by_b, -1);
  ck_assert_int_eq(uv_sem_init(&gate, 0), 0);
  gt_runtime_t *rt = rt_up(1);
  ck_assert_int_eq(gt_runtime_post(rt, 0, block_thread, NULL), 0);
  gt_actor_t *a, *b;
  ck_assert_int_eq(gt_actor_get(rt, &flood_type, "A", 1, NULL, &a), 0);
  ck_assert_int_eq(gt_actor_get(rt, &flood_type, "B", 1, NULL, &b), 0);
  for (int i = 0; i < FLOOD; i++)
    send_ok(a, tmsg_new(M_FLOOD));
  send_ok(b, tmsg_new(M_FLOOD));
  uv_sem_post(&gate);
  ck_assert_int_eq(latch_wait(FLOOD + 1), FLOOD + 1);
  ck_assert_int_eq(atomic_load(&flood_seen_by_b), GT_ACTOR_BATCH);
  gt_actor_release(a);
  gt_actor_release(b);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  uv_sem_destroy(&gate);
  latch_fini();
}
END_TEST

typedef struct info_ctx {
  int found;
  uint32_t depth;
  uint64_t handled;
  uint64_t gauge_a, gauge_b;
  int thread;
} info_ctx_t;

static void collect(const gt_actor_info_t *info, void *arg) {
  info_ctx_t *c = arg;
  if (strcmp(info->key, "0102") == 0 && info->raw_keylen == 2 &&
      memcmp(info->raw_key, "\x01\x02", 2) == 0) {
    c->found += 100; /* binary keys are shown in hex, and given as they are */
    c->gauge_b = info->gauge;
  }
  if (strcmp(info->type_name, "flood") == 0 && strcmp(info->key, "A") == 0) {
    c->found++;
    c->depth = info->mailbox_depth;
    c->handled = info->messages_handled;
    c->gauge_a = info->gauge;
    c->thread = info->thread;
  }
}

START_TEST(foreach_reports_depth) {
  reset_counters();
  atomic_store(&flood_count, 0);
  ck_assert_int_eq(uv_sem_init(&gate, 0), 0);
  gt_runtime_t *rt = rt_up(1);
  gt_actor_t *a, *b;
  ck_assert_int_eq(gt_actor_get(rt, &flood_type, "A", 1, NULL, &a), 0);
  send_ok(a, tmsg_new(M_FLOOD));
  ck_assert_int_eq(latch_wait(1), 1);
  ck_assert_int_eq(gt_runtime_post(rt, 0, block_thread, "signal"), 0);
  ck_assert_int_eq(latch_wait(2), 2);
  for (int i = 0; i < 5; i++)
    send_ok(a, tmsg_new(M_FLOOD));
  ck_assert_int_eq(gt_actor_get(rt, &flood_type, "\x01\x02", 2, NULL, &b), 0);
  info_ctx_t c = {0};
  ck_assert_int_eq(gt_runtime_foreach(rt, collect, &c), 2);
  ck_assert_int_eq(c.found, 101);
  ck_assert_int_eq(c.depth, 5);
  ck_assert_int_eq(c.handled, 1);
  ck_assert_uint_eq(c.gauge_a, 40); /* set by its one receive (gt_actor_set_gauge) */
  ck_assert_uint_eq(c.gauge_b, 0);  /* never set */
  ck_assert_int_eq(c.thread, 0);
  uv_sem_post(&gate);
  ck_assert_int_eq(latch_wait(7), 7);
  gt_actor_release(a);
  gt_actor_release(b);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  uv_sem_destroy(&gate);
  latch_fini();
}
END_TEST

/* A scheduler thread held 250 ms by a post: its loop-lag timer fires that late, and the
 * lag histogram shows it; an idle loop's firings stay near zero. */
static void hold_thread(void *arg) { uv_sleep((unsigned)(uintptr_t)arg); }

START_TEST(loop_lag_shows_a_held_thread) {
  reset_counters();
  gt_runtime_t *rt = rt_up(2);
  gt_metrics_hist_t h0, h1;
  ck_assert_int_eq(gt_runtime_post(rt, 0, hold_thread, (void *)(uintptr_t)250), 0);
  /* the late firing is observed when the loop comes back: read until it shows */
  for (int i = 0; i < 300; i++) {
    gt_runtime_loop_lag(rt, 0, &h0);
    if (h0.sum_ns >= 150000000ull)
      break;
    uv_sleep(10);
  }
  ck_assert_uint_ge(h0.sum_ns, 150000000ull);
  uint64_t above_100ms = 0;
  for (unsigned i = 0; i <= GT_METRICS_NBOUNDS; i++)
    if (i == GT_METRICS_NBOUNDS || gt_metrics_bounds_s[i] > 0.1)
      above_100ms += h0.buckets[i];
  ck_assert_uint_ge(above_100ms, 1);
  gt_runtime_loop_lag(rt, 1, &h1); /* the other thread was not held */
  ck_assert_uint_ge(h1.count, 1);
  ck_assert_uint_lt(h1.sum_ns, 100000000ull);
  gt_runtime_stop(rt); /* the timers do not keep the loops alive */
  gt_runtime_free(rt);
}
END_TEST

/* A post that stops an actor out of turn (not from its receive). */
static gt_actor_t *to_stop;

static void stop_from_post(void *arg) { gt_actor_stop(to_stop); }

START_TEST(stop_out_of_turn) {
  reset_counters();
  gt_runtime_t *rt = rt_up(2);
  to_stop = get(rt, "victim");
  send_ok(to_stop, tmsg_new(M_WHERE));
  ck_assert_int_eq(latch_wait(1), 1);
  ck_assert_int_eq(
      gt_runtime_post(rt, gt_actor_thread(to_stop), stop_from_post, NULL), 0);
  ck_assert_int_eq(latch_wait(1000001), 1000001);
  tmsg_t *m = tmsg_new(M_DATA);
  ck_assert_int_eq(gt_actor_send(to_stop, &m->hdr), GT_ECLOSED);
  gt_msg_free(&m->hdr);
  gt_actor_release(to_stop);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&stops), 1);
  latch_fini();
}
END_TEST

/* An actor that embeds a uv handle and closes it in its stop hook: the runtime
 * must not free the struct before libuv's close callback (ASan would see it).
 */
typedef struct hactor {
  gt_actor_t base;
  uv_timer_t tick; /* embedded, as actors are told they may */
  int ticks;
} hactor_t;

static void on_tick(uv_timer_t *h) {
  hactor_t *a = h->data;
  if (++a->ticks == 3)
    latch_add(1);
}

static int h_start(gt_actor_t *self, void *arg) {
  hactor_t *a = (hactor_t *)self;
  uv_timer_init(gt_actor_loop(self), &a->tick);
  a->tick.data = a;
  uv_timer_start(&a->tick, on_tick, 1, 1);
  return 0;
}

static void h_receive(gt_actor_t *self, gt_msg_t *msg) {
  if (msg->type == M_STOP)
    gt_actor_stop(self);
  gt_msg_free(msg);
}

static atomic_int handles_closed;

static void h_closed(uv_handle_t *h) {
  hactor_t *a = h->data; /* inside the actor: ASan sees it if freed early */
  a->ticks = -1;
  atomic_fetch_add(&handles_closed, 1);
}

static void h_stop(gt_actor_t *self) {
  uv_close((uv_handle_t *)&((hactor_t *)self)->tick, h_closed);
  latch_add(1000000);
}

static const gt_actor_type_t handle_type = {.name = "handle",
                                            .size = sizeof(hactor_t),
                                            .start = h_start,
                                            .receive = h_receive,
                                            .stop = h_stop};

START_TEST(stop_hook_closes_embedded_handle) {
  reset_counters();
  gt_runtime_t *rt = rt_up(2);
  gt_actor_t *a, *b;
  ck_assert_int_eq(gt_actor_get(rt, &handle_type, "h1", 2, NULL, &a), 0);
  ck_assert_int_eq(gt_actor_get(rt, &handle_type, "h2", 2, NULL, &b), 0);
  ck_assert_int_eq(latch_wait(2), 2); /* both ticked 3 times */
  send_ok(a, tmsg_new(M_STOP));
  ck_assert_int_eq(latch_wait(1000002), 1000002);
  gt_actor_release(a); /* the last reference, dropped off the home thread */
  gt_actor_release(b); /* b is stopped by the runtime, handle still open */
  int saved, p[2];
  capture_begin(&saved, p);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_str_eq(capture_end(saved, p), ""); /* no RT-LOOP-BUSY etc. */
  ck_assert_int_eq(atomic_load(&handles_closed), 2);
  latch_fini();
}
END_TEST

/* Shutdown while actors are busy and timers are armed: every message is either
 * handled or freed, every start has its stop, every live actor got
 * GT_MSG_SHUTDOWN, and (ASan/LSan) nothing leaks, loops close cleanly. */
START_TEST(shutdown_busy_leaks_nothing) {
  enum { ACTORS = 16, MSGS = 1500, TIMERS = 5 };
  reset_counters();
  gt_runtime_t *rt = rt_up(4);
  gt_actor_t *as[ACTORS];
  long sent = 0;
  for (int i = 0; i < ACTORS; i++) {
    char key[16];
    snprintf(key, sizeof(key), "busy%d", i);
    as[i] = get(rt, key);
    for (int t = 0; t < TIMERS; t++) {
      tmsg_t *m = tmsg_new(M_ARM);
      m->ms = 60000; /* long: still armed at shutdown */
      send_ok(as[i], m);
      sent++;
    }
  }
  for (int n = 0; n < MSGS; n++) {
    for (int i = 0; i < ACTORS; i++) {
      tmsg_t *m = tmsg_new(M_DATA);
      m->seq = n;
      send_ok(as[i], m);
      sent++;
    }
  }
  /* Pings whose replies hold actor references inside the messages. */
  for (int i = 0; i < ACTORS; i++) {
    tmsg_t *m = tmsg_new(M_PING);
    m->reply = as[(i + 1) % ACTORS];
    gt_actor_retain(m->reply);
    send_ok(as[i], m);
    sent++;
  }
  for (int i = 0; i < ACTORS; i++)
    gt_actor_release(as[i]);
  int saved, p[2];
  capture_begin(&saved, p);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  /* no RT-DRAIN-TIMEOUT, RT-ACTOR-LEAK, RT-HANDLE-LEAK, RT-LOOP-BUSY */
  ck_assert_str_eq(capture_end(saved, p), "");
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(atomic_load(&starts), ACTORS);
  ck_assert_int_eq(atomic_load(&stops), ACTORS);
  ck_assert_int_eq(atomic_load(&shutdowns), ACTORS);
  ck_assert_int_eq(atomic_load(&timer_fires), 0);
  /* every test message (sent + pongs) was freed exactly once */
  ck_assert_int_eq(atomic_load(&msgs_freed), sent + atomic_load(&pongs));
  latch_fini();
}
END_TEST

START_TEST(runtime_unstarted_and_clocks) {
  gt_runtime_t *rt;
  ck_assert_int_eq(gt_runtime_new(&rt, -1), GT_EINVAL);
  ck_assert_int_eq(gt_runtime_new(&rt, 0), 0);
  ck_assert_int_ge(gt_runtime_threads(rt), 1);
  gt_runtime_free(rt);
  uint64_t t0 = gt_now_ms();
  int64_t w = gt_wall_ns();
  ck_assert_int_gt(w, (int64_t)1600000000 * 1000000000);
  ck_assert_uint_ge(gt_now_ms(), t0);
  gt_msg_free(NULL);
}
END_TEST

/* Two actors that bounce a message forever and ignore GT_MSG_SHUTDOWN: the
 * drain gives up after drain_ms, stops them anyway, and nothing leaks. */
START_TEST(shutdown_drain_timeout) {
  reset_counters();
  gt_runtime_t *rt = rt_up(2);
  rt->drain_ms = 100;
  gt_actor_t *a = get(rt, "ping"), *b = get(rt, "pong");
  tmsg_t *m = tmsg_new(M_BOUNCE);
  m->reply = b;
  send_ok(a, m); /* the message takes our reference to b */
  ck_assert_int_ge(latch_wait(1), 1);
  gt_actor_release(a);
  int saved, p[2];
  capture_begin(&saved, p);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  const char *out = capture_end(saved, p);
  ck_assert_ptr_nonnull(strstr(out, "WARN  RT-DRAIN-TIMEOUT"));
  ck_assert_ptr_null(strstr(out, "RT-ACTOR-LEAK"));
  ck_assert_int_eq(atomic_load(&stops), 2);
  ck_assert_int_eq(atomic_load(&msgs_freed), 1 + atomic_load(&pongs));
  latch_fini();
}
END_TEST

/* ---- redelivery (redeliver_on_stop) ---- */

/* A passivating actor: it stops itself after every p_every messages. Every
 * activation of a key runs on the key's home thread, one after another, so the
 * p_* state below is touched by one thread at a time (the test thread reads it
 * after gt_runtime_stop joined the scheduler threads). */
enum { P_SENDERS = 4 };

typedef struct pactor {
  gt_actor_t base;
  long count; /* messages this activation received */
} pactor_t;

static int p_arg_a, p_arg_b; /* activation args: only their addresses matter */
static long p_every;
static long p_last[P_SENDERS];
static long p_received, p_gaps;
static int p_echo_on_shutdown; /* on GT_MSG_SHUTDOWN: queue 10 to self, stop */
static atomic_int p_bad_arg, p_retries;

static void p_reset(long every) {
  reset_counters();
  p_every = every;
  for (int i = 0; i < P_SENDERS; i++)
    p_last[i] = -1;
  p_received = p_gaps = 0;
  p_echo_on_shutdown = 0;
  atomic_store(&p_bad_arg, 0);
  atomic_store(&p_retries, 0);
}

static int p_start(gt_actor_t *self, void *arg) {
  if (arg != &p_arg_a)
    atomic_fetch_add(&p_bad_arg, 1);
  atomic_fetch_add(&starts, 1);
  return 0;
}

static void p_stop(gt_actor_t *self) { atomic_fetch_add(&stops, 1); }

static void p_on_shutdown(gt_actor_t *self) {
  atomic_fetch_add(&shutdowns, 1);
  if (!p_echo_on_shutdown)
    return;
  for (int i = 0; i < 10; i++) {
    tmsg_t *m = tmsg_new(M_DATA);
    m->sender = 0;
    m->seq = 1000000 + i;
    if (gt_actor_send(self, &m->hdr) != 0)
      gt_msg_free(&m->hdr);
  }
  gt_actor_stop(self); /* stopping: these 10 must be freed, not redelivered */
}

static void p_receive(gt_actor_t *self, gt_msg_t *msg) {
  pactor_t *a = (pactor_t *)self;
  tmsg_t *m = (tmsg_t *)msg;
  if (msg->type == GT_MSG_SHUTDOWN) {
    p_on_shutdown(self);
  } else if (msg->type == M_DATA) {
    if (m->seq <= p_last[m->sender]) /* duplicate or out of order */
      atomic_fetch_add(&violations, 1);
    else if (m->seq != p_last[m->sender] + 1)
      p_gaps++;
    p_last[m->sender] = m->seq;
    p_received++;
    atomic_fetch_add(&handled, 1);
    if (++a->count > p_every) /* it stopped after p_every */
      atomic_fetch_add(&violations, 1);
    if (a->count == p_every)
      gt_actor_stop(self);
    latch_add(1);
  }
  gt_msg_free(msg);
}

static const gt_actor_type_t passive_type = {.name = "passive",
                                             .size = sizeof(pactor_t),
                                             .start = p_start,
                                             .receive = p_receive,
                                             .stop = p_stop,
                                             .redeliver_on_stop = 1};

typedef struct psender {
  gt_runtime_t *rt;
  int id;
  long count;     /* messages to send; < 0: until the runtime closes */
  int direct;     /* hold a reference and use gt_actor_send */
  long sent;      /* OUT: accepted */
  long discarded; /* OUT: refused (runtime closing) and freed here */
} psender_t;

/* gt_actor_send on a held reference: on GT_ECLOSED (that activation stopped),
 * take the next one and resend, as actor.h asks of direct senders. */
static int p_send_direct(psender_t *s, gt_actor_t **a, tmsg_t *m) {
  for (;;) {
    if (*a == NULL) {
      int rc = gt_actor_get(s->rt, &passive_type, "p", 1, &p_arg_a, a);
      if (rc != 0)
        return rc;
    }
    int rc = gt_actor_send(*a, &m->hdr);
    if (rc != GT_ECLOSED)
      return rc;
    atomic_fetch_add(&p_retries, 1);
    gt_actor_release(*a);
    *a = NULL;
  }
}

static void p_sender_main(void *arg) {
  psender_t *s = arg;
  gt_actor_t *a = NULL;
  for (long i = 0; s->count < 0 || i < s->count; i++) {
    tmsg_t *m = tmsg_new(M_DATA);
    m->sender = s->id;
    m->seq = i;
    int rc = s->direct ? p_send_direct(s, &a, m)
                       : gt_actor_send_key(s->rt, &passive_type, "p", 1,
                                           &p_arg_a, &m->hdr);
    if (rc != 0) {
      gt_msg_free(&m->hdr);
      s->discarded++;
      if (rc != GT_ECLOSED || s->count >= 0)
        atomic_fetch_add(&violations, 1); /* only closing may refuse */
      break;
    }
    s->sent++;
  }
  gt_actor_release(a);
}

static void p_run_senders(gt_runtime_t *rt, psender_t *ps, uv_thread_t *tid,
                          long count) {
  for (int i = 0; i < P_SENDERS; i++) {
    ps[i] = (psender_t){rt, i, count, i % 2, 0, 0};
    ck_assert_int_eq(uv_thread_create(&tid[i], p_sender_main, &ps[i]), 0);
  }
}

/* Four threads send numbered messages to one key whose actor stops itself
 * after every 7: each message is received exactly once, in per-sender order,
 * by ceil(total / 7) activations, each started with the first one's arg; the
 * shutdown frees the rest. */
START_TEST(redeliver_across_activations) {
  enum { COUNT = 5000, EVERY = 7, TOTAL = P_SENDERS * COUNT };
  p_reset(EVERY);
  gt_runtime_t *rt = rt_up(4);
  psender_t ps[P_SENDERS];
  uv_thread_t tid[P_SENDERS];
  p_run_senders(rt, ps, tid, COUNT);
  for (int i = 0; i < P_SENDERS; i++)
    uv_thread_join(&tid[i]);
  ck_assert_int_eq(latch_wait(TOTAL), TOTAL);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(p_received, TOTAL);
  ck_assert_int_eq(p_gaps, 0);
  for (int i = 0; i < P_SENDERS; i++) {
    ck_assert_int_eq(ps[i].sent, COUNT);
    ck_assert_int_eq(p_last[i], COUNT - 1);
  }
  ck_assert_int_eq(atomic_load(&starts), (TOTAL + EVERY - 1) / EVERY);
  ck_assert_int_eq(atomic_load(&stops), atomic_load(&starts));
  ck_assert_int_eq(atomic_load(&p_bad_arg), 0);
  ck_assert_int_eq(atomic_load(&msgs_freed), TOTAL);
  latch_fini();
}
END_TEST

/* Messages queued behind the stop re-activate the key at once, with the arg
 * the first activation got (not a later caller's), and come before anything
 * sent to the new activation; a send to the stopped activation fails with
 * GT_ECLOSED and keeps its message. One thread, parked twice (gate), makes the
 * interleaving deterministic: the late message is in the new activation's own
 * mailbox before it runs. */
START_TEST(redeliver_queued_reactivates) {
  enum { EVERY = 10, EXTRA = 5 };
  p_reset(EVERY);
  ck_assert_int_eq(uv_sem_init(&gate, 0), 0);
  gt_runtime_t *rt = rt_up(1);
  ck_assert_int_eq(gt_runtime_post(rt, 0, block_thread, NULL), 0);
  gt_actor_t *a;
  ck_assert_int_eq(gt_actor_get(rt, &passive_type, "p", 1, &p_arg_a, &a), 0);
  for (int i = 0; i < EVERY + EXTRA; i++) {
    tmsg_t *m = tmsg_new(M_DATA);
    m->seq = i;
    send_ok(a, m);
  }
  /* Runs after the first activation's turn, before its successor's. */
  ck_assert_int_eq(gt_runtime_post(rt, 0, block_thread, &gate), 0);
  uv_sem_post(&gate);
  ck_assert_int_eq(latch_wait(EVERY + 1), EVERY + 1); /* +1: parked again */
  tmsg_t *late = tmsg_new(M_DATA);
  late->seq = EVERY + EXTRA;
  ck_assert_int_eq(gt_actor_send(a, &late->hdr), GT_ECLOSED);
  gt_actor_release(a);
  ck_assert_int_eq(atomic_load(&starts), 1); /* the successor has not run */
  ck_assert_int_eq(
      gt_actor_send_key(rt, &passive_type, "p", 1, &p_arg_b, &late->hdr), 0);
  uv_sem_post(&gate);
  ck_assert_int_eq(latch_wait(EVERY + EXTRA + 2), EVERY + EXTRA + 2);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0); /* 10..14 before 15 */
  ck_assert_int_eq(p_gaps, 0);
  ck_assert_int_eq(p_last[0], EVERY + EXTRA);
  ck_assert_int_eq(p_received, EVERY + EXTRA + 1);
  ck_assert_int_eq(atomic_load(&starts), 2);
  ck_assert_int_eq(atomic_load(&stops), 2);
  ck_assert_int_eq(atomic_load(&p_bad_arg), 0);
  ck_assert_int_eq(atomic_load(&msgs_freed), EVERY + EXTRA + 1);
  uv_sem_destroy(&gate);
  latch_fini();
}
END_TEST

/* During gt_runtime_stop a redelivering stop frees what is queued: the actor
 * queues 10 messages to itself on GT_MSG_SHUTDOWN and stops; no activation
 * follows and all 10 are freed unhandled. */
START_TEST(redeliver_not_during_shutdown) {
  p_reset(1000);
  p_echo_on_shutdown = 1;
  gt_runtime_t *rt = rt_up(2);
  tmsg_t *m = tmsg_new(M_DATA);
  ck_assert_int_eq(
      gt_actor_send_key(rt, &passive_type, "p", 1, &p_arg_a, &m->hdr), 0);
  ck_assert_int_eq(latch_wait(1), 1);
  gt_runtime_stop(rt);
  gt_runtime_free(rt);
  ck_assert_int_eq(atomic_load(&violations), 0);
  ck_assert_int_eq(atomic_load(&shutdowns), 1);
  ck_assert_int_eq(p_received, 1);
  ck_assert_int_eq(atomic_load(&starts), 1);
  ck_assert_int_eq(atomic_load(&stops), 1);
  ck_assert_int_eq(atomic_load(&msgs_freed), 11);
  latch_fini();
}
END_TEST

/* Senders keep sending while the runtime stops (activations come and go until
 * closing refuses them): nothing is received twice or out of order, every
 * start has its stop, every message is freed once, and nothing leaks. */
START_TEST(redeliver_shutdown_under_load) {
  p_reset(5);
  gt_runtime_t *rt = rt_up(3);
  rt->drain_ms = 50; /* the senders never let the drain go quiet */
  psender_t ps[P_SENDERS];
  uv_thread_t tid[P_SENDERS];
  p_run_senders(rt, ps, tid, -1);
  ck_assert_int_ge(latch_wait(2000), 2000);
  int saved, p[2];
  capture_begin(&saved, p);
  gt_runtime_stop(rt);
  for (int i = 0; i < P_SENDERS; i++)
    uv_thread_join(&tid[i]);
  const char *out = capture_end(saved, p);
  gt_runtime_free(rt);
  ck_assert_ptr_null(strstr(out, "RT-ACTOR-LEAK"));
  ck_assert_ptr_null(strstr(out, "RT-REDELIVER"));
  ck_assert_int_eq(atomic_load(&violations), 0);
  long made = 0;
  for (int i = 0; i < P_SENDERS; i++) {
    ck_assert_int_eq(ps[i].discarded, 1); /* each ended on GT_ECLOSED */
    made += ps[i].sent + ps[i].discarded;
  }
  ck_assert_int_eq(atomic_load(&stops), atomic_load(&starts));
  ck_assert_int_eq(atomic_load(&msgs_freed), made);
  ck_assert_int_le(p_received, made);
  latch_fini();
}
END_TEST

static Suite *runtime_suite(void) {
  Suite *s = suite_create("runtime");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, err_names_and_texts);
  tcase_add_test(tc, wake_loses_nothing_and_merges);
  tcase_add_test(tc, wake_send_right_after_callback);
  tcase_add_test(tc, wake_more_loses_nothing);
  tcase_add_test(tc, log_parse);
  tcase_add_test(tc, log_text_line);
  tcase_add_test(tc, log_json_line);
  tcase_add_test(tc, runtime_unstarted_and_clocks);
  tcase_add_test(tc, fifo_per_sender);
  tcase_add_test(tc, cross_thread_reply);
  tcase_add_test(tc, activation_by_key);
  tcase_add_test(tc, start_failure_frees_messages);
  tcase_add_test(tc, timer_fires_with_token);
  tcase_add_test(tc, timer_cancel_prevents_delivery);
  tcase_add_test(tc, timer_memory_reused);
  tcase_add_test(tc, post_runs_on_thread);
  tcase_add_test(tc, batch_fairness);
  tcase_add_test(tc, foreach_reports_depth);
  tcase_add_test(tc, loop_lag_shows_a_held_thread);
  tcase_add_test(tc, stop_out_of_turn);
  tcase_add_test(tc, stop_hook_closes_embedded_handle);
  tcase_add_test(tc, shutdown_busy_leaks_nothing);
  tcase_add_test(tc, shutdown_drain_timeout);
  tcase_add_test(tc, redeliver_across_activations);
  tcase_add_test(tc, redeliver_queued_reactivates);
  tcase_add_test(tc, redeliver_not_during_shutdown);
  tcase_add_test(tc, redeliver_shutdown_under_load);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(runtime_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
