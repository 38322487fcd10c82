/*
 * wf_retry.c: workflow retry policies (StartWorkflowExecution.retry_policy), as Temporal
 * applies them.
 *
 * DESIGN
 *   A run that fails (FailWorkflowExecution) or runs out of its run timeout is retried
 *   when its WorkflowExecutionStarted carries a retry policy that allows it: the failure is
 *   not non-retryable (ApplicationFailureInfo.non_retryable, or its type among
 *   non_retryable_error_types), the attempts are not exhausted (maximum_attempts, 0 = no
 *   limit) and the backoff ends before the execution's expiration. The backoff is
 *   initial_interval × backoff_coefficient^(attempt − 1), at most maximum_interval, with
 *   Temporal's defaults (1 s, 2.0, 100 × the initial interval). The closing event then
 *   says RETRY_STATE_IN_PROGRESS and names the next run, which starts (wf_start_next_run)
 *   as the same workflow again: the first run's attributes, attempt + 1, initiator
 *   RETRY, continued_failure, the last completion result it was handed, and the backoff as
 *   its first workflow task backoff. When the policy does not allow it the close says why
 *   (MAXIMUM_ATTEMPTS_REACHED, NON_RETRYABLE_FAILURE, TIMEOUT); without a policy,
 *   RETRY_POLICY_NOT_SET. A retry takes precedence over a cron schedule's next run.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <math.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/log.h"

#define RS(x) TEMPORAL__API__ENUMS__V1__RETRY_STATE__RETRY_STATE_##x
#define RETRY_INITIATOR \
  TEMPORAL__API__ENUMS__V1__CONTINUE_AS_NEW_INITIATOR__CONTINUE_AS_NEW_INITIATOR_RETRY

/* The failure says it must not be retried. */
static int non_retryable(const pb_retry_t *rp, const pb_failure_t *f) {
  if (!f || f->failure_info_case !=
                TEMPORAL__API__FAILURE__V1__FAILURE__FAILURE_INFO_APPLICATION_FAILURE_INFO ||
      !f->application_failure_info)
    return 0;
  if (f->application_failure_info->non_retryable)
    return 1;
  for (size_t i = 0; i < rp->n_non_retryable_error_types; i++)
    if (f->application_failure_info->type &&
        strcmp(rp->non_retryable_error_types[i], f->application_failure_info->type) == 0)
      return 1;
  return 0;
}

int wf_retry_decide(const wf_run_t *run, const pb_failure_t *failure, int64_t *backoff_ms) {
  pb_event_t *start = run->n_ev ? wf_event_unpack(run, 0) : NULL;
  const Temporal__Api__History__V1__WorkflowExecutionStartedEventAttributes *s =
      start ? start->workflow_execution_started_event_attributes : NULL;
  const pb_retry_t *rp = s ? s->retry_policy : NULL;
  int state;
  if (!rp) {
    state = RS(RETRY_POLICY_NOT_SET);
  } else if (non_retryable(rp, failure)) {
    state = RS(NON_RETRYABLE_FAILURE);
  } else if (rp->maximum_attempts > 0 && s->attempt >= rp->maximum_attempts) {
    state = RS(MAXIMUM_ATTEMPTS_REACHED);
  } else {
    int64_t initial = gt_pb_dur_ms(rp->initial_interval);
    if (initial <= 0)
      initial = 1000;
    double coefficient = rp->backoff_coefficient >= 1.0 ? rp->backoff_coefficient : 2.0;
    int64_t max = gt_pb_dur_ms(rp->maximum_interval);
    if (max <= 0)
      max = 100 * initial;
    double b = (double)initial * pow(coefficient, (double)(s->attempt > 0 ? s->attempt - 1 : 0));
    *backoff_ms = b > (double)max ? max : (int64_t)b;
    int64_t now_ms = gt_wall_ns() / 1000000;
    if (run->expiration_ns && now_ms + *backoff_ms >= run->expiration_ns / 1000000)
      state = RS(TIMEOUT);
    else
      state = RS(IN_PROGRESS);
  }
  if (start)
    protobuf_c_message_free_unpacked(&start->base, NULL);
  return state;
}

void wf_retry_continue(workflow_t *wf, wf_run_t *prev, const char *run_id,
                       pb_failure_t *failure, int64_t backoff_ms) {
  wf_start_again(wf, prev, run_id, RETRY_INITIATOR, 1, NULL, failure, backoff_ms, "retry");
}
