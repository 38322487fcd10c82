/*
 * retention.c: deletes closed runs once their namespace's retention has passed.
 *
 * DESIGN
 *   One "retention" actor wakes every sweep interval (60 s), asks the store for each
 *   namespace's runs that closed before now - retention (a bounded page per namespace),
 *   and sends each one to its workflow actor (WFX_DELETE_RUN), which drops the run from
 *   memory and deletes its rows (executions, history, current_executions if it still
 *   names the run, visibility) in one batch fenced by the shard's range_id, the batch of
 *   DeleteWorkflowExecution (wf_delete.c: wf_delete_ops, wf_forget_run). Going through
 *   the workflow actor keeps the deletion ordered with that workflow's own writes.
 *   `--dynamic-config-value genesis.retentionOverrideMs=N` replaces every namespace's
 *   retention and `genesis.retentionSweepIntervalMs=N` the interval: for tests and demos
 *   (the API itself refuses a retention under one hour, as Temporal does).
 *
 * THREADS: the retention actor's home thread; store callbacks only post to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/frontend/namespaces.h"
#include "actors/history/wf_int.h"
#include "actors/visibility/vis_outbox.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define SWEEP_DEFAULT_MS 60000
#define SWEEP_PAGE 200
#define MAX_NAMESPACES 256

enum { MSG_EXPIRED = 100 };

typedef struct expired_msg {
  gt_msg_t hdr;
  char ns_id[37];
  int n;
  char **workflow_ids;
  char (*run_ids)[37];
} expired_msg_t;

typedef struct retention {
  gt_actor_t base;
  gt_server_t *srv;
  int64_t sweep_ms;
  int64_t override_ms; /* 0: each namespace's own retention */
  uint64_t deleted;
} retention_t;

static void expired_dtor(gt_msg_t *m) {
  expired_msg_t *e = (expired_msg_t *)m;
  for (int i = 0; i < e->n; i++)
    free(e->workflow_ids[i]);
  free(e->workflow_ids);
  free(e->run_ids);
  free(e);
}

typedef struct read_ctx {
  gt_actor_t *actor;
  char ns_id[37];
} read_ctx_t;

static void expired_cb(void *ctx, int rc, const gt_rows_t *rows) {
  read_ctx_t *rctx = ctx;
  expired_msg_t *m = calloc(1, sizeof(*m));
  if (m && rc == 0 && rows && rows->nrows > 0) {
    m->workflow_ids = calloc((size_t)rows->nrows, sizeof(char *));
    m->run_ids = calloc((size_t)rows->nrows, sizeof(*m->run_ids));
    for (int r = 0; m->workflow_ids && m->run_ids && r < rows->nrows; r++) {
      const gt_val_t *w = gt_rows_at(rows, r, 0), *run = gt_rows_at(rows, r, 1);
      m->workflow_ids[m->n] = strndup(w->p ? w->p : "", w->len);
      snprintf(m->run_ids[m->n], 37, "%.*s", (int)run->len, run->p ? (const char *)run->p : "");
      if (m->workflow_ids[m->n])
        m->n++;
    }
  }
  if (m) {
    m->hdr.type = MSG_EXPIRED;
    m->hdr.dtor = expired_dtor;
    snprintf(m->ns_id, sizeof(m->ns_id), "%s", rctx->ns_id);
    if (gt_actor_send(rctx->actor, &m->hdr) != 0)
      expired_dtor(&m->hdr);
  }
  gt_actor_release(rctx->actor);
  free(rctx);
}

static void sweep(retention_t *r) {
  gt_ns_info_t nss[MAX_NAMESPACES];
  int n = gt_namespaces_snapshot(r->srv->namespaces, nss, MAX_NAMESPACES);
  int64_t now = gt_wall_ns();
  for (int i = 0; i < n; i++) {
    int64_t keep_ms = r->override_ms > 0 ? r->override_ms : nss[i].retention_ms;
    if (keep_ms <= 0)
      continue;
    read_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
      return;
    snprintf(ctx->ns_id, sizeof(ctx->ns_id), "%.36s", nss[i].id);
    ctx->actor = &r->base;
    gt_actor_retain(&r->base);
    gt_store_op_t op = {.stmt = GT_SQL_VISIBILITY_EXPIRED, .nparams = 3, .expect_rows = -1};
    op.params[0] = gt_val_text(nss[i].id);
    op.params[1] = gt_val_int(now - keep_ms * 1000000);
    op.params[2] = gt_val_int(SWEEP_PAGE);
    if (gt_store_read(r->srv->vis_store, &op, expired_cb, ctx) != 0) {
      gt_actor_release(&r->base);
      free(ctx);
    }
  }
}

