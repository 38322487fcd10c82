/*
 * yaml_load.c: gt_config_load, a YAML file in Temporal's server-config shape
 * into a gt_config_t. The only user of libyaml in the project.
 *
 * DESIGN
 *   libyaml's document loader builds the node tree (it resolves anchors and
 *   keeps each node's position). We walk it against a declarative schema:
 *   each row is a key path (segments joined by '.', '*' matches one segment,
 *   e.g. a datastore name), a type, and an optional setter. A key matching no
 *   row is "unknown key"; a value that does not parse as the row's type is an
 *   error naming the key and its line. Setters only record what they saw into
 *   a load_t (pointers into the document plus lines). After the walk,
 *   resolve() cross-checks it (defaultStore must name a datastore, plugin
 *   names, the SQLite path, the libpq conninfo), and only then is the config
 *   changed: a failed load leaves the caller's config as it was (except after
 *   out of memory, when it is still safe to fini).
 *   Temporal keys we have no use for (other services' ports, archival,
 *   clusterMetadata...) are still typed and checked, then ignored, so a
 *   Temporal file loads unchanged and a typo is still caught.
 *
 * INVARIANTS
 *   Error text is "FILE:LINE: key 'a.b.c': reason" or "FILE:LINE: unknown key
 *   'a.b.c'", LINE 1-based from libyaml's marks. The first error stops the
 *   load. Strings in load_t belong to the yaml document and die with it.
 *
 * THREADS
 *   Called from main before threads start; no shared state.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config_int.h"
#include "runtime/err.h"

#define MAX_DEPTH 16     /* deeper keys than any schema row are unknown */
#define MAX_DATASTORES 32

/* ------------------------------------------------------------------------
 * What the walk records
 * ---------------------------------------------------------------------- */

typedef struct sval {
  const char *s; /* NULL: not given */
  int line;
} sval_t;

typedef struct datastore {
  const char *name;
  int line;
  sval_t plugin, dbname, addr, user, password;
  int max_conns; /* -1: not given */
  int64_t lifetime_ms; /* maxConnLifetime; -1: not given */
  int mem_mode;  /* connectAttributes.mode == memory */
  int tls;       /* -1: no sql.tls section, else tls.enabled */
  int host_verify;
  const char *ca_file, *cert_file, *key_file;
} datastore_t;

typedef struct load {
  const char *file;
  char *err;
  size_t errlen;
  yaml_document_t *doc;
  const char *segs[MAX_DEPTH]; /* the key path being walked */
  int depth;

  int has_level, has_format;
  gt_log_level_t level;
  gt_log_format_t format;
  int grpc_port, http_port, membership_port; /* -1: not given */
  int bind_local;                            /* -1: not given */
  sval_t bind_ip;
  int shards; /* 0: not given */
  int persistence_line;
  sval_t default_store, vis_store;
  datastore_t ds[MAX_DATASTORES];
  int n_ds;
  int sched_threads; /* -1: not given */
  sval_t def_ns;
  int headless; /* -1: not given */
} load_t;

/* A parsed value handed to a setter. */
typedef struct val {
  const char *s;   /* scalar text (NULL for a null scalar) */
  const char *key; /* K_MAP entries: the entry's key */
  int64_t i;       /* K_INT/K_POS/K_PORT*, K_BOOL, K_LEVEL, K_FORMAT */
  int line;
} val_t;

typedef int (*setter_t)(load_t *ld, const char *star, const val_t *v);

typedef enum kind {
  K_SECTION, /* a mapping whose keys are schema rows */
  K_ANY,     /* any subtree, accepted unchecked */
  K_MAP,     /* string -> string mapping, free keys */
  K_STR,
  K_INT,   /* 0 .. INT_MAX */
  K_POS,   /* 1 .. INT_MAX */
  K_PORT,  /* 1 .. 65535 */
  K_PORT0, /* 0 .. 65535, 0 = off */
  K_BOOL,
  K_DUR,
  K_LEVEL,
  K_FORMAT,
} kind_t;

typedef struct schema_key {
  const char *path;
  kind_t kind;
  setter_t set;
  const char *const *only; /* allowed names for a trailing '*', or NULL */
} schema_key_t;

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

static const char *path_str(load_t *ld, char *buf, size_t len) {
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < ld->depth && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? "." : "", ld->segs[i]);
  return buf;
}

