/* The three-node test harness of consensus/; see cluster.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cluster.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *join(const char *a, const char *b)
{
	size_t len = strlen(a) + strlen(b) + 2;
	char *s = malloc(len);

	assert_non_null(s);
	snprintf(s, len, "%s/%s", a, b);
	return s;
}

void cl_init(struct cluster *cl, const char *tag, int port_base)
{
	unsigned k;

	memset(cl, 0, sizeof *cl);
	assert_int_equal(uv_loop_init(&cl->loop), 0);
	cl->dir = tu_tempdir(tag);
	cl->port_base = port_base;
	cl->election_timeout_ms = 1000;
	cl->heartbeat_timeout_ms = 100;
	for (k = 0; k < CL_NODES; k++) {
		struct consensus_member *p = &cl->peers[k];
		struct cl_node *n = &cl->nodes[k];
		char name[32];

		p->id = k + 1;
		snprintf(p->raft_address, sizeof p->raft_address,
			 "127.0.0.1:%d", port_base + (int)k);
		snprintf(p->client_address, sizeof p->client_address,
			 "127.0.0.1:%d", port_base + 3 + (int)k);
		snprintf(p->http_address, sizeof p->http_address,
			 "127.0.0.1:%d", port_base + 6 + (int)k);
		p->role = 1;
		n->cl = cl;
		n->k = k;
		n->id = k + 1;
		snprintf(name, sizeof name, "node%u-store", k + 1);
		n->store_dir = join(cl->dir, name);
		snprintf(name, sizeof name, "node%u-raft", k + 1);
		n->raft_dir = join(cl->dir, name);
	}
}

static void on_applied(void *arg, uint64_t last_position)
{
	struct cl_node *n = arg;

	n->applied_position = last_position;
	n->on_applied_calls++;
}

static void on_pipeline_ready(void *arg)
{
	struct cl_node *n = arg;

	n->pipeline_ready_calls++;
}

void cl_start(struct cluster *cl, unsigned k)
{
	struct cl_node *n = &cl->nodes[k];
	struct consensus_config cfg;
	int rv;

	assert_false(n->running);
	tu_open(&n->store, n->store_dir);
	memset(&cfg, 0, sizeof cfg);
	cfg.id = n->id;
	cfg.dir = n->raft_dir;
	cfg.raft_address = cl->peers[k].raft_address;
	cfg.client_address = cl->peers[k].client_address;
	cfg.http_address = cl->peers[k].http_address;
	cfg.peers = cl->peers;
	cfg.n_peers = CL_NODES;
	cfg.election_timeout_ms = cl->election_timeout_ms;
	cfg.heartbeat_timeout_ms = cl->heartbeat_timeout_ms;
	cfg.snapshot_threshold = cl->snapshot_threshold;
	cfg.snapshot_trailing = cl->snapshot_trailing;
	cfg.entry_bytes_max = cl->entry_bytes_max;
	cfg.inflight_entries_max = cl->inflight_entries_max;
	cfg.on_applied = on_applied;
	cfg.on_pipeline_ready = on_pipeline_ready;
	cfg.arg = n;
	rv = consensus_start(&n->cons, &cl->loop, &n->store, &cfg);
	if (rv != 0)
		fail_msg("consensus_start(node %u): %s", k + 1, n->cons.errmsg);
	n->running = true;
}

void cl_start_all(struct cluster *cl)
{
	unsigned k;

	for (k = 0; k < CL_NODES; k++)
		cl_start(cl, k);
}

static void closed_cb(struct consensus *c)
{
	struct cl_node *n =
		(struct cl_node *)((char *)c - offsetof(struct cl_node, cons));

	assert_null(c->i);
	n->closing = false;
}

static bool node_closed(void *arg)
{
	struct cl_node *n = arg;

	return !n->closing;
}

void cl_stop_begin(struct cluster *cl, unsigned k)
{
	struct cl_node *n = &cl->nodes[k];

	assert_true(n->running);
	assert_false(n->closing);
	n->closing = true;
	consensus_close(&n->cons, closed_cb);
}

void cl_stop(struct cluster *cl, unsigned k)
{
	struct cl_node *n = &cl->nodes[k];

	assert_true(n->running);
	if (!n->closing)
		cl_stop_begin(cl, k);
	cl_run_until(cl, node_closed, n, CL_DEADLINE_MS);
	n->running = false;
	store_close(&n->store);
}

void cl_stop_all(struct cluster *cl)
{
	unsigned k;

	for (k = 0; k < CL_NODES; k++)
		if (cl->nodes[k].running)
			cl_stop(cl, k);
}

void cl_fini(struct cluster *cl)
{
	unsigned k;

	cl_stop_all(cl);
	/* Every handle of ours and libraft's is closed: the loop ends. */
	assert_int_equal(uv_run(&cl->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&cl->loop), 0);
	for (k = 0; k < CL_NODES; k++) {
		free(cl->nodes[k].store_dir);
		free(cl->nodes[k].raft_dir);
	}
	tu_rmdir(cl->dir);
}

/* Wakes the loop at least this often while a test polls. */
static void wake_cb(uv_timer_t *t)
{
	(void)t;
}

void cl_run_until(struct cluster *cl, bool (*pred)(void *arg), void *arg,
		  unsigned timeout_ms)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	uv_timer_t wake;

	uv_timer_init(&cl->loop, &wake);
	uv_timer_start(&wake, wake_cb, 20, 20);
	while (!pred(arg)) {
		if (mono_ms() > deadline) {
			uv_close((uv_handle_t *)&wake, NULL);
			uv_run(&cl->loop, UV_RUN_NOWAIT);
			fail_msg("condition not reached within %u ms",
				 timeout_ms);
		}
		uv_run(&cl->loop, UV_RUN_ONCE);
	}
	uv_close((uv_handle_t *)&wake, NULL);
	uv_run(&cl->loop, UV_RUN_NOWAIT);
}

