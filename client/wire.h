/* The wire codec of Cairn's binary client protocol: frames and the messages
 * they carry, encoded and decoded without trusting a single byte. The node
 * (cairnd) and libcairn both link it; docs/protocol.md is its specification.
 *
 * Every integer is little-endian. A frame is a 16-byte header followed by a
 * body of at most WIRE_BODY_BYTES_MAX bytes:
 *
 *   u32 body length   u16 type   u16 flags (zero)   u64 request id
 *
 * Decoders never allocate from a count before checking that the remaining
 * bytes can hold that many items; decoded views borrow from the frame body,
 * so the body must outlive them. Nothing here touches a socket. */
#ifndef CAIRN_CLIENT_WIRE_H
#define CAIRN_CLIENT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header bytes before every body. */
#define WIRE_HEADER_BYTES 16

/* Largest body: the largest transaction storage accepts (16 MiB of encoded
 * events) plus the per-event framing the wire adds, with room to spare. A
 * length prefix above it closes the connection before anything is read or
 * allocated. */
#define WIRE_BODY_BYTES_MAX ((17u << 20))

/* Event bytes a server puts in one read reply before it stops the page (a
 * page always holds at least one event, whatever its size). */
#define WIRE_READ_BYTES_MAX (4u << 20)

/* Events a read may ask for in one page; larger limits are clamped. */
#define WIRE_READ_COUNT_MAX 10000

/* Bytes of an error message or an address on the wire. */
#define WIRE_STRING_MAX 1024

/* Members listed in a status reply. */
#define WIRE_MEMBERS_MAX 16

/* Streams in one append. */
#define WIRE_APPEND_PARTS_MAX 1000

/* Bytes of one aggregate snapshot (storage's STORE_SNAPSHOT_BYTES_MAX). */
#define WIRE_SNAPSHOT_BYTES_MAX (8u << 20)

/* Message types. Requests have the high bit clear, replies set. */
enum wire_type {
	WIRE_APPEND = 0x01,
	WIRE_READ_STREAM = 0x02,
	WIRE_READ_ALL = 0x03,
	WIRE_HEAD = 0x04,
	WIRE_STATUS = 0x05,
	WIRE_CHECKPOINT_GET = 0x20, /* reads a consumer checkpoint */
	WIRE_CHECKPOINT_SET = 0x21, /* sets one (optionally compare-and-set) */
	WIRE_SNAPSHOT_PUT = 0x22,   /* stores an aggregate snapshot */
	WIRE_SNAPSHOT_GET = 0x23,   /* reads a stream's newest snapshot */
	WIRE_SUBSCRIBE = 0x10,      /* starts a subscription */
	WIRE_CREDIT = 0x11,         /* grants a subscription more events */
	WIRE_UNSUBSCRIBE = 0x12,    /* ends a subscription */

	/* Membership: to the leader. */
	WIRE_MEMBER_CHANGE = 0x30,   /* adds, removes, promotes, demotes */
	WIRE_LEADER_TRANSFER = 0x31, /* hands leadership over */

	WIRE_STATE_BEGIN = 0x40, /* starts copying the node's store */
	WIRE_STATE_CHUNK = 0x41, /* asks for bytes of one copied file */
	WIRE_STATE_END = 0x42,   /* ends a copy session */

	WIRE_APPEND_OK = 0x81,
	WIRE_EVENTS = 0x82, /* the reply to READ_STREAM and READ_ALL */
	WIRE_HEAD_OK = 0x84,
	WIRE_STATUS_OK = 0x85,
	WIRE_CHECKPOINT = 0xa0, /* the reply to CHECKPOINT_GET */
	WIRE_STATE_OK = 0xa1,   /* the reply to CHECKPOINT_SET, SNAPSHOT_PUT */
	WIRE_SNAPSHOT = 0xa3,   /* the reply to SNAPSHOT_GET */
	WIRE_MEMBERS = 0xb0,    /* the reply to MEMBER_CHANGE */
	WIRE_LEADER = 0xb1,     /* the reply to LEADER_TRANSFER */
	WIRE_SUB_EVENTS = 0x90, /* pushed: a subscription's events */
	WIRE_SUB_LIVE = 0x91,   /* pushed: the subscription caught up */
	WIRE_SUB_END = 0x92,    /* pushed: the subscription ended */
	WIRE_STATE_LISTING = 0xc0, /* the reply to STATE_BEGIN */
	WIRE_STATE_DATA = 0xc1,    /* the reply to STATE_CHUNK */
	WIRE_STATE_ENDED = 0xc2,   /* the reply to STATE_END */
	WIRE_ERROR = 0xff,
};

