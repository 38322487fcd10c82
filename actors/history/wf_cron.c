/*
 * wf_cron.c: cron workflows (StartWorkflowExecution.cron_schedule), as Temporal runs them.
 *
 * DESIGN
 *   A cron workflow is a chain of runs. The first run waits for the schedule's next firing
 *   as a first workflow task backoff (wf_create_run: first_workflow_task_backoff, the start
 *   delay mechanism). When a run completes, fails or times out, its close event names the
 *   next run (new_execution_run_id) and, once that close is committed, the next run starts
 *   in the same actor, as a continue-as-new would: initiator CRON_SCHEDULE, the first
 *   run's attributes (type, task queue, input, timeouts, retry policy, header, schedule),
 *   the memo and search attributes as they are now, last_completion_result (the result,
 *   or on a failure the one the run had been handed) and continued_failure, and a backoff
 *   until the firing after the run's execution time that is not before now (Temporal's
 *   GetBackoffForNextSchedule). A termination or a cancellation ends the chain.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdlib.h>
#include <string.h>

#include "actors/history/cron.h"
#include "actors/history/wf_int.h"
#include "runtime/log.h"

#define CRON_INITIATOR TEMPORAL__API__ENUMS__V1__CONTINUE_AS_NEW_INITIATOR__CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE

/* The backoff, from now, before the firing of spec due after from_ms (see
 * gt_cron_backoff_ms); -1 when spec is not a schedule or never fires. */
static int64_t backoff_after(const char *spec, int64_t from_ms) {
  gt_cron_t c;
  char err[128];
  if (!spec || !*spec || gt_cron_parse(spec, &c, err, sizeof err))
    return -1;
  return gt_cron_backoff_ms(&c, from_ms, gt_wall_ns() / 1000000);
}

int64_t wf_cron_first_backoff_ms(const char *cron_schedule) {
  return backoff_after(cron_schedule, gt_wall_ns() / 1000000);
}

int64_t wf_cron_backoff_ms(const wf_run_t *run) {
  /* from the time the run fired (its execution time) to now, its close */
  return backoff_after(run->cron_schedule, wf_run_execution_ns(run) / 1000000);
}

void wf_cron_continue(workflow_t *wf, wf_run_t *prev, const char *run_id,
                      pb_payloads_t *result, pb_failure_t *failure) {
  int64_t backoff_ms = wf_cron_backoff_ms(prev);
  if (backoff_ms < 0) {
    gt_log_error("HIST-CRON-FAILED", "workflow %s: its schedule fires no more",
                 wf->workflow_id);
    return;
  }
  wf_start_again(wf, prev, run_id, CRON_INITIATOR, 0, result, failure, backoff_ms, "cron");
}
