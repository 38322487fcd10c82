/*
 * vis_attrs.c: search attributes as the JSON object List queries filter on
 * (visibility.search_json).
 *
 * DESIGN
 *   Search attributes arrive as temporal.api.common.v1.SearchAttributes: a map of name to
 *   Payload whose data is JSON ("json/plain") and whose metadata "type" names the
 *   IndexedValueType when the SDK sent typed attributes. The JSON object keeps each value
 *   as written, normalized so one SQL expression fits every row of a type: the older
 *   untyped form sends every value as a list, so a one-element list is unwrapped unless the
 *   type is KeywordList (a scalar KeywordList is wrapped); a Datetime string becomes Unix
 *   nanoseconds so times compare as numbers whatever their offset or precision.
 *   Every value is checked to be well-formed JSON first: one bad payload must not make
 *   every query fail at the database's JSON parser; such a value is skipped.
 *
 * THREADS
 *   Pure: any thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/visibility/vis_int.h"
#include "runtime/err.h"
#include "temporal/api/common/v1/message.pb-c.h"

#define MAX_JSON_DEPTH 32

typedef struct jbuf {
  char *p;
  size_t len, cap;
  int oom;
} jbuf_t;

static void jput(jbuf_t *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t ncap = b->cap ? b->cap * 2 : 256;
    while (ncap < b->len + n + 1)
      ncap *= 2;
    char *p = realloc(b->p, ncap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = ncap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void jputs(jbuf_t *b, const char *s) { jput(b, s, strlen(s)); }

/* Appends s[0..n) as a JSON string. */
static void jstring(jbuf_t *b, const char *s, size_t n) {
  jputs(b, "\"");
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    char esc[8];
    if (ch == '"' || ch == '\\') {
      esc[0] = '\\';
      esc[1] = (char)ch;
      jput(b, esc, 2);
    } else if (ch < 0x20) {
      snprintf(esc, sizeof(esc), "\\u%04x", ch);
      jputs(b, esc);
    } else {
      jput(b, (const char *)&ch, 1);
    }
  }
  jputs(b, "\"");
}

/* ------------------------------------------------------------ JSON check --- */

static const char *ws(const char *s, const char *e) {
  while (s < e && isspace((unsigned char)*s))
    s++;
  return s;
}

static const char *skip_value(const char *s, const char *e, int depth);

static const char *skip_string(const char *s, const char *e) {
  for (s++; s < e; s++) {
    if (*s == '"')
      return s + 1;
    if ((unsigned char)*s < 0x20)
      return NULL;
    if (*s == '\\') {
      if (++s >= e)
        return NULL;
      if (*s == 'u') {
        for (int i = 0; i < 4; i++)
          if (++s >= e || !isxdigit((unsigned char)*s))
            return NULL;
      } else if (!strchr("\"\\/bfnrt", *s)) {
        return NULL;
      }
    }
  }
  return NULL;
}

static const char *skip_number(const char *s, const char *e) {
  const char *st = s;
  if (s < e && *s == '-')
    s++;
  if (s >= e || !isdigit((unsigned char)*s))
    return NULL;
  while (s < e && isdigit((unsigned char)*s))
    s++;
  if (s < e && *s == '.') {
    if (++s >= e || !isdigit((unsigned char)*s))
      return NULL;
    while (s < e && isdigit((unsigned char)*s))
      s++;
  }
  if (s < e && (*s == 'e' || *s == 'E')) {
    s++;
    if (s < e && (*s == '+' || *s == '-'))
      s++;
    if (s >= e || !isdigit((unsigned char)*s))
      return NULL;
    while (s < e && isdigit((unsigned char)*s))
      s++;
  }
  return s > st ? s : NULL;
}

/* Skips a container: '[' values ']' or '{' "key": value '}'. */
static const char *skip_container(const char *s, const char *e, int depth) {
  char close = *s == '[' ? ']' : '}';
  s = ws(s + 1, e);
  if (s < e && *s == close)
    return s + 1;
  for (;;) {
    if (close == '}') {
      if (s >= e || *s != '"' || !(s = skip_string(s, e)))
        return NULL;
      s = ws(s, e);
      if (s >= e || *s != ':')
        return NULL;
      s++;
    }
    if (!(s = skip_value(s, e, depth + 1)))
      return NULL;
    s = ws(s, e);
    if (s < e && *s == ',') {
      s = ws(s + 1, e);
      continue;
    }
    return s < e && *s == close ? s + 1 : NULL;
  }
}