/* Error codes carried by WIRE_ERROR replies, with the text libcairn and the
 * CLI show. Codes are stable: they are part of the protocol. */
#define WIRE_ERRORS(X)                                                        \
	X(WIRE_EMALFORMED, 1, "malformed frame")                              \
	X(WIRE_EUNKNOWN_TYPE, 2, "unknown message type")                      \
	X(WIRE_EINVALID, 3, "invalid request")                                \
	X(WIRE_ETOO_LARGE, 4, "request over a limit")                         \
	X(WIRE_ENOT_LEADER, 5, "not the leader")                              \
	X(WIRE_EUNAVAILABLE, 6, "no leader available")                        \
	X(WIRE_EWRONG_EXPECTED_VERSION, 7, "wrong expected version")          \
	X(WIRE_ESTALE_SEQUENCE, 8,                                            \
	  "client sequence below the writer's high-water mark")               \
	X(WIRE_ETIMEOUT, 9, "timed out")                                      \
	X(WIRE_EUNKNOWN_OUTCOME, 10,                                          \
	  "outcome unknown: leadership lost while in flight; retry with the " \
	  "same client id and sequence")                                      \
	X(WIRE_EBUSY, 11, "server busy")                                      \
	X(WIRE_EINTERNAL, 12, "internal error")                               \
	X(WIRE_ECHANGE_IN_PROGRESS, 13,                                       \
	  "a membership change or leadership transfer is in progress")        \
	X(WIRE_EBELOW_MIN_VOTERS, 14,                                         \
	  "the change would leave fewer voters than the minimum")             \
	X(WIRE_ENO_SUCH_MEMBER, 15, "no such member")                         \
	X(WIRE_EALREADY_MEMBER, 16, "already a member")                       \
	X(WIRE_EBEHIND, 20, "node has not applied the index asked for")       \
	X(WIRE_ETRANSFER_GONE, 21, "copy session expired or unknown")         \
	X(WIRE_ENO_SPACE, 25, "disk full on this node")

enum wire_error {
#define WIRE_ERROR_ENUM(name, code, msg) name = code,
	WIRE_ERRORS(WIRE_ERROR_ENUM)
#undef WIRE_ERROR_ENUM
};

/* The text of a WIRE_E* code, or "unknown error" for any other value. */
const char *wire_strerror(int code);

/* Decoder results: 0 or one of these. */
enum {
	WIRE_OK = 0,
	WIRE_DECODE_MALFORMED = 1, /* bytes do not form the message */
	WIRE_DECODE_NOMEM = 2,     /* allocation failed */
};

/* More results (additions to the codes above). WIRE_NEED_MORE comes from
 * wire_frame_peek only. The encoders return WIRE_ENCODE_* instead of
 * producing a frame its decoder would reject, so that whatever an encoder
 * accepts decodes on the other side; on any error nothing is appended:
 *  - WIRE_ENCODE_TOO_LARGE: the body would be over WIRE_BODY_BYTES_MAX
 *    (for wire_events_add: with this event), a str16 over 65,535 bytes, an
 *    address over WIRE_STRING_MAX, more than WIRE_APPEND_PARTS_MAX parts
 *    or WIRE_MEMBERS_MAX members (libcairn maps it to its ETOO_LARGE);
 *  - WIRE_ENCODE_INVALID: a count that must be at least 1 is 0, or an enum
 *    field holds a value the protocol does not define.
 * wire_encode_error truncates a message text over WIRE_STRING_MAX bytes
 * (at a UTF-8 character boundary) instead of refusing it. */
enum {
	WIRE_NEED_MORE = 3,
	WIRE_ENCODE_TOO_LARGE = 4,
	WIRE_ENCODE_INVALID = 5,
};

/* The name of a message type ("APPEND", "EVENTS", ...), or NULL for a type
 * this version of the protocol does not define. For logs. */
const char *wire_type_name(unsigned type);

/* True for the types a client may send (APPEND, READ_STREAM, READ_ALL,
 * HEAD, STATUS, CHECKPOINT_GET, CHECKPOINT_SET, SNAPSHOT_PUT,
 * SNAPSHOT_GET, SUBSCRIBE, CREDIT, UNSUBSCRIBE, STATE_BEGIN, STATE_CHUNK,
 * STATE_END, MEMBER_CHANGE, LEADER_TRANSFER). A server answers any other
 * type, replies included, with WIRE_EUNKNOWN_TYPE. */
