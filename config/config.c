/*
 * config.c: configuration defaults, shared value parsers, the libpq conninfo
 * builder, and the command line (both the plain form and the Temporal CLI's
 * `server start-dev` form).
 *
 * DESIGN
 *   The default strings are static arrays, not heap copies, so that
 *   gt_config_defaults can be called on a config that already holds defaults
 *   without leaking, and gt_config_from_args can start from the defaults
 *   whether or not its caller called gt_config_defaults first. Every string
 *   store goes through gt__config_set_str, which frees the old value only when
 *   it is not one of these static defaults; gt_config_fini does the same.
 *   The command line is parsed in one pass; --config FILE is loaded after the
 *   pass, and --log-level/--log-format are applied after that, so the command
 *   line always wins over the file whatever the order of the flags.
 *
 * INVARIANTS
 *   Every char * field of a gt_config_t is NULL, a static default, or a heap
 *   string owned by the config.
 *
 * THREADS
 *   Called from main before any thread starts; no shared state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "runtime/err.h"

/* ------------------------------------------------------------------------
 * Defaults and string ownership
 * ---------------------------------------------------------------------- */

static char def_bind_ip[] = "127.0.0.1";
static char def_plugin[] = "sqlite";
static char def_sqlite_path[] = ":memory:";
static char def_vis_plugin[] = "sqlite";
static char def_namespace[] = "default";

static int is_static(const char *s) {
  return s == def_bind_ip || s == def_plugin || s == def_sqlite_path ||
         s == def_vis_plugin || s == def_namespace;
}

void gt__config_free_str(char **field) {
  if (!is_static(*field))
    free(*field);
  *field = NULL;
}

int gt__config_set_str(char **field, const char *value) {
  char *copy = NULL;
  if (value) {
    copy = strdup(value);
    if (!copy)
      return GT_ENOMEM;
  }
  gt__config_free_str(field);
  *field = copy;
  return 0;
}

void gt_config_defaults(gt_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->log_level = GT_LOG_INFO;
  cfg->log_format = GT_LOG_TEXT;
  cfg->bind_ip = def_bind_ip;
  cfg->grpc_port = 7233;
  cfg->http_port = 7243;
  cfg->membership_port = 7234;
  cfg->num_history_shards = 4;
  cfg->store_plugin = def_plugin;
  cfg->sqlite_path = def_sqlite_path;
  cfg->pg_conninfo = NULL;
  cfg->pg_max_conns = 20;
  cfg->visibility_plugin = def_vis_plugin;
  cfg->vis_pg_max_conns = 20;
  cfg->scheduler_threads = 0;
  cfg->default_namespace = def_namespace;
  cfg->headless = 0;
  /* Temporal's default since 1.32 (false before): one RPC round trip less per activity */
  cfg->activity_eager_execution = 1;
  cfg->eager_workflow_start = 1;
  cfg->n_dynamic = 0;
}

void gt_config_fini(gt_config_t *cfg) {
  gt__config_free_str(&cfg->bind_ip);
  gt__config_free_str(&cfg->store_plugin);
  gt__config_free_str(&cfg->sqlite_path);
  gt__config_free_str(&cfg->pg_conninfo);
  gt__config_free_str(&cfg->visibility_plugin);
  gt__config_free_str(&cfg->vis_store_name);
  gt__config_free_str(&cfg->vis_store_plugin);
  gt__config_free_str(&cfg->vis_sqlite_path);
  gt__config_free_str(&cfg->vis_pg_conninfo);
  gt__config_free_str(&cfg->default_namespace);
  for (int i = 0; i < cfg->n_dynamic; i++) {
    free(cfg->dynamic_keys[i]);
    free(cfg->dynamic_values[i]);
    cfg->dynamic_keys[i] = cfg->dynamic_values[i] = NULL;
  }
  cfg->n_dynamic = 0;
}

void gt__config_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------------
 * Value parsers
 * ---------------------------------------------------------------------- */

int gt__config_parse_int(const char *text, int64_t min, int64_t max,
                         int64_t *out) {
  if (!text || !*text || (*text != '-' && *text != '+' &&
                          (*text < '0' || *text > '9')))
    return GT_EINVAL; /* strtoll would skip spaces; we do not */
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno || *end || v < min || v > max)
    return GT_EINVAL;
  *out = v;
  return 0;
}

int gt__config_parse_bool(const char *text, int *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  if (!text)
    return GT_EINVAL;
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcasecmp(text, yes[i]) == 0)
      return *out = 1, 0;
    if (strcasecmp(text, no[i]) == 0)
      return *out = 0, 0;
  }
  return GT_EINVAL;
}

