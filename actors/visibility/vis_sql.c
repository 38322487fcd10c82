/*
 * vis_sql.c: compiles a parsed List query (vis_query.c) to SQL text with bound values.
 *
 * DESIGN
 *   Identifiers never come from the query: a search attribute is a catalogue index, and
 *   its SQL is either a fixed column expression (gt_vis_builtins) or, for a custom
 *   attribute, a JSON lookup on visibility.search_json whose key is itself a bound value
 *   (SQLite json_extract(search_json, ?k) with k = $."Name"; PostgreSQL
 *   search_json::jsonb ->> $k). Every literal is converted to the attribute's type first
 *   (status names to their number, RFC3339 times and durations to nanoseconds, numbers
 *   checked) and then bound: a value can never become SQL. Doubles travel as text and are
 *   CAST in SQL (gt_val_t has no double).
 *   KeywordList `=` means "contains": json_each (SQLite) / jsonb @> (PostgreSQL).
 *   Default order is Temporal's: open runs first, then by close time, start time, run id,
 *   newest first; a user ORDER BY gets run_id appended so pages are stable.
 *
 * INVARIANTS
 *   - The SQL text contains only fixed fragments and placeholders; values go to params.
 *   - On error the partial output is freed and err holds "invalid query: ...".
 *
 * THREADS
 *   Pure: any thread.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actors/visibility/vis_int.h"
#include "runtime/err.h"

const gt_vis_builtin_t gt_vis_builtins[] = {
    {"ExecutionStatus", GT_VIS_T_KEYWORD, GT_VIS_T_STATUS, "status", 0},
    {"WorkflowId", GT_VIS_T_KEYWORD, GT_VIS_T_KEYWORD, "workflow_id", 0},
    {"RunId", GT_VIS_T_KEYWORD, GT_VIS_T_KEYWORD, "run_id", 0},
    {"WorkflowType", GT_VIS_T_KEYWORD, GT_VIS_T_KEYWORD, "workflow_type", 0},
    {"TaskQueue", GT_VIS_T_KEYWORD, GT_VIS_T_KEYWORD, "task_queue", 0},
    {"StartTime", GT_VIS_T_DATETIME, GT_VIS_T_DATETIME, "start_time_ns", 0},
    {"ExecutionTime", GT_VIS_T_DATETIME, GT_VIS_T_DATETIME, "execution_time_ns", 0},
    {"CloseTime", GT_VIS_T_DATETIME, GT_VIS_T_DATETIME, "NULLIF(close_time_ns, 0)", 1},
    {"HistoryLength", GT_VIS_T_INT, GT_VIS_T_INT, "history_length", 0},
    {"ExecutionDuration", GT_VIS_T_INT, GT_VIS_T_DURATION,
     "(NULLIF(close_time_ns, 0) - execution_time_ns)", 1},
};
const int gt_vis_nbuiltins = (int)(sizeof(gt_vis_builtins) / sizeof(gt_vis_builtins[0]));

static const char *const TYPE_NAMES[] = {
    [GT_VIS_T_TEXT] = "Text",     [GT_VIS_T_KEYWORD] = "Keyword",
    [GT_VIS_T_INT] = "Int",       [GT_VIS_T_DOUBLE] = "Double",
    [GT_VIS_T_BOOL] = "Bool",     [GT_VIS_T_DATETIME] = "Datetime",
    [GT_VIS_T_KEYWORD_LIST] = "KeywordList"};

const char *gt_vis_type_name(int type) {
  if (type == GT_VIS_T_STATUS)
    return "Keyword";
  if (type == GT_VIS_T_DURATION)
    return "Int";
  if (type <= 0 || type > GT_VIS_T_KEYWORD_LIST)
    return NULL;
  return TYPE_NAMES[type];
}

int gt_vis_type_from_name(const char *name, size_t len) {
  for (int t = GT_VIS_T_TEXT; t <= GT_VIS_T_KEYWORD_LIST; t++)
    if (strlen(TYPE_NAMES[t]) == len && strncmp(TYPE_NAMES[t], name, len) == 0)
      return t;
  return GT_VIS_T_UNSPECIFIED;
}

static const char *const STATUS_NAMES[] = {NULL,         "Running",  "Completed",
                                           "Failed",     "Canceled", "Terminated",
                                           "ContinuedAsNew", "TimedOut"};

const char *gt_vis_status_name(int status) {
  return status >= 1 && status <= 7 ? STATUS_NAMES[status] : NULL;
}

/* ------------------------------------------------------------------ times --- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *s. Returns the number, or -1. */
static int digits(const char **s, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*s)[i]))
      return -1;
    v = v * 10 + ((*s)[i] - '0');
  }
  *s += n;
  return v;
}

