/*
 * config_test.c: the config module. The shipped YAML files load to the
 * expected fields; unknown keys, wrong types and dangling store names fail
 * with FILE:LINE and the key; the command line (both forms, including the
 * exact argv the SDK test environment sends) fills the same struct.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "runtime/err.h"

/* The source tree root, from this file's path, so the shipped YAML files are
 * found wherever the build directory is. */
static const char *src_path(const char *rel) {
  static char buf[4096];
  const char *suffix = "tests/unit/config_test.c";
  size_t n = strlen(__FILE__) - strlen(suffix);
  ck_assert(strcmp(__FILE__ + n, suffix) == 0);
  snprintf(buf, sizeof(buf), "%.*s%s", (int)n, __FILE__, rel);
  return buf;
}

static char tmp_path[64];

/* Writes text into a fresh temp file; returns its path (tmp_path). */
static const char *write_tmp(const char *text) {
  strcpy(tmp_path, "/tmp/gt_config_test_XXXXXX");
  int fd = mkstemp(tmp_path);
  ck_assert_int_ge(fd, 0);
  size_t n = strlen(text);
  ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
  close(fd);
  return tmp_path;
}

/* Loads text over the defaults; returns the code, err holds the message. */
static int load_text(gt_config_t *cfg, const char *text, char *err,
                     size_t errlen) {
  gt_config_defaults(cfg);
  err[0] = '\0';
  int rc = gt_config_load(cfg, write_tmp(text), err, errlen);
  unlink(tmp_path);
  return rc;
}

/* Asserts that loading text fails with exactly "<tmpfile>:<expect>". */
static void expect_error(const char *text, const char *expect) {
  gt_config_t cfg;
  char err[512], want[600];
  ck_assert_int_eq(load_text(&cfg, text, err, sizeof(err)), GT_ECONFIG);
  snprintf(want, sizeof(want), "%s:%s", tmp_path, expect);
  ck_assert_str_eq(err, want);
  gt_config_fini(&cfg);
}

/* ------------------------------------------------------------------------ */

START_TEST(test_defaults) {
  gt_config_t cfg;
  gt_config_defaults(&cfg);
  ck_assert_int_eq(cfg.log_level, GT_LOG_INFO);
  ck_assert_int_eq(cfg.log_format, GT_LOG_TEXT);
  ck_assert_str_eq(cfg.bind_ip, "127.0.0.1");
  ck_assert_int_eq(cfg.grpc_port, 7233);
  ck_assert_int_eq(cfg.http_port, 7243);
  ck_assert_int_eq(cfg.membership_port, 7234);
  ck_assert_int_eq(cfg.num_history_shards, 4);
  ck_assert_str_eq(cfg.store_plugin, "sqlite");
  ck_assert_str_eq(cfg.sqlite_path, ":memory:");
  ck_assert_ptr_null(cfg.pg_conninfo);
  ck_assert_int_eq(cfg.pg_max_conns, 20);
  ck_assert_str_eq(cfg.visibility_plugin, "sqlite");
  ck_assert_int_eq(cfg.scheduler_threads, 0);
  ck_assert_str_eq(cfg.default_namespace, "default");
  ck_assert_int_eq(cfg.headless, 0);
  ck_assert_int_eq(cfg.n_dynamic, 0);
  gt_config_defaults(&cfg); /* again: static defaults, nothing leaks */
  gt_config_fini(&cfg);
  gt_config_fini(&cfg); /* fini leaves NULLs: a second one is harmless */
}
END_TEST

