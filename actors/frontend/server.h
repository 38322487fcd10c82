/*
 * server.h: the server context every Temporal role shares, and its lifecycle.
 *
 * DESIGN
 *   One gt_server_t per process: the actor runtime, the store, the gateway, the namespace
 *   registry and the shard table. It is built once at start and torn down once at stop; the
 *   roles hold a pointer to it (passed as the actor start arg) and read its immutable fields
 *   from any thread. Mutable shared fields are atomics or live in their own module with its
 *   own rule (namespaces.h).
 *
 * INVARIANTS
 *   Everything but `stopping`, `vis_backlog`, `vis_sweeping`, the metrics counters and the shards' task-id
 *   counters is written before the gateway starts serving and read-only afterwards.
 */
#ifndef GT_SERVER_H
#define GT_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "actors/gateway/gateway.h"
#include "config/config.h"
#include "persistence/store.h"
#include "runtime/actor.h"
#include "runtime/metrics.h"

typedef struct gt_namespaces gt_namespaces_t;

typedef struct gt_shard {
  int id;
  int64_t range_id;              /* fencing token acquired at start */
  _Atomic int64_t next_task_id;  /* transfer/timer task ids of this shard */
} gt_shard_t;

typedef struct gt_server {
  gt_config_t *cfg;
  gt_runtime_t *rt;
  gt_store_t *store;
  /* Where visibility records live: `store` itself, unless persistence.visibilityStore
   * names another database; then records reach it through the outbox
   * (actors/visibility/vis_outbox.h). */
  gt_store_t *vis_store;
  _Atomic int vis_backlog;  /* the outbox has rows for its sweep (vis_outbox.c) */
  _Atomic int vis_sweeping; /* a sweep of the outbox is in flight (vis_outbox.c) */
  /* the outbox's changes applied to the visibility store, and the applies or sweeps that
   * failed (each leaves its rows for a later sweep): /metrics, relaxed */
  _Atomic uint64_t vis_applied, vis_failed;
  gt_gateway_t *gw;
  gt_namespaces_t *namespaces;
  int num_shards;
  gt_shard_t *shards;
  int64_t start_wall_ns;
  char cluster_id[37];
  _Atomic int stopping; /* set at SIGTERM: new work is answered UNAVAILABLE */
  /* Runs closed, by their Temporal WorkflowExecutionStatus (2 completed .. 7 timed out):
   * bumped by the workflow actors (wf_close_cleanup), read by /metrics. Relaxed atomics:
   * statistics only, nothing is published through them. */
  _Atomic uint64_t wf_closed[8];
  /* task_dispatch_latency of /metrics: a task's time in matching, from its workflow's
   * hand-over to a poller, [0] workflow (and query) tasks, [1] activity tasks; observed by
   * the task-queue actors (matching.c) */
  gt_metrics_ahist_t task_dispatch_latency[2];
  /* What the start's recovery did (its SRV-RECOVERED line): running workflows it
   * reactivated, and those it left asleep in the store. Written before serving. */
  int recovered_awake, recovered_asleep;
} gt_server_t;

/* Builds and starts everything from a validated config: store (schema, shards), runtime,
 * namespaces (the default one created when absent), gateway listening. OUT: *out.
 * Returns 0 or a GT_E* code (logged with the reason). */
int gt_server_start(gt_server_t **out, gt_config_t *cfg);

/* Graceful stop: stop accepting, answer in-flight calls, stop actors, drain the store. */
void gt_server_stop(gt_server_t *srv);

/* The shard of a workflow: hash(namespace_id, workflow_id) % num_shards. */
int gt_server_shard_of(const gt_server_t *srv, const char *ns_id, const char *workflow_id);

/* A fresh task id of a shard. */
int64_t gt_server_next_task_id(gt_server_t *srv, int shard);

#endif
