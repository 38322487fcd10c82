/*
 * namespaces.c: the namespace registry (see namespaces.h).
 *
 * DESIGN
 *   An array of entries behind a pthread rwlock. Each entry keeps its id, name, retention
 *   and the serialized DescribeNamespaceResponse (also the row's `data` column). Register
 *   writes the row through the store (GT_SQL_NAMESPACE_UPSERT) and publishes the entry in the
 *   write's completion; a name being registered is reserved meanwhile, so two concurrent
 *   registrations of one name cannot both succeed.
 *
 * THREADS
 *   Any thread. The lock is held only for copies, never across a store call.
 */
#include "actors/frontend/namespaces.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"

typedef Temporal__Api__Workflowservice__V1__DescribeNamespaceResponse describe_t;

typedef struct ns_entry {
  gt_ns_info_t info;
  int reserved; /* registration in flight: name taken, not visible yet */
  uint8_t *describe;
  size_t describe_len;
} ns_entry_t;

struct gt_namespaces {
  pthread_rwlock_t lock;
  gt_store_t *store;
  gt_ns_caps_t caps; /* read-only after load */
  ns_entry_t *v;
  int n, cap;
};

static ns_entry_t *find_name(gt_namespaces_t *nss, const char *name) {
  for (int i = 0; i < nss->n; i++)
    if (strcmp(nss->v[i].info.name, name) == 0)
      return &nss->v[i];
  return NULL;
}

static ns_entry_t *find_id(gt_namespaces_t *nss, const char *id) {
  for (int i = 0; i < nss->n; i++)
    if (!nss->v[i].reserved && strcmp(nss->v[i].info.id, id) == 0)
      return &nss->v[i];
  return NULL;
}

/* Adds an entry (write lock held). Takes `describe`. */
static ns_entry_t *add_entry(gt_namespaces_t *nss, const gt_ns_info_t *info) {
  if (nss->n == nss->cap) {
    int cap = nss->cap ? nss->cap * 2 : 8;
    ns_entry_t *v = realloc(nss->v, (size_t)cap * sizeof(*v));
    if (!v)
      return NULL;
    nss->v = v;
    nss->cap = cap;
  }
  ns_entry_t *e = &nss->v[nss->n++];
  memset(e, 0, sizeof(*e));
  e->info = *info;
  return e;
}

static void remove_entry(gt_namespaces_t *nss, ns_entry_t *e) {
  free(e->describe);
  *e = nss->v[--nss->n];
}

/* Sets the server's capabilities on a namespace's info message. */
static void stamp_caps(const gt_ns_caps_t *c,
                       Temporal__Api__Namespace__V1__NamespaceInfo__Capabilities *caps) {
  caps->eager_workflow_start = c->eager_workflow_start != 0;
  caps->sync_update = c->sync_update != 0;
  caps->async_update = c->async_update != 0;
}

/* Serializes a DescribeNamespaceResponse into a new buffer. OUT: *out, *outlen. */
static int pack_describe(const describe_t *d, uint8_t **out, size_t *outlen) {
  size_t n = protobuf_c_message_get_packed_size(&d->base);
  uint8_t *p = malloc(n ? n : 1);
  if (!p)
    return GT_ENOMEM;
  protobuf_c_message_pack(&d->base, p);
  *out = p;
  *outlen = n;
  return 0;
}

