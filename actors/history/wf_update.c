/*
 * wf_update.c: Workflow Update (UpdateWorkflowExecution, PollWorkflowExecutionUpdate) and
 * the message protocol that carries it inside workflow tasks.
 *
 * DESIGN
 *   An update is admitted in memory (no event: a rejected update must leave no trace), a
 *   workflow task is scheduled if none is pending, and the request travels to the worker as
 *   a protocol Message on that task (`messages`, sequenced after the event before
 *   WorkflowTaskStarted, as Temporal does). The worker answers in
 *   RespondWorkflowTaskCompleted with messages: Acceptance -> WorkflowExecutionUpdateAccepted,
 *   Response -> WorkflowExecutionUpdateCompleted, Rejection -> no event, the outcome is the
 *   failure. Messages named by a PROTOCOL_MESSAGE command are processed at that command's
 *   position; the rest after all commands, in arrival order. Callers wait for the stage they
 *   asked for (ADMITTED, ACCEPTED, COMPLETED) until shortly before their deadline, then get
 *   the stage reached (the SDK then polls with PollWorkflowExecutionUpdate).
 *   Accepted and completed updates are rebuilt from their events on replay; an update only
 *   admitted when the server stops is lost, as in Temporal.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/history/wf_int.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define STAGE(x) \
  TEMPORAL__API__ENUMS__V1__UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE__UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_##x
#define REQUEST_URL "type.googleapis.com/temporal.api.update.v1.Request"
#define DEADLINE_BUDGET_MS 1000
#define UPDATE_LONG_POLL_MS 20000

typedef Temporal__Api__Update__V1__Request upd_request_t;
typedef Temporal__Api__Update__V1__Outcome upd_outcome_t;
typedef Temporal__Api__Protocol__V1__Message proto_msg_t;

/* ---- registry ---- */

static wf_update_t *find_update(wf_run_t *run, const char *id) {
  for (wf_update_t *u = run->updates; u; u = u->next)
    if (strcmp(u->update_id, id) == 0)
      return u;
  return NULL;
}

static wf_update_t *add_update(wf_run_t *run, const char *id) {
  wf_update_t *u = calloc(1, sizeof(*u));
  if (!u || !(u->update_id = strdup(id))) {
    free(u);
    return NULL;
  }
  u->next = run->updates;
  run->updates = u;
  return u;
}

void wf_updates_free(wf_run_t *run) {
  while (run->updates) {
    wf_update_t *u = run->updates;
    run->updates = u->next;
    while (u->waiters) {
      gt_rpc_t *r = u->waiters;
      u->waiters = r->next;
      gt_rpc_reply_error(r, GT_GRPC_UNAVAILABLE, "workflow unloaded, retry");
    }
    free(u->update_id);
    free(u->request);
    free(u->outcome);
    free(u);
  }
}

void wf_update_apply(wf_run_t *run, const pb_event_t *ev) {
  if (ev->attributes_case == PB_ATTR(WORKFLOW_EXECUTION_UPDATE_ACCEPTED_EVENT_ATTRIBUTES)) {
    const Temporal__Api__History__V1__WorkflowExecutionUpdateAcceptedEventAttributes *a =
        ev->workflow_execution_update_accepted_event_attributes;
    wf_update_t *u = find_update(run, a->protocol_instance_id);
    if (!u)
      u = add_update(run, a->protocol_instance_id);
    if (!u)
      return;
    u->stage = STAGE(ACCEPTED);
    u->accepted_event_id = ev->event_id;
    if (a->accepted_request && !u->request)
      wf_set_packed(&u->request, &u->request_len, &a->accepted_request->base);
  } else if (ev->attributes_case ==
             PB_ATTR(WORKFLOW_EXECUTION_UPDATE_COMPLETED_EVENT_ATTRIBUTES)) {
    const Temporal__Api__History__V1__WorkflowExecutionUpdateCompletedEventAttributes *a =
        ev->workflow_execution_update_completed_event_attributes;
    wf_update_t *u = a->meta ? find_update(run, a->meta->update_id) : NULL;
    if (!u)
      return;
    u->stage = STAGE(COMPLETED);
    wf_set_packed(&u->outcome, &u->outcome_len, a->outcome ? &a->outcome->base : NULL);
  }
}

/* ---- answering callers ---- */

