/* libcairn's internals, shared by the library's own files and nobody else:
 * the client (one I/O thread running a libuv loop), its connections (at most
 * one per address) and its requests (a small state machine each).
 *
 * Threads: everything below the line "loop thread only" in a struct is
 * touched by the client's I/O thread alone; the fields under `mu` are
 * shared with the callers' threads and only touched with `mu` held.
 *
 * Files: client.c (open, close, the thread, submission and the public
 * calls), request.c (routing, retries, replies, deadlines, completion),
 * conn.c (sockets and framing), sub.c (subscriptions), util.c (UUIDs,
 * addresses, error texts). */
#ifndef CAIRN_CLIENT_INT_H
#define CAIRN_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cairn.h"
#include "wire.h"

/* Deadline of a call when the options give none: long enough to ride out
 * a leader election (3 s election timeout by default) and a few retries. */
#define CLIENT_DEADLINE_MS_DEFAULT 10000

/* Connect timeout per attempt when the options give none. */
#define CLIENT_CONNECT_TIMEOUT_MS_DEFAULT 2000

/* Backoff before resending after UNAVAILABLE, BUSY, UNKNOWN_OUTCOME or a
 * lost connection: starts here and doubles up to the maximum, so a client
 * finds a new leader within ~0.5 s of its election without hammering a
 * cluster that has none. */
#define CLIENT_BACKOFF_MIN_MS 25
#define CLIENT_BACKOFF_MAX_MS 500

/* Attempts a request makes at once, one after the other, before it backs
 * off: redirects to the leader a NOT_LEADER reply names, and other known
 * nodes after a refused connection. During an election followers may name
 * a dead leader for a few seconds; the bound turns that chase into a
 * backoff instead of a spin. */
#define CLIENT_HOPS_MAX 3

/* How long a synchronous caller waits past its deadline for the I/O
 * thread's verdict before it gives up on its own (the I/O thread enforces
 * deadlines; this only matters when a callback blocks that thread). */
#define CLIENT_SYNC_SLACK_MS 500

/* Requests submitted and not yet completed, per client. Bounds the memory
 * an asynchronous caller can make the client hold; past it a submission
 * fails with CAIRN_EBUSY at once. */
#define CLIENT_REQUESTS_MAX 65536

/* Addresses a client knows: its seeds plus leaders it was redirected to. */
#define CLIENT_ADDRESSES_MAX 64

/* Bytes of a "host:port" address, NUL excluded. */
#define CLIENT_ADDRESS_LEN_MAX 255

/* Read buffer growth step, and the size a connection's buffer shrinks back
 * to after it held a large frame. */
#define CLIENT_READ_CHUNK (64u << 10)

struct conn;
struct req;

/* ------------------------------------------------------------------------
 * Requests
 * ------------------------------------------------------------------------ */

enum req_kind {
	REQ_APPEND,
	REQ_READ_STREAM,
	REQ_READ_ALL,
	REQ_HEAD,
	REQ_STATUS,
	REQ_SUBSCRIBE, /* long-lived: see sub.c */
	REQ_CHECKPOINT_GET,
	REQ_CHECKPOINT_SET, /* a write: keyed and retried like an append */
	REQ_SNAPSHOT_PUT,   /* a write: keyed and retried like an append */
	REQ_SNAPSHOT_GET,
};

/* True for the kinds that write through consensus with a client key. */
#define REQ_KIND_WRITES(k)                                 \
	((k) == REQ_APPEND || (k) == REQ_CHECKPOINT_SET || \
	 (k) == REQ_SNAPSHOT_PUT)

/* A request's states and the transitions allowed between them:
 *
 *   QUEUED  -> WAITING | SENT | BACKOFF | DONE   (taken in by the loop)
 *   WAITING -> SENT              (its connection came up)
 *   WAITING -> BACKOFF | WAITING | SENT  (connection failed: retry)
 *   SENT    -> BACKOFF | WAITING | SENT  (retryable reply, lost connection,
 *                                         redirect)
 *   BACKOFF -> WAITING | SENT    (backoff timer)
 *   any     -> DONE              (reply, final error, deadline, close)
 *
 * A request is on at most one connection's list (WAITING or SENT), and is
 * in the client's id map from intake to DONE. */
