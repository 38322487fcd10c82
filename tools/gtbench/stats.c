/*
 * stats.c: latency samples and the server process's CPU time and RSS, for gtbench.
 *
 * DESIGN
 *   Latencies are kept whole (one uint32 of microseconds per workflow) and sorted once at
 *   the end: exact percentiles, and a run of 100k workflows costs 400 KB.
 *   Server CPU is utime + stime from /proc/PID/stat (fields 14 and 15, in clock ticks);
 *   RSS is VmRSS from /proc/PID/status.
 *
 * THREADS: the loop thread only.
 */
#include "tools/gtbench/gtbench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

void lat_add(lat_vec_t *v, uint64_t us) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 4096;
    uint32_t *p = realloc(v->us, cap * sizeof(*p));
    if (!p)
      return; /* a lost sample is better than a lost run */
    v->us = p;
    v->cap = cap;
  }
  v->us[v->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

void lat_sort(lat_vec_t *v) {
  if (v->n)
    qsort(v->us, v->n, sizeof(*v->us), cmp_u32);
}

double lat_pct_ms(const lat_vec_t *v, double p) {
  if (!v->n)
    return 0;
  /* nearest rank */
  size_t rank = (size_t)((p / 100.0) * (double)v->n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > v->n)
    rank = v->n;
  return v->us[rank - 1] / 1000.0;
}

void lat_free(lat_vec_t *v) {
  free(v->us);
  memset(v, 0, sizeof(*v));
}

proc_sample_t proc_read(int pid) {
  proc_sample_t s = {0};
  char path[64], buf[4096];
  if (pid <= 0)
    return s;
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return s;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = 0;
  /* the command name (field 2) may hold spaces: fields restart after its ')' */
  char *p = strrchr(buf, ')');
  if (!p)
    return s;
  unsigned long utime = 0, stime = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
             &stime) != 2)
    return s;
  long tck = sysconf(_SC_CLK_TCK);
  s.cpu_ms = (double)(utime + stime) * 1000.0 / (double)(tck > 0 ? tck : 100);
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  f = fopen(path, "r");
  if (!f)
    return s;
  while (fgets(buf, sizeof(buf), f)) {
    long kb;
    if (sscanf(buf, "VmRSS: %ld kB", &kb) == 1)
      s.rss_mb = (double)kb / 1024.0;
  }
  fclose(f);
  s.ok = 1;
  return s;
}

uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

double self_cpu_ms(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}
