/* libcairn: the C client of Cairn, a replicated event store.
 *
 * Open a client with seed addresses; it discovers the leader, follows
 * NOT_LEADER redirects, and retries an append after UNAVAILABLE, lost
 * leadership or a lost connection with the same client id and sequence, so
 * a retry never appends twice. Every call has a deadline.
 *
 * Threading: a client runs one I/O thread of its own. Every function may be
 * called from any thread at the same time, on the same client; requests
 * from all threads share the connections, many in flight at once.
 * Asynchronous callbacks run on the client's I/O thread: they must not
 * block, and must not call the synchronous functions of the same client
 * (the asynchronous ones are allowed). cairn_close must not be called from a
 * callback.
 *
 * Errors: functions return 0 or a CAIRN_E* code; a struct cairn_error, when
 * given, receives the code, a message and the details (actual version of a
 * conflict, leader address).
 *
 * Build: pkg-config --cflags --libs cairn */
#ifndef CAIRN_H
#define CAIRN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CAIRN_BUILDING)
#define CAIRN_API __attribute__((visibility("default")))
#else
#define CAIRN_API
#endif

/* Error codes. Those below 100 are the protocol's (docs/protocol.md). */
#define CAIRN_ERRORS(X)                                                        \
	X(CAIRN_EMALFORMED, 1, "malformed frame")                              \
	X(CAIRN_EUNKNOWN_TYPE, 2, "unknown message type")                      \
	X(CAIRN_EINVALID, 3, "invalid request")                                \
	X(CAIRN_ETOO_LARGE, 4, "request over a limit")                         \
	X(CAIRN_ENOT_LEADER, 5, "not the leader")                              \
	X(CAIRN_EUNAVAILABLE, 6, "no leader available")                        \
	X(CAIRN_EWRONG_EXPECTED_VERSION, 7, "wrong expected version")          \
	X(CAIRN_ESTALE_SEQUENCE, 8,                                            \
	  "client sequence below the writer's high-water mark")                \
	X(CAIRN_ETIMEOUT, 9, "deadline exceeded")                              \
	X(CAIRN_EUNKNOWN_OUTCOME, 10, "outcome unknown")                       \
	X(CAIRN_EBUSY, 11, "server busy")                                      \
	X(CAIRN_EINTERNAL, 12, "internal error")                               \
	X(CAIRN_ECHANGE_IN_PROGRESS, 13, "a membership change is in progress") \
	X(CAIRN_EBELOW_MIN_VOTERS, 14, "fewer voters than the minimum")        \
	X(CAIRN_ENO_SUCH_MEMBER, 15, "no such member")                         \
	X(CAIRN_EALREADY_MEMBER, 16, "already a member")                       \
	X(CAIRN_EBEHIND, 20, "node is behind the index")                       \
	X(CAIRN_ETRANSFER_GONE, 21, "copy session gone")                       \
	X(CAIRN_ENO_SPACE, 25, "disk full on this node")                       \
	X(CAIRN_ECONNECT, 100, "cannot connect to any node")                   \
	X(CAIRN_ENOMEM, 101, "out of memory")                                  \
	X(CAIRN_EPROTOCOL, 102, "protocol error from the server")              \
	X(CAIRN_ECLOSED, 103, "client closed")                                 \
	X(CAIRN_EARG, 104, "invalid argument")                                 \
	X(CAIRN_EIO, 105, "local file error")

enum cairn_error_code {
#define CAIRN_ERROR_ENUM(name, code, msg) name = code,
	CAIRN_ERRORS(CAIRN_ERROR_ENUM)
#undef CAIRN_ERROR_ENUM
};

CAIRN_API const char *cairn_strerror(int code);

struct cairn_error {
	int code;                /* 0 or a CAIRN_E* code */
	char message[512];       /* "what: why", lower case */
	uint32_t part;           /* WRONG_EXPECTED_VERSION: which part */
	uint64_t actual_version; /* WRONG_EXPECTED_VERSION: the stream's
				  * version; STALE_SEQUENCE: high-water mark */
	char leader[256];        /* NOT_LEADER: the leader's client address */
};

typedef struct cairn_client cairn_client;

struct cairn_options {
	/* Deadline of every call, retries included; 0: 10,000 ms. */
	unsigned deadline_ms;
	/* Talk to the first seed only: never follow redirects (reads from a
	 * chosen replica; appends to a follower then fail NOT_LEADER). */
	bool single_node;
	/* The writer id for appends; all zero: a random one. Its sequences
	 * start at the wall clock in microseconds at open, so an id reused by
	 * a later process starts above an earlier one's (docs/client.md). */
	uint8_t client_id[16];
	/* Connect timeout per attempt; 0: 2,000 ms. */
	unsigned connect_timeout_ms;
};