static int fail(load_t *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(load_t *ld, int line, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  gt__config_err(ld->err, ld->errlen, "%s:%d: %s", ld->file, line, msg);
  return GT_ECONFIG;
}

/* "key 'a.b.c': <reason>" for the key being walked. */
static int fail_key(load_t *ld, int line, const char *reason, const char *got) {
  char p[512];
  path_str(ld, p, sizeof(p));
  if (got)
    return fail(ld, line, "key '%s': %s, got %s", p, reason, got);
  return fail(ld, line, "key '%s': %s", p, reason);
}

/* ------------------------------------------------------------------------
 * Setters
 * ---------------------------------------------------------------------- */

static datastore_t *ds_find(load_t *ld, const char *name) {
  for (int i = 0; i < ld->n_ds; i++)
    if (strcmp(ld->ds[i].name, name) == 0)
      return &ld->ds[i];
  return NULL;
}

static int set_ds(load_t *ld, const char *star, const val_t *v) {
  if (ds_find(ld, star))
    return 0;
  if (ld->n_ds == MAX_DATASTORES)
    return fail_key(ld, v->line, "too many datastores", NULL);
  datastore_t *d = &ld->ds[ld->n_ds++];
  memset(d, 0, sizeof(*d));
  d->name = star;
  d->line = v->line;
  d->max_conns = -1;
  d->lifetime_ms = -1;
  d->tls = -1;
  return 0;
}

/* The datastore section row always runs before its children. */
#define DS_FIELD(fn, field)                                                    \
  static int fn(load_t *ld, const char *star, const val_t *v) {                \
    ds_find(ld, star)->field = (sval_t){v->s, v->line};                        \
    return 0;                                                                  \
  }
DS_FIELD(set_ds_plugin, plugin)
DS_FIELD(set_ds_dbname, dbname)
DS_FIELD(set_ds_addr, addr)
DS_FIELD(set_ds_user, user)
DS_FIELD(set_ds_password, password)

static int set_ds_max_conns(load_t *ld, const char *star, const val_t *v) {
  ds_find(ld, star)->max_conns = (int)v->i;
  return 0;
}

static int set_ds_lifetime(load_t *ld, const char *star, const val_t *v) {
  ds_find(ld, star)->lifetime_ms = v->i;
  return 0;
}

static int set_ds_attr(load_t *ld, const char *star, const val_t *v) {
  if (strcmp(v->key, "mode") == 0)
    ds_find(ld, star)->mem_mode = v->s && strcmp(v->s, "memory") == 0;
  return 0;
}

static int set_ds_tls(load_t *ld, const char *star, const val_t *v) {
  datastore_t *d = ds_find(ld, star);
  if (d->tls < 0)
    d->tls = 0; /* a tls section without enabled: true is off */
  return 0;
}

static int set_ds_tls_enabled(load_t *ld, const char *star, const val_t *v) {
  ds_find(ld, star)->tls = (int)v->i;
  return 0;
}

static int set_ds_tls_verify(load_t *ld, const char *star, const val_t *v) {
  ds_find(ld, star)->host_verify = (int)v->i;
  return 0;
}

#define DS_TLS_FILE(fn, field)                                                 \
  static int fn(load_t *ld, const char *star, const val_t *v) {                \
    ds_find(ld, star)->field = v->s;                                           \
    return 0;                                                                  \
  }
DS_TLS_FILE(set_ds_ca_file, ca_file)
DS_TLS_FILE(set_ds_cert_file, cert_file)
DS_TLS_FILE(set_ds_key_file, key_file)

static int set_persistence(load_t *ld, const char *star, const val_t *v) {
  ld->persistence_line = v->line;
  return 0;
}

static int set_default_store(load_t *ld, const char *star, const val_t *v) {
  ld->default_store = (sval_t){v->s, v->line};
  return 0;
}

static int set_vis_store(load_t *ld, const char *star, const val_t *v) {
  ld->vis_store = (sval_t){v->s, v->line};
  return 0;
}

static int set_shards(load_t *ld, const char *star, const val_t *v) {
  ld->shards = (int)v->i;
  return 0;
}

static int set_level(load_t *ld, const char *star, const val_t *v) {
  ld->has_level = 1;
  ld->level = (gt_log_level_t)v->i;
  return 0;
}

static int set_format(load_t *ld, const char *star, const val_t *v) {
  ld->has_format = 1;
  ld->format = (gt_log_format_t)v->i;
  return 0;
}

/* Only the frontend's rpc block configures us: one binary holds every role,
 * and it listens where Temporal's frontend would. */
#define FRONTEND_INT(fn, field)                                                \
  static int fn(load_t *ld, const char *star, const val_t *v) {                \
    if (strcmp(star, "frontend") == 0)                                         \
      ld->field = (int)v->i;                                                   \
    return 0;                                                                  \
  }
FRONTEND_INT(set_grpc_port, grpc_port)
FRONTEND_INT(set_http_port, http_port)
FRONTEND_INT(set_membership_port, membership_port)
FRONTEND_INT(set_bind_local, bind_local)

static int set_bind_ip(load_t *ld, const char *star, const val_t *v) {
  if (strcmp(star, "frontend") == 0)
    ld->bind_ip = (sval_t){v->s, v->line};
  return 0;
}

static int set_sched_threads(load_t *ld, const char *star, const val_t *v) {
  if (v->i > 1024)
    return fail_key(ld, v->line, "expected at most 1024 threads", NULL);
  ld->sched_threads = (int)v->i;
  return 0;
}

static int set_def_ns(load_t *ld, const char *star, const val_t *v) {
  if (!v->s || !*v->s)
    return fail_key(ld, v->line, "expected a namespace name", "''");
  ld->def_ns = (sval_t){v->s, v->line};
  return 0;
}

static int set_headless(load_t *ld, const char *star, const val_t *v) {
  ld->headless = (int)v->i;
  return 0;
}

/* ------------------------------------------------------------------------
 * The schema
 * ---------------------------------------------------------------------- */

static const char *const services[] = {"frontend", "history", "matching",
                                       "worker", "internal-frontend", NULL};

#define DS "persistence.datastores.*"
#define SQL DS ".sql"
#define RPC "services.*.rpc"
#define CI "clusterMetadata.clusterInformation.*"

static const schema_key_t schema[] = {
    {"log", K_SECTION, NULL, NULL},
    {"log.stdout", K_BOOL, NULL, NULL},
    {"log.level", K_LEVEL, set_level, NULL},
    {"log.format", K_FORMAT, set_format, NULL},
    {"log.outputFile", K_STR, NULL, NULL},
    {"log.levelKey", K_STR, NULL, NULL},
    {"log.development", K_BOOL, NULL, NULL},

    {"persistence", K_SECTION, set_persistence, NULL},
    {"persistence.defaultStore", K_STR, set_default_store, NULL},
    {"persistence.visibilityStore", K_STR, set_vis_store, NULL},
    {"persistence.secondaryVisibilityStore", K_STR, NULL, NULL},
    {"persistence.numHistoryShards", K_POS, set_shards, NULL},
    {"persistence.datastores", K_SECTION, NULL, NULL},
    {DS, K_SECTION, set_ds, NULL},
    {SQL, K_SECTION, NULL, NULL},
    {SQL ".pluginName", K_STR, set_ds_plugin, NULL},
    {SQL ".databaseName", K_STR, set_ds_dbname, NULL},
    {SQL ".connectAddr", K_STR, set_ds_addr, NULL},
    {SQL ".connectProtocol", K_STR, NULL, NULL},
    {SQL ".connectAttributes", K_MAP, set_ds_attr, NULL},
    {SQL ".user", K_STR, set_ds_user, NULL},
    {SQL ".password", K_STR, set_ds_password, NULL},
    {SQL ".maxConns", K_POS, set_ds_max_conns, NULL},
    {SQL ".maxIdleConns", K_INT, NULL, NULL},
    {SQL ".maxConnLifetime", K_DUR, set_ds_lifetime, NULL},
    /* the spelling of our issue tracker (Go's sql.DB calls it ConnMaxLifetime) */
    {SQL ".connMaxLifetime", K_DUR, set_ds_lifetime, NULL},
    {SQL ".taskScanPartitions", K_INT, NULL, NULL},
    {SQL ".tls", K_SECTION, set_ds_tls, NULL},
    {SQL ".tls.enabled", K_BOOL, set_ds_tls_enabled, NULL},
    {SQL ".tls.caFile", K_STR, set_ds_ca_file, NULL},
    {SQL ".tls.certFile", K_STR, set_ds_cert_file, NULL},
    {SQL ".tls.keyFile", K_STR, set_ds_key_file, NULL},
    {SQL ".tls.caData", K_STR, NULL, NULL},
    {SQL ".tls.certData", K_STR, NULL, NULL},
    {SQL ".tls.keyData", K_STR, NULL, NULL},
    {SQL ".tls.enableHostVerification", K_BOOL, set_ds_tls_verify, NULL},
    {SQL ".tls.serverName", K_STR, NULL, NULL},

    {"global", K_SECTION, NULL, NULL},
    {"global.membership", K_SECTION, NULL, NULL},
    {"global.membership.maxJoinDuration", K_DUR, NULL, NULL},
    {"global.membership.broadcastAddress", K_STR, NULL, NULL},
    {"global.pprof", K_SECTION, NULL, NULL},
    {"global.pprof.port", K_PORT0, NULL, NULL},
    {"global.metrics", K_SECTION, NULL, NULL},
    {"global.metrics.prometheus", K_SECTION, NULL, NULL},
    {"global.metrics.prometheus.listenAddress", K_STR, NULL, NULL},
    {"global.metrics.prometheus.timerType", K_STR, NULL, NULL},
    {"global.metrics.prometheus.framework", K_STR, NULL, NULL},
    {"global.metrics.prometheus.handlerPath", K_STR, NULL, NULL},
    {"global.metrics.tags", K_MAP, NULL, NULL},
    {"global.metrics.prefix", K_STR, NULL, NULL},
    {"global.metrics.excludeTags", K_ANY, NULL, NULL},
    {"global.tls", K_ANY, NULL, NULL},
    {"global.authorization", K_ANY, NULL, NULL},

    {"clusterMetadata", K_SECTION, NULL, NULL},
    {"clusterMetadata.enableGlobalNamespace", K_BOOL, NULL, NULL},
    {"clusterMetadata.failoverVersionIncrement", K_POS, NULL, NULL},
    {"clusterMetadata.masterClusterName", K_STR, NULL, NULL},
    {"clusterMetadata.currentClusterName", K_STR, NULL, NULL},
    {"clusterMetadata.clusterInformation", K_SECTION, NULL, NULL},
    {CI, K_SECTION, NULL, NULL},
    {CI ".enabled", K_BOOL, NULL, NULL},
    {CI ".initialFailoverVersion", K_INT, NULL, NULL},
    {CI ".rpcName", K_STR, NULL, NULL},
    {CI ".rpcAddress", K_STR, NULL, NULL},
    {CI ".httpAddress", K_STR, NULL, NULL},

    {"dcRedirectionPolicy", K_SECTION, NULL, NULL},
    {"dcRedirectionPolicy.policy", K_STR, NULL, NULL},

    {"services", K_SECTION, NULL, NULL},
    {"services.*", K_SECTION, NULL, services},
    {RPC, K_SECTION, NULL, NULL},
    {RPC ".grpcPort", K_PORT, set_grpc_port, NULL},
    {RPC ".membershipPort", K_PORT, set_membership_port, NULL},
    {RPC ".httpPort", K_PORT0, set_http_port, NULL},
    {RPC ".bindOnLocalHost", K_BOOL, set_bind_local, NULL},
    {RPC ".bindOnIP", K_STR, set_bind_ip, NULL},

    {"archival", K_ANY, NULL, NULL},
    {"namespaceDefaults", K_ANY, NULL, NULL},

    {"dynamicConfigClient", K_SECTION, NULL, NULL},
    {"dynamicConfigClient.filepath", K_STR, NULL, NULL},
    {"dynamicConfigClient.pollInterval", K_DUR, NULL, NULL},

    {"publicClient", K_SECTION, NULL, NULL},
    {"publicClient.hostPort", K_STR, NULL, NULL},

    {"genesis", K_SECTION, NULL, NULL},
    {"genesis.schedulerThreads", K_INT, set_sched_threads, NULL},
    {"genesis.defaultNamespace", K_STR, set_def_ns, NULL},
    {"genesis.headless", K_BOOL, set_headless, NULL},
};

/* True when pattern matches segs[0..n); OUT: *star = the first segment
 * matched by a '*' (NULL when none). */
static int match(const char *pat, const char *const *segs, int n,
                 const char **star) {
  const char *p = pat;
  *star = NULL;
  for (int i = 0; i < n; i++) {
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    if (len == 1 && *p == '*') {
      if (!*star)
        *star = segs[i];
    } else if (strlen(segs[i]) != len || strncmp(p, segs[i], len) != 0) {
      return 0;
    }
    if (!dot)
      return i == n - 1;
    p = dot + 1;
  }
  return 0;
}

static int name_in(const char *name, const char *const *list) {
  for (; *list; list++)
    if (strcmp(*list, name) == 0)
      return 1;
  return 0;
}

static const schema_key_t *lookup(load_t *ld, const char **star) {
  for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++) {
    const schema_key_t *k = &schema[i];
    if (match(k->path, ld->segs, ld->depth, star) &&
        (!k->only || name_in(ld->segs[ld->depth - 1], k->only)))
      return k;
  }
  return NULL;
}

