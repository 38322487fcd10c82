/*
 * main.c: the genesis-temporal binary: parse the command line (and YAML), start the
 * server, wait for SIGINT/SIGTERM, stop cleanly.
 *
 * THREADS: the main thread only waits on signals (sigwait); all work runs on the gateway,
 * scheduler and store threads, which inherit the blocked signal mask.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "actors/frontend/server.h"
#include "config/config.h"
#include "runtime/err.h"
#include "runtime/log.h"

int main(int argc, char **argv) {
  gt_config_t cfg;
  char err[1024] = "";
  int exit_now = 0;
  gt_config_defaults(&cfg);
  int rc = gt_config_from_args(&cfg, argc, argv, &exit_now, err, sizeof(err));
  if (rc != 0) {
    fprintf(stderr, "genesis-temporal: %s\n", err);
    gt_config_fini(&cfg);
    return 2;
  }
  if (exit_now) {
    gt_config_fini(&cfg);
    return 0;
  }
  gt_log_setup(cfg.log_level, cfg.log_format);
  for (int i = 0; i < cfg.n_dynamic; i++)
    if (!gt_config_dynamic_known(cfg.dynamic_keys[i]))
      gt_log_warn("SRV-DYNCONFIG-IGNORED", "dynamic config %s=%s is not supported; ignored",
                  cfg.dynamic_keys[i], cfg.dynamic_values[i]);

  /* Block the stop signals in every thread; the main thread waits for them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  uint64_t t0 = gt_now_ms();
  gt_server_t *srv = NULL;
  rc = gt_server_start(&srv, &cfg);
  if (rc != 0) {
    fprintf(stderr, "genesis-temporal: cannot start: %s\n", gt_strerror(rc));
    gt_config_fini(&cfg);
    return 1;
  }
  gt_log_info("SRV-READY", "serving the Temporal API on %s:%d (store %s %s, %d shards) in %llu ms",
              cfg.bind_ip, gt_gateway_port(srv->gw), cfg.store_plugin,
              cfg.sqlite_path ? cfg.sqlite_path : "", cfg.num_history_shards,
              (unsigned long long)(gt_now_ms() - t0));
  int sig = 0;
  sigwait(&set, &sig);
  gt_log_info("SRV-STOPPING", "signal %d: stopping", sig);
  gt_server_stop(srv);
  gt_config_fini(&cfg);
  return 0;
}