enum req_state {
	REQ_QUEUED,  /* in the submission queue, not yet seen by the loop */
	REQ_WAITING, /* on a connection that is still connecting */
	REQ_SENT,    /* written (or buffered for writing); awaits a reply */
	REQ_BACKOFF, /* waiting for its backoff timer */
	REQ_DONE,    /* completed; its timers are closing */
};

/* Where a request goes. */
enum req_route {
	ROUTE_CURRENT, /* the client's current address (its leader guess) */
	ROUTE_FIXED,   /* one address only (single_node, status of a node) */
};

struct req {
	struct cairn_client *c; /* borrowed: the client that owns it */
	enum req_kind kind;     /* what it asks */
	enum req_state state;   /* see above */
	const char *op;         /* static: "append", "read", ... */
	uint64_t id;            /* request id, unique per client */
	struct wire_buf frame;  /* owned: the whole request frame */
	uint64_t deadline_ns;   /* uv_hrtime() value of the deadline */

	/* Routing. */
	enum req_route route;  /* see enum req_route */
	bool follow_redirects; /* NOT_LEADER with an address:
				* resend there */
	bool retry;            /* resend after retryable errors */
	char fixed[CLIENT_ADDRESS_LEN_MAX + 1]; /* ROUTE_FIXED: where */

	/* Appends. */
	bool key_assigned; /* the client chose the key (it may pick a new
			    * sequence after STALE_SEQUENCE) */
	size_t n_parts;    /* parts, and entries in results */

	/* Completion: one of these is set. */
	cairn_append_cb cb; /* async append: called once, on the loop */
	void *cb_arg;       /* borrowed: passed to cb */
	bool sync;          /* a caller waits on cond */

	/* Outcome, owned until completion hands it over. */
	int status;                        /* 0 or CAIRN_E* */
	struct cairn_error err;            /* filled when status != 0 */
	struct cairn_part_result *results; /* owned, n_parts of them */
	bool duplicate;                    /* APPEND_OK flagged duplicate */
	struct cairn_page page;            /* owned until handed over */
	uint64_t head_version;             /* HEAD_OK */
	uint64_t head_position;            /* HEAD_OK */
	struct cairn_status *status_reply; /* owned, STATUS_OK */
	bool found;                        /* CHECKPOINT: it exists; its
					    * value is in head_version */
	void *snap_data;                   /* owned: SNAPSHOT's bytes, or
					    * NULL; its version is in
					    * head_version */
	size_t snap_len;                   /* bytes in snap_data */
	struct cairn_subscription *sub;    /* REQ_SUBSCRIBE: borrowed, the
					    * subscription it serves */

	/* Shared with a synchronous caller, under the client's mu. */
	uv_cond_t cond; /* signalled when done (sync only) */
	bool done;      /* the outcome is final */
	int refs;       /* holds: the loop's, and a sync caller's */

	/* ---- loop thread only ---- */
	struct req *queue_next;    /* in the submission queue */
	struct conn *conn;         /* borrowed: WAITING or SENT on */
	struct req *conn_prev;     /* in conn's list */
	struct req *conn_next;     /* in conn's list */
	struct req *map_next;      /* in the client's id map */
	bool timers_init;          /* the two timers below exist */
	int handles_open;          /* timers not yet closed */
	uv_timer_t deadline_timer; /* fires at deadline_ns */
	uv_timer_t backoff_timer;  /* fires when BACKOFF is over */
	unsigned attempts;         /* sends so far */
	unsigned hops;             /* attempts made at once since the
				    * last backoff */
	unsigned resequences;      /* new sequences after STALE */
	unsigned backoff_ms;       /* the last backoff */
	bool connected_once;       /* some attempt reached a node */
	int last_code;             /* last retryable error, CAIRN_E* */
	char last_msg[256];        /* its text */
};

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

