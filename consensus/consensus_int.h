/* What consensus/'s own files share and nobody else may use: the Raft
 * handles and pipeline behind struct consensus, the encodings of member
 * entries and snapshot manifests, and a small hash map. The unit tests in
 * tests/unit/consensus/ include it to reach the codecs and counters; node/
 * never does. Includes <raft.h>, which only consensus/ may. */
#ifndef CAIRN_CONSENSUS_INT_H
#define CAIRN_CONSENSUS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus.h"

/* ------------------------------------------------------------------------
 * Entry kinds: the first four bytes of every command entry.
 * ------------------------------------------------------------------------ */

/* Append entries, built by storage/ ("CRNE"). */
#define CONSENSUS_ENTRY_MAGIC_STORE 0x454e5243u
/* Member-table entries ("CRNM"). */
#define CONSENSUS_ENTRY_MAGIC_MEMBERS 0x4d4e5243u
/* Snapshot manifests ("CRNS"); never a log entry. */
#define CONSENSUS_MANIFEST_MAGIC 0x534e5243u

#define CONSENSUS_MEMBERS_FORMAT  1
#define CONSENSUS_MANIFEST_FORMAT 1

/* Member entry: 16-byte header, then count records, zero padding to 8. */
#define CONSENSUS_MEMBERS_HEADER 16
/* Record: id, op, reserved, three string lengths, then the strings. */
#define CONSENSUS_MEMBER_RECORD_FIXED 16
/* Manifest: 32-byte header, then count member records (same layout). */
#define CONSENSUS_MANIFEST_HEADER 32

/* Member record operations. */
enum {
	CONSENSUS_MEMBER_SET = 1,
	CONSENSUS_MEMBER_DELETE = 2,
};

/* Bytes of Raft log a node keeps: libraft 0.22.1 holds every retained
 * entry in memory (and loads them all at start), and retains trailing
 * entries after each snapshot plus up to threshold more before the next.
 * When entries are large, the node lowers trailing and threshold below
 * their configured counts so that (trailing + threshold) x the average
 * entry size stays within this budget. See docs/consensus.md. */
#define CONSENSUS_LOG_BYTES_BUDGET (512ull << 20)
/* Floors of the lowered values. */
#define CONSENSUS_TRAILING_MIN  64
#define CONSENSUS_THRESHOLD_MIN 16

/* Meta keys of the member table: this prefix and the id as 20 decimal
 * digits, so key order is id order. */
#define CONSENSUS_MEMBER_KEY_PREFIX "member/"
#define CONSENSUS_MEMBER_KEY_SIZE   (sizeof CONSENSUS_MEMBER_KEY_PREFIX + 20)

/* Stored member value: format byte, reserved byte, three u16 lengths,
 * then the raft, client and http addresses. */
#define CONSENSUS_MEMBER_VALUE_FIXED 8

/* One member change as a member entry carries it. */
struct member_record {
	uint64_t id;
	uint8_t op; /* CONSENSUS_MEMBER_SET or _DELETE */
	char raft_address[CONSENSUS_ADDRESS_MAX];
	char client_address[CONSENSUS_ADDRESS_MAX];
	char http_address[CONSENSUS_ADDRESS_MAX];
};

/* Bytes member_entry_encode() writes for @n records (a multiple of 8). */
size_t member_entry_size(const struct member_record *recs, unsigned n);
/* Encodes @n (1..CONSENSUS_MEMBERS_MAX) records into @buf, which has
 * member_entry_size() bytes. Returns the bytes written. */
size_t member_entry_encode(const struct member_record *recs, unsigned n,
			   void *buf);
/* Decodes a member entry, never reading outside [buf, buf+len); fills up
 * to CONSENSUS_MEMBERS_MAX records. Returns 0 or -1 when malformed. */
int member_entry_decode(const void *buf, size_t len, struct member_record *recs,
			unsigned *n);

/* A stored member value (CONSENSUS_MEMBER_VALUE_FIXED + strings). */
size_t member_value_encode(const struct consensus_member *m, uint8_t *buf,
			   size_t cap);
int member_value_decode(uint64_t id, const void *buf, size_t len,
			struct consensus_member *m);
void member_key(char key[CONSENSUS_MEMBER_KEY_SIZE], uint64_t id);

/* What a snapshot records: the store's applied index and last position and
 * the member table. */
struct manifest {
	uint64_t applied_index;
	uint64_t last_position;
	unsigned n_members;
	struct consensus_member members[CONSENSUS_MEMBERS_MAX];
};

size_t manifest_size(const struct manifest *m);
size_t manifest_encode(const struct manifest *m, void *buf);
/* Never trusts @buf: every length is checked against what remains.
 * Returns 0 or -1 with @errmsg (256 bytes) saying what is wrong. */
int manifest_decode(const void *buf, size_t len, struct manifest *m,
		    char *errmsg);

