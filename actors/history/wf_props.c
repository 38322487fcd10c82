/*
 * wf_props.c: a run's memo and search attributes: the UpsertWorkflowSearchAttributes and
 * ModifyWorkflowProperties commands, and RequestCancelExternalWorkflowExecution.
 *
 * DESIGN
 *   Memo and search attributes are maps of Payloads kept packed on the run. An upsert
 *   merges by key (a later value replaces an earlier one; a null or empty payload removes
 *   the key, as Temporal does) inside wf_apply, so replay rebuilds the same maps; the
 *   transaction then rewrites the run's visibility record.
 *
 * THREADS: the workflow actor's home thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/frontend/namespaces.h"
#include "actors/history/wf_int.h"
#include "runtime/err.h"

typedef Temporal__Api__Common__V1__SearchAttributes sa_t;
typedef Temporal__Api__Common__V1__Memo memo_t;
typedef Temporal__Api__Common__V1__Payload payload_t;

/* One map entry, as both SearchAttributes.indexed_fields and Memo.fields are laid out. */
typedef struct entry {
  ProtobufCMessage base;
  char *key;
  payload_t *value;
} entry_t;

static int is_null(const payload_t *p) {
  return !p || p->data.len == 0 || (p->data.len == 4 && memcmp(p->data.data, "null", 4) == 0);
}

/* Merges `upd` entries over the packed map `*packed`: the result replaces *packed.
 * desc: the map's message descriptor; the map is field 1 of both messages. */
static void merge_map(uint8_t **packed, size_t *len, const ProtobufCMessageDescriptor *desc,
                      entry_t **upd, size_t n_upd) {
  ProtobufCMessage *old = *packed ? protobuf_c_message_unpack(desc, NULL, *len, *packed) : NULL;
  size_t n_old = 0;
  entry_t **old_e = NULL;
  if (old) {
    /* field 1 of both types: size_t n; entry_t **v; right after the base */
    n_old = *(size_t *)((char *)old + desc->fields[0].quantifier_offset);
    old_e = *(entry_t ***)((char *)old + desc->fields[0].offset);
  }
  entry_t **out = calloc(n_old + n_upd + 1, sizeof(*out));
  size_t n = 0;
  for (size_t i = 0; out && i < n_old; i++) {
    int replaced = 0;
    for (size_t j = 0; j < n_upd; j++)
      if (strcmp(upd[j]->key, old_e[i]->key) == 0)
        replaced = 1;
    if (!replaced)
      out[n++] = old_e[i];
  }
  for (size_t j = 0; out && j < n_upd; j++)
    if (!is_null(upd[j]->value))
      out[n++] = upd[j];
  if (out) {
    /* a message of the map's type pointing at the merged entries, packed */
    uint8_t msgbuf[sizeof(sa_t) > sizeof(memo_t) ? sizeof(sa_t) : sizeof(memo_t)];
    ProtobufCMessage *m = (ProtobufCMessage *)msgbuf;
    protobuf_c_message_init(desc, m);
    *(size_t *)((char *)m + desc->fields[0].quantifier_offset) = n;
    *(entry_t ***)((char *)m + desc->fields[0].offset) = out;
    wf_set_packed(packed, len, n ? m : NULL);
  }
  free(out);
  if (old)
    protobuf_c_message_free_unpacked(old, NULL);
}

void wf_props_apply(wf_run_t *run, const pb_event_t *ev) {
  if (ev->attributes_case == PB_ATTR(UPSERT_WORKFLOW_SEARCH_ATTRIBUTES_EVENT_ATTRIBUTES)) {
    const sa_t *sa = ev->upsert_workflow_search_attributes_event_attributes->search_attributes;
    if (sa)
      merge_map(&run->search_attrs, &run->search_attrs_len,
                &temporal__api__common__v1__search_attributes__descriptor,
                (entry_t **)sa->indexed_fields, sa->n_indexed_fields);
  } else if (ev->attributes_case == PB_ATTR(WORKFLOW_PROPERTIES_MODIFIED_EVENT_ATTRIBUTES)) {
    const memo_t *m = ev->workflow_properties_modified_event_attributes->upserted_memo;
    if (m)
      merge_map(&run->memo, &run->memo_len, &temporal__api__common__v1__memo__descriptor,
                (entry_t **)m->fields, m->n_fields);
  }
}