bool wire_type_is_request(unsigned type);

/* A borrowed byte string. */
struct wire_bytes {
	const uint8_t *p; /* borrowed; NULL only when len is 0 */
	uint32_t len;
};

/* A growable output buffer: encoders append whole frames to it. */
struct wire_buf {
	uint8_t *p; /* owned */
	size_t len; /* bytes used */
	size_t cap; /* bytes allocated */
};

void wire_buf_init(struct wire_buf *b);
void wire_buf_close(struct wire_buf *b);
void wire_buf_reset(struct wire_buf *b); /* len = 0, memory kept */
/* Drops the first @n bytes (after they were written to a socket). */
void wire_buf_consume(struct wire_buf *b, size_t n);

/* ---- frame header ---- */

struct wire_header {
	uint32_t body_len;
	uint16_t type;
	uint16_t flags;
	uint64_t request_id;
};

/* Decodes a header from WIRE_HEADER_BYTES bytes. Returns WIRE_OK, or
 * WIRE_DECODE_MALFORMED when the length is over WIRE_BODY_BYTES_MAX or the
 * flags are not zero (the caller replies WIRE_EMALFORMED and closes). */
int wire_header_decode(const void *buf, struct wire_header *h);

/* Looks at @len buffered bytes (@buf may be NULL when @len is 0): returns 0
 * and sets *frame_len (header + body) when a whole frame is there,
 * WIRE_NEED_MORE when more bytes are needed, WIRE_DECODE_MALFORMED when the
 * header is invalid (length over the maximum, flags not zero).
 *
 * Once WIRE_HEADER_BYTES are there, @h holds the header's fields whatever
 * the result (so a server can echo the request id of an invalid header),
 * and on WIRE_NEED_MORE *frame_len is the size the whole frame will have,
 * which the caller may use to size its read buffer; with fewer bytes
 * *frame_len is 0. The body of a complete frame is the *frame_len -
 * WIRE_HEADER_BYTES bytes after the header. Used by the node's connections,
 * libcairn and the fuzz target. */
int wire_frame_peek(const void *buf, size_t len, struct wire_header *h,
		    size_t *frame_len);

/* ---- consistency of a read ---- */

enum wire_consistency {
	WIRE_CONSISTENCY_ANY = 0,      /* the replica's applied state */
	WIRE_CONSISTENCY_AT_LEAST = 1, /* wait until min_position is applied */
	WIRE_CONSISTENCY_LEADER = 2,   /* linearizable: the leader, after a
					* barrier confirms its leadership */
};

struct wire_consistency_req {
	uint8_t kind;          /* enum wire_consistency */
	uint64_t min_position; /* WIRE_CONSISTENCY_AT_LEAST only */
};

/* ---- APPEND ---- */

/* Expected version kinds; the same values as storage's. */
enum wire_expect {
	WIRE_EXPECT_ANY = 0,
	WIRE_EXPECT_NO_STREAM = 1,
	WIRE_EXPECT_EXISTS = 2,
	WIRE_EXPECT_EXACT = 3,
};

struct wire_event_in {
	uint8_t id[16];
	struct wire_bytes type; /* 1..255 bytes, checked by the server */
	uint16_t schema_version;
	int64_t event_time_us;
	struct wire_bytes data;
	struct wire_bytes metadata;
};

struct wire_part {
	struct wire_bytes stream;
	uint8_t expect_kind; /* enum wire_expect */
	uint64_t expect_version;
	uint32_t n_events;
	struct wire_event_in *events; /* points into the owning message */
};

struct wire_append {
	bool has_client;
	uint8_t client_id[16];
	uint64_t client_seq;
	uint32_t n_parts;
	struct wire_part *parts; /* owned when decoded, borrowed to encode */
	struct wire_event_in *events_; /* owned when decoded: all parts'
					* events, in order */
};

/* Encodes a whole APPEND frame at the end of @b. Returns 0 or
 * WIRE_DECODE_NOMEM. The message is not validated beyond what framing
 * needs (lengths must fit their fields; asserted). */
int wire_encode_append(struct wire_buf *b, uint64_t request_id,
		       const struct wire_append *a);