int gt_vis_parse_time(const char *s, int64_t *ns) {
  int y = digits(&s, 4);
  if (y < 0 || *s++ != '-')
    return GT_EINVAL;
  int mo = digits(&s, 2);
  if (mo < 1 || mo > 12 || *s++ != '-')
    return GT_EINVAL;
  int d = digits(&s, 2);
  if (d < 1 || d > 31 || (*s != 'T' && *s != 't' && *s != ' '))
    return GT_EINVAL;
  s++;
  int h = digits(&s, 2);
  if (h < 0 || h > 23 || *s++ != ':')
    return GT_EINVAL;
  int mi = digits(&s, 2);
  if (mi < 0 || mi > 59 || *s++ != ':')
    return GT_EINVAL;
  int se = digits(&s, 2);
  if (se < 0 || se > 60)
    return GT_EINVAL;
  int64_t frac = 0;
  if (*s == '.') {
    s++;
    int n = 0;
    for (; isdigit((unsigned char)*s); s++, n++)
      if (n < 9)
        frac = frac * 10 + (*s - '0');
    if (n == 0)
      return GT_EINVAL;
    for (; n < 9; n++)
      frac *= 10;
  }
  int64_t off = 0;
  if (*s == 'Z' || *s == 'z') {
    s++;
  } else if (*s == '+' || *s == '-') {
    int sign = *s++ == '-' ? -1 : 1;
    int oh = digits(&s, 2);
    if (oh < 0 || oh > 23 || *s++ != ':')
      return GT_EINVAL;
    int om = digits(&s, 2);
    if (om < 0 || om > 59)
      return GT_EINVAL;
    off = sign * (oh * 3600 + om * 60);
  } else {
    return GT_EINVAL;
  }
  if (*s)
    return GT_EINVAL;
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
  *ns = secs * 1000000000 + frac;
  return 0;
}

