/* Online membership changes on a real cluster: nodes that join with
 * `cairnd --join`, removals (the leader's included, after a transfer)
 * while a writer appends, replacing a failed node, the refusals of the
 * change rules (one change at a time, unknown id, taken id or address,
 * --min-voters, a follower's NOT_LEADER), `cairn leader transfer`, and a
 * leader that removes itself.
 * Ports 24900-25199: a block of 30 per test. */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

#ifndef CAIRN_CLI_PATH
#error "CAIRN_CLI_PATH (the cairn binary) must be defined by CMake"
#endif

#define PORTS_GROW     24900
#define PORTS_REPLACE  24930
#define PORTS_REFUSALS 24960
#define PORTS_TRANSFER 24990
#define PORTS_REMOVE   25020

/* Fails the test after printing the cluster's logs. */
#define cluster_fail(c, ...)                 \
	do {                                 \
		cluster_print_logs((c), 60); \
		fail_msg(__VA_ARGS__);       \
	} while (0)

/* Longest wait for a membership state the test asks for. */
#define WAIT_MS 60000

/* Acknowledged appends the writer can record. */
#define ACKS_MAX 200000

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* The status of the leader as some running node names it; returns the
 * leader's index or -1. */
static int leader_status(struct cluster *c, struct cairn_status *s)
{
	for (unsigned k = 0; k < c->n; k++) {
		if (c->nodes[k].pid == 0 || cluster_status(c, k, s, 1000) != 0)
			continue;
		if (s->role == CAIRN_ROLE_LEADER)
			return (int)k;
		for (unsigned j = 0; j < c->n; j++) {
			if (c->nodes[j].id == s->leader_id &&
			    c->nodes[j].pid != 0 &&
			    cluster_status(c, j, s, 1000) == 0 &&
			    s->role == CAIRN_ROLE_LEADER)
				return (int)j;
		}
	}
	return -1;
}

/* The role of member @id in @s: 0 standby, 1 voter, 2 spare, -1 absent. */
static int member_role(const struct cairn_status *s, uint64_t id)
{
	for (size_t m = 0; m < s->n_members; m++)
		if (s->members[m].id == id)
			return s->members[m].voter_role;
	return -1;
}

