/*
 * history.h: the messages the Temporal roles exchange, and the history role's entry points.
 *
 * DESIGN
 *   A request that the frontend has decoded and validated travels as ONE gt_rpc_t message:
 *   frontend -> workflow actor (StartWorkflowExecution, Respond*, GetHistory, Describe...),
 *   or frontend -> task-queue actor (Poll*) -> workflow actor (record the task as started)
 *   -> reply, or back to the task-queue actor when the task was stale. Whoever replies to the
 *   gateway call frees the gt_rpc_t (gt_rpc_reply*). The unpacked request stays with it.
 *
 *   Workflow actors are keyed by (namespace id, workflow id): one actor holds every run of a
 *   workflow id that is in memory, so "is a run of this id already running?" is a question
 *   one actor answers alone. A task-queue actor is keyed by (namespace id, kind, name).
 *
 * INVARIANTS
 *   A gt_rpc_t is owned by exactly one actor at a time (it moves with the message), and is
 *   replied to exactly once.
 */
#ifndef GT_HISTORY_H
#define GT_HISTORY_H

#include <stdint.h>

#include "actors/frontend/pb.h"
#include "actors/frontend/server.h"
#include "actors/gateway/gateway.h"
#include "runtime/actor.h"

/* The RPCs the history and matching roles serve. */
typedef enum gt_rpc_kind {
  GT_RPC_START_WORKFLOW = 1,
  GT_RPC_POLL_WORKFLOW_TASK,
  GT_RPC_POLL_ACTIVITY_TASK,
  GT_RPC_RESPOND_WFT_COMPLETED,
  GT_RPC_RESPOND_WFT_FAILED,
  GT_RPC_RESPOND_ACT_COMPLETED,
  GT_RPC_RESPOND_ACT_FAILED,
  GT_RPC_GET_HISTORY,
  GT_RPC_DESCRIBE_WORKFLOW,
  GT_RPC_SIGNAL,
  GT_RPC_SIGNAL_WITH_START,
  GT_RPC_TERMINATE,
  GT_RPC_REQUEST_CANCEL,
  GT_RPC_HEARTBEAT,
  GT_RPC_RESPOND_ACT_CANCELED,
  GT_RPC_QUERY,
  GT_RPC_RESPOND_QUERY,
  GT_RPC_UPDATE,
  GT_RPC_POLL_UPDATE,
  GT_RPC_RESET_STICKY,
  GT_RPC_ACT_COMPLETED_BY_ID,
  GT_RPC_ACT_FAILED_BY_ID,
  GT_RPC_ACT_CANCELED_BY_ID,
  GT_RPC_HEARTBEAT_BY_ID,
  GT_RPC_HISTORY_REVERSE,
  GT_RPC_DESCRIBE_TASK_QUEUE,
  GT_RPC_DELETE_WORKFLOW,
} gt_rpc_kind_t;

/* Message types of the workflow and task-queue actors. */
enum {
  GT_MSG_RPC = 1,          /* gt_rpc_t: a request */
  GT_MSG_ADD_TASK,         /* gt_task_msg_t: matching gets a task to dispatch */
  GT_MSG_RECORD_STARTED,   /* gt_rpc_t with .task: a poll matched a task */
  GT_MSG_WRITE_DONE,       /* workflow actor: a store batch committed */
  GT_MSG_LOADED,           /* workflow actor: activation read finished */
  GT_MSG_XWF,              /* workflow actor: a message from another workflow actor */
  GT_MSG_WAKE,             /* sleepers.c: a passivated workflow's next deadline (to the
                            * sleepers actor), then its wake-up (to the workflow) */
  GT_MSG_STICKY_GONE,      /* matching -> workflow: its sticky queue has no worker */
  GT_MSG_WORKER_SHUTDOWN,  /* frontend -> a sticky queue's actor: ShutdownWorker */
  GT_MSG_ACTIVATE,         /* workflow actor: load now (recovery) and send again the
                            * cross-workflow messages pending (wf_xwf_resend); no payload */
};

