/* The integration tests' harness: a real Cairn cluster of cairnd processes
 * on loopback, started with fork+exec from the test program, plus the
 * helpers every test needs around it (leader lookup, full dumps of a node's
 * global log, running a program and capturing its output).
 *
 * Each node gets its own data directory and log file under
 * $CAIRN_TEST_TMP/<name>-<pid>/nodeK (stdout and stderr of the daemon go to
 * nodeK.log, appended across restarts). Ports come from the block the
 * caller gives (client base+K, Raft base+10+K, HTTP base+20+K for node K),
 * so test programs that run in parallel never collide.
 *
 * No daemon outlives the test program: every node is registered in a
 * process-wide table that an atexit handler and SIGINT/SIGTERM/SIGHUP
 * handlers kill with SIGKILL; every node is also started with
 * PR_SET_PDEATHSIG = SIGKILL, so it dies with the test program even when
 * that one is killed outright (ctest's timeout). Nodes must be started from
 * the program's main thread (the death signal follows the thread that
 * forked).
 *
 * Every function here fails the running cmocka test on an error; none may
 * be called from a thread other than the test's own (cmocka's assertions
 * jump back to the test). The cluster_* functions print the tail of every
 * node's log when they fail, and cluster_teardown() prints them when the
 * test did not call cluster_passed(). */
#ifndef CAIRN_TESTS_INTEGRATION_CLUSTER_H
#define CAIRN_TESTS_INTEGRATION_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cairn.h"

/* Bytes of a path the harness builds. */
#define CLUSTER_PATH_MAX 1024

/* Extra cairnd flags (cluster_start_args). */
#define CLUSTER_EXTRA_ARGS_MAX 16

/* Nodes of one test cluster. */
#define CLUSTER_NODES_MAX 5

/* Ports of one cluster: a block this long from the caller's base. */
#define CLUSTER_PORTS 30

/* Timeouts given to every node unless the environment says otherwise
 * (CAIRN_TEST_ELECTION_TIMEOUT_MS, CAIRN_TEST_HEARTBEAT_TIMEOUT_MS):
 * short enough that an election takes a second or two, long enough that a
 * loaded 2-core machine running a sanitizer build keeps a stable leader. */
#define CLUSTER_ELECTION_TIMEOUT_MS  1000
#define CLUSTER_HEARTBEAT_TIMEOUT_MS 100

/* Longest wait for a leader that every running node agrees on. An upper
 * bound only: the wait polls and returns as soon as there is one. */
#define CLUSTER_LEADER_WAIT_MS 60000

/* Longest wait for a node to exit after SIGTERM. */
#define CLUSTER_STOP_WAIT_MS 30000

/* Deadline of the harness's own client calls (dumps, statuses). */
#define CLUSTER_CALL_DEADLINE_MS 30000

struct cluster_node {
	unsigned id;     /* Raft node id, 1-based */
	pid_t pid;       /* the running daemon, 0 when it is not running */
	int last_status; /* wait status of its last exit */
	bool exited;     /* it has exited at least once */
	char client_address[64];
	char raft_address[64];
	char http_address[64];
	char dir[CLUSTER_PATH_MAX];      /* its data directory */
	char log_path[CLUSTER_PATH_MAX]; /* its stdout and stderr */
};

struct cluster {
	char name[64];
	char root[CLUSTER_PATH_MAX / 2]; /* $CAIRN_TEST_TMP/<name>-<pid> */
	unsigned n;
	struct cluster_node nodes[CLUSTER_NODES_MAX];
	char peers[2048]; /* the --peers list */
	char seeds[512];  /* every node's client address, comma separated */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	bool passed; /* set by cluster_passed(): keep quiet at teardown */
	/* More cairnd flags for every node (borrowed, NULL terminated). */
	const char *extra_args[CLUSTER_EXTRA_ARGS_MAX + 1];
};

/* Creates the directories of a cluster of @n nodes named @name on the
 * ports from @port_base, and starts every node. Does not wait for a
 * leader. @c is owned by the caller and must stay put until
 * cluster_teardown(). */
void cluster_start(struct cluster *c, const char *name, unsigned n,
		   unsigned port_base);

/* The same, with @extra_args (NULL terminated, at most
 * CLUSTER_EXTRA_ARGS_MAX, borrowed for the cluster's life) added to every
 * node's command line, now and at every restart. */
void cluster_start_args(struct cluster *c, const char *name, unsigned n,
			unsigned port_base, const char *const *extra_args);

/* Starts node @k (0-based index) again with the same data directory. */
void cluster_node_start(struct cluster *c, unsigned k);

/* Sends SIGKILL to node @k and reaps it. */
void cluster_node_kill(struct cluster *c, unsigned k);

/* Sends SIGTERM to node @k and waits (bounded) for it to exit; fails the
 * test unless it exits with status 0. */
void cluster_node_stop(struct cluster *c, unsigned k);

