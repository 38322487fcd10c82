/*
 * main.c: gtbench's command line and its report.
 *
 * DESIGN
 *   The report is one human line, optional error lines, then one machine-readable line of
 *   key=value pairs (always last, always the same keys) for scripts such as tools/bench.sh.
 *   State transitions counted (OK answers only): StartWorkflowExecution, a workflow task
 *   handed out by PollWorkflowTaskQueue (WFT started), RespondWorkflowTaskCompleted, an
 *   activity handed out by PollActivityTaskQueue (activity started),
 *   RespondActivityTaskCompleted, SignalWorkflowExecution. hello = 7 per workflow
 *   (start, 2 WFT started, 2 WFT completed, activity started and completed); steps10 =
 *   1 + 11 + 11 + 10 + 10 = 43; sleep = 3 (start, WFT started, WFT completed).
 *   For sleep, a workflow is "completed" once its StartTimer was acknowledged (it never
 *   closes), so wf/s is sleepers set up per second and --verify does not apply.
 *
 *   Exit status: 0 done; 1 --smoke saw a failure; 2 usage or connection error;
 *   3 the server answered UNIMPLEMENTED for something the workload needs.
 *
 * THREADS: one (the loop thread).
 */
#include "tools/gtbench/gtbench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

static const char *const wl_names[WL_COUNT] = {"hello", "steps10", "timer", "signal",
                                                "sleep"};

static void usage(FILE *f) {
  fprintf(f,
      "usage: gtbench [options]\n"
      "  -c, --concurrency C   closed loop: C workflows in flight (default 100)\n"
      "  -r, --rate R          open loop: R workflow starts per second\n"
      "  -d, --duration S      measurement window in seconds (default 10)\n"
      "  -w, --warmup S        warmup before the window (default 2)\n"
      "  -n, --count N         run exactly N workflows (window: first start..last end)\n"
      "      --workload W      hello | steps10 | timer | signal | sleep (default hello)\n"
      "                        sleep: each workflow starts one long timer and stays open;\n"
      "                        it counts as done once that StartTimer is acknowledged\n"
      "      --sleep-s S       sleep workload: the timer's duration (default 3600)\n"
      "      --addr HOST:PORT  server (default 127.0.0.1:7233)\n"
      "      --namespace NS    (default default)\n"
      "      --server-pid PID  sample the server's CPU and RSS from /proc\n"
      "      --conns K         HTTP/2 connections (default 2)\n"
      "      --wft-pollers N   workflow task long polls (default 32)\n"
      "      --act-pollers N   activity task long polls (default 32)\n"
      "      --no-eager        never ask for eager activity execution (sdk-core asks;\n"
      "                        so does gtbench by default) nor eager workflow start (the\n"
      "                        SDKs' requestEagerStart): every task is polled\n"
      "      --no-eager-start  eager activities, but no eager workflow start (the SDKs'\n"
      "                        default): the first workflow task is polled\n"
      "      --rpc-latency     also print each RPC's latency p50/p90/p99 (calls ending\n"
      "                        in the window; a long poll's includes its wait for a task)\n"
      "      --verify N        check N completed workflows' close events by history\n"
      "      --drain S         wait at most S s for in-flight workflows (default 30)\n"
      "      --max-inflight N  open loop cap on workflows in flight (default 20000)\n"
      "      --smoke           20 hello workflows, verified; exit 1 if any fails\n"
      "      --progress        one line per second on stderr (rate, in flight, server)\n"
      "  -q, --quiet           only the machine-readable line\n");
}

enum { O_WORKLOAD = 256, O_ADDR, O_NS, O_PID, O_CONNS, O_WFTP, O_ACTP, O_VERIFY, O_DRAIN,
       O_MAXIN, O_SMOKE, O_PROGRESS, O_SLEEP_S, O_NO_EAGER, O_NO_EAGER_START, O_RPC_LAT };

