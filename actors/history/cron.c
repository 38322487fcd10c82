/*
 * cron.c: cron schedules (see cron.h).
 */
#include "actors/history/cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "runtime/err.h"

#define MS_PER_MIN 60000LL
#define MS_PER_HOUR (60 * MS_PER_MIN)
#define MS_PER_DAY (24 * MS_PER_HOUR)
#define MAX_YEARS 5

typedef struct field {
  const char *name;
  int lo, hi;
  const char *const *names; /* names[i] is value lo + i, or NULL */
} field_t;

static const char *const MONTHS[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const DAYS[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const field_t FIELDS[5] = {
    {"minute", 0, 59, NULL},   {"hour", 0, 23, NULL},    {"day of month", 1, 31, NULL},
    {"month", 1, 12, MONTHS},  {"day of week", 0, 6, DAYS},
};

static int fail(char *err, size_t errlen, const char *fmt, const char *what) {
  snprintf(err, errlen, fmt, what);
  return GT_EINVAL;
}

/* A value of field f at s[0..n): a number or a name. Returns -1 if it is neither. */
static int value_of(const field_t *f, const char *s, size_t n) {
  if (n == 0)
    return -1;
  if (isdigit((unsigned char)s[0])) {
    int v = 0;
    for (size_t i = 0; i < n; i++) {
      if (!isdigit((unsigned char)s[i]) || v > 1000)
        return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  }
  for (int i = 0; f->names && f->names[i]; i++)
    if (n == 3 && strncasecmp(s, f->names[i], 3) == 0)
      return f->lo + i;
  return -1;
}

/* One comma-separated part of a field: *, ?, a, a-b, each with an optional /step. Adds its
 * values to *bits. */
static int parse_part(const field_t *f, const char *s, size_t n, uint64_t *bits, int *star,
                      char *err, size_t errlen) {
  const char *slash = memchr(s, '/', n);
  size_t rn = slash ? (size_t)(slash - s) : n;
  int lo, hi, step = 1;
  if (slash) {
    step = value_of(&(field_t){0}, slash + 1, n - rn - 1);
    if (step <= 0)
      return fail(err, errlen, "bad step in the %s field", f->name);
  }
  if ((rn == 1 && s[0] == '*') || (rn == 1 && s[0] == '?')) {
    lo = f->lo;
    hi = f->hi;
    if (!slash)
      *star = 1;
  } else {
    const char *dash = memchr(s, '-', rn);
    lo = value_of(f, s, dash ? (size_t)(dash - s) : rn);
    hi = dash ? value_of(f, dash + 1, rn - (size_t)(dash - s) - 1) : lo;
    if (slash && !dash) /* a/n: from a to the end */
      hi = f->hi;
  }
  if (lo < f->lo || hi > f->hi || lo > hi)
    return fail(err, errlen, "value out of range in the %s field", f->name);
  for (int v = lo; v <= hi; v += step)
    *bits |= 1ULL << v;
  return 0;
}

static int parse_field(const field_t *f, const char *s, size_t n, uint64_t *bits, int *star,
                       char *err, size_t errlen) {
  *bits = 0;
  *star = 0;
  size_t i = 0;
  while (i <= n) {
    size_t j = i;
    while (j < n && s[j] != ',')
      j++;
    int rc = parse_part(f, s + i, j - i, bits, star, err, errlen);
    if (rc)
      return rc;
    i = j + 1;
  }
  return 0;
}

/* A Go duration (1h30m, 90s, 500ms, 2h): ms. Returns -1 if it is not one. */
static int64_t go_duration_ms(const char *s) {
  double total = 0;
  int any = 0;
  while (*s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
      return -1;
    s = end;
    double unit;
    if (strncmp(s, "ms", 2) == 0) {
      unit = 1;
      s += 2;
    } else if (strncmp(s, "us", 2) == 0) {
      unit = 0.001;
      s += 2;
    } else if (strncmp(s, "ns", 2) == 0) {
      unit = 0.000001;
      s += 2;
    } else if (*s == 'h') {
      unit = 3600000;
      s++;
    } else if (*s == 'm') {
      unit = 60000;
      s++;
    } else if (*s == 's') {
      unit = 1000;
      s++;
    } else {
      return -1;
    }
    total += v * unit;
    any = 1;
  }
  return any && total < 9e15 ? (int64_t)total : -1;
}

int gt_cron_parse(const char *spec, gt_cron_t *out, char *err, size_t errlen) {
  static const struct { const char *name, *spec; } DESCRIPTORS[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  memset(out, 0, sizeof(*out));
  while (spec && isspace((unsigned char)*spec))
    spec++;
  if (!spec || !*spec)
    return fail(err, errlen, "%s", "empty schedule");
  if (strncmp(spec, "@every ", 7) == 0) {
    int64_t ms = go_duration_ms(spec + 7);
    if (ms < 1000)
      return fail(err, errlen, "%s", "@every needs a duration of at least 1s");
    out->every_ms = ms / 1000 * 1000; /* whole seconds, as robfig/cron */
    return 0;
  }
  if (spec[0] == '@') {
    for (size_t i = 0; i < sizeof(DESCRIPTORS) / sizeof(DESCRIPTORS[0]); i++)
      if (strcasecmp(spec, DESCRIPTORS[i].name) == 0)
        return gt_cron_parse(DESCRIPTORS[i].spec, out, err, errlen);
    return fail(err, errlen, "unknown descriptor %s", spec);
  }
  const char *p = spec;
  uint64_t bits[5];
  int stars[5];
  for (int k = 0; k < 5; k++) {
    while (isspace((unsigned char)*p))
      p++;
    const char *start = p;
    while (*p && !isspace((unsigned char)*p))
      p++;
    if (p == start)
      return fail(err, errlen, "%s", "expected 5 fields (minute hour day-of-month month "
                                     "day-of-week)");
    int rc = parse_field(&FIELDS[k], start, (size_t)(p - start), &bits[k], &stars[k], err,
                         errlen);
    if (rc)
      return rc;
  }
  while (isspace((unsigned char)*p))
    p++;
  if (*p)
    return fail(err, errlen, "%s", "expected 5 fields (minute hour day-of-month month "
                                   "day-of-week)");
  out->minutes = bits[0];
  out->hours = (uint32_t)bits[1];
  out->doms = (uint32_t)bits[2];
  out->months = (uint16_t)bits[3];
  out->dows = (uint8_t)bits[4];
  out->dom_star = stars[2];
  out->dow_star = stars[4];
  return 0;
}

static int day_matches(const gt_cron_t *c, const struct tm *tm) {
  int dom = (c->doms >> tm->tm_mday) & 1, dow = (c->dows >> tm->tm_wday) & 1;
  if (c->dom_star || c->dow_star)
    return dom && dow;
  return dom || dow;
}

int64_t gt_cron_next_ms(const gt_cron_t *c, int64_t after_ms) {
  if (c->every_ms > 0) /* robfig: from the whole second of `after` */
    return after_ms - (after_ms % 1000 + 1000) % 1000 + c->every_ms;
  /* the next whole minute */
  int64_t t = (after_ms / MS_PER_MIN + 1) * MS_PER_MIN;
  int64_t limit = after_ms + MAX_YEARS * 366 * MS_PER_DAY;
  while (t <= limit) {
    time_t secs = (time_t)(t / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm))
      return -1;
    if (!((c->months >> (tm.tm_mon + 1)) & 1) || !day_matches(c, &tm)) {
      /* the next day, at midnight */
      t = (t / MS_PER_DAY + 1) * MS_PER_DAY;
      continue;
    }
    if (!((c->hours >> tm.tm_hour) & 1)) {
      t = (t / MS_PER_HOUR + 1) * MS_PER_HOUR;
      continue;
    }
    if (!((c->minutes >> tm.tm_min) & 1)) {
      t += MS_PER_MIN;
      continue;
    }
    return t;
  }
  return -1;
}

int64_t gt_cron_backoff_ms(const gt_cron_t *c, int64_t start_ms, int64_t close_ms) {
  int64_t next = gt_cron_next_ms(c, start_ms);
  while (next >= 0 && next < close_ms)
    next = gt_cron_next_ms(c, next);
  if (next < 0)
    return -1;
  int64_t b = next - close_ms;
  return (b + 999) / 1000 * 1000; /* whole seconds up, as Temporal */
}
