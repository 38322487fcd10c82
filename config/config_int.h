/*
 * config_int.h: internals shared by config.c (defaults, command line) and
 * yaml_load.c (the YAML schema walk). Not for other modules.
 */
#ifndef GT_CONFIG_INT_H
#define GT_CONFIG_INT_H

#include <stdint.h>
#include "config/config.h"

#define GT_CONFIG_VERSION_TEXT \
  "genesis-temporal 0.1.0 (Temporal API 1.24.0-compatible)"

/* Replaces *field with a copy of value (NULL allowed), freeing the old string
 * unless it is one of the static defaults gt_config_defaults installs.
 * Returns 0 or GT_ENOMEM (then *field is unchanged). */
int gt__config_set_str(char **field, const char *value);

/* Frees *field (unless a static default) and sets it to NULL. */
void gt__config_free_str(char **field);

/* Value parsers shared by YAML and the command line. Each returns 0 and sets
 * *out, or GT_EINVAL when text is not of the type (nothing is written). */
int gt__config_parse_int(const char *text, int64_t min, int64_t max,
                         int64_t *out); /* decimal, optional sign */
/* true/false, yes/no, on/off, 1/0 */
int gt__config_parse_bool(const char *text, int *out);
int gt__config_parse_duration(const char *text,
                              int64_t *out_ms); /* Go form: 1h30m, 500ms, 10s */
int gt__config_parse_level(const char *text, gt_log_level_t *out);
int gt__config_parse_format(const char *text, gt_log_format_t *out);

/* Normalizes a Temporal sql pluginName: "sqlite" -> "sqlite"; "postgres",
 * "postgres12", "postgres12_pgx", "postgresql" -> "postgres"; else NULL. */
const char *gt__config_plugin(const char *plugin_name);

/* What a postgres datastore says about its connection (NULL/"": absent). */
typedef struct gt__pg_params {
  const char *connect_addr; /* "host:port", "[v6]:port" or "host" */
  const char *dbname, *user, *password;
  int tls;              /* -1: no tls section, 0: disabled, 1: enabled */
  int host_verify;      /* tls.enableHostVerification */
  const char *ca_file, *cert_file, *key_file;
} gt__pg_params_t;

/* Builds a libpq conninfo ("host=... port=... dbname=... user=...
 * password=..." then ssl* keys), quoting values per libpq rules. Returns a
 * malloc'd string, or NULL on a bad address (*bad_addr = 1) or out of
 * memory (*bad_addr = 0). */
char *gt__config_pg_conninfo(const gt__pg_params_t *pg, int *bad_addr);

/* snprintf into err (errlen may be 0 / err NULL). */
void gt__config_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