static const char *skip_value(const char *s, const char *e, int depth) {
  s = ws(s, e);
  if (s >= e || depth > MAX_JSON_DEPTH)
    return NULL;
  if (*s == '"')
    return skip_string(s, e);
  if (*s == '[' || *s == '{')
    return skip_container(s, e, depth);
  static const char *const lits[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t n = strlen(lits[i]);
    if ((size_t)(e - s) >= n && memcmp(s, lits[i], n) == 0)
      return s + n;
  }
  return skip_number(s, e);
}

/* ------------------------------------------------------------ encoding --- */

static int meta_is(const Temporal__Api__Common__V1__Payload *pl, const char *key,
                   const char *val) {
  for (size_t i = 0; i < pl->n_metadata; i++) {
    const Temporal__Api__Common__V1__Payload__MetadataEntry *m = pl->metadata[i];
    if (m->key && strcmp(m->key, key) == 0)
      return !val || (m->value.len == strlen(val) &&
                      memcmp(m->value.data, val, m->value.len) == 0);
  }
  return 0;
}

static int meta_type(const Temporal__Api__Common__V1__Payload *pl) {
  for (size_t i = 0; i < pl->n_metadata; i++) {
    const Temporal__Api__Common__V1__Payload__MetadataEntry *m = pl->metadata[i];
    if (m->key && strcmp(m->key, "type") == 0)
      return gt_vis_type_from_name((const char *)m->value.data, m->value.len);
  }
  return GT_VIS_T_UNSPECIFIED;
}

/* Appends a scalar value v[0..n) (valid JSON), a Datetime string as nanoseconds. */
static void scalar(jbuf_t *b, int type, const char *v, size_t n) {
  if (type == GT_VIS_T_DATETIME && n >= 2 && v[0] == '"' && n < 64) {
    char t[64];
    memcpy(t, v + 1, n - 2);
    t[n - 2] = '\0';
    int64_t ns;
    if (gt_vis_parse_time(t, &ns) == 0) {
      snprintf(t, sizeof(t), "%lld", (long long)ns);
      jputs(b, t);
      return;
    }
  }
  jput(b, v, n);
}

/* Appends one payload's value. Returns 0, or -1 when it is not indexable. */
static int payload_value(jbuf_t *b, const Temporal__Api__Common__V1__Payload *pl) {
  if (!meta_is(pl, "encoding", "json/plain") || !pl->data.len)
    return -1;
  const char *s = (const char *)pl->data.data, *e = s + pl->data.len;
  s = ws(s, e);
  const char *end = skip_value(s, e, 0);
  if (!end || ws(end, e) != e)
    return -1;
  int type = meta_type(pl);
  if (*s == '[' && type != GT_VIS_T_KEYWORD_LIST) {
    /* the untyped form: a list even for one value */
    const char *first = ws(s + 1, end);
    const char *fend = first < end && *first != ']' ? skip_value(first, end, 1) : NULL;
    if (fend && *ws(fend, end) == ']') {
      scalar(b, type, first, (size_t)(fend - first));
      return 0;
    }
  } else if (*s != '[' && type == GT_VIS_T_KEYWORD_LIST) {
    jputs(b, "[");
    jput(b, s, (size_t)(end - s));
    jputs(b, "]");
    return 0;
  }
  scalar(b, type, s, (size_t)(end - s));
  return 0;
}

int gt_vis_attrs_json(const uint8_t *p, size_t len, char **json) {
  *json = NULL;
  if (!p || !len)
    return 0;
  Temporal__Api__Common__V1__SearchAttributes *sa =
      temporal__api__common__v1__search_attributes__unpack(NULL, len, p);
  if (!sa)
    return GT_EINVAL;
  jbuf_t b = {0};
  int n = 0;
  jputs(&b, "{");
  for (size_t i = 0; i < sa->n_indexed_fields; i++) {
    const Temporal__Api__Common__V1__SearchAttributes__IndexedFieldsEntry *f =
        sa->indexed_fields[i];
    if (!f->key || !f->value)
      continue;
    size_t mark = b.len;
    if (n)
      jputs(&b, ",");
    jstring(&b, f->key, strlen(f->key));
    jputs(&b, ":");
    if (payload_value(&b, f->value) == 0) {
      n++;
    } else if (!b.oom) {
      b.len = mark; /* not indexable: drop the key */
      b.p[mark] = '\0';
    }
  }
  jputs(&b, "}");
  temporal__api__common__v1__search_attributes__free_unpacked(sa, NULL);
  if (b.oom) {
    free(b.p);
    return GT_ENOMEM;
  }
  if (!n) {
    free(b.p);
    return 0;
  }
  *json = b.p;
  return 0;
}