static void on_expired(retention_t *r, expired_msg_t *e) {
  for (int i = 0; i < e->n; i++) {
    wf_xmsg_t *m = calloc(1, sizeof(*m));
    if (!m)
      return;
    m->hdr.type = GT_MSG_XWF;
    m->hdr.dtor = NULL;
    m->op = WFX_DELETE_RUN;
    snprintf(m->to_ns_id, sizeof(m->to_ns_id), "%s", e->ns_id);
    m->to_workflow_id = strdup(e->workflow_ids[i]);
    snprintf(m->to_run_id, sizeof(m->to_run_id), "%s", e->run_ids[i]);
    m->from_workflow_id = strdup("");
    if (!m->to_workflow_id || !m->from_workflow_id) {
      wf_xmsg_free(m);
      continue;
    }
    wf_xmsg_set_dtor(m);
    wf_xsend(r->srv, m);
    r->deleted++;
  }
  if (e->n)
    gt_log_info("HIST-RETENTION", "deleting %d closed runs past retention", e->n);
}

static int64_t dyn_ms(const gt_config_t *cfg, const char *key, int64_t dflt) {
  for (int i = 0; i < cfg->n_dynamic; i++)
    if (strcmp(cfg->dynamic_keys[i], key) == 0)
      return atoll(cfg->dynamic_values[i]);
  return dflt;
}

static int ret_start(gt_actor_t *self, void *arg) {
  retention_t *r = (retention_t *)self;
  r->srv = arg;
  r->sweep_ms = dyn_ms(r->srv->cfg, "genesis.retentionSweepIntervalMs", SWEEP_DEFAULT_MS);
  if (r->sweep_ms < 10)
    r->sweep_ms = 10;
  r->override_ms = dyn_ms(r->srv->cfg, "genesis.retentionOverrideMs", 0);
  gt_actor_timer_start(self, (uint64_t)r->sweep_ms, 0);
  return 0;
}

static void ret_receive(gt_actor_t *self, gt_msg_t *m) {
  retention_t *r = (retention_t *)self;
  if (m->type == GT_MSG_TIMER) {
    sweep(r);
    gt_actor_timer_start(self, (uint64_t)r->sweep_ms, 0);
  } else if (m->type == MSG_EXPIRED) {
    on_expired(r, (expired_msg_t *)m);
  }
  gt_msg_free(m);
}

static int ret_describe(gt_actor_t *self, char *buf, size_t len) {
  retention_t *r = (retention_t *)self;
  return snprintf(buf, len, "sweep_ms=%lld deleted=%llu", (long long)r->sweep_ms,
                  (unsigned long long)r->deleted);
}

static const gt_actor_type_t retention_type = {
    .name = "retention",
    .size = sizeof(retention_t),
    .start = ret_start,
    .receive = ret_receive,
    .describe = ret_describe,
};

int gt_history_start_retention(gt_server_t *srv) {
  gt_actor_t *a = NULL;
  int rc = gt_actor_get(srv->rt, &retention_type, "retention", 9, srv, &a);
  if (rc == 0)
    gt_actor_release(a);
  return rc;
}

/* ---- in the workflow actor ---- */

/* A store thread: the run's rows are gone; its visibility row goes with the next sweep. */
static void deleted_cb(void *ctx, int rc, int failed_op) {
  (void)failed_op;
  if (rc == 0)
    gt_vis_outbox_sweep_soon(ctx);
}

void wf_on_delete_run(workflow_t *wf, const wf_xmsg_t *m) {
  wf_run_t *run = wf_find_run(wf, m->to_run_id);
  if (run && (wf_running(run) || run->deleting))
    return; /* not closed after all: keep it; or DeleteWorkflowExecution deletes it now */
  if (run)
    wf_forget_run(wf, run);
  gt_store_op_t ops[WF_DELETE_OPS];
  struct gt_vis_task *vis;
  int n = wf_delete_ops(wf, m->to_run_id, ops, &vis);
  /* fire and forget: a failed delete is found again by the next sweep. A visibility
   * outbox row is left to the outbox's sweep (deleted_cb), not applied from here. */
  gt_store_write(wf->srv->store, wf->shard, wf->srv->shards[wf->shard].range_id, ops, n,
                 vis ? deleted_cb : NULL, wf->srv);
  gt_vis_task_free(vis);
}
