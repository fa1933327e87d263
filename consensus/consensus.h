/* consensus: Cairn's Raft state machine and write path, on libraft 0.22.1
 * (raft_uv disk log, raft_uv_tcp transport) and the node's libuv loop. The
 * only module that includes <raft.h>; it knows nothing of sockets or of the
 * client protocol. Used by node/ (cairnd).
 *
 * What it does:
 * - applies committed entries to the store (storage/), every replica alike;
 *   a storage error is fatal: logged, then exit(EXIT_FAILURE);
 * - on the leader, takes appends: answers duplicates from dedup state, joins
 *   a retry to its in-flight original, checks expected versions against the
 *   committed heads plus in-flight proposals, coalesces transactions into
 *   one entry per loop iteration (up to entry_bytes_max), and bounds the
 *   entries in flight;
 * - confirms leadership for linearizable reads with barriers, one in flight
 *   at a time, shared by every read that arrived before it was issued;
 * - keeps the replicated member table (node id -> Raft, client and HTTP
 *   addresses), and on the leader changes the membership online (add,
 *   remove, promote, demote) and hands leadership over (change.c);
 * - takes small snapshots (a manifest; RocksDB made durable first);
 * - runs a watchdog: if the Raft instance becomes unavailable the node logs
 *   why and exits non-zero.
 *
 * Threading: everything runs on the loop given to consensus_init; no
 * function may be called from another thread. Every callback fires on that
 * loop. Asynchronous calls follow libuv's contract: if the call returns an
 * error, the callback never fires; otherwise it fires exactly once. */
#ifndef CAIRN_CONSENSUS_H
#define CAIRN_CONSENSUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "store.h"

#define CONSENSUS_ERRORS(X)                                                 \
	X(CONSENSUS_ENOMEM, 1, "out of memory")                             \
	X(CONSENSUS_EINVALID, 2, "invalid request")                         \
	X(CONSENSUS_ENOT_LEADER, 3, "not the leader")                       \
	X(CONSENSUS_EUNAVAILABLE, 4, "no leader")                           \
	X(CONSENSUS_EBUSY, 5, "pipeline full")                              \
	X(CONSENSUS_EUNKNOWN_OUTCOME, 6,                                    \
	  "leadership lost while in flight: outcome unknown")               \
	X(CONSENSUS_ESHUTDOWN, 7, "shutting down")                          \
	X(CONSENSUS_EIO, 8, "i/o error")                                    \
	X(CONSENSUS_ECONFIG, 9, "invalid configuration")                    \
	X(CONSENSUS_EDONE, 10, "answered at once")                          \
	X(CONSENSUS_ECHANGE_IN_PROGRESS, 20,                                \
	  "a membership change is in progress")                             \
	X(CONSENSUS_EBELOW_MIN_VOTERS, 21, "fewer voters than the minimum") \
	X(CONSENSUS_ENO_SUCH_MEMBER, 22, "no such member")                  \
	X(CONSENSUS_EALREADY_MEMBER, 23, "already a member")

enum consensus_error {
#define CONSENSUS_ERROR_ENUM(name, code, msg) name = code,
	CONSENSUS_ERRORS(CONSENSUS_ERROR_ENUM)
#undef CONSENSUS_ERROR_ENUM
};

const char *consensus_strerror(int code);

/* Address bytes kept per member field (host:port, DNS names included). */
#define CONSENSUS_ADDRESS_MAX 256

/* Members of a cluster (Raft itself allows more; Cairn runs 3 or 5). */
#define CONSENSUS_MEMBERS_MAX 16

struct consensus_member {
	uint64_t id;
	char raft_address[CONSENSUS_ADDRESS_MAX];
	char client_address[CONSENSUS_ADDRESS_MAX]; /* "" when not known */
	char http_address[CONSENSUS_ADDRESS_MAX];   /* "" when not known */
	uint8_t role; /* 0 standby, 1 voter, 2 spare (raft's roles) */
};

/* Defaults, chosen for a loaded 2-core machine running three nodes; see
 * docs/design.md (Consensus). */
