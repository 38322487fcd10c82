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
static int key(rd_t *r, uint32_t *field, int *wt) {
  if (r->p == r->end)
    return 1;
  uint64_t k;
  if (varint(r, &k) != 0 || (k >> 3) == 0 || (k >> 3) > 0x1fffffff)
    return -1;
  *field = (uint32_t)(k >> 3);
  *wt = (int)(k & 7);
  return 0;
}

/* A length-delimited value. OUT: *sub over its bytes. */
static int bytes(rd_t *r, rd_t *sub) {
  uint64_t len;
  if (varint(r, &len) != 0 || len > (uint64_t)(r->end - r->p))
    return -1;
  sub->p = r->p;
  sub->end = r->p + len;
  r->p += len;
  return 0;
}

/* Skips a value of wire type wt. */
static int skip(rd_t *r, int wt) {
  uint64_t v;
  rd_t sub;
  switch (wt) {
  case 0:
    return varint(r, &v);
  case 1:
    if (r->end - r->p < 8)
      return -1;
    r->p += 8;
    return 0;
  case 2:
    return bytes(r, &sub);
  case 5:
    if (r->end - r->p < 4)
      return -1;
    r->p += 4;
    return 0;
  default:
    return -1; /* groups (3, 4) are not in proto3; 6 and 7 do not exist */
  }
}

/* The event_type (field 3) of one HistoryEvent; 0 when absent. */
static int event_type(rd_t ev, int *type) {
  uint32_t f;
  int wt, rc;
  *type = 0;
  while ((rc = key(&ev, &f, &wt)) == 0) {
    if (f == 3 && wt == 0) {
      uint64_t v;
      if (varint(&ev, &v) != 0)
        return -1;
      *type = (int)v;
    } else if (skip(&ev, wt) != 0) {
      return -1;
    }
  }
  return rc < 0 ? -1 : 0;
}

static int history(rd_t h, void (*on_event)(int, void *), void *ud) {
  uint32_t f;
  int wt, rc;
  while ((rc = key(&h, &f, &wt)) == 0) {
    if (f == 1 && wt == 2) {
      rd_t ev;
      int type;
      if (bytes(&h, &ev) != 0 || event_type(ev, &type) != 0)
        return -1;
      if (on_event)
        on_event(type, ud);
    } else if (skip(&h, wt) != 0) {
      return -1;
    }
  }
  return rc < 0 ? -1 : 0;
}

static int execution(rd_t x, thin_wft_t *out) {
  uint32_t f;
  int wt, rc;
  while ((rc = key(&x, &f, &wt)) == 0) {
    if (f == 1 && wt == 2) {
      rd_t id;
      if (bytes(&x, &id) != 0)
        return -1;
      out->workflow_id = (const char *)id.p;
      out->workflow_id_len = (size_t)(id.end - id.p);
    } else if (skip(&x, wt) != 0) {
      return -1;
    }
  }
  return rc < 0 ? -1 : 0;
}

int thin_wft_read(const uint8_t *p, size_t n, thin_wft_t *out,
                  void (*on_event)(int event_type, void *ud), void *ud) {
  rd_t r = {p, p + n};
  uint32_t f;
  int wt, rc;
  *out = (thin_wft_t){0};
  while ((rc = key(&r, &f, &wt)) == 0) {
    rd_t sub;
    if (wt == 2 && (f == 1 || f == 2 || f == 8)) {
      if (bytes(&r, &sub) != 0)
        return -1;
      if (f == 1) {
        out->token = sub.p;
        out->token_len = (size_t)(sub.end - sub.p);
      } else if (f == 2 ? execution(sub, out) != 0 : history(sub, on_event, ud) != 0) {
        return -1;
      }
    } else if (skip(&r, wt) != 0) {
      return -1;
    }
  }
  return rc < 0 ? -1 : 0;
}

/* The bytes of field `want` (length-delimited) of the message [p, p+n). */
static int field_bytes(const uint8_t *p, size_t n, uint32_t want, const uint8_t **out,
                       size_t *len) {
  rd_t r = {p, p + n};
  uint32_t f;
  int wt, rc;
  *out = NULL;
  *len = 0;
  while ((rc = key(&r, &f, &wt)) == 0) {
    rd_t sub;
    if (f == want && wt == 2) {
      if (bytes(&r, &sub) != 0)
        return -1;
      *out = sub.p;
      *len = (size_t)(sub.end - sub.p);
    } else if (skip(&r, wt) != 0) {
      return -1;
    }
  }
  return rc < 0 ? -1 : 0;
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
  uint32_t f;
  int wt, rc, count = 0;
  while ((rc = key(&r, &f, &wt)) == 0) {
    rd_t sub;
    if (f == 2 && wt == 2) {
      const uint8_t *token;
      size_t len;
      if (bytes(&r, &sub) != 0 ||
          thin_act_token(sub.p, (size_t)(sub.end - sub.p), &token, &len) != 0)
        return -1;
      count++;
      on_task(token, len, ud);
    } else if (skip(&r, wt) != 0) {
      return -1;
    }
  }
  return rc < 0 ? -1 : count;
}
