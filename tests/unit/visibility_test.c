/*
 * visibility_test.c: the visibility role's List filter language (tokenizer, parser,
 * compiler to SQL with bound values), the search-attribute JSON, the upsert op, and the
 * compiled queries run against a real SQLite store.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/visibility/vis_int.h"
#include "actors/visibility/visibility.h"
#include "persistence/store.h"
#include "runtime/err.h"
#include "temporal/api/common/v1/message.pb-c.h"

static const gt_vis_custom_t CUSTOM[] = {
    {"CustomKeywordField", GT_VIS_T_KEYWORD}, {"CustomIntField", GT_VIS_T_INT},
    {"CustomDoubleField", GT_VIS_T_DOUBLE},   {"CustomBoolField", GT_VIS_T_BOOL},
    {"CustomDatetimeField", GT_VIS_T_DATETIME}, {"Tags", GT_VIS_T_KEYWORD_LIST}};
static const vq_catalog_t CAT = {CUSTOM, 6};

#define LIST_HEAD "SELECT " VQ_LIST_COLS " FROM visibility WHERE namespace_id = "
#define DEF_ORDER                                                                  \
  " ORDER BY (close_time_ns = 0) DESC, close_time_ns DESC, start_time_ns DESC, run_id DESC"

static vq_sql_t *compile_ok(const char *q, vq_kind_t kind, gt_store_backend_t be) {
  char err[512] = "";
  vq_sql_t *s = NULL;
  int rc = vq_compile(q, kind, be, "ns-1", &CAT, 11, 20, &s, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s: rc %d: %s", q, rc, err);
  ck_assert_ptr_nonnull(s);
  return s;
}

static void expect_err(const char *q, const char *msg) {
  char err[512] = "";
  vq_sql_t *s = NULL;
  int rc = vq_compile(q, VQ_LIST, GT_STORE_SQLITE, "ns-1", &CAT, 11, 0, &s, err,
                      sizeof(err));
  ck_assert_msg(rc == GT_EINVAL, "%s: rc %d", q, rc);
  ck_assert_ptr_null(s);
  ck_assert_str_eq(err, msg);
}

static void assert_text_param(const vq_sql_t *s, int i, const char *want) {
  ck_assert_int_lt(i, s->nparams);
  ck_assert_int_eq(s->params[i].kind, GT_VAL_TEXT);
  ck_assert_uint_eq(s->params[i].len, strlen(want));
  ck_assert_mem_eq(s->params[i].p, want, strlen(want));
}

static void assert_int_param(const vq_sql_t *s, int i, int64_t want) {
  ck_assert_int_lt(i, s->nparams);
  ck_assert_int_eq(s->params[i].kind, GT_VAL_INT);
  ck_assert_int_eq(s->params[i].i, want);
}

/* ------------------------------------------------------------------ compile --- */

START_TEST(test_simple_and_or) {
  vq_sql_t *s = compile_ok("WorkflowType = 'hello' AND (ExecutionStatus = \"Completed\" OR "
                           "ExecutionStatus='Failed')",
                           VQ_LIST, GT_STORE_SQLITE);
  ck_assert_str_eq(s->sql, LIST_HEAD "?1 AND ((workflow_type = ?2) AND ((status = ?3) OR "
                                     "(status = ?4)))" DEF_ORDER " LIMIT ?5 OFFSET ?6");
  ck_assert_int_eq(s->nparams, 6);
  assert_text_param(s, 0, "ns-1");
  assert_text_param(s, 1, "hello");
  assert_int_param(s, 2, 2);
  assert_int_param(s, 3, 3);
  assert_int_param(s, 4, 11);
  assert_int_param(s, 5, 20);
  vq_sql_free(s);
}
END_TEST

START_TEST(test_empty_query_and_order) {
  vq_sql_t *s = compile_ok("", VQ_LIST, GT_STORE_SQLITE);
  ck_assert_str_eq(s->sql, LIST_HEAD "?1" DEF_ORDER " LIMIT ?2 OFFSET ?3");
  vq_sql_free(s);
  s = compile_ok("order by StartTime desc, WorkflowId", VQ_LIST, GT_STORE_POSTGRES);
  ck_assert_str_eq(s->sql, LIST_HEAD "$1 ORDER BY start_time_ns DESC NULLS LAST, "
                                     "workflow_id ASC NULLS LAST, run_id LIMIT $2 OFFSET $3");
  vq_sql_free(s);
}
END_TEST

