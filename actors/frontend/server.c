/*
 * server.c: builds the server from a config and tears it down (see server.h).
 *
 * DESIGN
 *   Start order: store (schema, shard ownership: range_id acquired per shard), namespaces
 *   (the default one created when absent), runtime threads, then the gateway, last, so
 *   nothing is served before everything it needs exists; the gateway also serves the HTTP
 *   port (/health, /metrics rendered by metrics.c), unless http_port is 0. A taken port
 *   fails the start like a taken gRPC port. Stop runs in reverse: the gateway
 *   stops accepting and answers what is unanswered, the runtime stops every actor (their
 *   in-flight writes complete first: the store drains before it closes), then the store.
 *
 * THREADS: the main thread.
 */
#include "actors/frontend/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/frontend/frontend.h"
#include "actors/frontend/namespaces.h"
#include "actors/frontend/pb.h"
#include "actors/history/history.h"
#include "actors/visibility/vis_outbox.h"
#include "runtime/err.h"
#include "runtime/log.h"

static uint64_t fnv1a(const char *a, const char *b) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *p = a; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  h = (h ^ 0xff) * 1099511628211ULL;
  for (const char *p = b; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ULL;
  return h;
}

int gt_server_shard_of(const gt_server_t *srv, const char *ns_id, const char *workflow_id) {
  return (int)(fnv1a(ns_id, workflow_id) % (uint64_t)srv->num_shards);
}

int64_t gt_server_next_task_id(gt_server_t *srv, int shard) {
  return atomic_fetch_add_explicit(&srv->shards[shard].next_task_id, 1,
                                   memory_order_relaxed);
}

/* Opens one store; `role` names it in messages ("default", "visibility"). */
static int open_one(const char *role, const char *plugin, const char *sqlite_path,
                    const char *pg_conninfo, int pg_max_conns, int64_t pg_lifetime_ms,
                    int shards, gt_store_t **out) {
  int pg = strcmp(plugin, "postgres") == 0;
  if (!pg && strcmp(plugin, "sqlite") != 0) {
    gt_log_error("SRV-STORE-UNSUPPORTED", "persistence plugin '%s' is not supported", plugin);
    return GT_ECONFIG;
  }
  gt_store_config_t sc = {
      .backend = pg ? GT_STORE_POSTGRES : GT_STORE_SQLITE,
      .sqlite_path = sqlite_path,
      .pg_conninfo = pg_conninfo,
      .pg_max_conns = pg_max_conns,
      .pg_conn_lifetime_ms = pg_lifetime_ms,
      .sqlite_synchronous_full = 1,
      .num_shards = shards,
  };
  int rc = gt_store_open(out, &sc);
  if (rc != 0)
    gt_log_error("SRV-STORE-OPEN", "cannot open the %s %s store: %s", role, plugin,
                 gt_strerror(rc));
  return rc;
}

static int open_store(gt_server_t *srv) {
  gt_config_t *cfg = srv->cfg;
  int rc = open_one("default", cfg->store_plugin, cfg->sqlite_path, cfg->pg_conninfo,
                    cfg->pg_max_conns, cfg->pg_conn_lifetime_ms, cfg->num_history_shards,
                    &srv->store);
  if (rc != 0)
    return rc;
  srv->vis_store = srv->store;
  if (cfg->vis_store_plugin) {
    /* its shards table is created but never acquired: only visibility is written there */
    rc = open_one("visibility", cfg->vis_store_plugin, cfg->vis_sqlite_path,
                  cfg->vis_pg_conninfo, cfg->vis_pg_max_conns, cfg->vis_pg_conn_lifetime_ms,
                  cfg->num_history_shards, &srv->vis_store);
    if (rc != 0) {
      srv->vis_store = srv->store;
      return rc;
    }
    gt_log_info("SRV-VISIBILITY-STORE", "visibility records go to the %s store of "
                "datastore '%s', through visibility_tasks in the default store",
                cfg->vis_store_plugin, cfg->vis_store_name);
  }
  srv->num_shards = cfg->num_history_shards;
  srv->shards = calloc((size_t)srv->num_shards, sizeof(gt_shard_t));
  if (!srv->shards)
    return GT_ENOMEM;
  char owner[128];
  snprintf(owner, sizeof(owner), "pid-%d", (int)getpid());
  for (int i = 0; i < srv->num_shards; i++) {
    srv->shards[i].id = i;
    rc = gt_store_acquire_shard_sync(srv->store, i, owner, &srv->shards[i].range_id);
    if (rc != 0) {
      gt_log_error("SRV-SHARD-ACQUIRE", "shard %d: %s", i, gt_strerror(rc));
      return rc;
    }
    /* task ids: the range id in the high bits keeps them unique across restarts */
    atomic_store(&srv->shards[i].next_task_id, srv->shards[i].range_id << 32);
  }
  return 0;
}

/* Reactivates every running workflow that owes something (a scheduled workflow task,
 * activities) so that it is dispatched again; the sleeping ones stay in the store, woken at
 * their next deadline (at once if it passed while the server was down) or by a message. */
