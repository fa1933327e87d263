/* Tests of the consensus write path on a real three-node cluster (one
 * process, one libuv loop, TCP on 127.0.0.1): replication and identical
 * apply, answers without a round trip (conflicts, duplicates, stale
 * sequences), joined retries, group commit, the pipeline bound and
 * backpressure, redirects from followers, the member table, barrier
 * coalescing, and a leader that closes handing over leadership.
 *
 * Ports: 20000..20199 of the consensus range, 10 per test (see PORT). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

/* Each test gets its own ports so a failed test's lingering sockets never
 * disturb the next one, and parallel ctest runs never collide (the other
 * consensus executables use 20200 and up). */
#define PORT(n) (20000 + 10 * (n))

static struct cluster *setup(const char *tag, int port_base)
{
	struct cluster *cl = calloc(1, sizeof *cl);

	assert_non_null(cl);
	cl_init(cl, tag, port_base);
	return cl;
}

static void teardown(struct cluster *cl)
{
	cl_fini(cl);
	free(cl);
}

static unsigned other(unsigned leader, unsigned nth)
{
	return (leader + 1 + nth) % CL_NODES;
}

struct record_check {
	uint64_t next; /* the position expected next */
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

/* Positions 1..last, with no gap, on node k. */
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

/* ------------------------------------------------------------------------ */

static void leader_elected_and_appends_apply_identically(void **state)
{
	struct cluster *cl = setup("cons-repl", PORT(0));
	struct cl_append *a[20];
	uint64_t last = 0;
	unsigned leader;
	unsigned k;

	(void)state;
	cl_start_all(cl);
	leader = cl_leader(cl);
	for (k = 0; k < 20; k++) {
		char stream[32];

		snprintf(stream, sizeof stream, "order-%u", k % 4);
		a[k] = cl_append_new(stream, tu_any(), 1 + k % 3, k);
		cl_append_client(a[k], 7, k + 1);
		assert_int_equal(cl_submit(cl, leader, a[k]), 0);
	}
	for (k = 0; k < 20; k++) {
		cl_wait(cl, a[k]);
		assert_int_equal(a[k]->status, 0);
		assert_int_equal(a[k]->req.outcome, STORE_COMMITTED);
		/* Positions are assigned in submission order, densely. */
		assert_int_equal(a[k]->parts[0].first_position, last + 1);
		last = a[k]->parts[0].last_position;
		assert_int_equal(last - a[k]->parts[0].first_position + 1,
				 1 + k % 3);
	}
	cl_converge(cl);
	for (k = 0; k < CL_NODES; k++) {
		assert_dense(cl, k, last);
		assert_true(cl_digest(cl, k) == cl_digest(cl, 0));
		/* Every replica told the node about its applies. */
		assert_int_equal(cl->nodes[k].applied_position, last);
	}
	for (k = 0; k < 20; k++)
		cl_append_free(a[k]);
	teardown(cl);
}

static void conflicting_expected_version_is_answered_at_once(void **state)
{
	struct cluster *cl = setup("cons-conflict", PORT(1));
	struct cl_append *first = cl_append_new("acct-1", tu_no_stream(), 1, 1);
	struct cl_append *wrong = cl_append_new("acct-1", tu_exact(5), 1, 2);
	struct cl_append *inflight = cl_append_new("acct-1", tu_any(), 2, 3);
	struct cl_append *stale = cl_append_new("acct-1", tu_exact(1), 1, 4);
	struct cl_append *next = cl_append_new("acct-1", tu_exact(3), 1, 5);
	struct cl_append *fresh = cl_append_new("acct-2", tu_no_stream(), 1, 6);
	raft_index before;
	uint64_t proposed;
	unsigned leader;

	(void)state;
	cl_start_all(cl);
	assert_int_equal(cl_append_sync(cl, first), STORE_COMMITTED);
	leader = cl_leader(cl);
	before = raft_last_index(&cl->nodes[leader].cons.i->raft);
	proposed = cl->nodes[leader].cons.i->entries_proposed;

	/* Against the committed head (version 1). */
	assert_int_equal(cl_submit(cl, leader, wrong), CONSENSUS_EDONE);
	assert_int_equal(wrong->req.outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(wrong->req.conflict_part, 0);
	assert_int_equal(wrong->req.actual_version, 1);

	/* Against the head plus what is in flight: 1 + 2 = 3. */
	assert_int_equal(cl_submit(cl, leader, inflight), 0);
	assert_int_equal(cl_submit(cl, leader, stale), CONSENSUS_EDONE);
	assert_int_equal(stale->req.outcome, STORE_WRONG_EXPECTED_VERSION);
	assert_int_equal(stale->req.actual_version, 3);
	assert_int_equal(cl_submit(cl, leader, next), 0);
	/* A new stream expecting no stream passes. */
	assert_int_equal(cl_submit(cl, leader, fresh), 0);

	/* Nothing was proposed for the conflicts. */
	assert_int_equal(raft_last_index(&cl->nodes[leader].cons.i->raft),
			 before);
	cl_wait(cl, inflight);
	cl_wait(cl, next);
	cl_wait(cl, fresh);
	assert_int_equal(inflight->req.outcome, STORE_COMMITTED);
	assert_int_equal(next->req.outcome, STORE_COMMITTED);
	assert_int_equal(next->parts[0].last_version, 4);
	assert_int_equal(fresh->req.outcome, STORE_COMMITTED);
	/* All three went into one entry. */
	assert_int_equal(cl->nodes[leader].cons.i->entries_proposed,
			 proposed + 1);
	/* Once applied, the projection falls back to the committed head. */
	assert_int_equal(cl->nodes[leader].cons.i->streams.n, 0);
	cl_append_free(first);
	cl_append_free(wrong);
	cl_append_free(inflight);
	cl_append_free(stale);
	cl_append_free(next);
	cl_append_free(fresh);
	teardown(cl);
}

static void duplicate_after_commit_is_answered_from_dedup(void **state)
{
	struct cluster *cl = setup("cons-dup", PORT(2));
	struct cl_append *a = cl_append_new("cart-9", tu_any(), 3, 1);
	struct cl_append *retry = cl_append_new("cart-9", tu_any(), 3, 1);
	struct cl_append *later = cl_append_new("cart-9", tu_any(), 1, 2);
	struct cl_append *old = cl_append_new("cart-9", tu_any(), 1, 3);
	raft_index before;
	unsigned leader;

	(void)state;
	cl_append_client(a, 3, 10);
	cl_append_client(retry, 3, 10);
	cl_append_client(later, 3, 20);
	cl_append_client(old, 3, 15);
	cl_start_all(cl);
	assert_int_equal(cl_append_sync(cl, a), STORE_COMMITTED);
	leader = cl_leader(cl);
	before = raft_last_index(&cl->nodes[leader].cons.i->raft);

	assert_int_equal(cl_submit(cl, leader, retry), CONSENSUS_EDONE);
	assert_int_equal(retry->req.outcome, STORE_DUPLICATE);
	assert_memory_equal(retry->parts, a->parts, sizeof a->parts[0]);

	assert_int_equal(cl_append_sync(cl, later), STORE_COMMITTED);
	leader = cl_leader(cl);
	before = raft_last_index(&cl->nodes[leader].cons.i->raft);
	/* 15 never committed and is below the high-water mark 20. */
	assert_int_equal(cl_submit(cl, leader, old), CONSENSUS_EDONE);
	assert_int_equal(old->req.outcome, STORE_STALE_SEQUENCE);
	assert_int_equal(old->req.actual_version, 20);
	assert_int_equal(raft_last_index(&cl->nodes[leader].cons.i->raft),
			 before);
	assert_int_equal(store_last_position(&cl->nodes[leader].store), 4);
	cl_append_free(a);
	cl_append_free(retry);
	cl_append_free(later);
	cl_append_free(old);
	teardown(cl);
}

static bool batch_inflight(void *arg)
{
	struct consensus *c = arg;

	return c->i->n_inflight > 0;
}

static void retry_joins_its_inflight_original(void **state)
{
	struct cluster *cl = setup("cons-join", PORT(3));
	struct cl_append *a = cl_append_new("user-1", tu_any(), 2, 1);
	struct cl_append *b = cl_append_new("user-1", tu_any(), 2, 1);
	struct cl_append *a2 = cl_append_new("user-1", tu_any(), 3, 2);
	struct cl_append *c = cl_append_new("user-1", tu_any(), 3, 2);
	struct consensus *cons;
	unsigned leader;

	(void)state;
	cl_append_client(a, 5, 1);
	cl_append_client(b, 5, 1);
	cl_append_client(a2, 5, 2);
	cl_append_client(c, 5, 2);
	cl_start_all(cl);
	leader = cl_leader(cl);
	cons = &cl->nodes[leader].cons;

	/* Same key while the original waits in the open batch. */
	assert_int_equal(cl_submit(cl, leader, a), 0);
	assert_int_equal(cl_submit(cl, leader, b), 0);
	assert_int_equal(cons->i->open->count, 1);
	cl_wait(cl, a);
	cl_wait(cl, b);
	assert_int_equal(a->status, 0);
	assert_int_equal(a->req.outcome, STORE_COMMITTED);
	assert_int_equal(b->status, 0);
	assert_int_equal(b->req.outcome, STORE_DUPLICATE);
	assert_memory_equal(b->parts, a->parts, sizeof a->parts[0]);

	/* Same key while the original's entry is in flight in Raft. */
	assert_int_equal(cl_submit(cl, leader, a2), 0);
	cl_run_until(cl, batch_inflight, cons, CL_DEADLINE_MS);
	if (!a2->done) {
		assert_int_equal(cl_submit(cl, leader, c), 0);
		assert_null(cons->i->open);
		cl_wait(cl, c);
		assert_int_equal(c->status, 0);
		assert_int_equal(c->req.outcome, STORE_DUPLICATE);
		assert_memory_equal(c->parts, a2->parts, sizeof a2->parts[0]);
	}
	cl_wait(cl, a2);
	assert_int_equal(a2->req.outcome, STORE_COMMITTED);
	/* The log holds each transaction once. */
	cl_converge(cl);
	assert_int_equal(store_last_position(&cl->nodes[leader].store), 5);
	assert_int_equal(cons->i->clients.n, 0);
	cl_append_free(a);
	cl_append_free(b);
	cl_append_free(a2);
	cl_append_free(c);
	teardown(cl);
}

static void appends_of_one_iteration_share_one_entry(void **state)
{
	struct cluster *cl = setup("cons-group", PORT(4));
	struct cl_append *a[50];
	uint64_t proposed;
	uint64_t applied[CL_NODES];
	unsigned leader;
	unsigned k;

	(void)state;
	cl_start_all(cl);
	leader = cl_leader(cl);
	cl_converge(cl);
	proposed = cl->nodes[leader].cons.i->entries_proposed;
	for (k = 0; k < CL_NODES; k++)
		applied[k] = cl->nodes[k].cons.i->store_entries_applied;
	/* Fifty appends before the loop runs again. */
	for (k = 0; k < 50; k++) {
		char stream[32];

		snprintf(stream, sizeof stream, "s-%u", k % 7);
		a[k] = cl_append_new(stream, tu_any(), 1, k);
		cl_append_client(a[k], 9, k + 1);
		assert_int_equal(cl_submit(cl, leader, a[k]), 0);
	}
	for (k = 0; k < 50; k++) {
		cl_wait(cl, a[k]);
		assert_int_equal(a[k]->status, 0);
		assert_int_equal(a[k]->req.outcome, STORE_COMMITTED);
		assert_int_equal(a[k]->parts[0].first_position, k + 1);
	}
	cl_converge(cl);
	assert_int_equal(cl->nodes[leader].cons.i->entries_proposed,
			 proposed + 1);
	for (k = 0; k < CL_NODES; k++)
		assert_int_equal(cl->nodes[k].cons.i->store_entries_applied,
				 applied[k] + 1);
	for (k = 0; k < 50; k++)
		cl_append_free(a[k]);
	teardown(cl);
}

static void entry_size_cap_splits_batches(void **state)
{
	struct cluster *cl = setup("cons-split", PORT(5));
	struct cl_append *a[20];
	struct cl_append *big;
	uint64_t proposed;
	unsigned leader;
	unsigned k;

	(void)state;
	cl->entry_bytes_max = 4096;
	cl_start_all(cl);
	leader = cl_leader(cl);
	proposed = cl->nodes[leader].cons.i->entries_proposed;
	/* 20 transactions of 1071 bytes (1075 framed). */
	for (k = 0; k < 20; k++) {
		const char *streams[2] = { "split", NULL };

		a[k] = calloc(1, sizeof *a[k]);
		assert_non_null(a[k]);
		a[k]->t = tu_txn_make(streams, tu_any(), 1, 1000, k);
		a[k]->req.txn = a[k]->t->txn;
		a[k]->req.parts = a[k]->parts;
		assert_int_equal(cl_submit(cl, leader, a[k]), 0);
	}
	for (k = 0; k < 20; k++) {
		cl_wait(cl, a[k]);
		assert_int_equal(a[k]->status, 0);
		assert_int_equal(a[k]->req.outcome, STORE_COMMITTED);
		/* Entries committed together are applied before any of
		 * their callbacks runs: each request still gets its own
		 * entry's result (results go by index). */
		assert_int_equal(a[k]->parts[0].first_position, k + 1);
		assert_int_equal(a[k]->parts[0].last_version, k + 1);
	}
	/* 16 + 3 * 1075 bytes fit 4096; a fourth does not: 7 entries. */
	assert_int_equal(cl->nodes[leader].cons.i->entries_proposed,
			 proposed + 7);

	/* One transaction larger than the cap goes alone, and commits. */
	{
		const char *streams[2] = { "big", NULL };

		big = calloc(1, sizeof *big);
		assert_non_null(big);
		big->t = tu_txn_make(streams, tu_any(), 4, 8000, 99);
		big->req.txn = big->t->txn;
		big->req.parts = big->parts;
	}
	proposed = cl->nodes[leader].cons.i->entries_proposed;
	assert_int_equal(cl_submit(cl, leader, big), 0);
	cl_wait(cl, big);
	assert_int_equal(big->status, 0);
	assert_int_equal(big->req.outcome, STORE_COMMITTED);
	assert_int_equal(big->parts[0].last_position, 24);
	assert_int_equal(cl->nodes[leader].cons.i->entries_proposed,
			 proposed + 1);
	cl_converge(cl);
	for (k = 0; k < 20; k++)
		cl_append_free(a[k]);
	cl_append_free(big);
	teardown(cl);
}

static void pipeline_bound_reports_full_then_ready(void **state)
{
	struct cluster *cl = setup("cons-pipe", PORT(6));
	struct cl_append *a[200];
	bool seen_full = false;
	unsigned leader;
	unsigned k;

	(void)state;
	cl->inflight_entries_max = 1;
	cl_start_all(cl);
	leader = cl_leader(cl);
	cl_converge(cl);
	/* One append per loop iteration: entries queue behind the one in
	 * flight. */
	for (k = 0; k < 200; k++) {
		a[k] = cl_append_new("pipe", tu_any(), 1, k);
		cl_append_client(a[k], 11, k + 1);
		assert_int_equal(cl_submit(cl, leader, a[k]), 0);
		if (consensus_pipeline_full(&cl->nodes[leader].cons))
			seen_full = true;
		assert_true(cl->nodes[leader].cons.i->n_inflight <= 1);
		uv_run(&cl->loop, UV_RUN_NOWAIT);
	}
	assert_true(seen_full);
	for (k = 0; k < 200; k++) {
		cl_wait(cl, a[k]);
		assert_int_equal(a[k]->status, 0);
		assert_int_equal(a[k]->req.outcome, STORE_COMMITTED);
	}
	assert_false(consensus_pipeline_full(&cl->nodes[leader].cons));
	assert_true(cl->nodes[leader].pipeline_ready_calls > 0);
	cl_converge(cl);
	assert_dense(cl, leader, 200);
	for (k = 0; k < 200; k++)
		cl_append_free(a[k]);
	teardown(cl);
}

static void follower_redirects_to_the_leader(void **state)
{
	struct cluster *cl = setup("cons-redirect", PORT(7));
	struct cl_append *a = cl_append_new("x", tu_any(), 1, 1);
	struct consensus_barrier b;
	char address[CONSENSUS_ADDRESS_MAX];
	uint64_t id;
	unsigned leader;
	unsigned f;

	(void)state;
	cl_start_all(cl);
	leader = cl_leader(cl);
	f = other(leader, 0);
	/* The follower learns the leader (a heartbeat) and the member table
	 * (applied). */
	cl_converge(cl);
	assert_int_equal(cl_submit(cl, f, a), CONSENSUS_ENOT_LEADER);
	assert_int_equal(consensus_barrier(&cl->nodes[f].cons, &b, NULL),
			 CONSENSUS_ENOT_LEADER);
	assert_true(consensus_leader(&cl->nodes[f].cons, &id, address));
	assert_int_equal(id, leader + 1);
	assert_string_equal(address, cl->peers[leader].client_address);
	assert_true(consensus_leader(&cl->nodes[leader].cons, &id, address));
	assert_int_equal(id, leader + 1);
	assert_string_equal(address, cl->peers[leader].client_address);
	assert_false(consensus_is_leader(&cl->nodes[f].cons));
	assert_true(consensus_is_leader(&cl->nodes[leader].cons));
	cl_append_free(a);
	teardown(cl);
}

static bool members_everywhere(void *arg)
{
	struct cluster *cl = arg;
	unsigned k;

	for (k = 0; k < CL_NODES; k++)
		if (cl->nodes[k].cons.i->n_members != CL_NODES)
			return false;
	return true;
}

static void member_table_holds_every_address(void **state)
{
	struct cluster *cl = setup("cons-members", PORT(8));
	struct consensus_status s;
	unsigned leader;
	unsigned k;
	unsigned m;

	(void)state;
	cl_start_all(cl);
	leader = cl_leader(cl);
	cl_run_until(cl, members_everywhere, cl, CL_DEADLINE_MS);
	for (k = 0; k < CL_NODES; k++) {
		struct consensus_int *i = cl->nodes[k].cons.i;

		for (m = 0; m < CL_NODES; m++) {
			const struct consensus_member *rec =
				members_find(i, m + 1);

			assert_non_null(rec);
			assert_string_equal(rec->raft_address,
					    cl->peers[m].raft_address);
			assert_string_equal(rec->client_address,
					    cl->peers[m].client_address);
			assert_string_equal(rec->http_address,
					    cl->peers[m].http_address);
		}
	}
	consensus_status(&cl->nodes[other(leader, 1)].cons, &s);
	assert_int_equal(s.id, other(leader, 1) + 1);
	assert_int_equal(s.role, CONSENSUS_FOLLOWER);
	assert_int_equal(s.leader_id, leader + 1);
	assert_string_equal(s.leader_client_address,
			    cl->peers[leader].client_address);
	assert_int_equal(s.n_members, CL_NODES);
	for (m = 0; m < s.n_members; m++) {
		unsigned p = (unsigned)s.members[m].id - 1;

		assert_true(p < CL_NODES);
		assert_int_equal(s.members[m].role, 1);
		assert_string_equal(s.members[m].raft_address,
				    cl->peers[p].raft_address);
		assert_string_equal(s.members[m].client_address,
				    cl->peers[p].client_address);
		assert_string_equal(s.members[m].http_address,
				    cl->peers[p].http_address);
	}
	consensus_status(&cl->nodes[leader].cons, &s);
	assert_int_equal(s.role, CONSENSUS_LEADER);
	assert_true(s.term > 0);
	assert_true(s.commit_index >= 2);
	assert_true(s.applied_index <= s.commit_index);
	teardown(cl);
}

struct barrier_waiter {
	struct consensus_barrier req;
	bool done;
	int status;
};

static void barrier_cb(struct consensus_barrier *req, int status)
{
	struct barrier_waiter *w = req->data;

	assert_false(w->done);
	w->done = true;
	w->status = status;
}

struct waiters {
	struct barrier_waiter *w;
	unsigned n;
};

static bool waiters_done(void *arg)
{
	struct waiters *ws = arg;
	unsigned k;

	for (k = 0; k < ws->n; k++)
		if (!ws->w[k].done)
			return false;
	return true;
}

static bool barrier_issued(void *arg)
{
	struct consensus *c = arg;

	return c->i->barrier_inflight;
}

static void concurrent_barriers_share_raft_barriers(void **state)
{
	struct cluster *cl = setup("cons-barrier", PORT(9));
	struct barrier_waiter w[40];
	struct waiters ws = { w, 40 };
	struct consensus *c;
	uint64_t issued;
	raft_index commit;
	unsigned leader;
	unsigned k;

	(void)state;
	cl_start_all(cl);
	leader = cl_leader(cl);
	cl_converge(cl);
	c = &cl->nodes[leader].cons;
	issued = c->i->barriers_issued;
	commit = c->i->raft.commit_index;
	memset(w, 0, sizeof w);
	/* 20 at once: one barrier. */
	for (k = 0; k < 20; k++) {
		w[k].req.data = &w[k];
		assert_int_equal(consensus_barrier(c, &w[k].req, barrier_cb),
				 0);
	}
	/* 20 more while it is in flight: they wait for the next one. */
	cl_run_until(cl, barrier_issued, c, CL_DEADLINE_MS);
	for (k = 20; k < 40; k++) {
		w[k].req.data = &w[k];
		assert_int_equal(consensus_barrier(c, &w[k].req, barrier_cb),
				 0);
	}
	cl_run_until(cl, waiters_done, &ws, CL_DEADLINE_MS);
	for (k = 0; k < 40; k++)
		assert_int_equal(w[k].status, 0);
	assert_true(c->i->barriers_issued - issued <= 2);
	assert_true(c->i->raft.commit_index - commit <= 2);
	assert_true(c->i->raft.commit_index - commit >= 1);
	teardown(cl);
}

static bool new_leader_among(void *arg)
{
	struct cluster *cl = arg;
	unsigned k;

	for (k = 0; k < CL_NODES; k++)
		if (cl->nodes[k].running &&
		    consensus_is_leader(&cl->nodes[k].cons))
			return true;
	return false;
}

static void closing_leader_hands_over(void **state)
{
	struct cluster *cl = setup("cons-close", PORT(10));
	struct cl_append *before = cl_append_new("h", tu_any(), 1, 1);
	struct cl_append *inflight[10];
	struct cl_append *after = cl_append_new("h", tu_any(), 1, 2);
	unsigned leader;
	unsigned k;

	(void)state;
	cl_append_client(before, 21, 1);
	cl_append_client(after, 21, 100);
	cl_start_all(cl);
	assert_int_equal(cl_append_sync(cl, before), STORE_COMMITTED);
	leader = cl_leader(cl);
	for (k = 0; k < 10; k++) {
		inflight[k] = cl_append_new("h", tu_any(), 1, 10 + k);
		cl_append_client(inflight[k], 21, 2 + k);
		assert_int_equal(cl_submit(cl, leader, inflight[k]), 0);
	}
	/* Closing drains what is in flight, then transfers leadership. */
	cl_stop(cl, leader);
	for (k = 0; k < 10; k++) {
		assert_true(inflight[k]->done);
		assert_int_equal(inflight[k]->status, 0);
		assert_int_equal(inflight[k]->req.outcome, STORE_COMMITTED);
	}
	/* The transfer completed before the node closed: another node
	 * leads already, with no election timeout waited for. */
	assert_true(new_leader_among(cl));
	assert_int_equal(cl_append_sync(cl, after), STORE_COMMITTED);
	cl_converge(cl);
	/* Every one of the 12 transactions is in the log exactly once. */
	assert_int_equal(
		store_last_position(&cl->nodes[other(leader, 0)].store), 12);
	for (k = 0; k < 10; k++)
		cl_append_free(inflight[k]);
	cl_append_free(before);
	cl_append_free(after);
	teardown(cl);
}

static void appends_are_refused_when_invalid_or_closing(void **state)
{
	struct cluster *cl = setup("cons-invalid", PORT(11));
	struct cl_append *bad = cl_append_new("ok", tu_any(), 1, 1);
	struct cl_append *a = cl_append_new("ok", tu_any(), 1, 2);
	struct consensus_barrier b;
	struct store_part part;
	unsigned leader;

	(void)state;
	cl_start_all(cl);
	leader = cl_leader(cl);
	/* An invalid stream name is refused with a message, nothing
	 * proposed. */
	part = bad->t->parts[0];
	part.stream = "bad\nname";
	part.stream_len = 8;
	bad->req.txn.parts = &part;
	assert_int_equal(cl_submit(cl, leader, bad), CONSENSUS_EINVALID);
	assert_true(strlen(cl->nodes[leader].cons.errmsg) > 0);
	assert_non_null(strstr(cl->nodes[leader].cons.errmsg, "append"));
	/* An append accepted before the close is still proposed while the
	 * leader drains; new appends and barriers are refused. */
	assert_int_equal(cl_submit(cl, leader, a), 0);
	cl_stop_begin(cl, leader);
	assert_int_equal(cl_submit(cl, leader, bad), CONSENSUS_ESHUTDOWN);
	assert_int_equal(consensus_barrier(&cl->nodes[leader].cons, &b, NULL),
			 CONSENSUS_ESHUTDOWN);
	assert_false(consensus_is_leader(&cl->nodes[leader].cons));
	cl_wait(cl, a);
	assert_int_equal(a->status, 0);
	assert_int_equal(a->req.outcome, STORE_COMMITTED);
	cl_append_free(bad);
	cl_append_free(a);
	teardown(cl);
}

#define T(name) cmocka_unit_test(name)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(leader_elected_and_appends_apply_identically),
		T(conflicting_expected_version_is_answered_at_once),
		T(duplicate_after_commit_is_answered_from_dedup),
		T(retry_joins_its_inflight_original),
		T(appends_of_one_iteration_share_one_entry),
		T(entry_size_cap_splits_batches),
		T(pipeline_bound_reports_full_then_ready),
		T(follower_redirects_to_the_leader),
		T(member_table_holds_every_address),
		T(concurrent_barriers_share_raft_barriers),
		T(closing_leader_hands_over),
		T(appends_are_refused_when_invalid_or_closing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