START_TEST(test_in_between_starts_with_null) {
  vq_sql_t *s = compile_ok("WorkflowId IN ('a', 'b') AND StartTime BETWEEN "
                           "'2024-01-01T00:00:00Z' AND \"2024-01-01T00:00:01.5+01:00\" AND "
                           "WorkflowId STARTS_WITH 'pre' AND CloseTime IS NULL AND "
                           "RunId NOT IN ('x') AND HistoryLength IS NOT NULL",
                           VQ_LIST, GT_STORE_SQLITE);
  ck_assert_str_eq(s->sql,
                   LIST_HEAD "?1 AND ((((((workflow_id IN (?2, ?3)) AND (start_time_ns "
                             "BETWEEN ?4 AND ?5)) AND (substr(workflow_id, 1, length(?6)) = "
                             "?6)) AND (NULLIF(close_time_ns, 0) IS NULL)) AND (run_id NOT IN "
                             "(?7))) AND (history_length IS NOT NULL))" DEF_ORDER
                             " LIMIT ?8 OFFSET ?9");
  assert_text_param(s, 1, "a");
  assert_text_param(s, 2, "b");
  assert_int_param(s, 3, 1704067200LL * 1000000000LL);
  assert_int_param(s, 4, (1704067200LL - 3600 + 1) * 1000000000LL + 500000000LL);
  assert_text_param(s, 5, "pre");
  assert_text_param(s, 6, "x");
  vq_sql_free(s);
}
END_TEST

START_TEST(test_not_and_comparisons) {
  vq_sql_t *s = compile_ok("NOT (HistoryLength >= 5 OR HistoryLength < 2) AND "
                           "ExecutionDuration > '1m30s' AND HistoryLength <> 3",
                           VQ_LIST, GT_STORE_POSTGRES);
  ck_assert_str_eq(s->sql, LIST_HEAD "$1 AND (((NOT ((history_length >= $2) OR "
                                     "(history_length < $3))) AND ((NULLIF(close_time_ns, 0) "
                                     "- execution_time_ns) > $4)) AND (history_length <> $5))"
                                     DEF_ORDER " LIMIT $6 OFFSET $7");
  assert_int_param(s, 1, 5);
  assert_int_param(s, 2, 2);
  assert_int_param(s, 3, 90LL * 1000000000LL);
  assert_int_param(s, 4, 3);
  vq_sql_free(s);
}
END_TEST

START_TEST(test_custom_attributes_sqlite) {
  vq_sql_t *s = compile_ok("CustomKeywordField = 'x' AND CustomIntField > 3 AND "
                           "CustomDoubleField < 1.5 AND CustomBoolField = true AND "
                           "Tags = 'red'",
                           VQ_COUNT, GT_STORE_SQLITE);
  ck_assert_str_eq(s->sql,
                   "SELECT COUNT(*) FROM visibility WHERE namespace_id = ?1 AND "
                   "(((((json_extract(search_json, ?2) = ?3) AND (json_extract(search_json, "
                   "?4) > ?5)) AND (json_extract(search_json, ?6) < CAST(?7 AS REAL))) AND "
                   "(json_extract(search_json, ?8) = ?9)) AND (EXISTS (SELECT 1 FROM "
                   "json_each(search_json, ?10) WHERE value = ?11)))");
  assert_text_param(s, 1, "$.\"CustomKeywordField\"");
  assert_text_param(s, 2, "x");
  assert_int_param(s, 4, 3);
  assert_text_param(s, 6, "1.5");
  assert_int_param(s, 8, 1);
  assert_text_param(s, 10, "red");
  vq_sql_free(s);
}
END_TEST

