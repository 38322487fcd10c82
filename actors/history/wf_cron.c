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

int64_t wf_cron_first_backoff_ms(const char *cron_schedule) {
  gt_cron_t c;
  char err[128];
  if (!cron_schedule || !*cron_schedule || gt_cron_parse(cron_schedule, &c, err, sizeof err))
    return -1;
  int64_t now = gt_wall_ns() / 1000000;
  return gt_cron_backoff_ms(&c, now, now);
}

int64_t wf_cron_backoff_ms(const wf_run_t *run) {
  gt_cron_t c;
  char err[128];
  if (!run->cron_schedule || !*run->cron_schedule ||
      gt_cron_parse(run->cron_schedule, &c, err, sizeof err))
    return -1;
  /* from the time the run fired (its execution time) to now, its close */
  return gt_cron_backoff_ms(&c, run->start_ns / 1000000 + run->backoff_ms,
                            gt_wall_ns() / 1000000);
}

void wf_cron_continue(workflow_t *wf, wf_run_t *prev, const char *run_id,
                      pb_payloads_t *result, pb_failure_t *failure) {
  int64_t backoff_ms = wf_cron_backoff_ms(prev);
  pb_event_t *start = prev->n_ev ? wf_event_unpack(prev, 0) : NULL;
  const Temporal__Api__History__V1__WorkflowExecutionStartedEventAttributes *s =
      start ? start->workflow_execution_started_event_attributes : NULL;
  if (backoff_ms < 0 || !s) {
    gt_log_error("HIST-CRON-FAILED", "workflow %s: could not start the next cron run",
                 wf->workflow_id);
    if (start)
      protobuf_c_message_free_unpacked(&start->base, NULL);
    return;
  }
  pb_dur_t exec_to, delay;
  gt_pb_dur(&exec_to, prev->exec_timeout_ms);
  gt_pb_dur(&delay, backoff_ms);
  start_params_t p = {
      .workflow_type = s->workflow_type, .task_queue = s->task_queue, .input = s->input,
      .exec_timeout = &exec_to, .run_timeout = s->workflow_run_timeout,
      .task_timeout = s->workflow_task_timeout, .identity = "", .request_id = "",
      .cron_schedule = prev->cron_schedule, .retry_policy = s->retry_policy,
      .header = s->header, .run_id = run_id, /* memo, search attributes: prev's now */
      .first_run_id = prev->first_run_id, .continued_run_id = prev->run_id,
      .initiator = CRON_INITIATOR, .continued_failure = failure,
      .last_completion_result = result ? result : s->last_completion_result,
      .parent_ns_id = prev->parent_ns_id, .parent_workflow_id = prev->parent_workflow_id,
      .parent_run_id = prev->parent_run_id, .parent_initiated_id = prev->parent_initiated_id,
      .expiration_ns = prev->expiration_ns, .start_delay = &delay};
  wf_start_next_run(wf, prev, &p, "cron");
  protobuf_c_message_free_unpacked(&start->base, NULL);
}
