/*
 * err.h: the error codes of Genesis Temporal.
 *
 * Every function that can fail returns 0 on success or a negative GT_E* code. The codes come
 * from one X-macro, GT_ERRNO_MAP, which also generates gt_strerror(). Codes from sqlite, libpq,
 * nng and libuv are mapped to these at the module boundary; they never travel further.
 */
#ifndef GT_ERR_H
#define GT_ERR_H

#define GT_ERRNO_MAP(X)                                                    \
  X(NOMEM, -1, "out of memory")                                            \
  X(INVAL, -2, "invalid argument")                                         \
  X(NOTFOUND, -3, "not found")                                             \
  X(EXISTS, -4, "already exists")                                          \
  X(BUSY, -5, "busy, try again")                                           \
  X(CLOSED, -6, "closed")                                                  \
  X(IO, -7, "i/o error")                                                   \
  X(TIMEDOUT, -8, "timed out")                                             \
  X(FENCED, -9, "shard ownership lost (range_id changed)")                 \
  X(PROTO, -10, "protocol error")                                          \
  X(TOOBIG, -11, "too big")                                                \
  X(UNAVAIL, -12, "unavailable")                                           \
  X(CORRUPT, -13, "data is corrupt")                                       \
  X(CONFIG, -14, "configuration error")                                    \
  X(CONFLICT, -15, "conflicting update (version changed)")                 \
  X(FULL, -16, "queue is full")

typedef enum {
  GT_OK = 0,
#define GT_ERR_ENUM(name, value, text) GT_E##name = (value),
  GT_ERRNO_MAP(GT_ERR_ENUM)
#undef GT_ERR_ENUM
} gt_err_t;

/* Returns a static, human-readable text for a GT_E* code (or "unknown error"). */
const char *gt_strerror(int code);

/* Returns the code's name, e.g. "GT_ENOTFOUND" (or "GT_E?"). */
const char *gt_errname(int code);

#endif
