/*
 * pg_conn.c: one PostgreSQL connection driven by a uv loop with libpq's non-blocking API
 * in pipeline mode.
 *
 * DESIGN
 *   Connect: PQconnectStartParams + PQconnectPoll, the socket watched by a uv_poll for
 *   what libpq asks (read or write), a timer bounding the attempt. Then the connection is
 *   made non-blocking, enters pipeline mode and prepares every statement in one round.
 *   A ROUND is the unit of work: queries are queued (PQsendQueryPrepared /
 *   PQsendQueryParams, binary values), pipeline syncs are placed where the caller wants
 *   isolation (an error aborts the queries up to the next sync only), the round ends with
 *   a sync, and the output is flushed as the socket allows (PQflush, POLLOUT). Results are
 *   read whenever the socket is readable (PQconsumeInput, then PQgetResult while
 *   !PQisBusy): each query yields its result then NULL; each sync yields
 *   PGRES_PIPELINE_SYNC. When every sync came back, the round's callback runs with one
 *   result per query.
 *   Loss: a failed read/flush, a socket error or CONNECTION_BAD ends the round with
 *   GT_EIO, closes the socket and reports up = 0; the owner decides when to reconnect.
 *   The socket stays watched for reads while idle, so a server shutdown is noticed at
 *   once, not at the next query.
 *
 * INVARIANTS
 *   - A round's callback runs exactly once (results or GT_EIO), never from inside
 *     gt__pg_round_send: failures found while sending are reported from the timer.
 *   - c->poll belongs to the current socket only; it is closed (and freed by its close
 *     callback) whenever the connection ends or libpq changes socket while connecting.
 *
 * THREADS
 *   The loop thread of c->loop, only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "persistence/postgres/pg_int.h"
#include "persistence/store_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* Statement names on the server: "g0".."gN", prepared once per session. */
static void stmt_name(char *buf, size_t n, int id) {
  snprintf(buf, n, "g%d", id);
}

static void poll_close_cb(uv_handle_t *h) { free(h); }

