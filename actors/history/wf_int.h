/*
 * wf_int.h: the workflow actor's internals, shared by workflow.c (the actor: routing,
 * activation, start, describe, history), wf_state.c (events: emit, apply, replay,
 * persistence transactions), wf_tasks.c (workflow tasks, commands, activity dispatch) and
 * wf_activities.c (activity outcomes, retries, heartbeats).
 *
 * DESIGN
 *   Event sourcing: every state change is an event. `wf_emit` gives the event its id and
 *   time, packs it (framed as History.events, see pb.h) onto the run's history, and calls
 *   `wf_apply`, the ONE function that changes mutable state from an event. Replay after a
 *   restart calls the same `wf_apply` for every stored event, so a run rebuilt from its
 *   history is the run that was in memory. While a workflow task is started, new events
 *   (an activity's completion) are buffered without an id and flushed after the task's
 *   completion events, as Temporal does.
 *   Every mutation is one wf_txn_t: the ops for the store, and the effects (replies, tasks
 *   for matching) that may happen only after the commit. Transactions are pipelined; their
 *   completions come back in order as GT_MSG_WRITE_DONE. One exception: a workflow task
 *   goes to matching when its txn is submitted, and may be handed to a worker before that
 *   commit (speculative: wf_tasks.c record_wft_started says why it is safe).
 *
 * INVARIANTS
 *   - run->ev_off[i] is the offset in run->hist of event id i+1; next_event_id == n_ev + 1.
 *   - At most one workflow task is scheduled or started per run.
 *   - After a failed commit the actor is `broken`: it answers UNAVAILABLE and stops once its
 *     in-flight transactions have completed; the next request reloads it from the store.
 */
#ifndef GT_WF_INT_H
#define GT_WF_INT_H

#include <string.h>

#include "actors/history/history.h"
#include "actors/matching/matching.h"

typedef enum { WFT_NONE = 0, WFT_SCHEDULED, WFT_STARTED } wft_state_t;

typedef struct wf_activity {
  int64_t scheduled_event_id;
  size_t ev_index;        /* index of its ActivityTaskScheduled event */
  char *activity_id;
  char *task_queue;
  int32_t attempt;
  int started;            /* handed to a worker (mutable state only, no event yet) */
  int start_persisted;    /* the executions row names this start (pack_state field 11):
                           * after a crash it is restored, not dispatched again */
  int closing;            /* a completion is buffered: no further transitions */
  int eager;              /* scheduled by the workflow task completing now, which asked
                           * for eager execution: wf_eager_start starts it (or hands it
                           * to matching) before the completion's commit */
  int64_t started_ns;
  int64_t scheduled_ns;   /* of the current attempt */
  char *identity;
  char request_id[37];
  uint8_t *last_failure;  /* packed Failure of the previous attempt, or NULL */
  size_t last_failure_len;
  uint64_t retry_timer;
  uint64_t s2s_timer, s2c_timer, st2c_timer, hb_timer; /* timeout timers (0: none) */
  int64_t s2s_ms, st2c_ms, hb_ms;                      /* timeouts from the event */
  /* retry policy, defaults applied */
  int64_t initial_ms, max_interval_ms;
  double coefficient;
  int32_t max_attempts;
  int64_t schedule_to_close_ms;
  int cancel_requested;   /* ActivityTaskCancelRequested written */
  uint8_t *heartbeat;     /* packed Payloads of the last heartbeat, or NULL */
  size_t heartbeat_len;
} wf_activity_t;

typedef struct wf_child {
  int64_t initiated_id;
  int64_t started_id;
  char *workflow_id;
  char *workflow_type;
  char run_id[37];
  int parent_close_policy;
  /* mutable state only: its ChildWorkflowExecutionStarted (started_seen) or close event
   * (close_seen) is emitted, perhaps still buffered: a repeated message is ignored */
  int started_seen, close_seen;
} wf_child_t;

/* A SignalExternalWorkflowExecution or RequestCancelExternalWorkflowExecution initiated and
 * not yet answered (its Initiated event without the matching result event). */
typedef struct wf_xpending {
  int64_t initiated_id;
  int answered; /* mutable state only: the result event is emitted (perhaps buffered) */
} wf_xpending_t;

typedef struct wf_update {
  struct wf_update *next;
  char *update_id;
  int stage;              /* UpdateWorkflowExecutionLifecycleStage reached */
  int sent;               /* the request rides the started workflow task */
  uint8_t *request;       /* packed update.v1.Request */
  size_t request_len;
  int64_t accepted_event_id;
  uint8_t *outcome;       /* packed update.v1.Outcome once completed */
  size_t outcome_len;
  gt_rpc_t *waiters;      /* callers waiting for a stage (rpc->attempt) */
} wf_update_t;

typedef struct wf_timer {
  char *timer_id;
  int64_t started_event_id;
  int64_t fire_ns;
  uint64_t actor_timer; /* armed gt_actor timer, 0 when not armed */
} wf_timer_t;

