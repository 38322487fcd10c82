/*
 * metrics.c: Prometheus text rendering and the latency histogram (see metrics.h).
 *
 * DESIGN
 *   The buffer doubles its capacity as it grows (a scrape is a few tens of KiB). Values are
 *   unsigned integers except a histogram's _sum and the bucket bounds, printed with %.9g
 *   so that 0.001 stays "0.001" and 1000 stays "1000".
 *
 * INVARIANTS: see metrics.h.
 *
 * THREADS: the caller's; no shared state but the constant bounds.
 */
#include "runtime/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double gt_metrics_bounds_s[GT_METRICS_NBOUNDS] = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,
    2,     5,     10,    20,   50,   100,  200, 500, 1000};

/* The same bounds in nanoseconds, for observe (integer compares only). */
static const uint64_t bounds_ns[GT_METRICS_NBOUNDS] = {
    1000000ull,      2000000ull,      5000000ull,       10000000ull,
    20000000ull,     50000000ull,     100000000ull,     200000000ull,
    500000000ull,    1000000000ull,   2000000000ull,    5000000000ull,
    10000000000ull,  20000000000ull,  50000000000ull,   100000000000ull,
    200000000000ull, 500000000000ull, 1000000000000ull};

void gt_metrics_buf_init(gt_metrics_buf_t *b) { memset(b, 0, sizeof *b); }

void gt_metrics_buf_fini(gt_metrics_buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static int reserve(gt_metrics_buf_t *b, size_t more) {
  if (b->oom)
    return -1;
  if (b->len + more + 1 <= b->cap)
    return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1)
    cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void gt_metrics_printf(gt_metrics_buf_t *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0 || reserve(b, (size_t)n) != 0)
    return;
  if ((size_t)n < sizeof small) {
    memcpy(b->p + b->len, small, (size_t)n + 1);
  } else {
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

void gt_metrics_family(gt_metrics_buf_t *b, const char *name, const char *type,
                       const char *help) {
  gt_metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void gt_metrics_sample(gt_metrics_buf_t *b, const char *name, const char *labels,
                       uint64_t value) {
  if (labels != NULL && *labels)
    gt_metrics_printf(b, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
  else
    gt_metrics_printf(b, "%s %llu\n", name, (unsigned long long)value);
}

void gt_metrics_escape(gt_metrics_buf_t *b, const char *value) {
  for (const char *s = value; *s; s++) {
    if (*s == '\\')
      gt_metrics_printf(b, "\\\\");
    else if (*s == '"')
      gt_metrics_printf(b, "\\\"");
    else if (*s == '\n')
      gt_metrics_printf(b, "\\n");
    else
      gt_metrics_printf(b, "%c", *s);
  }
}

unsigned gt_metrics_bucket(uint64_t ns) {
  unsigned i = 0;
  while (i < GT_METRICS_NBOUNDS && ns > bounds_ns[i])
    i++;
  return i;
}

void gt_metrics_hist_observe(gt_metrics_hist_t *h, uint64_t ns) {
  h->buckets[gt_metrics_bucket(ns)]++;
  h->count++;
  h->sum_ns += ns;
}

void gt_metrics_ahist_observe(gt_metrics_ahist_t *h, uint64_t ns) {
  atomic_fetch_add_explicit(&h->buckets[gt_metrics_bucket(ns)], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void gt_metrics_ahist_read(gt_metrics_ahist_t *h, gt_metrics_hist_t *out) {
  memset(out, 0, sizeof(*out));
  for (unsigned i = 0; i <= GT_METRICS_NBOUNDS; i++) {
    out->buckets[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    out->count += out->buckets[i];
  }
  out->sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
}

void gt_metrics_hist_render(gt_metrics_buf_t *b, const char *name, const char *labels,
                            const gt_metrics_hist_t *h) {
  const char *sep = labels != NULL && *labels ? "," : "";
  if (labels == NULL)
    labels = "";
  uint64_t cum = 0;
  for (unsigned i = 0; i < GT_METRICS_NBOUNDS; i++) {
    cum += h->buckets[i];
    gt_metrics_printf(b, "%s_bucket{%s%sle=\"%.9g\"} %llu\n", name, labels, sep,
                      gt_metrics_bounds_s[i], (unsigned long long)cum);
  }
  gt_metrics_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                    (unsigned long long)h->count);
  if (*labels) {
    gt_metrics_printf(b, "%s_sum{%s} %.9f\n", name, labels, (double)h->sum_ns / 1e9);
    gt_metrics_printf(b, "%s_count{%s} %llu\n", name, labels,
                      (unsigned long long)h->count);
  } else {
    gt_metrics_printf(b, "%s_sum %.9f\n", name, (double)h->sum_ns / 1e9);
    gt_metrics_printf(b, "%s_count %llu\n", name, (unsigned long long)h->count);
  }
}