/* ------------------------------------------------------------------------
 * A chained hash map from byte keys to a pointer and two counters: the
 * streams with proposals in flight, and the (client id, sequence) pairs in
 * flight. Bounded by the requests in flight.
 * ------------------------------------------------------------------------ */

struct cmap_node {
	struct cmap_node *next; /* bucket chain */
	uint64_t hash;
	void *ptr;        /* value: a request (client map) */
	uint64_t pending; /* value: events in flight (stream map) */
	uint32_t refs;    /* value: transactions in flight (stream map) */
	uint32_t key_len;
	uint8_t key[]; /* key_len bytes */
};

struct cmap {
	struct cmap_node **buckets; /* owned, n_buckets of them */
	uint32_t n_buckets;         /* a power of two, or 0 */
	uint32_t n;                 /* nodes */
};

/* FNV-1a, 64 bits, of @len bytes at @key. */
uint64_t consensus_hash_bytes(const void *key, size_t len);

void cmap_init(struct cmap *m);
/* Frees every node. */
void cmap_close(struct cmap *m);
struct cmap_node *cmap_get(const struct cmap *m, const void *key, size_t len);
/* Inserts a zeroed node for @key (which must be absent). NULL when out of
 * memory. */
struct cmap_node *cmap_insert(struct cmap *m, const void *key, size_t len);
void cmap_remove(struct cmap *m, struct cmap_node *node);

/* ------------------------------------------------------------------------
 * The pipeline
 * ------------------------------------------------------------------------ */

/* One Raft entry of append transactions: open while it takes requests,
 * waiting once sealed (full, or the loop iteration ended while the
 * pipeline was full), in flight from raft_apply until its callback. */
enum batch_state {
	BATCH_OPEN = 0,
	BATCH_WAITING = 1,
	BATCH_INFLIGHT = 2,
};

struct consensus_int;

struct batch {
	struct raft_apply req;         /* req.data points here */
	struct consensus_int *owner;   /* borrowed */
	struct batch *next;            /* waiting or in-flight queue */
	uint8_t state;                 /* enum batch_state */
	struct store_entry_builder b;  /* the entry's bytes until proposed */
	struct consensus_append *head; /* borrowed: requests in entry order */
	struct consensus_append *tail; /* borrowed */
	uint32_t count;                /* requests (transactions) */
	raft_index index;              /* in flight: its log index */
	uint64_t fingerprint;          /* in flight: batch_fingerprint() */
	bool projected;                /* its parts count in projections */
	bool delivered;                /* the FSM delivered its results */
};

/* Shutdown steps, in order (consensus_close): each runs once. */
enum close_step {
	CLOSE_NONE = 0,     /* running */
	CLOSE_DRAIN = 1,    /* leader: let in-flight entries finish */
	CLOSE_TRANSFER = 2, /* leader: transfer leadership (bounded) */
	CLOSE_RAFT = 3,     /* raft_close in progress */
	CLOSE_HANDLES = 4,  /* closing our libuv handles */
};

struct consensus_int {
	struct consensus *c; /* borrowed: the owner */
	uv_loop_t *loop;     /* borrowed */
	struct store *store; /* borrowed */

	/* Configuration (copies; defaults applied). */
	uint64_t id;
	char *dir; /* owned */
	char raft_address[CONSENSUS_ADDRESS_MAX];
	char client_address[CONSENSUS_ADDRESS_MAX];
	char http_address[CONSENSUS_ADDRESS_MAX];
	struct consensus_member *peers; /* owned, n_peers of them */
	unsigned n_peers;
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	size_t entry_bytes_max;
	unsigned inflight_entries_max;
	void (*on_applied)(void *arg, uint64_t last_position);
	void (*on_pipeline_ready)(void *arg);
	void *arg;

	/* libraft. */
	struct raft raft;
	struct raft_io io;
	struct raft_uv_transport transport;
	struct raft_fsm fsm;

	/* Our libuv handles. */
	uv_check_t check;       /* once per loop iteration: flush, barriers */
	uv_idle_t idle;         /* keeps the loop from blocking while work
				 * waits for the check */
	uv_timer_t tick;        /* watchdog, role log, member proposals */
	uv_timer_t close_timer; /* shutdown steps and their bounds */
	unsigned handles_open;

	/* State machine. */
	struct raft *fsm_raft;        /* borrowed: the raft instance that runs
				       * the FSM (fsm_bind); &raft unless a
				       * simulation runs it under libraft's
				       * fixture */
	struct store_results results; /* the FSM's results slot */
	unsigned in_raft;             /* >0 inside apply/snapshot/restore */
	struct consensus_member members[CONSENSUS_MEMBERS_MAX]; /* by id */
	unsigned n_members;
	uint64_t store_entries_applied; /* storage entries applied (not
					 * skipped) since start */
	uint64_t snapshots_taken;       /* fsm->snapshot calls */
	uint64_t entry_bytes_avg;       /* moving average of command entry
					 * sizes, x16 (fixed point) */

