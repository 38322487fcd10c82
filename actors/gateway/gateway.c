/*
 * gateway.c: the gateway's thread and loop, the listener, the reply queue, the call
 * accessors, and the stop sequence. Connections and HTTP/2 live in h2conn.c.
 *
 * DESIGN
 *   gt_gateway_start binds and listens on the caller's thread (so a taken port is reported
 *   synchronously), then runs the loop on a new thread. Handlers reply from any thread:
 *   gt_gateway_reply builds the response (framing, gzip, encodings) on the replier's
 *   thread, pushes the call onto the reply queue under its mutex and wakes the loop with
 *   gt_wake_send (runtime/wake.h); the loop drains the whole queue per wakeup. gt_gateway_reply_owned
 *   takes the replier's malloc'd body instead of copying it: the response keeps it
 *   behind a separate 5-byte prefix (gt__resp_t.split) and the loop frees it. A mutex-protected FIFO is
 *   enough: the gateway thread is not an actor and the critical sections are a few
 *   pointer writes.
 *   Stop (on the loop, woken by the same wake): close the listener; drain the queue;
 *   then, under the queue mutex, close the queue and detach every call still out with the
 *   handler (its stream will be answered UNAVAILABLE); then drain each connection (answer
 *   open streams UNAVAILABLE, GOAWAY, write, shut down, close). A grace timer cuts
 *   connections whose peer does not read. The HTTP/1.1 port (http1.c) is closed at the
 *   same time as the gRPC listener: its listener, sweep timer and connections are closed
 *   at once (an unfinished scrape is cut). The loop ends when every handle is closed.
 *   See gateway_int.h, OWNERSHIP, for who frees calls.
 *   Metrics: a call's hand-off time is taken in gt__gw_dispatch and its reply is counted
 *   when the loop delivers it (deliver), both on the loop: plain integers, no lock.
 *
 * INVARIANTS
 *   - q->wake is only signalled while q->open, under q->mu; the loop closes the wake
 *     only after setting open = 0 under q->mu, so no signal can hit a closed one.
 *   - A call is on gw->live from hand-off until its reply is drained or it is detached at
 *     stop; only the loop touches gw->live and call->stream.
 *
 * THREADS
 *   new/start/stop/free: the owner thread. Loop callbacks: the gateway thread.
 *   gt_gateway_reply and gt_gateway_call_*: any thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "actors/gateway/gateway_int.h"
#include "runtime/actor.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* gt_now_ms() is uv_hrtime() in milliseconds: deadlines share the runtime clock. */
uint64_t gt__gw_now_ms(void) { return gt_now_ms(); }

/* ---- the loop's pool ----
 * Block layout: a 16-byte header {class, size or next-spare} then the caller's bytes
 * (16-byte aligned, like malloc's). Class GT__POOL_CLASSES marks a block too large for
 * the classes: plain malloc with the same header. Spare blocks are ASan-poisoned so a
 * use after free still shows in the sanitizer build. */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct pool_hdr {
  _Alignas(16) uint32_t cls;
  union {
    size_t size;            /* in use: the size asked for */
    struct pool_hdr *next;  /* spare */
  } u;
} pool_hdr_t;

static size_t class_size(unsigned cls) { return (size_t)32 << cls; }

/* The smallest class holding n bytes (GT__POOL_CLASSES: none), from the bit length of
 * n - 1: nghttp2 allocates ~7 blocks a request, and the former loop over the classes
 * cost ~12 instructions a call more (callgrind). */
static unsigned class_of(size_t n) {
  if (n <= class_size(0))
    return 0;
  unsigned bits = (unsigned)(64 - __builtin_clzll((unsigned long long)(n - 1)));
  unsigned cls = bits - 5; /* class_size(0) is 1 << 5 */
  return cls < GT__POOL_CLASSES ? cls : GT__POOL_CLASSES;
}

static inline void *pool_malloc(gt__pool_t *p, size_t n) {
  unsigned cls = class_of(n);
  pool_hdr_t *h;
  if (cls < GT__POOL_CLASSES && p->spare[cls] != NULL) {
    h = p->spare[cls];
    UNPOISON(h + 1, class_size(cls));
    p->spare[cls] = h->u.next;
    p->nspare[cls]--;
  } else {
    if (n > SIZE_MAX - sizeof *h)
      return NULL;
    h = malloc(sizeof *h + (cls < GT__POOL_CLASSES ? class_size(cls) : n));
    if (h == NULL)
      return NULL;
    h->cls = cls;
  }
  h->u.size = n;
  return h + 1;
}