/* Builds the answer for a waiter (UpdateWorkflowExecution or PollWorkflowExecutionUpdate). */
static void build_answer(workflow_t *wf, wf_run_t *run, wf_update_t *u, gt_rpc_t *rpc,
                         gt_buf_t *b) {
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  Temporal__Api__Update__V1__UpdateRef ref = TEMPORAL__API__UPDATE__V1__UPDATE_REF__INIT;
  ex.workflow_id = wf->workflow_id;
  ex.run_id = run->run_id;
  ref.workflow_execution = &ex;
  ref.update_id = u->update_id;
  upd_outcome_t *outcome = NULL;
  if (u->stage == STAGE(COMPLETED) && u->outcome)
    outcome = (upd_outcome_t *)protobuf_c_message_unpack(
        &temporal__api__update__v1__outcome__descriptor, NULL, u->outcome_len, u->outcome);
  if (rpc->kind == GT_RPC_UPDATE) {
    Temporal__Api__Workflowservice__V1__UpdateWorkflowExecutionResponse r =
        TEMPORAL__API__WORKFLOWSERVICE__V1__UPDATE_WORKFLOW_EXECUTION_RESPONSE__INIT;
    r.update_ref = &ref;
    r.outcome = outcome;
    r.stage = u->stage;
    gt_buf_pack(b, &r.base);
  } else {
    Temporal__Api__Workflowservice__V1__PollWorkflowExecutionUpdateResponse r =
        TEMPORAL__API__WORKFLOWSERVICE__V1__POLL_WORKFLOW_EXECUTION_UPDATE_RESPONSE__INIT;
    r.update_ref = &ref;
    r.outcome = outcome;
    r.stage = u->stage;
    gt_buf_pack(b, &r.base);
  }
  if (outcome)
    protobuf_c_message_free_unpacked(&outcome->base, NULL);
}

/* Answers the waiters whose stage is reached: now (t NULL) or after t commits. */
static void answer_waiters(workflow_t *wf, wf_run_t *run, wf_update_t *u, wf_txn_t *t) {
  gt_rpc_t **pp = &u->waiters;
  while (*pp) {
    gt_rpc_t *r = *pp;
    if (u->stage < r->attempt) { /* attempt holds the stage the caller waits for */
      pp = &r->next;
      continue;
    }
    *pp = r->next;
    r->next = NULL;
    gt_actor_timer_cancel(&wf->base, r->timer_id);
    gt_buf_t b;
    gt_buf_init(&b);
    build_answer(wf, run, u, r, &b);
    if (t) {
      wf_txn_reply(t, r, &b);
    } else {
      gt_rpc_reply_bytes(r, b.p, b.len);
      gt_buf_fini(&b);
    }
  }
}

static void park_waiter(workflow_t *wf, wf_update_t *u, gt_rpc_t *rpc, int stage) {
  rpc->attempt = stage ? stage : STAGE(COMPLETED);
  uint64_t now = gt_now_ms(), wait = UPDATE_LONG_POLL_MS;
  if (rpc->deadline_ms)
    wait = rpc->deadline_ms > now + DEADLINE_BUDGET_MS
               ? rpc->deadline_ms - now - DEADLINE_BUDGET_MS : 1;
  if (wait > UPDATE_LONG_POLL_MS)
    wait = UPDATE_LONG_POLL_MS;
  static uint64_t seq;
  rpc->timer_id = gt_actor_timer_start(&wf->base, wait, WF_TIMER_TOKEN(WF_TIMER_UPDATE, ++seq));
  rpc->next = u->waiters;
  u->waiters = rpc;
}

int wf_on_update_timer(workflow_t *wf, uint64_t token, uint64_t timer_id) {
  if ((token >> 56) != WF_TIMER_UPDATE)
    return 0;
  for (wf_run_t *run = wf->runs; run; run = run->next) {
    for (wf_update_t *u = run->updates; u; u = u->next) {
      for (gt_rpc_t **pp = &u->waiters; *pp; pp = &(*pp)->next) {
        if ((*pp)->timer_id != timer_id)
          continue;
        gt_rpc_t *r = *pp;
        *pp = r->next;
        r->next = NULL;
        gt_buf_t b;
        gt_buf_init(&b);
        build_answer(wf, run, u, r, &b); /* the stage reached so far */
        gt_rpc_reply_bytes(r, b.p, b.len);
        gt_buf_fini(&b);
        return 1;
      }
    }
  }
  return 1;
}

/* ---- the RPCs ---- */

