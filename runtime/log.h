/*
 * log.h: one line per event, text or JSON, to stderr.
 *
 * Every line carries a stable message id (e.g. "HIST-SHARD-LOST") so that operators can grep
 * for it; the id names the place the event is handled. Thread-safe: a line is formatted into a
 * stack buffer and written with one write(2), so lines from threads never interleave.
 */
#ifndef GT_LOG_H
#define GT_LOG_H

typedef enum {
  GT_LOG_DEBUG = 0,
  GT_LOG_INFO = 1,
  GT_LOG_WARN = 2,
  GT_LOG_ERROR = 3,
  GT_LOG_OFF = 4,
} gt_log_level_t;

typedef enum { GT_LOG_TEXT = 0, GT_LOG_JSON = 1 } gt_log_format_t;

/* Sets the minimum level and the format. Call before threads start. */
void gt_log_setup(gt_log_level_t level, gt_log_format_t format);

/* Parses "debug", "info", "warn"/"warning", "error", "off"/"fatal"... OUT: *level. 0 or GT_EINVAL. */
int gt_log_parse_level(const char *text, gt_log_level_t *level);

/* Parses "json" -> GT_LOG_JSON; "text", "console", "pretty", "logfmt" -> GT_LOG_TEXT. */
int gt_log_parse_format(const char *text, gt_log_format_t *format);

/* True when a message of this level would be written. */
int gt_log_enabled(gt_log_level_t level);

void gt_log(gt_log_level_t level, const char *msgid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gt_log_debug(id, ...) gt_log(GT_LOG_DEBUG, id, __VA_ARGS__)
#define gt_log_info(id, ...) gt_log(GT_LOG_INFO, id, __VA_ARGS__)
#define gt_log_warn(id, ...) gt_log(GT_LOG_WARN, id, __VA_ARGS__)
#define gt_log_error(id, ...) gt_log(GT_LOG_ERROR, id, __VA_ARGS__)

/* Broken invariant: log and abort. Never for input, network or database errors. */
#define GT_PANIC(...)                                                          \
  do {                                                                         \
    gt_log(GT_LOG_ERROR, "PANIC", __VA_ARGS__);                                \
    __builtin_trap();                                                          \
  } while (0)
#define GT_ASSERT(cond)                                                        \
  do {                                                                         \
    if (!(cond))                                                               \
      GT_PANIC("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__);     \
  } while (0)

#endif