void *gt__pool_malloc(gt__pool_t *p, size_t n) { return pool_malloc(p, n); }

void *gt__pool_calloc(gt__pool_t *p, size_t nmemb, size_t n) {
  if (n != 0 && nmemb > SIZE_MAX / n)
    return NULL;
  void *ptr = gt__pool_malloc(p, nmemb * n);
  if (ptr != NULL)
    memset(ptr, 0, nmemb * n);
  return ptr;
}

static inline void pool_free(gt__pool_t *p, void *ptr) {
  if (ptr == NULL)
    return;
  pool_hdr_t *h = (pool_hdr_t *)ptr - 1;
  unsigned cls = h->cls;
  if (cls >= GT__POOL_CLASSES || p->nspare[cls] >= GT__POOL_KEEP / class_size(cls)) {
    free(h);
    return;
  }
  h->u.next = p->spare[cls];
  p->spare[cls] = h;
  p->nspare[cls]++;
  POISON(ptr, class_size(cls));
}

void gt__pool_free(gt__pool_t *p, void *ptr) { pool_free(p, ptr); }

void *gt__pool_realloc(gt__pool_t *p, void *ptr, size_t n) {
  if (ptr == NULL)
    return gt__pool_malloc(p, n);
  pool_hdr_t *h = (pool_hdr_t *)ptr - 1;
  if (h->cls < GT__POOL_CLASSES && n <= class_size(h->cls)) {
    h->u.size = n; /* still fits its block */
    return ptr;
  }
  void *np = gt__pool_malloc(p, n);
  if (np == NULL)
    return NULL;
  memcpy(np, ptr, h->u.size < n ? h->u.size : n);
  gt__pool_free(p, ptr);
  return np;
}

/* nghttp2's allocator: here, so that the pool's two hot functions inline into it
 * (nghttp2 calls them ~18 times a request, most often to free NULL). */
static void *ng_malloc(size_t n, void *ud) { return pool_malloc(ud, n); }
static void ng_free(void *ptr, void *ud) {
  if (ptr != NULL)
    pool_free(ud, ptr);
}
static void *ng_calloc(size_t nmemb, size_t n, void *ud) {
  return gt__pool_calloc(ud, nmemb, n);
}
static void *ng_realloc(void *ptr, size_t n, void *ud) {
  return gt__pool_realloc(ud, ptr, n);
}

nghttp2_mem gt__pool_nghttp2_mem(gt__pool_t *p) {
  return (nghttp2_mem){p, ng_malloc, ng_free, ng_calloc, ng_realloc};
}

void gt__pool_fini(gt__pool_t *p) {
  for (unsigned cls = 0; cls < GT__POOL_CLASSES; cls++) {
    while (p->spare[cls] != NULL) {
      pool_hdr_t *h = p->spare[cls];
      UNPOISON(h + 1, class_size(cls));
      p->spare[cls] = h->u.next;
      free(h);
    }
    p->nspare[cls] = 0;
  }
}

/* ---- reply queue ---- */

static gt__replyq_t *replyq_new(void) {
  gt__replyq_t *q = calloc(1, sizeof *q);
  if (q == NULL)
    return NULL;
  if (uv_mutex_init(&q->mu) != 0) {
    free(q);
    return NULL;
  }
  atomic_init(&q->refs, 1);
  return q;
}

static void replyq_unref(gt__replyq_t *q) {
  /* acq_rel: the last owner must see every write made under other references. */
  if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) == 1) {
    uv_mutex_destroy(&q->mu);
    free(q);
  }
}

static void call_destroy(gt_gateway_call_t *call) {
  free(call->method);
  free(call->body);
  gt__hdrs_free(&call->hdrs);
  gt__resp_clear(&call->resp);
  free(call);
}

/* Any thread (the gateway has stopped, or the loop). */
static void call_free(gt_gateway_call_t *call) {
  gt__replyq_t *q = call->q;
  call_destroy(call);
  replyq_unref(q);
}

/* Loop thread: keeps the call and its buffers for the next request. */
static void call_recycle(gt_gateway_t *gw, gt_gateway_call_t *call) {
  gt__replyq_t *q = call->q;
  gt__resp_clear(&call->resp);
  if (gw->nspare_calls >= GT__GW_SPARE_MAX || call->body_cap > GT__GW_KEEP_BUF ||
      call->hdrs.cap > GT__GW_KEEP_BUF || call->method_cap > GT__GW_KEEP_BUF) {
    call_destroy(call);
  } else {
    call->live_next = gw->spare_calls;
    gw->spare_calls = call;
    gw->nspare_calls++;
  }
  replyq_unref(q);
}