enum conn_state {
	CONN_RESOLVING,  /* looking the host up */
	CONN_CONNECTING, /* TCP connect in progress */
	CONN_READY,      /* connected: frames flow */
	CONN_CLOSING,    /* handles closing; no longer in the client's list */
};

struct conn {
	struct cairn_client *c;                   /* borrowed */
	char address[CLIENT_ADDRESS_LEN_MAX + 1]; /* "host:port" */
	enum conn_state state;                    /* see enum conn_state */
	uv_tcp_t tcp;                             /* the socket */
	uv_timer_t connect_timer;                 /* bounds resolve + connect */
	uv_getaddrinfo_t gai;                     /* host lookup (names only) */
	bool gai_pending;         /* gai's callback has not run yet */
	uv_connect_t connect_req; /* TCP connect */
	int handles_open;         /* tcp and timer not yet closed */
	uv_write_t write_req;     /* the write in progress */
	bool writing;             /* write_req is in flight */
	struct wire_buf out;      /* owned: frames waiting for a write */
	struct wire_buf wbuf;     /* owned: frames being written */
	uint8_t *rbuf;            /* owned: bytes read, not yet parsed */
	size_t rlen;              /* bytes in rbuf */
	size_t rcap;              /* bytes allocated for rbuf */
	struct req *head;         /* borrowed: first WAITING/SENT req */
	struct req *tail;         /* borrowed: last one */
	struct conn *next;        /* in the client's list */
};

/* ------------------------------------------------------------------------
 * The client
 * ------------------------------------------------------------------------ */

struct cairn_client {
	/* Set at open, read-only afterwards. */
	unsigned deadline_ms;        /* per call */
	unsigned connect_timeout_ms; /* per attempt */
	bool single_node;            /* first seed only, no redirects */
	uint8_t client_id[16];       /* the writer id of keyless appends */
	uv_thread_t thread;          /* the I/O thread */

	/* Shared with callers, under mu. */
	uv_mutex_t mu;          /* guards the fields below */
	bool closing;           /* cairn_close began: submissions fail */
	struct req *queue_head; /* owned: submitted, not taken in */
	struct req *queue_tail; /* borrowed: last of the queue */
	size_t n_requests;      /* submitted and not yet released */
	uint64_t next_seq;      /* next sequence of keyless appends */
	uint64_t next_id;       /* next request id */
	unsigned callers;       /* threads inside a synchronous call */
	uv_cond_t callers_cond; /* signalled when callers drops to 0 */

	/* ---- loop thread only ---- */
	uv_loop_t loop;    /* the client's own loop */
	uv_async_t wakeup; /* submissions and close wake the loop */
	bool stopping;     /* close is being carried out */
	char addrs[CLIENT_ADDRESSES_MAX][CLIENT_ADDRESS_LEN_MAX + 1];
	size_t n_seeds;     /* the first n_seeds of addrs */
	size_t n_addrs;     /* seeds plus learned leader addresses */
	size_t current;     /* index in addrs: the leader guess */
	struct conn *conns; /* owned: open connections */
	struct req **map;   /* owned: buckets of the id map */
	size_t map_cap;     /* buckets, a power of two */
	size_t map_n;       /* requests in the map */

	/* Subscriptions (sub.c), under mu. */
	struct cairn_subscription *subs;      /* open ones (list) */
	struct cairn_subscription *wake_subs; /* credit or close to carry out
					       * on the loop (list) */
};

/* ---- util.c ---- */

