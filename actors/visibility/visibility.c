/*
 * visibility.c: visibility records and RPCs (see visibility.h).
 *
 * DESIGN
 *   The record is one row of the `visibility` table (GT_SQL_VISIBILITY_UPSERT); memo and
 *   search attributes are stored as their packed protobuf messages (what the RPCs return)
 *   and the search attributes once more as a JSON object (search_json, vis_attrs.c), what
 *   queries filter on.
 *   A read RPC is a short chain of store reads, each continuing in the previous one's
 *   completion: (1) the namespace's custom search attributes, (2) the compiled query
 *   (vis_sql.c) or the registry write. The request state (vreq_t) travels with the chain
 *   and is freed by whoever replies. Page tokens are opaque "gtv1:<offset>" strings.
 *   Custom search attributes live in the `search_attributes` table, per namespace.
 *
 * INVARIANTS
 *   - Every dispatched call is replied to exactly once, and its vreq_t freed then.
 *   - Query values reach the database only as bound parameters (vis_sql.c).
 *
 * THREADS
 *   gt_visibility_upsert_op: any thread (pure). gt_visibility_dispatch: the gateway
 *   thread; the continuations and replies run on store threads (gt_gateway_reply is
 *   thread-safe; gt_store_read_sql/write only enqueue).
 */
#include "actors/visibility/visibility.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/frontend/namespaces.h"
#include "actors/visibility/vis_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define WF_SVC "temporal.api.workflowservice.v1.WorkflowService"
#define OP_SVC "temporal.api.operatorservice.v1.OperatorService"
#define DEFAULT_PAGE 1000
#define MAX_PAGE 1000
#define MAX_CUSTOM 256
#define TOKEN_PREFIX "gtv1:"

/* ------------------------------------------------------------------ records --- */

int gt_visibility_upsert_op(gt_store_op_t *op, const gt_vis_record_t *rec,
                            gt_vis_scratch_t *scratch) {
  memset(scratch, 0, sizeof(*scratch));
  char *json = NULL;
  if (rec->search_attrs) {
    int rc = gt_vis_attrs_json(rec->search_attrs, rec->search_attrs_len, &json);
    if (rc == GT_ENOMEM)
      return rc;
    if (rc) /* not ours to refuse: the run is recorded, just not searchable by them */
      gt_log_warn("VIS-BAD-SEARCH-ATTRS", "run %s: search attributes do not parse",
                  rec->run_id);
  }
  memset(op, 0, sizeof(*op));
  op->stmt = GT_SQL_VISIBILITY_UPSERT;
  op->expect_rows = -1;
  op->nparams = 13;
  op->params[0] = gt_val_text(rec->ns_id);
  op->params[1] = gt_val_text(rec->run_id);
  op->params[2] = gt_val_text(rec->workflow_id);
  op->params[3] = gt_val_text(rec->workflow_type);
  op->params[4] = gt_val_text(rec->task_queue);
  op->params[5] = gt_val_int(rec->status);
  op->params[6] = gt_val_int(rec->start_ns);
  op->params[7] = gt_val_int(rec->execution_ns);
  op->params[8] = gt_val_int(rec->close_ns);
  op->params[9] = gt_val_int(rec->history_length);
  op->params[10] = rec->memo ? gt_val_blob(rec->memo, rec->memo_len)
                             : (gt_val_t){GT_VAL_NULL, 0, 0, 0};
  op->params[11] = rec->search_attrs ? gt_val_blob(rec->search_attrs, rec->search_attrs_len)
                                     : (gt_val_t){GT_VAL_NULL, 0, 0, 0};
  op->params[12] = gt_val_text(json); /* NULL -> SQL NULL */
  scratch->p = json;
  scratch->len = json ? strlen(json) : 0;
  return 0;
}

void gt_visibility_scratch_fini(gt_vis_scratch_t *scratch) {
  free(scratch->p);
  memset(scratch, 0, sizeof(*scratch));
}

/* ------------------------------------------------------------------ methods --- */

typedef enum {
  M_LIST, M_SCAN, M_COUNT, M_LIST_OPEN, M_LIST_CLOSED, M_GET_SA,
  M_ADD_SA, M_REMOVE_SA, M_LIST_SA, M__COUNT
} method_t;

