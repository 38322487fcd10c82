/*
 * cron_test.c: cron schedules (actors/history/cron.c): what parses and what is refused,
 * the next firing for each kind of field, the day-of-month/day-of-week rule, @every, and
 * Temporal's backoff between two runs.
 */
#include <check.h>
#include <string.h>
#include <time.h>

#include "actors/history/cron.h"
#include "runtime/err.h"

/* Unix ms of a UTC date and time. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
  struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                  .tm_min = mi, .tm_sec = s};
  return (int64_t)timegm(&tm) * 1000;
}

static gt_cron_t must_parse(const char *spec) {
  gt_cron_t c;
  char err[128] = "";
  ck_assert_msg(gt_cron_parse(spec, &c, err, sizeof err) == 0, "%s: %s", spec, err);
  return c;
}

START_TEST(test_refused) {
  static const char *const bad[] = {"",          "* * * *",       "* * * * * *", "60 * * * *",
                                    "* 24 * * *", "* * 0 * *",    "* * * 13 *",  "* * * * 7",
                                    "*/0 * * * *", "5-1 * * * *", "x * * * *",   "@bogus",
                                    "@every 0s",  "@every 500ms", "@every",     "@every 1x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gt_cron_t c;
    char err[128] = "";
    ck_assert_msg(gt_cron_parse(bad[i], &c, err, sizeof err) == GT_EINVAL, "'%s' parsed", bad[i]);
    ck_assert_msg(err[0], "'%s': no reason", bad[i]);
  }
}
END_TEST

START_TEST(test_next) {
  gt_cron_t c = must_parse("*/15 * * * *");
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 27, 1, 7, 30)), utc(2026, 11, 27, 1, 15, 0));
  /* strictly after: a firing time itself gives the next one */
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 27, 1, 15, 0)), utc(2026, 11, 27, 1, 30, 0));
  c = must_parse("0 0 1 1 *");
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 27, 1, 7, 30)), utc(2027, 1, 1, 0, 0, 0));
  gt_cron_t yearly = must_parse("@yearly");
  ck_assert_int_eq(gt_cron_next_ms(&yearly, utc(2026, 11, 27, 1, 7, 30)),
                   utc(2027, 1, 1, 0, 0, 0));
  /* 2026-11-28 is a Saturday: next weekday afternoon is Monday the 30th */
  c = must_parse("30 14 * * MON-FRI");
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 28, 9, 0, 0)), utc(2026, 11, 30, 14, 30, 0));
  /* both day fields restricted: either matches (the 13th, or a Friday: 2026-12-04) */
  c = must_parse("0 0 13 * fri");
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 27, 1, 0, 0)), utc(2026, 12, 4, 0, 0, 0));
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 12, 11, 1, 0, 0)), utc(2026, 12, 13, 0, 0, 0));
  /* lists, ranges with steps, months by name */
  c = must_parse("5,10-20/5 3 * JAN,jul *");
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 27, 1, 0, 0)), utc(2027, 1, 1, 3, 5, 0));
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2027, 1, 1, 3, 5, 0)), utc(2027, 1, 1, 3, 10, 0));
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2027, 1, 1, 3, 20, 0)), utc(2027, 1, 2, 3, 5, 0));
  c = must_parse("@hourly");
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 27, 1, 0, 0)), utc(2026, 11, 27, 2, 0, 0));
  /* never: February 30th */
  c = must_parse("0 0 30 2 *");
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 11, 27, 1, 0, 0)), -1);
}
END_TEST

START_TEST(test_every_and_backoff) {
  gt_cron_t c = must_parse("@every 1m30s");
  ck_assert_int_eq(c.every_ms, 90000);
  /* from the whole second it is asked from */
  ck_assert_int_eq(gt_cron_next_ms(&c, utc(2026, 1, 1, 12, 0, 0) + 500),
                   utc(2026, 1, 1, 12, 1, 30));
  c = must_parse("@every 1s");
  int64_t start = utc(2026, 1, 1, 12, 0, 0);
  /* a run that took 50 ms: the next firing after it, rounded up to whole seconds */
  ck_assert_int_eq(gt_cron_backoff_ms(&c, start, start + 1050), 1000);
  ck_assert_int_eq(gt_cron_backoff_ms(&c, start, start + 300), 1000);
  /* the first run: started and asked at once */
  ck_assert_int_eq(gt_cron_backoff_ms(&c, start, start), 1000);
  c = must_parse("*/15 * * * *");
  ck_assert_int_eq(gt_cron_backoff_ms(&c, utc(2026, 1, 1, 12, 0, 0), utc(2026, 1, 1, 12, 20, 0)),
                   10 * 60000);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cron");
  TCase *tc = tcase_create("cron");
  tcase_add_test(tc, test_refused);
  tcase_add_test(tc, test_next);
  tcase_add_test(tc, test_every_and_backoff);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