typedef struct wf_run {
  struct wf_run *next;
  char run_id[37];
  int status; /* PB_STATUS(...) */
  char *workflow_type;
  char *task_queue;
  char *request_id;
  char first_run_id[37];  /* first run of the continue-as-new chain */
  uint8_t *memo;          /* packed Memo of the run, or NULL */
  size_t memo_len;
  uint8_t *search_attrs;  /* packed SearchAttributes of the run, or NULL */
  size_t search_attrs_len;
  int64_t start_ns, close_ns;
  /* WorkflowExecutionStarted's first_workflow_task_backoff (a start delay): the execution
   * time is start_ns + backoff_ms, and while backoff_pending (no workflow task yet) the
   * first one waits for it (wf_arm_backoff); only a timer, a cancel request or another
   * SignalWithStart end the wait, not a signal (Temporal's
   * IsWorkflowPendingOnWorkflowTaskBackoff) */
  int64_t backoff_ms;
  int backoff_pending;
  char *cron_schedule;   /* WorkflowExecutionStarted's, or NULL: a cron run (wf_cron.c) */
  int64_t run_timeout_ms, exec_timeout_ms, task_timeout_ms;
  int64_t expiration_ns; /* the whole execution's deadline (all runs), 0 = none */
  /* history */
  gt_buf_t hist;
  size_t *ev_off;
  size_t n_ev, cap_ev;
  size_t persisted_ev;   /* events already queued to the store */
  size_t committed_ev;   /* events durable in the store: what readers may see */
  int64_t db_version;    /* of the executions row after the last queued txn */
  /* What the executions row holds of the state read back (wf_restore_state and recovery):
   * a commit writes the row only when these change (or on creation and close). */
  int row_known;         /* 0 after a load: the next commit writes the row */
  int64_t loaded_sleeps; /* the row's sleep state when this activation loaded the run: a
                          * deadline already registered with the sleepers actor */
  char *row_sticky;
  int64_t row_sticky_s2s_ms, row_sleeps;
  int row_xwf;           /* the row's field 10 (see pack_state) */
  int acts_dirty;        /* an activity's persisted retry state (executions.state field
                          * 11: attempt, its schedule time, last failure, heartbeat
                          * details) changed since the row was last written */
  /* buffered events: packed without an event id */
  gt_buf_t buffered;
  size_t *buf_off;
  size_t n_buf, cap_buf;
  /* workflow task */
  wft_state_t wft_state;
  int64_t wft_scheduled_id, wft_started_id;
  int32_t wft_attempt;
  int64_t wft_scheduled_ns, wft_started_ns;
  uint64_t wft_timer;
  int64_t previous_started_id; /* started id of the last completed workflow task */
  char *sticky_queue;          /* the worker's sticky queue, or NULL (executions.state) */
  int64_t sticky_s2s_ms;       /* its schedule-to-start timeout */
  int wft_on_sticky;           /* the scheduled workflow task went to the sticky queue */
  /* A retried workflow task (attempt > 1) is transient, as in Temporal: its Scheduled and
   * Started events are not written until it completes (and never when it fails again);
   * the worker sees them appended to the history it polls. */
  int wft_transient;
  /* Eager workflow start: the first workflow task is scheduled but kept from matching,
   * for wf_wft_start_eager to start it for the starting client's worker. */
  int wft_eager;
  /* The started task's token epoch: the actor's epoch when it was handed out speculatively
   * (wf_tasks.c record_wft_started: some of the events it shows were not durable yet),
   * else 0. */
  int64_t wft_epoch;
  char *wft_identity;          /* who started the transient task */
  char wft_request_id[37];
  /* activities */
  wf_activity_t *acts;
  size_t n_acts, cap_acts;
  /* parent (a child run), from WorkflowExecutionStarted */
  char parent_ns_id[37];
  char *parent_workflow_id;
  char parent_run_id[37];
  int64_t parent_initiated_id;
  int parent_close_policy; /* the parent's ParentClosePolicy for this child run (from its
                            * StartChildWorkflowExecutionInitiated; executions.state field
                            * 12); 0: not known (not a child, or a row from before) */
  int parent_notified;
  char next_run_id[37];  /* closed naming a next run (continue-as-new, retry, cron): its
                          * id, and the chain goes on (a parent keeps waiting); else "" */
  /* children: StartChildWorkflowExecutionInitiated not yet closed */
  struct wf_child *children;
  size_t n_children, cap_children;
  /* external signals and cancel requests initiated, not yet answered */
  wf_xpending_t *xpending;
  size_t n_xpending, cap_xpending;
  wf_update_t *updates;
  /* user timers (StartTimer) */
  wf_timer_t *timers;
  size_t n_timers, cap_timers;
  int cancel_requested;
  /* request ids of the last signals (SignalWorkflowExecution de-duplication) */
  /* Request ids of the run's signals, every one (as Temporal's mutable state keeps them),
   * so a retried or re-sent signal is applied once; rebuilt from the history at load. An
   * open-addressing set: cap_signal_ids slots (a power of two, at most half full), NULL
   * empty, so a load replaying thousands of signals stays linear. */
  char **signal_ids;
  size_t n_signal_ids, cap_signal_ids;
  /* GetWorkflowExecutionHistory long polls */
  gt_rpc_t *waiters;
  int64_t transitions;
  /* wf_delete.c: a DeleteWorkflowExecution batch deleting the run is in flight; the run
   * leaves memory when it commits */
  int deleting;
  /* Not the current run, though the newest in memory: the current run was deleted, or
   * this one was loaded by its id while the workflow id had none (current_executions names
   * no run). wf_find_run(wf, "") does not answer it. */
  int detached;
} wf_run_t;

/* The run's execution time (Unix ns): its start plus its first workflow task backoff
 * (start delay, cron or retry wait): when the first task is due, what the run and
 * execution timeouts and visibility's ExecutionTime count from. */
static inline int64_t wf_run_execution_ns(const wf_run_t *run) {
  return run->start_ns + run->backoff_ms * 1000000;
}

typedef enum { EFF_NONE = 0, EFF_REPLY, EFF_TASK, EFF_REPARK, EFF_XMSG, EFF_VIS } wf_effect_kind_t;

/* A message between workflow actors (children, external signals, parent close policy). */
typedef enum {
  WFX_START_CHILD = 1, /* parent -> child id: start a run (payload: Initiated attributes) */
  WFX_CHILD_STARTED,   /* child -> parent */
  WFX_CHILD_START_FAILED,
  WFX_CHILD_CLOSED,    /* child -> parent (payload: the child's close event) */
  WFX_SIGNAL,          /* initiator -> target (payload: SignalExternal Initiated attributes) */
  WFX_SIGNAL_RESULT,   /* target -> initiator (cause 0: delivered) */
  WFX_TERMINATE,       /* parent close policy */
  WFX_CANCEL,
  WFX_CANCEL_EXTERNAL, /* RequestCancelExternalWorkflowExecution: initiator -> target */
  WFX_CANCEL_RESULT,   /* target -> initiator (cause 0: requested) */
  WFX_DELETE_RUN,      /* retention -> workflow: delete a closed run (retention.c) */
  WFX_CHILD_CHECK,     /* parent -> child id, at recovery: report the child run's close
                        * again if it closed (WFX_CHILD_CLOSED); nothing if it runs */
  WFX_PARENT_CHECK,    /* child -> parent run, at recovery: apply the parent close policy
                        * again if that run closed with the child open */
  WFX_PARENT_GONE,     /* parent id -> child run, answering WFX_PARENT_CHECK: the store has
                        * no such parent run (deleted): the child applies the policy it
                        * keeps (wf_run_t.parent_close_policy) */
} wf_xop_t;

