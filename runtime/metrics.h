/*
 * metrics.h: the Prometheus text exposition format (version 0.0.4) and a fixed-bucket
 * latency histogram. No registry of names: each owner keeps its own counters (plain
 * integers on one thread, or relaxed atomics) and renders them at scrape time.
 *
 * DESIGN
 *   A scrape appends to one growable text buffer (gt_metrics_buf_t): a family header
 *   ("# HELP", "# TYPE") then its samples, "name{label=\"v\",...} value\n". The buffer
 *   remembers an allocation failure instead of failing each call, so renderers need not
 *   check every append. A histogram keeps one count per bucket (not cumulative), the total
 *   and the sum in nanoseconds; rendering makes the buckets cumulative, adds +Inf, _sum
 *   (seconds) and _count. The bucket bounds are Temporal's defaults for a timer in seconds
 *   (common/metrics/config.go, unit "seconds": 1 ms .. 1000 s).
 *
 * INVARIANTS
 *   - Rendered buckets are cumulative and non-decreasing; the +Inf bucket equals _count.
 *   - gt_metrics_hist_observe allocates nothing and takes no lock.
 *
 * THREADS
 *   A gt_metrics_buf_t and a gt_metrics_hist_t belong to one thread at a time; nothing here
 *   synchronizes.
 */
#ifndef GT_METRICS_H
#define GT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The Content-Type of a rendered buffer. */
#define GT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Bucket upper bounds, seconds: 0.001 0.002 0.005 ... 500 1000 (19 bounds). */
#define GT_METRICS_NBOUNDS 19
extern const double gt_metrics_bounds_s[GT_METRICS_NBOUNDS];

typedef struct gt_metrics_buf {
  char *p;     /* malloc; NUL-terminated while len > 0 */
  size_t len, cap;
  int oom;     /* an append failed: the text is incomplete */
} gt_metrics_buf_t;

typedef struct gt_metrics_hist {
  uint64_t buckets[GT_METRICS_NBOUNDS + 1]; /* [i]: observations in (bound[i-1], bound[i]];
                                             * the last: above every bound */
  uint64_t count;
  uint64_t sum_ns;
} gt_metrics_hist_t;

/* A histogram that any thread observes into and any thread reads, with no lock: relaxed
 * atomic counts (statistics: a reader may see an observation in its bucket before the
 * sum). Zeroed = empty. */
typedef struct gt_metrics_ahist {
  _Atomic uint64_t buckets[GT_METRICS_NBOUNDS + 1];
  _Atomic uint64_t sum_ns;
} gt_metrics_ahist_t;

void gt_metrics_buf_init(gt_metrics_buf_t *b);
void gt_metrics_buf_fini(gt_metrics_buf_t *b);

/* Appends printf-style text (sets b->oom when memory runs out). */
void gt_metrics_printf(gt_metrics_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a family header: "# HELP name help\n# TYPE name type\n".
 *   type: "counter", "gauge" or "histogram". */
void gt_metrics_family(gt_metrics_buf_t *b, const char *name, const char *type,
                       const char *help);

/* Appends one sample line.
 *   labels: the text between the braces, already escaped (e.g. "operation=\"X\""), or
 *           NULL / "" for none. */
void gt_metrics_sample(gt_metrics_buf_t *b, const char *name, const char *labels,
                       uint64_t value);

/* Appends a label value with \\, \" and \n escaped, as the format requires. */
void gt_metrics_escape(gt_metrics_buf_t *b, const char *value);

/* The bucket an observation of ns nanoseconds falls in: 0..GT_METRICS_NBOUNDS (the last:
 * above every bound). For owners that count in their own (e.g. atomic) buckets. */
unsigned gt_metrics_bucket(uint64_t ns);

/* Counts one observation of ns nanoseconds. */
void gt_metrics_hist_observe(gt_metrics_hist_t *h, uint64_t ns);

/* The atomic histogram's forms: observe (any thread), and read a snapshot into out. */
void gt_metrics_ahist_observe(gt_metrics_ahist_t *h, uint64_t ns);
void gt_metrics_ahist_read(gt_metrics_ahist_t *h, gt_metrics_hist_t *out);

/* Appends a histogram's samples (no family header): name_bucket{labels,le="..."} for every
 * bound and +Inf (cumulative), name_sum (seconds) and name_count.
 *   labels: as gt_metrics_sample. */
void gt_metrics_hist_render(gt_metrics_buf_t *b, const char *name, const char *labels,
                            const gt_metrics_hist_t *h);

#endif