/* Decodes an APPEND body. On success @a borrows from @body and owns its
 * arrays: release them with wire_append_close(). On error nothing is left to
 * release. Counts are bounded (WIRE_APPEND_PARTS_MAX parts; events by the
 * bytes left) before anything is allocated. */
int wire_decode_append(const void *body, size_t len, struct wire_append *a);
void wire_append_close(struct wire_append *a);

struct wire_part_result {
	uint64_t first_version;
	uint64_t last_version;
	uint64_t first_position;
	uint64_t last_position;
};

/* APPEND_OK: one result per part, in the request's order. */
int wire_encode_append_ok(struct wire_buf *b, uint64_t request_id,
			  bool duplicate, uint32_t n_parts,
			  const struct wire_part_result *parts);
/* Decodes into @parts (capacity @cap); fails MALFORMED when the reply holds
 * more than @cap parts. */
int wire_decode_append_ok(const void *body, size_t len, bool *duplicate,
			  uint32_t *n_parts, struct wire_part_result *parts,
			  uint32_t cap);

/* ---- READ_STREAM, READ_ALL ---- */

struct wire_read_stream {
	struct wire_bytes stream;
	uint64_t from_version; /* UINT64_MAX with backward: from the head */
	bool backward;
	uint32_t limit; /* 0 means the server's default page */
	struct wire_consistency_req consistency;
};

int wire_encode_read_stream(struct wire_buf *b, uint64_t request_id,
			    const struct wire_read_stream *r);
int wire_decode_read_stream(const void *body, size_t len,
			    struct wire_read_stream *r);

struct wire_read_all {
	uint64_t from_position; /* 0 and 1 both mean the start */
	uint32_t limit;
	struct wire_consistency_req consistency;
	struct wire_bytes stream_prefix; /* empty: no filter */
	struct wire_bytes category;      /* empty: no filter */
	struct wire_bytes type;          /* empty: no filter */
};

int wire_encode_read_all(struct wire_buf *b, uint64_t request_id,
			 const struct wire_read_all *r);
int wire_decode_read_all(const void *body, size_t len, struct wire_read_all *r);

/* One event as read back. */
struct wire_event {
	uint64_t position;
	uint64_t version;
	struct wire_bytes stream;
	uint8_t id[16];
	struct wire_bytes type;
	uint16_t schema_version;
	int64_t event_time_us;
	uint64_t commit_time_us;
	bool has_client;
	uint8_t client_id[16];
	uint64_t client_seq;
	struct wire_bytes data;
	struct wire_bytes metadata;
};

/* EVENTS is built incrementally: begin, add each event, end. @next is the
 * version (stream reads) or position (global reads) to ask for next; @end
 * says nothing more was there when the page was read. */
struct wire_events_writer {
	size_t frame_off; /* where the frame starts in the buffer */
	uint32_t count;
	size_t event_bytes; /* bytes of events added */
};

int wire_events_begin(struct wire_buf *b, uint64_t request_id,
		      struct wire_events_writer *w);
/* The same for a SUB_EVENTS push (the body is EVENTS'): @request_id is the
 * SUBSCRIBE's. wire_events_add and wire_events_end complete it, and
 * wire_events_open reads it. */
int wire_sub_events_begin(struct wire_buf *b, uint64_t request_id,
			  struct wire_events_writer *w);
int wire_events_add(struct wire_buf *b, struct wire_events_writer *w,
		    const struct wire_event *e);
void wire_events_end(struct wire_buf *b, struct wire_events_writer *w,
		     uint64_t next, bool end);

/* Reads EVENTS without allocating: open, then next until it returns false.
 * wire_events_open checks the whole body (every event well formed, the
 * count exact) so that next never fails. */
struct wire_events_reader {
	uint64_t next;
	bool end;
	uint32_t count;
	const uint8_t *p;   /* borrowed */
	const uint8_t *lim; /* borrowed */
	uint32_t remaining;
};

int wire_events_open(const void *body, size_t len,
		     struct wire_events_reader *r);
bool wire_events_next(struct wire_events_reader *r, struct wire_event *e);

/* ---- HEAD ---- */

struct wire_head {
	struct wire_bytes stream;
	struct wire_consistency_req consistency;
};

int wire_encode_head(struct wire_buf *b, uint64_t request_id,
		     const struct wire_head *h);
int wire_decode_head(const void *body, size_t len, struct wire_head *h);
int wire_encode_head_ok(struct wire_buf *b, uint64_t request_id,
			uint64_t version, uint64_t last_position);