typedef struct wf_xmsg {
  gt_msg_t hdr;        /* type GT_MSG_XWF */
  struct wf_xmsg *next;
  wf_xop_t op;
  char to_ns_id[37];
  char *to_workflow_id;
  char to_run_id[37];  /* "" = current run */
  char from_ns_id[37];
  char *from_workflow_id;
  char from_run_id[37];
  int64_t initiated_id;
  int cause;
  uint8_t *payload;
  size_t len;
} wf_xmsg_t;

typedef struct wf_effect {
  wf_effect_kind_t kind;
  gt_rpc_t *rpc;       /* EFF_REPLY, EFF_REPARK */
  uint8_t *body;       /* EFF_REPLY: response bytes (owned) */
  size_t len;
  gt_task_t *task;     /* EFF_TASK (owned) */
  char *queue;         /* EFF_TASK: task queue name (owned) */
  wf_xmsg_t *xmsg;     /* EFF_XMSG (owned) */
  struct gt_vis_task *vis; /* EFF_VIS: a visibility outbox row to apply (owned) */
} wf_effect_t;

typedef struct workflow workflow_t;

typedef struct wf_txn {
  gt_msg_t hdr;        /* GT_MSG_WRITE_DONE once committed */
  struct wf_txn *next;
  workflow_t *wf;
  wf_run_t *run;
  int rc;
  int create;          /* the run's first transaction */
  size_t first_ev;     /* events [first_ev, last_ev) of the run are this txn's */
  size_t last_ev;
  int update_current;
  int close_run;
  int update_visibility; /* memo or search attributes changed */
  char can_run_id[37];   /* ContinueAsNew, cron or retry: the next run's id */
  int retry_next;        /* ...which is a retry (wf_retry.c), after retry_backoff_ms */
  int64_t retry_backoff_ms;
  int cancel_delivered; /* an activity was canceled by a command: schedule a new task */
  int delete_run;       /* wf_delete.c: the batch deletes the run's rows (its events with
                         * them) instead of writing them; the run leaves memory once it
                         * commits */
  wf_effect_t *eff;
  size_t n_eff, cap_eff;
} wf_txn_t;

typedef struct wf_query {
  struct wf_query *next;
  int64_t seq;           /* its id in the query task's token */
  char run_id[37];
  gt_rpc_t *rpc;         /* the QueryWorkflow call waiting for the answer */
  uint64_t timer;
  /* WAITING: for the run's next workflow task; LEGACY: a query task is in matching or with
   * a worker; IN_WFT: sent inside a started workflow task, answered in its completion;
   * ANSWERED: that completion holds the answer (`result`), given once `answer_txn`, the
   * completion's txn, has committed (the task may show events that were not durable) */
  enum { WFQ_WAITING = 0, WFQ_LEGACY, WFQ_IN_WFT, WFQ_ANSWERED } state;
  uint8_t *result;       /* ANSWERED: the packed WorkflowQueryResult */
  size_t result_len;
  const struct wf_txn *answer_txn;
} wf_query_t;

struct workflow {
  gt_actor_t base;
  gt_server_t *srv;
  char ns_id[37];
  char *workflow_id;
  int shard;
  wf_run_t *runs;        /* newest first; runs->status tells whether one is running */
  int loading;           /* activation read in flight (or not begun: lazy_load) */
  int lazy_load;         /* activated, the load not begun: the first message decides */
  int creating;          /* a blind start's create transaction is in flight */
  int loading_older;     /* ...of a run other than the current one (named by a request) */
  char missing_run_id[37]; /* the last run id a request named that the store lacks */
  int broken;
  gt_rpc_t *deferred_head, *deferred_tail; /* requests that arrived while loading */
  wf_txn_t *txn_head, *txn_tail;           /* in flight, in submission order */
  /* Every txn of this activation is a batch of this chain: once one fails, the store fails
   * the ones queued after it, so the store never holds a later txn's events without an
   * earlier one's (a txn may be submitted before the previous one's outcome is known).
   * Lives as long as the actor, which stays until its last txn completed. */
  gt_store_chain_t chain;
  /* This activation's epoch (wf_new_epoch): a speculative workflow task's token carries
   * it, and is refused by any other activation (after a restart or a reload the task's
   * events may be gone, and new ones may take their ids). */
  int64_t epoch;
  wf_txn_t *txn_spare; /* a finished txn kept for the next begin (its effects array too) */
  char create_request_id[37];
  wf_query_t *queries;   /* pending QueryWorkflow calls */
  wf_xmsg_t *xdeferred_head, *xdeferred_tail; /* actor messages that arrived while loading */
  int64_t next_query_seq;
  int xresend;           /* recovery activated it: resend the pending cross-workflow
                          * messages once loaded (wf_xwf_resend) */
};

/* What a new run needs, from StartWorkflowExecution or SignalWithStart. */
typedef struct start_params {
  pb_wftype_t *workflow_type;
  pb_taskqueue_t *task_queue;
  pb_payloads_t *input;
  pb_dur_t *exec_timeout, *run_timeout, *task_timeout;
  char *identity, *request_id, *cron_schedule;
  int reuse_policy, conflict_policy;
  pb_retry_t *retry_policy;
  Temporal__Api__Common__V1__Memo *memo;
  Temporal__Api__Common__V1__SearchAttributes *search_attributes;
  Temporal__Api__Common__V1__Header *header;
  /* continue-as-new and signal-with-start */
  const char *run_id;            /* the new run's id, or NULL for a fresh one */
  const char *first_run_id, *continued_run_id;
  int initiator;
  pb_failure_t *continued_failure;
  pb_payloads_t *last_completion_result;
  const Temporal__Api__Workflowservice__V1__SignalWithStartWorkflowExecutionRequest *signal;
  /* a child run: its parent */
  const char *parent_ns_id, *parent_workflow_id, *parent_run_id;
  int64_t parent_initiated_id;
  int parent_close_policy;
  int64_t expiration_ns;  /* continue-as-new: the execution's deadline carries over */
  int eager;              /* eager workflow start: the first task goes back in the reply */
  pb_dur_t *start_delay;  /* workflow_start_delay: the first workflow task's backoff */
  int32_t attempt;        /* the run's attempt (a retry's); 0 = 1 */
} start_params_t;

/* ---- workflow.c ---- */
/* Creates a run: WorkflowExecutionStarted (+ a signal), the first workflow task, in a new
 * transaction returned in *t (not committed). NULL on ENOMEM. */