void wf_on_update(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__UpdateWorkflowExecutionRequest *req =
      (const void *)rpc->req;
  const char *run_id = req->workflow_execution && req->workflow_execution->run_id
                           ? req->workflow_execution->run_id : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  if (!run || run->committed_ev == 0) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow not found for ID: %s",
                       wf->workflow_id);
    return;
  }
  const char *id = req->request->meta->update_id;
  wf_update_t *u = find_update(run, id);
  int stage = req->wait_policy ? req->wait_policy->lifecycle_stage : 0;
  if (!u) {
    if (!wf_running(run)) {
      gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "workflow execution already completed");
      return;
    }
    u = add_update(run, id);
    if (!u) {
      gt_rpc_reply_error(rpc, GT_GRPC_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    u->stage = STAGE(ADMITTED);
    wf_set_packed(&u->request, &u->request_len, &req->request->base);
    if (run->wft_state == WFT_NONE) {
      wf_txn_t *t = wf_txn_begin(wf, run);
      if (t) {
        wf_schedule_wft(wf, run, t);
        wf_txn_commit(t);
      }
    }
  }
  park_waiter(wf, u, rpc, stage);
  answer_waiters(wf, run, u, NULL);
}

void wf_on_poll_update(workflow_t *wf, gt_rpc_t *rpc) {
  const Temporal__Api__Workflowservice__V1__PollWorkflowExecutionUpdateRequest *req =
      (const void *)rpc->req;
  const Temporal__Api__Update__V1__UpdateRef *ref = req->update_ref;
  const char *run_id = ref->workflow_execution && ref->workflow_execution->run_id
                           ? ref->workflow_execution->run_id : "";
  wf_run_t *run = wf_find_run(wf, run_id);
  wf_update_t *u = run ? find_update(run, ref->update_id) : NULL;
  if (!u) {
    gt_rpc_reply_error(rpc, GT_GRPC_NOT_FOUND, "update %s not found", ref->update_id);
    return;
  }
  park_waiter(wf, u, rpc, req->wait_policy ? req->wait_policy->lifecycle_stage : 0);
  answer_waiters(wf, run, u, NULL);
}

/* ---- inside workflow tasks ---- */

void wf_updates_attach(workflow_t *wf, wf_run_t *run, gt_buf_t *resp) {
  (void)wf;
  for (wf_update_t *u = run->updates; u; u = u->next) {
    if (u->stage != STAGE(ADMITTED) || u->sent)
      continue;
    char msg_id[1100];
    snprintf(msg_id, sizeof(msg_id), "%s/request", u->update_id);
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = REQUEST_URL;
    any.value.data = u->request;
    any.value.len = u->request_len;
    proto_msg_t m = TEMPORAL__API__PROTOCOL__V1__MESSAGE__INIT;
    m.id = msg_id;
    m.protocol_instance_id = u->update_id;
    m.body = &any;
    m.sequencing_id_case = TEMPORAL__API__PROTOCOL__V1__MESSAGE__SEQUENCING_ID_EVENT_ID;
    m.event_id = run->wft_started_id - 1;
    gt_buf_field_msg(resp, 15, &m.base);
    u->sent = 1;
  }
}

static void complete_update(workflow_t *wf, wf_run_t *run, wf_update_t *u,
                            const upd_outcome_t *outcome, wf_txn_t *t) {
  u->stage = STAGE(COMPLETED);
  wf_set_packed(&u->outcome, &u->outcome_len, outcome ? &outcome->base : NULL);
  answer_waiters(wf, run, u, t);
}