/* Go's time.ParseDuration units, in nanoseconds. */
static int64_t unit_ns(const char *s, size_t *len) {
  static const struct {
    const char *name;
    int64_t ns;
  } units[] = {{"ns", 1},           {"us", 1000},
               {"\xc2\xb5s", 1000}, {"ms", 1000000},
               {"s", 1000000000LL}, {"m", 60000000000LL},
               {"h", 3600000000000LL}};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    size_t n = strlen(units[i].name);
    /* "m" must not match the "m" of "ms": longer names come first. */
    if (strncmp(s, units[i].name, n) == 0) {
      *len = n;
      return units[i].ns;
    }
  }
  return 0;
}

int gt__config_parse_duration(const char *text, int64_t *out_ms) {
  if (!text || !*text)
    return GT_EINVAL;
  if (strcmp(text, "0") == 0)
    return *out_ms = 0, 0;
  const char *p = text;
  double total_ns = 0;
  while (*p) {
    char *end;
    if ((*p < '0' || *p > '9') && *p != '.')
      return GT_EINVAL;
    double v = strtod(p, &end);
    if (end == p)
      return GT_EINVAL;
    size_t ulen;
    int64_t ns = unit_ns(end, &ulen);
    if (!ns)
      return GT_EINVAL;
    total_ns += v * (double)ns;
    p = end + ulen;
  }
  if (total_ns > 9.2e18)
    return GT_EINVAL;
  *out_ms = (int64_t)(total_ns / 1e6);
  return 0;
}

int gt__config_parse_level(const char *text, gt_log_level_t *out) {
  if (!text)
    return GT_EINVAL;
  /* The Temporal CLI's start-dev spells "off" as "never". */
  if (strcasecmp(text, "never") == 0)
    return *out = GT_LOG_OFF, 0;
  return gt_log_parse_level(text, out) == 0 ? 0 : GT_EINVAL;
}

int gt__config_parse_format(const char *text, gt_log_format_t *out) {
  if (!text)
    return GT_EINVAL;
  return gt_log_parse_format(text, out) == 0 ? 0 : GT_EINVAL;
}

const char *gt__config_plugin(const char *plugin_name) {
  static const char *const pg[] = {"postgres", "postgres12", "postgres12_pgx",
                                   "postgresql"};
  if (!plugin_name)
    return NULL;
  if (strcmp(plugin_name, "sqlite") == 0)
    return "sqlite";
  for (size_t i = 0; i < sizeof(pg) / sizeof(pg[0]); i++)
    if (strcmp(plugin_name, pg[i]) == 0)
      return "postgres";
  return NULL;
}

/* ------------------------------------------------------------------------
 * libpq conninfo
 * ---------------------------------------------------------------------- */

/* Appends " key=value" to buf, single-quoting value when libpq requires it
 * (empty, whitespace, quote or backslash), with \ and ' backslash-escaped. */
static void conninfo_add(char *buf, size_t *len, const char *key,
                         const char *value) {
  int quote = !*value || strpbrk(value, " \t\n\r\f\v'\\") != NULL;
  *len += (size_t)sprintf(buf + *len, "%s%s=", *len ? " " : "", key);
  if (quote)
    buf[(*len)++] = '\'';
  for (const char *p = value; *p; p++) {
    if (quote && (*p == '\'' || *p == '\\'))
      buf[(*len)++] = '\\';
    buf[(*len)++] = *p;
  }
  if (quote)
    buf[(*len)++] = '\'';
  buf[*len] = '\0';
}

/* Splits "host:port" / "[v6]:port" / "host". OUT: host (malloc'd), *port
 * (NULL when absent; points into addr). Returns 0 or GT_EINVAL. */
static int split_addr(const char *addr, char **host, const char **port) {
  const char *colon, *h = addr;
  size_t hlen;
  *port = NULL;
  if (*addr == '[') {
    const char *close = strchr(addr, ']');
    if (!close || (close[1] && close[1] != ':'))
      return GT_EINVAL;
    h = addr + 1;
    hlen = (size_t)(close - h);
    colon = close[1] ? close + 1 : NULL;
  } else {
    colon = strrchr(addr, ':');
    if (colon && strchr(addr, ':') != colon)
      return GT_EINVAL; /* bare IPv6 without brackets is ambiguous */
    hlen = colon ? (size_t)(colon - addr) : strlen(addr);
  }
  if (hlen == 0)
    return GT_EINVAL;
  if (colon) {
    int64_t p;
    if (gt__config_parse_int(colon + 1, 1, 65535, &p) != 0)
      return GT_EINVAL;
    *port = colon + 1;
  }
  *host = strndup(h, hlen);
  return *host ? 0 : GT_ENOMEM;
}