static int recover_workflows(gt_server_t *srv) {
  int total = 0, asleep = 0;
  for (int shard = 0; shard < srv->num_shards; shard++) {
    gt_store_op_t op = {.stmt = GT_SQL_CURRENT_LIST_RUNNING, .nparams = 1, .expect_rows = -1};
    op.params[0] = gt_val_int(shard);
    gt_rows_t *rows = NULL;
    int rc = gt_store_read_sync(srv->store, &op, &rows);
    if (rc != 0) {
      gt_log_error("SRV-RECOVERY-FAILED", "listing running workflows of shard %d: %s", shard,
                   gt_strerror(rc));
      return rc;
    }
    for (int r = 0; r < rows->nrows; r++) {
      const char *ns = gt_rows_at(rows, r, 0)->p, *wid = gt_rows_at(rows, r, 1)->p;
      const gt_val_t *st = gt_rows_at(rows, r, 2);
      int k = ns && wid ? gt_history_recover(srv, ns, wid, st->p, st->len) : -1;
      if (k == 1)
        total++;
      else if (k == 0)
        asleep++;
    }
    gt_store_rows_free(rows);
  }
  srv->recovered_awake = total;
  srv->recovered_asleep = asleep;
  if (total || asleep)
    gt_log_info("SRV-RECOVERED", "reactivated %d running workflows, %d left asleep in the "
                "store", total, asleep);
  return 0;
}

/* schedulerThreads 0: one per core but one. The gateway, the SQLite writer and its syncer
 * run threads of their own, busy under load; a scheduler thread per core makes more runnable
 * threads than cores, and a thread switch is dear on a virtual machine (perf: ~17% of the
 * server's cycles in finish_task_switch at 100 hellos in flight on this 2-core machine). One
 * scheduler thread instead of two: +5% hello/s and -10% server CPU per workflow, on a SQLite
 * file and in memory (tools/bench-pairs.sh, 4-5 pairs each). */
static int scheduler_threads(const gt_config_t *cfg) {
  if (cfg->scheduler_threads > 0)
    return cfg->scheduler_threads;
  unsigned cores = uv_available_parallelism();
  return cores > 1 ? (int)cores - 1 : 1;
}

int gt_server_start(gt_server_t **out, gt_config_t *cfg) {
  gt_server_t *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return GT_ENOMEM;
  srv->cfg = cfg;
  srv->start_wall_ns = gt_wall_ns();
  gt_uuid4(srv->cluster_id);
  int rc = open_store(srv);
  if (rc == 0)
    rc = gt_namespaces_load(&srv->namespaces, srv->store, &(gt_ns_caps_t){
        .eager_workflow_start = cfg->eager_workflow_start, /* workflow.c */
        .sync_update = 1, .async_update = 1}); /* wf_update.c: both wait stages */
  if (rc == 0)
    rc = gt_namespaces_ensure_sync(srv->namespaces, cfg->default_namespace,
                                   24LL * 3600 * 1000);
  if (rc == 0)
    rc = gt_runtime_new(&srv->rt, scheduler_threads(cfg));
  if (rc == 0)
    rc = gt_runtime_start(srv->rt);
  if (rc == 0)
    rc = recover_workflows(srv);
  if (rc == 0)
    rc = gt_history_start_retention(srv);
  if (rc == 0 && gt_vis_outboxed(srv))
    rc = gt_vis_outbox_start(srv);
  if (rc == 0) {
    gt_gateway_config_t gc = {
        .ip = cfg->bind_ip,
        .port = cfg->grpc_port,
        .http_port = cfg->http_port,
        .handler = gt_frontend_handle,
        .handler_ctx = srv,
        .metrics_fn = gt_server_metrics_render,
        .metrics_ctx = srv,
    };
    gc.op_names = gt_frontend_op_names(&gc.n_ops);
    rc = gt_gateway_new(&srv->gw, &gc);
    if (rc == 0)
      rc = gt_gateway_start(srv->gw);
  }
  if (rc != 0) {
    gt_server_stop(srv);
    return rc;
  }
  *out = srv;
  return 0;
}

void gt_server_stop(gt_server_t *srv) {
  if (!srv)
    return;
  atomic_store(&srv->stopping, 1);
  if (srv->gw)
    gt_gateway_stop(srv->gw);
  if (srv->rt) {
    gt_runtime_stop(srv->rt);
  }
  /* the default store first: its completions may still queue on the visibility store,
   * never the other way round (vis_outbox.h) */
  if (srv->store)
    gt_store_close(srv->store);
  if (srv->vis_store && srv->vis_store != srv->store)
    gt_store_close(srv->vis_store);
  /* Completions that were posted to actors after they stopped are gone with the runtime;
   * free it only now that the store can send nothing more. */
  if (srv->rt)
    gt_runtime_free(srv->rt);
  if (srv->gw)
    gt_gateway_free(srv->gw);
  gt_namespaces_free(srv->namespaces);
  free(srv->shards);
  free(srv);
}