int wire_decode_head_ok(const void *body, size_t len, uint64_t *version,
			uint64_t *last_position);

/* ---- STATUS ---- */

enum wire_role {
	WIRE_ROLE_FOLLOWER = 0,
	WIRE_ROLE_CANDIDATE = 1,
	WIRE_ROLE_LEADER = 2,
	WIRE_ROLE_UNAVAILABLE = 3,
};

enum wire_member_role {
	WIRE_MEMBER_STANDBY = 0,
	WIRE_MEMBER_VOTER = 1,
	WIRE_MEMBER_SPARE = 2,
};

struct wire_member {
	uint64_t id;
	uint8_t role; /* enum wire_member_role */
	struct wire_bytes raft_address;
	struct wire_bytes client_address; /* empty when not yet known */
	struct wire_bytes http_address;   /* empty when not yet known */
};

struct wire_status {
	uint64_t node_id;
	uint8_t role; /* enum wire_role */
	uint64_t term;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t last_position;
	uint64_t leader_id; /* 0 when unknown */
	struct wire_bytes leader_client_address;
	uint32_t n_members; /* at most WIRE_MEMBERS_MAX */
	struct wire_member members[WIRE_MEMBERS_MAX];
};

/* STATUS has an empty body. */
int wire_encode_status(struct wire_buf *b, uint64_t request_id);
/* Checks a STATUS body: WIRE_OK when @len is 0, else WIRE_DECODE_MALFORMED. */
int wire_decode_status(const void *body, size_t len);
int wire_encode_status_ok(struct wire_buf *b, uint64_t request_id,
			  const struct wire_status *s);
int wire_decode_status_ok(const void *body, size_t len, struct wire_status *s);

/* ---- ERROR ---- */

struct wire_err {
	uint32_t code;             /* enum wire_error */
	uint32_t part;             /* WRONG_EXPECTED_VERSION: which part */
	uint64_t actual_version;   /* WRONG_EXPECTED_VERSION: its version;
				    * STALE_SEQUENCE: the high-water mark */
	struct wire_bytes leader;  /* NOT_LEADER: the leader's client
				    * address */
	struct wire_bytes message; /* human text, may be empty */
};

int wire_encode_error(struct wire_buf *b, uint64_t request_id,
		      const struct wire_err *e);
int wire_decode_error(const void *body, size_t len, struct wire_err *e);

/* ---- subscriptions ----
 *
 * A SUBSCRIBE's request id names the subscription for its whole life: the
 * node pushes SUB_EVENTS, one SUB_LIVE and finally SUB_END with it, and the
 * client sends CREDIT and UNSUBSCRIBE with it. A refused SUBSCRIBE gets an
 * ERROR instead, and nothing else. CREDIT gets no reply; UNSUBSCRIBE is
 * answered by the SUB_END (reason UNSUBSCRIBED) of a live subscription and
 * by nothing when the subscription had already ended. */

/* What a subscription follows. */
enum wire_sub_kind {
	WIRE_SUB_ALL = 0,      /* the global log (target empty) */
	WIRE_SUB_STREAM = 1,   /* one stream (target: its name) */
	WIRE_SUB_CATEGORY = 2, /* the streams of a category (target) */
};

/* Where it starts. */
enum wire_sub_from {
	WIRE_SUB_FROM_POSITION = 0, /* from `from`: the first position (ALL,
				     * CATEGORY) or stream version (STREAM)
				     * to deliver; 0 and 1 mean the start */
	WIRE_SUB_FROM_NOW = 1,      /* after what is applied now (from 0) */
};

struct wire_subscribe {
	uint8_t kind;             /* enum wire_sub_kind */
	uint8_t from_kind;        /* enum wire_sub_from */
	uint64_t from;            /* see enum wire_sub_from */
	struct wire_bytes target; /* stream or category; empty for ALL */
	struct wire_bytes type;   /* only events of this type; empty: all */
	uint32_t credit;          /* events the node may push before the
				   * first CREDIT */
};

int wire_encode_subscribe(struct wire_buf *b, uint64_t request_id,
			  const struct wire_subscribe *s);
int wire_decode_subscribe(const void *body, size_t len,
			  struct wire_subscribe *s);

/* CREDIT: @events (at least 1) more events the node may push. */
int wire_encode_credit(struct wire_buf *b, uint64_t request_id,
		       uint32_t events);
