/* Tests of consensus/ across restarts of a three-node cluster (one
 * process, one libuv loop, TCP on 127.0.0.1): every committed event stays
 * exactly once after all nodes restart from disk, with and without
 * snapshots in the log, and the member table is back before any election;
 * large entries lower the retained log to its byte budget.
 *
 * Ports: 20200..20299 of the consensus range, 10 per test. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

#define PORT(n) (20200 + 10 * (n))

struct record_check {
	uint64_t next;
	uint64_t count;
};

static bool dense_cb(void *arg, const struct store_record *r)
{
	struct record_check *c = arg;

	assert_int_equal(r->position, c->next);
	c->next++;
	c->count++;
	return true;
}

static void assert_dense(struct cluster *cl, unsigned k, uint64_t last)
{
	struct record_check c = { 1, 0 };
	struct store_read_info info;

	assert_int_equal(store_read_all(&cl->nodes[k].store, 1, UINT32_MAX, 0,
					NULL, dense_cb, &c, &info),
			 0);
	assert_int_equal(c.count, last);
	assert_int_equal(store_last_position(&cl->nodes[k].store), last);
}

/* Appends @n transactions of writer @client, one entry each (each waits
 * for the previous one), numbering sequences from @seq. Returns the last
 * position. */
static uint64_t append_many(struct cluster *cl, unsigned n, uint8_t client,
			    uint64_t seq)
{
	uint64_t last = 0;
	unsigned k;

	for (k = 0; k < n; k++) {
		char stream[32];
		struct cl_append *a;
		uint8_t outcome;

		snprintf(stream, sizeof stream, "acct-%u", k % 5);
		a = cl_append_new(stream, tu_any(), 1 + k % 2, seq + k);
		cl_append_client(a, client, seq + k);
		outcome = cl_append_sync(cl, a);
		assert_true(outcome == STORE_COMMITTED ||
			    outcome == STORE_DUPLICATE);
		last = a->parts[0].last_position;
		cl_append_free(a);
	}
	return last;
}

static unsigned count_snapshots(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "snapshot-", 9) == 0 &&
		    strstr(e->d_name, ".meta") == NULL)
			n++;
	closedir(d);
	return n;
}

static void restart_keeps_every_committed_event_once(void **state)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	uint64_t digest;
	uint64_t applied[CL_NODES];
	uint64_t last;
	unsigned k;

	(void)state;
	assert_non_null(cl);
	cl_init(cl, "cons-restart", PORT(0));
	cl_start_all(cl);
	last = append_many(cl, 30, 1, 1);
	cl_converge(cl);
	digest = cl_digest(cl, 0);
	for (k = 0; k < CL_NODES; k++)
		applied[k] = store_applied_index(&cl->nodes[k].store);
	cl_stop_all(cl);

	cl_start_all(cl);
	for (k = 0; k < CL_NODES; k++) {
		/* The member table and the applied index come back from
		 * the store before the loop runs at all. */
		assert_int_equal(cl->nodes[k].cons.i->n_members, CL_NODES);
		assert_string_equal(
			members_find(cl->nodes[k].cons.i, 2)->client_address,
			cl->peers[1].client_address);
		assert_int_equal(store_applied_index(&cl->nodes[k].store),
				 applied[k]);
	}
	cl_leader(cl);
	cl_converge(cl);
	for (k = 0; k < CL_NODES; k++) {
		assert_true(cl_digest(cl, k) == digest);
		assert_dense(cl, k, last);
		/* Raft replayed its log; the store skipped all of it. */
		assert_int_equal(cl->nodes[k].cons.i->store_entries_applied, 0);
		assert_true(store_applied_index(&cl->nodes[k].store) >=
			    applied[k]);
	}
	/* Writes continue where they stopped; a retry of an old sequence is
	 * a duplicate. */
	assert_int_equal(append_many(cl, 1, 1, 31), last + 1);
	{
		struct cl_append *old = cl_append_new("acct-0", tu_any(), 1, 1);

		cl_append_client(old, 1, 1);
		assert_int_equal(cl_append_sync(cl, old), STORE_DUPLICATE);
		assert_int_equal(old->parts[0].first_position, 1);
		cl_append_free(old);
	}
	cl_converge(cl);
	cl_fini(cl);
	free(cl);
}