/* A query task travels on the workflow task queue (legacy query task). */
typedef enum { GT_TASK_WORKFLOW = 0, GT_TASK_ACTIVITY = 1, GT_TASK_QUERY = 2 } gt_task_kind_t;

/* A task waiting in matching. Small and self-contained: the workflow actor owns the truth;
 * a task that no longer matches it is stale and dropped when a poller picks it. */
typedef struct gt_task {
  struct gt_task *next;
  gt_task_kind_t kind;
  char ns_id[37];
  char run_id[37];
  int64_t scheduled_event_id;
  int32_t attempt;
  uint64_t enqueued_ns; /* uv_hrtime() when matching got it: task_dispatch_latency */
  int sticky; /* a workflow task for a sticky queue: bounced back to its workflow
               * (gt_history_sticky_unavailable) when that queue's worker is gone */
  char workflow_id[]; /* NUL-terminated */
} gt_task_t;

/* Allocates a task (free with free()). NULL on ENOMEM. */
gt_task_t *gt_task_new(gt_task_kind_t kind, const char *ns_id, const char *workflow_id,
                       const char *run_id, int64_t scheduled_event_id, int32_t attempt);

/* The dtor of a gt_task_msg_t: frees its task (if still held) and the message. */
void gt_task_msg_dtor(gt_msg_t *m);

typedef struct gt_task_msg {
  gt_msg_t hdr;
  gt_task_t *task; /* owned */
} gt_task_msg_t;

typedef struct gt_rpc {
  gt_msg_t hdr;
  gt_rpc_kind_t kind;
  gt_server_t *srv;
  gt_gateway_call_t *call;
  ProtobufCMessage *req; /* unpacked request (owned) */
  gt_pb_arena_t *arena;  /* owned; when req is its root, req lives in it (frontend) and
                          * is released with it, never by free_unpacked */
  char ns_id[37];
  char ns_name[256];
  uint64_t deadline_ms;  /* when the reply is due at the latest (gt_now_ms clock) */
  /* routing, filled by the frontend */
  char *workflow_id;     /* owned copy */
  /* decoded task token (Respond*) */
  char run_id[37];
  int64_t scheduled_event_id;
  int64_t started_event_id;
  int32_t attempt;
  int64_t token_epoch;   /* gt_task_token_t.epoch */
  /* matching */
  gt_task_t *task;       /* the matched task (GT_MSG_RECORD_STARTED), owned */
  gt_actor_t *queue;     /* the task-queue actor that matched it (a reference) */
  uint64_t timer_id;     /* long-poll timer in the holding actor */
  struct gt_rpc *next;   /* intrusive list in the holding actor */
} gt_rpc_t;

/* Allocates a request message. Takes req. NULL on ENOMEM. */
gt_rpc_t *gt_rpc_new(gt_server_t *srv, gt_rpc_kind_t kind, gt_gateway_call_t *call,
                     ProtobufCMessage *req);

/* Replies OK with a packed response message, and frees rpc. */
void gt_rpc_reply_msg(gt_rpc_t *rpc, const ProtobufCMessage *resp);
/* Replies OK with raw response bytes, and frees rpc. */
void gt_rpc_reply_bytes(gt_rpc_t *rpc, const uint8_t *body, size_t len);
/* Replies OK with raw response bytes, taking body (malloc'd, e.g. from gt_buf_take;
 * freed with free() by the gateway once sent): no copy. Frees rpc. */