int wire_decode_credit(const void *body, size_t len, uint32_t *events);

/* UNSUBSCRIBE has an empty body. */
int wire_encode_unsubscribe(struct wire_buf *b, uint64_t request_id);
int wire_decode_unsubscribe(const void *body, size_t len);

/* SUB_LIVE: every matching event before @next was pushed, and @next was
 * past the node's applied state (@last_position) when it was sent. */
int wire_encode_sub_live(struct wire_buf *b, uint64_t request_id, uint64_t next,
			 uint64_t last_position);
int wire_decode_sub_live(const void *body, size_t len, uint64_t *next,
			 uint64_t *last_position);

/* Why a subscription ended. */
enum wire_sub_end_reason {
	WIRE_SUB_END_UNSUBSCRIBED = 1, /* the client sent UNSUBSCRIBE */
	WIRE_SUB_END_SLOW = 2,         /* the client did not take its
					* pushes: over the node's bound */
	WIRE_SUB_END_SHUTDOWN = 3,     /* the node is stopping */
	WIRE_SUB_END_INTERNAL = 4,     /* a storage error on the node */
};

struct wire_sub_end {
	uint32_t reason;           /* enum wire_sub_end_reason */
	uint64_t next;             /* where to resume (as SUB_LIVE's) */
	struct wire_bytes message; /* human text, <= WIRE_STRING_MAX */
};

/* A text for a reason ("slow consumer"), "unknown reason" otherwise. */
const char *wire_sub_end_reason_name(uint32_t reason);

/* Truncates a message over WIRE_STRING_MAX like wire_encode_error. */
int wire_encode_sub_end(struct wire_buf *b, uint64_t request_id,
			const struct wire_sub_end *s);
int wire_decode_sub_end(const void *body, size_t len, struct wire_sub_end *s);

/* ---- checkpoints and snapshots ----
 *
 * A consumer checkpoint is a named u64 (a name follows the stream name
 * rules); an aggregate snapshot is up to WIRE_SNAPSHOT_BYTES_MAX opaque
 * bytes stored for a stream at a version. Writes go through consensus on
 * the leader as one transaction of one state operation (no events); reads
 * take a consistency like READ_STREAM. */

/* What a CHECKPOINT_SET expects of the checkpoint before it. */
enum wire_cp_expect {
	WIRE_CP_EXPECT_ANY = 0,    /* unconditional */
	WIRE_CP_EXPECT_ABSENT = 1, /* the checkpoint must not exist */
	WIRE_CP_EXPECT_VALUE = 2,  /* it must hold `expected` (>= 1) */
};

struct wire_checkpoint_get {
	struct wire_bytes name;
	struct wire_consistency_req consistency;
};

int wire_encode_checkpoint_get(struct wire_buf *b, uint64_t request_id,
			       const struct wire_checkpoint_get *g);
int wire_decode_checkpoint_get(const void *body, size_t len,
			       struct wire_checkpoint_get *g);

/* CHECKPOINT: @found false (value 0) when the checkpoint does not exist. */
int wire_encode_checkpoint(struct wire_buf *b, uint64_t request_id, bool found,
			   uint64_t value);
int wire_decode_checkpoint(const void *body, size_t len, bool *found,
			   uint64_t *value);

struct wire_checkpoint_set {
	bool has_client; /* client_id/client_seq make it idempotent */
	uint8_t client_id[16];
	uint64_t client_seq;
	struct wire_bytes name;
	uint64_t value;
	uint8_t expect_kind; /* enum wire_cp_expect */
	uint64_t expected;   /* WIRE_CP_EXPECT_VALUE: >= 1; else 0 */
};

/* WIRE_ENCODE_INVALID for an unknown expect kind, an expected value of 0
 * with WIRE_CP_EXPECT_VALUE or non-zero with another kind. */
int wire_encode_checkpoint_set(struct wire_buf *b, uint64_t request_id,
			       const struct wire_checkpoint_set *s);
int wire_decode_checkpoint_set(const void *body, size_t len,
			       struct wire_checkpoint_set *s);

struct wire_snapshot_put {
	bool has_client;
	uint8_t client_id[16];
	uint64_t client_seq;
	struct wire_bytes stream;
	uint64_t version;       /* >= 1 */
	struct wire_bytes data; /* <= WIRE_SNAPSHOT_BYTES_MAX */
};

/* WIRE_ENCODE_INVALID for version 0, WIRE_ENCODE_TOO_LARGE for data over
 * WIRE_SNAPSHOT_BYTES_MAX. */