/* libpq's sslmode for Temporal's tls keys: host verification means
 * verify-full, a CA alone verify-ca, else encryption without checks. */
static const char *sslmode(const gt__pg_params_t *pg) {
  if (pg->tls < 0)
    return NULL; /* libpq's default (prefer) */
  if (pg->tls == 0)
    return "disable";
  if (pg->host_verify)
    return "verify-full";
  return pg->ca_file && *pg->ca_file ? "verify-ca" : "require";
}

char *gt__config_pg_conninfo(const gt__pg_params_t *pg, int *bad_addr) {
  char *host = NULL;
  const char *port;
  int rc = pg->connect_addr ? split_addr(pg->connect_addr, &host, &port)
                            : GT_EINVAL;
  *bad_addr = rc == GT_EINVAL;
  if (rc != 0)
    return NULL;
  static const char *const keys[] = {"host",     "port",    "dbname",
                                     "user",     "password", "sslmode",
                                     "sslrootcert", "sslcert", "sslkey"};
  const char *vals[] = {host,         port,        pg->dbname,
                        pg->user,     pg->password, sslmode(pg),
                        pg->ca_file,  pg->cert_file, pg->key_file};
  size_t n = sizeof(keys) / sizeof(keys[0]), cap = 64;
  for (size_t i = 0; i < n; i++)
    cap += vals[i] ? 2 * strlen(vals[i]) + 16 : 0;
  char *buf = malloc(cap);
  if (buf) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
      if (vals[i] && *vals[i])
        conninfo_add(buf, &len, keys[i], vals[i]);
  }
  free(host);
  return buf;
}

/* ------------------------------------------------------------------------
 * Command line
 * ---------------------------------------------------------------------- */

enum flag_id {
  F_CONFIG, F_LEVEL, F_FORMAT, F_HELP, F_VERSION, F_PORT, F_HTTP_PORT, F_IP,
  F_NAMESPACE, F_DB, F_HEADLESS, F_DYNAMIC, F_IGNORED
};

typedef struct flag {
  const char *name;  /* long name without "--" */
  char short_name;   /* "-x" alias, or 0 */
  int takes_value;   /* 0 = boolean flag */
  enum flag_id id;
} flag_t;

static const flag_t top_flags[] = {
    {"config", 'c', 1, F_CONFIG},  {"log-level", 0, 1, F_LEVEL},
    {"log-format", 0, 1, F_FORMAT}, {"help", 'h', 0, F_HELP},
    {"version", 'v', 0, F_VERSION}, {NULL, 0, 0, 0}};

static const flag_t dev_flags[] = {
    {"port", 'p', 1, F_PORT},
    {"http-port", 0, 1, F_HTTP_PORT},
    {"ip", 0, 1, F_IP},
    {"namespace", 'n', 1, F_NAMESPACE},
    {"db-filename", 'f', 1, F_DB},
    {"headless", 0, 0, F_HEADLESS},
    {"log-format", 0, 1, F_FORMAT},
    {"log-level", 0, 1, F_LEVEL},
    {"dynamic-config-value", 0, 1, F_DYNAMIC},
    /* The UI and metrics endpoints of the Temporal CLI: we serve /metrics on
     * the HTTP port and have no separate UI server, so these are ignored. */
    {"ui-port", 0, 1, F_IGNORED},
    {"metrics-port", 0, 1, F_IGNORED},
    {"ui-ip", 0, 1, F_IGNORED},
    {"ui-public-path", 0, 1, F_IGNORED},
    {"ui-asset-path", 0, 1, F_IGNORED},
    {"ui-codec-endpoint", 0, 1, F_IGNORED},
    {"sqlite-pragma", 0, 1, F_IGNORED},
    {"help", 'h', 0, F_HELP},
    {"version", 'v', 0, F_VERSION},
    {NULL, 0, 0, 0}};