wf_run_t *wf_create_run(workflow_t *wf, const start_params_t *p, wf_txn_t **t);
/* Starts and commits the run that follows prev (continue-as-new, cron): p's memo and
 * search attributes, when NULL, are prev's as they are now. why names it in a failure's
 * log line. */
void wf_start_next_run(workflow_t *wf, const wf_run_t *prev, start_params_t *p,
                       const char *why);
/* Starts prev's workflow again as the run that follows it (cron, retry): its first run's
 * attributes, the given initiator, attempt prev's + 1 (next_attempt) or 1, result (else
 * the last completion result prev was handed) and failure, after backoff_ms. */
void wf_start_again(workflow_t *wf, wf_run_t *prev, const char *run_id, int initiator,
                    int next_attempt, pb_payloads_t *result, pb_failure_t *failure,
                    int64_t backoff_ms, const char *why);
/* Stops the actor when nothing waits on it in memory: every run is closed, or the open one
 * only sleeps (on user timers, its timeouts, or a message) with its next deadline at least
 * WF_SLEEP_MIN_MS away, registered with the sleepers actor. Its memory goes, the store
 * keeps everything, and the next message (or the wake-up) activates it again
 * (redeliver_on_stop). */
void wf_maybe_passivate(workflow_t *wf);
/* An open run that only sleeps: nothing of it lives in memory alone (no workflow task, no
 * activity, no buffered event, no update in progress), so a reload from its history
 * rebuilds it whole. OUT: *due_ms, its next deadline (0 = none: only a message wakes it). */
int wf_run_sleeps(const wf_run_t *run, int64_t *due_ms);
/* A run whose next deadline is closer than this stays in memory (a reload costs more). */
#define WF_SLEEP_MIN_MS 2000

/* ---- sleepers.c ---- */
/* Asks the sleepers actor to wake this workflow (send GT_MSG_WAKE to its key) at wall-clock
 * millisecond due_ms. Returns 0, GT_ENOMEM, GT_ECLOSED. */
int wf_sleep_until(workflow_t *wf, int64_t due_ms);
/* The same for a workflow that is not in memory, by its key (recovery). */
int wf_sleep_key_until(gt_server_t *srv, const void *key, size_t keylen, int64_t due_ms);
/* Frees closed runs beyond the few kept in memory. */
void wf_drop_old_runs(workflow_t *wf);

/* ---- wf_state.c ---- */
/* The task token a worker echoes back, into out (GT_TASK_TOKEN_MAX bytes, on the caller's
 * stack: no malloc per task). Returns its length. */
size_t wf_make_token(workflow_t *wf, const wf_run_t *run, int kind, int64_t scheduled_id,
                     int64_t started_id, int32_t attempt, int64_t epoch, uint8_t *out);
/* A new activation epoch: > 0, unique in this process, and with 31 random bits from the
 * process's start, unlike any earlier process's (but by chance). */
int64_t wf_new_epoch(void);
/* Signal request ids of the run: remember one; was it seen? */
void wf_note_signal_id(wf_run_t *run, const char *request_id);
int wf_seen_signal_id(const wf_run_t *run, const char *request_id);
/* Replaces *p with the packed bytes of m (NULL m clears). */
void wf_set_packed(uint8_t **p, size_t *len, const ProtobufCMessage *m);
wf_run_t *wf_run_new(workflow_t *wf, const char *run_id);
/* A new run id: a UUID of version 7 (RFC 9562), whose first 48 bits are the Unix time in
 * ms. Clients treat run ids as opaque strings; time-ordered ones make every index keyed
 * by run id (visibility's primary key) grow at its end instead of at a random page. */
void wf_new_run_id(char out[37]);
/* At load, after the history is replayed: takes back from the executions.state column
 * what no event records (the sticky queue; field 11: the retry state of the pending
 * activities that were retried or heartbeat with details, matched by scheduled event id,
 * an entry whose activity is no longer pending ignored). Tolerates an older or
 * unreadable state (restores nothing). */
void wf_restore_state(wf_run_t *run, const uint8_t *state, size_t len);
/* Field 9 of an executions.state: WF_STATE_AWAKE (also for an older or unreadable state),
 * WF_STATE_ASLEEP_UNTIL_MESSAGE, or the wall-clock ms of the run's next deadline. */
#define WF_STATE_AWAKE 0
#define WF_STATE_ASLEEP_UNTIL_MESSAGE (-1)
/* What recovery reads of an executions.state, in one parse: returns field 9, and sets *xwf
 * to field 10: 1 when the run had cross-workflow operations pending (wf_xwf_pending) as it
 * went to sleep, so recovery must activate it to resend them; 0 for an awake run, an older
 * state (10 fields) or an unreadable one. */
int64_t wf_state_recovery(const uint8_t *state, size_t len, int *xwf);
void wf_run_free(wf_run_t *run);
wf_run_t *wf_find_run(workflow_t *wf, const char *run_id); /* "" = newest */
/* Whether the store lacks run run_id (not ""): the last older-run load found no row. */
static inline int wf_run_missing(const workflow_t *wf, const char *run_id) {
  return run_id[0] && strcmp(run_id, wf->missing_run_id) == 0;
}
int wf_running(const wf_run_t *run);

/* wf_encode.c: appends ev as field `field` of wire type LEN; the same bytes as
 * gt_buf_field_msg, several times faster for the events the server writes. */
void wf_buf_field_event(gt_buf_t *b, uint32_t field, const pb_event_t *ev);

/* wf_reply.c: the poll replies encoded by hand, byte for byte as protobuf-c would. */
typedef struct wf_wft_reply {
  const uint8_t *token; /* task token */
  size_t toklen;
  const char *workflow_id, *run_id, *workflow_type, *task_queue;
  int64_t previous_started_id, started_id;
  int32_t attempt;
  int64_t scheduled_ns, started_ns;
} wf_wft_reply_t;
/* Appends a PollWorkflowTaskQueueResponse's fields 1..13 (not the history, queries,
 * messages, which the caller appends). */
void wf_wft_reply_head(gt_buf_t *b, const wf_wft_reply_t *in);
/* The same with protobuf-c: the reference of the unit test. */
void wf_wft_reply_head_pb(gt_buf_t *b, const wf_wft_reply_t *in);

