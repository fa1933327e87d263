/* What the simulator's files share: the seeded PRNG, the run (servers on
 * libraft's fixture, each with Cairn's real FSM over its own RocksDB store),
 * the clients and their proposals, and the reference model that every
 * applied entry is checked against. sim.c drives runs, cluster.c holds the
 * servers, faults and clients, model.c the reference model and the checks.
 * See tests/sim/README.md. */
#ifndef CAIRN_SIM_H
#define CAIRN_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <raft.h>
#include <raft/fixture.h>

#include "consensus_int.h"
#include "store.h"

/* Bounds of one run. */
#define SIM_SERVERS_MAX 5
#define SIM_CLIENTS_MAX 6
#define SIM_STREAMS_MAX 8
#define SIM_PARTS_MAX   3 /* streams in one transaction */
#define SIM_EVENTS_MAX  3 /* events in one part */
#define SIM_DATA_MAX    48
/* Streams and writers the model tracks: the sim's own plus those that a
 * corrupted transaction may name if it happens to stay valid. */
#define SIM_MODEL_STREAMS_MAX 64
#define SIM_MODEL_CLIENTS_MAX 64

/* ------------------------------------------------------------------------
 * PRNG: xoshiro256** seeded through splitmix64. Every choice of a run comes
 * from one of these, seeded from the run's seed.
 * ------------------------------------------------------------------------ */

struct sim_rng {
	uint64_t s[4];
};

void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);
/* Uniform in [lo, hi]. */
uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi);
/* True with probability @per_million / 1e6. */
bool sim_rng_chance(struct sim_rng *r, unsigned per_million);

/* FNV-1a, 64 bits, continuing from @h. */
uint64_t sim_hash(uint64_t h, const void *p, size_t len);
#define SIM_HASH_INIT 0xcbf29ce484222325ull
/* Mixes @v into @h. */
uint64_t sim_mix(uint64_t h, uint64_t v);

/* ------------------------------------------------------------------------
 * The reference model
 * ------------------------------------------------------------------------ */

/* Entry kinds, from the first four bytes. */
enum {
	SIM_KIND_STORE = 1,
	SIM_KIND_MEMBERS = 2,
	SIM_KIND_OTHER = 3,
};

/* What the first server to apply an index saw; every later apply of that
 * index on any server must match it. */
struct sim_ref {
	bool set;
	uint8_t kind;
	uint32_t first_server;  /* who applied it first */
	uint64_t entry_hash;    /* of the entry's bytes */
	uint64_t outcome_hash;  /* of the results (or member table) */
	uint64_t last_position; /* the store's last position after it */
	uint64_t members_hash;  /* the member table after it */
};

/* One event of the model's log, by position. */
struct sim_mrecord {
	uint32_t stream;     /* index in model streams */
	uint64_t version;    /* in its stream */
	int32_t client;      /* index in model clients, -1 without */
	uint64_t seq;        /* the writer's sequence */
	uint64_t event_hash; /* of id, type, data, metadata, times */
};

/* A committed (writer, sequence): where its parts landed. */
struct sim_mcommit {
	uint64_t seq;
	uint32_t n_parts;
	struct store_part_result parts[SIM_PARTS_MAX];
};

struct sim_mclient {
	uint8_t id[16];
	bool known;                  /* has committed something */
	uint64_t hwm;                /* highest committed sequence */
	struct sim_mcommit *commits; /* owned, in commit order (so by
				      * increasing sequence) */
	uint64_t n_commits;
	uint64_t cap;
};

/* The commit of @seq by @c, or NULL. */
const struct sim_mcommit *sim_model_commit(const struct sim_mclient *c,
					   uint64_t seq);

struct sim_model {
	struct sim_ref *ref; /* owned, by Raft index */
	uint64_t ref_cap;
	uint64_t last_index; /* highest index applied anywhere */
	char streams[SIM_MODEL_STREAMS_MAX][STORE_STREAM_NAME_MAX + 1];
	uint32_t stream_len[SIM_MODEL_STREAMS_MAX];
	uint64_t versions[SIM_MODEL_STREAMS_MAX];
	unsigned n_streams;
	struct sim_mclient clients[SIM_MODEL_CLIENTS_MAX];
	unsigned n_clients;
	struct sim_mrecord *log; /* owned, position - 1 */
	uint64_t n_log;          /* the last position */
	uint64_t log_cap;
	struct consensus_member members[CONSENSUS_MEMBERS_MAX];
	unsigned n_members;
	struct store_txn_view view; /* decoding transactions */
};

void sim_model_init(struct sim_model *m);
void sim_model_close(struct sim_model *m);
/* The reference at the highest applied index <= @index (NULL: none). */
const struct sim_ref *sim_model_ref_at(const struct sim_model *m,
				       uint64_t index);