static const struct {
  const char *svc, *name;
} METHODS[M__COUNT] = {
    [M_LIST] = {WF_SVC, "ListWorkflowExecutions"},
    [M_SCAN] = {WF_SVC, "ScanWorkflowExecutions"},
    [M_COUNT] = {WF_SVC, "CountWorkflowExecutions"},
    [M_LIST_OPEN] = {WF_SVC, "ListOpenWorkflowExecutions"},
    [M_LIST_CLOSED] = {WF_SVC, "ListClosedWorkflowExecutions"},
    [M_GET_SA] = {WF_SVC, "GetSearchAttributes"},
    [M_ADD_SA] = {OP_SVC, "AddSearchAttributes"},
    [M_REMOVE_SA] = {OP_SVC, "RemoveSearchAttributes"},
    [M_LIST_SA] = {OP_SVC, "ListSearchAttributes"},
};

static int method_of(const char *service, const char *method) {
  for (int i = 0; i < M__COUNT; i++)
    if (strcmp(METHODS[i].svc, service) == 0 && strcmp(METHODS[i].name, method) == 0)
      return i;
  return -1;
}

int gt_visibility_serves(const char *service, const char *method) {
  return service && method && method_of(service, method) >= 0;
}

/* One RPC in flight. */
typedef struct vreq {
  gt_server_t *srv;
  gt_gateway_call_t *call;
  method_t m;
  ProtobufCMessage *req;
  gt_ns_info_t ns;
  char *query;      /* owned: the List/Count query (legacy filters are turned into one) */
  int32_t page;     /* rows per page */
  int64_t offset;   /* of this page */
  vq_sql_t *sql;    /* the compiled query, while it runs */
  gt_vis_custom_t custom[MAX_CUSTOM];
  char *custom_names[MAX_CUSTOM];
  int ncustom;
} vreq_t;

static void vreq_free(vreq_t *v) {
  if (v->req)
    protobuf_c_message_free_unpacked(v->req, NULL);
  for (int i = 0; i < v->ncustom; i++)
    free(v->custom_names[i]);
  vq_sql_free(v->sql);
  free(v->query);
  free(v);
}

/* Replies and frees v. */
static void finish(vreq_t *v, int status, const char *msg, const uint8_t *body, size_t len) {
  gt_gateway_reply(v->call, status, msg, body, len, NULL, 0);
  vreq_free(v);
}

static void finish_msg(vreq_t *v, const ProtobufCMessage *resp) {
  size_t n = protobuf_c_message_get_packed_size(resp);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    finish(v, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return;
  }
  protobuf_c_message_pack(resp, buf);
  finish(v, GT_GRPC_OK, NULL, buf, n);
  free(buf);
}

static void finish_store_error(vreq_t *v, int rc) {
  gt_log_warn("VIS-STORE", "%s: store error %d", METHODS[v->m].name, rc);
  finish(v, rc == GT_ENOMEM ? GT_GRPC_RESOURCE_EXHAUSTED : GT_GRPC_UNAVAILABLE,
         "visibility store unavailable", NULL, 0);
}

/* ------------------------------------------------------------------ page tokens --- */

static int token_decode(const ProtobufCBinaryData *t, int64_t *offset) {
  *offset = 0;
  if (!t->len)
    return 0;
  size_t pl = strlen(TOKEN_PREFIX);
  if (t->len <= pl || t->len > pl + 18 || memcmp(t->data, TOKEN_PREFIX, pl) != 0)
    return GT_EINVAL;
  int64_t o = 0;
  for (size_t i = pl; i < t->len; i++) {
    if (!isdigit(t->data[i]))
      return GT_EINVAL;
    o = o * 10 + (t->data[i] - '0');
  }
  *offset = o;
  return 0;
}

/* ------------------------------------------------------------------ responses --- */

typedef Temporal__Api__Workflow__V1__WorkflowExecutionInfo pb_info_t;

/* One row's WorkflowExecutionInfo, pointing into the row (valid during the callback)
 * and into the storage given. Returns 0 or GT_ENOMEM. */