static void poll_stop(gt__pg_conn_t *c) {
  if (!c->poll)
    return;
  uv_poll_stop(c->poll);
  uv_close((uv_handle_t *)c->poll, poll_close_cb);
  c->poll = NULL;
  c->poll_fd = -1;
  c->poll_events = 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches fd for events (re-creating the handle when the fd changed). Returns 0 or
 * GT_EIO. */
static int poll_watch(gt__pg_conn_t *c, int fd, int events) {
  if (c->poll && c->poll_fd != fd)
    poll_stop(c);
  if (!c->poll) {
    c->poll = malloc(sizeof(*c->poll));
    if (!c->poll || uv_poll_init(c->loop, c->poll, fd) != 0) {
      free(c->poll);
      c->poll = NULL;
      return GT_EIO;
    }
    c->poll->data = c;
    c->poll_fd = fd;
    c->poll_events = 0;
  }
  if (events != c->poll_events) {
    if (uv_poll_start(c->poll, events, on_poll) != 0)
      return GT_EIO;
    c->poll_events = events;
  }
  return 0;
}

static void timer_stop(gt__pg_conn_t *c) {
  if (c->timer_started)
    uv_timer_stop(&c->timer);
  c->timer_started = 0;
}

static void free_results(gt__pg_conn_t *c) {
  for (int i = 0; i < c->nq; i++) {
    PQclear(c->res[i]);
    c->res[i] = NULL;
  }
  c->nq = 0;
}

/* Stops watching the socket and the timer and closes the libpq connection: DOWN, the
 * handles kept for the next connect. */
static void disconnect(gt__pg_conn_t *c) {
  poll_stop(c);
  timer_stop(c);
  c->lost_pending = 0;
  if (c->pg)
    PQfinish(c->pg);
  c->pg = NULL;
  c->state = GT__PG_DOWN;
}

/* The connection is gone (or never came up): report it. */
static void lost(gt__pg_conn_t *c, const char *why) {
  int was = c->state;
  if (was == GT__PG_DOWN)
    return;
  if (c->pg) {
    const char *msg = PQerrorMessage(c->pg);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
      n--;
    /* A server that stays down: the first failure and every 30th, not each retry. */
    if (was == GT__PG_CONNECTING && c->connect_fails++ % 30 == 0)
      gt_log_warn("STORE-PG-CONNECT", "connecting failed (%s, attempt %d): %.*s", why,
                  c->connect_fails, (int)n, msg);
    else if (was == GT__PG_CONNECTING)
      gt_log_debug("STORE-PG-CONNECT", "connecting failed (%s): %.*s", why, (int)n, msg);
    else
      gt_log_error("STORE-PG-LOST", "connection lost (%s): %.*s", why, (int)n, msg);
  }
  disconnect(c);
  if (c->busy) {
    c->busy = 0;
    free_results(c);
    if (c->cb)
      c->cb(c, GT_EIO);
  }
  c->on_state(c, 0);
}

static void on_timer(uv_timer_t *t) {
  gt__pg_conn_t *c = t->data;
  c->timer_started = 0;
  if (c->lost_pending)
    lost(c, "send failed");
  else if (c->state == GT__PG_CONNECTING)
    lost(c, "connect timeout");
}

/* Reports the loss from the timer: never re-enter the caller of round_send. */
static void lost_later(gt__pg_conn_t *c) {
  /* libpq may already have closed the socket: stop watching that fd number now, before
   * another connection of this loop can be handed the same number. */
  poll_stop(c);
  c->lost_pending = 1;
  timer_stop(c);
  uv_timer_start(&c->timer, on_timer, 0, 0);
  c->timer_started = 1;
}

int gt__pg_conn_init(gt__pg_conn_t *c, uv_loop_t *loop, const gt__pg_params_t *params,
                     gt__pg_state_cb on_state, void *data) {
  memset(c, 0, sizeof(*c));
  c->loop = loop;
  c->params = params;
  c->on_state = on_state;
  c->data = data;
  c->poll_fd = -1;
  if (uv_timer_init(loop, &c->timer) != 0)
    return GT_ENOMEM;
  c->timer.data = c;
  return 0;
}

/* ------------------------------------------------------------------ rounds --- */

static int grow_res(gt__pg_conn_t *c) {
  if (c->nq < c->qcap)
    return 0;
  int ncap = c->qcap ? c->qcap * 2 : 64;
  PGresult **n = realloc(c->res, (size_t)ncap * sizeof(*n));
  if (!n)
    return GT_ENOMEM;
  memset(n + c->qcap, 0, (size_t)(ncap - c->qcap) * sizeof(*n));
  c->res = n;
  c->qcap = ncap;
  return 0;
}

void gt__pg_round_begin(gt__pg_conn_t *c) {
  GT_ASSERT(gt__pg_conn_idle(c) || c->state == GT__PG_PREPARING);
  free_results(c);
  c->syncs_sent = c->syncs_recv = 0;
  c->qi = 0;
  c->cur_has = 0;
  c->send_failed = 0;
  c->last_synced = 0;
}

static void add_sync(gt__pg_conn_t *c) {
  if (!c->send_failed && PQpipelineSync(c->pg) != 1)
    c->send_failed = 1;
  c->syncs_sent++;
  c->last_synced = 1;
}

/* Encodes op's values for statement id: binary, except a value whose kind does not fit
 * its parameter (an int for a text column, text for an int column), which goes in text
 * form and is converted by the server. ints: 8 bytes big-endian in ibuf[i]. */
static void encode(const gt_store_op_t *op, const char *sig, const char **vals, int *lens,
                   int *fmts, char (*ibuf)[24]) {
  for (int i = 0; op && i < op->nparams; i++) {
    const gt_val_t *v = &op->params[i];
    fmts[i] = 1;
    lens[i] = 0;
    if (v->kind == GT_VAL_NULL) {
      vals[i] = NULL;
    } else if (v->kind == GT_VAL_INT && sig[i] == 'i') {
      uint64_t u = (uint64_t)v->i;
      for (int k = 0; k < 8; k++)
        ibuf[i][k] = (char)(u >> (56 - 8 * k));
      vals[i] = ibuf[i];
      lens[i] = 8;
    } else if (v->kind == GT_VAL_INT) {
      snprintf(ibuf[i], sizeof(ibuf[i]), "%lld", (long long)v->i);
      vals[i] = ibuf[i];
      fmts[i] = 0;
    } else if (sig[i] == 'i') {
      vals[i] = v->p; /* NUL-terminated: store.c copies text and blobs with a NUL */
      fmts[i] = 0;
    } else {
      vals[i] = v->len ? v->p : "";
      lens[i] = (int)v->len;
    }
  }
}

void gt__pg_round_add(gt__pg_conn_t *c, int id, const gt_store_op_t *op, int sync_after) {
  if (grow_res(c)) {
    c->send_failed = 1;
  }
  c->nq++;
  c->last_synced = 0;
  if (!c->send_failed) {
    const char *sig = gt__pg_sig(id);
    int n = op ? op->nparams : 0;
    GT_ASSERT(n == (int)strlen(sig));
    const char *vals[GT_STORE_MAX_PARAMS];
    int lens[GT_STORE_MAX_PARAMS], fmts[GT_STORE_MAX_PARAMS];
    char ibuf[GT_STORE_MAX_PARAMS][24];
    encode(op, sig, vals, lens, fmts, ibuf);
    char name[16];
    stmt_name(name, sizeof(name), id);
    if (PQsendQueryPrepared(c->pg, name, n, vals, lens, fmts, 1) != 1)
      c->send_failed = 1;
  }
  if (sync_after)
    add_sync(c);
}

/* Sends sql with vals: ints in text form (int8), text as text, blobs binary (bytea),
 * NULL as NULL. Returns 1 on success (PQsendQueryParams' convention). */
static int send_params(PGconn *pg, const char *sql, const gt_val_t *vals, int n) {
  if (n == 0)
    return PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 1);
  Oid *types = calloc((size_t)n, sizeof(Oid));
  const char **pv = calloc((size_t)n, sizeof(char *));
  int *lens = calloc((size_t)n, sizeof(int)), *fmts = calloc((size_t)n, sizeof(int));
  char(*ibuf)[24] = calloc((size_t)n, sizeof(*ibuf));
  int ok = 0;
  if (types && pv && lens && fmts && ibuf) {
    for (int i = 0; i < n; i++) {
      const gt_val_t *v = &vals[i];
      if (v->kind == GT_VAL_INT) {
        types[i] = 20; /* int8 */
        snprintf(ibuf[i], sizeof(ibuf[i]), "%lld", (long long)v->i);
        pv[i] = ibuf[i];
      } else if (v->kind == GT_VAL_TEXT) {
        types[i] = 25; /* text; NUL-terminated by store.c's copy */
        pv[i] = v->len ? v->p : "";
      } else if (v->kind == GT_VAL_BLOB) {
        types[i] = 17; /* bytea */
        pv[i] = v->len ? v->p : "";
        lens[i] = (int)v->len;
        fmts[i] = 1;
      }
    }
    /* libpq copies the values into its output buffer: ours may go at once. */
    ok = PQsendQueryParams(pg, sql, n, types, pv, lens, fmts, 1);
  }
  free(types);
  free(pv);
  free(lens);
  free(fmts);
  free(ibuf);
  return ok;
}