/* Builds the DescribeNamespaceResponse bytes of a namespace. */
static int build_describe(const gt_namespaces_t *nss, const gt_ns_info_t *info,
                          const char *description, const char *owner, uint8_t **out,
                          size_t *outlen) {
  Temporal__Api__Namespace__V1__NamespaceInfo ni =
      TEMPORAL__API__NAMESPACE__V1__NAMESPACE_INFO__INIT;
  Temporal__Api__Namespace__V1__NamespaceInfo__Capabilities caps =
      TEMPORAL__API__NAMESPACE__V1__NAMESPACE_INFO__CAPABILITIES__INIT;
  Temporal__Api__Namespace__V1__NamespaceConfig nc =
      TEMPORAL__API__NAMESPACE__V1__NAMESPACE_CONFIG__INIT;
  Temporal__Api__Replication__V1__NamespaceReplicationConfig rc =
      TEMPORAL__API__REPLICATION__V1__NAMESPACE_REPLICATION_CONFIG__INIT;
  Temporal__Api__Replication__V1__ClusterReplicationConfig cl =
      TEMPORAL__API__REPLICATION__V1__CLUSTER_REPLICATION_CONFIG__INIT;
  Temporal__Api__Replication__V1__ClusterReplicationConfig *clp = &cl;
  pb_dur_t ret;
  describe_t d = TEMPORAL__API__WORKFLOWSERVICE__V1__DESCRIBE_NAMESPACE_RESPONSE__INIT;

  ni.name = (char *)info->name;
  ni.id = (char *)info->id;
  ni.state = TEMPORAL__API__ENUMS__V1__NAMESPACE_STATE__NAMESPACE_STATE_REGISTERED;
  ni.description = (char *)(description ? description : "");
  ni.owner_email = (char *)(owner ? owner : "");
  stamp_caps(&nss->caps, &caps);
  ni.capabilities = &caps;
  gt_pb_dur(&ret, info->retention_ms);
  nc.workflow_execution_retention_ttl = &ret;
  nc.history_archival_state =
      TEMPORAL__API__ENUMS__V1__ARCHIVAL_STATE__ARCHIVAL_STATE_DISABLED;
  nc.visibility_archival_state =
      TEMPORAL__API__ENUMS__V1__ARCHIVAL_STATE__ARCHIVAL_STATE_DISABLED;
  cl.cluster_name = "active";
  rc.active_cluster_name = "active";
  rc.n_clusters = 1;
  rc.clusters = &clp;
  rc.state = TEMPORAL__API__ENUMS__V1__REPLICATION_STATE__REPLICATION_STATE_NORMAL;
  d.namespace_info = &ni;
  d.config = &nc;
  d.replication_config = &rc;
  d.is_global_namespace = 0;
  return pack_describe(&d, out, outlen);
}

/* A loaded row's DescribeNamespaceResponse bytes: fills *info and makes *out (a new
 * buffer, *outlen bytes) the same record with the server's capabilities stamped in. */
static int record_from_row(const gt_namespaces_t *nss, const uint8_t *p, size_t n,
                           gt_ns_info_t *info, uint8_t **out, size_t *outlen) {
  describe_t *d = (describe_t *)protobuf_c_message_unpack(
      &temporal__api__workflowservice__v1__describe_namespace_response__descriptor, NULL, n,
      p);
  if (!d || !d->namespace_info) {
    if (d)
      protobuf_c_message_free_unpacked(&d->base, NULL);
    return GT_ECORRUPT;
  }
  Temporal__Api__Namespace__V1__NamespaceInfo *ni = d->namespace_info;
  snprintf(info->name, sizeof(info->name), "%s", ni->name);
  snprintf(info->id, sizeof(info->id), "%s", ni->id);
  info->retention_ms =
      d->config ? gt_pb_dur_ms(d->config->workflow_execution_retention_ttl) : 0;
  Temporal__Api__Namespace__V1__NamespaceInfo__Capabilities caps =
      TEMPORAL__API__NAMESPACE__V1__NAMESPACE_INFO__CAPABILITIES__INIT;
  if (ni->capabilities)
    caps = *ni->capabilities; /* keeps what we do not stamp */
  stamp_caps(&nss->caps, &caps);
  Temporal__Api__Namespace__V1__NamespaceInfo__Capabilities *unpacked = ni->capabilities;
  ni->capabilities = &caps;
  int rc = pack_describe(d, out, outlen);
  ni->capabilities = unpacked; /* the unpacked message frees its own, not our copy */
  protobuf_c_message_free_unpacked(&d->base, NULL);
  return rc;
}