int gt_vis_parse_duration(const char *s, int64_t *ns) {
  char *end;
  errno = 0;
  long long whole = strtoll(s, &end, 10);
  if (*s && !*end && errno == 0) {
    *ns = whole;
    return 0;
  }
  int sign = 1;
  if (*s == '-' || *s == '+')
    sign = *s++ == '-' ? -1 : 1;
  if (!*s)
    return GT_EINVAL;
  double total = 0;
  while (*s) {
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
      return GT_EINVAL;
    s = end;
    static const struct { const char *u; double mul; } units[] = {
        {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
        {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    int found = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !found; i++) {
      size_t n = strlen(units[i].u);
      /* "m" must not take the "m" of "ms" */
      if (strncmp(s, units[i].u, n) == 0 && !(n == 1 && s[0] == 'm' && s[1] == 's')) {
        total += v * units[i].mul;
        s += n;
        found = 1;
      }
    }
    if (!found || total > 9.2e18)
      return GT_EINVAL;
  }
  *ns = sign * (int64_t)total;
  return 0;
}

/* ------------------------------------------------------------------ output --- */

typedef struct cc {
  vq_sql_t *out;
  char *sql;
  size_t len, cap;
  gt_store_backend_t be;
  const vq_catalog_t *cat;
  char *err;
  size_t errlen;
  int failed;
} cc_t;

static void cfail(cc_t *c, const char *fmt, ...) {
  if (c->failed)
    return;
  c->failed = GT_EINVAL;
  int n = snprintf(c->err, c->errlen, "invalid query: ");
  if (n < 0 || (size_t)n >= c->errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

static void coom(cc_t *c) {
  if (!c->failed) {
    c->failed = GT_ENOMEM;
    snprintf(c->err, c->errlen, "out of memory");
  }
}

static void put(cc_t *c, const char *s) {
  size_t n = strlen(s);
  if (c->failed)
    return;
  if (c->len + n + 1 > c->cap) {
    size_t ncap = c->cap ? c->cap * 2 : 512;
    while (ncap < c->len + n + 1)
      ncap *= 2;
    char *p = realloc(c->sql, ncap);
    if (!p) {
      coom(c);
      return;
    }
    c->sql = p;
    c->cap = ncap;
  }
  memcpy(c->sql + c->len, s, n + 1);
  c->len += n;
}

/* Appends the placeholder of parameter idx (1-based). */
static void ph(cc_t *c, int idx) {
  char b[16];
  snprintf(b, sizeof(b), "%c%d", c->be == GT_STORE_POSTGRES ? '$' : '?', idx);
  put(c, b);
}

/* Adds a parameter. Returns its 1-based index, or 0 on failure. */
static int param(cc_t *c, gt_val_t v) {
  if (c->failed)
    return 0;
  if (c->out->nparams >= GT_STORE_SQL_MAX_PARAMS) {
    cfail(c, "too many values (at most %d)", GT_STORE_SQL_MAX_PARAMS - 8);
    return 0;
  }
  c->out->params[c->out->nparams++] = v;
  return c->out->nparams;
}

static int param_int(cc_t *c, int64_t i) { return param(c, gt_val_int(i)); }

static int param_text(cc_t *c, const char *s) {
  if (c->failed)
    return 0;
  if (c->out->nparams >= GT_STORE_SQL_MAX_PARAMS)
    return param(c, gt_val_int(0)); /* fails with the message */
  char *copy = strdup(s);
  if (!copy) {
    coom(c);
    return 0;
  }
  c->out->strs[c->out->nstrs++] = copy;
  return param(c, gt_val_text(copy));
}

/* ------------------------------------------------------------------ attributes --- */

static const char *attr_name(const cc_t *c, int attr) {
  return attr < gt_vis_nbuiltins ? gt_vis_builtins[attr].name
                                 : c->cat->custom[attr - gt_vis_nbuiltins].name;
}

static int attr_type(const cc_t *c, int attr) {
  return attr < gt_vis_nbuiltins ? gt_vis_builtins[attr].query_type
                                 : c->cat->custom[attr - gt_vis_nbuiltins].type;
}

static int is_numeric(int t) {
  return t == GT_VIS_T_INT || t == GT_VIS_T_DOUBLE || t == GT_VIS_T_DATETIME ||
         t == GT_VIS_T_DURATION;
}

/* The JSON key parameter of a custom attribute. */
static int key_param(cc_t *c, int attr) {
  const char *name = attr_name(c, attr);
  if (c->be == GT_STORE_POSTGRES)
    return param_text(c, name);
  char path[300];
  snprintf(path, sizeof(path), "$.\"%s\"", name); /* names are [A-Za-z0-9_] only */
  return param_text(c, path);
}

/* Appends the SQL expression of an attribute's (scalar) value. */
static void column(cc_t *c, int attr) {
  if (attr < gt_vis_nbuiltins) {
    put(c, gt_vis_builtins[attr].expr);
    return;
  }
  int k = key_param(c, attr);
  if (c->be == GT_STORE_SQLITE) {
    put(c, "json_extract(search_json, ");
    ph(c, k);
    put(c, ")");
  } else if (is_numeric(attr_type(c, attr))) {
    /* a stored value of another JSON type must not make the cast fail the query */
    put(c, "(CASE WHEN jsonb_typeof(search_json::jsonb -> ");
    ph(c, k);
    put(c, ") = 'number' THEN (search_json::jsonb ->> ");
    ph(c, k);
    put(c, ")::numeric END)");
  } else {
    put(c, "(search_json::jsonb ->> ");
    ph(c, k);
    put(c, ")");
  }
}

/* ------------------------------------------------------------------ values --- */

static int parse_int(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || errno)
    return GT_EINVAL;
  *out = v;
  return 0;
}

static int status_value(const char *s, int64_t *out) {
  for (int i = 1; i <= 7; i++) {
    if (strcasecmp(STATUS_NAMES[i], s) == 0) {
      *out = i;
      return 0;
    }
  }
  if (parse_int(s, out) == 0 && *out >= 1 && *out <= 7)
    return 0;
  return GT_EINVAL;
}

/* Converts v for an attribute of type t, adds it as a parameter and appends its
 * placeholder. */
static void value(cc_t *c, int attr, const vq_value_t *v) {
  int t = attr_type(c, attr);
  int64_t i = 0;
  int rc = 0;
  switch (t) {
  case GT_VIS_T_STATUS:
    rc = v->kind == VQ_V_BOOL ? GT_EINVAL : status_value(v->text, &i);
    break;
  case GT_VIS_T_INT:
    rc = v->kind == VQ_V_BOOL ? GT_EINVAL : parse_int(v->text, &i);
    break;
  case GT_VIS_T_DATETIME:
    rc = v->kind == VQ_V_NUMBER ? parse_int(v->text, &i)
         : v->kind == VQ_V_STRING ? gt_vis_parse_time(v->text, &i) : GT_EINVAL;
    break;
  case GT_VIS_T_DURATION:
    rc = v->kind == VQ_V_BOOL ? GT_EINVAL : gt_vis_parse_duration(v->text, &i);
    break;
  case GT_VIS_T_DOUBLE: {
    char *end;
    errno = 0;
    double d = strtod(v->text, &end);
    rc = (v->kind == VQ_V_BOOL || !*v->text || *end || errno) ? GT_EINVAL : 0;
    (void)d;
    break;
  }
  case GT_VIS_T_BOOL:
    rc = (strcasecmp(v->text, "true") == 0 || strcasecmp(v->text, "false") == 0)
             ? 0 : GT_EINVAL;
    i = strcasecmp(v->text, "true") == 0;
    break;
  default: /* Keyword, Text, KeywordList: any literal, as text */
    break;
  }
  if (rc) {
    cfail(c, "invalid value '%.60s' for %s search attribute %s (position %d)", v->text,
          t == GT_VIS_T_STATUS ? "ExecutionStatus" : gt_vis_type_name(t), attr_name(c, attr),
          v->pos);
    return;
  }
  if (t == GT_VIS_T_DOUBLE) {
    put(c, "CAST(");
    ph(c, param_text(c, v->text));
    put(c, c->be == GT_STORE_POSTGRES ? " AS double precision)" : " AS REAL)");
  } else if (t == GT_VIS_T_BOOL && c->be == GT_STORE_POSTGRES) {
    ph(c, param_text(c, i ? "true" : "false")); /* ->> yields 'true' / 'false' */
  } else if (t == GT_VIS_T_KEYWORD || t == GT_VIS_T_TEXT || t == GT_VIS_T_KEYWORD_LIST) {
    ph(c, param_text(c, v->text));
  } else {
    ph(c, param_int(c, i));
  }
}

/* ------------------------------------------------------------------ predicates --- */

static const char *const OP_NAMES[] = {
    [VQ_EQ] = "=", [VQ_NE] = "!=", [VQ_GT] = ">", [VQ_GE] = ">=", [VQ_LT] = "<",
    [VQ_LE] = "<=", [VQ_IN] = "IN", [VQ_NOT_IN] = "NOT IN", [VQ_BETWEEN] = "BETWEEN",
    [VQ_NOT_BETWEEN] = "NOT BETWEEN", [VQ_STARTS_WITH] = "STARTS_WITH",
    [VQ_NOT_STARTS_WITH] = "NOT STARTS_WITH", [VQ_IS_NULL] = "IS NULL",
    [VQ_IS_NOT_NULL] = "IS NOT NULL"};

static int op_allowed(int t, vq_op_t op) {
  int null_test = op == VQ_IS_NULL || op == VQ_IS_NOT_NULL;
  int eq = op == VQ_EQ || op == VQ_NE || op == VQ_IN || op == VQ_NOT_IN;
  int prefix = op == VQ_STARTS_WITH || op == VQ_NOT_STARTS_WITH;
  switch (t) {
  case GT_VIS_T_STATUS:
    return eq;
  case GT_VIS_T_BOOL:
    return op == VQ_EQ || op == VQ_NE || null_test;
  case GT_VIS_T_KEYWORD_LIST:
    return eq || null_test;
  case GT_VIS_T_KEYWORD:
  case GT_VIS_T_TEXT:
    return 1;
  default:
    return !prefix;
  }
}

/* KeywordList membership of one value. */
static void list_contains(cc_t *c, int attr, const vq_value_t *v) {
  int k = key_param(c, attr);
  if (c->be == GT_STORE_SQLITE) {
    put(c, "EXISTS (SELECT 1 FROM json_each(search_json, ");
    ph(c, k);
    put(c, ") WHERE value = ");
    value(c, attr, v);
    put(c, ")");
  } else {
    put(c, "COALESCE((search_json::jsonb -> ");
    ph(c, k);
    put(c, ") @> to_jsonb(");
    value(c, attr, v);
    put(c, "), FALSE)");
  }
}

static void list_pred(cc_t *c, const vq_node_t *n) {
  if (n->op == VQ_IS_NULL || n->op == VQ_IS_NOT_NULL) {
    column(c, n->attr);
    put(c, n->op == VQ_IS_NULL ? " IS NULL" : " IS NOT NULL");
    return;
  }
  if (n->op == VQ_NE || n->op == VQ_NOT_IN)
    put(c, "NOT ");
  put(c, "(");
  for (int i = 0; i < n->nvals; i++) {
    if (i)
      put(c, " OR ");
    list_contains(c, n->attr, &n->vals[i]);
  }
  put(c, ")");
}

static void pred(cc_t *c, const vq_node_t *n) {
  int t = attr_type(c, n->attr);
  if (!op_allowed(t, n->op)) {
    cfail(c, "operator '%s' is not supported for %s search attribute %s", OP_NAMES[n->op],
          t == GT_VIS_T_STATUS ? "ExecutionStatus" : gt_vis_type_name(t),
          attr_name(c, n->attr));
    return;
  }
  if (t == GT_VIS_T_KEYWORD_LIST) {
    list_pred(c, n);
    return;
  }
  put(c, "(");
  switch (n->op) {
  case VQ_IS_NULL:
  case VQ_IS_NOT_NULL:
    column(c, n->attr);
    put(c, n->op == VQ_IS_NULL ? " IS NULL" : " IS NOT NULL");
    break;
  case VQ_IN:
  case VQ_NOT_IN:
    column(c, n->attr);
    put(c, n->op == VQ_IN ? " IN (" : " NOT IN (");
    for (int i = 0; i < n->nvals; i++) {
      if (i)
        put(c, ", ");
      value(c, n->attr, &n->vals[i]);
    }
    put(c, ")");
    break;
  case VQ_BETWEEN:
  case VQ_NOT_BETWEEN:
    column(c, n->attr);
    put(c, n->op == VQ_BETWEEN ? " BETWEEN " : " NOT BETWEEN ");
    value(c, n->attr, &n->vals[0]);
    put(c, " AND ");
    value(c, n->attr, &n->vals[1]);
    break;
  case VQ_STARTS_WITH:
  case VQ_NOT_STARTS_WITH: {
    int k = param_text(c, n->vals[0].text);
    if (n->op == VQ_NOT_STARTS_WITH)
      put(c, "NOT ");
    put(c, "substr(");
    column(c, n->attr);
    put(c, ", 1, length(");
    ph(c, k);
    put(c, ")) = ");
    ph(c, k);
    break;
  }
  default:
    column(c, n->attr);
    put(c, " ");
    put(c, n->op == VQ_NE ? "<>" : OP_NAMES[n->op]);
    put(c, " ");
    value(c, n->attr, &n->vals[0]);
    break;
  }
  put(c, ")");
}

static void node(cc_t *c, const vq_node_t *n) {
  if (c->failed)
    return;
  switch (n->kind) {
  case VQ_AND:
  case VQ_OR:
    put(c, "(");
    node(c, n->a);
    put(c, n->kind == VQ_AND ? " AND " : " OR ");
    node(c, n->b);
    put(c, ")");
    break;
  case VQ_NOT:
    put(c, "(NOT ");
    node(c, n->a);
    put(c, ")");
    break;
  case VQ_PRED:
    pred(c, n);
    break;
  }
}

static void order(cc_t *c, const vq_query_t *q) {
  put(c, " ORDER BY ");
  if (q->norder == 0) {
    put(c, "(close_time_ns = 0) DESC, close_time_ns DESC, start_time_ns DESC, "
           "run_id DESC");
    return;
  }
  for (int i = 0; i < q->norder; i++) {
    int attr = q->order[i].attr;
    if (attr_type(c, attr) == GT_VIS_T_KEYWORD_LIST) {
      cfail(c, "cannot order by KeywordList search attribute %s", attr_name(c, attr));
      return;
    }
    column(c, attr);
    put(c, q->order[i].desc ? " DESC NULLS LAST, " : " ASC NULLS LAST, ");
  }
  put(c, "run_id");
}

int vq_compile(const char *query, vq_kind_t kind, gt_store_backend_t be, const char *ns_id,
               const vq_catalog_t *cat, int64_t limit, int64_t offset, vq_sql_t **out,
               char *err, size_t errlen) {
  *out = NULL;
  vq_query_t q;
  int rc = vq_parse(query, cat, &q, err, errlen);
  if (rc)
    return rc;
  cc_t c = {.be = be, .cat = cat, .err = err, .errlen = errlen};
  c.out = calloc(1, sizeof(*c.out));
  if (!c.out) {
    vq_query_fini(&q);
    snprintf(err, errlen, "out of memory");
    return GT_ENOMEM;
  }
  if (kind == VQ_COUNT && q.group_by_status)
    put(&c, "SELECT status, COUNT(*) FROM visibility WHERE namespace_id = ");
  else if (kind == VQ_COUNT)
    put(&c, "SELECT COUNT(*) FROM visibility WHERE namespace_id = ");
  else
    put(&c, "SELECT " VQ_LIST_COLS " FROM visibility WHERE namespace_id = ");
  ph(&c, param_text(&c, ns_id));
  if (q.where) {
    put(&c, " AND ");
    node(&c, q.where);
  }
  if (kind == VQ_LIST && q.group_by_status)
    cfail(&c, "'group by' is only supported by CountWorkflowExecutions");
  if (kind == VQ_COUNT && q.group_by_status)
    put(&c, " GROUP BY status ORDER BY status");
  if (kind == VQ_LIST) {
    order(&c, &q);
    put(&c, " LIMIT ");
    ph(&c, param_int(&c, limit));
    put(&c, " OFFSET ");
    ph(&c, param_int(&c, offset));
  }
  c.out->group_by_status = q.group_by_status;
  vq_query_fini(&q);
  if (c.failed) {
    c.out->sql = c.sql;
    vq_sql_free(c.out);
    return c.failed;
  }
  c.out->sql = c.sql;
  *out = c.out;
  return 0;
}

void vq_sql_free(vq_sql_t *s) {
  if (!s)
    return;
  for (int i = 0; i < s->nstrs; i++)
    free(s->strs[i]);
  free(s->sql);
  free(s);
}