/* Opens a client. @seeds is "host:port,host:port,..." (borrowed); @opts may
 * be NULL. Connections are made lazily: opening never fails for an
 * unreachable cluster, the first call does. */
CAIRN_API int cairn_open(const char *seeds, const struct cairn_options *opts,
			 cairn_client **out, struct cairn_error *err);

/* Fails pending requests with CAIRN_ECLOSED, waits for the calls in
 * progress to return, stops the I/O thread, frees. Not from a callback;
 * no new call may start once it has begun. */
CAIRN_API void cairn_close(cairn_client *c);

/* The writer id the client uses when an append gives no key. */
CAIRN_API void cairn_client_id(cairn_client *c, uint8_t id[16]);

/* ---- appends ---- */

enum cairn_expect_kind {
	CAIRN_EXPECT_ANY = 0,
	CAIRN_EXPECT_NO_STREAM = 1,
	CAIRN_EXPECT_EXISTS = 2,
	CAIRN_EXPECT_EXACT = 3,
};

struct cairn_event_in {
	const uint8_t *id; /* 16 bytes, or NULL: the client makes a UUIDv4 */
	const char *type;  /* NUL-terminated, 1..255 bytes */
	const void *data;
	size_t data_len;
	const void *metadata; /* may be NULL */
	size_t metadata_len;
	uint16_t schema_version; /* 0: none */
	int64_t event_time_us;   /* 0: none */
};

struct cairn_append_part {
	const char *stream; /* NUL-terminated */
	int expect_kind;    /* enum cairn_expect_kind */
	uint64_t expect_version;
	const struct cairn_event_in *events;
	size_t n_events;
};

struct cairn_part_result {
	uint64_t first_version;
	uint64_t last_version;
	uint64_t first_position;
	uint64_t last_position;
};

/* An append's idempotency key. With has_key false the client uses its own
 * id and its next sequence; with has_key true the caller's (the CLI's
 * --client-id/--seq). Either way a retry inside the client reuses it. */
struct cairn_append_key {
	bool has_key;
	uint8_t client_id[16];
	uint64_t seq;
};

/* Appends to one or several streams atomically. Everything passed is
 * borrowed until the call returns (the async form copies what it needs
 * before it returns). @results has room for @n_parts results; @duplicate
 * (may be NULL) says the append had committed before (a retry). */
CAIRN_API int cairn_append(cairn_client *c,
			   const struct cairn_append_part *parts,
			   size_t n_parts, const struct cairn_append_key *key,
			   struct cairn_part_result *results, bool *duplicate,
			   struct cairn_error *err);

/* Single stream, the common case. */
CAIRN_API int cairn_append_one(cairn_client *c, const char *stream,
			       int expect_kind, uint64_t expect_version,
			       const struct cairn_event_in *events,
			       size_t n_events,
			       struct cairn_part_result *result,
			       struct cairn_error *err);

/* Asynchronous append: @cb runs once on the I/O thread with the outcome;
 * @results and @err point at storage valid only during the callback. If the
 * call returns an error the callback never runs. */
typedef void (*cairn_append_cb)(void *arg, int status,
				const struct cairn_part_result *results,
				size_t n_parts, bool duplicate,
				const struct cairn_error *err);
CAIRN_API int cairn_append_async(cairn_client *c,
				 const struct cairn_append_part *parts,
				 size_t n_parts,
				 const struct cairn_append_key *key,
				 cairn_append_cb cb, void *arg);

/* ---- reads ---- */

enum cairn_consistency {
	CAIRN_CONSISTENCY_ANY = 0,      /* the replica's applied state */
	CAIRN_CONSISTENCY_AT_LEAST = 1, /* wait until min_position applied */
	CAIRN_CONSISTENCY_LEADER = 2,   /* linearizable */
};

struct cairn_read_options {
	int consistency; /* enum cairn_consistency */
	uint64_t min_position;
	uint32_t limit; /* 0: the server's default page */
};