void gt__pg_round_add_params(gt__pg_conn_t *c, const char *sql, const gt_val_t *vals, int n,
                             int sync_after) {
  if (grow_res(c))
    c->send_failed = 1;
  c->nq++;
  c->last_synced = 0;
  if (!c->send_failed && send_params(c->pg, sql, vals, n) != 1)
    c->send_failed = 1;
  if (sync_after)
    add_sync(c);
}

void gt__pg_round_add_sql(gt__pg_conn_t *c, const char *sql, int sync_after) {
  if (grow_res(c))
    c->send_failed = 1;
  c->nq++;
  c->last_synced = 0;
  if (!c->send_failed && PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 1) != 1)
    c->send_failed = 1;
  if (sync_after)
    add_sync(c);
}

/* Flushes what libpq holds; watches POLLOUT while some remains. Returns 0 or GT_EIO. */
static int flush(gt__pg_conn_t *c) {
  int r = PQflush(c->pg);
  if (r < 0)
    return GT_EIO;
  return poll_watch(c, PQsocket(c->pg), UV_READABLE | (r ? UV_WRITABLE : 0));
}

void gt__pg_round_send(gt__pg_conn_t *c, gt__pg_round_cb cb) {
  if (!c->last_synced)
    add_sync(c);
  c->cb = cb;
  c->busy = 1;
  /* libpq reads the server's last words when a write fails, and may drop the socket
   * while a query is queued: check the status, not only the return codes. */
  if (c->send_failed || PQstatus(c->pg) == CONNECTION_BAD || flush(c) != 0)
    lost_later(c);
}

/* Reads every result that is complete; ends the round at its last sync. */
static void drain(gt__pg_conn_t *c) {
  while (c->busy && !PQisBusy(c->pg)) {
    PGresult *r = PQgetResult(c->pg);
    if (!r) {
      if (!c->cur_has)
        break; /* nothing more has arrived */
      c->cur_has = 0;
      c->qi++;
      continue;
    }
    if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      if (++c->syncs_recv == c->syncs_sent) {
        c->busy = 0;
        c->cb(c, 0); /* may begin the next round */
        return;
      }
      continue;
    }
    if (c->qi < c->nq && !c->res[c->qi])
      c->res[c->qi] = r;
    else
      PQclear(r);
    c->cur_has = 1;
  }
}