/* Fills @err (may be NULL) with @code and "op: text". */
void client_set_error(struct cairn_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Splits "host:port" (IPv6 hosts in brackets): copies the host into @host
 * (room for CLIENT_ADDRESS_LEN_MAX + 1 bytes) and returns 0, or CAIRN_EARG
 * when the address is malformed or its port is not 1..65535. */
int client_address_split(const char *address, char *host, int *port);

/* Parses a comma-separated list of addresses into c->addrs. Returns 0 or
 * CAIRN_EARG with the reason in @why (256 bytes). */
int client_seeds_parse(struct cairn_client *c, const char *seeds, char *why);

/* Fills @out with random bytes from getrandom(2). */
void client_random(void *out, size_t n);

/* The time in microseconds since the epoch (CLOCK_REALTIME). */
uint64_t client_now_us(void);

/* ---- request.c (loop thread) ---- */

/* Takes a submitted request in: starts its deadline and sends it. */
void req_start(struct req *r);

/* Sends @r where its route says (WAITING or SENT afterwards, or handled as
 * a failed attempt). */
void req_dispatch(struct req *r);

/* A connection of @r failed: retry or fail it. @code is CAIRN_E*. */
void req_conn_failed(struct req *r, int code, const char *msg);

/* A reply frame for request @h->request_id arrived on @conn; @body (borrowed,
 * h->body_len bytes) is copied where it must outlive the call. */
void req_reply(struct conn *conn, const struct wire_header *h,
	       const uint8_t *body);

/* Completes @r with @status (0 or CAIRN_E*; @err filled by the caller when
 * non-zero): hands the outcome over and releases the loop's hold. */
void req_finish(struct req *r, int status);

/* Drops one hold on @r; frees it when none is left. Takes mu. */
void req_release(struct req *r);

/* Frees @r and everything it owns (nobody holds it any more). */
void req_free(struct req *r);

/* Retries @r after a backoff, elsewhere when it follows the client's
 * current node, remembering @code/@msg for the deadline's message. */
void req_retry_later(struct req *r, int code, const char *msg);

/* Fails @r with @code and "op: @msg". */
void req_fail(struct req *r, int code, const char *msg);

/* The id map. */
void req_map_insert(struct cairn_client *c, struct req *r);
struct req *req_map_find(struct cairn_client *c, uint64_t id);
void req_map_remove(struct cairn_client *c, struct req *r);

/* ---- conn.c (loop thread) ---- */

/* The connection to @address, connecting when there is none. Returns NULL
 * (with the reason in @why, 256 bytes) when a connection cannot even be
 * started. */
struct conn *conn_get(struct cairn_client *c, const char *address, char *why);

/* Puts @r on @conn's list (WAITING), or sends it at once when @conn is
 * READY (SENT). */
void conn_attach(struct conn *conn, struct req *r);

/* Takes @r off its connection's list. */
void conn_detach(struct req *r);

/* Queues a frame that no request waits on (CREDIT, UNSUBSCRIBE) on a READY
 * connection and starts writing. Returns 0, CAIRN_EUNAVAILABLE when the
 * connection is not ready, CAIRN_EBUSY or CAIRN_ENOMEM. */
int conn_send(struct conn *conn, const struct wire_buf *frame);

/* Closes @conn: it leaves the client's list at once; its requests are
 * handed to req_conn_failed with @code/@msg unless @fail_reqs is false (the
 * client is stopping and finished them already). */
void conn_close(struct conn *conn, int code, const char *msg, bool fail_reqs);

/* ---- sub.c (loop thread) ---- */

/* Before each attempt of a REQ_SUBSCRIBE: encodes its frame to resume
 * where the subscription stands, with the credit it may grant. Returns 0
 * or a CAIRN_E* code. */
int sub_reframe(struct req *r);

/* A frame for subscription @r (SUB_EVENTS, SUB_LIVE, SUB_END or ERROR)
 * arrived on @conn, the connection @r is SENT on. */
void sub_frame(struct req *r, struct conn *conn, const struct wire_header *h,
	       const uint8_t *body);

/* @r is completing (req_finish): tells its subscription, which no longer
 * refers to @r afterwards. */
void sub_finished(struct req *r);

/* Carries out the credit grants and closes queued by callers' threads
 * (from the loop's wake-up). */
void sub_wakeup(struct cairn_client *c);

/* cairn_close: frees the subscriptions the application did not close
 * (after stop() ended them). */
void sub_free_all(struct cairn_client *c);

#endif /* CAIRN_CLIENT_INT_H */