/* One event read back. Pointers borrow from the page that holds it. */
struct cairn_event {
	uint64_t position;
	uint64_t version;
	const char *stream; /* not NUL-terminated */
	size_t stream_len;
	uint8_t id[16];
	const char *type; /* not NUL-terminated */
	size_t type_len;
	uint16_t schema_version;
	int64_t event_time_us;
	uint64_t commit_time_us;
	bool has_client;
	uint8_t client_id[16];
	uint64_t client_seq;
	const void *data;
	size_t data_len;
	const void *metadata;
	size_t metadata_len;
};

/* A page of events, owned by the caller after a read: free it with
 * cairn_page_free. */
struct cairn_page {
	size_t n;
	struct cairn_event *events;
	uint64_t next; /* the version/position to read next */
	bool end;      /* nothing more was there */
	void *buf_;    /* private */
};

CAIRN_API void cairn_page_free(struct cairn_page *p);

/* Reads a stream from @from_version (forward) or down from it (backward;
 * UINT64_MAX: from the head). @opts may be NULL. */
CAIRN_API int cairn_read_stream(cairn_client *c, const char *stream,
				uint64_t from_version, bool backward,
				const struct cairn_read_options *opts,
				struct cairn_page *page,
				struct cairn_error *err);

struct cairn_filter {
	const char *stream_prefix; /* NULL: none */
	const char *category;      /* NULL: none */
	const char *type;          /* NULL: none */
};

/* Reads the global log from @from_position. @filter, @opts may be NULL. */
CAIRN_API int cairn_read_all(cairn_client *c, uint64_t from_position,
			     const struct cairn_filter *filter,
			     const struct cairn_read_options *opts,
			     struct cairn_page *page, struct cairn_error *err);

/* A stream's version (0: no events) and last position. */
CAIRN_API int cairn_head(cairn_client *c, const char *stream,
			 const struct cairn_read_options *opts,
			 uint64_t *version, uint64_t *last_position,
			 struct cairn_error *err);

/* ---- subscriptions ---- */

/* What a subscription follows. */
enum cairn_sub_kind {
	CAIRN_SUB_ALL = 0,      /* the global log */
	CAIRN_SUB_STREAM = 1,   /* one stream */
	CAIRN_SUB_CATEGORY = 2, /* every stream of a category ("order" holds
				 * "order-1", ...) */
};

struct cairn_subscribe_options {
	int kind;           /* enum cairn_sub_kind */
	const char *target; /* the stream or category; NULL for ALL */
	const char *type;   /* only events of this type; NULL: every type */
	bool from_now;      /* start after what the node has applied now */
	uint64_t from;      /* otherwise the first position (ALL, CATEGORY) or
			     * stream version (STREAM) to deliver; 0 and 1:
			     * from the start. To resume, pass the `next` of
			     * the last event or update you handled. */
	uint32_t window;    /* events the node may push ahead of the
			     * application; 0: 1,024; at most 65,536 */
};

typedef struct cairn_subscription cairn_subscription;

/* What an update (callback) or an item (iterator) says. */
enum cairn_sub_what {
	CAIRN_SUB_EVENTS = 1, /* events, in position order */
	CAIRN_SUB_LIVE = 2,   /* caught up: every event applied on the node
			       * when it was sent came before; once per
			       * subscription */
	CAIRN_SUB_END = 3,    /* callback only: the subscription ended for
			       * good (status, err); no update follows */
};

struct cairn_sub_update {
	int what;                         /* enum cairn_sub_what */
	const struct cairn_event *events; /* EVENTS: valid during the call */
	size_t n;                         /* EVENTS: how many */
	uint64_t next;                    /* where the subscription continues: a
					   * position, or a version for STREAM */
	uint64_t last_position;        /* LIVE: the node's applied position */
	int status;                    /* END: a CAIRN_E* code */
	const struct cairn_error *err; /* END: why */
};

/* Runs on the client's I/O thread: must not block, may call the
 * asynchronous functions and cairn_subscription_close of its own
 * subscription. */
typedef void (*cairn_subscription_cb)(void *arg,
				      const struct cairn_sub_update *u);

/* Subscribes: the matching events already applied (catch-up), then one
 * LIVE, then every new event as the node applies it, exactly once and in
 * order. Any node serves it, followers included. When its node dies or the
 * connection drops, the subscription resumes on another node from the
 * event after the last one delivered (never a duplicate, never a gap);
 * credit is granted as the application consumes.
 *
 * With @cb, updates go to @cb (borrowing @arg); with @cb NULL, take them
 * with cairn_subscription_next. @o is borrowed. Returns 0 with *out set (it
 * connects in the background; the client's deadline bounds how long the
 * first node may take to accept it, after which the subscription ends
 * with CAIRN_ECONNECT or CAIRN_ETIMEOUT); CAIRN_EARG for bad options. A
 * node's refusal (CAIRN_EINVALID: a bad stream name or type; CAIRN_ETOO_LARGE:
 * too many subscriptions on one connection) ends it: END in callback mode,
 * the error from cairn_subscription_next otherwise. Close every
 * subscription with cairn_subscription_close, before cairn_close (which
 * frees those left open: their handles are invalid afterwards). */