int gt_namespaces_load(gt_namespaces_t **out, gt_store_t *store, const gt_ns_caps_t *caps) {
  gt_namespaces_t *nss = calloc(1, sizeof(*nss));
  if (!nss)
    return GT_ENOMEM;
  pthread_rwlock_init(&nss->lock, NULL);
  nss->store = store;
  if (caps)
    nss->caps = *caps;
  gt_store_op_t op = {.stmt = GT_SQL_NAMESPACE_LIST, .nparams = 0, .expect_rows = -1};
  gt_rows_t *rows = NULL;
  int rc = gt_store_read_sync(store, &op, &rows);
  for (int r = 0; rc == 0 && r < rows->nrows; r++) {
    const gt_val_t *data = gt_rows_at(rows, r, 2);
    gt_ns_info_t info = {0};
    uint8_t *record = NULL;
    size_t len = 0;
    rc = record_from_row(nss, data->p, data->len, &info, &record, &len);
    ns_entry_t *e = rc == 0 ? add_entry(nss, &info) : NULL;
    if (rc == 0 && !e)
      rc = GT_ENOMEM;
    if (rc == 0) {
      e->describe = record;
      e->describe_len = len;
    } else {
      free(record);
    }
  }
  gt_store_rows_free(rows);
  if (rc != 0) {
    gt_log_error("NS-LOAD-FAILED", "loading namespaces: %s", gt_strerror(rc));
    gt_namespaces_free(nss);
    return rc;
  }
  *out = nss;
  return 0;
}

void gt_namespaces_free(gt_namespaces_t *nss) {
  if (!nss)
    return;
  for (int i = 0; i < nss->n; i++)
    free(nss->v[i].describe);
  free(nss->v);
  pthread_rwlock_destroy(&nss->lock);
  free(nss);
}

int gt_namespaces_get(gt_namespaces_t *nss, const char *name, gt_ns_info_t *info) {
  pthread_rwlock_rdlock(&nss->lock);
  ns_entry_t *e = find_name(nss, name);
  int rc = (e && !e->reserved) ? 0 : GT_ENOTFOUND;
  if (rc == 0)
    *info = e->info;
  pthread_rwlock_unlock(&nss->lock);
  return rc;
}

int gt_namespaces_get_by_id(gt_namespaces_t *nss, const char *id, gt_ns_info_t *info) {
  pthread_rwlock_rdlock(&nss->lock);
  ns_entry_t *e = find_id(nss, id);
  if (e)
    *info = e->info;
  pthread_rwlock_unlock(&nss->lock);
  return e ? 0 : GT_ENOTFOUND;
}

/* ---- registration ---- */

typedef struct reg_ctx {
  gt_namespaces_t *nss;
  gt_ns_info_t info;
  uint8_t *describe;
  size_t describe_len;
  void (*cb)(void *ctx, int rc);
  void *ctx;
} reg_ctx_t;

static void publish(gt_namespaces_t *nss, reg_ctx_t *rc, int ok) {
  pthread_rwlock_wrlock(&nss->lock);
  ns_entry_t *e = find_name(nss, rc->info.name);
  if (e && e->reserved) {
    if (ok) {
      e->reserved = 0;
      e->describe = rc->describe;
      e->describe_len = rc->describe_len;
      rc->describe = NULL;
    } else {
      remove_entry(nss, e);
    }
  }
  pthread_rwlock_unlock(&nss->lock);
}

static void register_done(void *ctx, int rc, int failed_op) {
  reg_ctx_t *r = ctx;
  if (rc != 0)
    gt_log_warn("NS-REGISTER-FAILED", "namespace %s: %s", r->info.name, gt_strerror(rc));
  publish(r->nss, r, rc == 0);
  r->cb(r->ctx, rc == 0 ? 0 : GT_EIO);
  free(r->describe);
  free(r);
}