/* The model's writer record of @id, or NULL. */
struct sim_mclient *sim_model_client(struct sim_model *m, const uint8_t id[16]);
/* Hash of a member table. */
uint64_t sim_members_hash(const struct consensus_member *members, unsigned n);

/* ------------------------------------------------------------------------
 * The run
 * ------------------------------------------------------------------------ */

struct sim;

/* One transaction of a proposal. */
struct sim_ptxn {
	int client;       /* index in sim clients, -1: made up by the sim */
	uint64_t seq;     /* the client's sequence */
	uint32_t attempt; /* the client's attempt number */
};

/* One raft_apply of ours: an entry of transactions, or another kind. */
struct sim_proposal {
	struct raft_apply req; /* req.data points here */
	struct sim *sim;       /* borrowed */
	unsigned server;       /* proposer */
	struct sim_proposal *next;
	uint8_t kind;       /* SIM_KIND_* */
	raft_index index;   /* its log index */
	uint64_t hash;      /* of its bytes */
	bool applied;       /* the proposer's FSM applied its index */
	bool hash_mismatch; /* ...and that index held other bytes */
	bool delivered;     /* results copied from the FSM */
	unsigned n;         /* transactions */
	struct sim_ptxn txns[SIM_CLIENTS_MAX + 1];
	struct store_txn_result res[SIM_CLIENTS_MAX + 1]; /* delivered */
	struct store_part_result parts[SIM_CLIENTS_MAX + 1][SIM_PARTS_MAX];
};

/* The state of a directed link in the fixture. */
enum {
	SIM_LINK_OK = 0,
	SIM_LINK_CUT = 1,  /* raft_fixture_disconnect */
	SIM_LINK_DROP = 2, /* raft_fixture_saturate */
};

struct sim_server {
	struct sim *sim; /* borrowed */
	unsigned idx;
	struct raft *raft;             /* borrowed: the fixture's */
	struct raft_fsm fsm;           /* the wrapper the fixture runs */
	struct consensus c;            /* errmsg of members_load */
	struct consensus_int *ci;      /* owned: the real FSM's state */
	struct store store;            /* the replica's RocksDB */
	bool store_opened;             /* store is open */
	char dir[600];                 /* the store's directory */
	struct store_options sopts;    /* its options (cache sizes) */
	bool killed;                   /* raft_fixture_kill'ed */
	unsigned disk_latency_ms;      /* what the fixture has */
	uint64_t skip_through;         /* a state transfer put the store here */
	uint64_t last_fsm_index;       /* last index the wrapper passed on */
	uint64_t chain;                /* hash chain of applied indexes */
	bool chain_broken;             /* transferred: the chain has a hole */
	unsigned transfers;            /* state transfers received */
	struct sim_proposal *inflight; /* owned: proposals not yet done */
	/* The open batch (this loop iteration's transactions). */
	struct store_entry_builder open;
	unsigned n_open;
	struct sim_ptxn open_txns[SIM_CLIENTS_MAX + 1];
	uint64_t last_commit_time_us;
	/* Leadership transfer and barrier in flight. */
	struct raft_transfer xfer;
	bool xfer_pending;
	struct raft_barrier barrier;
	bool barrier_pending;
	int barrier_status;             /* of the last barrier */
	uint64_t barrier_need_position; /* acked before it was issued */
	/* Break hook: skip the real apply of one entry (--break). */
	bool break_armed;
	bool break_done;
};

/* One event of a client's transaction. */
struct sim_event {
	uint8_t id[16];
	char type[16];
	uint8_t data[SIM_DATA_MAX];
	uint32_t data_len;
	uint8_t meta[16];
	uint32_t meta_len;
};

enum {
	SIM_CLIENT_IDLE = 0, /* between transactions */
	SIM_CLIENT_SEND = 1, /* ready to send (first or retry) */
	SIM_CLIENT_WAIT = 2, /* an attempt is out */
	SIM_CLIENT_DONE = 3, /* draining: finished */
};

struct sim_client {
	uint8_t id[16];
	uint8_t state;
	uint64_t seq;         /* current transaction's sequence */
	uint32_t attempt;     /* current attempt */
	uint64_t next_ms;     /* when it acts next */
	uint64_t deadline_ms; /* WAIT: when it gives up on the attempt */
	unsigned target;      /* server it talks to */
	/* The current transaction. */
	unsigned n_parts;
	unsigned streams[SIM_PARTS_MAX];
	struct store_expect expect[SIM_PARTS_MAX];
	unsigned n_events[SIM_PARTS_MAX];
	struct sim_event events[SIM_PARTS_MAX][SIM_EVENTS_MAX];
	/* Counters. */
	uint64_t committed;
	uint64_t conflicts;
	uint64_t retries;
};