static const char usage_text[] =
    "usage:\n"
    "  genesis-temporal [--config FILE] [--log-level L] [--log-format F]\n"
    "  genesis-temporal server start-dev [--port N] [--http-port N] [--ip A]\n"
    "      [--namespace NS]... [--db-filename F] [--headless]\n"
    "      [--log-format F] [--log-level L] [--dynamic-config-value K=V]...\n"
    "      [--ui-port N] [--metrics-port N]\n"
    "  genesis-temporal --help | --version\n"
    "\n"
    "  --config FILE   YAML configuration (see config/development.yaml)\n"
    "  --log-level L   debug, info, warn, error, off (overrides the file)\n"
    "  --log-format F  text or json (overrides the file)\n"
    "start-dev uses an in-memory SQLite database unless --db-filename is "
    "given.\n"
    "The HTTP port serves GET /health and GET /metrics (Prometheus). It is\n"
    "services.frontend.rpc.httpPort in YAML (default 7243); start-dev opens it\n"
    "only with --http-port N. Port 0 turns it off.\n";

/* What the pass over argv found that is applied after it. */
typedef struct cli {
  const char *config_path;
  const char *level;
  const char *format;
  int n_namespaces;
} cli_t;

static const flag_t *find_flag(const flag_t *table, const char *arg,
                               const char **inline_value) {
  *inline_value = NULL;
  if (arg[0] == '-' && arg[1] != '-' && arg[1] && !arg[2]) {
    for (const flag_t *f = table; f->name; f++)
      if (f->short_name == arg[1])
        return f;
    return NULL;
  }
  if (strncmp(arg, "--", 2) != 0)
    return NULL;
  const char *name = arg + 2, *eq = strchr(name, '=');
  size_t n = eq ? (size_t)(eq - name) : strlen(name);
  for (const flag_t *f = table; f->name; f++) {
    if (strlen(f->name) == n && strncmp(f->name, name, n) == 0) {
      *inline_value = eq ? eq + 1 : NULL;
      return f;
    }
  }
  return NULL;
}

static int port_value(const char *flag, const char *v, int min, int *out,
                      char *err, size_t errlen) {
  int64_t p;
  if (gt__config_parse_int(v, min, 65535, &p) != 0) {
    gt__config_err(err, errlen,
                   "--%s: expected a port number (%d-65535), got '%s'", flag,
                   min, v);
    return GT_ECONFIG;
  }
  *out = (int)p;
  return 0;
}

/* The Temporal dynamic-config keys the server reads, and the bool field each sets. */
static const struct {
  const char *key;
  size_t off;
} dyn_bools[] = {
    {"system.enableActivityEagerExecution",
     offsetof(gt_config_t, activity_eager_execution)},
    {"system.enableEagerWorkflowStart", offsetof(gt_config_t, eager_workflow_start)},
};

int gt_config_dynamic_known(const char *key) {
  if (strncmp(key, "genesis.", 8) == 0)
    return 1;
  for (size_t i = 0; i < sizeof(dyn_bools) / sizeof(dyn_bools[0]); i++)
    if (strcmp(key, dyn_bools[i].key) == 0)
      return 1;
  return 0;
}

/* A known Temporal key sets its field. Temporal reads a value of the wrong type as the
 * default (and logs it), so a bad value is a warning here, not a refusal to start. */
static void apply_dynamic(gt_config_t *cfg, const char *k, const char *v) {
  for (size_t i = 0; i < sizeof(dyn_bools) / sizeof(dyn_bools[0]); i++) {
    if (strcmp(k, dyn_bools[i].key) != 0)
      continue;
    int b;
    if (gt__config_parse_bool(v, &b) == 0)
      *(int *)((char *)cfg + dyn_bools[i].off) = b;
    else
      gt_log_warn("CONFIG-DYNAMIC-VALUE",
                  "dynamic config %s=%s: expected true or false; default kept", k, v);
  }
}

static int add_dynamic(gt_config_t *cfg, const char *kv, char *err,
                       size_t errlen) {
  const char *eq = strchr(kv, '=');
  if (!eq || eq == kv) {
    gt__config_err(err, errlen,
                   "--dynamic-config-value: expected KEY=VALUE, got '%s'", kv);
    return GT_ECONFIG;
  }
  if (cfg->n_dynamic >= GT_CONFIG_MAX_DYNAMIC) {
    gt__config_err(err, errlen,
                   "--dynamic-config-value: more than %d values",
                   GT_CONFIG_MAX_DYNAMIC);
    return GT_ECONFIG;
  }
  char *k = strndup(kv, (size_t)(eq - kv)), *v = strdup(eq + 1);
  if (!k || !v) {
    free(k);
    free(v);
    return GT_ENOMEM;
  }
  cfg->dynamic_keys[cfg->n_dynamic] = k;
  cfg->dynamic_values[cfg->n_dynamic++] = v;
  apply_dynamic(cfg, k, v);
  return 0;
}