/* ------------------------------------------------------------------------
 * The walk
 * ---------------------------------------------------------------------- */

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static yaml_node_t *node_at(load_t *ld, int index) {
  return yaml_document_get_node(ld->doc, index);
}

static const char *scalar(const yaml_node_t *n) {
  return (const char *)n->data.scalar.value;
}

/* A plain empty, "~" or "null" scalar: YAML's null. */
static int is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  const char *s = scalar(n);
  return !*s || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

/* How to show a bad value in an error: 'text', a mapping or a sequence. */
static const char *describe(const yaml_node_t *n, char *buf, size_t len) {
  if (n->type == YAML_MAPPING_NODE)
    return "a mapping";
  if (n->type == YAML_SEQUENCE_NODE)
    return "a sequence";
  snprintf(buf, len, "'%.200s'", scalar(n));
  return buf;
}

static int walk_mapping(load_t *ld, yaml_node_t *map);

static int walk_map_kind(load_t *ld, const schema_key_t *k, const char *star,
                         yaml_node_t *v) {
  char got[256];
  if (is_null(v))
    return 0;
  if (v->type != YAML_MAPPING_NODE)
    return fail_key(ld, line_of(v), "expected a mapping of strings",
                    describe(v, got, sizeof(got)));
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
       p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = node_at(ld, p->key), *vn = node_at(ld, p->value);
    if (kn->type != YAML_SCALAR_NODE || vn->type != YAML_SCALAR_NODE)
      return fail_key(ld, line_of(kn), "expected a mapping of strings",
                      describe(kn->type != YAML_SCALAR_NODE ? kn : vn, got,
                               sizeof(got)));
    val_t val = {.s = scalar(vn), .key = scalar(kn), .line = line_of(kn)};
    if (k->set && k->set(ld, star, &val) != 0)
      return GT_ECONFIG;
  }
  return 0;
}