struct until_time {
	uint64_t at;
};

static bool time_reached(void *arg)
{
	struct until_time *u = arg;

	return mono_ms() >= u->at;
}

void cl_run_for(struct cluster *cl, unsigned ms)
{
	struct until_time u = { mono_ms() + ms };

	cl_run_until(cl, time_reached, &u, ms + CL_DEADLINE_MS);
}

/* The running leader whose member table is complete, or -1. */
static int ready_leader(struct cluster *cl)
{
	unsigned k;

	for (k = 0; k < CL_NODES; k++) {
		struct cl_node *n = &cl->nodes[k];
		struct consensus_status s;
		unsigned m;
		bool complete = true;

		if (!n->running || n->closing || !consensus_is_leader(&n->cons))
			continue;
		if (n->cons.i->member_inflight)
			return -1;
		consensus_status(&n->cons, &s);
		for (m = 0; m < s.n_members; m++)
			if (members_find(n->cons.i, s.members[m].id) == NULL ||
			    s.members[m].client_address[0] == '\0')
				complete = false;
		return complete && s.n_members == CL_NODES ? (int)k : -1;
	}
	return -1;
}

static bool have_leader(void *arg)
{
	return ready_leader(arg) >= 0;
}

unsigned cl_leader(struct cluster *cl)
{
	cl_run_until(cl, have_leader, cl, CL_DEADLINE_MS);
	return (unsigned)ready_leader(cl);
}

uint64_t cl_digest(struct cluster *cl, unsigned k)
{
	uint64_t d = 0;
	int rv = store_digest(&cl->nodes[k].store,
			      STORE_CF_LOG | STORE_CF_VERSIONS | STORE_CF_DEDUP,
			      &d);

	if (rv != 0)
		fail_msg("store_digest: %s", cl->nodes[k].store.errmsg);
	return d;
}

static bool converged(void *arg)
{
	struct cluster *cl = arg;
	int first = -1;
	unsigned k;

	for (k = 0; k < CL_NODES; k++) {
		struct cl_node *n = &cl->nodes[k];

		if (!n->running)
			continue;
		/* Everything committed so far is applied here. */
		if (raft_last_applied(&n->cons.i->raft) <
		    n->cons.i->raft.commit_index)
			return false;
		if (first < 0) {
			first = (int)k;
			continue;
		}
		if (store_applied_index(&n->store) !=
			    store_applied_index(&cl->nodes[first].store) ||
		    store_last_position(&n->store) !=
			    store_last_position(&cl->nodes[first].store))
			return false;
	}
	for (k = 0; k < CL_NODES; k++)
		if (cl->nodes[k].running && (int)k != first &&
		    cl_digest(cl, k) != cl_digest(cl, (unsigned)first))
			return false;
	return true;
}

void cl_converge(struct cluster *cl)
{
	cl_run_until(cl, converged, cl, CL_DEADLINE_MS);
}

struct cl_append *cl_append_new(const char *stream, struct store_expect e,
				uint32_t n, uint64_t seed)
{
	const char *streams[2] = { stream, NULL };
	struct cl_append *a = calloc(1, sizeof *a);

	assert_non_null(a);
	a->t = tu_txn_make(streams, e, n, 16, seed);
	a->req.txn = a->t->txn;
	a->req.parts = a->parts;
	a->req.data = a;
	return a;
}

void cl_append_client(struct cl_append *a, uint8_t client, uint64_t seq)
{
	tu_txn_client(a->t, client, seq);
	a->req.txn = a->t->txn;
}

void cl_append_free(struct cl_append *a)
{
	if (a == NULL)
		return;
	tu_txn_free(a->t);
	free(a);
}

static void append_cb(struct consensus_append *req, int status)
{
	struct cl_append *a = req->data;

	assert_false(a->done);
	a->done = true;
	a->status = status;
}

int cl_submit(struct cluster *cl, unsigned k, struct cl_append *a)
{
	int rv;

	a->done = false;
	a->status = -1;
	a->req.data = a;
	rv = consensus_append(&cl->nodes[k].cons, &a->req, append_cb);
	if (rv != 0) {
		a->done = true;
		a->status = rv;
	}
	return rv;
}

static bool append_done(void *arg)
{
	struct cl_append *a = arg;

	return a->done;
}

void cl_wait(struct cluster *cl, struct cl_append *a)
{
	cl_run_until(cl, append_done, a, CL_DEADLINE_MS);
}

uint8_t cl_append_sync(struct cluster *cl, struct cl_append *a)
{
	uint64_t deadline = mono_ms() + CL_DEADLINE_MS;

	for (;;) {
		unsigned k = cl_leader(cl);
		int rv = cl_submit(cl, k, a);

		if (rv == 0) {
			cl_wait(cl, a);
			rv = a->status;
		}
		if (rv == 0 || rv == CONSENSUS_EDONE)
			return a->req.outcome;
		if (rv != CONSENSUS_EUNKNOWN_OUTCOME &&
		    rv != CONSENSUS_ENOT_LEADER && rv != CONSENSUS_EUNAVAILABLE)
			fail_msg("append: %s (%s)", consensus_strerror(rv),
				 cl->nodes[k].cons.errmsg);
		if (mono_ms() > deadline)
			fail_msg("append did not complete");
		cl_run_for(cl, 100);
	}
}
