/*
 * config.h: the server's configuration, from YAML (libyaml) and the command line.
 *
 * DESIGN
 *   The YAML file uses the keys of Temporal's own server config (config/development.yaml):
 *   log.{stdout,level,format}, persistence.{defaultStore, visibilityStore, numHistoryShards,
 *   datastores.<name>.sql.{pluginName, databaseName, connectAddr, connectProtocol,
 *   connectAttributes, user, password, maxConns, maxIdleConns, maxConnLifetime}},
 *   global.membership, services.<role>.rpc.{grpcPort, httpPort, membershipPort,
 *   bindOnLocalHost, bindOnIP}, plus a `genesis:` section of our own (schedulerThreads, ...).
 *   An unknown key or a value of the wrong type is an error naming the file, line and key,
 *   and the server does not start. The Temporal CLI's dev-server form
 *   (`server start-dev --port N ...`) fills the same struct without any file.
 *
 * INVARIANTS
 *   A gt_config_t that gt_config_load/gt_config_from_args returned 0 for is complete and valid
 *   (every field set, defaults applied). Strings are owned by the config; gt_config_fini frees.
 */
#ifndef GT_CONFIG_H
#define GT_CONFIG_H

#include <stddef.h>
#include "runtime/log.h"

#define GT_CONFIG_MAX_DYNAMIC 64

typedef struct gt_config {
  /* log */
  gt_log_level_t log_level;   /* default info */
  gt_log_format_t log_format; /* default text */

  /* frontend rpc */
  char *bind_ip;   /* default "127.0.0.1" */
  int grpc_port;   /* default 7233 */
  int http_port;   /* /health and /metrics: default 7243 (YAML, no arguments); start-dev:
                    * 0 unless --http-port; 0 = do not listen */
  int membership_port; /* default 7234 (cluster gossip over nng) */

  /* persistence */
  int num_history_shards; /* default 4 */
  char *store_plugin;     /* "sqlite" or "postgres" (defaultStore's sql.pluginName) */
  char *sqlite_path;      /* ":memory:" for an in-memory database, else the file path */
  char *pg_conninfo;      /* libpq conninfo for postgres, built from the sql keys; else NULL */
  int pg_max_conns;       /* default 20; store.h pg_max_conns */
  int64_t pg_conn_lifetime_ms; /* maxConnLifetime: a connection is replaced once this old;
                                * 0 (default) = never */
  char *visibility_plugin; /* visibilityStore's pluginName */
  /* visibilityStore's datastore when it names another database than defaultStore's, else
   * NULL (then visibility records are written to the default store, in their run's own
   * transaction). When set, the server opens a second store there and visibility records
   * reach it through an outbox in the default store (actors/visibility/vis_outbox.c). */
  char *vis_store_name;   /* the datastore's name, for messages */
  char *vis_store_plugin; /* "sqlite" or "postgres" */
  char *vis_sqlite_path;  /* sqlite: the file, or ":memory:" */
  char *vis_pg_conninfo;  /* postgres: libpq conninfo */
  int vis_pg_max_conns;   /* postgres: its maxConns; default 20 */
  int64_t vis_pg_conn_lifetime_ms; /* postgres: its maxConnLifetime; default 0 (never) */

  /* genesis */
  int scheduler_threads;  /* 0 = number of cores - 1, at least 1 (server.c) */
  char *default_namespace; /* created at start when absent; default "default" */
  int headless;           /* start-dev --headless (no UI); informative */

  /* Temporal dynamic-config keys the server honours (from --dynamic-config-value) */
  int activity_eager_execution; /* system.enableActivityEagerExecution; default 1 */
  int eager_workflow_start;     /* system.enableEagerWorkflowStart; default 1 */

  /* --dynamic-config-value K=V, kept as given (values are YAML/JSON scalars as text) */
  int n_dynamic;
  char *dynamic_keys[GT_CONFIG_MAX_DYNAMIC];
  char *dynamic_values[GT_CONFIG_MAX_DYNAMIC];
} gt_config_t;

/* Fills cfg with the defaults (in-memory SQLite on 127.0.0.1:7233). */
void gt_config_defaults(gt_config_t *cfg);

/* Loads a YAML file over the defaults. On error returns GT_ECONFIG (or GT_EIO when the file
 * cannot be read) and writes "file:line: key 'a.b.c': reason" into err (errlen bytes). */
int gt_config_load(gt_config_t *cfg, const char *path, char *err, size_t errlen);

/* Parses the command line (argv[0] is the program). Forms:
 *   genesis-temporal [--config FILE] [--log-level L] [--log-format F]
 *   genesis-temporal server start-dev [--port N] [--http-port N] [--ip A] [--namespace NS]...
 *       [--db-filename F] [--headless] [--log-format F] [--log-level L]
 *       [--dynamic-config-value K=V]... [--ui-port N] [--metrics-port N]
 *   genesis-temporal --help | --version   -> *exit_now = 1, text printed to stdout
 * Start-dev without --db-filename uses an in-memory database. Unknown dynamic-config keys are
 * kept (the server warns about those it does not know); a known Temporal key sets its field
 * (a value of the wrong type is warned about and leaves the field as it was, as Temporal
 * starts with its default). On error returns GT_ECONFIG with the
 * reason in err. OUT: *exit_now. */
int gt_config_from_args(gt_config_t *cfg, int argc, char **argv, int *exit_now, char *err,
                        size_t errlen);

/* Whether the server honours a --dynamic-config-value key: every `genesis.` key (read by
 * the module that uses it) and the Temporal keys that fill a field above. */
int gt_config_dynamic_known(const char *key);

/* Frees the strings of a config (the struct itself is the caller's). */
void gt_config_fini(gt_config_t *cfg);

#endif