int wire_encode_snapshot_put(struct wire_buf *b, uint64_t request_id,
			     const struct wire_snapshot_put *s);
int wire_decode_snapshot_put(const void *body, size_t len,
			     struct wire_snapshot_put *s);

/* STATE_OK: the write committed (@duplicate: it had already, under the same
 * client id and sequence). */
int wire_encode_state_ok(struct wire_buf *b, uint64_t request_id,
			 bool duplicate);
int wire_decode_state_ok(const void *body, size_t len, bool *duplicate);

struct wire_snapshot_get {
	struct wire_bytes stream;
	uint64_t max_version; /* newest at or below; UINT64_MAX: any */
	struct wire_consistency_req consistency;
};

int wire_encode_snapshot_get(struct wire_buf *b, uint64_t request_id,
			     const struct wire_snapshot_get *g);
int wire_decode_snapshot_get(const void *body, size_t len,
			     struct wire_snapshot_get *g);

/* SNAPSHOT: @version 0 (and no data) when the stream has none. */
int wire_encode_snapshot(struct wire_buf *b, uint64_t request_id,
			 uint64_t version, struct wire_bytes data);
int wire_decode_snapshot(const void *body, size_t len, uint64_t *version,
			 struct wire_bytes *data);

/* ---- copying a node's store ----
 *
 * STATE_BEGIN makes the node take a consistent checkpoint of its store and
 * answer STATE_LISTING: a session id, the files of the checkpoint with
 * their sizes, the RocksDB identity of the store and the Raft index and
 * global position the checkpoint holds. STATE_CHUNK asks for up to
 * WIRE_STATE_CHUNK_BYTES_MAX bytes of one file, named by its index in the
 * listing (never by name), and STATE_DATA carries them with their CRC-32.
 * STATE_END drops the session (STATE_ENDED). */

/* Bytes of one STATE_DATA: a receiver holds a few of them at a time, so
 * its memory does not grow with the store. */
#define WIRE_STATE_CHUNK_BYTES_MAX (1u << 20)

/* Files in one listing: a checkpoint of a store of terabytes holds a few
 * tens of thousands of SST files of 64 MiB; far more is not a store. */
#define WIRE_STATE_FILES_MAX 100000

/* Bytes of a file name in a listing (RocksDB names are short). */
#define WIRE_STATE_NAME_MAX 255

/* Bytes of a store identity (RocksDB's IDENTITY, a UUID text). */
#define WIRE_STATE_IDENTITY_MAX 128

/* STATE_BEGIN flags. */
enum {
	/* Copy from the leader after a barrier: everything acknowledged
	 * before the request is in the copy. A follower answers
	 * NOT_LEADER. */
	WIRE_STATE_LEADER = 1u << 0,
};

struct wire_state_begin {
	uint64_t min_applied_index; /* 0: any */
	uint8_t flags;              /* WIRE_STATE_* */
};

/* WIRE_ENCODE_INVALID for an unknown flag. */
int wire_encode_state_begin(struct wire_buf *b, uint64_t request_id,
			    const struct wire_state_begin *s);
int wire_decode_state_begin(const void *body, size_t len,
			    struct wire_state_begin *s);

/* One file of a listing. */
struct wire_state_file {
	struct wire_bytes name; /* 1..WIRE_STATE_NAME_MAX bytes, no '/',
				 * not "." or ".." */
	uint64_t size;          /* bytes */
};

struct wire_state_listing {
	uint64_t session;              /* names the session, not 0 */
	uint64_t node_id;              /* the node copied from */
	struct wire_bytes identity;    /* <= WIRE_STATE_IDENTITY_MAX */
	uint64_t applied_index;        /* Raft index the copy holds */
	uint64_t last_position;        /* its last global position */
	uint32_t n_files;              /* <= WIRE_STATE_FILES_MAX */
	struct wire_state_file *files; /* owned when decoded (release
					* with wire_state_listing_close),
					* borrowed to encode */
};

/* WIRE_ENCODE_INVALID for session 0 or a file name the decoder rejects,
 * WIRE_ENCODE_TOO_LARGE past the limits above or the body maximum. */
int wire_encode_state_listing(struct wire_buf *b, uint64_t request_id,
			      const struct wire_state_listing *l);
/* On success @l borrows from @body and owns its files array. The count is
 * checked against the bytes left before the array is allocated. */