/* Processes one worker message (Acceptance, Rejection, Response). */
static void process_message(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const proto_msg_t *m) {
  if (!m->body || !m->body->type_url)
    return;
  const char *type = strrchr(m->body->type_url, '/');
  type = type ? type + 1 : m->body->type_url;
  wf_update_t *u = find_update(run, m->protocol_instance_id);
  if (!u)
    return;
  if (strcmp(type, "temporal.api.update.v1.Acceptance") == 0 && u->stage == STAGE(ADMITTED)) {
    Temporal__Api__Update__V1__Acceptance *acc = (void *)protobuf_c_message_unpack(
        &temporal__api__update__v1__acceptance__descriptor, NULL, m->body->value.len,
        m->body->value.data);
    upd_request_t *r0 = (void *)protobuf_c_message_unpack(
        &temporal__api__update__v1__request__descriptor, NULL, u->request_len, u->request);
    pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
    Temporal__Api__History__V1__WorkflowExecutionUpdateAcceptedEventAttributes a =
        TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_UPDATE_ACCEPTED_EVENT_ATTRIBUTES__INIT;
    a.protocol_instance_id = u->update_id;
    a.accepted_request_message_id = acc ? acc->accepted_request_message_id : "";
    a.accepted_request_sequencing_event_id = acc ? acc->accepted_request_sequencing_event_id : 0;
    a.accepted_request = acc && acc->accepted_request ? acc->accepted_request : r0;
    ev.event_type = PB_EV(WORKFLOW_EXECUTION_UPDATE_ACCEPTED);
    ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_UPDATE_ACCEPTED_EVENT_ATTRIBUTES);
    ev.workflow_execution_update_accepted_event_attributes = &a;
    wf_emit(wf, run, &ev, 0); /* wf_apply marks it ACCEPTED */
    if (acc)
      protobuf_c_message_free_unpacked(&acc->base, NULL);
    if (r0)
      protobuf_c_message_free_unpacked(&r0->base, NULL);
    answer_waiters(wf, run, u, t);
  } else if (strcmp(type, "temporal.api.update.v1.Rejection") == 0 &&
             u->stage == STAGE(ADMITTED)) {
    Temporal__Api__Update__V1__Rejection *rej = (void *)protobuf_c_message_unpack(
        &temporal__api__update__v1__rejection__descriptor, NULL, m->body->value.len,
        m->body->value.data);
    upd_outcome_t o = TEMPORAL__API__UPDATE__V1__OUTCOME__INIT;
    o.value_case = TEMPORAL__API__UPDATE__V1__OUTCOME__VALUE_FAILURE;
    o.failure = rej ? rej->failure : NULL;
    complete_update(wf, run, u, &o, t);
    if (rej)
      protobuf_c_message_free_unpacked(&rej->base, NULL);
  } else if (strcmp(type, "temporal.api.update.v1.Response") == 0 &&
             u->stage == STAGE(ACCEPTED)) {
    Temporal__Api__Update__V1__Response *res = (void *)protobuf_c_message_unpack(
        &temporal__api__update__v1__response__descriptor, NULL, m->body->value.len,
        m->body->value.data);
    Temporal__Api__Update__V1__Meta meta = TEMPORAL__API__UPDATE__V1__META__INIT;
    meta.update_id = u->update_id;
    meta.identity = res && res->meta ? res->meta->identity : "";
    pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
    Temporal__Api__History__V1__WorkflowExecutionUpdateCompletedEventAttributes a =
        TEMPORAL__API__HISTORY__V1__WORKFLOW_EXECUTION_UPDATE_COMPLETED_EVENT_ATTRIBUTES__INIT;
    a.meta = &meta;
    a.accepted_event_id = u->accepted_event_id;
    a.outcome = res ? res->outcome : NULL;
    ev.event_type = PB_EV(WORKFLOW_EXECUTION_UPDATE_COMPLETED);
    ev.attributes_case = PB_ATTR(WORKFLOW_EXECUTION_UPDATE_COMPLETED_EVENT_ATTRIBUTES);
    ev.workflow_execution_update_completed_event_attributes = &a;
    wf_emit(wf, run, &ev, 0); /* wf_apply stores the outcome */
    answer_waiters(wf, run, u, t);
    if (res)
      protobuf_c_message_free_unpacked(&res->base, NULL);
  }
}

const char *wf_check_protocol_command(
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    const pb_command_t *c) {
  const char *id = c->protocol_message_command_attributes
                       ? c->protocol_message_command_attributes->message_id : NULL;
  if (!id || !*id)
    return "MessageId is not set on ProtocolMessageCommand.";
  for (size_t i = 0; i < req->n_messages; i++)
    if (strcmp(req->messages[i]->id, id) == 0)
      return NULL;
  return "ProtocolMessageCommand names a message that is not in the request.";
}

void wf_cmd_protocol_message(workflow_t *wf, wf_run_t *run, wf_txn_t *t,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    const pb_command_t *c, uint8_t *done) {
  const char *id = c->protocol_message_command_attributes->message_id;
  for (size_t i = 0; i < req->n_messages; i++) {
    if (!done[i] && strcmp(req->messages[i]->id, id) == 0) {
      done[i] = 1;
      process_message(wf, run, t, req->messages[i]);
    }
  }
}

int wf_updates_after_wft(workflow_t *wf, wf_run_t *run, wf_txn_t *t,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    uint8_t *done) {
  for (size_t i = 0; req && i < req->n_messages; i++)
    if (!done || !done[i])
      process_message(wf, run, t, req->messages[i]);
  int resend = 0;
  for (wf_update_t *u = run->updates; u; u = u->next) {
    if (u->stage == STAGE(ADMITTED)) {
      u->sent = 0; /* not answered, or admitted while the task ran: the next task takes it */
      resend = 1;
    }
  }
  return resend;
}

void wf_updates_on_close(workflow_t *wf, wf_run_t *run) {
  for (wf_update_t *u = run->updates; u; u = u->next) {
    while (u->waiters && u->stage != STAGE(COMPLETED)) {
      gt_rpc_t *r = u->waiters;
      u->waiters = r->next;
      gt_actor_timer_cancel(&wf->base, r->timer_id);
      gt_rpc_reply_error(r, GT_GRPC_NOT_FOUND, "workflow execution already completed");
    }
  }
}
