/*
 * pq_dl.h: libpq, loaded at the first PostgreSQL open instead of linked.
 *
 * WHY
 *   libpq brings libssl, libcrypto, gnutls, krb5, ldap and a dozen more libraries: linked,
 *   they were loaded, relocated and initialized by every server start (on SQLite too),
 *   about 4.5 MB of the 10.7 MB idle RSS and a third of the start-up time. Loaded with
 *   dlopen(3) they cost nothing until a PostgreSQL store is opened.
 *
 * DESIGN
 *   The backend's files call PQxxx() as usual: after the libpq-fe.h declarations (types,
 *   enums, prototypes, compile time only), each function this backend uses is #defined to
 *   a pointer of gt__pq, filled by gt__pq_load from "libpq.so.5" (the Debian libpq5 ABI).
 *   A new libpq call needs its name added to GT_PQ_FUNCS, or the link fails loudly.
 *
 * INVARIANTS
 *   - No PQ function is called before gt__pq_load returned 0: gt__pg_open_check loads, and
 *     every other path (connections of a store) runs after a successful open check.
 *
 * THREADS
 *   gt__pq_load: any thread (pthread_once); gt__pq is read-only once loaded.
 */
#ifndef GT_PQ_DL_H
#define GT_PQ_DL_H

#include <libpq-fe.h>

#define GT_PQ_FUNCS(X)                                                                     \
  X(PQclear) X(PQresultStatus) X(PQstatus) X(PQntuples) X(PQfinish) X(PQexec)              \
  X(PQsocket) X(PQsendQueryParams) X(PQresultErrorMessage) X(PQnfields) X(PQgetvalue)      \
  X(PQresultErrorField) X(PQftype) X(PQerrorMessage) X(PQcmdTuples) X(PQsetnonblocking)    \
  X(PQserverVersion) X(PQsendQueryPrepared) X(PQsendPrepare) X(PQport) X(PQpipelineSync)   \
  X(PQisBusy) X(PQhost) X(PQgetlength) X(PQgetisnull) X(PQgetResult) X(PQflush)            \
  X(PQenterPipelineMode) X(PQdb) X(PQconsumeInput) X(PQconnectdbParams)                    \
  X(PQconnectStartParams) X(PQconnectPoll) X(PQcmdStatus) X(PQconnectdb)

typedef struct gt__pq_api {
#define GT_PQ_MEMBER(f) __typeof__(f) *f_##f;
  GT_PQ_FUNCS(GT_PQ_MEMBER)
#undef GT_PQ_MEMBER
} gt__pq_api_t;

extern gt__pq_api_t gt__pq;

/* Loads libpq once. Returns 0, or GT_EIO (logged: which library or symbol is missing). */
int gt__pq_load(void);

#ifndef GT_PQ_DL_IMPL
#define PQclear (gt__pq.f_PQclear)
#define PQresultStatus (gt__pq.f_PQresultStatus)
#define PQstatus (gt__pq.f_PQstatus)
#define PQntuples (gt__pq.f_PQntuples)
#define PQfinish (gt__pq.f_PQfinish)
#define PQexec (gt__pq.f_PQexec)
#define PQsocket (gt__pq.f_PQsocket)
#define PQsendQueryParams (gt__pq.f_PQsendQueryParams)
#define PQresultErrorMessage (gt__pq.f_PQresultErrorMessage)
#define PQnfields (gt__pq.f_PQnfields)
#define PQgetvalue (gt__pq.f_PQgetvalue)
#define PQresultErrorField (gt__pq.f_PQresultErrorField)
#define PQftype (gt__pq.f_PQftype)
#define PQerrorMessage (gt__pq.f_PQerrorMessage)
#define PQcmdTuples (gt__pq.f_PQcmdTuples)
#define PQsetnonblocking (gt__pq.f_PQsetnonblocking)
#define PQserverVersion (gt__pq.f_PQserverVersion)
#define PQsendQueryPrepared (gt__pq.f_PQsendQueryPrepared)
#define PQsendPrepare (gt__pq.f_PQsendPrepare)
#define PQport (gt__pq.f_PQport)
#define PQpipelineSync (gt__pq.f_PQpipelineSync)
#define PQisBusy (gt__pq.f_PQisBusy)
#define PQhost (gt__pq.f_PQhost)
#define PQgetlength (gt__pq.f_PQgetlength)
#define PQgetisnull (gt__pq.f_PQgetisnull)
#define PQgetResult (gt__pq.f_PQgetResult)
#define PQflush (gt__pq.f_PQflush)
#define PQenterPipelineMode (gt__pq.f_PQenterPipelineMode)
#define PQdb (gt__pq.f_PQdb)
#define PQconsumeInput (gt__pq.f_PQconsumeInput)
#define PQconnectdbParams (gt__pq.f_PQconnectdbParams)
#define PQconnectStartParams (gt__pq.f_PQconnectStartParams)
#define PQconnectPoll (gt__pq.f_PQconnectPoll)
#define PQcmdStatus (gt__pq.f_PQcmdStatus)
#define PQconnectdb (gt__pq.f_PQconnectdb)
#endif

#endif