START_TEST(test_custom_attributes_postgres) {
  vq_sql_t *s = compile_ok("CustomKeywordField STARTS_WITH 'x' AND CustomIntField = 3 AND "
                           "Tags != 'red' GROUP BY ExecutionStatus",
                           VQ_COUNT, GT_STORE_POSTGRES);
  ck_assert_str_eq(s->sql,
                   "SELECT status, COUNT(*) FROM visibility WHERE namespace_id = $1 AND "
                   "(((substr((search_json::jsonb ->> $3), 1, length($2)) = $2) AND "
                   "((CASE WHEN jsonb_typeof(search_json::jsonb -> $4) = 'number' THEN "
                   "(search_json::jsonb ->> $4)::numeric END) = $5)) AND NOT "
                   "(COALESCE((search_json::jsonb -> $6) @> to_jsonb($7), FALSE))) "
                   "GROUP BY status ORDER BY status");
  ck_assert_int_eq(s->group_by_status, 1);
  assert_text_param(s, 1, "x");
  assert_text_param(s, 2, "CustomKeywordField");
  assert_int_param(s, 4, 3);
  vq_sql_free(s);
}
END_TEST

START_TEST(test_injection_stays_a_value) {
  const char *evil = "x' OR '1'='1'; DROP TABLE visibility; --";
  char q[256];
  snprintf(q, sizeof(q), "WorkflowId = \"%s\"", evil);
  vq_sql_t *s = compile_ok(q, VQ_LIST, GT_STORE_SQLITE);
  ck_assert_ptr_null(strstr(s->sql, "DROP"));
  ck_assert_ptr_null(strstr(s->sql, "'1'"));
  assert_text_param(s, 1, evil);
  vq_sql_free(s);
  /* escapes: \" and doubled quotes end up in the value, not in the SQL */
  s = compile_ok("WorkflowId = 'a''b' OR WorkflowId = \"c\\\"d\" OR `WorkflowType` = 'e'",
                 VQ_LIST, GT_STORE_SQLITE);
  assert_text_param(s, 1, "a'b");
  assert_text_param(s, 2, "c\"d");
  assert_text_param(s, 3, "e");
  ck_assert_ptr_nonnull(strstr(s->sql, "workflow_type = ?4"));
  vq_sql_free(s);
  /* an attribute name can never be SQL: an unknown name is refused */
  expect_err("`workflow_id) OR (1` = 'x'",
             "invalid query: unknown search attribute: workflow_id) OR (1");
}
END_TEST

START_TEST(test_errors) {
  expect_err("Foo = 'bar'", "invalid query: unknown search attribute: Foo");
  expect_err("WorkflowId = ", "invalid query: syntax error at position 14: expected a "
                              "value, found the end of the query");
  expect_err("WorkflowId == 'x'",
             "invalid query: syntax error at position 13 near '=': expected a value");
  expect_err("WorkflowId = 'x' AND", "invalid query: syntax error at position 21: expected "
                                     "a search attribute name, found the end of the query");
  expect_err("(WorkflowId = 'x'", "invalid query: syntax error at position 18: expected "
                                  "')', found the end of the query");
  expect_err("WorkflowId = 'x", "invalid query: syntax error at position 14: unterminated "
                                "string");
  expect_err("WorkflowId = 'x' garbage",
             "invalid query: syntax error at position 18 near 'garbage': expected AND, OR, "
             "GROUP BY, ORDER BY or the end");
  expect_err("WorkflowId ~ 'x'",
             "invalid query: syntax error at position 12 near '~': unexpected character");
  expect_err("ExecutionStatus = 'Sleeping'",
             "invalid query: invalid value 'Sleeping' for ExecutionStatus search attribute "
             "ExecutionStatus (position 19)");
  expect_err("StartTime > 'yesterday'",
             "invalid query: invalid value 'yesterday' for Datetime search attribute "
             "StartTime (position 13)");
  expect_err("HistoryLength = 'many'",
             "invalid query: invalid value 'many' for Int search attribute HistoryLength "
             "(position 17)");
  expect_err("HistoryLength STARTS_WITH '1'",
             "invalid query: operator 'STARTS_WITH' is not supported for Int search "
             "attribute HistoryLength");
  expect_err("ExecutionStatus > 'Running'",
             "invalid query: operator '>' is not supported for ExecutionStatus search "
             "attribute ExecutionStatus");
  expect_err("WorkflowId = 'x' GROUP BY WorkflowType",
             "invalid query: 'group by' is only supported for ExecutionStatus (position 27)");
  expect_err("GROUP BY ExecutionStatus",
             "invalid query: 'group by' is only supported by CountWorkflowExecutions");
  expect_err("ORDER BY Tags", "invalid query: cannot order by KeywordList search attribute "
                              "Tags");
  expect_err("AND = 1", "invalid query: syntax error at position 1 near 'AND': expected a "
                        "search attribute name");
  expect_err("WorkflowId NOT = 'x'",
             "invalid query: syntax error at position 16 near '=': expected IN, BETWEEN or "
             "STARTS_WITH after NOT");
  expect_err("StartTime BETWEEN 1 OR 2",
             "invalid query: syntax error at position 21 near 'OR': expected AND");
  char deep[400] = "";
  for (int i = 0; i < 70; i++)
    strcat(deep, "(");
  strcat(deep, "WorkflowId = 'x'");
  expect_err(deep, "invalid query: the query nests deeper than 64 levels");
}
END_TEST