/* ------------------------------------------------------------------ connecting --- */

static void prepared_cb(gt__pg_conn_t *c, int rc) {
  if (rc)
    return; /* lost() reports it */
  for (int i = 0; i < c->nq; i++) {
    if (!gt__pg_res_is(c, i, PGRES_COMMAND_OK)) {
      gt__pg_map_error(c->res[i], "preparing a statement");
      free_results(c);
      lost_later(c);
      c->busy = 1; /* lost() then reports down; no round callback to run */
      c->cb = NULL;
      return;
    }
  }
  free_results(c);
  c->connect_fails = 0;
  c->state = GT__PG_READY;
  c->ready_ms = uv_now(c->loop);
  c->on_state(c, 1);
}

/* Connected: non-blocking, pipeline mode, then prepare every statement in one round. */
static void connected(gt__pg_conn_t *c) {
  timer_stop(c);
  if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
    lost(c, "entering pipeline mode");
    return;
  }
  c->state = GT__PG_PREPARING;
  gt__pg_round_begin(c);
  for (int id = 0; id < GT__PG__COUNT; id++) {
    const char *sig = gt__pg_sig(id);
    Oid types[GT_STORE_MAX_PARAMS];
    int n = (int)strlen(sig);
    for (int i = 0; i < n; i++)
      types[i] = gt__pg_type_oid(sig[i]);
    char name[16];
    stmt_name(name, sizeof(name), id);
    if (grow_res(c))
      c->send_failed = 1;
    c->nq++;
    if (!c->send_failed && PQsendPrepare(c->pg, name, gt__pg_sql(id), n, types) != 1)
      c->send_failed = 1;
  }
  gt__pg_round_send(c, prepared_cb);
}

/* One step of PQconnectPoll: watch what it asks for, or finish. */
static void connect_step(gt__pg_conn_t *c) {
  PostgresPollingStatusType st = PQconnectPoll(c->pg);
  if (st == PGRES_POLLING_OK) {
    connected(c);
    return;
  }
  if (st == PGRES_POLLING_FAILED) {
    lost(c, "connect");
    return;
  }
  int ev = st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE;
  if (poll_watch(c, PQsocket(c->pg), ev) != 0)
    lost(c, "watching the socket");
}

void gt__pg_conn_start(gt__pg_conn_t *c) {
  GT_ASSERT(c->state == GT__PG_DOWN);
  c->pg = PQconnectStartParams(c->params->keys, c->params->vals, 1);
  c->state = GT__PG_CONNECTING;
  if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
    lost_later(c); /* reported from the loop, like every outcome */
    return;
  }
  uv_timer_start(&c->timer, on_timer, GT_PG_CONNECT_TIMEOUT_S * 1000, 0);
  c->timer_started = 1;
  /* libpq starts in "writing" state: the socket becomes writable once connected. */
  if (poll_watch(c, PQsocket(c->pg), UV_WRITABLE) != 0)
    lost_later(c);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  gt__pg_conn_t *c = h->data;
  if (c->lost_pending)
    return;
  if (c->state == GT__PG_CONNECTING) {
    connect_step(c);
    return;
  }
  if (status < 0) {
    lost(c, uv_strerror(status));
    return;
  }
  if ((events & UV_WRITABLE) && flush(c) != 0) {
    lost(c, "flush");
    return;
  }
  if (events & UV_READABLE) {
    if (PQconsumeInput(c->pg) != 1) {
      lost(c, "read");
      return;
    }
    drain(c);
  }
  if (c->state != GT__PG_DOWN && c->pg && PQstatus(c->pg) == CONNECTION_BAD)
    lost(c, "connection bad");
}

void gt__pg_conn_recycle(gt__pg_conn_t *c) {
  GT_ASSERT(gt__pg_conn_idle(c));
  free_results(c);
  disconnect(c);
  gt__pg_conn_start(c);
}

void gt__pg_conn_close(gt__pg_conn_t *c) {
  disconnect(c);
  if (!uv_is_closing((uv_handle_t *)&c->timer))
    uv_close((uv_handle_t *)&c->timer, NULL);
  free_results(c);
  free(c->res);
  c->res = NULL;
  c->qcap = 0;
}