#define CONSENSUS_ELECTION_TIMEOUT_MS_DEFAULT  3000
#define CONSENSUS_HEARTBEAT_TIMEOUT_MS_DEFAULT 300
#define CONSENSUS_SNAPSHOT_THRESHOLD_DEFAULT   8192
#define CONSENSUS_SNAPSHOT_TRAILING_DEFAULT    65536
#define CONSENSUS_ENTRY_BYTES_MAX_DEFAULT      (1u << 20)
#define CONSENSUS_INFLIGHT_ENTRIES_MAX_DEFAULT 64

struct consensus_config {
	uint64_t id;              /* this node's id, >= 1 */
	const char *dir;          /* borrowed: the Raft log directory */
	const char *raft_address; /* borrowed: host:port to listen on */
	const char
		*client_address;  /* borrowed: published in the member table */
	const char *http_address; /* borrowed: published in the member table */
	/* The bootstrap configuration (this node included), all voters. Used
	 * only when the Raft directory is empty and join is false; every node
	 * of a new cluster is started with the same list. Borrowed. */
	const struct consensus_member *peers;
	unsigned n_peers;
	/* Start without bootstrapping and wait to be added by the cluster. */
	bool join;
	unsigned election_timeout_ms;  /* 0: the default */
	unsigned heartbeat_timeout_ms; /* 0: the default */
	unsigned snapshot_threshold;   /* 0: the default */
	unsigned snapshot_trailing;    /* 0: the default */
	size_t entry_bytes_max;        /* 0: the default */
	unsigned inflight_entries_max; /* 0: the default */
	/* Bytes the retained Raft log may take (entries kept between
	 * snapshots; see docs/consensus.md). 0: 512 MiB. */
	uint64_t log_bytes_budget;
	/* Called on the loop after every applied entry (any role), with the
	 * store's last position; node/ wakes at-least readers with it. */
	void (*on_applied)(void *arg, uint64_t last_position);
	/* Called when the pipeline is no longer full (see
	 * consensus_pipeline_full). */
	void (*on_pipeline_ready)(void *arg);
	/* Called on the loop (also from inside consensus_start) when the
	 * snapshot Raft installs covers more than the store holds: the log
	 * below it is gone, so the store must be fetched from a peer that
	 * has applied at least @min_applied_index (state transfer, see
	 * docs/state-transfer.md). @members is the snapshot's member table
	 * (borrowed for the call). The consensus is stale from then on:
	 * nothing more is applied to the store and no snapshot is taken;
	 * node/ stops at once (appends and barriers then end with
	 * CONSENSUS_ESHUTDOWN) and restarts after the transfer. NULL: such a
	 * node exits (status 1). */
	void (*on_state_needed)(void *arg, uint64_t min_applied_index,
				const struct consensus_member *members,
				unsigned n_members);
	void *arg;
};

struct consensus_int; /* private: raft handles, pipeline, tables */

struct consensus {
	struct consensus_int *i; /* owned */
	char errmsg[256];        /* the last error, outside in */
	/* Private to consensus: the store is behind the installed snapshot
	 * (see on_state_needed), and the hook to call then. */
	bool stale;
	void (*state_needed_)(void *arg, uint64_t min_applied_index,
			      const struct consensus_member *members,
			      unsigned n_members);
};

/* Opens the Raft log in cfg->dir, bootstraps it when empty (unless join),
 * and starts Raft on @loop. @store is borrowed and must stay open until
 * consensus_close's callback has fired. Returns 0 or a CONSENSUS_E* code
 * with c->errmsg set. */
int consensus_start(struct consensus *c, uv_loop_t *loop, struct store *store,
		    const struct consensus_config *cfg);

/* ---- appends ---- */

struct consensus_append;
typedef void (*consensus_append_cb)(struct consensus_append *req, int status);

/* An append request, owned by the caller. Fill txn, parts (capacity for
 * txn.n_parts results) and data; consensus fills the rest.
 *
 * When @cb fires with status 0, .outcome is a store outcome:
 * STORE_COMMITTED or STORE_DUPLICATE with .parts holding one result per
 * part; STORE_WRONG_EXPECTED_VERSION with .conflict_part and
 * .actual_version; STORE_STALE_SEQUENCE with .actual_version = the writer's
 * high-water mark; STORE_REJECTED with .reject_code. Any other status is a
 * CONSENSUS_E* code: CONSENSUS_EUNKNOWN_OUTCOME when leadership was lost
 * while the entry was in flight (retry with the same client id and
 * sequence), CONSENSUS_ESHUTDOWN when the node is closing. */