CAIRN_API int cairn_subscribe(cairn_client *c,
			      const struct cairn_subscribe_options *o,
			      cairn_subscription_cb cb, void *arg,
			      cairn_subscription **out,
			      struct cairn_error *err);

struct cairn_sub_item {
	int what;                 /* CAIRN_SUB_EVENTS (one event) or
				   * CAIRN_SUB_LIVE */
	struct cairn_event event; /* EVENTS: valid until the next call on
				   * this subscription or its close */
	uint64_t next;            /* where to resume after this item */
	uint64_t last_position;   /* LIVE: the node's applied position */
};

/* Iterator mode: waits up to @timeout_ms for the next item. Returns 0,
 * CAIRN_ETIMEOUT when nothing came in time (call again), or the error
 * that ended the subscription. From one thread at a time, not from a
 * callback. */
CAIRN_API int cairn_subscription_next(cairn_subscription *s,
				      unsigned timeout_ms,
				      struct cairn_sub_item *item,
				      struct cairn_error *err);

/* Unsubscribes and frees @s: no callback runs once it has returned (from
 * inside the subscription's own callback it takes effect when the callback
 * returns). */
CAIRN_API void cairn_subscription_close(cairn_subscription *s);

/* ---- consumer checkpoints and aggregate snapshots ----
 *
 * A checkpoint is a named u64 a consumer stores to remember how far it got
 * (names follow the stream name rules). A snapshot is up to 8 MiB of
 * opaque bytes (an aggregate's state) stored for a stream at a version, so
 * that a reader can start there instead of at the first event. Writes go to
 * the leader through consensus, keyed and retried like appends (a retry
 * never applies a write twice); reads take cairn_read_options. */

/* What cairn_checkpoint_set expects of the checkpoint. */
enum cairn_checkpoint_expect {
	CAIRN_CHECKPOINT_ANY = 0,    /* unconditional */
	CAIRN_CHECKPOINT_ABSENT = 1, /* it must not exist yet */
	CAIRN_CHECKPOINT_VALUE = 2,  /* it must hold @expected (>= 1) */
};

/* Reads checkpoint @name: *found false and *value 0 when it does not
 * exist (not an error). @opts, @value, @found may be NULL. */
CAIRN_API int cairn_checkpoint_get(cairn_client *c, const char *name,
				   const struct cairn_read_options *opts,
				   uint64_t *value, bool *found,
				   struct cairn_error *err);

/* Sets checkpoint @name to @value, if it holds what @expect_kind (enum
 * cairn_checkpoint_expect) and @expected say. A failed expectation returns
 * CAIRN_EWRONG_EXPECTED_VERSION with err->actual_version the value the
 * checkpoint holds (0: it does not exist). @key as for cairn_append (NULL:
 * the client's id and next sequence); @duplicate (may be NULL) says the
 * write had committed before. */
CAIRN_API int cairn_checkpoint_set(cairn_client *c, const char *name,
				   uint64_t value, int expect_kind,
				   uint64_t expected,
				   const struct cairn_append_key *key,
				   bool *duplicate, struct cairn_error *err);

/* Stores @len bytes of @data (at most 8 MiB) as the snapshot of @stream at
 * @version (1..the stream's version). A version past the stream's head
 * returns CAIRN_EWRONG_EXPECTED_VERSION with err->actual_version the
 * head. @key as for cairn_append. */
CAIRN_API int cairn_snapshot_put(cairn_client *c, const char *stream,
				 uint64_t version, const void *data, size_t len,
				 const struct cairn_append_key *key,
				 struct cairn_error *err);

/* A snapshot read back, owned by the caller: free it with
 * cairn_snapshot_free. */
struct cairn_snapshot {
	uint64_t version; /* 0: the stream has none */
	void *data;       /* malloc'ed, NULL when empty */
	size_t len;
};

CAIRN_API void cairn_snapshot_free(struct cairn_snapshot *s);

/* The newest snapshot of @stream at or below @max_version (UINT64_MAX:
 * the newest). */