/* A recycled call with its buffers (emptied), or a new one. NULL on ENOMEM. */
static gt_gateway_call_t *call_get(gt_gateway_t *gw) {
  gt_gateway_call_t *call = gw->spare_calls;
  if (call == NULL)
    return calloc(1, sizeof *call);
  gw->spare_calls = call->live_next;
  gw->nspare_calls--;
  char *method = call->method;
  uint8_t *body = call->body;
  size_t method_cap = call->method_cap, body_cap = call->body_cap;
  gt__hdrs_t hdrs = call->hdrs;
  memset(call, 0, sizeof *call);
  call->method = method;
  call->method_cap = method_cap;
  call->body = body;
  call->body_cap = body_cap;
  call->hdrs = hdrs;
  call->hdrs.len = 0;
  return call;
}

/* Loop thread, after the loop ended: frees what the loop kept for reuse. */
static void spares_free(gt_gateway_t *gw) {
  while (gw->spare_calls != NULL) {
    gt_gateway_call_t *call = gw->spare_calls;
    gw->spare_calls = call->live_next;
    call_destroy(call);
  }
  gw->nspare_calls = 0;
  gt__conn_spares_free(gw);
  gt__gzip_end(&gw->zinflate);
  gt__pool_fini(&gw->pool);
}

/* ---- calls ---- */

static void live_remove(gt_gateway_t *gw, gt_gateway_call_t *call) {
  if (call->live_prev)
    call->live_prev->live_next = call->live_next;
  else
    gw->live = call->live_next;
  if (call->live_next)
    call->live_next->live_prev = call->live_prev;
  call->live_prev = call->live_next = NULL;
}

#define SWAP(T, a, b) do { T tmp_ = (a); (a) = (b); (b) = tmp_; } while (0)

void gt__gw_dispatch(gt_gateway_t *gw, gt__stream_t *s, uint64_t deadline_ms) {
  gt_gateway_call_t *call = call_get(gw);
  if (call == NULL) {
    gt__resp_t r = {.status = GT_GRPC_RESOURCE_EXHAUSTED};
    gt_log_error("GW-NOMEM", "gateway: out of memory for a call on %s", s->path);
    gt__stream_respond(s, &r);
    return;
  }
  call->q = gw->q;
  atomic_fetch_add_explicit(&gw->q->refs, 1, memory_order_relaxed);
  call->gw = gw;
  /* The request's buffers go to the call; the stream gets the call's (empty) ones. */
  SWAP(char *, call->method, s->path);
  SWAP(size_t, call->method_cap, s->path_cap);
  SWAP(gt__hdrs_t, call->hdrs, s->hdrs);
  SWAP(uint8_t *, call->body, s->body);
  SWAP(size_t, call->body_cap, s->cap);
  s->hdrs.len = 0;
  call->len = s->len - 5;
  call->deadline_ms = deadline_ms;
  call->accept_at = s->h_accept;
  call->op = -1;
  call->t0_ns = gw->ops != NULL ? uv_hrtime() : 0;
  atomic_init(&call->cancelled, 0);
  call->stream = s;
  s->call = call;
  s->state = GT__ST_CALL;
  call->live_next = gw->live;
  if (gw->live)
    gw->live->live_prev = call;
  gw->live = call;
  gw->handler(gw->handler_ctx, call, call->method,
              call->len ? call->body : (const uint8_t *)"", call->len);
}

/* Sends a drained reply (if its stream still listens) and frees the call. */
static void deliver(gt_gateway_t *gw, gt_gateway_call_t *call) {
  live_remove(gw, call);
  if (call->op >= 0)
    gt__gw_count_reply(gw, call, call->resp.status);
  gt__stream_t *s = call->stream;
  if (s != NULL) {
    s->call = NULL;
    call->stream = NULL;
    gt__stream_respond(s, &call->resp);
  }
  call_recycle(gw, call);
}

static gt_gateway_call_t *queue_take(gt__replyq_t *q) {
  uv_mutex_lock(&q->mu);
  gt_gateway_call_t *list = q->head;
  q->head = q->tail = NULL;
  uv_mutex_unlock(&q->mu);
  return list;
}

