/*
 * vis_int.h: what the files of the visibility role share: the List filter language
 * (vis_query.c: tokenizer, recursive-descent parser, AST), its compiler to SQL with bound
 * values only (vis_sql.c), the search-attribute catalogue and JSON encoding (vis_attrs.c).
 * Nothing outside actors/visibility/ includes it, except the unit test.
 *
 * DESIGN
 *   A query is parsed into an AST whose leaves name a search attribute by its index in the
 *   catalogue (built-in attributes, then the namespace's custom ones) and hold literal
 *   values as written. The compiler checks every operator and value against the
 *   attribute's type, converts values (status names, RFC3339 times, durations) and emits
 *   SQL text where identifiers come only from a fixed table and every value is a bound
 *   parameter (?N for SQLite, $N for PostgreSQL).
 *
 * THREADS
 *   Pure functions: any thread.
 */
#ifndef GT_VIS_INT_H
#define GT_VIS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "persistence/store.h"

/* temporal.api.enums.v1.IndexedValueType, plus our own for the built-in specials. */
enum {
  GT_VIS_T_UNSPECIFIED = 0,
  GT_VIS_T_TEXT = 1,
  GT_VIS_T_KEYWORD = 2,
  GT_VIS_T_INT = 3,
  GT_VIS_T_DOUBLE = 4,
  GT_VIS_T_BOOL = 5,
  GT_VIS_T_DATETIME = 6,
  GT_VIS_T_KEYWORD_LIST = 7,
  GT_VIS_T_STATUS = 100, /* ExecutionStatus: a Keyword of status names, stored as an int */
  GT_VIS_T_DURATION = 101 /* ExecutionDuration: an Int of nanoseconds */
};

/* A custom search attribute of a namespace. */
typedef struct gt_vis_custom {
  const char *name;
  int type; /* GT_VIS_T_TEXT .. GT_VIS_T_KEYWORD_LIST */
} gt_vis_custom_t;

/* The built-in search attributes, in the order GetSearchAttributes lists them. */
typedef struct gt_vis_builtin {
  const char *name;
  int type;         /* the IndexedValueType reported (STATUS -> KEYWORD, DURATION -> INT) */
  int query_type;   /* the type the compiler checks values against */
  const char *expr; /* the SQL expression (same in both dialects) */
  int nullable;     /* NULL for some rows (CloseTime of an open run) */
} gt_vis_builtin_t;
extern const gt_vis_builtin_t gt_vis_builtins[];
extern const int gt_vis_nbuiltins;

/* Name of an IndexedValueType ("Keyword", ...), or NULL. And back (case-sensitive);
 * returns GT_VIS_T_UNSPECIFIED when unknown. */
const char *gt_vis_type_name(int type);
int gt_vis_type_from_name(const char *name, size_t len);

/* WorkflowExecutionStatus name ("Running", ...) of status 1..7, or NULL. */
const char *gt_vis_status_name(int status);

/* --------------------------------------------------------------- the AST --- */

typedef enum { VQ_AND, VQ_OR, VQ_NOT, VQ_PRED } vq_node_kind_t;

typedef enum {
  VQ_EQ, VQ_NE, VQ_GT, VQ_GE, VQ_LT, VQ_LE,
  VQ_IN, VQ_NOT_IN, VQ_BETWEEN, VQ_NOT_BETWEEN,
  VQ_STARTS_WITH, VQ_NOT_STARTS_WITH, VQ_IS_NULL, VQ_IS_NOT_NULL
} vq_op_t;

typedef enum { VQ_V_STRING, VQ_V_NUMBER, VQ_V_BOOL } vq_value_kind_t;

typedef struct vq_value {
  vq_value_kind_t kind;
  char *text; /* unescaped string, or the number as written; "true"/"false" */
  int pos;    /* 1-based position in the query, for messages */
} vq_value_t;

typedef struct vq_node {
  vq_node_kind_t kind;
  struct vq_node *a, *b; /* AND/OR: both; NOT: a */
  int attr;              /* PRED: catalogue index */
  vq_op_t op;
  int nvals;
  vq_value_t *vals;
} vq_node_t;

typedef struct vq_order {
  int attr;
  int desc;
} vq_order_t;

#define VQ_MAX_ORDER 4

typedef struct vq_query {
  vq_node_t *where; /* NULL: every run */
  int group_by_status;
  int norder;
  vq_order_t order[VQ_MAX_ORDER];
} vq_query_t;

/* The catalogue a query is checked against: the built-ins, then `custom`. Attribute index
 * i < gt_vis_nbuiltins is a built-in, else custom[i - gt_vis_nbuiltins]. */
typedef struct vq_catalog {
  const gt_vis_custom_t *custom;
  int ncustom;
} vq_catalog_t;

/* Parses `query` (NUL-terminated). OUT: *q (free with vq_query_fini).
 * Returns 0, GT_EINVAL (err holds "invalid query: ..."), GT_ENOMEM. */
int vq_parse(const char *query, const vq_catalog_t *cat, vq_query_t *q, char *err,
             size_t errlen);
void vq_query_fini(vq_query_t *q);

/* --------------------------------------------------------------- the SQL --- */

typedef enum { VQ_LIST, VQ_COUNT } vq_kind_t;

/* Compiled SQL and its values. Text values point into storage owned here. */
typedef struct vq_sql {
  char *sql;
  int nparams;
  gt_val_t params[GT_STORE_SQL_MAX_PARAMS];
  char *strs[GT_STORE_SQL_MAX_PARAMS]; /* owned copies behind text params */
  int nstrs;
  int group_by_status;
} vq_sql_t;

/* The List result columns, in order (12, as GT_SQL_VISIBILITY_LIST). */
#define VQ_LIST_COLS                                                               \
  "namespace_id, run_id, workflow_id, workflow_type, task_queue, status, "         \
  "start_time_ns, execution_time_ns, close_time_ns, history_length, memo, "        \
  "search_attributes"

/* Parses and compiles `query` for namespace ns_id. VQ_LIST: the List columns, ordered,
 * `limit` rows from `offset`; VQ_COUNT: one count, or (status, count) rows with GROUP BY.
 * OUT: *out (heap; free with vq_sql_free). Returns 0, GT_EINVAL (err set), GT_ENOMEM. */
int vq_compile(const char *query, vq_kind_t kind, gt_store_backend_t be, const char *ns_id,
               const vq_catalog_t *cat, int64_t limit, int64_t offset, vq_sql_t **out,
               char *err, size_t errlen);
void vq_sql_free(vq_sql_t *s);

/* ------------------------------------------------------------- values --- */

/* RFC3339 ("2024-01-02T03:04:05.123Z", "+02:00" offsets) to Unix nanoseconds.
 * Returns 0 or GT_EINVAL. */
int gt_vis_parse_time(const char *s, int64_t *ns);

/* A Go-style duration ("1h30m", "250ms", "2s") or integer nanoseconds. 0 or GT_EINVAL. */
int gt_vis_parse_duration(const char *s, int64_t *ns);

/* Encodes packed temporal.api.common.v1.SearchAttributes as one JSON object of their
 * values (json/plain payloads only; a one-element list unwrapped unless its type is
 * KeywordList; a Datetime as Unix nanoseconds). OUT: *json (malloc'd, NUL-terminated),
 * or NULL when there is nothing to index. Returns 0, GT_ENOMEM, GT_EINVAL (not a
 * SearchAttributes message). */
int gt_vis_attrs_json(const uint8_t *p, size_t len, char **json);

#endif
