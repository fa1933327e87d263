/* node: the daemon cairnd, private interface shared by its files.
 *
 * cairnd owns one libuv loop on which everything runs: the Raft state
 * machine (consensus/), the store (storage/) and the binary client protocol
 * server (this folder). The files split the work:
 *
 * - config.c: flags and environment variables, --help, --version;
 * - main.c: startup in order, signals, shutdown in reverse order;
 * - server.c: the listener, connections, framing, write queues and
 *   backpressure;
 * - handlers.c: the request handlers (append, reads, head, status) and the
 *   at-least reads that wait for a position to be applied;
 * - subs.c: subscriptions (subs.h).
 *
 * Nothing outside node/ includes this header. Every function here runs on
 * the node's loop. */
#ifndef CAIRN_NODE_H
#define CAIRN_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "consensus.h"
#include "log.h"
#include "store.h"
#include "subs.h"
#include "wire.h"

/* The struct of type @type whose field @member is at @ptr. */
#define CONTAINER_OF(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ------------------------------------------------------------------------
 * Limits. Every bound on what a client can make the node hold, with why.
 * ------------------------------------------------------------------------ */

/* Requests of one connection taken and not yet answered. A client pipelines
 * requests over one connection; past this many the node stops reading from
 * it until replies go out, so one client cannot queue unbounded work. */
#define NODE_CONN_REQUESTS_MAX 4096

/* Reply bytes of one connection encoded and not yet written to the socket.
 * A client that sends requests without reading replies would otherwise grow
 * the node's memory; past this the node stops reading from it. 64 MiB holds
 * many full read pages (WIRE_READ_BYTES_MAX each). */
#define NODE_CONN_UNSENT_BYTES_MAX (64u << 20)

/* Request bytes (bodies plus decoded arrays) one connection's requests in
 * flight hold. NODE_CONN_REQUESTS_MAX alone would allow 4096 maximal appends
 * (68 GiB); past this the node stops reading from the connection. It is at
 * least one maximal frame, so a single append always gets through. */
#define NODE_CONN_REQUEST_BYTES_MAX (64u << 20)

/* Request bytes all connections' requests in flight hold together: the
 * per-connection bound times --max-connections would still be far more than
 * a node's memory. Past this the node reads from no connection until
 * requests complete. At least NODE_CONN_REQUEST_BYTES_MAX, so any single
 * connection can always make progress. */
#define NODE_REQUEST_BYTES_MAX (1024u << 20)

/* Initial and resting size of a connection's read buffer: many small frames
 * fit in one read. It grows only to the size a validated header announces
 * (at most WIRE_HEADER_BYTES + WIRE_BODY_BYTES_MAX) and shrinks back once
 * that frame is consumed. */
#define NODE_READ_BUFFER_BYTES (64u << 10)

/* A drained write buffer larger than this is freed rather than kept, so a
 * connection that once sent a large page does not keep its memory. */
#define NODE_WRITE_BUFFER_KEEP_BYTES (1u << 20)

/* At-least reads waiting for their position to be applied, over all
 * connections. Each holds its request until it is answered or times out
 * (--read-wait-ms); past this a read is answered WIRE_EBUSY at once. */
#define NODE_PARKED_READS_MAX 65536

/* Events in a read page when the request's limit is 0. */
#define NODE_READ_LIMIT_DEFAULT 1000

/* Records a global read examines for one page. A filter that matches
 * nothing would otherwise scan the whole log while holding the loop; the
 * reply then carries `next` to continue from. At least
 * WIRE_READ_COUNT_MAX, so an unfiltered page is never cut by it. */
#define NODE_READ_ALL_SCAN_MAX 16384

/* Pending connections the kernel queues for accept (listen backlog). */
#define NODE_LISTEN_BACKLOG 511

/* Client connections by default (--max-connections), and the largest value
 * accepted: each connection may hold up to the per-connection bounds
 * above. */
#define NODE_MAX_CONNECTIONS_DEFAULT 1024
#define NODE_MAX_CONNECTIONS_MAX     65536

/* Longest wait of an at-least read by default (--read-wait-ms), and the
 * largest value accepted (one hour). */
#define NODE_READ_WAIT_MS_DEFAULT 5000
#define NODE_READ_WAIT_MS_MAX     3600000

/* At shutdown, how long replies already encoded may take to reach their
 * clients before the remaining connections are closed regardless. */
#define NODE_SHUTDOWN_FLUSH_MS 2000

/* ---- Subscriptions (subs.c) ---- */