CAIRN_API int cairn_snapshot_get(cairn_client *c, const char *stream,
				 uint64_t max_version,
				 const struct cairn_read_options *opts,
				 struct cairn_snapshot *snap,
				 struct cairn_error *err);

/* The newest snapshot of @stream (version 0 when none) and the first page
 * of the events after it (from snap->version + 1; continue with
 * cairn_read_stream from page->next until page->end). On error neither
 * needs freeing. */
CAIRN_API int cairn_read_stream_with_snapshot(
	cairn_client *c, const char *stream,
	const struct cairn_read_options *opts, struct cairn_snapshot *snap,
	struct cairn_page *page, struct cairn_error *err);

/* ---- consumers ----
 *
 * A consumer is a subscription whose progress is saved in a checkpoint:
 * cairn_consumer_start reads checkpoint @name (of the consumer), subscribes
 * from the event after it, and calls @cb for every event, in order, with
 * @live false during catch-up and true once the subscription caught up.
 * The checkpoint (the position of the last event whose callback returned;
 * its stream version for a CAIRN_SUB_STREAM subscription) is saved every
 * @every_events events, every @every_ms milliseconds when events came
 * since the last save, and at cairn_consumer_stop.
 *
 * Delivery is at-least-once: the events after the last saved checkpoint
 * are delivered again after a restart (a crash, or cairn_consumer_drop),
 * never skipped; handlers must tolerate a repeat of that tail.
 *
 * @cb runs on a thread of the consumer's own (one at a time, never on the
 * client's I/O thread): it may call the client's synchronous functions
 * and block, but not stop its own consumer. */
typedef struct cairn_consumer cairn_consumer;
typedef void (*cairn_consumer_cb)(void *arg, const struct cairn_event *e,
				  bool live);

/* @o gives what to follow (kind, target, type, window); its from and
 * from_now are ignored: the checkpoint decides where to start (the start
 * when there is none). @every_events 0: only by time; @every_ms 0: only by
 * count. Returns 0 with *out set, or the error of reading the checkpoint
 * or of subscribing. */
CAIRN_API int cairn_consumer_start(cairn_client *c, const char *name,
				   const struct cairn_subscribe_options *o,
				   uint32_t every_events, unsigned every_ms,
				   cairn_consumer_cb cb, void *arg,
				   cairn_consumer **out,
				   struct cairn_error *err);

/* Stops @k (no callback runs once it has returned), saves its checkpoint,
 * frees it. Returns 0, the error that saving failed with, or the error
 * that had ended the subscription before. */
CAIRN_API int cairn_consumer_stop(cairn_consumer *k, struct cairn_error *err);

/* Stops and frees @k without saving the checkpoint, as if the process had
 * died: the next consumer of the same name starts after the last save. */
CAIRN_API void cairn_consumer_drop(cairn_consumer *k);

/* ---- cluster ---- */

struct cairn_member {
	uint64_t id;
	int voter_role; /* 0 standby, 1 voter, 2 spare */
	char raft_address[256];
	char client_address[256];
	char http_address[256];
};

enum cairn_role {
	CAIRN_ROLE_FOLLOWER = 0,
	CAIRN_ROLE_CANDIDATE = 1,
	CAIRN_ROLE_LEADER = 2,
	CAIRN_ROLE_UNAVAILABLE = 3,
};

struct cairn_status {
	uint64_t node_id;
	int role; /* enum cairn_role */
	uint64_t term;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t last_position;
	uint64_t leader_id;
	char leader_client_address[256];
	size_t n_members;
	struct cairn_member members[16];
};

/* The status of the node at @address ("host:port"; one connection attempt
 * there, no retry elsewhere), or of whichever node the client is connected
 * to when @address is NULL. */
CAIRN_API int cairn_status(cairn_client *c, const char *address,
			   struct cairn_status *s, struct cairn_error *err);

/* ---- membership (admin.c) ----
 *
 * Changes of the cluster's members, sent to the leader (redirects are
 * followed, unless single_node) within the client's deadline. One change
 * at a time per cluster: CAIRN_ECHANGE_IN_PROGRESS while another one is in
 * flight. A refusal says why: CAIRN_EBELOW_MIN_VOTERS (a removal or
 * demotion would leave fewer voters than the node's --min-voters; pass
 * @force), CAIRN_ENO_SUCH_MEMBER, CAIRN_EALREADY_MEMBER (the id or the
 * Raft address is taken). @out (may be NULL) receives the member list
 * after the change, with roles. These calls are synchronous and open
 * their own connection to the nodes. */