/* Parses a scalar per its kind into val. Returns 0 or fails naming the key. */
static int parse_scalar(load_t *ld, kind_t kind, yaml_node_t *v, val_t *val) {
  static const struct {
    int64_t min, max;
  } ranges[] = {[K_INT] = {0, INT_MAX},
                [K_POS] = {1, INT_MAX},
                [K_PORT] = {1, 65535},
                [K_PORT0] = {0, 65535}};
  char got[256];
  const char *s = scalar(v);
  describe(v, got, sizeof(got));
  int b;
  gt_log_level_t lv;
  gt_log_format_t fm;
  switch (kind) {
  case K_STR:
    val->s = is_null(v) ? NULL : s;
    return 0;
  case K_INT:
  case K_POS:
  case K_PORT:
  case K_PORT0:
    if (gt__config_parse_int(s, INT64_MIN, INT64_MAX, &val->i) != 0)
      return fail_key(ld, val->line, "expected an integer", got);
    if (val->i >= ranges[kind].min && val->i <= ranges[kind].max)
      return 0;
    if (kind == K_INT)
      return fail_key(ld, val->line, "expected a non-negative integer", got);
    if (kind == K_POS)
      return fail_key(ld, val->line, "expected a positive integer", got);
    return fail_key(ld, val->line,
                    kind == K_PORT ? "expected a port number (1-65535)"
                                   : "expected a port number (0-65535)",
                    got);
  case K_BOOL:
    if (gt__config_parse_bool(s, &b) != 0)
      return fail_key(ld, val->line, "expected a boolean (true or false)",
                      got);
    val->i = b;
    return 0;
  case K_DUR:
    if (gt__config_parse_duration(s, &val->i) != 0)
      return fail_key(ld, val->line,
                      "expected a duration such as 30s, 1h or 500ms", got);
    return 0;
  case K_LEVEL:
    if (gt__config_parse_level(s, &lv) != 0)
      return fail_key(ld, val->line,
                      "expected a log level (debug, info, warn, error, off)",
                      got);
    val->i = lv;
    return 0;
  case K_FORMAT:
    if (gt__config_parse_format(s, &fm) != 0)
      return fail_key(ld, val->line, "expected a log format (text or json)",
                      got);
    val->i = fm;
    return 0;
  default:
    GT_PANIC("config: kind %d is not a scalar kind", (int)kind);
  }
}

