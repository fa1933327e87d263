/* A test harness for consensus/: three nodes, each with its own store and
 * Raft directory under $CAIRN_TEST_TMP, all on one libuv loop in this
 * process, talking over real TCP on 127.0.0.1. Used by the consensus_*
 * tests. Every wait polls the loop with a deadline (never a bare sleep):
 * the machine running the suite may be loaded. */
#ifndef CAIRN_TESTS_CONSENSUS_CLUSTER_H
#define CAIRN_TESTS_CONSENSUS_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "consensus.h"
#include "consensus_int.h"
#include "store.h"
#include "testutil.h"

#define CL_NODES 3

/* Longest any single wait may take before the test fails. */
#define CL_DEADLINE_MS 60000

struct cl_node {
	struct cluster *cl; /* borrowed: the owner */
	unsigned k;         /* index in the cluster */
	uint64_t id;        /* k + 1 */
	char *store_dir;    /* owned */
	char *raft_dir;     /* owned */
	struct store store;
	struct consensus cons;
	bool running;              /* consensus started and not closed */
	bool closing;              /* consensus_close called, cb not yet */
	uint64_t applied_position; /* from on_applied */
	unsigned on_applied_calls;
	unsigned pipeline_ready_calls;
};

struct cluster {
	uv_loop_t loop;
	char *dir;     /* owned: the scratch directory */
	int port_base; /* raft port_base+k, client +3+k, http +6+k */
	struct consensus_member peers[CL_NODES];
	struct cl_node nodes[CL_NODES];
	/* Knobs for the next cl_start (0: the module's default). */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	size_t entry_bytes_max;
	unsigned inflight_entries_max;
};

/* Makes the directories and the peer list; starts nothing. The timeouts
 * default to 1000/100 ms: short, but safe with three nodes on one loop of
 * a loaded 2-core machine. */
void cl_init(struct cluster *cl, const char *tag, int port_base);
/* Stops what runs, checks that the loop closes cleanly, removes the
 * directories. */
void cl_fini(struct cluster *cl);

/* Opens node k's store and starts its consensus (bootstrapping when its
 * Raft directory is empty). */
void cl_start(struct cluster *cl, unsigned k);
void cl_start_all(struct cluster *cl);
/* Closes node k's consensus (waiting for its callback), then its store. */
void cl_stop(struct cluster *cl, unsigned k);
/* Starts closing node k's consensus without waiting (cl_stop finishes). */
void cl_stop_begin(struct cluster *cl, unsigned k);
void cl_stop_all(struct cluster *cl);

/* Runs the loop until @pred(@arg) is true; fails the test after
 * @timeout_ms. */
void cl_run_until(struct cluster *cl, bool (*pred)(void *arg), void *arg,
		  unsigned timeout_ms);
/* Runs the loop for about @ms milliseconds (to let things settle where the
 * test then asserts that nothing changed). */
void cl_run_for(struct cluster *cl, unsigned ms);

/* Waits for a leader among the running nodes that knows every member's
 * client address; returns its index. */
unsigned cl_leader(struct cluster *cl);
/* Waits until every running node has applied what the leader committed and
 * their data digests agree. */
void cl_converge(struct cluster *cl);
/* Digest of log, versions and dedup of node k. */
uint64_t cl_digest(struct cluster *cl, unsigned k);

/* An append request and its transaction. */
struct cl_append {
	struct consensus_append req;
	struct store_part_result parts[8];
	struct tu_txn *t; /* owned */
	bool done;
	int status;
};

/* A transaction of one part on @stream with @n events. */
struct cl_append *cl_append_new(const char *stream, struct store_expect e,
				uint32_t n, uint64_t seed);
/* Sets the writer id (16 bytes of @client) and sequence. */
void cl_append_client(struct cl_append *a, uint8_t client, uint64_t seq);
void cl_append_free(struct cl_append *a);

/* Submits @a on node k: returns consensus_append's code (the callback,
 * when 0, records status and done). */
int cl_submit(struct cluster *cl, unsigned k, struct cl_append *a);
/* Submits on the current leader and waits, retrying with the same key on
 * EUNKNOWN_OUTCOME, ENOT_LEADER and EUNAVAILABLE until the outcome is
 * known. Returns the outcome. */
uint8_t cl_append_sync(struct cluster *cl, struct cl_append *a);
/* Waits until @a's callback fired. */
void cl_wait(struct cluster *cl, struct cl_append *a);

#endif
