/*
 * cron.h: Temporal's cron schedules (StartWorkflowExecution.cron_schedule): parsing and
 * the next time a schedule fires.
 *
 * DESIGN
 *   The syntax Temporal accepts (robfig/cron's standard parser): five fields, minute
 *   (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC) and day of week
 *   (0-6 or SUN-SAT), each `*`, a value, a range `a-b`, a list `a,b`, with an optional
 *   step `/n`; `?` as `*` in the day fields; the descriptors @yearly (@annually),
 *   @monthly, @weekly, @daily (@midnight), @hourly; and `@every <duration>` (a Go
 *   duration such as 90s or 1h30m, rounded down to whole seconds, at least 1 s). Times are
 *   UTC, as Temporal's cron runs. When both day fields are restricted a day matches if
 *   either does; when one is `*`, the other decides (robfig's rule). A fields schedule
 *   fires on whole minutes; `@every d` fires d after the time it is asked from.
 *   Each field is a bit set, so the next time is found by moving forward a day, an hour
 *   or a minute at a time, never testing seconds: at most ~5 years of days.
 *
 * THREADS: pure functions, any thread.
 */
#ifndef GT_CRON_H
#define GT_CRON_H

#include <stddef.h>
#include <stdint.h>

typedef struct gt_cron {
  uint64_t minutes; /* bit m: minute m */
  uint32_t hours;
  uint32_t doms;    /* bit d: day d of the month (1-31) */
  uint16_t months;  /* bit m: month m (1-12) */
  uint8_t dows;     /* bit d: day d of the week (0 = Sunday) */
  int dom_star, dow_star;
  int64_t every_ms; /* @every: the interval; 0 for a fields schedule */
} gt_cron_t;

/* Parses spec. Returns 0, or GT_EINVAL with the reason in err (errlen bytes). */
int gt_cron_parse(const char *spec, gt_cron_t *out, char *err, size_t errlen);

/* The first time the schedule fires after after_ms (Unix ms, UTC): strictly later.
 * Returns -1 when it never does (e.g. February 30th) within 5 years. */
int64_t gt_cron_next_ms(const gt_cron_t *c, int64_t after_ms);

/* Temporal's backoff before the next run of a cron workflow whose run started at
 * start_ms and closed at close_ms: the first firing after the start that is not before
 * the close, minus the close (0 when it fires at once). -1 when it never fires. */
int64_t gt_cron_backoff_ms(const gt_cron_t *c, int64_t start_ms, int64_t close_ms);

#endif