/* Sends SIGTERM to every running node at once, waits for each to exit
 * with status 0 (as cluster_node_stop), then
 * checks every node's log for assertion failures and sanitizer reports. */
void cluster_stop_clean(struct cluster *c);

/* Fails the test if a node that should run has exited, printing how. */
void cluster_check_alive(struct cluster *c);

/* Fails the test if a node's log holds "assert", "Assertion",
 * "Sanitizer" or "runtime error". */
void cluster_check_logs(const struct cluster *c);

/* The number of lines of node @k's log that hold @needle. */
unsigned cluster_log_count(const struct cluster *c, unsigned k,
			   const char *needle);

/* Waits until one running node is the leader, every other running node
 * names it as leader, and every running node's member table holds every
 * node's client address; returns its index. Fails after @timeout_ms (0:
 * CLUSTER_LEADER_WAIT_MS). */
unsigned cluster_wait_leader(struct cluster *c, unsigned timeout_ms);

/* Waits until every running node reports the same last position twice in
 * a row, polls apart (nothing more is being applied), and returns it. Fails
 * after @timeout_ms (0: CLUSTER_LEADER_WAIT_MS). */
uint64_t cluster_wait_converged(struct cluster *c, unsigned timeout_ms);

/* The status of node @k, or an error code (the node may be down). */
int cluster_status(const struct cluster *c, unsigned k, struct cairn_status *s,
		   unsigned deadline_ms);

/* Opens a client: with @k < 0 on every node's address, otherwise on node
 * @k only (single_node when @single_node). Deadline 0: the library's. */
cairn_client *cluster_client(const struct cluster *c, int k, bool single_node,
			     unsigned deadline_ms);

/* Prints the last @lines lines of every node's log. */
void cluster_print_logs(const struct cluster *c, unsigned lines);

/* Marks the test as passed (teardown then prints no logs) and removes
 * nothing: directories are removed by cluster_teardown() on success. */
void cluster_passed(struct cluster *c);

/* Kills every node still running (SIGKILL), prints the logs unless
 * cluster_passed() was called, and removes the cluster's directory when
 * it was. Safe to call on a cluster that never started. */
void cluster_teardown(struct cluster *c);

/* ---- dumps of the global log ---- */

struct cluster_event {
	uint64_t position;
	uint64_t version;
	char *stream; /* owned, NUL-terminated */
	uint8_t id[16];
	char *type; /* owned, NUL-terminated */
	uint16_t schema_version;
	int64_t event_time_us;
	uint64_t commit_time_us;
	bool has_client;
	uint8_t client_id[16];
	uint64_t client_seq;
	uint8_t *data; /* owned */
	size_t data_len;
	uint8_t *metadata; /* owned */
	size_t metadata_len;
};

struct cluster_dump {
	size_t n;
	struct cluster_event *events; /* owned; events[i].position == i + 1 */
};

/* Reads node @k's whole global log through a single-node client with
 * at-least-@min_position consistency, and checks that positions are
 * 1, 2, 3, ... without a gap. */
void cluster_dump_node(const struct cluster *c, unsigned k,
		       uint64_t min_position, struct cluster_dump *d);
void cluster_dump_free(struct cluster_dump *d);

/* Fails the test, naming the first difference, unless @a and @b hold the
 * same events (every field). */
void cluster_dump_compare(const struct cluster_dump *a, const char *a_name,
			  const struct cluster_dump *b, const char *b_name);

/* ---- programs ---- */

/* Runs @argv (argv[0] a path) with @env_extra ("K=V" strings, NULL
 * terminated, may be NULL) added to the environment, stdin from
 * /dev/null, stdout into @out (NUL-terminated, truncated to @out_cap - 1)
 * and stderr into @err (same; both may be NULL to discard). Kills it and
 * fails the test after @timeout_ms. Returns its exit code; fails the test
 * if it died of a signal. */
int cluster_run(char *const argv[], char *const env_extra[], char *out,
		size_t out_cap, char *err, size_t err_cap, unsigned timeout_ms);

/* ---- small helpers ---- */

uint64_t cluster_now_ms(void);
void cluster_sleep_ms(unsigned ms);

/* The directory for a test's own scratch files: $CAIRN_TEST_TMP or /tmp. */
const char *cluster_tmp_base(void);

/* ---- nodes that join a running cluster ---- */

/* Starts node @k (0-based; up to CLUSTER_NODES_MAX - 1, on the addresses
 * of the cluster's port block; c->n grows to include it) with
 * `--join @seeds` and no --peers, plus the cluster's extra flags, in its
 * data directory as it is (wipe it first to join afresh). */
void cluster_node_start_join(struct cluster *c, unsigned k, const char *seeds);

/* Removes node @k's data directory (the node must not run). */
void cluster_node_wipe(struct cluster *c, unsigned k);

#endif /* CAIRN_TESTS_INTEGRATION_CLUSTER_H */
