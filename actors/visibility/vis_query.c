/*
 * vis_query.c: the List filter language: tokenizer and recursive-descent parser into the
 * AST of vis_int.h.
 *
 * DESIGN
 *   Grammar (keywords case-insensitive):
 *     query     := [expr] [GROUP BY ident] [ORDER BY ident [ASC|DESC] {, ...}]
 *     expr      := and_expr {OR and_expr}
 *     and_expr  := not_expr {AND not_expr}
 *     not_expr  := NOT not_expr | '(' expr ')' | predicate
 *     predicate := ident ( cmp value | [NOT] IN '(' value {, value} ')'
 *                        | [NOT] BETWEEN value AND value | [NOT] STARTS_WITH value
 *                        | IS [NOT] NULL )
 *     value     := 'string' | "string" | number | TRUE | FALSE
 *   Identifiers may be `back-quoted`. Strings take \-escapes and doubled quotes. An
 *   identifier is resolved against the catalogue while parsing, so an unknown search
 *   attribute is reported with its name. Positions in messages are 1-based characters.
 *
 * INVARIANTS
 *   - The parser never reads past the terminating NUL; nesting is bounded (MAX_DEPTH) so
 *     a hostile query cannot exhaust the stack.
 *   - On error every node built so far is freed.
 *
 * THREADS
 *   Pure: any thread.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "actors/visibility/vis_int.h"
#include "runtime/err.h"

#define MAX_DEPTH 64
#define MAX_IN 512

typedef enum {
  T_EOF, T_IDENT, T_STRING, T_NUMBER, T_LPAREN, T_RPAREN, T_COMMA,
  T_EQ, T_NE, T_GT, T_GE, T_LT, T_LE
} tok_kind_t;

typedef struct tok {
  tok_kind_t kind;
  int pos;       /* 1-based */
  const char *s; /* start in the query */
  size_t len;    /* bytes in the query */
  int quoted;    /* IDENT written with backquotes: never a keyword */
} tok_t;

typedef struct parser {
  const char *q;
  size_t at;  /* next byte to scan */
  tok_t t;    /* the current token */
  const vq_catalog_t *cat;
  char *err;
  size_t errlen;
  int failed; /* GT_EINVAL or GT_ENOMEM once set */
  int depth;
} parser_t;

