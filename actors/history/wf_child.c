/*
 * wf_child.c: what crosses between workflow actors: child workflows, signals to other
 * workflows, and the parent close policy.
 *
 * DESIGN
 *   Workflow actors share nothing: a parent starts a child by a wf_xmsg_t to the child id's
 *   actor, sent only after the parent's StartChildWorkflowExecutionInitiated is durable
 *   (EFF_XMSG). The child's actor starts the run (its WorkflowExecutionStarted names the
 *   parent) and, once that is durable, tells the parent (ChildWorkflowExecutionStarted).
 *   When the child run closes, the commit that closes it tells the parent, which records
 *   ChildWorkflowExecution{Completed,Failed,Canceled,TimedOut,Terminated}. A parent that
 *   closes applies each open child's parent close policy (TERMINATE by default).
 *   SignalExternalWorkflowExecution works the same way: initiated, delivered, answered.
 *
 *   Crash safety. The messages are commit effects, not transfer tasks: a crash between a
 *   commit and its message loses the message. Not the operation: as Temporal does with its
 *   transfer tasks, it is delivered at least once and the receivers take a repeat as one,
 *   without a store write of its own, because what a message carries is already durable in
 *   its sender's history, which shows it pending until answered: a child initiated and not
 *   started or not closed (run->children), an external signal or cancel request without
 *   its result (run->xpending), a child run's parent (whose close policy may yet apply).
 *   - Recovery activates every run with such an operation (wf_xwf_pending). An awake run
 *     is activated anyway; a sleeping one says so in field 10 of its executions.state
 *     (wf_state.c pack_state), written with the row that records the sleep, so it costs no
 *     statement of its own (rows from before read as 0).
 *   - Recovery's GT_MSG_ACTIVATE makes the loaded actor send again (wf_xwf_resend), after
 *     the messages that waited for its load, what is durable and unanswered: the start of a
 *     child not started (the same Initiated attributes); WFX_CHILD_CHECK to a started
 *     child, whose actor answers with the close event if its run closed; the signal or
 *     cancel request; WFX_PARENT_CHECK from a child run to its parent's run, which applies
 *     its close policy again if it closed with the child open. Only a crash loses a
 *     message (a passivated actor gets its messages redelivered), and every actor after a
 *     crash is new, so resending at recovery's activation only is enough; a parent woken
 *     from passivation does not make its children load.
 *   - Receivers are idempotent. The child's actor answers a start it already made (its run
 *     names the parent run and initiated event id: child_run_of) with that run, and with
 *     its close when it closed, instead of ALREADY_EXISTS. The parent ignores a start or a
 *     close it recorded (started_seen, close_seen: set at emit, so also while the event is
 *     buffered), and a close before the start (the child sends them in that order, again
 *     at a resend). An external signal carries a request id derived from the sender's run
 *     and initiated event id (signal_request_id), which the target remembers with its
 *     WorkflowExecutionSignaled and answers as delivered. A cancel request, termination or
 *     cancellation of a run already asked or closed changes nothing. The sender records one
 *     answer per initiated event (xpending.answered).
 *   - A check names the run it asks about: WFX_PARENT_CHECK the parent's run, WFX_CHILD_CHECK
 *     the child's (its first run, from ChildWorkflowExecutionStarted). When that run is
 *     not in memory because it is no longer the current one (a parent that continued as
 *     new; a child whose workflow id a newer run took), the actor loads it first, as it
 *     does for a request naming an older run (wf_xmsg_older_run, workflow.c); a child
 *     run that continued has the rest of its chain loaded the same way, run by run, up to
 *     the last, which answers.
 *   - A run deleted while it ran (wf_delete.c) takes its history in the commit that
 *     terminates it, so nothing is left to send its messages again: the checks make up for
 *     it. A WFX_CHILD_CHECK whose child run the store lacks answers WFX_CHILD_CLOSED with a
 *     WorkflowExecutionTerminated (answer_child_deleted); a WFX_PARENT_CHECK whose parent
 *     run it lacks answers WFX_PARENT_GONE, and the child applies the ParentClosePolicy
 *     its start carried (run->parent_close_policy, kept in executions.state field 12).
 *   Limits: the target recognizes a repeated signal among its run's signals (a run it
 *   continued as new into does not); a cancel request sent again to a target that closed
 *   since is recorded as failed (not found) though the first one reached it; start-up
 *   loads every running run that waits on another workflow, every child run among them
 *   but those started with ParentClosePolicy ABANDON (awaits_parent_policy), and a load
 *   writes the executions row once (loaded()); a commit reported failed whose write still
 *   landed loses its messages until the next start (or stop: a stopping server drops what
 *   it cannot send, and the next start's recovery sends it again).
 *   Tests: tests/unit/history_xwf_test.c drops messages after their commit
 *   (gt__wf_xmsg_drop) and restarts the server on the same file.
 *
 * THREADS: the workflow actor's home thread (wf_xsend: any; the test hooks: any, relaxed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/frontend/namespaces.h"
#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

typedef Temporal__Api__History__V1__StartChildWorkflowExecutionInitiatedEventAttributes init_attr_t;
typedef Temporal__Api__Command__V1__StartChildWorkflowExecutionCommandAttributes child_cmd_t;
typedef Temporal__Api__History__V1__SignalExternalWorkflowExecutionInitiatedEventAttributes sig_attr_t;

#define POLICY(x) TEMPORAL__API__ENUMS__V1__PARENT_CLOSE_POLICY__PARENT_CLOSE_POLICY_##x

/* ---- messages ---- */

static void xmsg_dtor(gt_msg_t *m) { wf_xmsg_free((wf_xmsg_t *)m); }