/* Applies one flag of either form. OUT: *exit_now for --help/--version. */
static int apply_flag(gt_config_t *cfg, cli_t *cli, const flag_t *f,
                      const char *v, int *exit_now, char *err, size_t errlen) {
  switch (f->id) {
  case F_HELP:
    fputs(usage_text, stdout);
    return *exit_now = 1, 0;
  case F_VERSION:
    puts(GT_CONFIG_VERSION_TEXT);
    return *exit_now = 1, 0;
  case F_CONFIG:
    return cli->config_path = v, 0;
  case F_LEVEL:
    return cli->level = v, 0;
  case F_FORMAT:
    return cli->format = v, 0;
  case F_PORT:
    return port_value(f->name, v, 1, &cfg->grpc_port, err, errlen);
  case F_HTTP_PORT:
    return port_value(f->name, v, 0, &cfg->http_port, err, errlen);
  case F_IP:
    if (!*v)
      break;
    return gt__config_set_str(&cfg->bind_ip, v);
  case F_NAMESPACE:
    if (!*v)
      break;
    /* Only the first is kept: the config has one default namespace. */
    if (cli->n_namespaces++ == 0)
      return gt__config_set_str(&cfg->default_namespace, v);
    gt_log_warn("CONFIG-EXTRA-NAMESPACE",
                "--namespace %s ignored: only the first namespace is created",
                v);
    return 0;
  case F_DB:
    if (!*v)
      break;
    return gt__config_set_str(&cfg->sqlite_path, v);
  case F_HEADLESS:
    if (v && gt__config_parse_bool(v, &cfg->headless) != 0)
      break;
    if (!v)
      cfg->headless = 1;
    return 0;
  case F_DYNAMIC:
    return add_dynamic(cfg, v, err, errlen);
  case F_IGNORED:
    return 0;
  }
  gt__config_err(err, errlen, "--%s: invalid value '%s'", f->name,
                 v ? v : "");
  return GT_ECONFIG;
}

/* Applies what the pass collected: the file first, then the log overrides. */
static int apply_cli(gt_config_t *cfg, const cli_t *cli, char *err,
                     size_t errlen) {
  if (cli->config_path) {
    int rc = gt_config_load(cfg, cli->config_path, err, errlen);
    if (rc != 0)
      return rc;
  }
  if (cli->level && gt__config_parse_level(cli->level, &cfg->log_level)) {
    gt__config_err(err, errlen,
                   "--log-level: expected debug, info, warn, error or off, "
                   "got '%s'", cli->level);
    return GT_ECONFIG;
  }
  if (cli->format && gt__config_parse_format(cli->format, &cfg->log_format)) {
    gt__config_err(err, errlen,
                   "--log-format: expected text or json, got '%s'",
                   cli->format);
    return GT_ECONFIG;
  }
  return 0;
}

int gt_config_from_args(gt_config_t *cfg, int argc, char **argv, int *exit_now,
                        char *err, size_t errlen) {
  const flag_t *table = top_flags;
  cli_t cli = {0};
  int i = 1;
  gt_config_defaults(cfg);
  *exit_now = 0;
  if (argc > 1 && strcmp(argv[1], "server") == 0) {
    if (argc < 3 || strcmp(argv[2], "start-dev") != 0) {
      gt__config_err(err, errlen, "unknown command 'server %s' (expected "
                     "'server start-dev')", argc < 3 ? "" : argv[2]);
      return GT_ECONFIG;
    }
    table = dev_flags;
    i = 3;
    /* As the Temporal CLI's start-dev: no HTTP port unless --http-port is given, so that
     * dev servers launched side by side (SDK test environments) do not fight over 7243. */
    cfg->http_port = 0;
  }
  for (; i < argc; i++) {
    const char *arg = argv[i], *v;
    const flag_t *f = find_flag(table, arg, &v);
    if (!f) {
      if (arg[0] == '-')
        gt__config_err(err, errlen, "unknown flag %.*s", (int)strcspn(arg, "="),
                       arg);
      else
        gt__config_err(err, errlen, "unexpected argument '%s'", arg);
      return GT_ECONFIG;
    }
    if (f->takes_value && !v) {
      if (i + 1 >= argc) {
        gt__config_err(err, errlen, "flag --%s needs a value", f->name);
        return GT_ECONFIG;
      }
      v = argv[++i];
    }
    int rc = apply_flag(cfg, &cli, f, v, exit_now, err, errlen);
    if (rc != 0 || *exit_now)
      return rc;
  }
  return apply_cli(cfg, &cli, err, errlen);
}
