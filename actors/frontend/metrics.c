/*
 * metrics.c: the server's families of GET /metrics (after the gateway's service_*
 * families): persistence, live actors, workflow outcomes and the process.
 *
 * DESIGN
 *   Nothing here is counted per request: every value is read at scrape time from counters
 *   their owners already keep. Names follow Temporal's common/metrics/metric_defs.go where
 *   it has one (persistence_requests / persistence_errors by operation, workflow_success,
 *   workflow_failed, ...), and the Prometheus client conventions for the process
 *   (process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds).
 *   Ours, with no Temporal equivalent, start with genesis_.
 *     persistence: the store counts write batches (a workflow transition: one fenced
 *       batch), their transactions (group commit: several batches per transaction), failed
 *       batches, fenced ones among them, reads and failed reads, the items queued, and a
 *       persistence_latency histogram of each kind (submission to completion, fsync
 *       included). operation="WriteBatch" / "Read" replaces Temporal's per-call operation
 *       names.
 *     actors: one pass over the registry (gt_runtime_foreach), counted by actor type, with
 *       the messages waiting in their mailboxes.
 *     scheduler threads: genesis_scheduler_loop_lag, each loop's lag histogram (sched.c).
 *     task queues: approximate_backlog_count (Temporal's name and labels: namespace,
 *       taskqueue, task_type), each live task-queue actor's published gauge, its backlog;
 *       task_dispatch_latency (Temporal's name; by task_type only, not per queue), the
 *       server's two atomic histograms the task-queue actors observe into.
 *     visibility outbox (only with a visibilityStore in another database): the changes
 *       applied, the failures, and whether a sweep is due (vis_outbox.c).
 *     workflow outcomes: srv->wf_closed, bumped when a run's close commits (wf_txn_done):
 *       a close whose batch fails is not counted.
 *
 * THREADS: the gateway thread (gt_server_metrics_render, from the HTTP handler), reading
 *   relaxed atomics of the store and workflow threads and taking the registry's locks for
 *   the snapshot of live actors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/frontend/frontend.h"
#include "actors/frontend/namespaces.h"
#include "actors/matching/matching.h"
#include "runtime/metrics.h"
#include "runtime/actor.h"

#define MAX_TYPES 32

typedef struct actor_counts {
  const char *type[MAX_TYPES];
  uint64_t live[MAX_TYPES];
  uint64_t queued[MAX_TYPES];
  int n;
} actor_counts_t;

static void count_actor(const gt_actor_info_t *info, void *arg) {
  actor_counts_t *ac = arg;
  int i = 0;
  while (i < ac->n && strcmp(ac->type[i], info->type_name) != 0)
    i++;
  if (i == ac->n) {
    if (ac->n == MAX_TYPES)
      return;
    ac->type[ac->n++] = info->type_name;
  }
  ac->live[i]++;
  ac->queued[i] += info->mailbox_depth;
}

/* persistence_requests, _errors and _latency of one store; prefix "" for the default
 * store, "visibility_" for a separate visibility store (Temporal's names for both). */
static void render_store_requests(gt_store_t *store, const char *prefix, gt_metrics_buf_t *b,
                                  gt_store_stats_t *st) {
  char name[64];
  gt_store_get_stats(store, st);
  snprintf(name, sizeof name, "%spersistence_requests", prefix);
  gt_metrics_family(b, name, "counter",
                    "Store requests completed: write batches (one fenced transition "
                    "each) and reads.");
  gt_metrics_sample(b, name, "operation=\"WriteBatch\"",
                    st->batches_committed + st->batches_failed);
  gt_metrics_sample(b, name, "operation=\"Read\"", st->reads);
  snprintf(name, sizeof name, "%spersistence_errors", prefix);
  gt_metrics_family(b, name, "counter",
                    "Store requests that failed (a write batch rolled back, a read "
                    "error).");
  gt_metrics_sample(b, name, "operation=\"WriteBatch\"", st->batches_failed);
  gt_metrics_sample(b, name, "operation=\"Read\"", st->reads_failed);
  snprintf(name, sizeof name, "%spersistence_latency", prefix);
  gt_metrics_family(b, name, "histogram",
                    "Store requests from submission to completion, seconds: the wait for "
                    "the store's thread, the transaction and, for a durable write, its "
                    "fsync.");
  gt_metrics_hist_t h;
  gt_store_latency(store, 0, &h);
  gt_metrics_hist_render(b, name, "operation=\"WriteBatch\"", &h);
  gt_store_latency(store, 1, &h);
  gt_metrics_hist_render(b, name, "operation=\"Read\"", &h);
}