wf_xmsg_t *wf_xmsg_new(wf_xop_t op, const char *to_ns, const char *to_wf, const char *to_run,
                       workflow_t *from, const char *from_run) {
  wf_xmsg_t *m = calloc(1, sizeof(*m));
  if (!m)
    return NULL;
  m->hdr.type = GT_MSG_XWF;
  m->hdr.dtor = xmsg_dtor;
  m->op = op;
  snprintf(m->to_ns_id, sizeof(m->to_ns_id), "%s", to_ns);
  snprintf(m->to_run_id, sizeof(m->to_run_id), "%s", to_run ? to_run : "");
  m->to_workflow_id = strdup(to_wf);
  snprintf(m->from_ns_id, sizeof(m->from_ns_id), "%s", from->ns_id);
  m->from_workflow_id = strdup(from->workflow_id);
  snprintf(m->from_run_id, sizeof(m->from_run_id), "%s", from_run ? from_run : "");
  if (!m->to_workflow_id || !m->from_workflow_id) {
    wf_xmsg_free(m);
    return NULL;
  }
  return m;
}

void wf_xmsg_set_dtor(wf_xmsg_t *m) { m->hdr.dtor = xmsg_dtor; }

void wf_xmsg_free(wf_xmsg_t *m) {
  if (!m)
    return;
  free(m->to_workflow_id);
  free(m->from_workflow_id);
  free(m->payload);
  free(m);
}

static void set_payload(wf_xmsg_t *m, const ProtobufCMessage *pm) {
  size_t n = protobuf_c_message_get_packed_size(pm);
  m->payload = malloc(n ? n : 1);
  if (m->payload)
    m->len = protobuf_c_message_pack(pm, m->payload);
}

wf_xmsg_t *wf_initiated_msg(workflow_t *wf, const wf_run_t *run, const pb_event_t *ev,
                            int64_t id) {
  wf_xmsg_t *m = NULL;
  const pb_wfexec_t *ex;
  switch (ev->attributes_case) {
  case PB_ATTR(START_CHILD_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES): {
    const init_attr_t *a = ev->start_child_workflow_execution_initiated_event_attributes;
    m = wf_xmsg_new(WFX_START_CHILD, wf->ns_id, a->workflow_id, NULL, wf, run->run_id);
    if (m)
      set_payload(m, &a->base);
    break;
  }
  case PB_ATTR(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES): {
    const sig_attr_t *a = ev->signal_external_workflow_execution_initiated_event_attributes;
    if ((ex = a->workflow_execution) != NULL && ex->workflow_id)
      m = wf_xmsg_new(WFX_SIGNAL, wf->ns_id, ex->workflow_id, ex->run_id, wf, run->run_id);
    if (m)
      set_payload(m, &a->base);
    break;
  }
  case PB_ATTR(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES):
    ex = ev->request_cancel_external_workflow_execution_initiated_event_attributes
             ->workflow_execution;
    if (ex && ex->workflow_id)
      m = wf_xmsg_new(WFX_CANCEL_EXTERNAL, wf->ns_id, ex->workflow_id, ex->run_id, wf,
                      run->run_id);
    break;
  default:
    break;
  }
  if (m)
    m->initiated_id = id;
  return m;
}

void wf_xsend(gt_server_t *srv, wf_xmsg_t *m) {
  char key[GT_ACTOR_KEY_MAX];
  size_t nl = strlen(m->to_ns_id), wl = strlen(m->to_workflow_id);
  if (nl + 1 + wl > sizeof(key)) {
    wf_xmsg_free(m);
    return;
  }
  memcpy(key, m->to_ns_id, nl);
  key[nl] = 0;
  memcpy(key + nl + 1, m->to_workflow_id, wl);
  if (gt_actor_send_key(srv->rt, &gt_workflow_actor_type, key, nl + 1 + wl, srv, &m->hdr) != 0)
    wf_xmsg_free(m);
}

/* ---- mutable state ---- */

static wf_child_t *find_child(wf_run_t *run, int64_t initiated_id) {
  for (size_t i = 0; i < run->n_children; i++)
    if (run->children[i].initiated_id == initiated_id)
      return &run->children[i];
  return NULL;
}

static void remove_child(wf_run_t *run, int64_t initiated_id) {
  wf_child_t *c = find_child(run, initiated_id);
  if (!c)
    return;
  free(c->workflow_id);
  free(c->workflow_type);
  *c = run->children[--run->n_children];
}

void wf_children_free(wf_run_t *run) {
  for (size_t i = 0; i < run->n_children; i++) {
    free(run->children[i].workflow_id);
    free(run->children[i].workflow_type);
  }
  free(run->children);
  free(run->xpending);
  free(run->parent_workflow_id);
}

static wf_xpending_t *find_xpending(wf_run_t *run, int64_t initiated_id) {
  for (size_t i = 0; i < run->n_xpending; i++)
    if (run->xpending[i].initiated_id == initiated_id)
      return &run->xpending[i];
  return NULL;
}

static void add_xpending(wf_run_t *run, int64_t initiated_id) {
  if (run->n_xpending == run->cap_xpending) {
    size_t cap = run->cap_xpending ? run->cap_xpending * 2 : 4;
    wf_xpending_t *v = realloc(run->xpending, cap * sizeof(*v));
    if (!v)
      return;
    run->xpending = v;
    run->cap_xpending = cap;
  }
  run->xpending[run->n_xpending++] = (wf_xpending_t){.initiated_id = initiated_id};
}

static void remove_xpending(wf_run_t *run, int64_t initiated_id) {
  wf_xpending_t *x = find_xpending(run, initiated_id);
  if (x)
    *x = run->xpending[--run->n_xpending];
}

/* Whether a child run waits on its parent's close: unless it knows it is abandoned, the
 * parent close policy may yet apply to it. */
static int awaits_parent_policy(const wf_run_t *run) {
  return run->parent_workflow_id && run->parent_close_policy != POLICY(ABANDON);
}

int wf_xwf_pending(const wf_run_t *run) {
  return wf_running(run) && (run->n_children || run->n_xpending || awaits_parent_policy(run));
}