static const char *const kind_text[] = {
    [K_STR] = "expected a string",         [K_INT] = "expected an integer",
    [K_POS] = "expected an integer",       [K_PORT] = "expected an integer",
    [K_PORT0] = "expected an integer",     [K_BOOL] = "expected a boolean",
    [K_DUR] = "expected a duration",       [K_LEVEL] = "expected a log level",
    [K_FORMAT] = "expected a log format"};

/* Walks the value v of key (for sections the setter gets the key's line:
 * a block mapping starts on the line after its key). */
static int walk_value(load_t *ld, const schema_key_t *k, const char *star,
                      yaml_node_t *key, yaml_node_t *v) {
  char got[256];
  val_t val = {.line = line_of(v)};
  switch (k->kind) {
  case K_ANY:
    return 0;
  case K_MAP:
    return walk_map_kind(ld, k, star, v);
  case K_SECTION:
    if (v->type != YAML_MAPPING_NODE && !is_null(v))
      return fail_key(ld, val.line, "expected a mapping",
                      describe(v, got, sizeof(got)));
    val.line = line_of(key);
    if (k->set && k->set(ld, star, &val) != 0)
      return GT_ECONFIG;
    return v->type == YAML_MAPPING_NODE ? walk_mapping(ld, v) : 0;
  default:
    break;
  }
  if (v->type != YAML_SCALAR_NODE)
    return fail_key(ld, val.line, kind_text[k->kind],
                    describe(v, got, sizeof(got)));
  if (parse_scalar(ld, k->kind, v, &val) != 0)
    return GT_ECONFIG;
  return k->set ? k->set(ld, star, &val) : 0;
}