typedef struct info_store {
  pb_info_t info;
  pb_wfexec_t exec;
  pb_wftype_t type;
  pb_ts_t start, close, exec_time;
  Temporal__Api__Common__V1__Memo *memo;
  Temporal__Api__Common__V1__SearchAttributes *sa;
} info_store_t;

static void info_fill(info_store_t *s, const gt_rows_t *rs, int r) {
  temporal__api__workflow__v1__workflow_execution_info__init(&s->info);
  temporal__api__common__v1__workflow_execution__init(&s->exec);
  temporal__api__common__v1__workflow_type__init(&s->type);
  s->exec.workflow_id = (char *)gt_rows_at(rs, r, 2)->p;
  s->exec.run_id = (char *)gt_rows_at(rs, r, 1)->p;
  s->type.name = (char *)gt_rows_at(rs, r, 3)->p;
  s->info.execution = &s->exec;
  s->info.type = &s->type;
  s->info.task_queue = (char *)gt_rows_at(rs, r, 4)->p;
  s->info.status = (Temporal__Api__Enums__V1__WorkflowExecutionStatus)gt_rows_at(rs, r, 5)->i;
  gt_pb_ts(&s->start, gt_rows_at(rs, r, 6)->i);
  s->info.start_time = &s->start;
  gt_pb_ts(&s->exec_time, gt_rows_at(rs, r, 7)->i);
  s->info.execution_time = &s->exec_time;
  if (gt_rows_at(rs, r, 8)->i) {
    gt_pb_ts(&s->close, gt_rows_at(rs, r, 8)->i);
    s->info.close_time = &s->close;
  }
  s->info.history_length = gt_rows_at(rs, r, 9)->i;
  const gt_val_t *memo = gt_rows_at(rs, r, 10), *sa = gt_rows_at(rs, r, 11);
  s->memo = memo->kind == GT_VAL_BLOB
                ? temporal__api__common__v1__memo__unpack(NULL, memo->len, memo->p) : NULL;
  s->sa = sa->kind == GT_VAL_BLOB
              ? temporal__api__common__v1__search_attributes__unpack(NULL, sa->len, sa->p)
              : NULL;
  s->info.memo = s->memo;
  s->info.search_attributes = s->sa;
}

static void info_fini(info_store_t *s) {
  if (s->memo)
    temporal__api__common__v1__memo__free_unpacked(s->memo, NULL);
  if (s->sa)
    temporal__api__common__v1__search_attributes__free_unpacked(s->sa, NULL);
}

/* List/Scan/ListOpen/ListClosed share the response layout (executions = 1,
 * next_page_token = 2), so one builder serves them all. */