static void render_persistence(gt_server_t *srv, gt_metrics_buf_t *b) {
  gt_store_stats_t st;
  if (srv->vis_store != srv->store) /* visibility records in a database of their own */
    render_store_requests(srv->vis_store, "visibility_", b, &st);
  render_store_requests(srv->store, "", b, &st); /* st: the default store's, below too */
  gt_metrics_family(b, "persistence_errors_shard_ownership_lost", "counter",
                    "Write batches refused by the shard fence (range_id changed).");
  gt_metrics_sample(b, "persistence_errors_shard_ownership_lost", NULL, st.batches_fenced);
  gt_metrics_family(b, "genesis_persistence_transactions", "counter",
                    "Store transactions committed; write batches per transaction is the "
                    "group-commit factor.");
  gt_metrics_sample(b, "genesis_persistence_transactions", NULL, st.transactions);
  gt_metrics_family(b, "genesis_persistence_queue_depth", "gauge",
                    "Store requests submitted and not yet completed.");
  gt_metrics_sample(b, "genesis_persistence_queue_depth", NULL, st.queue_depth);
}

static void render_actors(gt_server_t *srv, gt_metrics_buf_t *b) {
  actor_counts_t ac;
  memset(&ac, 0, sizeof ac);
  gt_runtime_foreach(srv->rt, count_actor, &ac);
  gt_metrics_family(b, "genesis_actors", "gauge", "Live actors, by type.");
  for (int i = 0; i < ac.n; i++) {
    gt_metrics_printf(b, "genesis_actors{type=\"");
    gt_metrics_escape(b, ac.type[i]);
    gt_metrics_printf(b, "\"} %llu\n", (unsigned long long)ac.live[i]);
  }
  gt_metrics_family(b, "genesis_actor_mailbox_messages", "gauge",
                    "Messages waiting in the mailboxes of live actors, by type.");
  for (int i = 0; i < ac.n; i++) {
    gt_metrics_printf(b, "genesis_actor_mailbox_messages{type=\"");
    gt_metrics_escape(b, ac.type[i]);
    gt_metrics_printf(b, "\"} %llu\n", (unsigned long long)ac.queued[i]);
  }
}

typedef struct backlog_ctx {
  gt_server_t *srv;
  gt_metrics_buf_t *b;
} backlog_ctx_t;

/* One approximate_backlog_count sample per live task-queue actor: its gauge is its
 * backlog (matching.c keeps a queue's every waiting task in its actor). The key is
 * ns_id '\0' kind-char name; the namespace is shown by name, as Temporal does. */
static void backlog_sample(const gt_actor_info_t *info, void *arg) {
  backlog_ctx_t *c = arg;
  if (strcmp(info->type_name, gt_taskqueue_actor_type.name) != 0)
    return;
  const char *k = info->raw_key, *end = k + info->raw_keylen;
  const char *nul = memchr(k, 0, info->raw_keylen);
  if (!nul || end - nul < 2)
    return;
  char ns_id[64], name[GT_ACTOR_KEY_MAX];
  snprintf(ns_id, sizeof ns_id, "%.*s", (int)(nul - k), k);
  snprintf(name, sizeof name, "%.*s", (int)(end - (nul + 2)), nul + 2);
  gt_ns_info_t ns;
  int known = gt_namespaces_get_by_id(c->srv->namespaces, ns_id, &ns) == 0;
  gt_metrics_printf(c->b, "approximate_backlog_count{namespace=\"");
  gt_metrics_escape(c->b, known ? ns.name : ns_id);
  gt_metrics_printf(c->b, "\",taskqueue=\"");
  gt_metrics_escape(c->b, name);
  gt_metrics_printf(c->b, "\",task_type=\"%s\"} %llu\n",
                    nul[1] == 'A' ? "Activity" : "Workflow",
                    (unsigned long long)info->gauge);
}

static void render_backlog(gt_server_t *srv, gt_metrics_buf_t *b) {
  gt_metrics_family(b, "approximate_backlog_count", "gauge",
                    "Tasks waiting for a poller, by task queue.");
  backlog_ctx_t c = {srv, b};
  gt_runtime_foreach(srv->rt, backlog_sample, &c);
}

/* With a visibility store in another database: its outbox (vis_outbox.c). */
static void render_vis_outbox(gt_server_t *srv, gt_metrics_buf_t *b) {
  if (srv->vis_store == srv->store)
    return;
  gt_metrics_family(b, "genesis_visibility_outbox_applied", "counter",
                    "Visibility changes applied to the separate visibility store.");
  gt_metrics_sample(b, "genesis_visibility_outbox_applied", NULL,
                    atomic_load_explicit(&srv->vis_applied, memory_order_relaxed));
  gt_metrics_family(b, "genesis_visibility_outbox_failures", "counter",
                    "Applies or sweeps the visibility store refused; their changes wait in "
                    "visibility_tasks for the next sweep.");
  gt_metrics_sample(b, "genesis_visibility_outbox_failures", NULL,
                    atomic_load_explicit(&srv->vis_failed, memory_order_relaxed));
  gt_metrics_family(b, "genesis_visibility_outbox_sweep_pending", "gauge",
                    "1 while changes wait in visibility_tasks for a sweep (after a "
                    "failure, or at start).");
  gt_metrics_sample(b, "genesis_visibility_outbox_sweep_pending", NULL,
                    (uint64_t)(atomic_load_explicit(&srv->vis_backlog, memory_order_relaxed) |
                               atomic_load_explicit(&srv->vis_sweeping, memory_order_relaxed)));
}