/* Subscriptions on one connection. A client multiplexes its subscriptions
 * over one connection per node; each costs the node a small struct and a
 * place in the run queue. Past it SUBSCRIBE is answered WIRE_ETOO_LARGE. */
#define NODE_SUBS_PER_CONN_MAX 1024

/* Subscriptions on the node, over all connections: bounds the structs and
 * the work an applied entry causes (one list move per waiting subscriber).
 * Past it SUBSCRIBE is answered WIRE_EBUSY. */
#define NODE_SUBS_MAX 16384

/* Reply bytes a subscriber's connection may hold unsent (not taken by the
 * socket) when the node is about to push it more events. A subscriber
 * that grants credit but does not read its socket costs at most this plus
 * one page (WIRE_READ_BYTES_MAX and one event); past it the subscription
 * ends with SUB_END reason SLOW. A client that reads as it grants credit
 * never comes near it: the node pushes at most a page per turn. */
#define NODE_SUB_UNSENT_BYTES_MAX (16u << 20)

/* Events in one SUB_EVENTS push (less when the credit is smaller; a push
 * also stops at WIRE_READ_BYTES_MAX of events, and a category or type
 * filter examines at most NODE_READ_ALL_SCAN_MAX records for one). */
#define NODE_SUB_PAGE_EVENTS 1000

/* Work per loop iteration: at most this many pushes and this many event
 * bytes, round robin over the runnable subscriptions; the rest waits for
 * the next iteration, after the loop has polled its sockets. So thousands
 * of subscribers catching up never hold the loop for long. */
#define NODE_SUB_TURN_PAGES 16
#define NODE_SUB_TURN_BYTES (8u << 20)

/* Credit a subscription can hold: grants beyond it are capped (credit only
 * counts events; it holds no memory). */
#define NODE_SUB_CREDIT_MAX UINT32_MAX

/* Fewest voters a member removal or demotion may leave without force
 * (--min-voters): a cluster of three tolerates one failure; below that a
 * single failure stops it, so going there takes a deliberate force. */
#define NODE_MIN_VOTERS_DEFAULT 3

/* Bytes of a host:port text, as the member table keeps it. */
#define NODE_ADDRESS_MAX CONSENSUS_ADDRESS_MAX

/* ------------------------------------------------------------------------
 * Configuration (config.c)
 * ------------------------------------------------------------------------ */

struct node_config {
	uint64_t id;                /* this node's id, >= 1 */
	const char *data_dir;       /* borrowed from argv or environ */
	const char *raft_address;   /* borrowed: Raft peer traffic */
	const char *client_address; /* borrowed: binary protocol */
	const char *http_address;   /* borrowed; "" when not given */
	const char *peers_text;     /* borrowed: --peers as given; "" */
	struct consensus_member peers[CONSENSUS_MEMBERS_MAX]; /* parsed */
	unsigned n_peers;                                     /* in peers */
	bool join;                     /* join through join_seeds */
	const char *join_seeds;        /* borrowed: --join's list; "" */
	const char *restore_dir;       /* borrowed: --restore; NULL */
	unsigned min_voters;           /* --min-voters */
	unsigned election_timeout_ms;  /* 0: consensus default */
	unsigned heartbeat_timeout_ms; /* 0: consensus default */
	unsigned snapshot_threshold;   /* 0: consensus default */
	unsigned snapshot_trailing;    /* 0: consensus default */
	unsigned max_connections;      /* client connections */
	unsigned read_wait_ms;         /* longest at-least read wait */
	uint64_t raft_log_budget;      /* 0: consensus default (bytes) */
	uint64_t disk_reserve;         /* free bytes kept (disk.h) */
	enum log_level log_level;      /* lowest level logged */
};

/* What node_config_parse() decided. */
enum node_config_result {
	NODE_CONFIG_RUN = 0,   /* @cfg is complete: start the node */
	NODE_CONFIG_EXIT = 1,  /* --help or --version printed: exit 0 */
	NODE_CONFIG_USAGE = 2, /* usage error printed on stderr: exit 2 */
};

/* Fills @cfg from the flags in @argv and, for flags not given, from the
 * CAIRN_* environment variables. Pointers in @cfg borrow from @argv and the
 * environment. Prints help and version text on stdout, usage errors on
 * stderr. */
enum node_config_result node_config_parse(struct node_config *cfg, int argc,
					  char **argv);

/* Logs event=node_starting with every setting. */
void node_config_log(const struct node_config *cfg);