static void deliver_list(gt_gateway_t *gw, gt_gateway_call_t *list) {
  while (list != NULL) {
    gt_gateway_call_t *next = list->qnext;
    deliver(gw, list);
    list = next;
  }
  gt__conn_flush_dirty(gw);
}

/* ---- stop ---- */

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void on_grace(uv_timer_t *t) {
  gt_gateway_t *gw = t->data;
  gt_log_warn("GW-STOP-CUT", "gateway: cutting connections that did not drain");
  for (gt__conn_t *c = gw->conns; c != NULL; c = c->next)
    gt__conn_close(c);
}

void gt__gw_conn_gone(gt_gateway_t *gw) {
  if (gw->stopping && gw->conns == NULL && !uv_is_closing((uv_handle_t *)&gw->grace))
    uv_close((uv_handle_t *)&gw->grace, on_handle_closed);
}

/* Closes the queue and detaches every call still out with the handler. */
static void close_queue(gt_gateway_t *gw) {
  gt__replyq_t *q = gw->q;
  uv_mutex_lock(&q->mu);
  q->open = 0;
  q->wake = NULL;
  gt_gateway_call_t *list = q->head;
  q->head = q->tail = NULL;
  gt_gateway_call_t *call = gw->live;
  while (call != NULL) {
    gt_gateway_call_t *next = call->live_next;
    if (!call->queued) {
      /* The handler still owns its reply: after unlock the call may be freed by it at
       * any moment, so we let go of it here. Its stream (left without a call) is
       * answered UNAVAILABLE by gt__conn_drain. */
      atomic_store_explicit(&call->cancelled, 1, memory_order_relaxed);
      if (call->stream != NULL)
        call->stream->call = NULL;
      call->stream = NULL;
      live_remove(gw, call);
    }
    call = next;
  }
  uv_mutex_unlock(&q->mu);
  deliver_list(gw, list);
}

static void begin_stop(gt_gateway_t *gw) {
  gw->stopping = 1;
  uv_close((uv_handle_t *)&gw->listener, on_handle_closed);
  gt__http1_stop(gw);
  deliver_list(gw, queue_take(gw->q));
  close_queue(gw);
  gt_wake_close(&gw->wake, NULL);
  uv_timer_init(&gw->loop, &gw->grace);
  gw->grace.data = gw;
  uv_timer_start(&gw->grace, on_grace, GT__GW_STOP_GRACE_MS, 0);
  gt__conn_t *c = gw->conns;
  while (c != NULL) {
    gt__conn_t *next = c->next;
    gt__conn_drain(c);
    c = next;
  }
  gt__gw_conn_gone(gw);
}

/* The wake's `more` hook: replies queued since the callback last took the queue. */
static int replies_queued(gt_wake_t *a) {
  gt_gateway_t *gw = a->data;
  if (gw->stopping)
    return 0;
  uv_mutex_lock(&gw->q->mu);
  int queued = gw->q->head != NULL;
  uv_mutex_unlock(&gw->q->mu);
  return queued;
}

static void on_wake(gt_wake_t *a) {
  gt_gateway_t *gw = a->data;
  if (gw->stopping)
    return;
  /* Replies that arrive while these are written out are taken too (a few rounds, then
   * the sockets get their turn): they cost their repliers no wake-up (wake.h). */
  gt_gateway_call_t *list;
  for (int round = 0; round < GT__GW_WAKE_ROUNDS && (list = queue_take(gw->q)) != NULL;
       round++)
    deliver_list(gw, list);
  /* acquire: pairs with the release store in gt_gateway_stop. */
  if (atomic_load_explicit(&gw->stop_requested, memory_order_acquire))
    begin_stop(gw);
}

/* ---- thread, listener ---- */

static void on_connection(uv_stream_t *server, int status) {
  gt_gateway_t *gw = server->data;
  if (status < 0) {
    gt_log_warn("GW-ACCEPT", "gateway: accept failed: %s", uv_strerror(status));
    return;
  }
  gt__conn_accept(gw);
}

static void loop_main(void *arg) {
  gt_gateway_t *gw = arg;
  pthread_setname_np(pthread_self(), "gt-gateway");
  uv_run(&gw->loop, UV_RUN_DEFAULT);
  int rv = uv_loop_close(&gw->loop);
  if (rv != 0)
    gt_log_error("GW-LOOP-CLOSE", "gateway: loop did not close: %s", uv_strerror(rv));
  spares_free(gw);
}

