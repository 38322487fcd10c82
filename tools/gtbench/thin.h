/*
 * thin.h: the few fields gtbench's worker needs from a poll response, read straight off the
 * protobuf wire instead of unpacking the whole message.
 *
 * DESIGN
 *   A PollWorkflowTaskQueueResponse carries the workflow's whole history, every event with
 *   its attributes (payloads, task queues, timestamps...). The worker decides from the
 *   event types alone, so unpacking all of it (protobuf-c, a tree of structs) was a third
 *   of gtbench's CPU per workflow: CPU the server, sharing the same cores, did not get.
 *   thin_wft_read walks the wire format once, keeps pointers into the body for the task
 *   token and workflow id, and reports each event's type.
 *
 * INVARIANTS
 *   - Pointers in the result point into the caller's body: valid while it is.
 *   - A malformed message (a length past the end, a wire type protobuf does not have, a
 *     varint over 10 bytes) is refused whole (-1), never read past its end.
 *   - Unknown fields are skipped, as protobuf requires.
 *
 * THREADS: pure functions, any thread.
 */
#ifndef GT_GTBENCH_THIN_H
#define GT_GTBENCH_THIN_H

#include <stddef.h>
#include <stdint.h>

/* What the worker reads of a PollWorkflowTaskQueueResponse. */
typedef struct thin_wft {
  const uint8_t *token; /* task_token (field 1); token_len 0: an empty poll */
  size_t token_len;
  const char *workflow_id; /* workflow_execution.workflow_id (field 2.1), not NUL-ended */
  size_t workflow_id_len;
} thin_wft_t;

/* Reads a PollWorkflowTaskQueueResponse of n bytes at p. For every event of its history
 * (field 8, History.events), in order, calls on_event(event_type, ud) (on_event may be
 * NULL). Returns 0, or -1 when the message is malformed (out is then undefined). */
int thin_wft_read(const uint8_t *p, size_t n, thin_wft_t *out,
                  void (*on_event)(int event_type, void *ud), void *ud);

/* Reads the task_token (field 1) of a PollActivityTaskQueueResponse. OUT: *token, *len
 * (len 0: an empty poll). Returns 0 or -1 (malformed). */
int thin_act_token(const uint8_t *p, size_t n, const uint8_t **token, size_t *len);

/* The eager_workflow_task (field 2) of a StartWorkflowExecutionResponse, as bytes of a
 * PollWorkflowTaskQueueResponse for thin_wft_read. OUT: *task, *len (len 0: none).
 * Returns 0 or -1 (malformed). */
int thin_start_eager_task(const uint8_t *p, size_t n, const uint8_t **task, size_t *len);

/* Calls on_task(token, len, ud) with the task token of each activity task (field 2,
 * activity_tasks: eager execution) of a RespondWorkflowTaskCompletedResponse, in order.
 * Returns the number of tasks, or -1 (malformed; tasks before the fault were reported). */
int thin_eager_acts(const uint8_t *p, size_t n,
                    void (*on_task)(const uint8_t *token, size_t len, void *ud), void *ud);

#endif