static int by_id(const void *a, const void *b)
{
	const struct cairn_member *x = a;
	const struct cairn_member *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* A compact text of @s's members in id order: "1:v,2:v,4:s". */
static void members_text(const struct cairn_status *s, char *out, size_t cap)
{
	struct cairn_member m[16];
	size_t n = s->n_members < 16 ? s->n_members : 16;
	size_t off = 0;

	memcpy(m, s->members, n * sizeof m[0]);
	qsort(m, n, sizeof m[0], by_id);
	out[0] = '\0';
	for (size_t k = 0; k < n && off < cap; k++)
		off += (size_t)snprintf(out + off, cap - off,
					"%s%" PRIu64 ":%c", k ? "," : "",
					m[k].id,
					m[k].voter_role == 1   ? 'v'
					: m[k].voter_role == 0 ? 's'
							       : 'x');
}

/* Waits until the leader lists exactly the members and roles @want (as
 * members_text writes them) and every member it lists that runs here
 * agrees on that leader. Returns the leader's index. */
static unsigned wait_members(struct cluster *c, const char *want)
{
	uint64_t deadline = cluster_now_ms() + WAIT_MS;
	struct cairn_status s;
	char seen[256] = "";

	for (;;) {
		int l = leader_status(c, &s);

		if (l >= 0) {
			members_text(&s, seen, sizeof seen);
			if (strcmp(seen, want) == 0)
				return (unsigned)l;
		}
		if (cluster_now_ms() > deadline)
			cluster_fail(c,
				     "members: want %s, the leader (%d) "
				     "lists %s",
				     want, l, seen);
		cluster_sleep_ms(100);
	}
}

/* A client on every address of nodes 1..@n of @c's port block. */
static cairn_client *client_on(const struct cluster *c, unsigned n,
			       unsigned deadline_ms)
{
	char seeds[512];
	size_t off = 0;
	unsigned base =
		(unsigned)atoi(strrchr(c->nodes[0].client_address, ':') + 1) -
		1;
	struct cairn_options o;
	struct cairn_error err;
	cairn_client *cl = NULL;

	for (unsigned k = 1; k <= n; k++)
		off += (size_t)snprintf(seeds + off, sizeof seeds - off,
					"%s127.0.0.1:%u", k > 1 ? "," : "",
					base + k);
	memset(&o, 0, sizeof o);
	o.deadline_ms = deadline_ms;
	if (cairn_open(seeds, &o, &cl, &err) != 0)
		fail_msg("open %s: %s", seeds, err.message);
	return cl;
}

/* Runs the CLI with @args (NULL terminated) against @seeds; returns its
 * exit code with its output in @out and @err. */
static int run_cli(const char *seeds, const char *const *args, char *out,
		   size_t out_cap, char *err, size_t err_cap)
{
	char *argv[16];
	size_t n = 0;

	argv[n++] = CAIRN_CLI_PATH;
	argv[n++] = "--seeds";
	argv[n++] = (char *)seeds;
	for (size_t i = 0; args[i] != NULL; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	return cluster_run(argv, NULL, out, out_cap, err, err_cap, 60000);
}

/* run_cli for a change expected to go through: "in progress" (exit 4)
 * is the documented answer to retry, e.g. while a joined node's own
 * promotion is still finishing after the member list already shows it a
 * voter. Retried until WAIT_MS have passed. */
static int run_change(const char *seeds, const char *const *args, char *out,
		      size_t out_cap, char *err, size_t err_cap)
{
	uint64_t deadline = cluster_now_ms() + WAIT_MS;
	int rv;

	for (;;) {
		rv = run_cli(seeds, args, out, out_cap, err, err_cap);
		if (rv != 4 || strstr(err, "in progress") == NULL ||
		    cluster_now_ms() > deadline)
			return rv;
		cluster_sleep_ms(100);
	}
}

/* cairn_member_remove, retried while the answer is "in progress" (a
 * joined node's promotion finishing), until WAIT_MS have passed. */
static int remove_member(cairn_client *admin, uint64_t id,
			 struct cairn_error *err)
{
	uint64_t deadline = cluster_now_ms() + WAIT_MS;
	int rv;

	for (;;) {
		rv = cairn_member_remove(admin, id, false, NULL, err);
		if (rv != CAIRN_ECHANGE_IN_PROGRESS ||
		    cluster_now_ms() > deadline)
			return rv;
		cluster_sleep_ms(100);
	}
}

static void append_some(struct cluster *c, const char *stream, unsigned n)
{
	cairn_client *cl = cluster_client(c, -1, false, 30000);
	struct cairn_event_in e;
	struct cairn_part_result r;
	struct cairn_error err;

	memset(&e, 0, sizeof e);
	e.type = "t";
	e.data = "{}";
	e.data_len = 2;
	for (unsigned i = 0; i < n; i++)
		if (cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &e, 1, &r,
				     &err) != 0)
			cluster_fail(c, "append: %s", err.message);
	cairn_close(cl);
}

/* Every running node holds the same global log; returns its length. */
static size_t check_same_logs(struct cluster *c)
{
	struct cluster_dump first;
	int first_k = -1;
	uint64_t pos = cluster_wait_converged(c, WAIT_MS);

	for (unsigned k = 0; k < c->n; k++) {
		struct cluster_dump d;
		char a[32], b[32];

		if (c->nodes[k].pid == 0)
			continue;
		cluster_dump_node(c, k, pos, &d);
		if (first_k < 0) {
			first = d;
			first_k = (int)k;
			continue;
		}
		snprintf(a, sizeof a, "node %u", c->nodes[first_k].id);
		snprintf(b, sizeof b, "node %u", c->nodes[k].id);
		cluster_dump_compare(&first, a, &d, b);
		cluster_dump_free(&d);
	}
	assert_true(first_k >= 0);
	{
		size_t n = first.n;

		cluster_dump_free(&first);
		return n;
	}
}

/* ------------------------------------------------------------------------
 * grow_and_shrink_under_load
 * ------------------------------------------------------------------------ */

struct writer {
	struct cluster *c;
	cairn_client *cl;
	volatile int stop;
	pthread_mutex_t mu;
	uint64_t n_acked;  /* acknowledged appends */
	uint64_t *acked;   /* owned: the sequence numbers acknowledged */
	uint64_t n_tried;  /* appends attempted */
	uint64_t failures; /* calls that returned an error */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct cairn_event_in e;
	struct cairn_part_result r;
	struct cairn_error err;
	char data[32];

	memset(&e, 0, sizeof e);
	e.type = "tick";
	for (uint64_t seq = 1; !w->stop && seq < ACKS_MAX; seq++) {
		int len = snprintf(data, sizeof data, "%" PRIu64, seq);

		e.data = data;
		e.data_len = (size_t)len;
		w->n_tried = seq;
		if (cairn_append_one(w->cl, "load", CAIRN_EXPECT_ANY, 0, &e, 1,
				     &r, &err) != 0) {
			w->failures++;
			continue;
		}
		pthread_mutex_lock(&w->mu);
		w->acked[w->n_acked++] = seq;
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

static uint64_t writer_acked(struct writer *w)
{
	uint64_t n;

	pthread_mutex_lock(&w->mu);
	n = w->n_acked;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* Waits until the writer has @more acknowledgements than now. */
static void writer_progress(struct cluster *c, struct writer *w, uint64_t more)
{
	uint64_t target = writer_acked(w) + more;
	uint64_t deadline = cluster_now_ms() + WAIT_MS;

	while (writer_acked(w) < target) {
		if (cluster_now_ms() > deadline)
			cluster_fail(c,
				     "the writer is stuck at %" PRIu64
				     " acknowledged appends",
				     writer_acked(w));
		cluster_sleep_ms(20);
	}
}

static void grow_and_shrink_under_load(void **state)
{
	struct cluster *c = calloc(1, sizeof *c);
	struct writer w;
	struct cairn_error err;
	struct cluster_dump d;
	pthread_t thread;
	cairn_client *admin;
	uint64_t new_leader = 0;
	unsigned leader;
	unsigned other;
	uint8_t *seen;

	(void)state;
	assert_non_null(c);
	cluster_start(c, "members_grow", 3, PORTS_GROW);
	cluster_wait_leader(c, 0);

	memset(&w, 0, sizeof w);
	w.c = c;
	w.cl = client_on(c, 5, 30000);
	w.acked = calloc(ACKS_MAX, sizeof *w.acked);
	assert_non_null(w.acked);
	pthread_mutex_init(&w.mu, NULL);
	assert_int_equal(pthread_create(&thread, NULL, writer_main, &w), 0);
	writer_progress(c, &w, 50);

	/* Grow: nodes 4 and 5 join through the three seeds. */
	cluster_node_start_join(c, 3, c->seeds);
	cluster_node_start_join(c, 4, c->seeds);
	wait_members(c, "1:v,2:v,3:v,4:v,5:v");
	assert_true(cluster_log_count(c, 3, "event=join_promoted") >= 1);
	assert_true(cluster_log_count(c, 4, "event=join_promoted") >= 1);
	assert_true(cluster_log_count(c, 3, "event=join_caught_up") >= 1);
	writer_progress(c, &w, 50);

	/* Shrink: hand leadership to node 4, then remove the old leader
	 * and another original node, and stop them. */
	admin = client_on(c, 5, 30000);
	leader = wait_members(c, "1:v,2:v,3:v,4:v,5:v");
	if (leader <= 2) {
		uint64_t deadline = cluster_now_ms() + WAIT_MS;
		int rv;

		while ((rv = cairn_leader_transfer(admin, 4, &new_leader,
						   &err)) ==
			       CAIRN_ECHANGE_IN_PROGRESS &&
		       cluster_now_ms() < deadline)
			cluster_sleep_ms(100);
		if (rv != 0)
			cluster_fail(c, "leader transfer: %s", err.message);
		assert_int_equal(new_leader, 4);
		other = leader == 0 ? 1 : 0;
	} else {
		leader = 0; /* node 4 or 5 leads already */
		other = 1;
	}
	if (remove_member(admin, c->nodes[leader].id, &err) != 0)
		cluster_fail(c, "remove %u: %s", c->nodes[leader].id,
			     err.message);
	if (remove_member(admin, c->nodes[other].id, &err) != 0)
		cluster_fail(c, "remove %u: %s", c->nodes[other].id,
			     err.message);
	cairn_close(admin);
	cluster_node_stop(c, leader);
	cluster_node_stop(c, other);
	{
		char want[64];
		size_t off = 0;

		for (unsigned k = 0; k < 5; k++)
			if (k != leader && k != other)
				off += (size_t)snprintf(
					want + off, sizeof want - off, "%s%u:v",
					off ? "," : "", k + 1);
		wait_members(c, want);
	}
	writer_progress(c, &w, 100);
	w.stop = 1;
	pthread_join(thread, NULL);
	cairn_close(w.cl);

	/* Every remaining node holds the same log, and it holds every
	 * acknowledged append exactly once. */
	check_same_logs(c);
	cluster_dump_node(c, 3, 0, &d);
	seen = calloc(ACKS_MAX, 1);
	assert_non_null(seen);
	for (size_t i = 0; i < d.n; i++) {
		char text[32];
		uint64_t seq;

		if (strcmp(d.events[i].stream, "load") != 0)
			continue;
		snprintf(text, sizeof text, "%.*s", (int)d.events[i].data_len,
			 (const char *)d.events[i].data);
		seq = strtoull(text, NULL, 10);
		assert_true(seq > 0 && seq < ACKS_MAX);
		if (seen[seq])
			cluster_fail(c,
				     "append %" PRIu64 " is in the log twice",
				     seq);
		seen[seq] = 1;
	}
	for (uint64_t i = 0; i < w.n_acked; i++)
		if (!seen[w.acked[i]])
			cluster_fail(c,
				     "acknowledged append %" PRIu64
				     " is not in the log",
				     w.acked[i]);
	print_message("grow_and_shrink: %" PRIu64 " acknowledged, %" PRIu64
		      " failed calls, %zu events in the log\n",
		      w.n_acked, w.failures, d.n);
	cluster_dump_free(&d);
	free(seen);
	free(w.acked);
	pthread_mutex_destroy(&w.mu);
	cluster_stop_clean(c);
	cluster_passed(c);
	cluster_teardown(c);
	free(c);
}

/* ------------------------------------------------------------------------
 * replace_failed_node
 * ------------------------------------------------------------------------ */

static void replace_failed_node(void **state)
{
	struct cluster *c = calloc(1, sizeof *c);
	char out[4096], errs[4096], id[16], seeds[256];
	unsigned leader;
	unsigned f;
	int rv;

	(void)state;
	assert_non_null(c);
	cluster_start(c, "members_replace", 3, PORTS_REPLACE);
	leader = cluster_wait_leader(c, 0);
	append_some(c, "before", 50);
	f = leader == 2 ? 1 : 2;
	cluster_node_kill(c, f);
	snprintf(id, sizeof id, "%u", c->nodes[f].id);
	snprintf(seeds, sizeof seeds, "%s,%s", c->nodes[leader].client_address,
		 c->nodes[3 - leader - f].client_address);

	/* --min-voters 3 (the default) refuses to go down to two voters. */
	rv = run_cli(seeds,
		     (const char *const[]){ "members", "remove", id, NULL },
		     out, sizeof out, errs, sizeof errs);
	if (rv != 5 || strstr(errs, "below the minimum of 3") == NULL)
		cluster_fail(c, "remove without --force: exit %d, stderr %s",
			     rv, errs);
	rv = run_change(seeds,
			(const char *const[]){ "members", "remove", id,
					       "--force", NULL },
			out, sizeof out, errs, sizeof errs);
	if (rv != 0)
		cluster_fail(c, "remove --force: exit %d, stderr %s", rv, errs);
	wait_members(c, f == 1 ? "1:v,3:v" : "1:v,2:v");

	/* The node comes back empty and joins again. */
	cluster_node_wipe(c, f);
	cluster_node_start_join(c, f, seeds);
	wait_members(c, "1:v,2:v,3:v");
	assert_true(cluster_log_count(c, f, "event=join_promoted") >= 1);
	append_some(c, "after", 50);
	assert_int_equal(check_same_logs(c), 100);
	cluster_stop_clean(c);
	cluster_passed(c);
	cluster_teardown(c);
	free(c);
}

/* ------------------------------------------------------------------------
 * refusals
 * ------------------------------------------------------------------------ */

struct promoter {
	cairn_client *cl;
	int rv;
	struct cairn_error err;
};

static void *promote_main(void *arg)
{
	struct promoter *p = arg;

	p->rv = cairn_member_promote(p->cl, 6, NULL, &p->err);
	return NULL;
}

/* Expects @rv to be @code with @text in the message, and the members to
 * be @want still. */
static void expect_refused(struct cluster *c, const char *what, int rv,
			   const struct cairn_error *err, int code,
			   const char *text, const char *want)
{
	if (rv != code || strstr(err->message, text) == NULL)
		cluster_fail(c, "%s: got %d (%s), want %d with \"%s\"", what,
			     rv, err->message, code, text);
	wait_members(c, want);
}

static void refusals(void **state)
{
	struct cluster *c = calloc(1, sizeof *c);
	struct cairn_error err;
	struct promoter p;
	pthread_t thread;
	cairn_client *admin;
	char out[4096], errs[4096];
	unsigned leader;
	unsigned follower;
	bool observed = false;
	uint64_t deadline;
	int rv;

	(void)state;
	assert_non_null(c);
	cluster_start(c, "members_refusals", 3, PORTS_REFUSALS);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % 3;
	admin = client_on(c, 3, 10000);

	rv = cairn_member_remove(admin, 9, false, NULL, &err);
	expect_refused(c, "remove 9", rv, &err, CAIRN_ENO_SUCH_MEMBER,
		       "no member has id 9", "1:v,2:v,3:v");
	rv = cairn_member_add(admin, 2, "127.0.0.1:24999", "127.0.0.1:24998",
			      "", NULL, &err);
	expect_refused(c, "add 2", rv, &err, CAIRN_EALREADY_MEMBER,
		       "id 2 is already a member", "1:v,2:v,3:v");
	rv = cairn_member_add(admin, 7, c->nodes[1].raft_address,
			      "127.0.0.1:24998", "", NULL, &err);
	expect_refused(c, "add 7 at node 2's address", rv, &err,
		       CAIRN_EALREADY_MEMBER, "belongs to member 2",
		       "1:v,2:v,3:v");
	rv = cairn_member_demote(admin, c->nodes[follower].id, false, NULL,
				 &err);
	expect_refused(c, "demote below --min-voters", rv, &err,
		       CAIRN_EBELOW_MIN_VOTERS, "below the minimum of 3",
		       "1:v,2:v,3:v");

	/* A follower answers NOT_LEADER; the CLI follows it to the leader
	 * (which refuses the unknown id), and with --node it reports it. */
	rv = run_cli(c->nodes[follower].client_address,
		     (const char *const[]){ "members", "remove", "9", NULL },
		     out, sizeof out, errs, sizeof errs);
	if (rv != 5 || strstr(errs, "no member has id 9") == NULL)
		cluster_fail(c, "CLI through a follower: exit %d, %s", rv,
			     errs);
	rv = run_cli(c->seeds,
		     (const char *const[]){ "--node",
					    c->nodes[follower].client_address,
					    "members", "remove", "9", NULL },
		     out, sizeof out, errs, sizeof errs);
	if (rv != 4 || strstr(errs, "not the leader") == NULL ||
	    strstr(errs, c->nodes[leader].client_address) == NULL)
		cluster_fail(c, "CLI at a follower with --node: exit %d, %s",
			     rv, errs);

	/* One change at a time: member 6 (no process behind its address)
	 * is added as a standby, then its promotion waits for a catch-up
	 * that cannot happen; meanwhile another change is refused. The
	 * other change is a demotion that --min-voters refuses anyway, so
	 * that trying it before the promotion arrived changes nothing. */
	if (cairn_member_add(admin, 6, "127.0.0.1:24986", "127.0.0.1:24976", "",
			     NULL, &err) != 0)
		cluster_fail(c, "add 6: %s", err.message);
	wait_members(c, "1:v,2:v,3:v,6:s");
	memset(&p, 0, sizeof p);
	p.cl = client_on(c, 3, 4000);
	assert_int_equal(pthread_create(&thread, NULL, promote_main, &p), 0);
	deadline = cluster_now_ms() + 3000;
	while (!observed && cluster_now_ms() < deadline) {
		rv = cairn_member_demote(admin, c->nodes[follower].id, false,
					 NULL, &err);
		if (rv == CAIRN_ECHANGE_IN_PROGRESS)
			observed = strstr(err.message, "in progress") != NULL;
		else if (rv != CAIRN_EBELOW_MIN_VOTERS)
			cluster_fail(c, "demote during a promotion: %d %s", rv,
				     err.message);
		else
			cluster_sleep_ms(20);
	}
	pthread_join(thread, NULL);
	cairn_close(p.cl);
	if (!observed)
		cluster_fail(c,
			     "no CHANGE_IN_PROGRESS while a promotion was "
			     "in flight (promote: %d %s)",
			     p.rv, p.err.message);
	if (p.rv == 0)
		cluster_fail(c, "member 6 was promoted without a process");
	{
		struct cairn_status s;

		assert_true(leader_status(c, &s) >= 0);
		assert_int_equal(member_role(&s, 6), 0);
		assert_int_equal(member_role(&s, 1), 1);
		assert_int_equal(member_role(&s, 2), 1);
		assert_int_equal(member_role(&s, 3), 1);
	}
	cairn_close(admin);
	cluster_stop_clean(c);
	cluster_passed(c);
	cluster_teardown(c);
	free(c);
}

/* ------------------------------------------------------------------------
 * leader_transfer
 * ------------------------------------------------------------------------ */

static void leader_transfer(void **state)
{
	struct cluster *c = calloc(1, sizeof *c);
	char out[4096], errs[4096];
	unsigned leader;
	unsigned long picked = 0;
	int rv;

	(void)state;
	assert_non_null(c);
	cluster_start(c, "members_transfer", 3, PORTS_TRANSFER);
	leader = cluster_wait_leader(c, 0);
	if (leader == 1) {
		/* Node 2 leads already: move leadership away first. */
		rv = run_cli(c->seeds,
			     (const char *const[]){ "leader", "transfer", "1",
						    NULL },
			     out, sizeof out, errs, sizeof errs);
		if (rv != 0)
			cluster_fail(c, "transfer to 1: exit %d, %s", rv, errs);
		assert_int_equal(cluster_wait_leader(c, 0), 0);
	}
	rv = run_cli(c->seeds,
		     (const char *const[]){ "leader", "transfer", "2", NULL },
		     out, sizeof out, errs, sizeof errs);
	if (rv != 0 || strcmp(out, "leader 2\n") != 0)
		cluster_fail(c, "transfer 2: exit %d, out %s, err %s", rv, out,
			     errs);
	assert_int_equal(cluster_wait_leader(c, 0), 1);

	rv = run_cli(c->seeds,
		     (const char *const[]){ "leader", "transfer", NULL }, out,
		     sizeof out, errs, sizeof errs);
	if (rv != 0 || sscanf(out, "leader %lu", &picked) != 1 || picked == 2 ||
	    picked == 0 || picked > 3)
		cluster_fail(c, "transfer: exit %d, out %s, err %s", rv, out,
			     errs);
	assert_int_equal(cluster_wait_leader(c, 0), picked - 1);

	/* Transfer to a member that does not exist: refused. */
	rv = run_cli(c->seeds,
		     (const char *const[]){ "leader", "transfer", "9", NULL },
		     out, sizeof out, errs, sizeof errs);
	if (rv != 5 || strstr(errs, "no member has id 9") == NULL)
		cluster_fail(c, "transfer 9: exit %d, err %s", rv, errs);
	cluster_stop_clean(c);
	cluster_passed(c);
	cluster_teardown(c);
	free(c);
}

/* ------------------------------------------------------------------------
 * removing_the_leader_elects_another
 * ------------------------------------------------------------------------ */

static void removing_the_leader_elects_another(void **state)
{
	struct cluster *c = calloc(1, sizeof *c);
	char out[4096], errs[4096], id[16];
	struct cairn_status s;
	unsigned leader;
	unsigned now;
	int rv;

	(void)state;
	assert_non_null(c);
	cluster_start(c, "members_remove_leader", 3, PORTS_REMOVE);
	cluster_wait_leader(c, 0);
	append_some(c, "before", 20);
	cluster_node_start_join(c, 3, c->seeds);
	leader = wait_members(c, "1:v,2:v,3:v,4:v");

	/* The leader removes itself: it steps down once the configuration
	 * without it commits, and the others elect a new leader that
	 * deletes its record. */
	snprintf(id, sizeof id, "%u", c->nodes[leader].id);
	rv = run_change(c->seeds,
			(const char *const[]){ "members", "remove", id, NULL },
			out, sizeof out, errs, sizeof errs);
	if (rv != 0)
		cluster_fail(c, "remove the leader: exit %d, %s", rv, errs);
	cluster_node_stop(c, leader);
	{
		char want[64];
		size_t off = 0;

		for (unsigned k = 0; k < 4; k++)
			if (k != leader)
				off += (size_t)snprintf(
					want + off, sizeof want - off, "%s%u:v",
					off ? "," : "", k + 1);
		now = wait_members(c, want);
	}
	assert_true(now != leader);
	/* Every remaining node's member table dropped the old leader. */
	for (unsigned k = 0; k < 4; k++) {
		uint64_t deadline = cluster_now_ms() + WAIT_MS;

		if (k == leader)
			continue;
		for (;;) {
			bool listed = false;

			assert_int_equal(cluster_status(c, k, &s, 2000), 0);
			for (size_t m = 0; m < s.n_members; m++)
				listed = listed ||
					 s.members[m].id == c->nodes[leader].id;
			if (!listed)
				break;
			if (cluster_now_ms() > deadline)
				cluster_fail(c, "node %u still lists %u",
					     c->nodes[k].id,
					     c->nodes[leader].id);
			cluster_sleep_ms(50);
		}
	}
	append_some(c, "after", 20);
	assert_int_equal(check_same_logs(c), 40);
	cluster_stop_clean(c);
	cluster_passed(c);
	cluster_teardown(c);
	free(c);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grow_and_shrink_under_load),
		cmocka_unit_test(replace_failed_node),
		cmocka_unit_test(refusals),
		cmocka_unit_test(leader_transfer),
		cmocka_unit_test(removing_the_leader_elects_another),
	};

	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