/* Reserves the name and queues the row. Returns 0 or an error (nothing queued). */
static int register_info(gt_namespaces_t *nss, const gt_ns_info_t *info, const char *desc,
                         const char *owner, int is_default, gt_store_write_cb cb,
                         reg_ctx_t *r) {
  int rc = build_describe(nss, info, desc, owner, &r->describe, &r->describe_len);
  if (rc != 0)
    return rc;
  pthread_rwlock_wrlock(&nss->lock);
  if (find_name(nss, info->name))
    rc = GT_EEXISTS;
  else if (!add_entry(nss, info))
    rc = GT_ENOMEM;
  else
    find_name(nss, info->name)->reserved = 1;
  pthread_rwlock_unlock(&nss->lock);
  if (rc != 0)
    return rc;
  gt_store_op_t op = {.stmt = GT_SQL_NAMESPACE_UPSERT, .nparams = 4, .expect_rows = -1};
  op.params[0] = gt_val_text(info->id);
  op.params[1] = gt_val_text(info->name);
  op.params[2] = gt_val_blob(r->describe, r->describe_len);
  op.params[3] = gt_val_int(is_default);
  rc = gt_store_write(nss->store, -1, 0, &op, 1, cb, r);
  if (rc != 0)
    publish(nss, r, 0);
  return rc;
}

int gt_namespaces_register(gt_namespaces_t *nss,
                           const Temporal__Api__Workflowservice__V1__RegisterNamespaceRequest *req,
                           void (*cb)(void *ctx, int rc), void *ctx) {
  reg_ctx_t *r = calloc(1, sizeof(*r));
  if (!r)
    return GT_ENOMEM;
  r->nss = nss;
  r->cb = cb;
  r->ctx = ctx;
  snprintf(r->info.name, sizeof(r->info.name), "%s", req->namespace_);
  gt_uuid4(r->info.id);
  r->info.retention_ms = gt_pb_dur_ms(req->workflow_execution_retention_period);
  if (r->info.retention_ms <= 0)
    r->info.retention_ms = 72LL * 3600 * 1000; /* Temporal's default: 3 days */
  int rc = register_info(nss, &r->info, req->description, req->owner_email, 0,
                         register_done, r);
  if (rc != 0) {
    free(r->describe);
    free(r);
  }
  return rc;
}

int gt_namespaces_ensure_sync(gt_namespaces_t *nss, const char *name, int64_t retention_ms) {
  gt_ns_info_t info = {0};
  if (gt_namespaces_get(nss, name, &info) == 0)
    return 0;
  reg_ctx_t r = {.nss = nss};
  snprintf(r.info.name, sizeof(r.info.name), "%s", name);
  gt_uuid4(r.info.id);
  r.info.retention_ms = retention_ms;
  int rc = build_describe(nss, &r.info, "", "", &r.describe, &r.describe_len);
  if (rc != 0)
    return rc;
  gt_store_op_t op = {.stmt = GT_SQL_NAMESPACE_UPSERT, .nparams = 4, .expect_rows = -1};
  op.params[0] = gt_val_text(r.info.id);
  op.params[1] = gt_val_text(r.info.name);
  op.params[2] = gt_val_blob(r.describe, r.describe_len);
  op.params[3] = gt_val_int(1);
  int failed = -1;
  rc = gt_store_write_sync(nss->store, -1, 0, &op, 1, &failed);
  if (rc == 0) {
    pthread_rwlock_wrlock(&nss->lock);
    ns_entry_t *e = add_entry(nss, &r.info);
    if (e) {
      e->describe = r.describe;
      e->describe_len = r.describe_len;
      r.describe = NULL;
    } else {
      rc = GT_ENOMEM;
    }
    pthread_rwlock_unlock(&nss->lock);
  }
  free(r.describe);
  return rc;
}

int gt_namespaces_describe(gt_namespaces_t *nss, const char *name, const char *id,
                           gt_buf_t *out) {
  pthread_rwlock_rdlock(&nss->lock);
  ns_entry_t *e = name && *name ? find_name(nss, name) : (id ? find_id(nss, id) : NULL);
  int rc = (e && !e->reserved) ? 0 : GT_ENOTFOUND;
  if (rc == 0)
    gt_buf_put(out, e->describe, e->describe_len);
  pthread_rwlock_unlock(&nss->lock);
  return rc;
}