/* Fails when an earlier key of the same mapping has the same text. */
static int check_duplicate(load_t *ld, yaml_node_t *map, yaml_node_pair_t *p,
                           yaml_node_t *key) {
  for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
    yaml_node_t *qk = node_at(ld, q->key);
    if (qk->type == YAML_SCALAR_NODE && strcmp(scalar(qk), scalar(key)) == 0)
      return fail_key(ld, line_of(key), "duplicate key", NULL);
  }
  return 0;
}

static int walk_pair(load_t *ld, yaml_node_t *map, yaml_node_pair_t *p) {
  char path[512];
  yaml_node_t *key = node_at(ld, p->key), *v = node_at(ld, p->value);
  if (key->type != YAML_SCALAR_NODE)
    return fail(ld, line_of(key), "key under '%s' is not a string",
                ld->depth ? path_str(ld, path, sizeof(path)) : "(top)");
  if (ld->depth == MAX_DEPTH)
    return fail(ld, line_of(key), "unknown key '%s.%s'",
                path_str(ld, path, sizeof(path)), scalar(key));
  ld->segs[ld->depth++] = scalar(key);
  int rc = check_duplicate(ld, map, p, key);
  if (rc == 0) {
    const char *star;
    const schema_key_t *k = lookup(ld, &star);
    if (!k)
      rc = fail(ld, line_of(key), "unknown key '%s'",
                path_str(ld, path, sizeof(path)));
    else
      rc = walk_value(ld, k, star, key, v);
  }
  ld->depth--;
  return rc;
}

static int walk_mapping(load_t *ld, yaml_node_t *map) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    int rc = walk_pair(ld, map, p);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Resolution: cross-key checks, then the config
 * ---------------------------------------------------------------------- */

/* Where one datastore's database is. */
typedef struct resolved_store {
  const char *plugin;      /* normalized pluginName */
  const char *sqlite_path; /* NULL for postgres */
  char *conninfo;          /* malloc'd, postgres only */
  int max_conns;           /* -1: not given */
  int64_t lifetime_ms;     /* -1: not given */
} resolved_store_t;

typedef struct resolved {
  resolved_store_t def;    /* def.plugin NULL: persistence left as it was */
  const char *vis_plugin;  /* NULL: left as it was */
  const char *vis_name;    /* the visibility datastore, when another database */
  resolved_store_t vis;    /* ... and where it is */
} resolved_t;

static int fail_ds(load_t *ld, int line, const datastore_t *d,
                   const char *field, const char *reason) {
  return fail(ld, line, "key 'persistence.datastores.%s.sql.%s': %s", d->name,
              field, reason);
}

/* Finds the datastore a store key names. OUT: *plugin, normalized. */
static int store_of(load_t *ld, const char *key, sval_t ref,
                    datastore_t **d, const char **plugin) {
  *d = ds_find(ld, ref.s);
  if (!*d)
    return fail(ld, ref.line,
                "key 'persistence.%s': datastore '%s' is not defined under "
                "persistence.datastores", key, ref.s);
  if (!(*d)->plugin.s)
    return fail_ds(ld, (*d)->line, *d, "pluginName", "missing");
  *plugin = gt__config_plugin((*d)->plugin.s);
  if (!*plugin) {
    char why[256];
    snprintf(why, sizeof(why),
             "unsupported plugin '%.100s' (expected sqlite or postgres)",
             (*d)->plugin.s);
    return fail_ds(ld, (*d)->plugin.line, *d, "pluginName", why);
  }
  return 0;
}