void wf_cmd_upsert_props(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                         int64_t completed_id) {
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__UpsertWorkflowSearchAttributesEventAttributes ua =
      TEMPORAL__API__HISTORY__V1__UPSERT_WORKFLOW_SEARCH_ATTRIBUTES_EVENT_ATTRIBUTES__INIT;
  Temporal__Api__History__V1__WorkflowPropertiesModifiedEventAttributes ma =
      TEMPORAL__API__HISTORY__V1__WORKFLOW_PROPERTIES_MODIFIED_EVENT_ATTRIBUTES__INIT;
  if (c->command_type == PB_CMD(UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)) {
    ua.workflow_task_completed_event_id = completed_id;
    ua.search_attributes = c->upsert_workflow_search_attributes_command_attributes->search_attributes;
    ev.event_type = PB_EV(UPSERT_WORKFLOW_SEARCH_ATTRIBUTES);
    ev.attributes_case = PB_ATTR(UPSERT_WORKFLOW_SEARCH_ATTRIBUTES_EVENT_ATTRIBUTES);
    ev.upsert_workflow_search_attributes_event_attributes = &ua;
  } else {
    ma.workflow_task_completed_event_id = completed_id;
    ma.upserted_memo = c->modify_workflow_properties_command_attributes->upserted_memo;
    ev.event_type = PB_EV(WORKFLOW_PROPERTIES_MODIFIED);
    ev.attributes_case = PB_ATTR(WORKFLOW_PROPERTIES_MODIFIED_EVENT_ATTRIBUTES);
    ev.workflow_properties_modified_event_attributes = &ma;
  }
  wf_emit(wf, run, &ev, 0);
  t->update_visibility = 1;
}

/* ---- RequestCancelExternalWorkflowExecution ---- */

const char *wf_check_cancel_external(const pb_command_t *c) {
  const Temporal__Api__Command__V1__RequestCancelExternalWorkflowExecutionCommandAttributes *a =
      c->request_cancel_external_workflow_execution_command_attributes;
  if (!a || !a->workflow_id || !*a->workflow_id)
    return "WorkflowId is not set on RequestCancelExternalWorkflowExecutionCommand.";
  return NULL;
}

void wf_cmd_cancel_external(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                            int64_t completed_id) {
  const Temporal__Api__Command__V1__RequestCancelExternalWorkflowExecutionCommandAttributes *cmd =
      c->request_cancel_external_workflow_execution_command_attributes;
  gt_ns_info_t ns = {0};
  gt_namespaces_get_by_id(wf->srv->namespaces, wf->ns_id, &ns);
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  ex.workflow_id = cmd->workflow_id;
  ex.run_id = cmd->run_id;
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__RequestCancelExternalWorkflowExecutionInitiatedEventAttributes a =
      TEMPORAL__API__HISTORY__V1__REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES__INIT;
  a.workflow_task_completed_event_id = completed_id;
  a.namespace_ = ns.name;
  a.namespace_id = wf->ns_id;
  a.workflow_execution = &ex;
  a.child_workflow_only = cmd->child_workflow_only;
  a.reason = cmd->reason;
  ev.event_type = PB_EV(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED);
  ev.attributes_case =
      PB_ATTR(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED_EVENT_ATTRIBUTES);
  ev.request_cancel_external_workflow_execution_initiated_event_attributes = &a;
  int64_t id = wf_emit(wf, run, &ev, 0);
  wf_xmsg_t *m = id > 0 ? wf_initiated_msg(wf, run, &ev, id) : NULL;
  if (m)
    wf_txn_xmsg(t, m);
}

void wf_emit_cancel_external_result(workflow_t *wf, wf_run_t *run, const wf_xmsg_t *m) {
  gt_ns_info_t ns = {0};
  gt_namespaces_get_by_id(wf->srv->namespaces, wf->ns_id, &ns);
  pb_wfexec_t ex = TEMPORAL__API__COMMON__V1__WORKFLOW_EXECUTION__INIT;
  ex.workflow_id = m->from_workflow_id;
  ex.run_id = (char *)m->from_run_id;
  pb_event_t ev = TEMPORAL__API__HISTORY__V1__HISTORY_EVENT__INIT;
  Temporal__Api__History__V1__ExternalWorkflowExecutionCancelRequestedEventAttributes ok =
      TEMPORAL__API__HISTORY__V1__EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED_EVENT_ATTRIBUTES__INIT;
  Temporal__Api__History__V1__RequestCancelExternalWorkflowExecutionFailedEventAttributes bad =
      TEMPORAL__API__HISTORY__V1__REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES__INIT;
  if (m->cause == 0) {
    ok.initiated_event_id = m->initiated_id;
    ok.namespace_ = ns.name;
    ok.namespace_id = wf->ns_id;
    ok.workflow_execution = &ex;
    ev.event_type = PB_EV(EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED);
    ev.attributes_case = PB_ATTR(EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED_EVENT_ATTRIBUTES);
    ev.external_workflow_execution_cancel_requested_event_attributes = &ok;
  } else {
    bad.cause = m->cause;
    bad.namespace_ = ns.name;
    bad.namespace_id = wf->ns_id;
    bad.workflow_execution = &ex;
    bad.initiated_event_id = m->initiated_id;
    ev.event_type = PB_EV(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED);
    ev.attributes_case =
        PB_ATTR(REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_FAILED_EVENT_ATTRIBUTES);
    ev.request_cancel_external_workflow_execution_failed_event_attributes = &bad;
  }
  wf_emit(wf, run, &ev, 1);
}