int wire_decode_state_listing(const void *body, size_t len,
			      struct wire_state_listing *l);
void wire_state_listing_close(struct wire_state_listing *l);

/* True for a file name a listing may carry: a plain name of a directory
 * entry, which a receiver can create without leaving its directory. */
bool wire_state_name_valid(struct wire_bytes name);

struct wire_state_chunk {
	uint64_t session;
	uint32_t file;   /* index in the listing */
	uint64_t offset; /* byte offset in the file */
	uint32_t length; /* 1..WIRE_STATE_CHUNK_BYTES_MAX */
};

/* WIRE_ENCODE_INVALID for a length of 0 or over the maximum. */
int wire_encode_state_chunk(struct wire_buf *b, uint64_t request_id,
			    const struct wire_state_chunk *c);
int wire_decode_state_chunk(const void *body, size_t len,
			    struct wire_state_chunk *c);

/* STATE_DATA: @data (<= WIRE_STATE_CHUNK_BYTES_MAX bytes; fewer than asked
 * only at the end of the file) and its CRC-32 (zlib's crc32). The codec
 * carries the checksum; the receiver verifies it. */
int wire_encode_state_data(struct wire_buf *b, uint64_t request_id,
			   uint32_t crc, struct wire_bytes data);
int wire_decode_state_data(const void *body, size_t len, uint32_t *crc,
			   struct wire_bytes *data);

/* STATE_END: the session to drop. */
int wire_encode_state_end(struct wire_buf *b, uint64_t request_id,
			  uint64_t session);
int wire_decode_state_end(const void *body, size_t len, uint64_t *session);

/* STATE_ENDED has an empty body. */
int wire_encode_state_ended(struct wire_buf *b, uint64_t request_id);
int wire_decode_state_ended(const void *body, size_t len);

/* ---- membership ----
 *
 * MEMBER_CHANGE and LEADER_TRANSFER go to the leader (a follower answers
 * NOT_LEADER). One change at a time: another one in flight gets
 * WIRE_ECHANGE_IN_PROGRESS. */

enum wire_member_op {
	WIRE_MEMBER_ADD = 1,     /* a non-voter (standby) with its addresses */
	WIRE_MEMBER_REMOVE = 2,  /* out of the cluster */
	WIRE_MEMBER_PROMOTE = 3, /* standby -> voter */
	WIRE_MEMBER_DEMOTE = 4,  /* voter -> standby */
};

/* MEMBER_CHANGE flags. */
#define WIRE_MEMBER_FORCE 0x01 /* allow fewer voters than the minimum */

struct wire_member_change {
	uint8_t op;                       /* enum wire_member_op */
	uint64_t id;                      /* >= 1 */
	struct wire_bytes raft_address;   /* ADD: required; else empty */
	struct wire_bytes client_address; /* ADD only; may be empty */
	struct wire_bytes http_address;   /* ADD only; may be empty */
	uint8_t flags;                    /* WIRE_MEMBER_FORCE */
};

/* WIRE_ENCODE_INVALID for an unknown op, id 0, unknown flags, an ADD
 * without a raft address or another op with an address;
 * WIRE_ENCODE_TOO_LARGE for an address over WIRE_STRING_MAX. The decoder
 * rejects the same. */
int wire_encode_member_change(struct wire_buf *b, uint64_t request_id,
			      const struct wire_member_change *m);
int wire_decode_member_change(const void *body, size_t len,
			      struct wire_member_change *m);

/* MEMBERS: the member list after the change (roles included). */
int wire_encode_members(struct wire_buf *b, uint64_t request_id, uint32_t n,
			const struct wire_member *members);
/* Decodes into @members (room for WIRE_MEMBERS_MAX); views borrow from
 * @body. */
int wire_decode_members(const void *body, size_t len, uint32_t *n,
			struct wire_member *members);

/* LEADER_TRANSFER: @id the voter to lead, 0 for the most caught-up one. */
int wire_encode_leader_transfer(struct wire_buf *b, uint64_t request_id,
				uint64_t id);
int wire_decode_leader_transfer(const void *body, size_t len, uint64_t *id);

/* LEADER: the leader once the transfer is over. */
int wire_encode_leader(struct wire_buf *b, uint64_t request_id,
		       uint64_t leader_id);
int wire_decode_leader(const void *body, size_t len, uint64_t *leader_id);

#endif /* CAIRN_CLIENT_WIRE_H */