START_TEST(test_time_and_duration) {
  int64_t ns = 0;
  ck_assert_int_eq(gt_vis_parse_time("1970-01-01T00:00:00Z", &ns), 0);
  ck_assert_int_eq(ns, 0);
  ck_assert_int_eq(gt_vis_parse_time("2000-03-01T12:00:00.000000001-02:30", &ns), 0);
  ck_assert_int_eq(ns, (951912000LL + 9000) * 1000000000LL + 1);
  ck_assert_int_eq(gt_vis_parse_time("2024-13-01T00:00:00Z", &ns), GT_EINVAL);
  ck_assert_int_eq(gt_vis_parse_time("2024-01-01T00:00:00", &ns), GT_EINVAL);
  ck_assert_int_eq(gt_vis_parse_time("2024-01-01T00:00:00Zjunk", &ns), GT_EINVAL);
  ck_assert_int_eq(gt_vis_parse_duration("1h2m3.5s", &ns), 0);
  ck_assert_int_eq(ns, 3723500000000LL);
  ck_assert_int_eq(gt_vis_parse_duration("250ms", &ns), 0);
  ck_assert_int_eq(ns, 250000000LL);
  ck_assert_int_eq(gt_vis_parse_duration("42", &ns), 0);
  ck_assert_int_eq(ns, 42);
  ck_assert_int_eq(gt_vis_parse_duration("3 days", &ns), GT_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------ JSON --- */

typedef Temporal__Api__Common__V1__Payload pl_t;
typedef Temporal__Api__Common__V1__Payload__MetadataEntry me_t;
typedef Temporal__Api__Common__V1__SearchAttributes__IndexedFieldsEntry fe_t;

/* Packs a SearchAttributes of n (key, json data, type or NULL) triples. */
static uint8_t *pack_sa(const char *const (*kv)[3], int n, size_t *len) {
  pl_t pl[8];
  me_t me[8][2], *mep[8][2];
  fe_t fe[8], *fep[8];
  for (int i = 0; i < n; i++) {
    temporal__api__common__v1__payload__init(&pl[i]);
    temporal__api__common__v1__payload__metadata_entry__init(&me[i][0]);
    temporal__api__common__v1__payload__metadata_entry__init(&me[i][1]);
    me[i][0].key = "encoding";
    me[i][0].value.data = (uint8_t *)"json/plain";
    me[i][0].value.len = 10;
    me[i][1].key = "type";
    me[i][1].value.data = (uint8_t *)kv[i][2];
    me[i][1].value.len = kv[i][2] ? strlen(kv[i][2]) : 0;
    mep[i][0] = &me[i][0];
    mep[i][1] = &me[i][1];
    pl[i].n_metadata = kv[i][2] ? 2 : 1;
    pl[i].metadata = mep[i];
    pl[i].data.data = (uint8_t *)kv[i][1];
    pl[i].data.len = strlen(kv[i][1]);
    temporal__api__common__v1__search_attributes__indexed_fields_entry__init(&fe[i]);
    fe[i].key = (char *)kv[i][0];
    fe[i].value = &pl[i];
    fep[i] = &fe[i];
  }
  Temporal__Api__Common__V1__SearchAttributes sa;
  temporal__api__common__v1__search_attributes__init(&sa);
  sa.n_indexed_fields = (size_t)n;
  sa.indexed_fields = fep;
  *len = temporal__api__common__v1__search_attributes__get_packed_size(&sa);
  uint8_t *buf = malloc(*len);
  ck_assert_ptr_nonnull(buf);
  temporal__api__common__v1__search_attributes__pack(&sa, buf);
  return buf;
}

START_TEST(test_attrs_json) {
  static const char *const kv[][3] = {
      {"CustomKeywordField", "[\"x\"]", NULL},          /* untyped: a list of one */
      {"Tags", "\"solo\"", "KeywordList"},               /* scalar list: wrapped */
      {"CustomIntField", " 7 ", "Int"},
      {"CustomDatetimeField", "\"1970-01-01T00:00:01Z\"", "Datetime"},
      {"Bad", "{\"unclosed\": ", "Keyword"},             /* not JSON: dropped */
      {"Quote\"Key", "true", "Bool"},
      {"Multi", "[\"a\",\"b\"]", "Keyword"}};
  size_t len;
  uint8_t *buf = pack_sa(kv, 7, &len);
  char *json = NULL;
  ck_assert_int_eq(gt_vis_attrs_json(buf, len, &json), 0);
  ck_assert_str_eq(json, "{\"CustomKeywordField\":\"x\",\"Tags\":[\"solo\"],"
                         "\"CustomIntField\":7,\"CustomDatetimeField\":1000000000,"
                         "\"Quote\\\"Key\":true,\"Multi\":[\"a\",\"b\"]}");
  free(json);
  ck_assert_int_eq(gt_vis_attrs_json((const uint8_t *)"\xff\xff", 2, &json), GT_EINVAL);
  ck_assert_ptr_null(json);

  gt_vis_record_t rec = {.ns_id = "ns", .run_id = "r", .workflow_id = "w",
                         .workflow_type = "t", .task_queue = "q", .status = 1,
                         .start_ns = 5, .execution_ns = 5, .history_length = 2,
                         .search_attrs = buf, .search_attrs_len = len};
  gt_store_op_t op;
  gt_vis_scratch_t scratch;
  ck_assert_int_eq(gt_visibility_upsert_op(&op, &rec, &scratch), 0);
  ck_assert_int_eq(op.stmt, GT_SQL_VISIBILITY_UPSERT);
  ck_assert_int_eq(op.nparams, 13);
  ck_assert_int_eq(op.params[12].kind, GT_VAL_TEXT);
  ck_assert_ptr_eq(op.params[12].p, scratch.p);
  ck_assert_int_eq(op.params[10].kind, GT_VAL_NULL);
  gt_visibility_scratch_fini(&scratch);
  free(buf);
}
END_TEST

/* ------------------------------------------------------------------ against SQLite --- */

static gt_store_t *g_st;

/* PostgreSQL: a throwaway server (tools/pg-test-server.sh), shared by the suite. */
static char g_pg_dir[64], g_pg_conninfo[512], g_pg_script[1024];

static int pg_script(const char *cmd, char *out, size_t n) {
  char line[1200];
  snprintf(line, sizeof(line), "%s %s %s", g_pg_script, cmd, g_pg_dir);
  FILE *p = popen(line, "r");
  if (!p)
    return -1;
  char buf[512] = "";
  if (!fgets(buf, sizeof(buf), p))
    buf[0] = '\0';
  int st = pclose(p);
  buf[strcspn(buf, "\n")] = '\0';
  if (out)
    snprintf(out, n, "%s", buf);
  return st;
}

static void pg_start(void) {
  snprintf(g_pg_script, sizeof(g_pg_script), "%s", __FILE__);
  char *slash = strrchr(g_pg_script, '/');
  snprintf(slash, sizeof(g_pg_script) - (size_t)(slash - g_pg_script),
           "/../../tools/pg-test-server.sh");
  snprintf(g_pg_dir, sizeof(g_pg_dir), "/tmp/gt_vistest_XXXXXX");
  if (mkdtemp(g_pg_dir))
    pg_script("start", g_pg_conninfo, sizeof(g_pg_conninfo));
}

static void pg_stop(void) {
  if (g_pg_dir[0])
    pg_script("stop", NULL, 0);
}

static void put_run(const char *run, const char *wf, const char *type, int status,
                    int64_t start_s, int64_t close_s, const char *const (*kv)[3], int nkv) {
  size_t len = 0;
  uint8_t *sa = nkv ? pack_sa(kv, nkv, &len) : NULL;
  gt_vis_record_t rec = {.ns_id = "ns-1", .run_id = run, .workflow_id = wf,
                         .workflow_type = type, .task_queue = "tq", .status = status,
                         .start_ns = start_s * 1000000000LL,
                         .execution_ns = start_s * 1000000000LL,
                         .close_ns = close_s * 1000000000LL, .history_length = 3,
                         .search_attrs = sa, .search_attrs_len = len};
  gt_store_op_t op;
  gt_vis_scratch_t scratch;
  ck_assert_int_eq(gt_visibility_upsert_op(&op, &rec, &scratch), 0);
  ck_assert_int_eq(gt_store_write_sync(g_st, -1, 0, &op, 1, NULL), 0);
  gt_visibility_scratch_fini(&scratch);
  free(sa);
}

static void db_open(int postgres) {
  gt_store_config_t cfg = {.backend = postgres ? GT_STORE_POSTGRES : GT_STORE_SQLITE,
                           .sqlite_path = ":memory:", .pg_conninfo = g_pg_conninfo,
                           .num_shards = 1};
  ck_assert_msg(!postgres || g_pg_conninfo[0], "no PostgreSQL test server");
  ck_assert_int_eq(gt_store_open(&g_st, &cfg), 0);
  static const char *const a1[][3] = {{"CustomKeywordField", "[\"x\"]", NULL},
                                      {"CustomIntField", "10", "Int"},
                                      {"Tags", "[\"red\",\"blue\"]", "KeywordList"}};
  static const char *const a2[][3] = {{"CustomKeywordField", "\"y\"", "Keyword"},
                                      {"CustomIntField", "2", "Int"},
                                      {"CustomDatetimeField", "\"2024-05-01T10:00:00+02:00\"",
                                       "Datetime"}};
  put_run("r1", "order-1", "hello", 1, 100, 0, a1, 3);
  put_run("r2", "order-2", "hello", 2, 200, 250, a2, 3);
  put_run("r3", "invoice-1", "billing", 3, 300, 301, NULL, 0);
  put_run("r4", "order-3", "billing", 2, 400, 450, NULL, 0);
}

static void db_close(void) {
  gt_store_close(g_st);
  g_st = NULL;
}

/* Runs q (List, or Count when count) and returns the run ids joined by ',' (List) or the
 * count as text. */
static void run(const char *q, int count, char *out, size_t n) {
  char err[512] = "";
  vq_sql_t *s = NULL;
  ck_assert_msg(vq_compile(q, count ? VQ_COUNT : VQ_LIST, gt_store_backend(g_st), "ns-1",
                           &CAT, 100,
                           0, &s, err, sizeof(err)) == 0,
                "%s: %s", q, err);
  gt_rows_t *rs = NULL;
  ck_assert_msg(gt_store_read_sql_sync(g_st, s->sql, s->params, s->nparams, &rs) == 0,
                "%s: %s", q, s->sql);
  out[0] = '\0';
  for (int r = 0; r < rs->nrows; r++) {
    char cell[64];
    if (count && s->group_by_status)
      snprintf(cell, sizeof(cell), "%s%lld:%lld", r ? "," : "",
               (long long)gt_rows_at(rs, r, 0)->i, (long long)gt_rows_at(rs, r, 1)->i);
    else if (count)
      snprintf(cell, sizeof(cell), "%lld", (long long)gt_rows_at(rs, r, 0)->i);
    else
      snprintf(cell, sizeof(cell), "%s%s", r ? "," : "", (const char *)gt_rows_at(rs, r, 1)->p);
    strncat(out, cell, n - strlen(out) - 1);
  }
  gt_store_rows_free(rs);
  vq_sql_free(s);
}

#define EXPECT_LIST(q, want)                                                          \
  do {                                                                                \
    char got[256];                                                                    \
    run(q, 0, got, sizeof(got));                                                      \
    ck_assert_msg(strcmp(got, want) == 0, "%s: got [%s], want [%s]", q, got, want);  \
  } while (0)
#define EXPECT_COUNT(q, want)                                                         \
  do {                                                                                \
    char got[256];                                                                    \
    run(q, 1, got, sizeof(got));                                                      \
    ck_assert_msg(strcmp(got, want) == 0, "%s: got [%s], want [%s]", q, got, want);  \
  } while (0)

/* _i: 0 SQLite, 1 PostgreSQL: the same queries, the same answers. */
START_TEST(test_queries_on_store) {
  db_open(_i);
  EXPECT_LIST("", "r1,r4,r3,r2"); /* open first, then newest close */
  EXPECT_LIST("ExecutionStatus = 'Running'", "r1");
  EXPECT_LIST("WorkflowType = 'hello' AND ExecutionStatus = 'Completed'", "r2");
  EXPECT_LIST("WorkflowId IN ('order-1', 'invoice-1') ORDER BY StartTime", "r1,r3");
  EXPECT_LIST("WorkflowId STARTS_WITH 'order' ORDER BY StartTime DESC", "r4,r2,r1");
  EXPECT_LIST("WorkflowId STARTS_WITH 'ORDER'", ""); /* case-sensitive, unlike LIKE */
  EXPECT_LIST("WorkflowId STARTS_WITH '%'", "");
  EXPECT_LIST("StartTime BETWEEN '1970-01-01T00:03:00Z' AND '1970-01-01T00:06:00Z' "
              "ORDER BY StartTime", "r2,r3");
  EXPECT_LIST("CloseTime IS NULL", "r1");
  EXPECT_LIST("CloseTime < '1970-01-01T00:05:00Z' ORDER BY CloseTime", "r2");
  EXPECT_LIST("ExecutionDuration >= '50s' ORDER BY RunId", "r2,r4");
  EXPECT_LIST("NOT (WorkflowType = 'hello') ORDER BY RunId DESC", "r4,r3");
  EXPECT_LIST("CustomKeywordField = 'x'", "r1");
  EXPECT_LIST("CustomKeywordField IN ('x', 'y') ORDER BY CustomIntField", "r2,r1");
  EXPECT_LIST("CustomIntField > 5", "r1");
  EXPECT_LIST("CustomKeywordField IS NULL ORDER BY RunId", "r3,r4");
  EXPECT_LIST("Tags = 'blue'", "r1");
  EXPECT_LIST("Tags != 'blue' ORDER BY RunId", "r2,r3,r4");
  EXPECT_LIST("CustomDatetimeField = '2024-05-01T08:00:00Z'", "r2");
  EXPECT_LIST("WorkflowId = \"x' OR '1'='1\"", "");
  EXPECT_COUNT("", "4");
  EXPECT_COUNT("WorkflowType = 'billing'", "2");
  EXPECT_COUNT("GROUP BY ExecutionStatus", "1:1,2:2,3:1");
  EXPECT_COUNT("CustomDoubleField < 1.5 OR CustomBoolField = true", "0");
  db_close();
}
END_TEST

static Suite *visibility_suite(void) {
  Suite *s = suite_create("visibility");
  TCase *tc = tcase_create("compile");
  tcase_add_test(tc, test_simple_and_or);
  tcase_add_test(tc, test_empty_query_and_order);
  tcase_add_test(tc, test_in_between_starts_with_null);
  tcase_add_test(tc, test_not_and_comparisons);
  tcase_add_test(tc, test_custom_attributes_sqlite);
  tcase_add_test(tc, test_custom_attributes_postgres);
  tcase_add_test(tc, test_injection_stays_a_value);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_time_and_duration);
  tcase_add_test(tc, test_attrs_json);
  suite_add_tcase(s, tc);
  tc = tcase_create("store");
  tcase_add_unchecked_fixture(tc, pg_start, pg_stop);
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_queries_on_store, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(visibility_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
