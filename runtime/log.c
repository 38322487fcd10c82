/*
 * log.c: one line per event to stderr, as text or JSON.
 *
 * DESIGN
 *   A line is formatted into a stack buffer and written with one write(2), so
 *   lines from different threads never interleave. Messages longer than the
 *   buffer are cut and end in "...".
 *     text: 2026-11-26T06:00:00.123Z INFO  HIST-SHARD-LOST message
 *     json: {"ts":"2026-11-26T06:00:00.123Z","level":"info",
 *            "msg_id":"HIST-SHARD-LOST","msg":"message"}   (one line)
 *   In text, control characters in the message become spaces (one event, one
 *   line).
 *
 * INVARIANTS
 *   - Lines with msg_id "PANIC" are written whatever the level: they precede an
 *     abort.
 *
 * THREADS
 *   gt_log: any thread. gt_log_setup: before threads start (the settings are
 *   atomics anyway, relaxed: a late reader sees the old level for a moment,
 *   which is harmless).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "runtime/err.h"
#include "runtime/log.h"

#define MSG_MAX 2048
#define LINE_MAX_                                                              \
  (MSG_MAX * 6 + 256) /* worst case: every byte escaped as \u00XX */

static _Atomic int min_level = GT_LOG_INFO;
static _Atomic int out_format = GT_LOG_TEXT;

void gt_log_setup(gt_log_level_t level, gt_log_format_t format) {
  atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
  atomic_store_explicit(&out_format, (int)format, memory_order_relaxed);
}

int gt_log_parse_level(const char *text, gt_log_level_t *level) {
  static const struct {
    const char *name;
    gt_log_level_t level;
  } names[] = {
      {"debug", GT_LOG_DEBUG},  {"trace", GT_LOG_DEBUG},
      {"info", GT_LOG_INFO},    {"warn", GT_LOG_WARN},
      {"warning", GT_LOG_WARN}, {"error", GT_LOG_ERROR},
      {"dpanic", GT_LOG_OFF},   {"panic", GT_LOG_OFF},
      {"fatal", GT_LOG_OFF},    {"off", GT_LOG_OFF},
      {"none", GT_LOG_OFF},
  };
  if (text == NULL || level == NULL)
    return GT_EINVAL;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcasecmp(text, names[i].name) == 0) {
      *level = names[i].level;
      return 0;
    }
  }
  return GT_EINVAL;
}

int gt_log_parse_format(const char *text, gt_log_format_t *format) {
  static const char *const texts[] = {"text", "console", "pretty", "logfmt"};
  if (text == NULL || format == NULL)
    return GT_EINVAL;
  if (strcasecmp(text, "json") == 0) {
    *format = GT_LOG_JSON;
    return 0;
  }
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
    if (strcasecmp(text, texts[i]) == 0) {
      *format = GT_LOG_TEXT;
      return 0;
    }
  }
  return GT_EINVAL;
}

int gt_log_enabled(gt_log_level_t level) {
  return level < GT_LOG_OFF &&
         (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

static void timestamp(char *buf, size_t cap) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Appends s, JSON-escaped, to out[*o..cap). */
static void json_escape(char *out, size_t *o, size_t cap, const char *s) {
  static const char hex[] = "0123456789abcdef";
  for (; *s != '\0' && *o + 7 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    const char *esc = NULL;
    switch (c) {
    case '"':
      esc = "\\\"";
      break;
    case '\\':
      esc = "\\\\";
      break;
    case '\n':
      esc = "\\n";
      break;
    case '\r':
      esc = "\\r";
      break;
    case '\t':
      esc = "\\t";
      break;
    default:
      break;
    }
    if (esc != NULL) {
      out[(*o)++] = esc[0];
      out[(*o)++] = esc[1];
    } else if (c < 0x20 || c == 0x7f) {
      memcpy(out + *o, "\\u00", 4);
      out[*o + 4] = hex[c >> 4];
      out[*o + 5] = hex[c & 15];
      *o += 6;
    } else {
      out[(*o)++] = (char)c;
    }
  }
}

static const char *level_lower(gt_log_level_t l) {
  static const char *const n[] = {"debug", "info", "warn", "error"};
  return l >= GT_LOG_DEBUG && l <= GT_LOG_ERROR ? n[l] : "error";
}

static const char *level_upper(gt_log_level_t l) {
  static const char *const n[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
  return l >= GT_LOG_DEBUG && l <= GT_LOG_ERROR ? n[l] : "ERROR";
}

static void write_all(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(STDERR_FILENO, buf, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return; /* nowhere to report it */
    buf += w;
    len -= (size_t)w;
  }
}

void gt_log(gt_log_level_t level, const char *msgid, const char *fmt, ...) {
  int panic = msgid != NULL && strcmp(msgid, "PANIC") == 0;
  if (!panic && !gt_log_enabled(level))
    return;
  char msg[MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0)
    snprintf(msg, sizeof(msg), "(bad log format)");
  else if ((size_t)n >= sizeof(msg))
    memcpy(msg + sizeof(msg) - 4, "...", 4);
  char ts[40];
  timestamp(ts, sizeof(ts));
  if (msgid == NULL)
    msgid = "-";
  char line[LINE_MAX_];
  size_t o = 0;
  if (atomic_load_explicit(&out_format, memory_order_relaxed) == GT_LOG_JSON) {
    o = (size_t)snprintf(line, sizeof(line),
                         "{\"ts\":\"%s\",\"level\":\"%s\",\"msg_id\":\"", ts,
                         level_lower(level));
    json_escape(line, &o, sizeof(line) - 16, msgid); /* room for the tail */
    memcpy(line + o, "\",\"msg\":\"", 9);
    o += 9;
    json_escape(line, &o, sizeof(line) - 16, msg);
    memcpy(line + o, "\"}\n", 3);
    o += 3;
  } else {
    for (char *p = msg; *p != '\0'; p++) {
      if ((unsigned char)*p < 0x20 || *p == 0x7f)
        *p = ' ';
    }
    int w = snprintf(line, sizeof(line), "%s %s %s %s\n", ts,
                     level_upper(level), msgid, msg);
    o = w < 0 ? 0 : ((size_t)w < sizeof(line) ? (size_t)w : sizeof(line) - 1);
  }
  write_all(line, o);
}