typedef struct wf_act_reply {
  const uint8_t *token; /* task token */
  size_t toklen;
  const char *ns_name, *workflow_type, *workflow_id, *run_id;
  int64_t scheduled_ns; /* of the current attempt */
  int64_t started_ns;
  int32_t attempt;
  const uint8_t *heartbeat; /* packed Payloads of the last heartbeat, or NULL */
  size_t heartbeat_len;
} wf_act_reply_t;
/* Appends the PollActivityTaskQueueResponse of the activity whose encoded
 * ActivityTaskScheduled HistoryEvent is ev[0..len), copying its fields as bytes.
 * 0 (b->oom tells a failed allocation), or GT_EINVAL with nothing appended: an encoding
 * the fast path does not take; wf_act_reply_pb then gives the answer. */
int wf_act_reply(gt_buf_t *b, const wf_act_reply_t *in, const uint8_t *ev, size_t len);
/* The same through protobuf-c (unpack, pack). 0, or GT_EINVAL: not an
 * ActivityTaskScheduled event, or heartbeat details that do not unpack (out of memory). */
int wf_act_reply_pb(gt_buf_t *b, const wf_act_reply_t *in, const uint8_t *ev, size_t len);
/* The encoded HistoryEvent of event index i, without its History.events framing. */
void wf_event_bytes(const wf_run_t *run, size_t i, const uint8_t **p, size_t *len);

/* Assigns id, time and task id; packs; appends (or buffers when `buffer` and a workflow
 * task is started); applies. Returns the event id (0 if buffered) or a GT_E* code. */
int64_t wf_emit(workflow_t *wf, wf_run_t *run, pb_event_t *ev, int buffer);
/* Flushes buffered events (ids assigned now). Returns how many were flushed. */
size_t wf_flush_buffered(workflow_t *wf, wf_run_t *run);
/* Applies one event to mutable state (live and replay). */
int wf_apply(wf_run_t *run, const pb_event_t *ev, size_t ev_index);
/* Unpacks event index i of a run (free with protobuf_c_message_free_unpacked). */
pb_event_t *wf_event_unpack(const wf_run_t *run, size_t i);
wf_activity_t *wf_find_activity(wf_run_t *run, int64_t scheduled_event_id);

wf_txn_t *wf_txn_begin(workflow_t *wf, wf_run_t *run);
void wf_txn_reply(wf_txn_t *t, gt_rpc_t *rpc, gt_buf_t *body); /* takes body bytes */
void wf_txn_reply_msg(wf_txn_t *t, gt_rpc_t *rpc, const ProtobufCMessage *resp);
/* Replies with an empty message (every Respond* and most write RPCs answer one). */
void wf_txn_reply_empty(wf_txn_t *t, gt_rpc_t *rpc);
void wf_txn_task(wf_txn_t *t, const char *queue, gt_task_t *task);
void wf_txn_repark(wf_txn_t *t, gt_rpc_t *rpc);
/* Queues the transaction's batch to the store. Effects run at GT_MSG_WRITE_DONE. */
void wf_txn_commit(wf_txn_t *t);
/* Handles GT_MSG_WRITE_DONE. */
void wf_txn_done(workflow_t *wf, wf_txn_t *t);
/* Frees the actor's spare transaction (stop hook). */
void wf_txn_spare_free(workflow_t *wf);
/* Drops the effects of a transaction that will not commit (or did not): tasks and actor
 * messages are freed, reparked polls go back to matching; the requests waiting for a reply
 * are answered UNAVAILABLE, or with keep_requests returned unanswered, in order, linked by
 * ->next. */
gt_rpc_t *wf_txn_drop_effects(wf_txn_t *t, int keep_requests);
/* Keeps a finished transaction as the spare, or frees it. */
void wf_txn_recycle(workflow_t *wf, wf_txn_t *t);
/* Blind starts (workflow.c), called by wf_txn_done with the create's outcome: it committed,
 * serve what waited (made); or the workflow id had a row after all (lost; t, the create,
 * already out of the in-flight list): drop the run and t, load, serve the start again. */
void wf_blind_start_made(workflow_t *wf);
void wf_blind_start_lost(workflow_t *wf, wf_txn_t *t);
/* Test hook: blind starts that found a row (any thread reads it; rare, so not hot). */
extern _Atomic long gt__wf_blind_starts_lost;

/* Wakes GetWorkflowExecutionHistory waiters of a run that have something to read now. */
void wf_wake_waiters(workflow_t *wf, wf_run_t *run);

/* Rebuilds a run from its stored history (concatenated History blobs). 0 or GT_ECORRUPT. */
int wf_load_history(wf_run_t *run, const uint8_t *p, size_t n);

/* Appends events [from, to) (indexes) of a run, already framed, to b. */
void wf_put_events(const wf_run_t *run, size_t from, size_t to, gt_buf_t *b);

/* ---- wf_tasks.c, wf_activities.c ---- */
/* Writes a transient workflow task's Scheduled (and Started, when started) events: it is
 * about to complete, or other events must follow it. */
void wf_materialize_transient(workflow_t *wf, wf_run_t *run);
/* Schedules a workflow task (event + dispatch in txn). */
void wf_schedule_wft(workflow_t *wf, wf_run_t *run, wf_txn_t *t);
/* After a load: the tasks the run owes go to matching once t commits (the scheduled
 * workflow task, the activities not started); an activity restored in its retry backoff
 * (its attempt's schedule time still ahead) gets its retry timer instead. */
void wf_dispatch_pending(workflow_t *wf, wf_run_t *run, wf_txn_t *t);
/* After a load: a workflow task that was started before the restart gets its
 * start-to-close timer again (for the time it has left). */
void wf_rearm_after_load(workflow_t *wf, wf_run_t *run);
/* Eager workflow start: starts the new run's first workflow task (scheduled by the create
 * transaction with run->wft_eager set) for the worker `identity`, as a poll would, so
 * WorkflowTaskStarted is written by that same transaction, and appends the task's
 * PollWorkflowTaskQueueResponse to out. Its start-to-close timer is armed unless a blind
 * start's outcome is pending (wf_blind_start_made arms it). Returns 0, or GT_ENOMEM (out
 * unusable): the task stays started with nobody holding it, times out and is dispatched
 * again, as after a lost poll answer. */