/* An acknowledged transaction: COMMITTED or DUPLICATE reached the client
 * (through the proposer's callback or the leader's dedup answer). */
struct sim_ack {
	int client;
	uint64_t seq;
	uint32_t n_parts;
	struct store_part_result parts[SIM_PARTS_MAX];
};

/* Figures of one run (summed over seeds). */
struct sim_stats {
	uint64_t seeds;
	uint64_t failed;
	uint64_t steps;
	uint64_t virtual_ms;
	uint64_t entries;   /* indexes applied (reference) */
	uint64_t txns;      /* client transactions started */
	uint64_t committed; /* acked COMMITTED */
	uint64_t duplicates;
	uint64_t conflicts; /* WRONG_EXPECTED_VERSION at apply */
	uint64_t stale;     /* STALE_SEQUENCE at apply */
	uint64_t rejected;  /* REJECTED at apply */
	uint64_t unknown;   /* attempts with an unknown outcome */
	uint64_t leaders;   /* distinct (term, leader) pairs seen */
	uint64_t snapshots; /* fsm->snapshot calls */
	uint64_t restores;  /* fsm->restore calls after start */
	uint64_t transfers; /* state transfers of a lagging follower */
	uint64_t kills;
	uint64_t partitions;
	uint64_t deposes;
	uint64_t xfers;    /* leadership transfers started */
	uint64_t barriers; /* barriers completed with status 0 */
	uint64_t foreign;  /* member, unknown and malformed entries */
	uint64_t io_faults;
};

/* What --break makes wrong, to show the checks catch it. */
enum {
	SIM_BREAK_NONE = 0,
	SIM_BREAK_SKIP_ENTRY = 1, /* one replica skips one entry's apply */
};

struct sim_options {
	unsigned breakage;    /* SIM_BREAK_* */
	bool io_faults;       /* inject raft_fixture_io_fault */
	bool member_overflow; /* member entries with more than 16 ids */
	bool verbose;
	unsigned steps;    /* 0: drawn from the seed */
	unsigned trailing; /* snapshot trailing; 0: drawn from the seed */
	bool asymmetric;   /* one-way faults whatever the trailing */
};

struct sim {
	uint64_t seed;
	const struct sim_options *opts;
	struct sim_rng rng;
	struct raft_fixture f;
	bool fixture_open;
	unsigned n;
	struct sim_server servers[SIM_SERVERS_MAX];
	unsigned n_clients;
	struct sim_client clients[SIM_CLIENTS_MAX];
	unsigned n_streams;
	char streams[SIM_STREAMS_MAX][32];
	struct sim_model model;
	struct store_results lookup; /* dedup lookups of leaders */
	char base[512];              /* the run's directory */
	/* Links: what the plan wants and what the fixture has. */
	uint8_t want[SIM_SERVERS_MAX][SIM_SERVERS_MAX];
	uint8_t have[SIM_SERVERS_MAX][SIM_SERVERS_MAX];
	bool guard[SIM_SERVERS_MAX]; /* inbound dropped: writing a snapshot */
	/* Acks. */
	struct sim_ack *acks; /* owned */
	uint64_t n_acks;
	uint64_t acks_cap;
	uint64_t max_acked_position;
	/* Progress. */
	uint64_t step;
	bool draining; /* no new transactions */
	bool closing;  /* raft_fixture_close: callbacks only free */
	bool failed;
	char why[512]; /* the first failure */
	uint64_t fail_step;
	uint64_t trace; /* hash of everything that happened */
	raft_term seen_term;
	raft_id seen_leader;
	/* Fault rates, per million steps. */
	unsigned p_kill;
	unsigned p_revive;
	unsigned p_partition;
	unsigned p_heal;
	unsigned p_depose;
	unsigned p_xfer;
	unsigned p_latency;
	unsigned p_timeout;
	unsigned p_barrier;
	unsigned p_foreign;
	unsigned p_io_fault;
	unsigned trailing; /* snapshot trailing of every server */
	bool asymmetric;   /* one-way link faults and depositions */
	struct sim_stats st;
};

/* Records the first failure of the run (later ones are dropped). */
void sim_fail(struct sim *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* cluster.c: one run of one seed. Returns 0 when every check passed; fills
 * s->why otherwise. */
int sim_run(struct sim *s, uint64_t seed, const struct sim_options *opts);

/* model.c */
/* Checks and records server @sv's apply of the entry @buf at @index (the
 * real FSM has run; @r its results for a storage entry). */
void sim_model_applied(struct sim *s, struct sim_server *sv, uint64_t index,
		       const void *buf, size_t len,
		       const struct store_results *r);
/* Checks every server's store against the model (after every step). */
void sim_model_check_servers(struct sim *s);
/* The final checks: logs, digests, member tables, acknowledgements. */
void sim_model_final(struct sim *s);

#endif /* CAIRN_SIM_H */