int gt_gateway_new(gt_gateway_t **out, const gt_gateway_config_t *cfg) {
  if (out == NULL || cfg == NULL || cfg->handler == NULL || cfg->ip == NULL ||
      cfg->port < 0 || cfg->port > 65535)
    return GT_EINVAL;
  if (cfg->http_port < GT_GATEWAY_PORT_ANY || cfg->http_port > 65535 || cfg->n_ops < 0 ||
      (cfg->n_ops > 0 && cfg->op_names == NULL))
    return GT_EINVAL;
  gt_gateway_t *gw = calloc(1, sizeof *gw);
  if (gw == NULL)
    return GT_ENOMEM;
  gw->ip = strdup(cfg->ip);
  gw->q = replyq_new();
  if (cfg->n_ops > 0)
    gw->ops = calloc((size_t)cfg->n_ops, sizeof *gw->ops);
  if (gw->ip == NULL || gw->q == NULL || (cfg->n_ops > 0 && gw->ops == NULL)) {
    free(gw->ip);
    free(gw->ops);
    if (gw->q)
      replyq_unref(gw->q);
    free(gw);
    return GT_ENOMEM;
  }
  gw->op_names = cfg->op_names;
  gw->n_ops = gw->ops != NULL ? cfg->n_ops : 0;
  gw->metrics_fn = cfg->metrics_fn;
  gw->metrics_ctx = cfg->metrics_ctx;
  gw->http_port = cfg->http_port;
  gw->port = cfg->port;
  gw->max_recv = cfg->max_recv_bytes ? cfg->max_recv_bytes : GT__GW_DEFAULT_MAX_RECV;
  gw->handler = cfg->handler;
  gw->handler_ctx = cfg->handler_ctx;
  atomic_init(&gw->stop_requested, 0);
  *out = gw;
  return 0;
}

/* Binds and listens. 0 or a libuv error. */
static int listen_on(gt_gateway_t *gw) {
  struct sockaddr_storage ss;
  int rv = strchr(gw->ip, ':')
               ? uv_ip6_addr(gw->ip, gw->port, (struct sockaddr_in6 *)&ss)
               : uv_ip4_addr(gw->ip, gw->port, (struct sockaddr_in *)&ss);
  if (rv == 0)
    rv = uv_tcp_bind(&gw->listener, (const struct sockaddr *)&ss, 0);
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)&gw->listener, 511, on_connection);
  if (rv == 0) {
    int n = sizeof ss;
    rv = uv_tcp_getsockname(&gw->listener, (struct sockaddr *)&ss, &n);
    if (rv == 0)
      gw->port = ntohs(ss.ss_family == AF_INET6
                           ? ((struct sockaddr_in6 *)&ss)->sin6_port
                           : ((struct sockaddr_in *)&ss)->sin_port);
  }
  return rv;
}

int gt_gateway_start(gt_gateway_t *gw) {
  GT_ASSERT(!gw->started);
  int rv = uv_loop_init(&gw->loop);
  if (rv != 0) {
    gt_log_error("GW-START", "gateway: loop init: %s", uv_strerror(rv));
    return GT_EIO;
  }
  uv_tcp_init(&gw->loop, &gw->listener);
  gw->listener.data = gw;
  if (gt_wake_init(&gw->loop, &gw->wake, on_wake) != 0) {
    gt_log_error("GW-START", "gateway: no eventfd for the reply queue");
    uv_close((uv_handle_t *)&gw->listener, NULL);
    uv_run(&gw->loop, UV_RUN_DEFAULT);
    uv_loop_close(&gw->loop);
    return GT_EIO;
  }
  gw->wake.data = gw;
  gt_wake_set_more(&gw->wake, replies_queued);
  rv = listen_on(gw);
  if (rv != 0) {
    gt_log_error("GW-LISTEN-FAIL", "gateway: cannot listen on %s:%d: %s", gw->ip,
                 gw->port, uv_strerror(rv));
  } else if (gw->http_port != 0) {
    int want = gw->http_port;
    rv = gt__http1_listen(gw);
    if (rv != 0)
      gt_log_error("GW-HTTP-LISTEN-FAIL", "gateway: cannot listen for HTTP on %s:%d: %s",
                   gw->ip, want, uv_strerror(rv));
  }
  if (rv == 0) {
    gw->q->open = 1;
    gw->q->wake = &gw->wake;
    rv = uv_thread_create(&gw->thread, loop_main, gw);
    if (rv != 0) {
      gw->q->open = 0;
      gt_log_error("GW-START", "gateway: thread: %s", uv_strerror(rv));
    }
  }
  if (rv != 0) {
    gt__http1_stop(gw);
    uv_close((uv_handle_t *)&gw->listener, NULL);
    gt_wake_close(&gw->wake, NULL);
    uv_run(&gw->loop, UV_RUN_DEFAULT);
    uv_loop_close(&gw->loop);
    return GT_EIO;
  }
  gw->started = 1;
  gt_log_info("GW-LISTEN", "gateway: gRPC listening on %s:%d", gw->ip, gw->port);
  if (gw->http_port != 0)
    gt_log_info("GW-HTTP-LISTEN", "gateway: HTTP (/health, /metrics) listening on %s:%d",
                gw->ip, gw->http_port);
  return 0;
}

