/*
 * err.c: gt_strerror and gt_errname, generated from GT_ERRNO_MAP (err.h).
 */
#include "runtime/err.h"

const char *gt_strerror(int code) {
  switch (code) {
  case 0:
    return "ok";
#define GT_ERR_TEXT(name, value, text) \
  case value:                          \
    return text;
    GT_ERRNO_MAP(GT_ERR_TEXT)
#undef GT_ERR_TEXT
  }
  return "unknown error";
}

const char *gt_errname(int code) {
  switch (code) {
  case 0:
    return "GT_OK";
#define GT_ERR_NAME(name, value, text) \
  case value:                          \
    return "GT_E" #name;
    GT_ERRNO_MAP(GT_ERR_NAME)
#undef GT_ERR_NAME
  }
  return "GT_E?";
}
