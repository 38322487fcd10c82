/*
 * gtbench.h: private header of gtbench, the load driver for the Temporal API server.
 *
 * DESIGN
 *   One thread, one libuv loop. h2client.c is a minimal gRPC-over-HTTP/2 (h2c) client on
 *   nghttp2: unary calls, many concurrent streams per connection. worker.c is a thin
 *   built-in Temporal worker (workflow and activity long polls; decisions made from the
 *   full history in each poll response). driver.c starts workflows (closed or open loop),
 *   keeps the measurement window, and prints the results. stats.c holds latencies and
 *   reads /proc for the server's CPU and RSS.
 *
 * THREADS: everything runs on the loop thread.
 */
#ifndef GT_GTBENCH_H
#define GT_GTBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <protobuf-c/protobuf-c.h>

/* ---- arena.c: unpacking without malloc ---- */

/* The allocator to unpack a response with; its memory stays valid until pb_arena_reset.
 * One unpacked message at a time. */
ProtobufCAllocator *pb_arena(void);
/* Forgets every allocation of the arena (the message unpacked into it is gone). */
void pb_arena_reset(void);
/* Frees the arena's memory (at exit). */
void pb_arena_fini(void);

/* ---- h2client.c: gRPC unary calls over one HTTP/2 connection ---- */

/* grpc_status of a call that failed below gRPC (reset stream, lost connection, bad frame). */
#define H2C_TRANSPORT (-1)

typedef struct h2c h2c_t;

/* Result of one call. status: a gRPC code (0 OK) or H2C_TRANSPORT. msg: grpc-message (or a
 * transport description), never NULL. body/len: the response message (valid only during
 * the callback; len 0 for an empty message). */
typedef void (*h2c_cb)(void *ud, int status, const char *msg, const uint8_t *body,
                       size_t len);

/* Opens a connection to addr ("host:port"). Calls made before the TCP connect completes
 * are queued in nghttp2 and sent once connected. 0, or -1 with a message on stderr. */
int h2c_open(uv_loop_t *loop, const char *addr, h2c_t **out);
/* Starts a call of /temporal.api.workflowservice.v1.WorkflowService/<method>.
 *   req:     the request message (packed now; the caller keeps ownership)
 *   timeout: grpc-timeout header value ("70S"), or NULL for none
 *   cb/ud:   called exactly once, when the call ends (never from inside h2c_call)
 * 0, or -1 when the connection is gone (cb is then not called). */
int h2c_call(h2c_t *c, const char *method, const ProtobufCMessage *req, const char *timeout,
             h2c_cb cb, void *ud);
/* Observes every call of every connection as it ends (before its callback): the method
 * given to h2c_call and the microseconds from h2c_call to the end. One observer per
 * process; NULL removes it. h2c_call's method must outlive the call (callers pass
 * literals), so an observer may keep the pointer. */
typedef void (*h2c_observer)(void *ud, const char *method, uint64_t us);
void h2c_observe(h2c_observer fn, void *ud);
/* Number of calls in flight on c. */
size_t h2c_inflight(const h2c_t *c);
/* Non-zero once the connection failed (all its calls have ended with H2C_TRANSPORT). */
int h2c_broken(const h2c_t *c);
/* Closes the connection: pending calls end with H2C_TRANSPORT; frees c after the loop
 * turns. */
void h2c_close(h2c_t *c);

/* ---- stats.c ---- */

typedef struct lat_vec {
  uint32_t *us;   /* latencies in microseconds */
  size_t n, cap;
} lat_vec_t;

void lat_add(lat_vec_t *v, uint64_t us);
/* Percentile p (0..100) in milliseconds, after lat_sort. 0 when empty. */
double lat_pct_ms(const lat_vec_t *v, double p);
void lat_sort(lat_vec_t *v);
void lat_free(lat_vec_t *v);

typedef struct proc_sample {
  int ok;            /* 0: the process could not be read */
  double cpu_ms;     /* utime + stime */
  double rss_mb;     /* VmRSS */
} proc_sample_t;

proc_sample_t proc_read(int pid);
/* gtbench's own CPU time (user + system), ms. */
double self_cpu_ms(void);
/* Monotonic microseconds. */
uint64_t now_us(void);

/* ---- the bench: configuration and shared state ---- */

typedef enum { WL_HELLO, WL_STEPS10, WL_TIMER, WL_SIGNAL, WL_SLEEP } workload_t;
#define WL_COUNT (WL_SLEEP + 1)

/* RPCs we count, for error reports. */
typedef enum {
  RPC_START, RPC_POLL_WFT, RPC_POLL_ACT, RPC_WFT_DONE, RPC_ACT_DONE, RPC_SIGNAL,
  RPC_HISTORY, RPC_COUNT
} rpc_kind_t;