int gt_gateway_port(gt_gateway_t *gw) { return gw->port; }

int gt_gateway_http_port(gt_gateway_t *gw) {
  return gw->started && gw->http_port > 0 ? gw->http_port : 0;
}

void gt_gateway_stop(gt_gateway_t *gw) {
  if (!gw->started || gw->stopped)
    return;
  gw->stopped = 1;
  atomic_store_explicit(&gw->stop_requested, 1, memory_order_release);
  uv_mutex_lock(&gw->q->mu);
  if (gw->q->open) /* see INVARIANTS: the wake is only touched while open */
    gt_wake_send(gw->q->wake);
  uv_mutex_unlock(&gw->q->mu);
  uv_thread_join(&gw->thread);
  gt_log_info("GW-STOPPED", "gateway: stopped");
}

void gt_gateway_free(gt_gateway_t *gw) {
  if (gw == NULL)
    return;
  gt_gateway_stop(gw);
  free(gw->ip);
  free(gw->ops);
  replyq_unref(gw->q);
  free(gw);
}

/* ---- calls: any thread ---- */

uint64_t gt_gateway_call_deadline(const gt_gateway_call_t *call) {
  return call->deadline_ms;
}

const char *gt_gateway_call_header(const gt_gateway_call_t *call, const char *name) {
  return gt__hdrs_get(&call->hdrs, name);
}

void gt_gateway_call_set_op(gt_gateway_call_t *call, int op) {
  gt_gateway_t *gw = call->gw;
  GT_ASSERT(call->op < 0);
  if (op < 0 || op >= gw->n_ops)
    return;
  call->op = op;
  gw->ops[op].requests++;
}

int gt_gateway_call_cancelled(const gt_gateway_call_t *call) {
  return atomic_load_explicit(&((gt_gateway_call_t *)call)->cancelled,
                              memory_order_relaxed);
}

/* Hands a call whose call->resp is built to the loop (or frees it: stopped). */
static void reply_push(gt_gateway_call_t *call) {
  gt__replyq_t *q = call->q;
  /* The request body stays: the loop recycles its buffer with the call. */
  uv_mutex_lock(&q->mu);
  if (q->open) {
    call->queued = 1;
    if (q->tail)
      q->tail->qnext = call;
    else
      q->head = call;
    q->tail = call;
    gt_wake_send(q->wake);
    uv_mutex_unlock(&q->mu);
    return;
  }
  uv_mutex_unlock(&q->mu);
  call_free(call); /* the gateway has stopped and let go of this call */
}

/* The client takes gzip replies (its grpc-accept-encoding names gzip). The replier's
 * thread: the headers are immutable from hand-off to reply. */
static int call_accepts_gzip(const gt_gateway_call_t *call) {
  return call->accept_at != 0 && strstr(call->hdrs.buf + call->accept_at - 1, "gzip");
}

/* Hands a reply built with result build_rc (0, or out of memory) to the loop thread. */
static void push_built(gt_gateway_call_t *call, int build_rc) {
  if (build_rc != 0)
    gt_log_error("GW-NOMEM", "gateway: out of memory building a reply for %s",
                 call->method);
  reply_push(call);
}

void gt_gateway_reply(gt_gateway_call_t *call, int status, const char *message,
                      const uint8_t *body, size_t len, const uint8_t *details,
                      size_t details_len) {
  push_built(call, gt__resp_build(&call->resp, status, message, body, len, details,
                                  details_len, call_accepts_gzip(call)));
}

void gt_gateway_reply_owned(gt_gateway_call_t *call, int status, const char *message,
                            uint8_t *body, size_t len, const uint8_t *details,
                            size_t details_len) {
  push_built(call, gt__resp_build_owned(&call->resp, status, message, body, len, details,
                                        details_len, call_accepts_gzip(call)));
}