static int resolve_postgres(load_t *ld, datastore_t *d, resolved_store_t *r) {
  if (!d->addr.s || !*d->addr.s)
    return fail_ds(ld, d->line, d, "connectAddr", "missing (host:port)");
  if (!d->dbname.s || !*d->dbname.s)
    return fail_ds(ld, d->line, d, "databaseName", "missing");
  gt__pg_params_t pg = {.connect_addr = d->addr.s, .dbname = d->dbname.s,
                        .user = d->user.s, .password = d->password.s,
                        .tls = d->tls, .host_verify = d->host_verify,
                        .ca_file = d->ca_file, .cert_file = d->cert_file,
                        .key_file = d->key_file};
  int bad;
  r->conninfo = gt__config_pg_conninfo(&pg, &bad);
  if (!r->conninfo && bad) {
    char why[256];
    snprintf(why, sizeof(why), "expected host:port, got '%.100s'", d->addr.s);
    return fail_ds(ld, d->addr.line, d, "connectAddr", why);
  }
  return r->conninfo ? 0 : GT_ENOMEM;
}

/* Resolves a datastore whose plugin store_of normalized into r->plugin. */
static int resolve_store(load_t *ld, datastore_t *d, resolved_store_t *r) {
  r->max_conns = d->max_conns;
  r->lifetime_ms = d->lifetime_ms;
  if (strcmp(r->plugin, "postgres") == 0)
    return resolve_postgres(ld, d, r);
  if (d->mem_mode) {
    r->sqlite_path = ":memory:";
  } else if (d->dbname.s && *d->dbname.s) {
    r->sqlite_path = d->dbname.s;
  } else {
    return fail_ds(ld, d->line, d, "databaseName",
                   "missing (the SQLite file path, or connectAttributes "
                   "mode: memory)");
  }
  return 0;
}

/* 1 when two datastores name the same database: the same plugin and, for PostgreSQL,
 * address and database; for SQLite, file (every in-memory one counts as the one the
 * server opens). */
static int same_database(const datastore_t *a, const datastore_t *b) {
  const char *pa = gt__config_plugin(a->plugin.s), *pb = gt__config_plugin(b->plugin.s);
  if (a == b)
    return 1;
  if (!pa || !pb || strcmp(pa, pb) != 0)
    return 0;
  if (strcmp(pa, "sqlite") == 0 && (a->mem_mode || b->mem_mode))
    return a->mem_mode && b->mem_mode;
  if (strcmp(pa, "postgres") == 0 &&
      strcmp(a->addr.s ? a->addr.s : "", b->addr.s ? b->addr.s : "") != 0)
    return 0;
  return strcmp(a->dbname.s ? a->dbname.s : "", b->dbname.s ? b->dbname.s : "") == 0;
}

static int resolve(load_t *ld, resolved_t *r) {
  datastore_t *d = NULL;
  *r = (resolved_t){.def = {.max_conns = -1, .lifetime_ms = -1},
                    .vis = {.max_conns = -1, .lifetime_ms = -1}};
  if (!ld->default_store.s) {
    if (ld->n_ds > 0)
      return fail(ld, ld->persistence_line,
                  "key 'persistence.defaultStore': missing (datastores are "
                  "defined)");
  } else {
    int rc = store_of(ld, "defaultStore", ld->default_store, &d, &r->def.plugin);
    if (rc == 0)
      rc = resolve_store(ld, d, &r->def);
    if (rc != 0)
      return rc;
    r->vis_plugin = r->def.plugin;
  }
  if (ld->vis_store.s) {
    datastore_t *dv;
    int rc = store_of(ld, "visibilityStore", ld->vis_store, &dv, &r->vis_plugin);
    if (rc == 0 && ld->default_store.s && !same_database(d, dv)) {
      r->vis_name = dv->name;
      r->vis.plugin = r->vis_plugin;
      rc = resolve_store(ld, dv, &r->vis);
    }
    return rc;
  }
  return 0;
}

/* Sets a store's config fields from its resolution (a NULL plugin clears them); takes
 * r->conninfo. */
static int apply_store(resolved_store_t *r, char **plugin, char **sqlite_path,
                       char **conninfo, int *max_conns, int64_t *lifetime_ms) {
  int rc = gt__config_set_str(plugin, r->plugin);
  if (rc == 0)
    rc = gt__config_set_str(sqlite_path, r->sqlite_path);
  gt__config_free_str(conninfo);
  *conninfo = r->conninfo;
  r->conninfo = NULL;
  if (r->max_conns > 0)
    *max_conns = r->max_conns;
  if (r->lifetime_ms >= 0)
    *lifetime_ms = r->lifetime_ms;
  return rc;
}

