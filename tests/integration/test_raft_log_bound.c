/* The Raft log's byte budget bounds the log on disk (--raft-log-budget):
 *
 * - raft_dir_stays_under_budget_plus_segment_slack: a 3-node cluster with
 *   an 8 MiB budget takes about 12 times the budget in 64 KiB appends
 *   (well beyond budget + slack, so an unbounded log would fail); every
 *   node's raft/ directory is measured while appending and at the end and
 *   must stay under the budget plus the slack libraft's segment files
 *   add (RAFT_LOG_SLACK_BYTES below). The nodes still end with identical
 *   global logs.
 *
 * Ports 25200-25229 (the disk block, see CMakeLists.txt). */
#include <dirent.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cluster.h"

/* This program's block of ports. */
#define PORT_BASE 25200

/* The budget given to every node. */
#define BUDGET_BYTES (8ull << 20)

/* What libraft's files add to the retained entries: raft_uv's segments are
 * 8 MiB and preallocated; up to three are open (the one being written and
 * two prepared ahead), and the oldest closed segment kept may hold entries
 * below the cut (segments are deleted whole). Snapshot files are a few
 * hundred bytes each, two kept. */
#define SEGMENT_BYTES        (8ull << 20)
#define RAFT_LOG_SLACK_BYTES (4 * SEGMENT_BYTES)

/* Bytes of each event's data, and how many appends (one event each): about
 * 12 budgets in all. */
#define EVENT_BYTES (64u << 10)
#define APPENDS     1536

/* Appends between two measurements. */
#define MEASURE_EVERY 32

/* Bytes the files directly in @dir take on disk (the larger of their
 * length and their allocated blocks: preallocated segments count whole). */
static uint64_t dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t total = 0;

	if (d == NULL)
		fail_msg("opendir %s", dir);
	while ((e = readdir(d)) != NULL) {
		char path[CLUSTER_PATH_MAX + 300];
		struct stat st;
		uint64_t blocks;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue; /* deleted meanwhile */
		blocks = (uint64_t)st.st_blocks * 512;
		total += blocks > (uint64_t)st.st_size ? blocks
						       : (uint64_t)st.st_size;
	}
	closedir(d);
	return total;
}

/* Measures every node's raft/ directory, keeps the largest in @max and
 * fails when one is over the bound. */
static void measure(const struct cluster *c, uint64_t *max, unsigned done)
{
	for (unsigned k = 0; k < c->n; k++) {
		char dir[CLUSTER_PATH_MAX + 16];
		uint64_t bytes;

		snprintf(dir, sizeof dir, "%s/raft", c->nodes[k].dir);
		bytes = dir_bytes(dir);
		if (bytes > *max)
			*max = bytes;
		if (bytes > BUDGET_BYTES + RAFT_LOG_SLACK_BYTES)
			fail_msg("node %u: raft/ holds %" PRIu64
				 " bytes after %u appends, over the budget "
				 "%llu + slack %llu",
				 k + 1, bytes, done, BUDGET_BYTES,
				 RAFT_LOG_SLACK_BYTES);
	}
}

static void raft_dir_stays_under_budget_plus_segment_slack(void **state)
{
	static const char *const args[] = { "--raft-log-budget", "8388608",
					    NULL };
	struct cluster *c = *state;
	cairn_client *cl;
	uint8_t *data;
	uint64_t max = 0;
	uint64_t last = 0;
	struct cluster_dump d[3];

	cluster_start_args(c, "raft_log_bound", 3, PORT_BASE, args);
	cluster_wait_leader(c, 0);
	cl = cluster_client(c, -1, false, 0);
	data = malloc(EVENT_BYTES);
	assert_non_null(data);
	for (unsigned i = 0; i < APPENDS; i++) {
		struct cairn_event_in ev = { .type = "Filled" };
		struct cairn_part_result r;
		struct cairn_error err;
		char stream[32];
		int rv;

		/* Data that does not compress, different every time. */
		for (size_t k = 0; k < EVENT_BYTES; k += 4) {
			uint32_t x = (uint32_t)(i * 2654435761u) ^
				     (uint32_t)(k * 40503u);

			x ^= x >> 13;
			x *= 0x5bd1e995u;
			x ^= x >> 15;
			memcpy(data + k, &x, 4);
		}
		ev.data = data;
		ev.data_len = EVENT_BYTES;
		snprintf(stream, sizeof stream, "bound-%u", i % 16);
		rv = cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &ev, 1,
				      &r, &err);
		if (rv != 0)
			fail_msg("append %u: %s: %s", i + 1, cairn_strerror(rv),
				 err.message);
		assert_true(r.last_position > last);
		last = r.last_position;
		if ((i + 1) % MEASURE_EVERY == 0)
			measure(c, &max, i + 1);
	}
	free(data);
	cairn_close(cl);
	assert_int_equal(cluster_wait_converged(c, 0), last);
	measure(c, &max, APPENDS);
	/* The log really was cut: far less than what was written. */
	assert_true(max < (uint64_t)APPENDS * EVENT_BYTES / 2);
	printf("raft/ at most %" PRIu64
	       " bytes (budget %llu, slack %llu, "
	       "written %llu)\n",
	       max, BUDGET_BYTES, RAFT_LOG_SLACK_BYTES,
	       (unsigned long long)APPENDS * EVENT_BYTES);
	for (unsigned k = 0; k < 3; k++) {
		cluster_dump_node(c, k, last, &d[k]);
		assert_int_equal(d[k].n, last);
	}
	cluster_dump_compare(&d[0], "node 1", &d[1], "node 2");
	cluster_dump_compare(&d[0], "node 1", &d[2], "node 3");
	for (unsigned k = 0; k < 3; k++)
		cluster_dump_free(&d[k]);
	/* The bounds moved, and said so. */
	assert_true(cluster_log_count(c, 0, "log_bounds") > 0);
	cluster_stop_clean(c);
	cluster_passed(c);
}

static int setup(void **state)
{
	struct cluster *c = calloc(1, sizeof *c);

	if (c == NULL)
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	cluster_teardown(*state);
	free(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			raft_dir_stays_under_budget_plus_segment_slack, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