struct cairn_members {
	size_t n;
	struct cairn_member members[16];
};

/* Adds member @id as a non-voter (standby: it replicates, does not vote)
 * with its addresses (@client_address and @http_address may be NULL). */
CAIRN_API int cairn_member_add(cairn_client *c, uint64_t id,
			       const char *raft_address,
			       const char *client_address,
			       const char *http_address,
			       struct cairn_members *out,
			       struct cairn_error *err);

/* Removes member @id from the cluster. */
CAIRN_API int cairn_member_remove(cairn_client *c, uint64_t id, bool force,
				  struct cairn_members *out,
				  struct cairn_error *err);

/* Makes standby @id a voter once it has caught up (0 at once when it is a
 * voter already). */
CAIRN_API int cairn_member_promote(cairn_client *c, uint64_t id,
				   struct cairn_members *out,
				   struct cairn_error *err);

/* Makes voter @id a standby (not the leader: transfer first). */
CAIRN_API int cairn_member_demote(cairn_client *c, uint64_t id, bool force,
				  struct cairn_members *out,
				  struct cairn_error *err);

/* Hands leadership to voter @id, or with @id 0 to the most caught-up
 * voter; *new_leader (may be NULL) gets the leader afterwards. */
CAIRN_API int cairn_leader_transfer(cairn_client *c, uint64_t id,
				    uint64_t *new_leader,
				    struct cairn_error *err);

/* ---- Copying a node's store ---- */

struct cairn_fetch_progress {
	uint64_t bytes_done;  /* bytes in place so far (kept + fetched) */
	uint64_t bytes_total; /* bytes in the copy */
	uint32_t files_done;
	uint32_t files_total;
};
typedef void (*cairn_fetch_progress_fn)(void *arg,
					const struct cairn_fetch_progress *p);
struct cairn_fetch_options {
	uint64_t min_applied_index; /* the copy must hold at least this
				       Raft index (0: any); a node that has
				       applied less answers an error and the
				       caller tries another */
	int leader;                 /* nonzero: copy from the leader after a
				       barrier, so every append acknowledged
				       before the call is in the copy
				       (backups); NOT_LEADER is followed */
	int resume;                 /* nonzero: keep files already in dir
				       that the listing names with the same
				       size from the same source DB
				       identity (immutable SST files); the
				       rest is fetched again */
	int64_t timeout_ms;         /* per round trip; 0: 30 s */
	cairn_fetch_progress_fn progress; /* may be NULL */
	void *progress_arg;
};
struct cairn_fetch_result {
	uint64_t node_id;       /* the node copied from */
	uint64_t applied_index; /* the Raft index the copy holds */
	uint64_t last_position; /* its last global position */
	uint64_t bytes;         /* bytes of the copy */
	uint64_t bytes_fetched; /* bytes moved (less when resuming) */
};
/* Copies a consistent checkpoint of one node's store into @dir
 * (created if missing; files of dir not in the copy are removed), in
 * bounded memory (a few chunks of 1 MiB at most), verifying every
 * chunk. @address: the node's client address, or NULL for whichever
 * node @c reaches (the leader when o->leader). On success @dir holds a
 * RocksDB directory that store_open() opens, every file fsynced, plus
 * a small text file CAIRN-COPY (written last, fsynced, then the dir
 * fsynced) naming the source node, DB identity, applied index, last
 * position and the files with sizes: its presence means "complete".
 * Returns 0 or a CAIRN_E* code with @err filled, like every call:
 * CAIRN_EBEHIND when the node has applied less than min_applied_index,
 * CAIRN_EIO when @dir cannot be written, CAIRN_EPROTOCOL when a chunk
 * fails its checksum. Blocks the calling thread (its own connection, not
 * the client's I/O thread); @progress runs on the calling thread. */
CAIRN_API int cairn_fetch_state(cairn_client *c, const char *address,
				const char *dir,
				const struct cairn_fetch_options *o,
				struct cairn_fetch_result *r,
				struct cairn_error *err);

/* ---- helpers ---- */

/* Makes a random UUIDv4. */
CAIRN_API void cairn_uuid(uint8_t out[16]);
/* Formats 36 characters and a NUL; parses the same (returns 0 or
 * CAIRN_EARG). */
CAIRN_API void cairn_uuid_format(const uint8_t id[16], char out[37]);
CAIRN_API int cairn_uuid_parse(const char *s, uint8_t out[16]);

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_H */