/* ------------------------------------------------------------------------
 * The node (main.c)
 * ------------------------------------------------------------------------ */

enum node_state {
	NODE_RUNNING = 0,  /* serving */
	NODE_STOPPING = 1, /* signal received: listener closed, consensus
			    * closing (a leader hands over leadership) */
	NODE_DRAINING = 2, /* consensus closed, parked reads answered:
			    * connections flush and close */
	NODE_STOPPED = 3,  /* every connection gone: handles closing */
};

struct node_conn;
struct node_req;

struct node {
	const struct node_config *cfg; /* borrowed */
	uv_loop_t *loop;               /* borrowed: the node's loop */
	struct store store;            /* opened by main.c */
	struct consensus cons;         /* started by main.c */
	bool cons_open;                /* consensus started, not closed */
	enum node_state state;

	/* server.c */
	uv_tcp_t listener;           /* the client address */
	bool listener_open;          /* initialized and not closed */
	struct node_conn *conns;     /* live connections (list) */
	unsigned n_conns;            /* counted against max_connections */
	unsigned n_conn_structs;     /* allocated, including closing */
	unsigned n_rejecting;        /* over-limit ones being answered */
	bool pipeline_paused;        /* consensus pipeline is full */
	size_t request_bytes;        /* held by every connection's requests */
	uv_idle_t kick;              /* resumes blocked connections */
	struct node_conn *kick_head; /* connections to resume (list) */
	uv_timer_t flush_timer;      /* bounds the shutdown flush */

	/* handlers.c: parked at-least reads */
	struct node_req **parked;   /* owned: min-heap by min_position */
	unsigned n_parked;          /* entries in parked */
	unsigned cap_parked;        /* allocated length of parked */
	struct node_req *wait_head; /* oldest parked read (deadline order) */
	struct node_req *wait_tail; /* newest parked read */
	uv_timer_t wait_timer;      /* fires at wait_head's deadline */

	/* subs.c: subscriptions */
	struct subs *subs; /* owned by subs.c; NULL before subs_init and
			    * after subs_close */

	/* http.c: the HTTP gateway, NULL when not running */
	struct http *http;

	/* disk.c: the free-space guard, NULL when not running */
	struct disk *disk;

	/* state_send.c: store copy sessions, NULL when not running */
	struct state_send *state_send;

	/* main.c */
	uv_signal_t sigterm;
	uv_signal_t sigint;
	int exit_code; /* for main() once the loop ends */
};

/* Begins a clean shutdown (idempotent): see enum node_state. */
void node_stop(struct node *n);

/* ------------------------------------------------------------------------
 * Server (server.c)
 * ------------------------------------------------------------------------ */

/* Initializes the server's handles on n->loop (nothing is listening yet).
 * Returns 0 or a negative uv error code. */
int server_init(struct node *n);

/* Binds and listens on cfg->client_address. Returns 0, or a negative uv
 * error code after logging why. */
int server_listen(struct node *n);

/* Closes the listener: no connection is accepted any more. */
void server_stop_accepting(struct node *n);

/* Asks every connection to close once its queued replies are written,
 * bounded by NODE_SHUTDOWN_FLUSH_MS; then calls node_stopped() once the
 * last connection is freed. */
void server_drain(struct node *n);

/* Closes the server's own handles, once server_drain has completed. (A
 * startup failure closes every handle on the loop instead.) */
void server_close(struct node *n);

/* Consensus callback: the pipeline has room again. */
void server_pipeline_ready(struct node *n);

/* Called by handlers after every submitted append: pauses reading from
 * every connection while consensus_pipeline_full(). */
void server_check_pipeline(struct node *n);

/* Defined in main.c; called by server.c once server_drain has freed every
 * connection: closes the remaining handles so that the loop ends. */
void node_stopped(struct node *n);

/* ---- what handlers use ---- */

/* A connection as handlers see it. */
struct node_conn {
	struct node *node;           /* borrowed */
	uv_tcp_t tcp;                /* the socket */
	char peer[64];               /* the client's address, for logs */
	unsigned refs;               /* the handle + requests in flight */
	bool closing;                /* replies are dropped from now on */
	bool close_after_flush;      /* close once unsent replies are out */
	bool handle_closed;          /* tcp's close callback ran */
	bool reading;                /* uv_read_start is in effect */
	bool kick_queued;            /* on node->kick_head */
	bool processing;             /* inside conn_process (no re-entry) */
	uint8_t *rbuf;               /* owned: bytes read, not yet framed */
	size_t rlen;                 /* bytes in rbuf */
	size_t rcap;                 /* allocated length of rbuf */
	struct wire_buf out;         /* replies not yet handed to the socket */
	struct wire_buf wbuf;        /* replies being written */
	uv_write_t write_req;        /* for wbuf */
	bool writing;                /* write_req in flight */
	unsigned n_requests;         /* requests in flight */
	size_t request_bytes;        /* bytes they hold */
	struct node_conn *prev;      /* in node->conns */
	struct node_conn *next;      /* in node->conns */
	struct node_conn *kick_next; /* in node->kick_head */
	struct sub *subs;            /* its subscriptions (list, subs.c) */
	unsigned n_subs;             /* entries in subs */
};