void gt_rpc_reply_owned(gt_rpc_t *rpc, uint8_t *body, size_t len);
/* Replies with an error (status GT_GRPC_*, printf message) and frees rpc. */
void gt_rpc_reply_error(gt_rpc_t *rpc, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies with an error carrying a detail message (grpc-status-details-bin), frees rpc. */
void gt_rpc_reply_error_detail(gt_rpc_t *rpc, int status, const ProtobufCMessage *detail,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Replaces rpc->req with req (takes it; a heap message, freed with free_unpacked),
 * releasing the old request however it was allocated (heap or the rpc's arena). Use it
 * instead of freeing rpc->req by hand: the frontend decodes requests into an arena. */
void gt_rpc_set_req(gt_rpc_t *rpc, ProtobufCMessage *req);
/* Frees rpc without replying (only for a call already replied to). */
void gt_rpc_free(gt_rpc_t *rpc);

/* Sends a request to the workflow actor of (rpc->ns_id, rpc->workflow_id). Takes rpc
 * (replying UNAVAILABLE when the runtime is stopping). */
void gt_history_route(gt_server_t *srv, gt_rpc_t *rpc);

/* Activates the workflow actor of (ns_id, workflow_id) (recovery at start-up). */
int gt_history_activate(gt_server_t *srv, const char *ns_id, const char *workflow_id);
/* Matching: the sticky queue of `task` has no worker (shut down, or no poll for a while):
 * its workflow sends the task to the normal queue at once, as Temporal does on
 * StickyWorkerUnavailable, instead of waiting for the sticky schedule-to-start timeout.
 * Takes task. Any thread. */
void gt_history_sticky_unavailable(gt_server_t *srv, gt_task_t *task);
/* Recovery of one running workflow from its executions.state: activates it when it owes
 * something now or waits on another workflow (returns 1; the activation sends its
 * cross-workflow messages again, wf_child.c), or leaves it in the store, registered to be
 * woken at its next deadline or by its next message (returns 0). Negative GT_E* on
 * failure. */
int gt_history_recover(gt_server_t *srv, const char *ns_id, const char *workflow_id,
                       const void *state, size_t state_len);

/* Starts the retention sweeper (retention.c). 0 or a GT_E* code. */
int gt_history_start_retention(gt_server_t *srv);

/* The workflow actor type (for gtctl/tests). */
extern const gt_actor_type_t gt_workflow_actor_type;

/* ---- task tokens (opaque to clients; msgpack) ---- */
typedef struct gt_task_token {
  char ns_id[37];
  char workflow_id[1024];
  char run_id[37];
  int64_t scheduled_event_id;
  int64_t started_event_id;
  int32_t attempt;
  int kind; /* gt_task_kind_t */
  /* > 0: a speculative workflow task's, valid only in the workflow actor activation that
   * handed it out (wf_tasks.c record_wft_started); 0: none (every other token) */
  int64_t epoch;
} gt_task_token_t;

/* The most bytes a token takes: the array byte, six ints of at most 9 bytes, and the
 * three strings with their headers (3 bytes at most), each at most its array less the
 * NUL. */
#define GT_TASK_TOKEN_MAX (1 + 6 * 9 + 3 * 3 + 36 + 1023 + 36)

/* Encodes a token into malloc'd bytes (OUT: *len), or NULL: gt_task_token_put's bytes
 * (tests and tools; the server uses gt_task_token_put). */
uint8_t *gt_task_token_encode(const gt_task_token_t *t, size_t *len);
/* Encodes a token from its fields, without a gt_task_token_t or a malloc (the hot path:
 * every task handed to a worker), each string cut as gt_task_token_t's array would cut
 * it (ns_id and run_id at 36 bytes, workflow_id at 1023).
 *   out: GT_TASK_TOKEN_MAX bytes
 * Returns the token's length. */
size_t gt_task_token_put(uint8_t *out, int kind, const char *ns_id, const char *workflow_id,
                         const char *run_id, int64_t scheduled_event_id,
                         int64_t started_event_id, int32_t attempt, int64_t epoch);
/* Decodes a token. 0 or GT_EINVAL. */
int gt_task_token_decode(gt_task_token_t *t, const uint8_t *p, size_t len);

#endif
