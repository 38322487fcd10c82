/*
 * namespaces.h: the namespace registry (Temporal's namespace cache), backed by the store.
 *
 * DESIGN
 *   Namespaces are read on every request and written rarely, so the registry is a small
 *   array behind a readers-writer lock (runtime code shared by the roles, not actor state).
 *   Readers copy what they need (the id, the retention) while holding the read lock; no
 *   pointer into the registry escapes it. A namespace's full record is kept as serialized
 *   temporal.api.workflowservice.v1.DescribeNamespaceResponse bytes, which is also what is
 *   persisted in namespaces.data, so Describe/List answer without rebuilding it.
 *
 * INVARIANTS
 *   Names and ids are unique. A namespace is visible to readers only after its row is
 *   committed (registration writes first, then publishes).
 */
#ifndef GT_NAMESPACES_H
#define GT_NAMESPACES_H

#include <stddef.h>
#include <stdint.h>

#include "actors/frontend/pb.h"
#include "persistence/store.h"

typedef struct gt_namespaces gt_namespaces_t;

typedef struct gt_ns_info {
  char id[37];
  char name[256];
  int64_t retention_ms;
} gt_ns_info_t;

/* What the server supports, stamped into every namespace's capabilities. They belong to
 * the server, not to the record: a loaded record gets them again at load, so a changed
 * setting shows after a restart without rewriting the rows. */
typedef struct gt_ns_caps {
  int eager_workflow_start; /* system.enableEagerWorkflowStart */
  int sync_update;          /* UpdateWorkflowExecution waiting for the completion */
  int async_update;         /* UpdateWorkflowExecution answering once accepted */
} gt_ns_caps_t;

/* Loads every namespace from the store (synchronous, start-up). caps: NULL for none.
 * OUT: *out. Returns 0, GT_ENOMEM, GT_EIO, GT_ECORRUPT. */
int gt_namespaces_load(gt_namespaces_t **out, gt_store_t *store, const gt_ns_caps_t *caps);

void gt_namespaces_free(gt_namespaces_t *nss);

/* Looks a namespace up by name. OUT: *info. Returns 0 or GT_ENOTFOUND. Any thread. */
int gt_namespaces_get(gt_namespaces_t *nss, const char *name, gt_ns_info_t *info);

/* Looks a namespace up by id. OUT: *info. 0 or GT_ENOTFOUND. */
int gt_namespaces_get_by_id(gt_namespaces_t *nss, const char *id, gt_ns_info_t *info);

/* Registers a namespace synchronously (start-up: the default namespace). No-op with 0 when
 * it exists already. Returns 0, GT_EIO, GT_ENOMEM. */
int gt_namespaces_ensure_sync(gt_namespaces_t *nss, const char *name, int64_t retention_ms);

/* Registers a namespace from a RegisterNamespaceRequest, asynchronously: cb(ctx, rc) runs
 * once (rc 0, GT_EEXISTS, GT_EINVAL, GT_EIO) on a store thread, after the registry has
 * published it. Returns 0 (cb will run) or an error (cb never runs). */
int gt_namespaces_register(gt_namespaces_t *nss,
                           const Temporal__Api__Workflowservice__V1__RegisterNamespaceRequest *req,
                           void (*cb)(void *ctx, int rc), void *ctx);

/* Updates a namespace's description, owner email and retention (NULL/empty/0: unchanged),
 * asynchronously: cb(ctx, rc) runs once after the registry holds the new record.
 * Returns 0 (cb will run), GT_ENOTFOUND, GT_ENOMEM, GT_ECLOSED (cb never runs). */
int gt_namespaces_update(gt_namespaces_t *nss, const char *name, const char *description,
                         const char *owner_email, int64_t retention_ms,
                         void (*cb)(void *ctx, int rc), void *ctx);

/* Copies the registered namespaces' infos into out (at most max). Returns how many. */
int gt_namespaces_snapshot(gt_namespaces_t *nss, gt_ns_info_t *out, int max);

/* Copies the DescribeNamespaceResponse bytes of a namespace (by name, or by id when name is
 * NULL) into out. Returns 0 or GT_ENOTFOUND. */
int gt_namespaces_describe(gt_namespaces_t *nss, const char *name, const char *id,
                           gt_buf_t *out);

/* Appends every namespace as ListNamespacesResponse.namespaces (field 1) to out, starting at
 * index `offset`, at most `limit` (0 = all). OUT: *next (index of the next page, or 0 when
 * there is none). Returns the number appended. */
int gt_namespaces_list(gt_namespaces_t *nss, int offset, int limit, gt_buf_t *out, int *next);

#endif
