/* Raft snapshots in a real cluster, with the smallest snapshot threshold
 * and trailing log the nodes accept, so that a few hundred appends take
 * many snapshots and truncate the log behind them:
 *
 * - restart_after_snapshots_restores_and_replays: a follower killed and
 *   restarted while the log it misses is still retained catches up; the
 *   whole cluster killed with SIGKILL restarts from its newest snapshots
 *   plus the log after them; the three global logs stay identical and
 *   appends continue at the next position.
 * - follower_behind_the_retained_log_catches_up: a follower that was down
 *   while the leader took snapshots and truncated its log past the
 *   follower's last entry is started again; the leader must send it a
 *   snapshot (DESIGN.md: "a follower that needs a snapshot gets the state
 *   in bounded memory"), and it ends with the same global log.
 *
 * argv[1], when given, is a cmocka test filter (CTest runs the two as
 * separate tests). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

/* This program's block of ports (see CMakeLists.txt). */
#define PORT_BASE 22800

/* The smallest values cairnd keeps (consensus clamps lower ones). */
static const char *const snapshot_args[] = { "--snapshot-threshold", "16",
					     "--snapshot-trailing", "64",
					     NULL };

/* Appends @n events one by one (one Raft entry each, as nothing else is
 * in flight) to @stream; returns the last position. */
static uint64_t append_n(cairn_client *cl, const char *stream, unsigned n,
			 unsigned tag)
{
	uint64_t last = 0;

	for (unsigned i = 0; i < n; i++) {
		char data[64];
		struct cairn_event_in ev = { .type = "Stepped" };
		struct cairn_part_result r;
		struct cairn_error err;
		int rv;

		snprintf(data, sizeof data, "{\"tag\":%u,\"i\":%u}", tag, i);
		ev.data = data;
		ev.data_len = strlen(data);
		rv = cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &ev, 1,
				      &r, &err);
		if (rv != 0)
			fail_msg("append %u of %u to %s: %s: %s", i + 1, n,
				 stream, cairn_strerror(rv), err.message);
		assert_true(r.last_position > last);
		last = r.last_position;
	}
	return last;
}

/* Every node holds @last events and the same global log. */
static void check_identical(struct cluster *c, uint64_t last)
{
	struct cluster_dump d[3];
	uint64_t converged = cluster_wait_converged(c, 0);

	assert_int_equal(converged, last);
	for (unsigned k = 0; k < 3; k++) {
		cluster_dump_node(c, k, last, &d[k]);
		assert_int_equal(d[k].n, last);
	}
	cluster_dump_compare(&d[0], "node 1", &d[1], "node 2");
	cluster_dump_compare(&d[0], "node 1", &d[2], "node 3");
	for (unsigned k = 0; k < 3; k++)
		cluster_dump_free(&d[k]);
}

static void restart_after_snapshots_restores_and_replays(void **state)
{
	struct cluster *c = *state;
	unsigned leader, follower;
	uint64_t last;
	cairn_client *cl;

	cluster_start_args(c, "snapshot-restart", 3, PORT_BASE, snapshot_args);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % 3;
	cl = cluster_client(c, -1, false, 30000);
	append_n(cl, "snap-a", 300, 1);
	/* The test is about snapshots: make sure every node took some. */
	for (unsigned k = 0; k < 3; k++) {
		if (cluster_log_count(c, k, "snapshot_taken") == 0)
			fail_msg(
				"node %u took no snapshot in 300 entries with "
				"threshold 16",
				c->nodes[k].id);
	}

	/* A short absence: the entries it misses are still in the log. */
	cluster_node_kill(c, follower);
	append_n(cl, "snap-a", 20, 2);
	cluster_node_start(c, follower);
	last = append_n(cl, "snap-b", 5, 3);
	cluster_wait_leader(c, 0);
	check_identical(c, last);
	cairn_close(cl);

	/* Everyone at once: each restores its newest snapshot and replays
	 * the log after it. */
	for (unsigned k = 0; k < 3; k++)
		cluster_node_kill(c, k);
	for (unsigned k = 0; k < 3; k++)
		cluster_node_start(c, k);
	cluster_wait_leader(c, 0);
	check_identical(c, last);

	cl = cluster_client(c, -1, false, 30000);
	assert_int_equal(append_n(cl, "snap-b", 1, 4), last + 1);
	cairn_close(cl);
	check_identical(c, last + 1);

	cluster_stop_clean(c);
	cluster_passed(c);
}

static void follower_behind_the_retained_log_catches_up(void **state)
{
	struct cluster *c = *state;
	unsigned leader, follower;
	uint64_t last;
	cairn_client *cl;

	cluster_start_args(c, "snapshot-install", 3, PORT_BASE + CLUSTER_PORTS,
			   snapshot_args);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % 3;
	cl = cluster_client(c, -1, false, 30000);
	append_n(cl, "install-a", 20, 1);

	/* Down while the others take snapshots and drop the log behind
	 * them: 400 entries are far more than threshold + trailing. */
	cluster_node_kill(c, follower);
	last = append_n(cl, "install-a", 400, 2);
	cairn_close(cl);
	cluster_node_start(c, follower);
	cluster_wait_leader(c, 0);
	check_identical(c, last);

	cluster_stop_clean(c);
	cluster_passed(c);
}

static int setup(void **state)
{
	static struct cluster c;

	memset(&c, 0, sizeof c);
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	cluster_teardown(*state);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			restart_after_snapshots_restores_and_replays, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			follower_behind_the_retained_log_catches_up, setup,
			teardown),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