START_TEST(test_development_yaml) {
  gt_config_t cfg;
  char err[512] = "";
  gt_config_defaults(&cfg);
  int rc = gt_config_load(&cfg, src_path("config/development.yaml"), err,
                          sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(cfg.store_plugin, "sqlite");
  ck_assert_str_eq(cfg.sqlite_path, ":memory:");
  ck_assert_ptr_null(cfg.pg_conninfo);
  ck_assert_str_eq(cfg.visibility_plugin, "sqlite");
  ck_assert_ptr_null(cfg.vis_store_plugin); /* both in memory: the one database */
  ck_assert_str_eq(cfg.bind_ip, "127.0.0.1");
  ck_assert_int_eq(cfg.grpc_port, 7233);
  ck_assert_int_eq(cfg.http_port, 7243);
  ck_assert_int_eq(cfg.membership_port, 7234);
  ck_assert_int_eq(cfg.num_history_shards, 4);
  ck_assert_int_eq(cfg.log_level, GT_LOG_INFO);
  ck_assert_str_eq(cfg.default_namespace, "default");
  gt_config_fini(&cfg);
}
END_TEST

START_TEST(test_sqlite_file_yaml) {
  gt_config_t cfg;
  char err[512] = "";
  gt_config_defaults(&cfg);
  int rc = gt_config_load(
      &cfg, src_path("config/development-sqlite-file.yaml"), err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(cfg.store_plugin, "sqlite");
  ck_assert_str_eq(cfg.sqlite_path, "./genesis-temporal.db");
  ck_assert_str_eq(cfg.visibility_plugin, "sqlite");
  ck_assert_ptr_null(cfg.vis_store_plugin); /* the same file */
  ck_assert_int_eq(cfg.grpc_port, 7233);
  gt_config_fini(&cfg);
}
END_TEST

START_TEST(test_production_yaml) {
  gt_config_t cfg;
  char err[512] = "";
  gt_config_defaults(&cfg);
  int rc = gt_config_load(&cfg, src_path("config/production.yaml"), err,
                          sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(cfg.store_plugin, "postgres");
  ck_assert_ptr_null(cfg.sqlite_path);
  ck_assert_str_eq(cfg.pg_conninfo, "host=127.0.0.1 port=5432 dbname=temporal "
                                    "user=temporal password=temporal "
                                    "sslmode=disable");
  ck_assert_int_eq(cfg.pg_max_conns, 20);
  ck_assert_str_eq(cfg.visibility_plugin, "postgres");
  ck_assert_str_eq(cfg.vis_store_name, "postgres-visibility");
  ck_assert_str_eq(cfg.vis_store_plugin, "postgres");
  ck_assert_str_eq(cfg.vis_pg_conninfo, "host=127.0.0.1 port=5432 dbname=temporal_visibility "
                                        "user=temporal password=temporal sslmode=disable");
  ck_assert_int_eq(cfg.vis_pg_max_conns, 4);
  ck_assert_int_eq(cfg.pg_conn_lifetime_ms, 3600000); /* maxConnLifetime: "1h" */
  ck_assert_int_eq(cfg.vis_pg_conn_lifetime_ms, 3600000);
  ck_assert_str_eq(cfg.bind_ip, "0.0.0.0");
  ck_assert_int_eq(cfg.log_format, GT_LOG_JSON);
  ck_assert_int_eq(cfg.headless, 1);
  gt_config_fini(&cfg);
}
END_TEST

/* A file in the shape of Temporal's own development config (other services,
 * archival, namespaceDefaults, dynamicConfigClient, tls...) loads. */
START_TEST(test_temporal_shape) {
  gt_config_t cfg;
  char err[512];
  const char *text =
      "log: {stdout: true, level: warn}\n"
      "persistence:\n"
      "  defaultStore: db\n"
      "  visibilityStore: vis\n"
      "  numHistoryShards: 1\n"
      "  datastores:\n"
      "    db:\n"
      "      sql:\n"
      "        user: \"\"\n"
      "        password: \"\"\n"
      "        pluginName: sqlite\n"
      "        databaseName: default\n"
      "        connectAddr: localhost\n"
      "        connectProtocol: tcp\n"
      "        connectAttributes: {mode: memory, cache: private}\n"
      "        maxConns: 1\n"
      "        maxIdleConns: 1\n"
      "        maxConnLifetime: 1h30m\n"
      "        tls: {enabled: false, caFile: \"\", "
      "enableHostVerification: false}\n"
      "    vis:\n"
      "      sql: {pluginName: sqlite, databaseName: vis.db}\n"
      "global:\n"
      "  membership: {maxJoinDuration: 30s, broadcastAddress: 127.0.0.1}\n"
      "  pprof: {port: 7936}\n"
      "  metrics:\n"
      "    prometheus: {framework: tally, timerType: histogram, "
      "listenAddress: \"127.0.0.1:8000\"}\n"
      "services:\n"
      "  frontend: {rpc: {grpcPort: 7300, membershipPort: 6933, "
      "bindOnLocalHost: true, httpPort: 7301}}\n"
      "  history: {rpc: {grpcPort: 7234, membershipPort: 6934}}\n"
      "  matching: {rpc: {grpcPort: 7235, bindOnLocalHost: true}}\n"
      "  worker: {rpc: {grpcPort: 7239}}\n"
      "  internal-frontend: {rpc: {grpcPort: 7236}}\n"
      "clusterMetadata:\n"
      "  enableGlobalNamespace: false\n"
      "  failoverVersionIncrement: 10\n"
      "  masterClusterName: active\n"
      "  currentClusterName: active\n"
      "  clusterInformation:\n"
      "    active: {enabled: true, initialFailoverVersion: 1, "
      "rpcName: frontend, rpcAddress: \"localhost:7233\", "
      "httpAddress: \"localhost:7243\"}\n"
      "dcRedirectionPolicy: {policy: noop}\n"
      "archival:\n"
      "  history: {state: enabled, provider: {filestore: {fileMode: "
      "\"0666\"}}}\n"
      "namespaceDefaults: {archival: {history: {state: disabled}}}\n"
      "dynamicConfigClient: {filepath: dc.yaml, pollInterval: 10s}\n"
      "genesis: {schedulerThreads: 3, defaultNamespace: ns1, headless: yes}\n";
  int rc = load_text(&cfg, text, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_int_eq(cfg.log_level, GT_LOG_WARN);
  ck_assert_int_eq(cfg.num_history_shards, 1);
  ck_assert_str_eq(cfg.sqlite_path, ":memory:");
  ck_assert_int_eq(cfg.grpc_port, 7300); /* the frontend's, not history's */
  ck_assert_int_eq(cfg.http_port, 7301);
  ck_assert_int_eq(cfg.membership_port, 6933);
  ck_assert_int_eq(cfg.pg_max_conns, 1);
  ck_assert_int_eq(cfg.scheduler_threads, 3);
  ck_assert_str_eq(cfg.default_namespace, "ns1");
  ck_assert_int_eq(cfg.headless, 1);
  gt_config_fini(&cfg);
}
END_TEST

START_TEST(test_unknown_key) {
  expect_error("log:\n"
               "  level: info\n"
               "services:\n"
               "  frontend:\n"
               "    rpc:\n"
               "      grpcPort: 7233\n"
               "      grpcPrt: 7233\n",
               "7: unknown key 'services.frontend.rpc.grpcPrt'");
  expect_error("services:\n  gateway: {}\n",
               "2: unknown key 'services.gateway'");
  expect_error("log: {}\nbogus: 1\n", "2: unknown key 'bogus'");
  expect_error("persistence:\n  datastores:\n    a:\n      cassandra: {}\n",
               "4: unknown key 'persistence.datastores.a.cassandra'");
}
END_TEST

START_TEST(test_wrong_type) {
  expect_error("services:\n  frontend:\n    rpc:\n      grpcPort: \"abc\"\n",
               "4: key 'services.frontend.rpc.grpcPort': expected an "
               "integer, got 'abc'");
  expect_error("services:\n  frontend:\n    rpc:\n      grpcPort: 70000\n",
               "4: key 'services.frontend.rpc.grpcPort': expected a port "
               "number (1-65535), got '70000'");
  expect_error("persistence:\n  numHistoryShards: -1\n",
               "2: key 'persistence.numHistoryShards': expected a positive "
               "integer, got '-1'");
  expect_error("\npersistence:\n  numHistoryShards: 0\n",
               "3: key 'persistence.numHistoryShards': expected a positive "
               "integer, got '0'");
  expect_error("log:\n  level: loud\n",
               "2: key 'log.level': expected a log level (debug, info, warn, "
               "error, off), got 'loud'");
  expect_error("services:\n  frontend:\n    rpc:\n      bindOnLocalHost: 2\n",
               "4: key 'services.frontend.rpc.bindOnLocalHost': expected a "
               "boolean (true or false), got '2'");
  expect_error("dynamicConfigClient:\n  pollInterval: 10x\n",
               "2: key 'dynamicConfigClient.pollInterval': expected a "
               "duration such as 30s, 1h or 500ms, got '10x'");
  expect_error("log: 3\n", "1: key 'log': expected a mapping, got '3'");
  expect_error("genesis:\n  defaultNamespace: [a, b]\n",
               "2: key 'genesis.defaultNamespace': expected a string, got a "
               "sequence");
  expect_error("log:\n  level: info\n  level: warn\n",
               "3: key 'log.level': duplicate key");
}
END_TEST

START_TEST(test_store_references) {
  expect_error("persistence:\n"
               "  defaultStore: nope\n"
               "  datastores:\n"
               "    db: {sql: {pluginName: sqlite, databaseName: a.db}}\n",
               "2: key 'persistence.defaultStore': datastore 'nope' is not "
               "defined under persistence.datastores");
  expect_error("persistence:\n"
               "  defaultStore: db\n"
               "  visibilityStore: vis\n"
               "  datastores:\n"
               "    db: {sql: {pluginName: sqlite, databaseName: a.db}}\n",
               "3: key 'persistence.visibilityStore': datastore 'vis' is not "
               "defined under persistence.datastores");
  expect_error("persistence:\n"
               "  defaultStore: db\n"
               "  datastores:\n"
               "    db:\n"
               "      sql:\n"
               "        pluginName: mysql8\n",
               "6: key 'persistence.datastores.db.sql.pluginName': "
               "unsupported plugin 'mysql8' (expected sqlite or postgres)");
  expect_error("persistence:\n"
               "  defaultStore: pg\n"
               "  datastores:\n"
               "    pg:\n"
               "      sql:\n"
               "        pluginName: postgres12\n"
               "        databaseName: t\n"
               "        connectAddr: \"nohost:port\"\n",
               "8: key 'persistence.datastores.pg.sql.connectAddr': expected "
               "host:port, got 'nohost:port'");
  expect_error("persistence:\n"
               "  datastores:\n"
               "    db: {sql: {pluginName: sqlite, databaseName: a.db}}\n",
               "1: key 'persistence.defaultStore': missing (datastores are "
               "defined)");
}
END_TEST

START_TEST(test_failed_load_keeps_config) {
  gt_config_t cfg;
  char err[512];
  ck_assert_int_eq(load_text(&cfg,
                             "log: {level: debug}\n"
                             "services: {frontend: {rpc: {grpcPort: 9000, "
                             "bindOnIP: 10.0.0.1}}}\n"
                             "bogus: 1\n",
                             err, sizeof(err)),
                   GT_ECONFIG);
  ck_assert_int_eq(cfg.log_level, GT_LOG_INFO);
  ck_assert_int_eq(cfg.grpc_port, 7233);
  ck_assert_str_eq(cfg.bind_ip, "127.0.0.1");
  gt_config_fini(&cfg);
}
END_TEST

START_TEST(test_postgres_conninfo_and_bind) {
  gt_config_t cfg;
  char err[512];
  const char *text = "persistence:\n"
                     "  defaultStore: pg\n"
                     "  datastores:\n"
                     "    pg:\n"
                     "      sql:\n"
                     "        pluginName: postgres\n"
                     "        databaseName: my db\n"
                     "        connectAddr: \"[::1]:6543\"\n"
                     "        user: u\n"
                     "        password: \"it's a\\\\b\"\n"
                     "        maxConns: 7\n"
                     "services:\n"
                     "  frontend:\n"
                     "    rpc:\n"
                     "      bindOnIP: 10.1.2.3\n"
                     "      bindOnLocalHost: true\n";
  int rc = load_text(&cfg, text, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(cfg.store_plugin, "postgres");
  ck_assert_str_eq(cfg.pg_conninfo, "host=::1 port=6543 dbname='my db' user=u "
                                    "password='it\\'s a\\\\b'");
  ck_assert_int_eq(cfg.pg_max_conns, 7);
  ck_assert_str_eq(cfg.visibility_plugin, "postgres");
  ck_assert_ptr_null(cfg.vis_store_plugin); /* no visibilityStore: the default store */
  ck_assert_str_eq(cfg.bind_ip, "10.1.2.3"); /* bindOnIP wins */
  gt_config_fini(&cfg);

  const char *tls = "persistence:\n"
                    "  defaultStore: pg\n"
                    "  datastores:\n"
                    "    pg:\n"
                    "      sql:\n"
                    "        pluginName: postgres12_pgx\n"
                    "        databaseName: t\n"
                    "        connectAddr: db.example:5432\n"
                    "        tls:\n"
                    "          enabled: true\n"
                    "          caFile: /etc/ca.pem\n"
                    "          enableHostVerification: true\n"
                    "services: {frontend: {rpc: {bindOnLocalHost: false}}}\n";
  rc = load_text(&cfg, tls, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(cfg.pg_conninfo, "host=db.example port=5432 dbname=t "
                                    "sslmode=verify-full "
                                    "sslrootcert=/etc/ca.pem");
  ck_assert_str_eq(cfg.bind_ip, "0.0.0.0");
  gt_config_fini(&cfg);
}
END_TEST

/* A visibilityStore naming another database than defaultStore is resolved to its own
 * store (opened beside the default one); the same database under another name is not. */
START_TEST(test_visibility_store_database) {
  gt_config_t cfg;
  char err[512];
  char text[1024];
  const char *fmt = "persistence:\n"
                    "  defaultStore: pg\n"
                    "  visibilityStore: vis\n"
                    "  datastores:\n"
                    "    pg:\n"
                    "      sql: {pluginName: postgres, databaseName: t, connectAddr: \"h:5432\"}\n"
                    "    vis:\n"
                    "      sql: {pluginName: postgres, databaseName: %s, connectAddr: \"%s\"}\n";
  snprintf(text, sizeof(text), fmt, "t", "h:5432");
  ck_assert_msg(load_text(&cfg, text, err, sizeof(err)) == 0, "%s", err);
  ck_assert_ptr_null(cfg.vis_store_name);
  ck_assert_ptr_null(cfg.vis_store_plugin);
  ck_assert_ptr_null(cfg.vis_pg_conninfo);
  gt_config_fini(&cfg);
  snprintf(text, sizeof(text), fmt, "t_vis", "h:5432");
  ck_assert_msg(load_text(&cfg, text, err, sizeof(err)) == 0, "%s", err);
  ck_assert_str_eq(cfg.vis_store_name, "vis");
  ck_assert_str_eq(cfg.vis_store_plugin, "postgres");
  ck_assert_str_eq(cfg.vis_pg_conninfo, "host=h port=5432 dbname=t_vis");
  ck_assert_str_eq(cfg.pg_conninfo, "host=h port=5432 dbname=t"); /* the default unchanged */
  gt_config_fini(&cfg);
  snprintf(text, sizeof(text), fmt, "t", "other:5432");
  ck_assert_msg(load_text(&cfg, text, err, sizeof(err)) == 0, "%s", err);
  ck_assert_str_eq(cfg.vis_pg_conninfo, "host=other port=5432 dbname=t");
  ck_assert_int_eq(cfg.pg_conn_lifetime_ms, 0); /* not given: connections are kept */
  gt_config_fini(&cfg);
  /* the connection lifetime, under Temporal's name and under Go's */
  const char *life = "persistence:\n"
                     "  defaultStore: pg\n"
                     "  visibilityStore: vis\n"
                     "  datastores:\n"
                     "    pg: {sql: {pluginName: postgres, databaseName: t, connectAddr: \"h:1\","
                     " maxConnLifetime: 90s}}\n"
                     "    vis: {sql: {pluginName: postgres, databaseName: v, connectAddr: \"h:1\","
                     " connMaxLifetime: 500ms}}\n";
  ck_assert_msg(load_text(&cfg, life, err, sizeof(err)) == 0, "%s", err);
  ck_assert_int_eq(cfg.pg_conn_lifetime_ms, 90000);
  ck_assert_int_eq(cfg.vis_pg_conn_lifetime_ms, 500);
  gt_config_fini(&cfg);
  /* SQLite: another file is another store; a visibility datastore that cannot be
   * resolved is refused like a default one */
  const char *sq = "persistence:\n"
                   "  defaultStore: a\n"
                   "  visibilityStore: b\n"
                   "  datastores:\n"
                   "    a: {sql: {pluginName: sqlite, databaseName: /tmp/a.db}}\n"
                   "    b: {sql: {pluginName: sqlite, databaseName: %s}}\n";
  snprintf(text, sizeof(text), sq, "/tmp/b.db");
  ck_assert_msg(load_text(&cfg, text, err, sizeof(err)) == 0, "%s", err);
  ck_assert_str_eq(cfg.vis_store_plugin, "sqlite");
  ck_assert_str_eq(cfg.vis_sqlite_path, "/tmp/b.db");
  ck_assert_str_eq(cfg.sqlite_path, "/tmp/a.db");
  gt_config_fini(&cfg);
  snprintf(text, sizeof(text), sq, "\"\"");
  ck_assert_int_eq(load_text(&cfg, text, err, sizeof(err)), GT_ECONFIG);
  ck_assert_msg(strstr(err, "datastores.b.sql.databaseName") != NULL, "%s", err);
  gt_config_fini(&cfg);
}
END_TEST

START_TEST(test_yaml_syntax_and_missing_file) {
  gt_config_t cfg;
  char err[512];
  ck_assert_int_eq(load_text(&cfg, "log:\n  level: [info\n", err, sizeof(err)),
                   GT_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, tmp_path));
  ck_assert_ptr_nonnull(strstr(err, "yaml:"));
  gt_config_fini(&cfg);

  ck_assert_int_eq(load_text(&cfg, "log: {}\n---\nlog: {}\n", err,
                             sizeof(err)), GT_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, ":3: only one YAML document"));
  gt_config_fini(&cfg);

  ck_assert_int_eq(load_text(&cfg, "- a\n", err, sizeof(err)), GT_ECONFIG);
  ck_assert_ptr_nonnull(strstr(err, ":1: expected a mapping at the top"));
  gt_config_fini(&cfg);

  ck_assert_int_eq(load_text(&cfg, "", err, sizeof(err)), 0); /* empty: ok */
  ck_assert_int_eq(cfg.grpc_port, 7233);
  gt_config_fini(&cfg);

  gt_config_defaults(&cfg);
  ck_assert_int_eq(gt_config_load(&cfg, "/nonexistent/x.yaml", err,
                                  sizeof(err)),
                   GT_EIO);
  ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.yaml"));
  gt_config_fini(&cfg);
}
END_TEST

/* ------------------------------------------------------------------------ */

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The argv of the SDK test environment (sdk-core's ephemeral server). */
START_TEST(test_start_dev_sdk_argv) {
  char *argv[] = {"/path/to/genesis-temporal",
                  "server", "start-dev",
                  "--port", "41234",
                  "--namespace", "default",
                  "--ip", "127.0.0.1",
                  "--log-format", "pretty",
                  "--log-level", "warn",
                  "--dynamic-config-value",
                  "frontend.enableUpdateWorkflowExecution=true",
                  "--dynamic-config-value",
                  "system.forceSearchAttributesCacheRefreshOnRead=true",
                  "--dynamic-config-value",
                  "frontend.workerVersioningDataAPIs=true",
                  "--headless"};
  gt_config_t cfg;
  char err[256] = "";
  int exit_now = -1;
  int rc = gt_config_from_args(&cfg, ARGC(argv), argv, &exit_now, err,
                               sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_int_eq(exit_now, 0);
  ck_assert_int_eq(cfg.grpc_port, 41234);
  /* No --http-port: no HTTP port, so SDK-launched servers never collide on 7243. */
  ck_assert_int_eq(cfg.http_port, 0);
  ck_assert_str_eq(cfg.bind_ip, "127.0.0.1");
  ck_assert_str_eq(cfg.default_namespace, "default");
  ck_assert_int_eq(cfg.log_format, GT_LOG_TEXT);
  ck_assert_int_eq(cfg.log_level, GT_LOG_WARN);
  ck_assert_int_eq(cfg.headless, 1);
  ck_assert_str_eq(cfg.store_plugin, "sqlite");
  ck_assert_str_eq(cfg.sqlite_path, ":memory:");
  ck_assert_int_eq(cfg.n_dynamic, 3);
  ck_assert_str_eq(cfg.dynamic_keys[0],
                   "frontend.enableUpdateWorkflowExecution");
  ck_assert_str_eq(cfg.dynamic_values[0], "true");
  ck_assert_str_eq(cfg.dynamic_keys[1],
                   "system.forceSearchAttributesCacheRefreshOnRead");
  ck_assert_str_eq(cfg.dynamic_keys[2], "frontend.workerVersioningDataAPIs");
  ck_assert_str_eq(cfg.dynamic_values[2], "true");
  gt_config_fini(&cfg);
}
END_TEST

START_TEST(test_start_dev_other_flags) {
  char *argv[] = {"gt", "server", "start-dev",
                  "--port=7300", "--http-port", "0",
                  "--ip=0.0.0.0", "--namespace=first", "-n", "second",
                  "--db-filename", "/tmp/x.db", "--ui-port", "8233",
                  "--metrics-port=9000", "--log-format=json",
                  "--log-level", "never",
                  "--dynamic-config-value=limit.x={\"a\": 1}",
                  "--headless=false"};
  gt_config_t cfg;
  char err[256] = "";
  int exit_now;
  int rc = gt_config_from_args(&cfg, ARGC(argv), argv, &exit_now, err,
                               sizeof(err));
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_int_eq(cfg.grpc_port, 7300);
  ck_assert_int_eq(cfg.http_port, 0);
  ck_assert_str_eq(cfg.bind_ip, "0.0.0.0");
  ck_assert_str_eq(cfg.default_namespace, "first");
  ck_assert_str_eq(cfg.sqlite_path, "/tmp/x.db");
  ck_assert_int_eq(cfg.log_format, GT_LOG_JSON);
  ck_assert_int_eq(cfg.log_level, GT_LOG_OFF);
  ck_assert_int_eq(cfg.n_dynamic, 1);
  ck_assert_str_eq(cfg.dynamic_keys[0], "limit.x");
  ck_assert_str_eq(cfg.dynamic_values[0], "{\"a\": 1}");
  ck_assert_int_eq(cfg.headless, 0);
  gt_config_fini(&cfg);
}
END_TEST

/* Temporal's system.enableActivityEagerExecution: on by default, off by the flag; a value
 * that is no bool keeps the default (Temporal logs it and starts). */
START_TEST(test_dynamic_eager_activity) {
  gt_config_t cfg;
  char err[256] = "";
  int exit_now;
  char *none[] = {"gt", "server", "start-dev"};
  ck_assert_int_eq(gt_config_from_args(&cfg, ARGC(none), none, &exit_now, err,
                                       sizeof(err)), 0);
  ck_assert_int_eq(cfg.activity_eager_execution, 1);
  gt_config_fini(&cfg);
  char *off[] = {"gt", "server", "start-dev", "--dynamic-config-value",
                 "system.enableActivityEagerExecution=false"};
  ck_assert_int_eq(gt_config_from_args(&cfg, ARGC(off), off, &exit_now, err,
                                       sizeof(err)), 0);
  ck_assert_int_eq(cfg.activity_eager_execution, 0);
  ck_assert_int_eq(cfg.n_dynamic, 1);
  gt_config_fini(&cfg);
  char *bad[] = {"gt", "server", "start-dev",
                 "--dynamic-config-value=system.enableActivityEagerExecution=false",
                 "--dynamic-config-value=system.enableActivityEagerExecution=maybe"};
  ck_assert_int_eq(gt_config_from_args(&cfg, ARGC(bad), bad, &exit_now, err,
                                       sizeof(err)), 0);
  ck_assert_int_eq(cfg.activity_eager_execution, 0); /* the last good value */
  gt_config_fini(&cfg);
  ck_assert_int_eq(gt_config_dynamic_known("system.enableActivityEagerExecution"), 1);
  ck_assert_int_eq(gt_config_dynamic_known("genesis.retentionOverrideMs"), 1);
  ck_assert_int_eq(gt_config_dynamic_known("frontend.workerVersioningDataAPIs"), 0);
  ck_assert_int_eq(gt_config_dynamic_known("system.enableActivityEagerExecutionX"), 0);
  /* system.enableEagerWorkflowStart likewise */
  char *ews[] = {"gt", "server", "start-dev", "--dynamic-config-value",
                 "system.enableEagerWorkflowStart=false"};
  ck_assert_int_eq(gt_config_from_args(&cfg, ARGC(ews), ews, &exit_now, err,
                                       sizeof(err)), 0);
  ck_assert_int_eq(cfg.eager_workflow_start, 0);
  ck_assert_int_eq(cfg.activity_eager_execution, 1);
  gt_config_fini(&cfg);
  ck_assert_int_eq(gt_config_from_args(&cfg, ARGC(none), none, &exit_now, err,
                                       sizeof(err)), 0);
  ck_assert_int_eq(cfg.eager_workflow_start, 1);
  gt_config_fini(&cfg);
}
END_TEST

static void expect_args_error(int argc, char **argv, const char *want) {
  gt_config_t cfg;
  char err[256] = "";
  int exit_now;
  ck_assert_int_eq(gt_config_from_args(&cfg, argc, argv, &exit_now, err,
                                       sizeof(err)),
                   GT_ECONFIG);
  ck_assert_str_eq(err, want);
  gt_config_fini(&cfg);
}

START_TEST(test_args_errors) {
  char *a1[] = {"gt", "--x"};
  expect_args_error(ARGC(a1), a1, "unknown flag --x");
  char *a2[] = {"gt", "server", "start-dev", "--bogus=1"};
  expect_args_error(ARGC(a2), a2, "unknown flag --bogus");
  char *a3[] = {"gt", "server", "start-dev", "--port", "abc"};
  expect_args_error(ARGC(a3), a3,
                    "--port: expected a port number (1-65535), got 'abc'");
  char *a4[] = {"gt", "server", "start-dev", "--port"};
  expect_args_error(ARGC(a4), a4, "flag --port needs a value");
  char *a5[] = {"gt", "server", "start-dev", "--dynamic-config-value", "nokv"};
  expect_args_error(ARGC(a5), a5,
                    "--dynamic-config-value: expected KEY=VALUE, got 'nokv'");
  char *a6[] = {"gt", "server", "stop"};
  expect_args_error(ARGC(a6), a6,
                    "unknown command 'server stop' (expected 'server "
                    "start-dev')");
  char *a7[] = {"gt", "--log-level", "loud"};
  expect_args_error(ARGC(a7), a7,
                    "--log-level: expected debug, info, warn, error or off, "
                    "got 'loud'");
  char *a8[] = {"gt", "--port", "1"}; /* a start-dev flag in the top form */
  expect_args_error(ARGC(a8), a8, "unknown flag --port");
  char *a9[] = {"gt", "stray"};
  expect_args_error(ARGC(a9), a9, "unexpected argument 'stray'");
}
END_TEST

START_TEST(test_config_then_cli_overrides) {
  const char *path = write_tmp("log:\n  level: error\n  format: json\n"
                               "services: {frontend: {rpc: {grpcPort: 7400}}}"
                               "\n");
  char *argv[] = {"gt", "--log-level", "debug", "--config", (char *)path};
  gt_config_t cfg;
  char err[512] = "";
  int exit_now;
  int rc = gt_config_from_args(&cfg, ARGC(argv), argv, &exit_now, err,
                               sizeof(err));
  unlink(path);
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_int_eq(cfg.log_level, GT_LOG_DEBUG); /* the CLI wins */
  ck_assert_int_eq(cfg.log_format, GT_LOG_JSON); /* from the file */
  ck_assert_int_eq(cfg.grpc_port, 7400);
  gt_config_fini(&cfg);

  char *bad[] = {"gt", "--config=/nonexistent/c.yaml"};
  ck_assert_int_eq(gt_config_from_args(&cfg, ARGC(bad), bad, &exit_now, err,
                                       sizeof(err)),
                   GT_EIO);
  gt_config_fini(&cfg);

  /* No arguments: the defaults. */
  char *none[] = {"gt"};
  ck_assert_int_eq(gt_config_from_args(&cfg, 1, none, &exit_now, err,
                                       sizeof(err)), 0);
  ck_assert_int_eq(exit_now, 0);
  ck_assert_str_eq(cfg.sqlite_path, ":memory:");
  gt_config_fini(&cfg);
}
END_TEST

/* Runs the args with stdout captured; returns what was printed. */
static char *captured(int argc, char **argv, int *exit_now) {
  static char out[4096];
  gt_config_t cfg;
  char err[256];
  fflush(stdout);
  int saved = dup(1);
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  dup2(fileno(f), 1);
  int rc = gt_config_from_args(&cfg, argc, argv, exit_now, err, sizeof(err));
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  ck_assert_int_eq(rc, 0);
  rewind(f);
  size_t n = fread(out, 1, sizeof(out) - 1, f);
  out[n] = '\0';
  fclose(f);
  gt_config_fini(&cfg);
  return out;
}

START_TEST(test_help_version) {
  int exit_now = 0;
  char *v[] = {"gt", "--version"};
  ck_assert_str_eq(captured(ARGC(v), v, &exit_now),
                   "genesis-temporal 0.1.0 (Temporal API 1.24.0-compatible)\n");
  ck_assert_int_eq(exit_now, 1);
  exit_now = 0;
  char *h[] = {"gt", "server", "start-dev", "--help"};
  ck_assert_ptr_nonnull(strstr(captured(ARGC(h), h, &exit_now), "start-dev"));
  ck_assert_int_eq(exit_now, 1);
}
END_TEST

static Suite *config_suite(void) {
  Suite *s = suite_create("config");
  TCase *y = tcase_create("yaml");
  tcase_add_test(y, test_defaults);
  tcase_add_test(y, test_development_yaml);
  tcase_add_test(y, test_sqlite_file_yaml);
  tcase_add_test(y, test_production_yaml);
  tcase_add_test(y, test_visibility_store_database);
  tcase_add_test(y, test_temporal_shape);
  tcase_add_test(y, test_unknown_key);
  tcase_add_test(y, test_wrong_type);
  tcase_add_test(y, test_store_references);
  tcase_add_test(y, test_failed_load_keeps_config);
  tcase_add_test(y, test_postgres_conninfo_and_bind);
  tcase_add_test(y, test_yaml_syntax_and_missing_file);
  suite_add_tcase(s, y);
  TCase *a = tcase_create("args");
  tcase_add_test(a, test_start_dev_sdk_argv);
  tcase_add_test(a, test_start_dev_other_flags);
  tcase_add_test(a, test_dynamic_eager_activity);
  tcase_add_test(a, test_args_errors);
  tcase_add_test(a, test_config_then_cli_overrides);
  tcase_add_test(a, test_help_version);
  suite_add_tcase(s, a);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(config_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