int wf_wft_start_eager(workflow_t *wf, wf_run_t *run, const char *identity, gt_buf_t *out);
void wf_on_record_started(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_wft_completed(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_wft_failed(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_act_completed(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_act_failed(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_timer(workflow_t *wf, gt_timer_msg_t *tm);
/* Arms the actor timers of a run's pending user timers (after a load). */
void wf_arm_timers(workflow_t *wf, wf_run_t *run);
/* ---- wf_cron.c: cron workflows ---- */
/* The first run's backoff until the schedule fires; -1 when it is not a valid one. */
int64_t wf_cron_first_backoff_ms(const char *cron_schedule);
/* The backoff before the next run of a cron run closing now; -1 when it is not a cron
 * run (or its schedule never fires again): no next run. */
int64_t wf_cron_backoff_ms(const wf_run_t *run);
/* Starts the next run of a cron run whose close (naming run_id) was committed: result of a
 * completion, failure of a failure or timeout (either may be NULL). */
void wf_cron_continue(workflow_t *wf, wf_run_t *prev, const char *run_id,
                      pb_payloads_t *result, pb_failure_t *failure);

/* ---- wf_retry.c: workflow retry policies ---- */
/* The retry state of a run closing now with failure (NULL: a run timeout):
 * RETRY_STATE_IN_PROGRESS with *backoff_ms when it is retried, else why not. */
int wf_retry_decide(const wf_run_t *run, const pb_failure_t *failure, int64_t *backoff_ms);
/* Starts the retry of prev, whose close (naming run_id) was committed. */
void wf_retry_continue(workflow_t *wf, wf_run_t *prev, const char *run_id,
                       pb_failure_t *failure, int64_t backoff_ms);

/* Arms the timer that ends a pending first workflow task backoff (no-op without one). */
void wf_arm_backoff(workflow_t *wf, wf_run_t *run);
/* A signal's workflow task: scheduled unless the run waits out its first workflow task
 * backoff (Temporal schedules none then: the signal goes with the first task). */
void wf_need_wft_for_signal(workflow_t *wf, wf_run_t *run, wf_txn_t *t);
/* Ensures a workflow task will deliver new events. */
void wf_need_wft(workflow_t *wf, wf_run_t *run, wf_txn_t *t);
/* RecordActivityTaskHeartbeat: new details are persisted (executions.state field 11) before
 * the reply; a heartbeat that leaves them as they were writes nothing. */
void wf_on_heartbeat(workflow_t *wf, gt_rpc_t *rpc);
/* *ById activity calls: names the activity by id, then serves it as the token form. */
void wf_on_activity_by_id(workflow_t *wf, gt_rpc_t *rpc);
/* GetWorkflowExecutionHistoryReverse. */
void wf_on_history_reverse(workflow_t *wf, gt_rpc_t *rpc);
/* Drops the run's sticky queue: later workflow tasks go to the normal queue. */
void wf_clear_sticky(wf_run_t *run);
void wf_on_reset_sticky(workflow_t *wf, gt_rpc_t *rpc);
/* A started transient (retried) workflow task's Scheduled and Started events, as they will
 * be written, appended to out as History.events fields; nothing when there is none. For
 * the poll answer and the last page of a history read (as Temporal appends them). */
void wf_transient_events(wf_run_t *run, gt_buf_t *out);
/* The events a worker-facing history read shows (a history fetch, a legacy query task):
 * the committed ones, and the started workflow task's WorkflowTaskStarted when it directly
 * follows them. That event is written by the task's next commit (wf_tasks.c), but the SDK
 * refuses a history that stops at WorkflowTaskScheduled while the task is started (it
 * fetches more, finds none, and fails the task); Temporal likewise shows a workflow
 * task's not-yet-written events. */
size_t wf_visible_events(const wf_run_t *run);
/* Matching found the sticky queue of the scheduled task (run_id, scheduled_id) without a
 * worker: the task goes to the normal queue now. */
void wf_on_sticky_gone(workflow_t *wf, const char *run_id, int64_t scheduled_id);
void wf_on_act_canceled(workflow_t *wf, gt_rpc_t *rpc);

gt_task_t *wf_new_act_task(workflow_t *wf, wf_run_t *run, wf_activity_t *a);
/* Ends an activity's attempt for good; writes its ActivityTaskStarted. Returns its id
 * (0 when buffered). */
int64_t wf_close_activity(workflow_t *wf, wf_run_t *run, wf_activity_t *act);
/* Whether a failure may be retried; OUT: *retry_state, *delay_ms. */
int wf_should_retry(wf_run_t *run, wf_activity_t *act, const pb_failure_t *f,
                    int *retry_state, int64_t *delay_ms);

/* Hands a scheduled activity to matching (after the commit) and arms its
 * schedule-to-start and schedule-to-close timers. */
void wf_act_dispatch(workflow_t *wf, wf_run_t *run, wf_txn_t *t, wf_activity_t *act);
/* Records an activity's attempt as started by `identity` (a poll, or eager execution):
 * mutable state only, and its start-to-close and heartbeat timers. */
void wf_act_set_started(workflow_t *wf, wf_run_t *run, wf_activity_t *act,
                        const char *identity, int64_t started_ns);
/* Appends the PollActivityTaskQueueResponse of a started activity (its token, the fields
 * of its ActivityTaskScheduled event). 0 (b->oom tells a failed allocation), or
 * GT_EINVAL with nothing appended: its scheduled event is unreadable. */
int wf_act_task_encode(gt_buf_t *b, workflow_t *wf, wf_run_t *run, const wf_activity_t *act,
                       const char *ns_name);

/* ---- wf_eager.c: eager activity dispatch ---- */
/* Whether a ScheduleActivityTask command is to start on the worker completing the workflow
 * task: it asks (request_eager_execution) and system.enableActivityEagerExecution is on. */
int wf_eager_wanted(const workflow_t *wf,
                    const Temporal__Api__Command__V1__ScheduleActivityTaskCommandAttributes *c);
/* After the commands of req are applied: starts every activity they scheduled with `eager`
 * set, as a poll by req->identity would, and appends its task to resp as
 * RespondWorkflowTaskCompletedResponse.activity_tasks (field 2); resp goes out once t
 * commits. One it cannot take (the reply would pass 4 MiB, an allocation failed) goes to
 * matching instead; none starts when the run closed or the task canceled it. */
void wf_eager_start(workflow_t *wf, wf_run_t *run, wf_txn_t *t,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    const char *ns_name, gt_buf_t *resp);

/* ---- wf_timeouts.c: activity and workflow timeouts ---- */
/* Arms the schedule-to-start and schedule-to-close timers of a dispatched attempt. */
void wf_act_arm_scheduled(workflow_t *wf, wf_run_t *run, wf_activity_t *act);
/* Arms start-to-close and heartbeat timers of a started attempt. */
void wf_act_arm_started(workflow_t *wf, wf_run_t *run, wf_activity_t *act);
/* After a load: arms the timeouts of the activities whose start it restored
 * (wf_restore_state), still out with their workers: start-to-close from the start, a
 * whole heartbeat timeout from now, schedule-to-close. */
void wf_act_rearm_after_load(workflow_t *wf, wf_run_t *run);
/* Re-arms the heartbeat timer. */
void wf_act_heartbeat(workflow_t *wf, wf_run_t *run, wf_activity_t *act);
/* Handles an activity or workflow timeout timer. Returns 1 when the token was one. */
int wf_on_timeout_timer(workflow_t *wf, uint64_t token);
/* Arms the workflow run timeout of a running run. */
void wf_arm_run_timeout(workflow_t *wf, wf_run_t *run);
/* The run's deadline (run timeout or execution expiration), wall-clock ms; 0 = none. */
int64_t wf_run_deadline_ms(const wf_run_t *run);
/* Retries an activity after `delay_ms` (attempt + 1, last failure kept). Writes no event:
 * marks the run's activity state dirty, so the caller's commit writes the executions row
 * (field 11) with the new attempt. */
void wf_act_retry(workflow_t *wf, wf_run_t *run, wf_activity_t *act, const pb_failure_t *f,
                  int64_t delay_ms);
/* Starts the activity's retry timer: its task is dispatched again in delay_ms (by
 * wf_act_retry, and at load for an activity restored in its backoff). */
void wf_act_arm_retry(workflow_t *wf, wf_activity_t *act, int64_t delay_ms);

/* ---- wf_query.c: queries answered by a worker (legacy query tasks) ---- */
void wf_on_query(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_query_answer(workflow_t *wf, gt_rpc_t *rpc);
/* A poll matched a query task: reply with the task, or repark when it is gone. */
void wf_on_query_started(workflow_t *wf, gt_rpc_t *rpc);
/* A query's deadline timer. Returns 1 when the token was one. */
int wf_on_query_timer(workflow_t *wf, uint64_t token, uint64_t timer_id);
/* Appends the queries waiting for this run's workflow task to a PollWorkflowTaskQueue
 * response (field 14, map<string, WorkflowQuery>) and marks them IN_WFT. */
void wf_queries_attach(workflow_t *wf, wf_run_t *run, gt_buf_t *resp);
/* After a workflow task of `run` ended: answers the queries it carried from `results`
 * (may be NULL: a failed task; they wait again), and sends waiting queries as query tasks
 * when no workflow task is pending. */
void wf_queries_after_wft(workflow_t *wf, wf_run_t *run,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *results,
    wf_txn_t *t); /* the task's txn: queries left go out as legacy tasks after it commits */
/* Fails every pending query (the actor stops). */
void wf_queries_fail(workflow_t *wf, const char *why);
/* Txn t completed (ok: committed): answers the queries whose answer waited for it, or
 * (failed) lets them wait again. */
void wf_queries_txn_done(workflow_t *wf, const wf_txn_t *t, int ok);

/* ---- wf_child.c: child workflows, external signals, parent close policy ---- */
/* The message of an initiated event (StartChildWorkflowExecutionInitiated,
 * SignalExternalWorkflowExecutionInitiated, RequestCancelExternalWorkflowExecutionInitiated)
 * with id `id` of run: the same at its first send and at recovery's. NULL: another event,
 * no target, or ENOMEM. */
wf_xmsg_t *wf_initiated_msg(workflow_t *wf, const wf_run_t *run, const pb_event_t *ev,
                            int64_t id);
wf_xmsg_t *wf_xmsg_new(wf_xop_t op, const char *to_ns, const char *to_wf, const char *to_run,
                       workflow_t *from, const char *from_run);
void wf_xmsg_free(wf_xmsg_t *m);
/* Makes gt_msg_free(m) call wf_xmsg_free (for messages built by hand). */
void wf_xmsg_set_dtor(wf_xmsg_t *m);
/* retention.c: a closed run past retention leaves memory and the store. */
void wf_on_delete_run(workflow_t *wf, const wf_xmsg_t *m);
/* Sends after the transaction commits. Takes m. */
void wf_txn_xmsg(wf_txn_t *t, wf_xmsg_t *m);
/* Sends now. Takes m. */
void wf_xsend(gt_server_t *srv, wf_xmsg_t *m);
void wf_on_xmsg(workflow_t *wf, wf_xmsg_t *m);
/* The run m asks about when the actor must load it first (it is older than those in
 * memory: a recovery's check names it), or "" when m can be served now. */
const char *wf_xmsg_older_run(workflow_t *wf, const wf_xmsg_t *m);
const char *wf_check_start_child(wf_run_t *run, const pb_command_t *c);
void wf_cmd_start_child(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                        int64_t completed_id);
const char *wf_check_signal_external(const pb_command_t *c);
void wf_cmd_signal_external(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                            int64_t completed_id);
/* At commit: notify the parent of a closed child run, apply the parent close policy. */
void wf_child_on_commit(workflow_t *wf, wf_run_t *run, wf_txn_t *t);
/* Whether a running run waits on another workflow's actor: a child initiated and not
 * closed, an external signal or cancel request not answered, a parent whose close policy
 * applies to it. Such a run is activated at
 * recovery (executions.state field 10) whatever else it sleeps on. */
int wf_xwf_pending(const wf_run_t *run);
/* After recovery activated and loaded the actor: sends again, now, every cross-workflow
 * message of the current run whose initiating event is durable and whose answer is not
 * recorded (a start, a signal, a cancel request; a started child is asked for its close,
 * a child run's parent for its close policy).
 * The receivers are idempotent, so a message that was not lost is answered again and the
 * repeat ignored. */
void wf_xwf_resend(workflow_t *wf);
/* Test hooks: a bit (1 << op) set in gt__wf_xmsg_drop makes the commit effects drop the
 * wf_xop_t op's messages instead of sending them, as a crash right after the commit would
 * (counted in gt__wf_xmsgs_dropped). Any thread reads them (relaxed; tests only set them
 * while the server is idle). */
extern _Atomic long gt__wf_xmsg_drop;
extern _Atomic long gt__wf_xmsgs_dropped;
/* Applies child-related events to mutable state (called by wf_apply). */
void wf_child_apply(wf_run_t *run, const pb_event_t *ev);
void wf_children_free(wf_run_t *run);

/* ---- wf_update.c: Workflow Update ---- */
void wf_on_update(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_poll_update(workflow_t *wf, gt_rpc_t *rpc);
int wf_on_update_timer(workflow_t *wf, uint64_t token, uint64_t timer_id);
void wf_update_apply(wf_run_t *run, const pb_event_t *ev);
void wf_updates_free(wf_run_t *run);
/* Adds admitted update requests as messages (field 15) to a poll response. */
void wf_updates_attach(workflow_t *wf, wf_run_t *run, gt_buf_t *resp);
const char *wf_check_protocol_command(
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    const pb_command_t *c);
void wf_cmd_protocol_message(workflow_t *wf, wf_run_t *run, wf_txn_t *t,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    const pb_command_t *c, uint8_t *done);
/* After a workflow task: the messages no command named (req may be NULL: the task failed).
 * Returns 1 when admitted updates still wait for a workflow task. */
int wf_updates_after_wft(workflow_t *wf, wf_run_t *run, wf_txn_t *t,
    const Temporal__Api__Workflowservice__V1__RespondWorkflowTaskCompletedRequest *req,
    uint8_t *done);
void wf_updates_on_close(workflow_t *wf, wf_run_t *run);

/* ---- wf_props.c: memo, search attributes, external cancellation ---- */
void wf_props_apply(wf_run_t *run, const pb_event_t *ev);
void wf_cmd_upsert_props(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                         int64_t completed_id);
const char *wf_check_cancel_external(const pb_command_t *c);
void wf_cmd_cancel_external(workflow_t *wf, wf_run_t *run, wf_txn_t *t, const pb_command_t *c,
                            int64_t completed_id);
void wf_emit_cancel_external_result(workflow_t *wf, wf_run_t *run, const wf_xmsg_t *m);

/* ---- wf_signals.c: requests from outside the workflow ---- */
void wf_terminate_run(workflow_t *wf, wf_run_t *run, const char *reason,
                      pb_payloads_t *details, const char *identity);
void wf_emit_cancel_requested(workflow_t *wf, wf_run_t *run, const char *cause,
                              const char *identity);
void wf_on_signal(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_terminate(workflow_t *wf, gt_rpc_t *rpc);
void wf_on_cancel_request(workflow_t *wf, gt_rpc_t *rpc);
wf_timer_t *wf_find_timer(wf_run_t *run, const char *timer_id);
int wf_emit_signal(workflow_t *wf, wf_run_t *run, const char *name, pb_payloads_t *input,
                   const char *identity, Temporal__Api__Common__V1__Header *header,
                   const char *request_id);
/* Closes every pending piece of a run that is closing (timers). */
void wf_close_cleanup(workflow_t *wf, wf_run_t *run);

/* ---- wf_delete.c: deleting a run (DeleteWorkflowExecution, retention) ---- */
/* The ops of the batch that deletes a run's rows: executions, history, current_executions
 * (only while it names run_id), visibility. Fills ops[0..WF_DELETE_OPS) (OUT); returns
 * WF_DELETE_OPS. The values point into wf and run_id (and *vis): queue the batch before
 * they go. With a separate visibility store the last op is the outbox row of the record's
 * deletion, and *vis its task (else NULL), to apply once the batch committed
 * (gt_vis_task_apply) or free; NULL out of memory, then the visibility row stays. */
#define WF_DELETE_OPS 4
int wf_delete_ops(const workflow_t *wf, const char *run_id, gt_store_op_t *ops,
                  struct gt_vis_task **vis);
/* Adds the effect that applies a visibility outbox row after t's commit. Returns 0 (it
 * takes vis) or GT_ENOMEM (the caller keeps it). */
int wf_txn_vis(wf_txn_t *t, struct gt_vis_task *vis);
/* Unlinks a closed run from wf->runs and frees it (its rows are deleted or being deleted).
 * When it was the newest, the runs left are detached: the workflow id has no current run. */
void wf_forget_run(workflow_t *wf, wf_run_t *run);
/* DeleteWorkflowExecution: terminates the run if it runs, deletes it in one batch, replies
 * once it committed (NOT_FOUND: no such run, or already being deleted). */
void wf_on_delete(workflow_t *wf, gt_rpc_t *rpc);
/* Replies NOT_FOUND for the run run_id ("" = the current run) of rpc's workflow id, with
 * Temporal's message, and frees rpc (workflow.c). */
void wf_reply_not_found(gt_rpc_t *rpc, const char *run_id);

/* Timer tokens: kind in the top byte, scheduled event id below. */
#define WF_TIMER_WFT 1ULL
#define WF_TIMER_ACT_RETRY 2ULL
#define WF_TIMER_HISTORY_POLL 3ULL
#define WF_TIMER_USER 4ULL
#define WF_TIMER_ACT_TIMEOUT 5ULL /* token: kind | timeout type << 52 | attempt << 40 | id */
#define WF_TIMER_RUN_TIMEOUT 6ULL
#define WF_TIMER_QUERY 7ULL
#define WF_TIMER_UPDATE 8ULL
#define WF_TIMER_STICKY 9ULL
#define WF_TIMER_BACKOFF 10ULL /* the first workflow task's backoff (a start delay) */
/* How long an activity may run before its start is written to the executions row
 * (wf_timeouts.c, ACT_PERSIST_START). An activity that ends sooner (most do) costs no
 * write for its start; one that runs longer is not dispatched again by the recovery
 * after a crash (Temporal writes every start before handing the task out). */
#define WF_START_PERSIST_MS 1000

/* Temporal's termination of a running run it deletes (service/history/api/deleteworkflow):
 * the reason and identity of its WorkflowExecutionTerminated. */
#define WF_DELETE_REASON "Delete workflow execution"
#define WF_IDENTITY_HISTORY_SERVICE "history-service"

/* Temporal's default blob size limit (limit.blobSize.error): 2 MiB. */
#define WF_BLOB_SIZE_LIMIT (2 * 1024 * 1024)
#define WF_TIMER_TOKEN(kind, id) (((kind) << 56) | ((uint64_t)(id) & ((1ULL << 56) - 1)))

/* Whether wf_buf_field_event writes ev's attribute message by hand rather than through
 * protobuf-c (the bytes are the same either way): lets tests see which path ran. */
int wf_event_hand_encoded(const pb_event_t *ev);

#endif