static int parse_workload(const char *s, workload_t *w) {
  for (int i = 0; i < WL_COUNT; i++)
    if (strcmp(s, wl_names[i]) == 0) {
      *w = (workload_t)i;
      return 0;
    }
  return -1;
}

static int parse_args(int argc, char **argv, bench_opts_t *o) {
  static const struct option longs[] = {
      {"concurrency", 1, 0, 'c'}, {"rate", 1, 0, 'r'}, {"duration", 1, 0, 'd'},
      {"warmup", 1, 0, 'w'}, {"count", 1, 0, 'n'}, {"quiet", 0, 0, 'q'},
      {"help", 0, 0, 'h'}, {"workload", 1, 0, O_WORKLOAD}, {"addr", 1, 0, O_ADDR},
      {"namespace", 1, 0, O_NS}, {"server-pid", 1, 0, O_PID}, {"conns", 1, 0, O_CONNS},
      {"wft-pollers", 1, 0, O_WFTP}, {"act-pollers", 1, 0, O_ACTP},
      {"verify", 1, 0, O_VERIFY}, {"drain", 1, 0, O_DRAIN}, {"max-inflight", 1, 0, O_MAXIN},
      {"smoke", 0, 0, O_SMOKE}, {"progress", 0, 0, O_PROGRESS},
      {"sleep-s", 1, 0, O_SLEEP_S}, {"no-eager", 0, 0, O_NO_EAGER},
      {"no-eager-start", 0, 0, O_NO_EAGER_START},
      {"rpc-latency", 0, 0, O_RPC_LAT}, {0, 0, 0, 0}};
  *o = (bench_opts_t){.addr = "127.0.0.1:7233", .ns = "default", .workload = WL_HELLO,
                      .concurrency = -1, .duration_s = 10, .warmup_s = 2, .conns = 2,
                      .wft_pollers = 32, .act_pollers = 32, .drain_s = 30,
                      .max_inflight = 20000, .sleep_s = 3600};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:r:d:w:n:qh", longs, NULL)) != -1) {
    switch (ch) {
    case 'c': o->concurrency = atoi(optarg); break;
    case 'r': o->rate = atof(optarg); break;
    case 'd': o->duration_s = atof(optarg); break;
    case 'w': o->warmup_s = atof(optarg); break;
    case 'n': o->count = atol(optarg); break;
    case 'q': o->quiet = 1; break;
    case 'h': usage(stdout); exit(0);
    case O_WORKLOAD:
      if (parse_workload(optarg, &o->workload) != 0) {
        fprintf(stderr, "gtbench: unknown workload '%s'\n", optarg);
        return -1;
      }
      break;
    case O_ADDR: o->addr = optarg; break;
    case O_NS: o->ns = optarg; break;
    case O_PID: o->server_pid = atoi(optarg); break;
    case O_CONNS: o->conns = atoi(optarg); break;
    case O_WFTP: o->wft_pollers = atoi(optarg); break;
    case O_ACTP: o->act_pollers = atoi(optarg); break;
    case O_VERIFY: o->verify = atoi(optarg); break;
    case O_DRAIN: o->drain_s = atof(optarg); break;
    case O_MAXIN: o->max_inflight = atoi(optarg); break;
    case O_SMOKE: o->smoke = 1; break;
    case O_PROGRESS: o->progress = 1; break;
    case O_SLEEP_S: o->sleep_s = atol(optarg); break;
    case O_NO_EAGER: o->no_eager = 1; break;
    case O_NO_EAGER_START: o->no_eager_start = 1; break;
    case O_RPC_LAT: o->rpc_latency = 1; break;
    default: usage(stderr); return -1;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return -1;
  }
  if (o->smoke) {
    o->workload = WL_HELLO;
    o->count = 20;
    o->concurrency = 20;
    o->rate = 0;
    o->warmup_s = 0;
    o->verify = 20;
  }
  if (o->workload == WL_SLEEP && o->verify) {
    /* a sleeper never closes: there is no close event to wait for */
    fprintf(stderr, "gtbench: --verify does not apply to the sleep workload; ignored\n");
    o->verify = 0;
  }
  if (o->rate > 0 && o->concurrency > 0) {
    fprintf(stderr, "gtbench: -c and -r exclude each other\n");
    return -1;
  }
  if (o->rate <= 0 && o->concurrency < 0)
    o->concurrency = 100;
  if (o->rate > 0)
    o->concurrency = 0;
  if (o->count > 0)
    o->warmup_s = 0;
  if (o->conns < 1 || o->wft_pollers < 1 || o->act_pollers < 1 || o->duration_s <= 0 ||
      o->sleep_s < 1 ||
      (o->concurrency == 0 && o->rate <= 0)) {
    fprintf(stderr, "gtbench: invalid option values\n");
    return -1;
  }
  return 0;
}