static void render_dispatch_latency(gt_server_t *srv, gt_metrics_buf_t *b) {
  gt_metrics_family(b, "task_dispatch_latency", "histogram",
                    "Tasks from their arrival in matching to a poller, seconds, by task "
                    "type (tasks handed out eagerly never wait there and are not counted).");
  static const char *const labels[2] = {"task_type=\"Workflow\"", "task_type=\"Activity\""};
  for (int i = 0; i < 2; i++) {
    gt_metrics_hist_t h;
    gt_metrics_ahist_read(&srv->task_dispatch_latency[i], &h);
    gt_metrics_hist_render(b, "task_dispatch_latency", labels[i], &h);
  }
}

static void render_loop_lag(gt_server_t *srv, gt_metrics_buf_t *b) {
  gt_metrics_family(b, "genesis_scheduler_loop_lag", "histogram",
                    "How late each scheduler thread's loop comes back to its timers, "
                    "seconds (a 100 ms timer, every firing): how long a message may wait "
                    "for its thread.");
  for (int i = 0; i < gt_runtime_threads(srv->rt); i++) {
    char labels[32];
    snprintf(labels, sizeof labels, "thread=\"%d\"", i);
    gt_metrics_hist_t h;
    gt_runtime_loop_lag(srv->rt, i, &h);
    gt_metrics_hist_render(b, "genesis_scheduler_loop_lag", labels, &h);
  }
}

static void render_workflows(gt_server_t *srv, gt_metrics_buf_t *b) {
  static const struct {
    int status; /* Temporal WorkflowExecutionStatus */
    const char *name, *help;
  } outcomes[] = {
      {2, "workflow_success", "Workflow runs completed."},
      {3, "workflow_failed", "Workflow runs failed."},
      {4, "workflow_cancel", "Workflow runs canceled."},
      {5, "workflow_terminate", "Workflow runs terminated."},
      {6, "workflow_continued_as_new", "Workflow runs continued as new."},
      {7, "workflow_timeout", "Workflow runs timed out."},
  };
  for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
    gt_metrics_family(b, outcomes[i].name, "counter", outcomes[i].help);
    gt_metrics_sample(b, outcomes[i].name, NULL,
                      atomic_load_explicit(&srv->wf_closed[outcomes[i].status],
                                           memory_order_relaxed));
  }
}

/* /proc/self/stat fields 14, 15 (utime, stime, clock ticks); /proc/self/statm field 2
 * (resident pages). Missing files (not Linux) leave the families out. */
static void render_process(gt_server_t *srv, gt_metrics_buf_t *b) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long size = 0, resident = 0;
  if (f != NULL) {
    if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
      gt_metrics_family(b, "process_resident_memory_bytes", "gauge",
                        "Resident memory size in bytes.");
      gt_metrics_sample(b, "process_resident_memory_bytes", NULL,
                        resident * (unsigned long long)sysconf(_SC_PAGESIZE));
    }
    fclose(f);
  }
  f = fopen("/proc/self/stat", "r");
  if (f != NULL) {
    char line[1024];
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name (field 2) may hold spaces: fields count from its last ')'. */
    const char *p = strrchr(line, ')');
    unsigned long long utime, stime;
    if (p != NULL &&
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) == 2) {
      long hz = sysconf(_SC_CLK_TCK);
      gt_metrics_family(b, "process_cpu_seconds_total", "counter",
                        "User and system CPU time spent in seconds.");
      gt_metrics_printf(b, "process_cpu_seconds_total %.2f\n",
                        (double)(utime + stime) / (double)(hz > 0 ? hz : 100));
    }
  }
  gt_metrics_family(b, "process_start_time_seconds", "gauge",
                    "Start time of the process since the Unix epoch in seconds.");
  gt_metrics_printf(b, "process_start_time_seconds %.3f\n",
                    (double)srv->start_wall_ns / 1e9);
}

void gt_server_metrics_render(void *ctx, gt_metrics_buf_t *out) {
  gt_server_t *srv = ctx;
  render_persistence(srv, out);
  render_actors(srv, out);
  render_backlog(srv, out);
  render_loop_lag(srv, out);
  render_dispatch_latency(srv, out);
  render_vis_outbox(srv, out);
  render_workflows(srv, out);
  render_process(srv, out);
}