static void reply_list(vreq_t *v, const gt_rows_t *rs) {
  int n = rs->nrows > v->page ? v->page : rs->nrows;
  info_store_t *st = calloc((size_t)(n ? n : 1), sizeof(*st));
  pb_info_t **ptrs = calloc((size_t)(n ? n : 1), sizeof(*ptrs));
  if (!st || !ptrs) {
    free(st);
    free(ptrs);
    finish(v, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return;
  }
  for (int r = 0; r < n; r++) {
    info_fill(&st[r], rs, r);
    ptrs[r] = &st[r].info;
  }
  char tok[40];
  Temporal__Api__Workflowservice__V1__ListWorkflowExecutionsResponse resp;
  temporal__api__workflowservice__v1__list_workflow_executions_response__init(&resp);
  resp.n_executions = (size_t)n;
  resp.executions = ptrs;
  if (rs->nrows > v->page) { /* one row more than a page was asked: there is a next */
    snprintf(tok, sizeof(tok), TOKEN_PREFIX "%lld", (long long)(v->offset + v->page));
    resp.next_page_token.data = (uint8_t *)tok;
    resp.next_page_token.len = strlen(tok);
  }
  finish_msg(v, &resp.base);
  for (int r = 0; r < n; r++)
    info_fini(&st[r]);
  free(st);
  free(ptrs);
}

static void reply_count(vreq_t *v, const gt_rows_t *rs) {
  Temporal__Api__Workflowservice__V1__CountWorkflowExecutionsResponse resp;
  temporal__api__workflowservice__v1__count_workflow_executions_response__init(&resp);
  if (!v->sql->group_by_status) {
    resp.count = rs->nrows ? gt_rows_at(rs, 0, 0)->i : 0;
    finish_msg(v, &resp.base);
    return;
  }
  enum { NG = 8 };
  Temporal__Api__Workflowservice__V1__CountWorkflowExecutionsResponse__AggregationGroup g[NG],
      *gp[NG];
  Temporal__Api__Common__V1__Payload pl[NG], *plp[NG];
  Temporal__Api__Common__V1__Payload__MetadataEntry me[NG][2], *mep[NG][2];
  char data[NG][32];
  int n = 0;
  for (int r = 0; r < rs->nrows && n < NG; r++) {
    const char *name = gt_vis_status_name((int)gt_rows_at(rs, r, 0)->i);
    if (!name)
      continue;
    temporal__api__workflowservice__v1__count_workflow_executions_response__aggregation_group__init(
        &g[n]);
    temporal__api__common__v1__payload__init(&pl[n]);
    static const char *const mk[2] = {"encoding", "type"};
    static const char *const mv[2] = {"json/plain", "Keyword"};
    for (int k = 0; k < 2; k++) {
      temporal__api__common__v1__payload__metadata_entry__init(&me[n][k]);
      me[n][k].key = (char *)mk[k];
      me[n][k].value.data = (uint8_t *)mv[k];
      me[n][k].value.len = strlen(mv[k]);
      mep[n][k] = &me[n][k];
    }
    pl[n].n_metadata = 2;
    pl[n].metadata = mep[n];
    snprintf(data[n], sizeof(data[n]), "\"%s\"", name);
    pl[n].data.data = (uint8_t *)data[n];
    pl[n].data.len = strlen(data[n]);
    plp[n] = &pl[n];
    g[n].n_group_values = 1;
    g[n].group_values = &plp[n];
    g[n].count = gt_rows_at(rs, r, 1)->i;
    resp.count += g[n].count;
    gp[n] = &g[n];
    n++;
  }
  resp.n_groups = (size_t)n;
  resp.groups = gp;
  finish_msg(v, &resp.base);
}

static void query_cb(void *ctx, int rc, const gt_rows_t *rows) {
  vreq_t *v = ctx;
  if (rc) {
    finish_store_error(v, rc);
  } else if (v->m == M_COUNT) {
    reply_count(v, rows);
  } else {
    reply_list(v, rows);
  }
}

/* ------------------------------------------------------------------ registry --- */

static const char *registry_sql(const gt_server_t *srv) {
  return gt_store_backend(srv->store) == GT_STORE_POSTGRES
             ? "SELECT name, type FROM search_attributes WHERE namespace_id = $1 ORDER BY name"
             : "SELECT name, type FROM search_attributes WHERE namespace_id = ?1 ORDER BY name";
}

/* Copies the registry rows into v. Returns 0 or GT_ENOMEM. */
static int take_registry(vreq_t *v, const gt_rows_t *rs) {
  for (int r = 0; r < rs->nrows && v->ncustom < MAX_CUSTOM; r++) {
    const gt_val_t *name = gt_rows_at(rs, r, 0);
    if (name->kind != GT_VAL_TEXT)
      continue;
    char *copy = strdup(name->p);
    if (!copy)
      return GT_ENOMEM;
    v->custom_names[v->ncustom] = copy;
    v->custom[v->ncustom].name = copy;
    v->custom[v->ncustom].type = (int)gt_rows_at(rs, r, 1)->i;
    v->ncustom++;
  }
  return 0;
}

static int custom_type(const vreq_t *v, const char *name) {
  for (int i = 0; i < v->ncustom; i++)
    if (strcmp(v->custom[i].name, name) == 0)
      return v->custom[i].type;
  return 0;
}

static int is_builtin(const char *name) {
  for (int i = 0; i < gt_vis_nbuiltins; i++)
    if (strcmp(gt_vis_builtins[i].name, name) == 0)
      return 1;
  return 0;
}

/* ------------------------------------------------------------------ search attrs --- */

typedef Temporal__Api__Operatorservice__V1__ListSearchAttributesResponse__CustomAttributesEntry
    sa_entry_t;

/* Fills entries (and ptrs) with the built-ins (builtins = 1) or the customs of v.
 * Returns the count. */
static size_t sa_entries(const vreq_t *v, int builtins, sa_entry_t *e, sa_entry_t **ptrs) {
  size_t n = 0;
  int total = builtins ? gt_vis_nbuiltins : v->ncustom;
  for (int i = 0; i < total; i++, n++) {
    temporal__api__operatorservice__v1__list_search_attributes_response__custom_attributes_entry__init(
        &e[n]);
    e[n].key = (char *)(builtins ? gt_vis_builtins[i].name : v->custom[i].name);
    e[n].value = (Temporal__Api__Enums__V1__IndexedValueType)(
        builtins ? gt_vis_builtins[i].type : v->custom[i].type);
    ptrs[n] = &e[n];
  }
  return n;
}

static void reply_sa(vreq_t *v) {
  sa_entry_t sys[16], cus[MAX_CUSTOM], *sysp[16], *cusp[MAX_CUSTOM];
  size_t ns = sa_entries(v, 1, sys, sysp), nc = sa_entries(v, 0, cus, cusp);
  if (v->m == M_LIST_SA) {
    Temporal__Api__Operatorservice__V1__ListSearchAttributesResponse resp;
    temporal__api__operatorservice__v1__list_search_attributes_response__init(&resp);
    resp.n_custom_attributes = nc;
    resp.custom_attributes = cusp;
    /* the map entry messages of the three maps share one layout */
    resp.n_system_attributes = ns;
    resp.system_attributes = (void *)sysp;
    finish_msg(v, &resp.base);
    return;
  }
  /* GetSearchAttributes: one map of everything; its entry layout is the same again */
  sa_entry_t *all[16 + MAX_CUSTOM];
  memcpy(all, sysp, ns * sizeof(*all));
  memcpy(all + ns, cusp, nc * sizeof(*all));
  for (size_t i = 0; i < ns + nc; i++)
    all[i]->base.descriptor =
        &temporal__api__workflowservice__v1__get_search_attributes_response__keys_entry__descriptor;
  Temporal__Api__Workflowservice__V1__GetSearchAttributesResponse resp;
  temporal__api__workflowservice__v1__get_search_attributes_response__init(&resp);
  resp.n_keys = ns + nc;
  resp.keys = (void *)all;
  finish_msg(v, &resp.base);
}

static void sa_write_cb(void *ctx, int rc, int failed_op) {
  (void)failed_op;
  vreq_t *v = ctx;
  if (rc) {
    finish_store_error(v, rc);
    return;
  }
  /* Add and Remove answer with empty messages */
  finish(v, GT_GRPC_OK, NULL, NULL, 0);
}

static int valid_name(const char *s) {
  if (!s || !(isalpha((unsigned char)*s) || *s == '_') || strlen(s) > 64)
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_')
      return 0;
  return 1;
}

/* Runs Add/Remove against the registry already in v. */
static void change_sa(vreq_t *v) {
  char msg[300];
  size_t n;
  if (v->m == M_ADD_SA)
    n = ((Temporal__Api__Operatorservice__V1__AddSearchAttributesRequest *)v->req)
            ->n_search_attributes;
  else
    n = ((Temporal__Api__Operatorservice__V1__RemoveSearchAttributesRequest *)v->req)
            ->n_search_attributes;
  if (n == 0 || n > 64) {
    finish(v, GT_GRPC_INVALID_ARGUMENT, "Search attributes are not set on request.", NULL,
           0);
    return;
  }
  gt_store_op_t *ops = calloc(n, sizeof(*ops));
  if (!ops) {
    finish(v, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return;
  }
  int nops = 0;
  for (size_t i = 0; i < n; i++) {
    const char *name;
    int type = 0;
    if (v->m == M_ADD_SA) {
      const Temporal__Api__Operatorservice__V1__AddSearchAttributesRequest__SearchAttributesEntry
          *e = ((Temporal__Api__Operatorservice__V1__AddSearchAttributesRequest *)v->req)
                   ->search_attributes[i];
      name = e->key;
      type = (int)e->value;
      if (!valid_name(name)) {
        snprintf(msg, sizeof(msg), "Search attribute name %.100s is invalid.",
                 name ? name : "");
      } else if (is_builtin(name)) {
        snprintf(msg, sizeof(msg), "Search attribute %s is reserved by system.", name);
      } else if (type < GT_VIS_T_TEXT || type > GT_VIS_T_KEYWORD_LIST) {
        snprintf(msg, sizeof(msg), "Unknown search attribute type: %d.", type);
      } else if (custom_type(v, name) && custom_type(v, name) != type) {
        snprintf(msg, sizeof(msg), "Search attribute %s already exists.", name);
        free(ops);
        finish(v, GT_GRPC_ALREADY_EXISTS, msg, NULL, 0);
        return;
      } else {
        msg[0] = '\0';
      }
    } else {
      name = ((Temporal__Api__Operatorservice__V1__RemoveSearchAttributesRequest *)v->req)
                 ->search_attributes[i];
      if (!name || !custom_type(v, name)) {
        snprintf(msg, sizeof(msg), "Search attribute %.100s doesn't exist.",
                 name ? name : "");
        free(ops);
        finish(v, GT_GRPC_NOT_FOUND, msg, NULL, 0);
        return;
      }
      msg[0] = '\0';
    }
    if (msg[0]) {
      free(ops);
      finish(v, GT_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
      return;
    }
    gt_store_op_t *o = &ops[nops++];
    o->expect_rows = -1;
    o->params[0] = gt_val_text(v->ns.id);
    o->params[1] = gt_val_text(name);
    if (v->m == M_ADD_SA) {
      o->stmt = GT_SQL_SEARCH_ATTR_UPSERT;
      o->nparams = 3;
      o->params[2] = gt_val_int(type);
    } else {
      o->stmt = GT_SQL_SEARCH_ATTR_DELETE;
      o->nparams = 2;
    }
  }
  int rc = gt_store_write(v->srv->store, -1, 0, ops, nops, sa_write_cb, v);
  free(ops);
  if (rc)
    finish_store_error(v, rc);
}

/* ------------------------------------------------------------------ queries --- */

static void run_query(vreq_t *v) {
  char err[512];
  vq_catalog_t cat = {v->custom, v->ncustom};
  /* the records' store (the SQL dialect is its own); the registry stays in the default */
  gt_store_backend_t be = gt_store_backend(v->srv->vis_store);
  int rc = vq_compile(v->query, v->m == M_COUNT ? VQ_COUNT : VQ_LIST, be, v->ns.id, &cat,
                      (int64_t)v->page + 1, v->offset, &v->sql, err, sizeof(err));
  if (rc == GT_EINVAL) {
    finish(v, GT_GRPC_INVALID_ARGUMENT, err, NULL, 0);
    return;
  }
  if (rc) {
    finish(v, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return;
  }
  rc = gt_store_read_sql(v->srv->vis_store, v->sql->sql, v->sql->params, v->sql->nparams,
                         query_cb, v);
  if (rc)
    finish_store_error(v, rc);
}

static void registry_cb(void *ctx, int rc, const gt_rows_t *rows) {
  vreq_t *v = ctx;
  if (rc == 0)
    rc = take_registry(v, rows);
  if (rc) {
    finish_store_error(v, rc);
    return;
  }
  switch (v->m) {
  case M_GET_SA:
  case M_LIST_SA:
    reply_sa(v);
    break;
  case M_ADD_SA:
  case M_REMOVE_SA:
    change_sa(v);
    break;
  default:
    run_query(v);
    break;
  }
}

/* ------------------------------------------------------------------ requests --- */

/* Appends `s` to the legacy query as a double-quoted string literal. */
static void quote_into(char *q, size_t cap, const char *s) {
  size_t n = strlen(q);
  if (n + 2 >= cap)
    return;
  q[n++] = '"';
  for (; *s && n + 3 < cap; s++) {
    if (*s == '"' || *s == '\\')
      q[n++] = '\\';
    q[n++] = *s;
  }
  q[n++] = '"';
  q[n] = '\0';
}

/* ListOpen/ListClosed: their filters as a query of our own language. Returns a malloc'd
 * query, or NULL (OOM). */
static char *legacy_query(vreq_t *v) {
  const Temporal__Api__Filter__V1__StartTimeFilter *tf;
  const Temporal__Api__Filter__V1__WorkflowExecutionFilter *ef = NULL;
  const Temporal__Api__Filter__V1__WorkflowTypeFilter *yf = NULL;
  const Temporal__Api__Filter__V1__StatusFilter *sf = NULL;
  if (v->m == M_LIST_OPEN) {
    Temporal__Api__Workflowservice__V1__ListOpenWorkflowExecutionsRequest *r = (void *)v->req;
    tf = r->start_time_filter;
    if (r->filters_case ==
        TEMPORAL__API__WORKFLOWSERVICE__V1__LIST_OPEN_WORKFLOW_EXECUTIONS_REQUEST__FILTERS_EXECUTION_FILTER)
      ef = r->execution_filter;
    else if (r->filters_case ==
             TEMPORAL__API__WORKFLOWSERVICE__V1__LIST_OPEN_WORKFLOW_EXECUTIONS_REQUEST__FILTERS_TYPE_FILTER)
      yf = r->type_filter;
  } else {
    Temporal__Api__Workflowservice__V1__ListClosedWorkflowExecutionsRequest *r =
        (void *)v->req;
    tf = r->start_time_filter;
    if (r->filters_case ==
        TEMPORAL__API__WORKFLOWSERVICE__V1__LIST_CLOSED_WORKFLOW_EXECUTIONS_REQUEST__FILTERS_EXECUTION_FILTER)
      ef = r->execution_filter;
    else if (r->filters_case ==
             TEMPORAL__API__WORKFLOWSERVICE__V1__LIST_CLOSED_WORKFLOW_EXECUTIONS_REQUEST__FILTERS_TYPE_FILTER)
      yf = r->type_filter;
    else if (r->filters_case ==
             TEMPORAL__API__WORKFLOWSERVICE__V1__LIST_CLOSED_WORKFLOW_EXECUTIONS_REQUEST__FILTERS_STATUS_FILTER)
      sf = r->status_filter;
  }
  size_t cap = 2048;
  char *q = malloc(cap);
  if (!q)
    return NULL;
  snprintf(q, cap, "%s", v->m == M_LIST_OPEN ? "ExecutionStatus = 'Running'"
                                             : "ExecutionStatus != 'Running'");
  if (tf && tf->earliest_time) {
    size_t n = strlen(q);
    snprintf(q + n, cap - n, " AND StartTime >= %lld", (long long)gt_pb_ts_ns(tf->earliest_time));
  }
  if (tf && tf->latest_time) {
    size_t n = strlen(q);
    snprintf(q + n, cap - n, " AND StartTime <= %lld", (long long)gt_pb_ts_ns(tf->latest_time));
  }
  if (ef && ef->workflow_id && *ef->workflow_id) {
    strncat(q, " AND WorkflowId = ", cap - strlen(q) - 1);
    quote_into(q, cap, ef->workflow_id);
  }
  if (ef && ef->run_id && *ef->run_id) {
    strncat(q, " AND RunId = ", cap - strlen(q) - 1);
    quote_into(q, cap, ef->run_id);
  }
  if (yf && yf->name && *yf->name) {
    strncat(q, " AND WorkflowType = ", cap - strlen(q) - 1);
    quote_into(q, cap, yf->name);
  }
  if (sf && sf->status) {
    size_t n = strlen(q);
    snprintf(q + n, cap - n, " AND ExecutionStatus = %d", (int)sf->status);
  }
  return q;
}

/* Pulls namespace, query, page size and token out of the request. Returns 0, or replies
 * (and frees v) and returns -1. */
static int read_request(vreq_t *v) {
  const char *ns = NULL, *query = NULL;
  int32_t page = 0;
  const ProtobufCBinaryData *tok = NULL;
  switch (v->m) {
  case M_LIST: {
    Temporal__Api__Workflowservice__V1__ListWorkflowExecutionsRequest *r = (void *)v->req;
    ns = r->namespace_, query = r->query, page = r->page_size, tok = &r->next_page_token;
    break;
  }
  case M_SCAN: {
    Temporal__Api__Workflowservice__V1__ScanWorkflowExecutionsRequest *r = (void *)v->req;
    ns = r->namespace_, query = r->query, page = r->page_size, tok = &r->next_page_token;
    break;
  }
  case M_COUNT: {
    Temporal__Api__Workflowservice__V1__CountWorkflowExecutionsRequest *r = (void *)v->req;
    ns = r->namespace_, query = r->query;
    break;
  }
  case M_LIST_OPEN: {
    Temporal__Api__Workflowservice__V1__ListOpenWorkflowExecutionsRequest *r = (void *)v->req;
    ns = r->namespace_, page = r->maximum_page_size, tok = &r->next_page_token;
    break;
  }
  case M_LIST_CLOSED: {
    Temporal__Api__Workflowservice__V1__ListClosedWorkflowExecutionsRequest *r =
        (void *)v->req;
    ns = r->namespace_, page = r->maximum_page_size, tok = &r->next_page_token;
    break;
  }
  case M_GET_SA:
    ns = "default"; /* the request names no namespace */
    break;
  case M_ADD_SA:
    ns = ((Temporal__Api__Operatorservice__V1__AddSearchAttributesRequest *)v->req)->namespace_;
    break;
  case M_REMOVE_SA:
    ns = ((Temporal__Api__Operatorservice__V1__RemoveSearchAttributesRequest *)v->req)
             ->namespace_;
    break;
  case M_LIST_SA:
    ns = ((Temporal__Api__Operatorservice__V1__ListSearchAttributesRequest *)v->req)
             ->namespace_;
    break;
  default:
    break;
  }
  if ((v->m == M_ADD_SA || v->m == M_REMOVE_SA || v->m == M_LIST_SA) && (!ns || !*ns))
    ns = "default";
  char msg[400];
  if (!ns || !*ns) {
    finish(v, GT_GRPC_INVALID_ARGUMENT, "Namespace not set on request.", NULL, 0);
    return -1;
  }
  if (gt_namespaces_get(v->srv->namespaces, ns, &v->ns) != 0) {
    snprintf(msg, sizeof(msg), "Namespace %.300s is not found.", ns);
    finish(v, GT_GRPC_NOT_FOUND, msg, NULL, 0);
    return -1;
  }
  if (tok && token_decode(tok, &v->offset) != 0) {
    finish(v, GT_GRPC_INVALID_ARGUMENT, "Invalid NextPageToken.", NULL, 0);
    return -1;
  }
  v->page = page <= 0 ? DEFAULT_PAGE : page > MAX_PAGE ? MAX_PAGE : page;
  if (v->m == M_LIST_OPEN || v->m == M_LIST_CLOSED)
    v->query = legacy_query(v);
  else
    v->query = strdup(query ? query : "");
  if (!v->query) {
    finish(v, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
    return -1;
  }
  return 0;
}

void gt_visibility_dispatch(gt_server_t *srv, gt_gateway_call_t *call, const char *method,
                            ProtobufCMessage *req) {
  int m = -1;
  for (int i = 0; i < M__COUNT && m < 0; i++)
    if (strcmp(METHODS[i].name, method) == 0)
      m = i;
  vreq_t *v = m >= 0 ? calloc(1, sizeof(*v)) : NULL;
  if (!v) {
    protobuf_c_message_free_unpacked(req, NULL);
    gt_gateway_reply(call, m < 0 ? GT_GRPC_UNIMPLEMENTED : GT_GRPC_RESOURCE_EXHAUSTED,
                     m < 0 ? method : "out of memory", NULL, 0, NULL, 0);
    return;
  }
  v->srv = srv;
  v->call = call;
  v->m = (method_t)m;
  v->req = req;
  if (read_request(v) != 0)
    return;
  int rc = gt_store_read_sql(srv->store, registry_sql(srv), &(gt_val_t){GT_VAL_TEXT, 0,
                                                                       v->ns.id,
                                                                       strlen(v->ns.id)},
                             1, registry_cb, v);
  if (rc)
    finish_store_error(v, rc);
}