static void fail(parser_t *p, const char *fmt, ...) {
  if (p->failed)
    return;
  p->failed = GT_EINVAL;
  int n = snprintf(p->err, p->errlen, "invalid query: ");
  if (n < 0 || (size_t)n >= p->errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

static void fail_oom(parser_t *p) {
  if (!p->failed) {
    p->failed = GT_ENOMEM;
    snprintf(p->err, p->errlen, "out of memory");
  }
}

/* "syntax error at position N near 'tok'" for the current token. */
static void fail_syntax(parser_t *p, const char *what) {
  if (p->t.kind == T_EOF)
    fail(p, "syntax error at position %d: %s, found the end of the query", p->t.pos, what);
  else
    fail(p, "syntax error at position %d near '%.*s': %s", p->t.pos,
         (int)(p->t.len > 40 ? 40 : p->t.len), p->t.s, what);
}

/* ------------------------------------------------------------------ tokens --- */

static int is_ident_start(int c) { return isalpha(c) || c == '_'; }
static int is_ident_char(int c) { return isalnum(c) || c == '_' || c == '.'; }

static void scan_number(parser_t *p, tok_t *t) {
  const char *q = p->q;
  size_t i = p->at;
  if (q[i] == '-' || q[i] == '+')
    i++;
  while (isdigit((unsigned char)q[i]) || q[i] == '.' || q[i] == 'e' || q[i] == 'E' ||
         ((q[i] == '-' || q[i] == '+') && (q[i - 1] == 'e' || q[i - 1] == 'E')))
    i++;
  t->kind = T_NUMBER;
  t->len = i - p->at;
  p->at = i;
}

/* A quoted string or `identifier`: finds the closing quote (skipping \x and doubled
 * quotes). The token spans the quotes; unquote() extracts the text. */
static void scan_quoted(parser_t *p, tok_t *t) {
  const char *q = p->q;
  char quote = q[p->at];
  size_t i = p->at + 1;
  for (;;) {
    if (!q[i]) {
      fail(p, "syntax error at position %d: unterminated %s", t->pos,
           quote == '`' ? "identifier" : "string");
      t->kind = T_EOF;
      p->at = i;
      return;
    }
    if (q[i] == '\\' && quote != '`' && q[i + 1]) {
      i += 2;
      continue;
    }
    if (q[i] == quote && q[i + 1] == quote) {
      i += 2;
      continue;
    }
    if (q[i] == quote)
      break;
    i++;
  }
  t->kind = quote == '`' ? T_IDENT : T_STRING;
  t->quoted = quote == '`';
  t->len = i + 1 - p->at;
  p->at = i + 1;
}

static void next(parser_t *p) {
  const char *q = p->q;
  while (q[p->at] && isspace((unsigned char)q[p->at]))
    p->at++;
  tok_t t = {.kind = T_EOF, .pos = (int)p->at + 1, .s = q + p->at, .len = 0};
  char c = q[p->at], d = c ? q[p->at + 1] : 0;
  if (!c) {
    p->t = t;
    return;
  }
  static const struct { const char *s; tok_kind_t k; } ops[] = {
      {"!=", T_NE}, {"<>", T_NE}, {">=", T_GE}, {"<=", T_LE}, {"=", T_EQ},
      {">", T_GT},  {"<", T_LT},  {"(", T_LPAREN}, {")", T_RPAREN}, {",", T_COMMA}};
  for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
    size_t n = strlen(ops[i].s);
    if (c == ops[i].s[0] && (n == 1 || d == ops[i].s[1])) {
      t.kind = ops[i].k;
      t.len = n;
      p->at += n;
      p->t = t;
      return;
    }
  }
  if (c == '\'' || c == '"' || c == '`') {
    scan_quoted(p, &t);
  } else if (isdigit((unsigned char)c) || ((c == '-' || c == '+' || c == '.') &&
                                           (isdigit((unsigned char)d) || d == '.'))) {
    scan_number(p, &t);
  } else if (is_ident_start((unsigned char)c)) {
    size_t i = p->at;
    while (is_ident_char((unsigned char)q[i]))
      i++;
    t.kind = T_IDENT;
    t.len = i - p->at;
    p->at = i;
  } else {
    p->t = t;
    p->t.len = 1;
    fail(p, "syntax error at position %d near '%c': unexpected character", t.pos, c);
    p->t.kind = T_EOF;
    return;
  }
  p->t = t;
}

/* The text of a quoted token without its quotes, escapes resolved. NULL on OOM. */
static char *unquote(const tok_t *t) {
  char *out = malloc(t->len);
  if (!out)
    return NULL;
  char quote = t->s[0];
  size_t o = 0;
  for (size_t i = 1; i + 1 < t->len; i++) {
    char c = t->s[i];
    if (c == '\\' && quote != '`' && i + 2 < t->len) {
      char e = t->s[++i];
      c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '0' ? '\0' : e;
    } else if (c == quote) {
      i++; /* a doubled quote */
    }
    out[o++] = c;
  }
  out[o] = '\0';
  return out;
}

static int is_kw(const tok_t *t, const char *kw) {
  return t->kind == T_IDENT && !t->quoted && t->len == strlen(kw) &&
         strncasecmp(t->s, kw, t->len) == 0;
}

static int accept_kw(parser_t *p, const char *kw) {
  if (!is_kw(&p->t, kw))
    return 0;
  next(p);
  return 1;
}

static int expect(parser_t *p, tok_kind_t k, const char *what) {
  if (p->t.kind != k) {
    fail_syntax(p, what);
    return 0;
  }
  next(p);
  return 1;
}

static int expect_kw(parser_t *p, const char *kw) {
  if (accept_kw(p, kw))
    return 1;
  char what[40];
  snprintf(what, sizeof(what), "expected %s", kw);
  fail_syntax(p, what);
  return 0;
}

/* ------------------------------------------------------------------ names --- */

static const char *const RESERVED[] = {"AND", "OR", "NOT", "IN", "BETWEEN", "IS", "NULL",
                                       "STARTS_WITH", "ORDER", "BY", "GROUP", "ASC", "DESC",
                                       "TRUE", "FALSE", "LIKE", "LIMIT", "SELECT", "WHERE"};

/* Resolves the current IDENT token to a catalogue index (and consumes it), or fails. */
static int attribute(parser_t *p) {
  if (p->t.kind != T_IDENT) {
    fail_syntax(p, "expected a search attribute name");
    return -1;
  }
  for (size_t i = 0; !p->t.quoted && i < sizeof(RESERVED) / sizeof(RESERVED[0]); i++) {
    if (is_kw(&p->t, RESERVED[i])) {
      fail_syntax(p, "expected a search attribute name");
      return -1;
    }
  }
  char name[256];
  const char *s = p->t.s;
  size_t n = p->t.len;
  if (p->t.quoted) {
    s++;
    n -= 2;
  }
  if (n >= sizeof(name)) {
    fail(p, "search attribute name at position %d is too long", p->t.pos);
    return -1;
  }
  memcpy(name, s, n);
  name[n] = '\0';
  for (int i = 0; i < gt_vis_nbuiltins; i++) {
    if (strcmp(gt_vis_builtins[i].name, name) == 0) {
      next(p);
      return i;
    }
  }
  for (int i = 0; i < p->cat->ncustom; i++) {
    if (strcmp(p->cat->custom[i].name, name) == 0) {
      next(p);
      return gt_vis_nbuiltins + i;
    }
  }
  fail(p, "unknown search attribute: %s", name);
  return -1;
}

/* ------------------------------------------------------------------ AST --- */

static void node_free(vq_node_t *n) {
  if (!n)
    return;
  node_free(n->a);
  node_free(n->b);
  for (int i = 0; i < n->nvals; i++)
    free(n->vals[i].text);
  free(n->vals);
  free(n);
}

static vq_node_t *node_new(parser_t *p, vq_node_kind_t kind, vq_node_t *a, vq_node_t *b) {
  vq_node_t *n = calloc(1, sizeof(*n));
  if (!n) {
    fail_oom(p);
    node_free(a);
    node_free(b);
    return NULL;
  }
  n->kind = kind;
  n->a = a;
  n->b = b;
  return n;
}

/* Appends one literal to a predicate. Returns 0 or -1 (failed). */
static int value(parser_t *p, vq_node_t *n) {
  vq_value_t v = {.pos = p->t.pos};
  if (p->t.kind == T_STRING) {
    v.kind = VQ_V_STRING;
    v.text = unquote(&p->t);
  } else if (p->t.kind == T_NUMBER) {
    v.kind = VQ_V_NUMBER;
    v.text = strndup(p->t.s, p->t.len);
  } else if (is_kw(&p->t, "TRUE") || is_kw(&p->t, "FALSE")) {
    v.kind = VQ_V_BOOL;
    v.text = strdup(is_kw(&p->t, "TRUE") ? "true" : "false");
  } else {
    fail_syntax(p, "expected a value");
    return -1;
  }
  if (!v.text) {
    fail_oom(p);
    return -1;
  }
  vq_value_t *nv = realloc(n->vals, (size_t)(n->nvals + 1) * sizeof(*nv));
  if (!nv) {
    free(v.text);
    fail_oom(p);
    return -1;
  }
  n->vals = nv;
  n->vals[n->nvals++] = v;
  next(p);
  return 0;
}

static vq_node_t *predicate(parser_t *p) {
  int attr = attribute(p);
  if (attr < 0)
    return NULL;
  vq_node_t *n = node_new(p, VQ_PRED, NULL, NULL);
  if (!n)
    return NULL;
  n->attr = attr;
  static const struct { tok_kind_t k; vq_op_t op; } cmps[] = {
      {T_EQ, VQ_EQ}, {T_NE, VQ_NE}, {T_GT, VQ_GT}, {T_GE, VQ_GE}, {T_LT, VQ_LT},
      {T_LE, VQ_LE}};
  for (size_t i = 0; i < sizeof(cmps) / sizeof(cmps[0]); i++) {
    if (p->t.kind == cmps[i].k) {
      n->op = cmps[i].op;
      next(p);
      if (value(p, n) == 0)
        return n;
      node_free(n);
      return NULL;
    }
  }
  if (accept_kw(p, "IS")) {
    n->op = accept_kw(p, "NOT") ? VQ_IS_NOT_NULL : VQ_IS_NULL;
    if (expect_kw(p, "NULL"))
      return n;
    node_free(n);
    return NULL;
  }
  int neg = accept_kw(p, "NOT");
  int ok = 0;
  if (accept_kw(p, "IN")) {
    n->op = neg ? VQ_NOT_IN : VQ_IN;
    ok = expect(p, T_LPAREN, "expected '(' after IN") && value(p, n) == 0;
    while (ok && p->t.kind == T_COMMA) {
      next(p);
      ok = n->nvals < MAX_IN && value(p, n) == 0;
      if (n->nvals >= MAX_IN && !p->failed)
        fail(p, "too many values in IN (at most %d)", MAX_IN);
    }
    ok = ok && expect(p, T_RPAREN, "expected ',' or ')'");
  } else if (accept_kw(p, "BETWEEN")) {
    n->op = neg ? VQ_NOT_BETWEEN : VQ_BETWEEN;
    ok = value(p, n) == 0 && expect_kw(p, "AND") && value(p, n) == 0;
  } else if (accept_kw(p, "STARTS_WITH")) {
    n->op = neg ? VQ_NOT_STARTS_WITH : VQ_STARTS_WITH;
    ok = value(p, n) == 0;
  } else {
    fail_syntax(p, neg ? "expected IN, BETWEEN or STARTS_WITH after NOT"
                       : "expected an operator");
  }
  if (ok)
    return n;
  node_free(n);
  return NULL;
}

static vq_node_t *expr(parser_t *p);

static vq_node_t *not_expr(parser_t *p) {
  if (++p->depth > MAX_DEPTH) {
    fail(p, "the query nests deeper than %d levels", MAX_DEPTH);
    return NULL;
  }
  vq_node_t *n = NULL;
  if (accept_kw(p, "NOT")) {
    vq_node_t *a = not_expr(p);
    n = a ? node_new(p, VQ_NOT, a, NULL) : NULL;
  } else if (p->t.kind == T_LPAREN) {
    next(p);
    n = expr(p);
    if (n && !expect(p, T_RPAREN, "expected ')'")) {
      node_free(n);
      n = NULL;
    }
  } else {
    n = predicate(p);
  }
  p->depth--;
  return n;
}

static vq_node_t *and_expr(parser_t *p) {
  vq_node_t *n = not_expr(p);
  while (n && accept_kw(p, "AND")) {
    vq_node_t *b = not_expr(p);
    if (!b) {
      node_free(n);
      return NULL;
    }
    n = node_new(p, VQ_AND, n, b);
  }
  return n;
}

static vq_node_t *expr(parser_t *p) {
  vq_node_t *n = and_expr(p);
  while (n && accept_kw(p, "OR")) {
    vq_node_t *b = and_expr(p);
    if (!b) {
      node_free(n);
      return NULL;
    }
    n = node_new(p, VQ_OR, n, b);
  }
  return n;
}

static int group_by(parser_t *p, vq_query_t *q) {
  if (!expect_kw(p, "BY"))
    return -1;
  int pos = p->t.pos;
  int attr = attribute(p);
  if (attr < 0)
    return -1;
  if (attr >= gt_vis_nbuiltins || gt_vis_builtins[attr].query_type != GT_VIS_T_STATUS) {
    fail(p, "'group by' is only supported for ExecutionStatus (position %d)", pos);
    return -1;
  }
  if (p->t.kind == T_COMMA) {
    fail(p, "'group by' takes a single search attribute (position %d)", p->t.pos);
    return -1;
  }
  q->group_by_status = 1;
  return 0;
}

static int order_by(parser_t *p, vq_query_t *q) {
  if (!expect_kw(p, "BY"))
    return -1;
  do {
    if (q->norder == VQ_MAX_ORDER) {
      fail(p, "'order by' takes at most %d search attributes", VQ_MAX_ORDER);
      return -1;
    }
    int attr = attribute(p);
    if (attr < 0)
      return -1;
    int desc = 0;
    if (accept_kw(p, "DESC"))
      desc = 1;
    else
      accept_kw(p, "ASC");
    q->order[q->norder++] = (vq_order_t){attr, desc};
  } while (p->t.kind == T_COMMA && (next(p), 1));
  return 0;
}

int vq_parse(const char *query, const vq_catalog_t *cat, vq_query_t *q, char *err,
             size_t errlen) {
  memset(q, 0, sizeof(*q));
  parser_t p = {.q = query ? query : "", .cat = cat, .err = err, .errlen = errlen};
  next(&p);
  if (!p.failed && p.t.kind != T_EOF && !is_kw(&p.t, "ORDER") && !is_kw(&p.t, "GROUP"))
    q->where = expr(&p);
  if (!p.failed && accept_kw(&p, "GROUP"))
    group_by(&p, q);
  if (!p.failed && accept_kw(&p, "ORDER"))
    order_by(&p, q);
  if (!p.failed && p.t.kind != T_EOF)
    fail_syntax(&p, q->where || q->norder ? "expected AND, OR, GROUP BY, ORDER BY or the end"
                                          : "expected a search attribute name");
  if (p.failed) {
    vq_query_fini(q);
    return p.failed;
  }
  return 0;
}

void vq_query_fini(vq_query_t *q) {
  node_free(q->where);
  q->where = NULL;
}