struct consensus_append {
	/* Set by the caller. */
	struct store_txn txn; /* borrowed until cb; commit time is set here */
	struct store_part_result *parts; /* borrowed: txn.n_parts slots */
	void *data;                      /* for the caller */
	/* Set by consensus. */
	uint8_t outcome;
	uint32_t conflict_part;
	uint64_t actual_version;
	int reject_code;
	/* Private to consensus. */
	consensus_append_cb cb_;
	struct consensus_append *next_; /* queue links */
	struct consensus_append *joined_;
	void *batch_;
};

/* Submits an append. Returns:
 * - 0: @cb will fire exactly once;
 * - CONSENSUS_EDONE: answered at once, @cb never fires; the outcome fields
 *   are set as for a callback with status 0 (a duplicate, a stale
 *   sequence, or a conflict found against committed state and in-flight
 *   proposals);
 * - CONSENSUS_EINVALID with c->errmsg: the transaction breaks a limit or a
 *   rule of storage (store_txn_validate); nothing was proposed;
 * - CONSENSUS_ENOT_LEADER (see consensus_leader), CONSENSUS_EUNAVAILABLE,
 *   CONSENSUS_ESHUTDOWN: nothing was proposed. */
int consensus_append(struct consensus *c, struct consensus_append *req,
		     consensus_append_cb cb);

/* True while the entries in flight are at their bound and a batch is
 * waiting: node/ stops reading from client sockets until on_pipeline_ready
 * fires. Requests already read may still be submitted; they queue. */
bool consensus_pipeline_full(const struct consensus *c);

/* ---- linearizable reads ---- */

struct consensus_barrier;
typedef void (*consensus_barrier_cb)(struct consensus_barrier *req, int status);

struct consensus_barrier {
	void *data; /* for the caller */
	/* Private to consensus. */
	consensus_barrier_cb cb_;
	struct consensus_barrier *next_;
};

/* Confirms that this node is still the leader and has applied everything
 * committed before the call: when @cb fires with status 0, reading the
 * store is linearizable. Concurrent calls share one Raft barrier; a call
 * that arrives while a barrier is in flight waits for the next one.
 * Returns CONSENSUS_ENOT_LEADER or CONSENSUS_EUNAVAILABLE at once when not
 * the leader; @cb may fire with CONSENSUS_EUNKNOWN_OUTCOME (leadership
 * lost) or CONSENSUS_ESHUTDOWN. */
int consensus_barrier(struct consensus *c, struct consensus_barrier *req,
		      consensus_barrier_cb cb);

/* ---- state ---- */

enum consensus_role {
	CONSENSUS_FOLLOWER = 0,
	CONSENSUS_CANDIDATE = 1,
	CONSENSUS_LEADER = 2,
	CONSENSUS_UNAVAILABLE = 3,
};

struct consensus_status {
	uint64_t id;
	uint8_t role; /* enum consensus_role */
	uint64_t term;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t last_position;
	uint64_t leader_id;                                /* 0 when unknown */
	char leader_client_address[CONSENSUS_ADDRESS_MAX]; /* "" if unknown */
	unsigned n_members;
	struct consensus_member members[CONSENSUS_MEMBERS_MAX];
	bool stale; /* waiting for a state transfer (on_state_needed) */
};

void consensus_status(struct consensus *c, struct consensus_status *s);

bool consensus_is_leader(struct consensus *c);

/* The leader's id and client address, as the member table knows them.
 * Returns false when there is no known leader or its client address is not
 * yet in the table. @address gets CONSENSUS_ADDRESS_MAX bytes. */
bool consensus_leader(struct consensus *c, uint64_t *id, char *address);