	/* Retained log (see CONSENSUS_LOG_BYTES_BUDGET). */
	uint64_t log_bytes_budget; /* CONSENSUS_LOG_BYTES_BUDGET; tests
				    * lower it */
	unsigned cur_threshold;    /* what raft has now */
	unsigned cur_trailing;

	/* Write path. */
	struct batch *open;         /* owned: taking requests, or NULL */
	struct batch *waiting_head; /* owned: sealed, not yet proposed */
	struct batch *waiting_tail;
	struct batch *inflight_head; /* owned: proposed, by index */
	struct batch *inflight_tail;
	unsigned n_inflight;
	bool full_reported;          /* consensus_pipeline_full() said true */
	struct cmap streams;         /* stream -> events/txns in flight */
	struct cmap clients;         /* client id + seq -> original request */
	struct store_results lookup; /* dedup lookups at submit */
	uint64_t last_commit_time_us;
	uint64_t entries_proposed; /* append entries given to raft_apply */

	/* Member table proposals: one entry in flight at a time. */
	struct raft_apply member_req;
	bool member_inflight;

	/* Membership changes and leadership transfers (change.c). */
	struct change_state *change; /* owned; NULL until the first one */

	/* Barriers. */
	struct raft_barrier barrier;
	bool barrier_inflight;
	struct consensus_barrier *bwait_head; /* borrowed: not yet covered */
	struct consensus_barrier *bwait_tail;
	struct consensus_barrier *bflight; /* borrowed: covered by the
					    * barrier in flight */
	uint64_t barriers_issued;

	/* Watchdog and role log. */
	unsigned short seen_state;
	raft_term seen_term;
	raft_id seen_leader;
	raft_term members_term;  /* term whose leader checked the members */
	raft_index stall_stored; /* last_stored when the stall began */
	uint64_t stall_since_ms; /* 0: no stall */

	/* Shutdown. */
	uint8_t close_step; /* enum close_step */
	consensus_close_cb close_cb;
	struct raft_transfer transfer;
	uint64_t close_deadline_ms;
};

/* fsm.c */
/* Sets up i->fsm (libraft's struct raft_fsm) to apply to i->store, run by
 * i->raft. */
void fsm_setup(struct consensus_int *i);
/* Makes @r the raft instance that runs i->fsm instead of i->raft: apply
 * takes each entry's index from raft_last_applied(r). For tests/sim, which
 * runs the same FSM on the servers of libraft's fixture; call it after
 * fsm_setup(), before @r starts. */
void fsm_bind(struct consensus_int *i, struct raft *r);
int members_load(struct consensus_int *i);
const struct consensus_member *members_find(const struct consensus_int *i,
					    uint64_t id);

/* Lowers (or restores) snapshot trailing and threshold to keep the
 * retained log within i->log_bytes_budget (consensus.c). */
void consensus_int_bound_log(struct consensus_int *i);

/* pipeline.c */
void pipeline_init(struct consensus_int *i);
void pipeline_close(struct consensus_int *i);
/* Proposes waiting work, fails it when not the leader, issues barriers.
 * Does nothing inside a raft callback (the check handle runs it). */
void pipeline_pump(struct consensus_int *i);
/* Starts the idle handle so the check runs promptly. */
void pipeline_kick(struct consensus_int *i);
/* The FSM applied the storage entry at @index with i->results. */
void pipeline_applied(struct consensus_int *i, raft_index index,
		      const void *entry, size_t len);
/* Fails everything not yet proposed with @status (shutdown). */
void pipeline_fail_waiting(struct consensus_int *i, int status,
			   int barrier_status);
/* Whether this node is the leader and may propose. */
bool consensus_int_is_leader(struct consensus_int *i);
/* CONSENSUS_ENOT_LEADER when a leader is known, else
 * CONSENSUS_EUNAVAILABLE. */
int consensus_int_not_leader(struct consensus_int *i);
/* Formats @c->errmsg (truncating). */
void consensus_int_errorf(struct consensus *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Maps a libraft refusal of raft_apply/raft_barrier (RAFT_NOTLEADER,
 * RAFT_NOSPACE: nothing was appended, the caller keeps its buffer) to a
 * CONSENSUS_E* code. Any other error leaves libraft in an undefined state
 * (it may have counted the entry and freed the buffer): logged, then
 * exit(EXIT_FAILURE); never returns. */
int consensus_int_refused(struct consensus_int *i, const char *what, int rv);

/* change.c */
/* Frees i->change once libraft has fired every callback (shutdown). */
void change_free(struct consensus_int *i);

/* members.c */
/* On the leader: proposes member records that are missing or stale. */
void members_propose(struct consensus_int *i);
/* Applies a member entry at @index (FSM). */
void members_apply(struct consensus_int *i, raft_index index, const void *buf,
		   size_t len);

#endif /* CAIRN_CONSENSUS_INT_H */