static void snapshots_then_restart_apply_nothing_twice(void **state)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	uint64_t digest;
	uint64_t last;
	unsigned k;

	(void)state;
	assert_non_null(cl);
	cl_init(cl, "cons-snap", PORT(1));
	cl->snapshot_threshold = 4;
	cl->snapshot_trailing = 32;
	cl->inflight_entries_max = 2;
	cl_start_all(cl);
	last = append_many(cl, 60, 2, 1);
	cl_converge(cl);
	for (k = 0; k < CL_NODES; k++) {
		assert_true(cl->nodes[k].cons.i->snapshots_taken >= 5);
		assert_true(count_snapshots(cl->nodes[k].raft_dir) >= 1);
	}
	digest = cl_digest(cl, 0);
	cl_stop_all(cl);

	cl_start_all(cl);
	cl_leader(cl);
	cl_converge(cl);
	for (k = 0; k < CL_NODES; k++) {
		assert_true(cl_digest(cl, k) == digest);
		assert_dense(cl, k, last);
		assert_int_equal(cl->nodes[k].cons.i->store_entries_applied, 0);
		assert_int_equal(cl->nodes[k].cons.i->n_members, CL_NODES);
	}
	/* And once more after more snapshots, with the new writes. */
	last = append_many(cl, 12, 2, 61);
	cl_converge(cl);
	digest = cl_digest(cl, 0);
	cl_stop_all(cl);
	cl_start_all(cl);
	cl_leader(cl);
	cl_converge(cl);
	for (k = 0; k < CL_NODES; k++) {
		assert_true(cl_digest(cl, k) == digest);
		assert_dense(cl, k, last);
	}
	cl_fini(cl);
	free(cl);
}

static void restart_of_one_follower_catches_up(void **state)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	uint64_t last;
	unsigned leader;
	unsigned f;

	(void)state;
	assert_non_null(cl);
	cl_init(cl, "cons-catchup", PORT(2));
	cl_start_all(cl);
	append_many(cl, 5, 3, 1);
	leader = cl_leader(cl);
	f = (leader + 1) % CL_NODES;
	cl_stop(cl, f);
	/* The other two commit without it. */
	last = append_many(cl, 10, 3, 6);
	cl_start(cl, f);
	cl_converge(cl);
	assert_dense(cl, f, last);
	assert_true(cl_digest(cl, f) == cl_digest(cl, leader));
	cl_fini(cl);
	free(cl);
}

/* Appends transactions @from..@to-1 of about 4 KiB each, one entry each. */
static void bulk(struct cluster *cl, unsigned from, unsigned to)
{
	unsigned n;

	for (n = from; n < to; n++) {
		const char *streams[2] = { "bulk", NULL };
		struct cl_append *a = calloc(1, sizeof *a);

		assert_non_null(a);
		a->t = tu_txn_make(streams, tu_any(), 1, 4000, n);
		tu_txn_client(a->t, 6, n + 1);
		a->req.txn = a->t->txn;
		a->req.parts = a->parts;
		assert_int_equal(cl_append_sync(cl, a), STORE_COMMITTED);
		cl_append_free(a);
	}
}

static bool bounds_lowered(void *arg)
{
	struct cluster *cl = arg;
	unsigned k;

	for (k = 0; k < CL_NODES; k++)
		if (cl->nodes[k].cons.i->cur_trailing ==
		    CONSENSUS_SNAPSHOT_TRAILING_DEFAULT)
			return false;
	return true;
}

static void large_entries_lower_the_retained_log(void **state)
{
	struct cluster *cl = calloc(1, sizeof *cl);
	unsigned k;

	(void)state;
	assert_non_null(cl);
	cl_init(cl, "cons-bound", PORT(3));
	cl_start_all(cl);
	cl_leader(cl);
	for (k = 0; k < CL_NODES; k++) {
		struct consensus_int *i = cl->nodes[k].cons.i;

		/* The configured counts hold while entries are small. */
		assert_int_equal(i->cur_trailing,
				 CONSENSUS_SNAPSHOT_TRAILING_DEFAULT);
		assert_int_equal(i->cur_threshold,
				 CONSENSUS_SNAPSHOT_THRESHOLD_DEFAULT);
		/* 64 entries of 4 KiB. */
		i->log_bytes_budget = 256u << 10;
	}
	bulk(cl, 0, 20);
	/* The next ticks (every 200 ms) lower the bounds... */
	cl_run_until(cl, bounds_lowered, cl, CL_DEADLINE_MS);
	/* ...and snapshots follow at the lower threshold. */
	bulk(cl, 20, 60);
	cl_converge(cl);
	for (k = 0; k < CL_NODES; k++) {
		struct consensus_int *i = cl->nodes[k].cons.i;
		uint64_t avg = i->entry_bytes_avg / 16;

		/* The average still remembers the small entries of the
		 * start; at it, the retained log fits the budget, give or
		 * take the hysteresis (a quarter). */
		assert_true(avg > 1000);
		assert_true(i->cur_trailing >= CONSENSUS_TRAILING_MIN);
		assert_true(i->cur_trailing <= 256);
		assert_true(i->cur_threshold >= CONSENSUS_THRESHOLD_MIN);
		assert_true(i->cur_threshold <= 32);
		assert_true((i->cur_trailing + i->cur_threshold) * avg <=
			    (256u << 10) * 3 / 2);
		assert_int_equal(i->raft.legacy.snapshot_trailing,
				 i->cur_trailing);
		/* Snapshots came with the lower threshold. */
		assert_true(i->snapshots_taken >= 1);
	}
	cl_fini(cl);
	free(cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restart_keeps_every_committed_event_once),
		cmocka_unit_test(snapshots_then_restart_apply_nothing_twice),
		cmocka_unit_test(restart_of_one_follower_catches_up),
		cmocka_unit_test(large_entries_lower_the_retained_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