int gt_namespaces_list(gt_namespaces_t *nss, int offset, int limit, gt_buf_t *out,
                       int *next) {
  int count = 0;
  *next = 0;
  pthread_rwlock_rdlock(&nss->lock);
  int i = offset < 0 ? 0 : offset;
  for (; i < nss->n; i++) {
    if (nss->v[i].reserved)
      continue;
    if (limit > 0 && count == limit) {
      *next = i;
      break;
    }
    gt_buf_field_bytes(out, 1, nss->v[i].describe, nss->v[i].describe_len);
    count++;
  }
  pthread_rwlock_unlock(&nss->lock);
  return count;
}

/* ---- update ---- */

typedef struct upd_ctx {
  gt_namespaces_t *nss;
  gt_ns_info_t info;
  uint8_t *describe;
  size_t describe_len;
  void (*cb)(void *ctx, int rc);
  void *ctx;
} upd_ctx_t;

static void update_done(void *ctx, int rc, int failed_op) {
  upd_ctx_t *u = ctx;
  (void)failed_op;
  if (rc == 0) {
    pthread_rwlock_wrlock(&u->nss->lock);
    ns_entry_t *e = find_name(u->nss, u->info.name);
    if (e) {
      free(e->describe);
      e->describe = u->describe;
      e->describe_len = u->describe_len;
      e->info = u->info;
      u->describe = NULL;
    }
    pthread_rwlock_unlock(&u->nss->lock);
  } else {
    gt_log_warn("NS-UPDATE-FAILED", "namespace %s: %s", u->info.name, gt_strerror(rc));
  }
  u->cb(u->ctx, rc == 0 ? 0 : GT_EIO);
  free(u->describe);
  free(u);
}

int gt_namespaces_update(gt_namespaces_t *nss, const char *name, const char *description,
                         const char *owner_email, int64_t retention_ms,
                         void (*cb)(void *ctx, int rc), void *ctx) {
  upd_ctx_t *u = calloc(1, sizeof(*u));
  if (!u)
    return GT_ENOMEM;
  u->nss = nss;
  u->cb = cb;
  u->ctx = ctx;
  /* the current record: what the request leaves unset stays as it is */
  pthread_rwlock_rdlock(&nss->lock);
  ns_entry_t *e = find_name(nss, name);
  describe_t *d = NULL;
  if (e && !e->reserved) {
    u->info = e->info;
    d = (describe_t *)protobuf_c_message_unpack(
        &temporal__api__workflowservice__v1__describe_namespace_response__descriptor, NULL,
        e->describe_len, e->describe);
  }
  pthread_rwlock_unlock(&nss->lock);
  if (!d) {
    free(u);
    return e ? GT_ENOMEM : GT_ENOTFOUND;
  }
  if (retention_ms > 0)
    u->info.retention_ms = retention_ms;
  const char *desc = description && *description ? description
                     : d->namespace_info ? d->namespace_info->description : "";
  const char *owner = owner_email && *owner_email ? owner_email
                      : d->namespace_info ? d->namespace_info->owner_email : "";
  int rc = build_describe(nss, &u->info, desc, owner, &u->describe, &u->describe_len);
  protobuf_c_message_free_unpacked(&d->base, NULL);
  if (rc == 0) {
    gt_store_op_t op = {.stmt = GT_SQL_NAMESPACE_UPSERT, .nparams = 4, .expect_rows = -1};
    op.params[0] = gt_val_text(u->info.id);
    op.params[1] = gt_val_text(u->info.name);
    op.params[2] = gt_val_blob(u->describe, u->describe_len);
    op.params[3] = gt_val_int(0);
    rc = gt_store_write(nss->store, -1, 0, &op, 1, update_done, u);
  }
  if (rc != 0) {
    free(u->describe);
    free(u);
  }
  return rc;
}

int gt_namespaces_snapshot(gt_namespaces_t *nss, gt_ns_info_t *out, int max) {
  int n = 0;
  pthread_rwlock_rdlock(&nss->lock);
  for (int i = 0; i < nss->n && n < max; i++)
    if (!nss->v[i].reserved)
      out[n++] = nss->v[i].info;
  pthread_rwlock_unlock(&nss->lock);
  return n;
}