static int apply(const load_t *ld, resolved_t *r, gt_config_t *cfg) {
  int rc = 0;
  if (ld->has_level)
    cfg->log_level = ld->level;
  if (ld->has_format)
    cfg->log_format = ld->format;
  if (ld->grpc_port >= 0)
    cfg->grpc_port = ld->grpc_port;
  if (ld->http_port >= 0)
    cfg->http_port = ld->http_port;
  if (ld->membership_port >= 0)
    cfg->membership_port = ld->membership_port;
  /* bindOnIP wins over bindOnLocalHost, as in Temporal; bindOnLocalHost
   * false alone means every interface. */
  if (ld->bind_ip.s && *ld->bind_ip.s)
    rc = gt__config_set_str(&cfg->bind_ip, ld->bind_ip.s);
  else if (ld->bind_local >= 0)
    rc = gt__config_set_str(&cfg->bind_ip,
                            ld->bind_local ? "127.0.0.1" : "0.0.0.0");
  if (ld->shards > 0)
    cfg->num_history_shards = ld->shards;
  if (rc == 0 && r->def.plugin)
    rc = apply_store(&r->def, &cfg->store_plugin, &cfg->sqlite_path, &cfg->pg_conninfo,
                     &cfg->pg_max_conns, &cfg->pg_conn_lifetime_ms);
  if (rc == 0 && r->vis_plugin)
    rc = gt__config_set_str(&cfg->visibility_plugin, r->vis_plugin);
  if (rc == 0 && r->vis_plugin) { /* the visibility store: set or cleared */
    rc = gt__config_set_str(&cfg->vis_store_name, r->vis_name);
    if (rc == 0)
      rc = apply_store(&r->vis, &cfg->vis_store_plugin, &cfg->vis_sqlite_path,
                       &cfg->vis_pg_conninfo, &cfg->vis_pg_max_conns,
                       &cfg->vis_pg_conn_lifetime_ms);
  }
  if (ld->sched_threads >= 0)
    cfg->scheduler_threads = ld->sched_threads;
  if (rc == 0 && ld->def_ns.s)
    rc = gt__config_set_str(&cfg->default_namespace, ld->def_ns.s);
  if (ld->headless >= 0)
    cfg->headless = ld->headless;
  return rc;
}

/* ------------------------------------------------------------------------
 * Entry point
 * ---------------------------------------------------------------------- */

static int parse_error(load_t *ld, const yaml_parser_t *parser) {
  if (parser->error == YAML_MEMORY_ERROR)
    return GT_ENOMEM;
  return fail(ld, (int)parser->problem_mark.line + 1, "yaml: %s%s%s",
              parser->problem ? parser->problem : "parse error",
              parser->context ? ", " : "",
              parser->context ? parser->context : "");
}

/* Loads the file's one document into doc (deleted again on failure). */
static int parse_file(load_t *ld, FILE *f, yaml_document_t *doc) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser))
    return GT_ENOMEM;
  yaml_parser_set_input_file(&parser, f);
  int rc = 0;
  yaml_document_t next;
  if (!yaml_parser_load(&parser, doc)) {
    rc = parse_error(ld, &parser);
  } else if (!yaml_parser_load(&parser, &next)) {
    rc = parse_error(ld, &parser); /* a later document is broken */
    yaml_document_delete(doc);
  } else {
    /* One document per file: a second one would be silently ignored. */
    yaml_node_t *extra = yaml_document_get_root_node(&next);
    if (extra)
      rc = fail(ld, line_of(extra), "only one YAML document is supported");
    yaml_document_delete(&next);
    if (rc != 0)
      yaml_document_delete(doc);
  }
  yaml_parser_delete(&parser);
  return rc;
}

int gt_config_load(gt_config_t *cfg, const char *path, char *err,
                   size_t errlen) {
  load_t *ld = calloc(1, sizeof(*ld));
  if (!ld)
    return GT_ENOMEM;
  *ld = (load_t){.file = path, .err = err, .errlen = errlen,
                 .grpc_port = -1, .http_port = -1, .membership_port = -1,
                 .bind_local = -1, .sched_threads = -1, .headless = -1};
  FILE *f = fopen(path, "rb");
  if (!f) {
    gt__config_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    free(ld);
    return GT_EIO;
  }
  yaml_document_t doc;
  int rc = parse_file(ld, f, &doc);
  fclose(f);
  if (rc != 0) {
    free(ld);
    return rc;
  }
  ld->doc = &doc;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  resolved_t r = {0};
  if (root && root->type == YAML_MAPPING_NODE)
    rc = walk_mapping(ld, root);
  else if (root && !is_null(root))
    rc = fail(ld, line_of(root), "expected a mapping at the top level");
  if (rc == 0)
    rc = resolve(ld, &r);
  if (rc == 0)
    rc = apply(ld, &r, cfg);
  free(r.def.conninfo);
  free(r.vis.conninfo);
  yaml_document_delete(&doc);
  free(ld);
  return rc;
}
