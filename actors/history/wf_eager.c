/*
 * wf_eager.c: eager activity dispatch, inside the workflow actor.
 *
 * DESIGN
 *   A worker completing a workflow task can ask (ScheduleActivityTask's
 *   request_eager_execution) to run an activity that task schedules itself: the server
 *   records the activity as started by that worker at once and returns its task in the
 *   RespondWorkflowTaskCompletedResponse (activity_tasks), instead of handing it to
 *   matching for the worker to poll. That saves a poll answer and its match per activity.
 *   As Temporal (service/history/api/respondworkflowtaskcompleted), the server takes every
 *   activity the worker asks for when system.enableActivityEagerExecution is on: it does
 *   not compare task queues and sets no per-task limit; the worker decides (sdk-core asks
 *   only for activities on its own task queue, at most 3 per workflow task, each with a
 *   slot reserved). Temporal's other conditions concern worker versioning and paused
 *   workflows, neither of which this server has.
 *   The start is the poll path's (wf_act_set_started: attempt, identity, started time,
 *   start-to-close and heartbeat timers; ActivityTaskStarted is written when the attempt
 *   ends) and the task is the poll reply's bytes (wf_act_task_encode). Activities are
 *   started after every command is applied, so one the same task canceled, or whose run
 *   the same task closed, is not started.
 *
 * INVARIANTS
 *   - `eager` is set only between a ScheduleActivityTask command's event and the end of the
 *     same completion's handling: wf_eager_start clears every one it finds.
 *   - The response leaves with the completion's transaction (an EFF_REPLY): the worker
 *     never holds a task whose ActivityTaskScheduled may be lost.
 *   - An activity is in the response or in matching, never both, never neither.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"

/* The response stays under the 4 MiB a gRPC client accepts by default; the activities
 * past it go to matching. The request carried their inputs, so this binds only when the
 * completion itself came close to the limit. */
#define EAGER_RESP_MAX (4 * 1024 * 1024 - 64 * 1024)

/* RespondWorkflowTaskCompletedResponse.activity_tasks */
#define RESP_ACTIVITY_TASKS 2

int wf_eager_wanted(const workflow_t *wf,
                    const Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes *c) {
  return c->request_eager_execution && wf->srv->cfg->activity_eager_execution;
}

/* Appends act's task as field 2 of resp. 0, or GT_EINVAL / GT_ENOMEM / GT_ETOOBIG with resp
 * as it was. The task is encoded in place after room for its length prefix (a tag byte
 * and a varint of at most 5 bytes), then moved down over the room the prefix did not
 * need: no scratch buffer. */
static int append_task(gt_buf_t *resp, workflow_t *wf, wf_run_t *run,
                       const wf_activity_t *act, const char *ns_name) {
  enum { ROOM = 6 };
  size_t off = resp->len;
  if (gt_buf_reserve(resp, ROOM) != 0)
    return GT_ENOMEM;
  resp->len += ROOM;
  int rc = wf_act_task_encode(resp, wf, run, act, ns_name);
  if (rc == 0 && resp->oom)
    rc = GT_ENOMEM;
  size_t n = resp->len - off - ROOM;
  if (rc == 0 && resp->len > EAGER_RESP_MAX)
    rc = GT_ETOOBIG;
  if (rc != 0) {
    resp->len = off;
    resp->oom = 0; /* the bytes before off are whole */
    return rc;
  }
  uint8_t *p = resp->p + off;
  size_t k = 0;
  p[k++] = (uint8_t)((RESP_ACTIVITY_TASKS << 3) | 2);
  for (uint64_t v = n; ; v >>= 7) {
    p[k++] = (uint8_t)(v >= 0x80 ? (v | 0x80) : v);
    if (v < 0x80)
      break;
  }
  memmove(p + k, p + ROOM, n);
  resp->len = off + k + n;
  return 0;
}

/* Whether a command of req asked for eager execution that the server grants. */
static int any_wanted(const workflow_t *wf,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req) {
  for (size_t i = 0; i < req->n_commands; i++) {
    const pb_command_t *c = req->commands[i];
    if (c->command_type == PB_CMD(SCHEDULE_ACTIVITY_TASK) &&
        c->schedule_activity_task_command_attributes &&
        wf_eager_wanted(wf, c->schedule_activity_task_command_attributes))
      return 1;
  }
  return 0;
}

void wf_eager_start(workflow_t *wf, wf_run_t *run, wf_txn_t *t,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    const char *ns_name, gt_buf_t *resp) {
  if (!any_wanted(wf, req))
    return; /* no activity is marked: spare the walk over the run's activities */
  int running = wf_running(run);
  for (size_t i = 0; i < run->n_acts; i++) {
    wf_activity_t *act = &run->acts[i];
    if (!act->eager)
      continue;
    act->eager = 0;
    if (!running || act->started || act->closing)
      continue; /* the run closed: its activities go nowhere (nor would a poll take one) */
    int64_t started_ns = gt_wall_ns();
    act->started_ns = started_ns; /* the task shows it; unstarted, nothing reads it */
    if (append_task(resp, wf, run, act, ns_name) != 0) {
      wf_act_dispatch(wf, run, t, act);
      continue;
    }
    wf_act_set_started(wf, run, act, req->identity, started_ns);
    wf_act_arm_scheduled(wf, run, act); /* schedule-to-close; no schedule-to-start */
  }
}