extern const char *const rpc_names[RPC_COUNT];

typedef struct bench_opts {
  const char *addr;
  const char *ns;
  workload_t workload;
  int concurrency;       /* closed loop: workflows in flight (0: open loop) */
  double rate;           /* open loop: starts per second */
  double duration_s;
  double warmup_s;
  long count;            /* stop after this many starts (0: by time) */
  int conns;
  int wft_pollers;
  int act_pollers;
  int server_pid;
  int verify;            /* how many completed workflows to check by history */
  int smoke;
  double drain_s;        /* how long to wait for in-flight workflows at the end */
  int max_inflight;      /* open loop: cap on workflows in flight */
  int quiet;
  int progress;          /* a line per second on stderr */
  long sleep_s;          /* sleep workload: the timer's start_to_fire_timeout */
  int no_eager;          /* never ask for eager activity execution or eager start */
  int no_eager_start;    /* eager activities, but the first workflow task is polled */
  int rpc_latency;       /* report each RPC's latency (calls ending inside the window) */
} bench_opts_t;

/* Per workflow, indexed by the sequence number in its id. */
enum { WF_NONE = 0, WF_STARTING, WF_RUNNING, WF_DONE, WF_FAILED };

typedef struct wf_rec {
  uint64_t t_start_us;   /* StartWorkflowExecution sent */
  uint8_t state;
  uint8_t in_window;     /* started inside the measurement window */
} wf_rec_t;

typedef struct bench {
  bench_opts_t o;
  uv_loop_t *loop;
  h2c_t **conns;
  size_t next_conn;
  char tag[16];          /* random run tag: ids and task queue are unique per run */
  char task_queue[64];
  char wf_type[64];
  char identity[64];

  wf_rec_t *wfs;         /* indexed by sequence */
  size_t n_wfs, cap_wfs;
  long inflight;

  int stopping;          /* no new polls after their current one ends */
  int starting_done;     /* no more starts */
  int window_open, window_closed;
  uint64_t t_begin_us, t_win_start_us, t_win_end_us;
  proc_sample_t p_idle, p_win_start, p_win_end;
  double self_cpu_start, self_cpu_end;   /* gtbench's CPU at the window's ends */

  /* counters inside the window */
  uint64_t win_completed, win_transitions;
  lat_vec_t lat;
  struct { const char *method; lat_vec_t lat; } rpc_lat[RPC_COUNT + 2]; /* --rpc-latency */
  int n_rpc_lat;
  /* totals */
  uint64_t completed, failed, start_failed, wf_failed_cmd, transitions;
  uint64_t empty_polls;
  uint64_t eager_acts;   /* activity tasks received in RespondWorkflowTaskCompleted */
  uint64_t eager_starts; /* workflow tasks received in StartWorkflowExecution's reply */
  uint64_t verify_ok, verify_bad;
  int verify_started;
  uint64_t err[RPC_COUNT][18];   /* [rpc][grpc code 0..16, 17 = transport] */
  uint64_t skipped;              /* open loop: starts not made (max_inflight reached) */
  long verify_inflight;
  uint64_t drain_deadline_us;
  uv_timer_t tick;
  uint64_t last_progress_us, last_progress_completed;
  int finished;
  int unimplemented;             /* the server answered UNIMPLEMENTED for what we need */
  char unimpl_msg[256];
  int fatal;
} bench_t;

/* worker.c: starts the pollers; worker_stop closes their handles (polls in flight end
 * when the connections close). */
void worker_start(bench_t *b);
void worker_stop(bench_t *b);
/* Answers a workflow task the server returned in a StartWorkflowExecution reply (eager
 * start): task/len is its PollWorkflowTaskQueueResponse. */
void worker_eager_wft(bench_t *b, const uint8_t *task, size_t len);
/* driver.c: runs the bench until it finishes (returns when the loop is empty). */
void driver_run(bench_t *b);
/* The name of a gRPC code ("UNAVAILABLE"), "TRANSPORT" for H2C_TRANSPORT. */
const char *driver_code_name(int status);
/* driver.c, called by the worker */
void driver_wf_finished(bench_t *b, long seq, int ok);
void driver_rpc_error(bench_t *b, rpc_kind_t k, int status, const char *msg);
void driver_transition(bench_t *b);
h2c_t *driver_conn(bench_t *b);
/* --rpc-latency: starts recording each call's latency by method (see h2c_observe). */
void driver_observe_rpcs(bench_t *b);
long driver_seq_of(const bench_t *b, const char *workflow_id);

#endif