/* Returns the buffer to encode a reply into, or NULL when the connection is
 * closing and the reply is to be dropped. After encoding, call
 * conn_flush(). */
struct wire_buf *conn_out(struct node_conn *c);

/* Starts writing what was encoded, if no write is in flight. */
void conn_flush(struct node_conn *c);

/* Encodes a WIRE_ERROR reply (dropped when the connection is closing). */
void conn_reply_error(struct node_conn *c, uint64_t request_id, uint32_t code,
		      const char *message);

/* Takes a reference for a request that outlives the frame: @bytes count
 * against NODE_CONN_REQUEST_BYTES_MAX. */
void conn_request_begin(struct node_conn *c, size_t bytes);

/* Counts @bytes more against the connection for a request that began;
 * returns @bytes (the request adds them to what it releases). */
size_t conn_request_grow(struct node_conn *c, size_t bytes);

/* Releases what conn_request_begin and conn_request_grow took, after the reply
 * (or its drop). May free the connection. */
void conn_request_end(struct node_conn *c, size_t bytes);

/* ------------------------------------------------------------------------
 * Handlers (handlers.c)
 * ------------------------------------------------------------------------ */

/* Handles one whole frame whose header was validated. @body is borrowed
 * (the connection's read buffer): a request that must wait copies what it
 * needs. Returns 0, or WIRE_EMALFORMED when the body did not decode: the
 * caller replies and closes. */
int handlers_dispatch(struct node_conn *c, const struct wire_header *h,
		      const uint8_t *body);

/* Initializes the parked-read machinery on n->loop. Returns 0 or a negative
 * uv error code. */
int handlers_init(struct node *n);

/* Answers every parked read (shutting down) and closes the handlers'
 * handles. */
void handlers_close(struct node *n);

/* Consensus callback: @last_position is applied; wakes parked reads. */
void handlers_applied(struct node *n, uint64_t last_position);

/* ------------------------------------------------------------------------
 * Membership (admin.c, join.c)
 * ------------------------------------------------------------------------ */

/* Handles MEMBER_CHANGE and LEADER_TRANSFER (leader only). Returns 0 or
 * WIRE_EMALFORMED like handlers_dispatch. */
int admin_handle(struct node_conn *c, const struct wire_header *h,
		 const uint8_t *body);

/* With --join: starts the worker that has this node added, caught up and
 * promoted (join.c). Returns 0 or a negative uv error code. */
int join_start(struct node *n);

/* Stops waiting for the join worker (shutdown); its result is dropped. */
void join_stop(struct node *n);

/* Fills @e from the stored record @r (pointers borrowed from @r), for an
 * EVENTS or SUB_EVENTS page. */
void node_wire_event(struct wire_event *e, const struct store_record *r);

/* Restores the backup in cfg->restore_dir into an empty data directory
 * (restore.c). Returns 0, or the exit status after logging why: 2 when
 * the data directory is not empty or the backup incomplete, 1 when a
 * file cannot be copied. Before anything opens the data directory. */
int node_restore(const struct node_config *cfg);

/* ------------------------------------------------------------------------
 * Store copies, the sending side (state_send.c)
 * ------------------------------------------------------------------------ */

/* Removes copy directories an earlier process left in DATA/copies and
 * starts the session machinery on n->loop, once the store is open.
 * Returns 0 or a negative uv error code. */
int state_send_init(struct node *n);

/* Ends every session (their checkpoints are deleted) and answers waiting
 * chunk requests; reads in flight finish on their own. Once consensus has
 * closed. */
void state_send_close(struct node *n);

/* Handles STATE_BEGIN, STATE_CHUNK and STATE_END, as handlers_dispatch. */
int state_send_handle(struct node_conn *c, const struct wire_header *h,
		      const uint8_t *body);

#endif /* CAIRN_NODE_H */
