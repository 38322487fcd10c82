/*
 * thin.c: reading a poll response's few needed fields off the protobuf wire (see thin.h).
 *
 * Wire format: each field is a varint key (field number << 3 | wire type) followed by a
 * varint (type 0), 8 bytes (1), a varint length and that many bytes (2), or 4 bytes (5).
 * Field numbers read here (temporal.api.workflowservice.v1, history.v1, common.v1):
 *   PollWorkflowTaskQueueResponse: 1 task_token, 2 workflow_execution, 8 history
 *   WorkflowExecution: 1 workflow_id        History: 1 events (repeated)
 *   HistoryEvent: 3 event_type               PollActivityTaskQueueResponse: 1 task_token
 *   RespondWorkflowTaskCompletedResponse: 2 activity_tasks (repeated)
 *   StartWorkflowExecutionResponse: 2 eager_workflow_task
 */
#include "tools/gtbench/thin.h"

/* A cursor over [p, end). */
typedef struct rd {
  const uint8_t *p, *end;
} rd_t;

static int varint(rd_t *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (r->p >= r->end)
      return -1;
    uint8_t b = *r->p++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1; /* over 10 bytes */
}

/* Reads one field's key. OUT: *field, *wt. Returns 0, 1 at the end, -1 malformed. */
/* One field of a message, its value decoded: wire type 0 in v, 2 in sub (1 and 5 are
 * skipped). */
typedef struct field {
  uint32_t num;
  int wt;
  uint64_t v;
  rd_t sub;
} field_t;

/* Reads the next field of r. Returns 1 (one read into *f), 0 at the end, -1 malformed. */
static int next_field(rd_t *r, field_t *f) {
  if (r->p == r->end)
    return 0;
  uint64_t k;
  if (varint(r, &k) != 0 || (k >> 3) == 0 || (k >> 3) > 0x1fffffff)
    return -1;
  f->num = (uint32_t)(k >> 3);
  f->wt = (int)(k & 7);
  switch (f->wt) {
  case 0:
    return varint(r, &f->v) == 0 ? 1 : -1;
  case 2:
    if (varint(r, &f->v) != 0 || f->v > (uint64_t)(r->end - r->p))
      return -1;
    f->sub = (rd_t){r->p, r->p + f->v};
    r->p += f->v;
    return 1;
  case 1:
  case 5: {
    size_t w = f->wt == 1 ? 8 : 4;
    if ((size_t)(r->end - r->p) < w)
      return -1;
    r->p += w;
    return 1;
  }
  default:
    return -1; /* groups (3, 4) are not in proto3; 6 and 7 do not exist */
  }
}

static size_t len_of(rd_t r) { return (size_t)(r.end - r.p); }

static int history(rd_t h, void (*on_event)(int, void *), void *ud) {
  field_t f, g;
  int rc;
  while ((rc = next_field(&h, &f)) == 1) {
    if (f.num != 1 || f.wt != 2)
      continue;
    int type = 0; /* HistoryEvent.event_type, 0 when absent */
    while ((rc = next_field(&f.sub, &g)) == 1)
      if (g.num == 3 && g.wt == 0)
        type = (int)g.v;
    if (rc < 0)
      return -1;
    if (on_event)
      on_event(type, ud);
  }
  return rc;
}

int thin_wft_read(const uint8_t *p, size_t n, thin_wft_t *out,
                  void (*on_event)(int event_type, void *ud), void *ud) {
  rd_t r = {p, p + n};
  field_t f, g;
  int rc;
  *out = (thin_wft_t){0};
  while ((rc = next_field(&r, &f)) == 1) {
    if (f.wt != 2)
      continue;
    if (f.num == 1) {
      out->token = f.sub.p;
      out->token_len = len_of(f.sub);
    } else if (f.num == 2) { /* WorkflowExecution */
      while ((rc = next_field(&f.sub, &g)) == 1) {
        if (g.num == 1 && g.wt == 2) {
          out->workflow_id = (const char *)g.sub.p;
          out->workflow_id_len = len_of(g.sub);
        }
      }
      if (rc < 0)
        return -1;
    } else if (f.num == 8 && history(f.sub, on_event, ud) < 0) {
      return -1;
    }
  }
  return rc;
}

/* The bytes of the last field `want` (length-delimited) of the message [p, p+n). */
static int field_bytes(const uint8_t *p, size_t n, uint32_t want, const uint8_t **out,
                       size_t *len) {
  rd_t r = {p, p + n};
  field_t f;
  int rc;
  *out = NULL;
  *len = 0;
  while ((rc = next_field(&r, &f)) == 1) {
    if (f.num == want && f.wt == 2) {
      *out = f.sub.p;
      *len = len_of(f.sub);
    }
  }
  return rc;
}

int thin_start_eager_task(const uint8_t *p, size_t n, const uint8_t **task, size_t *len) {
  return field_bytes(p, n, 2, task, len);
}

int thin_act_token(const uint8_t *p, size_t n, const uint8_t **token, size_t *len) {
  return field_bytes(p, n, 1, token, len);
}

int thin_eager_acts(const uint8_t *p, size_t n,
                    void (*on_task)(const uint8_t *token, size_t len, void *ud), void *ud) {
  rd_t r = {p, p + n};
  field_t f;
  int rc, count = 0;
  while ((rc = next_field(&r, &f)) == 1) {
    if (f.num != 2 || f.wt != 2)
      continue;
    const uint8_t *token;
    size_t len;
    if (thin_act_token(f.sub.p, len_of(f.sub), &token, &len) != 0)
      return -1;
    count++;
    on_task(token, len, ud);
  }
  return rc < 0 ? -1 : count;
}