static void setup_names(bench_t *b) {
  uint8_t r[4] = {0};
  if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
    r[0] = (uint8_t)getpid();
  snprintf(b->tag, sizeof(b->tag), "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
  snprintf(b->task_queue, sizeof(b->task_queue), "gtbench-%s", b->tag);
  snprintf(b->wf_type, sizeof(b->wf_type), "gtbench-%s", wl_names[b->o.workload]);
  char host[32] = "localhost";
  gethostname(host, sizeof(host) - 1);
  host[sizeof(host) - 1] = 0;
  snprintf(b->identity, sizeof(b->identity), "%d@%s@gtbench", (int)getpid(), host);
}

static uint64_t total_errors(const bench_t *b) {
  uint64_t n = 0;
  for (int k = 0; k < RPC_COUNT; k++)
    for (int i = 1; i < 18; i++)
      n += b->err[k][i];
  return n;
}

static void print_errors(const bench_t *b) {
  for (int k = 0; k < RPC_COUNT; k++)
    for (int i = 1; i < 18; i++)
      if (b->err[k][i])
        printf("gtbench: errors: %s %s x%llu\n", rpc_names[k],
               driver_code_name(i == 17 ? H2C_TRANSPORT : i),
               (unsigned long long)b->err[k][i]);
}

static void report(bench_t *b) {
  const bench_opts_t *o = &b->o;
  double win_s = (double)(b->t_win_end_us - b->t_win_start_us) / 1e6;
  if (win_s <= 0)
    win_s = 1e-9;
  lat_sort(&b->lat);
  double wfs = (double)b->win_completed / win_s;
  double tps = (double)b->win_transitions / win_s;
  double p50 = lat_pct_ms(&b->lat, 50), p95 = lat_pct_ms(&b->lat, 95);
  double p99 = lat_pct_ms(&b->lat, 99);
  int have_cpu = b->p_win_start.ok && b->p_win_end.ok;
  double cpu_per_wf = have_cpu && b->win_completed
                          ? (b->p_win_end.cpu_ms - b->p_win_start.cpu_ms) /
                                (double)b->win_completed : -1;
  double self_per_wf = b->win_completed ? (b->self_cpu_end - b->self_cpu_start) /
                                              (double)b->win_completed : -1;
  double rss = b->p_win_end.ok ? b->p_win_end.rss_mb : -1;
  double idle_rss = b->p_idle.ok ? b->p_idle.rss_mb : -1;
  char mode[48];
  if (o->concurrency > 0)
    snprintf(mode, sizeof(mode), "mode=closed c=%d", o->concurrency);
  else
    snprintf(mode, sizeof(mode), "mode=open rate=%g", o->rate);
  if (!o->quiet) {
    if (b->unimplemented)
      printf("gtbench: UNIMPLEMENTED by server: %s\n", b->unimpl_msg);
    printf("gtbench: %s %s: %.1f wf/s, %.1f transitions/s, latency p50 %.2f ms p95 %.2f "
           "ms p99 %.2f ms, server CPU %.3f ms/wf (gtbench %.3f), RSS %.1f MB (idle %.1f); completed %llu "
           "failed %llu in %.2f s window\n",
           wl_names[o->workload], mode + 5, wfs, tps, p50, p95, p99, cpu_per_wf, self_per_wf, rss,
           idle_rss, (unsigned long long)b->win_completed, (unsigned long long)b->failed,
           win_s);
    print_errors(b);
    for (int i = 0; i < b->n_rpc_lat; i++) {
      lat_vec_t *v = &b->rpc_lat[i].lat;
      lat_sort(v);
      printf("gtbench: rpc %-30s n=%zu p50 %.2f ms p90 %.2f ms p99 %.2f ms\n",
             b->rpc_lat[i].method, v->n, lat_pct_ms(v, 50), lat_pct_ms(v, 90),
             lat_pct_ms(v, 99));
    }
    if (o->verify)
      printf("gtbench: verified %llu ok, %llu bad\n", (unsigned long long)b->verify_ok,
             (unsigned long long)b->verify_bad);
  }
  printf("workload=%s %s status=%s window_s=%.2f wf/s=%.1f transitions/s=%.1f p50_ms=%.2f "
         "p95_ms=%.2f p99_ms=%.2f server_rss_mb=%.1f server_idle_rss_mb=%.1f "
         "server_cpu_ms_per_wf=%.3f gtbench_cpu_ms_per_wf=%.3f completed=%llu failed=%llu started=%zu "
         "start_failed=%llu errors=%llu skipped=%llu verify_ok=%llu verify_bad=%llu "
         "eager_activities=%llu eager_starts=%llu\n",
         wl_names[o->workload], mode,
         b->unimplemented ? "unimplemented" : b->fatal ? "fatal" : "ok", win_s, wfs, tps,
         p50, p95, p99, rss, idle_rss, cpu_per_wf, self_per_wf, (unsigned long long)b->win_completed,
         (unsigned long long)b->failed, b->n_wfs, (unsigned long long)b->start_failed,
         (unsigned long long)total_errors(b), (unsigned long long)b->skipped,
         (unsigned long long)b->verify_ok, (unsigned long long)b->verify_bad,
         (unsigned long long)b->eager_acts, (unsigned long long)b->eager_starts);
  fflush(stdout);
}

int main(int argc, char **argv) {
  static bench_t bench;
  bench_t *b = &bench;
  if (parse_args(argc, argv, &b->o) != 0)
    return 2;
  setup_names(b);
  uv_loop_t loop;
  uv_loop_init(&loop);
  b->loop = &loop;
  b->conns = calloc((size_t)b->o.conns, sizeof(*b->conns));
  if (!b->conns)
    return 2;
  for (int i = 0; i < b->o.conns; i++)
    if (h2c_open(&loop, b->o.addr, &b->conns[i]) != 0)
      return 2;
  b->p_idle = proc_read(b->o.server_pid);
  if (b->o.rpc_latency)
    driver_observe_rpcs(b);
  driver_run(b);
  report(b);
  int rc = 0;
  if (b->unimplemented)
    rc = 3;
  else if (b->fatal)
    rc = 2;
  else if (b->o.smoke && (b->failed || b->win_completed != 20 || b->verify_bad ||
                          b->verify_ok != 20 || total_errors(b)))
    rc = 1;
  int lrc = uv_loop_close(&loop);
  if (lrc != 0)
    fprintf(stderr, "gtbench: loop not closed cleanly: %s\n", uv_strerror(lrc));
  lat_free(&b->lat);
  for (int i = 0; i < b->n_rpc_lat; i++)
    lat_free(&b->rpc_lat[i].lat);
  pb_arena_fini();
  free(b->wfs);
  free(b->conns);
  return rc;
}