/* ---- membership changes (change.c) ----
 *
 * Leader only, one change at a time (a membership change or a leadership
 * transfer). Each maps to libraft's configuration changes and to the member
 * table (docs/consensus.md):
 * - ADD: raft_add as a spare, raft_assign to standby (it replicates, does
 *   not vote), then a member entry with its three addresses;
 * - REMOVE: raft_remove, then a member entry deleting its record;
 * - PROMOTE: raft_assign to voter (libraft first runs catch-up rounds);
 * - DEMOTE: raft_assign to standby.
 * A REMOVE or DEMOTE of a voter that would leave fewer than min_voters
 * voters is refused unless force is set; no change may leave 0 voters. */

enum consensus_change_op {
	CONSENSUS_CHANGE_ADD = 1,
	CONSENSUS_CHANGE_REMOVE = 2,
	CONSENSUS_CHANGE_PROMOTE = 3,
	CONSENSUS_CHANGE_DEMOTE = 4,
};

struct consensus_change;
typedef void (*consensus_change_cb)(struct consensus_change *req, int status);

/* A membership change, owned by the caller. */
struct consensus_change {
	/* Set by the caller. */
	uint8_t op;                               /* enum consensus_change_op */
	uint64_t id;                              /* the member, >= 1 */
	char raft_address[CONSENSUS_ADDRESS_MAX]; /* ADD: required */
	char client_address[CONSENSUS_ADDRESS_MAX]; /* ADD: may be "" */
	char http_address[CONSENSUS_ADDRESS_MAX];   /* ADD: may be "" */
	bool force;          /* allow fewer voters than min_voters */
	unsigned min_voters; /* the node's --min-voters */
	void *data;          /* for the caller */
	/* Private to consensus. */
	consensus_change_cb cb_;
	uint8_t step_;
};

/* Starts a change. Returns:
 * - 0: @cb fires exactly once, with 0 once the change is committed, or
 *   CONSENSUS_EUNKNOWN_OUTCOME (leadership lost), CONSENSUS_EINVALID (a
 *   promoted member could not be caught up), CONSENSUS_ESHUTDOWN, with
 *   c->errmsg saying why;
 * - CONSENSUS_EDONE: nothing to do (a promote of a voter, a demote of a
 *   standby); @cb never fires;
 * - CONSENSUS_ENOT_LEADER, CONSENSUS_EUNAVAILABLE, CONSENSUS_EINVALID,
 *   CONSENSUS_ECHANGE_IN_PROGRESS, CONSENSUS_EBELOW_MIN_VOTERS,
 *   CONSENSUS_ENO_SUCH_MEMBER, CONSENSUS_EALREADY_MEMBER with c->errmsg;
 *   nothing changed. */
int consensus_change(struct consensus *c, struct consensus_change *req,
		     consensus_change_cb cb);

struct consensus_transfer;
typedef void (*consensus_transfer_cb)(struct consensus_transfer *req,
				      int status);

/* A leadership transfer, owned by the caller. */
struct consensus_transfer {
	uint64_t id;               /* set by the caller: the voter, or 0 for the
				    * most caught-up voter */
	uint64_t new_leader;       /* set by consensus: the leader afterwards (0
				    * when none is known yet) */
	void *data;                /* for the caller */
	consensus_transfer_cb cb_; /* private */
};

/* Hands leadership over. Returns 0 (@cb fires once libraft saw the target
 * win or gave up; status 0 when another node leads now, else
 * CONSENSUS_EUNAVAILABLE), CONSENSUS_EDONE when @id is this node (it
 * leads already), or an error as for consensus_change. */
int consensus_transfer(struct consensus *c, struct consensus_transfer *req,
		       consensus_transfer_cb cb);

/* ---- shutdown ---- */

typedef void (*consensus_close_cb)(struct consensus *c);

/* Stops: a leader first transfers leadership (bounded wait), then Raft is
 * closed; pending appends and barriers fail with CONSENSUS_EUNKNOWN_OUTCOME
 * or CONSENSUS_ESHUTDOWN. @cb fires once everything is released; the store
 * may then be closed. Safe to call once, after a successful start. */
void consensus_close(struct consensus *c, consensus_close_cb cb);

#endif /* CAIRN_CONSENSUS_H */