void wf_child_apply(wf_run_t *run, const pb_event_t *ev) {
  switch (ev->attributes_case) {
  case PB_ATTR(WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES): {
    const Temporal__Api__History__V1__WorkflowExecutionStartedEventAttributes *a =
        ev->workflow_execution_started_event_attributes;
    if (a->parent_workflow_execution && *a->parent_workflow_execution->workflow_id) {
      snprintf(run->parent_ns_id, sizeof(run->parent_ns_id), "%s", a->parent_workflow_namespace_id);
      free(run->parent_workflow_id);
      run->parent_workflow_id = strdup(a->parent_workflow_execution->workflow_id);
      snprintf(run->parent_run_id, sizeof(run->parent_run_id), "%s",
               a->parent_workflow_execution->run_id);
      run->parent_initiated_id = a->parent_initiated_event_id;
    }
    break;
  }
  case PB_ATTR(START_CHILD_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES): {
    const init_attr_t *a = ev->start_child_workflow_execution_initiated_event_attributes;
    if (run->n_children == run->cap_children) {
      size_t cap = run->cap_children ? run->cap_children * 2 : 4;
      wf_child_t *v = realloc(run->children, cap * sizeof(*v));
      if (!v)
        return;
      run->children = v;
      run->cap_children = cap;
    }
    wf_child_t *c = &run->children[run->n_children++];
    memset(c, 0, sizeof(*c));
    c->initiated_id = ev->event_id;
    c->workflow_id = gt_strdup0(a->workflow_id);
    c->workflow_type = gt_strdup0(a->workflow_type ? a->workflow_type->name : "");
    c->parent_close_policy = a->parent_close_policy;
    break;
  }
  case PB_ATTR(CHILD_WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES): {
    const Temporal__Api__History__V1__ChildWorkflowExecutionStartedEventAttributes *a =
        ev->child_workflow_execution_started_event_attributes;
    wf_child_t *c = find_child(run, a->initiated_event_id);
    if (c) {
      c->started_id = ev->event_id;
      c->started_seen = 1;
      snprintf(c->run_id, sizeof(c->run_id), "%s",
               a->workflow_execution ? a->workflow_execution->run_id : "");
    }
    break;
  }
  case PB_ATTR(START_CHILD_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES):
    remove_child(run, ev->start_child_workflow_execution_failed_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(CHILD_WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES):
    remove_child(run, ev->child_workflow_execution_completed_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(CHILD_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES):
    remove_child(run, ev->child_workflow_execution_failed_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(CHILD_WORKFLOW_EXECUTION_CANCELED_EVENT_ATTRIBUTES):
    remove_child(run, ev->child_workflow_execution_canceled_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(CHILD_WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES):
    remove_child(run, ev->child_workflow_execution_timed_out_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(CHILD_WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES):
    remove_child(run,
                 ev->child_workflow_execution_terminated_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES):
  case PB_ATTR(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES):
    add_xpending(run, ev->event_id);
    break;
  case PB_ATTR(EXTERNAL_WORKFLOW_EXECUTION_SIGNALED_EVENT_ATTRIBUTES):
    remove_xpending(run,
                    ev->external_workflow_execution_signaled_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES):
    remove_xpending(
        run, ev->signal_external_workflow_execution_failed_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED_EVENT_ATTRIBUTES):
    remove_xpending(
        run,
        ev->external_workflow_execution_cancel_requested_event_attributes->initiated_event_id);
    break;
  case PB_ATTR(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES):
    remove_xpending(
        run,
        ev->request_cancel_external_workflow_execution_failed_event_attributes
            ->initiated_event_id);
    break;
  default:
    break;
  }
}

/* ---- commands ---- */

const char *wf_check_start_child(wf_run_t *run, const pb_command_t *c) {
  const child_cmd_t *a = c->start_child_workflow_execution_command_attributes;
  if (!a)
    return "StartChildWorkflowExecutionCommandAttributes is not set on command.";
  if (!a->workflow_id || !*a->workflow_id)
    return "Required field WorkflowId is not set on command.";
  if (!a->workflow_type || !a->workflow_type->name || !*a->workflow_type->name)
    return "Required field WorkflowType is not set on command.";
  for (size_t i = 0; i < run->n_children; i++)
    if (strcmp(run->children[i].workflow_id, a->workflow_id) == 0)
      return "Child workflow with the same WorkflowId is already pending.";
  return NULL;
}

void wf_cmd_start_child(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                        int64_t completed_id) {
  const child_cmd_t *cmd = c->start_child_workflow_execution_command_attributes;
  gt_ns_info_t ns = {0};
  gt_namespaces_get_by_id(wf->srv->namespaces, wf->ns_id, &ns);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  init_attr_t a = TEMPORAL__API__HISTORY__V1__START_CHILD_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES__INIT;
  pb_taskqueue_t tq = TEMPORAL__API__TASKQUEUE__V1__TASK_QUEUE__INIT;
  a.namespace_ = ns.name;
  a.namespace_id = wf->ns_id;
  a.workflow_id = cmd->workflow_id;
  a.workflow_type = cmd->workflow_type;
  tq.name = cmd->task_queue && *cmd->task_queue->name ? cmd->task_queue->name : run->task_queue;
  tq.kind = TEMPORAL__API__ENUMS__V1__TASK_QUEUE_KIND__TASK_QUEUE_KIND_NORMAL;
  a.task_queue = &tq;
  a.input = cmd->input;
  a.workflow_execution_timeout = cmd->workflow_execution_timeout;
  a.workflow_run_timeout = cmd->workflow_run_timeout;
  a.workflow_task_timeout = cmd->workflow_task_timeout;
  a.parent_close_policy = cmd->parent_close_policy ? cmd->parent_close_policy
                                                   : POLICY(TERMINATE);
  a.workflow_task_completed_event_id = completed_id;
  a.workflow_id_reuse_policy = cmd->workflow_id_reuse_policy;
  a.retry_policy = cmd->retry_policy;
  a.cron_schedule = cmd->cron_schedule;
  a.header = cmd->header;
  a.memo = cmd->memo;
  a.search_attributes = cmd->search_attributes;
  ev.event_type = PB_EV(START_CHILD_WORKFLOW_EXECUTION_INITIATED);
  ev.attributes_case = PB_ATTR(START_CHILD_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES);
  ev.start_child_workflow_execution_initiated_event_attributes = &a;
  int64_t id = wf_emit(wf, run, &ev, 0);
  wf_xmsg_t *m = id > 0 ? wf_initiated_msg(wf, run, &ev, id) : NULL;
  if (m)
    wf_txn_xmsg(t, m);
}

const char *wf_check_signal_external(const pb_command_t *c) {
  const Temporal__Api__Command__V1__SignalExternalWorkflowExecutionCommandAttributes *a =
      c->signal_external_workflow_execution_command_attributes;
  if (!a || !a->execution || !a->execution->workflow_id || !*a->execution->workflow_id)
    return "WorkflowId is not set on SignalExternalWorkflowExecutionCommand.";
  if (!a->signal_name || !*a->signal_name)
    return "SignalName is not set on SignalExternalWorkflowExecutionCommand.";
  return NULL;
}

void wf_cmd_signal_external(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                            int64_t completed_id) {
  const Temporal__Api__Command__V1__SignalExternalWorkflowExecutionCommandAttributes *cmd =
      c->signal_external_workflow_execution_command_attributes;
  gt_ns_info_t ns = {0};
  gt_namespaces_get_by_id(wf->srv->namespaces, wf->ns_id, &ns);
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  sig_attr_t a = TEMPORAL__API__HISTORY__V1__SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES__INIT;
  a.workflow_task_completed_event_id = completed_id;
  a.namespace_ = ns.name;
  a.namespace_id = wf->ns_id;
  a.workflow_execution = cmd->execution;
  a.signal_name = cmd->signal_name;
  a.input = cmd->input;
  a.child_workflow_only = cmd->child_workflow_only;
  a.header = cmd->header;
  ev.event_type = PB_EV(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED);
  ev.attributes_case = PB_ATTR(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES);
  ev.signal_external_workflow_execution_initiated_event_attributes = &a;
  int64_t id = wf_emit(wf, run, &ev, 0);
  wf_xmsg_t *m = id > 0 ? wf_initiated_msg(wf, run, &ev, id) : NULL;
  if (m)
    wf_txn_xmsg(t, m);
}

/* ---- commit hooks ---- */

/* The parent close policy's message for child c of the closed run (to the child's run
 * to_run), or NULL: ABANDON, or ENOMEM. */
static wf_xmsg_t *policy_msg(workflow_t *wf, wf_run_t *run, const wf_child_t *c,
                             const char *to_run) {
  wf_xop_t op = c->parent_close_policy == POLICY(REQUEST_CANCEL) ? WFX_CANCEL
                : c->parent_close_policy == POLICY(ABANDON)      ? 0
                                                                 : WFX_TERMINATE;
  return op ? wf_xmsg_new(op, wf->ns_id, c->workflow_id, to_run, wf, run->run_id) : NULL;
}

/* WFX_CHILD_CLOSED for the parent of a closed child run (its payload: the close event,
 * the run's last), or NULL (ENOMEM). */
static wf_xmsg_t *child_closed_msg(workflow_t *wf, wf_run_t *run) {
  wf_xmsg_t *m = wf_xmsg_new(WFX_CHILD_CLOSED, run->parent_ns_id, run->parent_workflow_id,
                             run->parent_run_id, wf, run->run_id);
  if (!m)
    return NULL;
  m->initiated_id = run->parent_initiated_id;
  const uint8_t *p;
  wf_event_bytes(run, run->n_ev - 1, &p, &m->len);
  m->payload = malloc(m->len ? m->len : 1);
  if (!m->payload) {
    wf_xmsg_free(m);
    return NULL;
  }
  memcpy(m->payload, p, m->len);
  return m;
}

void wf_child_on_commit(workflow_t *wf, wf_run_t *run, wf_txn_t *t) {
  if (wf_running(run) || run->parent_notified)
    return;
  run->parent_notified = 1;
  /* the parent learns how its child ended (a run with a next one, continued, retried or a
   * cron's, keeps the parent waiting) */
  if (run->parent_workflow_id && !run->next_run_id[0]) {
    wf_xmsg_t *m = child_closed_msg(wf, run);
    if (m)
      wf_txn_xmsg(t, m);
  }
  /* parent close policy for children still open */
  for (size_t i = 0; i < run->n_children; i++) {
    wf_child_t *c = &run->children[i];
    wf_xmsg_t *m = policy_msg(wf, run, c, c->run_id);
    if (m)
      wf_txn_xmsg(t, m);
  }
}

/* ---- receiving ---- */

static void reply_x(workflow_t *wf, wf_xmsg_t *in, wf_xop_t op, const char *run_id, int cause,
                    wf_txn_t *t) {
  wf_xmsg_t *m = wf_xmsg_new(op, in->from_ns_id, in->from_workflow_id, in->from_run_id, wf,
                             run_id);
  if (!m)
    return;
  m->initiated_id = in->initiated_id;
  m->cause = cause;
  if (t)
    wf_txn_xmsg(t, m);
  else
    wf_xsend(wf->srv, m);
}

/* The run in memory that the parent's message m (a start, a check) started, or NULL. A
 * continued child's runs all name the parent: the chain's last is wanted (running, or
 * closed with no next run); when it is not in memory, the run whose next run is not
 * (the frontier: wf_xmsg_older_run loads that next one). */
static wf_run_t *child_run_of(workflow_t *wf, const wf_xmsg_t *m) {
  wf_run_t *frontier = NULL;
  for (wf_run_t *r = wf->runs; r; r = r->next) {
    if (!r->parent_workflow_id || r->parent_initiated_id != m->initiated_id ||
        strcmp(r->parent_workflow_id, m->from_workflow_id) != 0 ||
        strcmp(r->parent_run_id, m->from_run_id) != 0 ||
        strcmp(r->parent_ns_id, m->from_ns_id) != 0)
      continue;
    if (wf_running(r) || !r->next_run_id[0])
      return r;
    if (!frontier && !wf_find_run(wf, r->next_run_id))
      frontier = r;
  }
  return frontier;
}

const char *wf_xmsg_older_run(workflow_t *wf, const wf_xmsg_t *m) {
  const char *rid = "";
  if (m->op == WFX_PARENT_CHECK) { /* the parent's run, closed maybe by a continue-as-new */
    rid = m->to_run_id;
  } else if (m->op == WFX_CHILD_CHECK) {
    /* the child's run when a newer run took its id; then, run by run, the rest of its
     * chain up to the last (each load makes the next one the frontier) */
    wf_run_t *mine = child_run_of(wf, m);
    rid = !mine ? m->to_run_id : !wf_running(mine) ? mine->next_run_id : "";
  }
  return *rid && !wf_find_run(wf, rid) ? rid : "";
}

/* Answers a parent's WFX_CHILD_CHECK for a child run the store no longer has: deleted
 * while it ran, which terminated it first (wf_delete.c) and took its history with it, so
 * the parent hears WorkflowExecutionTerminated, as the lost notice would have said. */
static void answer_child_deleted(workflow_t *wf, const wf_xmsg_t *m) {
  Temporal__Api__History__V1__WorkflowExecutionTerminatedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES__INIT;
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  a.reason = WF_DELETE_REASON;
  a.identity = WF_IDENTITY_HISTORY_SERVICE;
  ev.event_type = PB_EV(WORKFLOW_EXECUTION_TERMINATED);
  ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES);
  ev.workflow_execution_terminated_event_attributes = &a;
  wf_xmsg_t *x = wf_xmsg_new(WFX_CHILD_CLOSED, m->from_ns_id, m->from_workflow_id,
                             m->from_run_id, wf, m->to_run_id);
  if (!x)
    return;
  x->initiated_id = m->initiated_id;
  x->len = protobuf_c_message_get_packed_size(&ev.base);
  x->payload = malloc(x->len ? x->len : 1);
  if (!x->payload) {
    wf_xmsg_free(x);
    return;
  }
  protobuf_c_message_pack(&ev.base, x->payload);
  wf_xsend(wf->srv, x);
}

/* A parent asks again (recovery): it hears again what is durable of its child. The
 * start (`started`) and the close of a transaction still in flight are told by that
 * transaction's own effects. */
static void answer_again(workflow_t *wf, const wf_xmsg_t *m, wf_run_t *run, int started) {
  if (started && run->committed_ev > 0)
    reply_x(wf, (wf_xmsg_t *)m, WFX_CHILD_STARTED, run->first_run_id, 0, NULL);
  if (!wf_running(run) && !run->next_run_id[0] && run->committed_ev == run->n_ev) {
    wf_xmsg_t *c = child_closed_msg(wf, run);
    if (c)
      wf_xsend(wf->srv, c);
  }
}

static void on_start_child(workflow_t *wf, wf_xmsg_t *m) {
  wf_run_t *mine = child_run_of(wf, m);
  if (mine) { /* a start sent again: this run is its child (started, maybe closed) */
    answer_again(wf, m, mine, 1);
    return;
  }
  init_attr_t *a = (init_attr_t *)protobuf_c_message_unpack(
      &temporal__api__history__v1__start_child_workflow_execution_initiated_event_attributes__descriptor,
      NULL, m->len, m->payload);
  if (!a)
    return;
  if (wf_running(wf->runs)) {
    reply_x(wf, m, WFX_CHILD_START_FAILED, "",
            TEMPORAL__API__ENUMS__V1__START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE__START_CHILD_WORKFLOW_EXECUTION_FAILED_CAUSE_WORKFLOW_ALREADY_EXISTS,
            NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return;
  }
  start_params_t p = {
      .workflow_type = a->workflow_type, .task_queue = a->task_queue, .input = a->input,
      .exec_timeout = a->workflow_execution_timeout, .run_timeout = a->workflow_run_timeout,
      .task_timeout = a->workflow_task_timeout, .identity = "", .request_id = "",
      .retry_policy = a->retry_policy, .memo = a->memo,
      .search_attributes = a->search_attributes, .header = a->header,
      .parent_ns_id = m->from_ns_id, .parent_workflow_id = m->from_workflow_id,
      .parent_run_id = m->from_run_id, .parent_initiated_id = m->initiated_id,
      /* as Temporal: unspecified is TERMINATE */
      .parent_close_policy = a->parent_close_policy ? (int)a->parent_close_policy
                                                    : POLICY(TERMINATE)};
  wf_txn_t *t = NULL;
  wf_run_t *run = wf_create_run(wf, &p, &t);
  if (run) {
    reply_x(wf, m, WFX_CHILD_STARTED, run->run_id, 0, t);
    wf_txn_commit(t);
    wf_drop_old_runs(wf);
  }
  protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* The run a reply is for, if it still runs. */
static wf_run_t *target_run(workflow_t *wf, const wf_xmsg_t *m) {
  wf_run_t *run = wf_find_run(wf, m->to_run_id);
  return wf_running(run) ? run : NULL;
}

static void emit_child_event(workflow_t *wf, wf_run_t *run, wf_xmsg_t *m) {
  wf_child_t *c = find_child(run, m->initiated_id);
  /* at least once: a repeat of what is recorded (perhaps buffered) is ignored; a close
   * before the start is recorded is too (the child sends its start first; the recovery's
   * resend is answered by both again) */
  if (!c || c->close_seen)
    return;
  if (m->op == WFX_CHILD_CLOSED ? !c->started_seen : c->started_seen)
    return;
  gt_ns_info_t ns = {0};
  gt_namespaces_get_by_id(wf->srv->namespaces, wf->ns_id, &ns);
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  pb_wftype_t wt = TEMPORAL__API__COMMON__V1__WORKFLOW_TYPE__INIT;
  ex.workflow_id = c->workflow_id;
  ex.run_id = m->op == WFX_CHILD_CLOSED ? c->run_id : m->from_run_id;
  wt.name = c->workflow_type;
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  pb_event_t *close = NULL;
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (!t)
    return;
  if (m->op == WFX_CHILD_STARTED) {
    Temporal__Api__History__V1__ChildWorkflowExecutionStartedEventAttributes a =
        TEMPORAL__API__HISTORY__V1__CHILD_WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES__INIT;
    a.namespace_ = ns.name;
    a.namespace_id = wf->ns_id;
    a.initiated_event_id = c->initiated_id;
    a.workflow_execution = &ex;
    a.workflow_type = &wt;
    ev.event_type = PB_EV(CHILD_WORKFLOW_EXECUTION_STARTED);
    ev.attributes_case = PB_ATTR(CHILD_WORKFLOW_EXECUTION_STARTED_EVENT_ATTRIBUTES);
    ev.child_workflow_execution_started_event_attributes = &a;
    c->started_seen = 1;
    snprintf(c->run_id, sizeof(c->run_id), "%s", m->from_run_id);
    wf_emit(wf, run, &ev, 1);
  } else if (m->op == WFX_CHILD_START_FAILED) {
    Temporal__Api__History__V1__StartChildWorkflowExecutionFailedEventAttributes a =
        TEMPORAL__API__HISTORY__V1__START_CHILD_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES__INIT;
    a.namespace_ = ns.name;
    a.namespace_id = wf->ns_id;
    a.workflow_id = c->workflow_id;
    a.workflow_type = &wt;
    a.cause = m->cause;
    a.initiated_event_id = c->initiated_id;
    ev.event_type = PB_EV(START_CHILD_WORKFLOW_EXECUTION_FAILED);
    ev.attributes_case = PB_ATTR(START_CHILD_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES);
    ev.start_child_workflow_execution_failed_event_attributes = &a;
    c->close_seen = 1;
    wf_emit(wf, run, &ev, 1);
  } else {
    close = (pb_event_t *)protobuf_c_message_unpack(
        &temporal__api__history__v1__history_event__descriptor, NULL, m->len, m->payload);
    if (!close) {
      wf_txn_commit(t);
      return;
    }
    /* every ChildWorkflowExecution* close event shares these fields */
    Temporal__Api__History__V1__ChildWorkflowExecutionCompletedEventAttributes done =
        TEMPORAL__API__HISTORY__V1__CHILD_WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES__INIT;
    Temporal__Api__History__V1__ChildWorkflowExecutionFailedEventAttributes failed =
        TEMPORAL__API__HISTORY__V1__CHILD_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES__INIT;
    Temporal__Api__History__V1__ChildWorkflowExecutionCanceledEventAttributes canceled =
        TEMPORAL__API__HISTORY__V1__CHILD_WORKFLOW_EXECUTION_CANCELED_EVENT_ATTRIBUTES__INIT;
    Temporal__Api__History__V1__ChildWorkflowExecutionTimedOutEventAttributes timedout =
        TEMPORAL__API__HISTORY__V1__CHILD_WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES__INIT;
    Temporal__Api__History__V1__ChildWorkflowExecutionTerminatedEventAttributes terminated =
        TEMPORAL__API__HISTORY__V1__CHILD_WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES__INIT;
#define CHILD_COMMON(x)                                                         \
  do {                                                                          \
    (x).namespace_ = ns.name;                                                   \
    (x).namespace_id = wf->ns_id;                                               \
    (x).workflow_execution = &ex;                                               \
    (x).workflow_type = &wt;                                                    \
    (x).initiated_event_id = c->initiated_id;                                   \
    (x).started_event_id = c->started_id;                                       \
  } while (0)
    switch (close->attributes_case) {
    case PB_ATTR(WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES):
      CHILD_COMMON(done);
      done.result = close->workflow_execution_completed_event_attributes->result;
      ev.event_type = PB_EV(CHILD_WORKFLOW_EXECUTION_COMPLETED);
      ev.attributes_case = PB_ATTR(CHILD_WORKFLOW_EXECUTION_COMPLETED_EVENT_ATTRIBUTES);
      ev.child_workflow_execution_completed_event_attributes = &done;
      break;
    case PB_ATTR(WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES):
      CHILD_COMMON(failed);
      failed.failure = close->workflow_execution_failed_event_attributes->failure;
      failed.retry_state = close->workflow_execution_failed_event_attributes->retry_state;
      ev.event_type = PB_EV(CHILD_WORKFLOW_EXECUTION_FAILED);
      ev.attributes_case = PB_ATTR(CHILD_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES);
      ev.child_workflow_execution_failed_event_attributes = &failed;
      break;
    case PB_ATTR(WORKFLOW_EXECUTION_CANCELED_EVENT_ATTRIBUTES):
      CHILD_COMMON(canceled);
      canceled.details = close->workflow_execution_canceled_event_attributes->details;
      ev.event_type = PB_EV(CHILD_WORKFLOW_EXECUTION_CANCELED);
      ev.attributes_case = PB_ATTR(CHILD_WORKFLOW_EXECUTION_CANCELED_EVENT_ATTRIBUTES);
      ev.child_workflow_execution_canceled_event_attributes = &canceled;
      break;
    case PB_ATTR(WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES):
      CHILD_COMMON(timedout);
      timedout.retry_state = close->workflow_execution_timed_out_event_attributes->retry_state;
      ev.event_type = PB_EV(CHILD_WORKFLOW_EXECUTION_TIMED_OUT);
      ev.attributes_case = PB_ATTR(CHILD_WORKFLOW_EXECUTION_TIMED_OUT_EVENT_ATTRIBUTES);
      ev.child_workflow_execution_timed_out_event_attributes = &timedout;
      break;
    default:
      CHILD_COMMON(terminated);
      ev.event_type = PB_EV(CHILD_WORKFLOW_EXECUTION_TERMINATED);
      ev.attributes_case = PB_ATTR(CHILD_WORKFLOW_EXECUTION_TERMINATED_EVENT_ATTRIBUTES);
      ev.child_workflow_execution_terminated_event_attributes = &terminated;
      break;
    }
#undef CHILD_COMMON
    c->close_seen = 1; /* c may go with the event's apply */
    wf_emit(wf, run, &ev, 1);
    protobuf_c_message_free_unpacked(&close->base, NULL);
  }
  wf_need_wft(wf, run, t);
  wf_txn_commit(t);
}

/* The request id of an external signal, the same at every send of it (the first and the
 * recovery's): a UUID-shaped 128-bit hash of the initiating run and event. The target
 * remembers it in its WorkflowExecutionSignaled (wf_note_signal_id) and takes a repeat
 * as delivered. */
static void signal_request_id(const wf_xmsg_t *m, char out[37]) {
  uint64_t h1 = 14695981039346656037ULL, h2 = 0x6a09e667f3bcc909ULL;
  char id[24];
  int n = snprintf(id, sizeof(id), "%lld", (long long)m->initiated_id);
  const char *parts[] = {m->from_ns_id, m->from_workflow_id, m->from_run_id, id};
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
    size_t len = i == 3 ? (size_t)n : strlen(parts[i]) + 1; /* the NUL separates */
    for (size_t k = 0; k < len; k++) {
      uint8_t b = (uint8_t)parts[i][k];
      h1 = (h1 ^ b) * 1099511628211ULL;        /* FNV-1a */
      h2 = (h2 ^ b) * 0x9E3779B97F4A7C15ULL;   /* a second, unrelated multiplier */
      h2 ^= h2 >> 29;
    }
  }
  snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(h1 >> 32),
           (unsigned)(h1 >> 16) & 0xffff, (unsigned)h1 & 0xffff, (unsigned)(h2 >> 48),
           (unsigned long long)(h2 & 0xffffffffffffULL));
}

static void on_signal(workflow_t *wf, wf_xmsg_t *m) {
  sig_attr_t *a = (sig_attr_t *)protobuf_c_message_unpack(
      &temporal__api__history__v1__signal_external_workflow_execution_initiated_event_attributes__descriptor,
      NULL, m->len, m->payload);
  wf_run_t *run = wf_find_run(wf, m->to_run_id);
  char rid[37];
  signal_request_id(m, rid);
  if (a && run && wf_seen_signal_id(run, rid)) { /* sent again: delivered already */
    reply_x(wf, m, WFX_SIGNAL_RESULT, run->run_id, 0, NULL);
    protobuf_c_message_free_unpacked(&a->base, NULL);
    return;
  }
  if (!a || !wf_running(run)) {
    reply_x(wf, m, WFX_SIGNAL_RESULT, "",
            TEMPORAL__API__ENUMS__V1__SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE__SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
            NULL);
    if (a)
      protobuf_c_message_free_unpacked(&a->base, NULL);
    return;
  }
  wf_txn_t *t = wf_txn_begin(wf, run);
  if (t) {
    wf_note_signal_id(run, rid); /* before the flush applies the event */
    wf_emit_signal(wf, run, a->signal_name, a->input, "", a->header, rid);
    wf_need_wft_for_signal(wf, run, t);
    reply_x(wf, m, WFX_SIGNAL_RESULT, run->run_id, 0, t);
    wf_txn_commit(t);
  }
  protobuf_c_message_free_unpacked(&a->base, NULL);
}

/* The unanswered external signal or cancel request an answer is for, or NULL (a repeat,
 * or not this run's). Marked answered: the caller records the answer. */
static wf_xpending_t *take_xpending(wf_run_t *run, const wf_xmsg_t *m) {
  wf_xpending_t *x = run ? find_xpending(run, m->initiated_id) : NULL;
  if (!x || x->answered)
    return NULL;
  x->answered = 1;
  return x;
}

static void on_signal_result(workflow_t *wf, wf_xmsg_t *m) {
  wf_run_t *run = target_run(wf, m);
  wf_txn_t *t = take_xpending(run, m) ? wf_txn_begin(wf, run) : NULL;
  if (!t)
    return;
  gt_ns_info_t ns = {0};
  gt_namespaces_get_by_id(wf->srv->namespaces, wf->ns_id, &ns);
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  ex.workflow_id = m->from_workflow_id;
  ex.run_id = m->from_run_id;
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ExternalWorkflowExecutionSignaledEventAttributes ok =
      TEMPORAL__API__HISTORY__V1__EXTERNAL_WORKFLOW_EXECUTION_SIGNALED_EVENT_ATTRIBUTES__INIT;
  Temporal__Api__History__V1__SignalExternalWorkflowExecutionFailedEventAttributes bad =
      TEMPORAL__API__HISTORY__V1__SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES__INIT;
  if (m->cause == 0) {
    ok.initiated_event_id = m->initiated_id;
    ok.namespace_ = ns.name;
    ok.namespace_id = wf->ns_id;
    ok.workflow_execution = &ex;
    ev.event_type = PB_EV(EXTERNAL_WORKFLOW_EXECUTION_SIGNALED);
    ev.attributes_case = PB_ATTR(EXTERNAL_WORKFLOW_EXECUTION_SIGNALED_EVENT_ATTRIBUTES);
    ev.external_workflow_execution_signaled_event_attributes = &ok;
  } else {
    bad.cause = m->cause;
    bad.namespace_ = ns.name;
    bad.namespace_id = wf->ns_id;
    bad.workflow_execution = &ex;
    bad.initiated_event_id = m->initiated_id;
    ev.event_type = PB_EV(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED);
    ev.attributes_case = PB_ATTR(SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES);
    ev.signal_external_workflow_execution_failed_event_attributes = &bad;
  }
  wf_emit(wf, run, &ev, 1);
  wf_need_wft(wf, run, t);
  wf_txn_commit(t);
}

void wf_on_xmsg(workflow_t *wf, wf_xmsg_t *m) {
  switch (m->op) {
  case WFX_START_CHILD:
    on_start_child(wf, m);
    break;
  case WFX_CHILD_STARTED:
  case WFX_CHILD_START_FAILED:
  case WFX_CHILD_CLOSED: {
    wf_run_t *run = target_run(wf, m);
    if (run)
      emit_child_event(wf, run, m);
    break;
  }
  case WFX_SIGNAL:
    on_signal(wf, m);
    break;
  case WFX_SIGNAL_RESULT:
    on_signal_result(wf, m);
    break;
  case WFX_DELETE_RUN:
    wf_on_delete_run(wf, m);
    break;
  case WFX_CHILD_CHECK: {
    wf_run_t *mine = child_run_of(wf, m);
    if (mine)
      answer_again(wf, m, mine, 0);
    else if (wf_run_missing(wf, m->to_run_id))
      answer_child_deleted(wf, m); /* wf_xmsg_older_run's load found no such run */
    break;
  }
  case WFX_PARENT_CHECK: {
    /* a child recovered: if the parent run closed (durably) with it open, the policy's
     * message may be lost: it goes again, to the child's run that asks */
    wf_run_t *run = wf_find_run(wf, m->to_run_id);
    if (!run && wf_run_missing(wf, m->to_run_id)) {
      /* the store has no such run (wf_xmsg_older_run's load): deleted, and with it the
       * policy of its children: the child applies the one it keeps */
      reply_x(wf, m, WFX_PARENT_GONE, m->to_run_id, 0, NULL);
      break;
    }
    wf_child_t *c = run && !wf_running(run) && run->committed_ev == run->n_ev
                        ? find_child(run, m->initiated_id) : NULL;
    wf_xmsg_t *x = c ? policy_msg(wf, run, c, m->from_run_id) : NULL;
    if (x)
      wf_xsend(wf->srv, x);
    break;
  }
  case WFX_CANCEL_EXTERNAL: {
    wf_run_t *run = target_run(wf, m);
    wf_run_t *closed = run ? NULL : wf_find_run(wf, m->to_run_id);
    if (closed && closed->cancel_requested) {
      /* a resend (recovery: the answer was lost) that finds the run closed since: the
       * request was delivered, as the first answer said */
      reply_x(wf, m, WFX_CANCEL_RESULT, closed->run_id, 0, NULL);
      break;
    }
    wf_txn_t *t = run ? wf_txn_begin(wf, run) : NULL;
    if (!t) {
      reply_x(wf, m, WFX_CANCEL_RESULT, "",
              TEMPORAL__API__ENUMS__V1__CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE__CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_CAUSE_EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND,
              NULL);
      break;
    }
    if (!run->cancel_requested) {
      wf_emit_cancel_requested(wf, run, "requested by another workflow", "");
      wf_need_wft(wf, run, t);
    }
    reply_x(wf, m, WFX_CANCEL_RESULT, run->run_id, 0, t);
    wf_txn_commit(t);
    break;
  }
  case WFX_CANCEL_RESULT: {
    wf_run_t *run = target_run(wf, m);
    wf_txn_t *t = take_xpending(run, m) ? wf_txn_begin(wf, run) : NULL;
    if (!t)
      break;
    wf_emit_cancel_external_result(wf, run, m);
    wf_need_wft(wf, run, t);
    wf_txn_commit(t);
    break;
  }
  case WFX_PARENT_GONE: {
    wf_run_t *run = target_run(wf, m);
    int policy = run && run->parent_workflow_id &&
                         strcmp(run->parent_run_id, m->from_run_id) == 0
                     ? run->parent_close_policy : 0;
    if (policy != POLICY(TERMINATE) && policy != POLICY(REQUEST_CANCEL))
      break; /* abandoned, or not known (a row from before field 12): left running */
    m->op = policy == POLICY(TERMINATE) ? WFX_TERMINATE : WFX_CANCEL;
    wf_on_xmsg(wf, m);
    break;
  }
  case WFX_TERMINATE:
  case WFX_CANCEL: {
    wf_run_t *run = target_run(wf, m);
    wf_txn_t *t = run ? wf_txn_begin(wf, run) : NULL;
    if (!t)
      break;
    if (m->op == WFX_TERMINATE) {
      wf_terminate_run(wf, run, "by parent close policy", NULL, "");
    } else if (!run->cancel_requested) {
      wf_emit_cancel_requested(wf, run, "by parent close policy", "");
      wf_need_wft(wf, run, t);
    }
    wf_txn_commit(t);
    break;
  }
  }
}

/* ---- recovery: sending again what may have been lost ---- */

/* Sends again the message of run's initiated event `id` (a child start, an external
 * signal, a cancel request). Returns 1 when one went. */
static int resend_initiated(workflow_t *wf, wf_run_t *run, int64_t id) {
  pb_event_t *ev = wf_event_unpack(run, (size_t)id - 1);
  if (!ev)
    return 0;
  wf_xmsg_t *m = wf_initiated_msg(wf, run, ev, id);
  protobuf_c_message_free_unpacked(&ev->base, NULL);
  if (!m)
    return 0;
  wf_xsend(wf->srv, m);
  return 1;
}

void wf_xwf_resend(workflow_t *wf) {
  wf_run_t *run = wf->runs;
  if (!wf_running(run))
    return;
  int n = 0;
  /* only what is durable: a message of a transaction in flight goes with its effects */
  int64_t durable = (int64_t)run->committed_ev;
  for (size_t i = 0; i < run->n_children; i++) {
    wf_child_t *c = &run->children[i];
    if (c->close_seen || c->initiated_id > durable)
      continue;
    if (!c->started_seen) { /* the child's actor answers a start it made with its run */
      n += resend_initiated(wf, run, c->initiated_id);
      continue;
    }
    /* the child's run, for its actor to load when a newer run took its workflow id */
    wf_xmsg_t *m = wf_xmsg_new(WFX_CHILD_CHECK, wf->ns_id, c->workflow_id,
                               c->run_id[0] ? c->run_id : NULL, wf, run->run_id);
    if (m) {
      m->initiated_id = c->initiated_id;
      wf_xsend(wf->srv, m);
      n++;
    }
  }
  for (size_t i = 0; i < run->n_xpending; i++)
    if (!run->xpending[i].answered && run->xpending[i].initiated_id <= durable)
      n += resend_initiated(wf, run, run->xpending[i].initiated_id);
  if (awaits_parent_policy(run)) { /* a parent closed meanwhile applies its policy again */
    wf_xmsg_t *m = wf_xmsg_new(WFX_PARENT_CHECK, run->parent_ns_id, run->parent_workflow_id,
                               run->parent_run_id, wf, run->run_id);
    if (m) {
      m->initiated_id = run->parent_initiated_id;
      wf_xsend(wf->srv, m);
      n++;
    }
  }
  if (n)
    gt_log_debug("HIST-XWF-RESEND", "workflow %s run %s: %d cross-workflow messages sent "
                 "again after recovery", wf->workflow_id, run->run_id, n);
}
