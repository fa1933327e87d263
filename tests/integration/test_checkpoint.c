/* Consumer checkpoints and aggregate snapshots over the binary protocol,
 * through libcairn against a real three-node cluster: compare-and-set
 * semantics and idempotent retries of checkpoints, followers refusing
 * writes, a stream read that starts at the newest snapshot and returns the
 * tail after it, and cairn_consumer resuming from its checkpoint after a
 * clean stop (nothing repeated) and after a stop that saved nothing (at
 * most the unsaved tail repeated), never with a gap. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <uv.h>

#include "cluster.h"

/* This program's block of ports (23300-23499): one cluster per test. */
#define PORT_CAS      23300
#define PORT_SNAPSHOT 23330
#define PORT_CONSUMER 23360

/* How long a test waits for a consumer to reach a state. */
#define WAIT_MS 30000

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

/* Appends one event to @stream; returns its position. */
static uint64_t append1(cairn_client *cl, const char *stream, unsigned n)
{
	struct cairn_event_in in;
	struct cairn_part_result r;
	struct cairn_error err;
	char data[32];
	int rv;

	snprintf(data, sizeof data, "{\"n\":%u}", n);
	memset(&in, 0, sizeof in);
	in.type = "Happened";
	in.data = data;
	in.data_len = strlen(data);
	rv = cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &in, 1, &r,
			      &err);
	if (rv != 0)
		fail_msg("append to %s: %s", stream, err.message);
	return r.last_position;
}

#ifdef CAIRN_CLI_PATH
/* Runs `cairn --seeds SEEDS ARGS...`; returns its exit code, its standard
 * output in @out. */
static int cli(const struct cluster *c, char *out, size_t cap,
	       const char *const *args)
{
	char *argv[16];
	char err[1024];
	int n = 0;
	int rv;

	argv[n++] = (char *)CAIRN_CLI_PATH;
	argv[n++] = (char *)"--seeds";
	argv[n++] = (char *)c->seeds;
	for (; *args != NULL && n < 15; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	rv = cluster_run(argv, NULL, out, cap, err, sizeof err, 30000);
	if (rv != 0)
		printf("cairn %s %s: exit %d: %s", argv[3],
		       n > 4 ? argv[4] : "", rv, err);
	return rv;
}
#endif

static uint64_t cp_get(cairn_client *cl, const char *name, bool *found)
{
	struct cairn_read_options ro = { CAIRN_CONSISTENCY_LEADER, 0, 0 };
	struct cairn_error err;
	uint64_t v = 77;
	int rv;

	rv = cairn_checkpoint_get(cl, name, &ro, &v, found, &err);
	if (rv != 0)
		fail_msg("checkpoint get %s: %s", name, err.message);
	return v;
}

static void cp_set_ok(cairn_client *cl, const char *name, uint64_t value,
		      int kind, uint64_t expected)
{
	struct cairn_error err;
	int rv;

	rv = cairn_checkpoint_set(cl, name, value, kind, expected, NULL, NULL,
				  &err);
	if (rv != 0)
		fail_msg("checkpoint set %s := %" PRIu64 ": %s", name, value,
			 err.message);
}

static void cp_set_conflict(cairn_client *cl, const char *name, uint64_t value,
			    int kind, uint64_t expected, uint64_t actual)
{
	struct cairn_error err;
	int rv;

	rv = cairn_checkpoint_set(cl, name, value, kind, expected, NULL, NULL,
				  &err);
	if (rv != CAIRN_EWRONG_EXPECTED_VERSION)
		fail_msg("checkpoint set %s (kind %d, expected %" PRIu64
			 "): %d (%s), wanted a conflict",
			 name, kind, expected, rv, err.message);
	assert_int_equal(err.actual_version, actual);
}

static void checkpoint_compare_and_set_over_the_wire(void **state)
{
	struct cluster *c = *state;
	struct cairn_read_options ro;
	struct cairn_append_key key;
	struct cairn_error err;
	unsigned leader;
	unsigned follower;
	cairn_client *cl;
	cairn_client *fl;
	bool found = true;
	bool dup = true;
	int rv;

	cluster_start(c, "checkpoint-cas", 3, PORT_CAS);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % c->n;
	cl = cluster_client(c, -1, false, 0);
	memset(&ro, 0, sizeof ro);

	/* Absent: not found, value 0; a CAS expecting a value sees 0. */
	assert_int_equal(cp_get(cl, "billing", &found), 0);
	assert_false(found);
	cp_set_conflict(cl, "billing", 3, CAIRN_CHECKPOINT_VALUE, 1, 0);

	/* Created only once with ABSENT. */
	cp_set_ok(cl, "billing", 5, CAIRN_CHECKPOINT_ABSENT, 0);
	assert_int_equal(cp_get(cl, "billing", &found), 5);
	assert_true(found);
	cp_set_conflict(cl, "billing", 6, CAIRN_CHECKPOINT_ABSENT, 0, 5);

	/* Moves only from the value it expects. */
	cp_set_conflict(cl, "billing", 9, CAIRN_CHECKPOINT_VALUE, 4, 5);
	assert_int_equal(cp_get(cl, "billing", NULL), 5);
	cp_set_ok(cl, "billing", 9, CAIRN_CHECKPOINT_VALUE, 5);
	assert_int_equal(cp_get(cl, "billing", NULL), 9);

	/* Unconditional, even backwards. */
	cp_set_ok(cl, "billing", 2, CAIRN_CHECKPOINT_ANY, 0);
	assert_int_equal(cp_get(cl, "billing", NULL), 2);

	/* The same key twice applies once: the second is a duplicate and
	 * changes nothing, even after another write moved the value. */
	memset(&key, 0, sizeof key);
	key.has_key = true;
	cairn_uuid(key.client_id);
	key.seq = 100;
	rv = cairn_checkpoint_set(cl, "billing", 20, CAIRN_CHECKPOINT_ANY, 0,
				  &key, &dup, &err);
	assert_int_equal(rv, 0);
	assert_false(dup);
	cp_set_ok(cl, "billing", 21, CAIRN_CHECKPOINT_ANY, 0);
	rv = cairn_checkpoint_set(cl, "billing", 20, CAIRN_CHECKPOINT_ANY, 0,
				  &key, &dup, &err);
	assert_int_equal(rv, 0);
	assert_true(dup);
	assert_int_equal(cp_get(cl, "billing", NULL), 21);

	/* Names follow the stream name rules. */
	rv = cairn_checkpoint_set(cl, "", 1, CAIRN_CHECKPOINT_ANY, 0, NULL,
				  NULL, &err);
	assert_int_equal(rv, CAIRN_EINVALID);
	rv = cairn_checkpoint_get(cl, "", NULL, NULL, NULL, &err);
	assert_int_equal(rv, CAIRN_EINVALID);

	/* A follower asked alone refuses writes with the leader's address;
	 * a client that may follow redirects gets there. */
	fl = cluster_client(c, (int)follower, true, 0);
	rv = cairn_checkpoint_set(fl, "billing", 30, CAIRN_CHECKPOINT_ANY, 0,
				  NULL, NULL, &err);
	assert_int_equal(rv, CAIRN_ENOT_LEADER);
	assert_string_equal(err.leader, c->nodes[leader].client_address);
	rv = cairn_snapshot_put(fl, "order-1", 1, "x", 1, NULL, &err);
	assert_int_equal(rv, CAIRN_ENOT_LEADER);
	cairn_close(fl);
	fl = cluster_client(c, (int)follower, false, 0);
	cp_set_ok(fl, "billing", 31, CAIRN_CHECKPOINT_VALUE, 21);
	cairn_close(fl);
	/* A state write moves no position: an event appended after it
	 * gives a position that every node serves it at (at-least reads). */
	ro.consistency = CAIRN_CONSISTENCY_AT_LEAST;
	ro.min_position = append1(cl, "marker-1", 1);
	for (unsigned k = 0; k < c->n; k++) {
		cairn_client *one = cluster_client(c, (int)k, true, 0);
		uint64_t v = 0;

		rv = cairn_checkpoint_get(one, "billing", &ro, &v, &found,
					  &err);
		if (rv != 0)
			fail_msg("node %u: %s", c->nodes[k].id, err.message);
		assert_true(found);
		assert_int_equal(v, 31);
		cairn_close(one);
	}
#ifdef CAIRN_CLI_PATH
	{
		char out[4096];

		assert_int_equal(
			cli(c, out, sizeof out,
			    (const char *[]){ "checkpoint", "set", "cli-1", "5",
					      "--expect", "absent", NULL }),
			0);
		assert_string_equal(out, "ok\n");
		assert_int_equal(
			cli(c, out, sizeof out,
			    (const char *[]){ "checkpoint", "set", "cli-1", "6",
					      "--expect", "absent", NULL }),
			3);
		assert_int_equal(
			cli(c, out, sizeof out,
			    (const char *[]){ "checkpoint", "set", "cli-1", "6",
					      "--expect", "5", NULL }),
			0);
		assert_int_equal(cli(c, out, sizeof out,
				     (const char *[]){ "checkpoint", "get",
						       "cli-1", NULL }),
				 0);
		assert_string_equal(out, "value 6\n");
		assert_int_equal(cli(c, out, sizeof out,
				     (const char *[]){ "checkpoint", "get",
						       "cli-2", NULL }),
				 0);
		assert_string_equal(out, "absent\n");
		assert_int_equal(
			cli(c, out, sizeof out,
			    (const char *[]){ "checkpoint", "get", NULL }),
			2);
	}
#endif
	cairn_close(cl);
	cluster_check_logs(c);
	cluster_passed(c);
}

static void read_with_snapshot_returns_the_newest_snapshot_and_the_tail(
	void **state)
{
	struct cluster *c = *state;
	struct cairn_snapshot snap;
	struct cairn_page page;
	struct cairn_error err;
	cairn_client *cl;
	int rv;

	cluster_start(c, "checkpoint-snapshot", 3, PORT_SNAPSHOT);
	cluster_wait_leader(c, 0);
	cl = cluster_client(c, -1, false, 0);
	for (unsigned i = 1; i <= 10; i++)
		append1(cl, "order-1", i);
	append1(cl, "order-2", 1);

	rv = cairn_snapshot_put(cl, "order-1", 4, "state@4", 7, NULL, &err);
	assert_int_equal(rv, 0);
	rv = cairn_snapshot_put(cl, "order-1", 7, "state@7", 7, NULL, &err);
	assert_int_equal(rv, 0);
	/* Past the head: refused with the head. */
	rv = cairn_snapshot_put(cl, "order-1", 11, "x", 1, NULL, &err);
	assert_int_equal(rv, CAIRN_EWRONG_EXPECTED_VERSION);
	assert_int_equal(err.actual_version, 10);
	/* Version 0 never reaches the wire. */
	rv = cairn_snapshot_put(cl, "order-1", 0, "x", 1, NULL, &err);
	assert_int_equal(rv, CAIRN_EARG);

	rv = cairn_read_stream_with_snapshot(cl, "order-1", NULL, &snap, &page,
					     &err);
	if (rv != 0)
		fail_msg("read with snapshot: %s", err.message);
	assert_int_equal(snap.version, 7);
	assert_int_equal(snap.len, 7);
	assert_memory_equal(snap.data, "state@7", 7);
	assert_int_equal(page.n, 3);
	for (size_t i = 0; i < page.n; i++)
		assert_int_equal(page.events[i].version, 8 + i);
	assert_true(page.end);
	cairn_page_free(&page);
	cairn_snapshot_free(&snap);

	/* At or below a version: the older one. */
	rv = cairn_snapshot_get(cl, "order-1", 6, NULL, &snap, &err);
	assert_int_equal(rv, 0);
	assert_int_equal(snap.version, 4);
	assert_memory_equal(snap.data, "state@4", 7);
	cairn_snapshot_free(&snap);

	/* No snapshot: version 0 and the whole stream. */
	rv = cairn_read_stream_with_snapshot(cl, "order-2", NULL, &snap, &page,
					     &err);
	assert_int_equal(rv, 0);
	assert_int_equal(snap.version, 0);
	assert_null(snap.data);
	assert_int_equal(page.n, 1);
	assert_int_equal(page.events[0].version, 1);
	cairn_page_free(&page);
	cairn_snapshot_free(&snap);

	/* An empty snapshot is a snapshot. */
	rv = cairn_snapshot_put(cl, "order-2", 1, NULL, 0, NULL, &err);
	assert_int_equal(rv, 0);
	rv = cairn_snapshot_get(cl, "order-2", UINT64_MAX, NULL, &snap, &err);
	assert_int_equal(rv, 0);
	assert_int_equal(snap.version, 1);
	assert_int_equal(snap.len, 0);
	cairn_snapshot_free(&snap);

#ifdef CAIRN_CLI_PATH
	{
		char out[4096];

		assert_int_equal(
			cli(c, out, sizeof out,
			    (const char *[]){ "snapshot", "put", "order-1", "9",
					      "--data", "state@9", NULL }),
			0);
		assert_string_equal(out, "ok\n");
		assert_int_equal(cli(c, out, sizeof out,
				     (const char *[]){ "snapshot", "get",
						       "order-1", NULL }),
				 0);
		assert_string_equal(out, "version 9\nstate@9\n");
		assert_int_equal(
			cli(c, out, sizeof out,
			    (const char *[]){ "snapshot", "get", "order-1",
					      "--max-version", "5", NULL }),
			0);
		assert_string_equal(out, "version 4\nstate@4\n");
		assert_int_equal(
			cli(c, out, sizeof out,
			    (const char *[]){ "snapshot", "put", "order-1",
					      "99", "--data", "x", NULL }),
			3);
		assert_int_equal(cli(c, out, sizeof out,
				     (const char *[]){ "snapshot", "get",
						       "order-3", NULL }),
				 0);
		assert_string_equal(out, "none\n");
	}
#endif

	cairn_close(cl);
	cluster_check_logs(c);
	cluster_passed(c);
}

/* What a consumer's callback saw. */
struct seen {
	uv_mutex_t mu;
	uint64_t pos[256]; /* positions in delivery order */
	size_t n;
	bool live_seen;      /* some event came with live true */
	bool live_regressed; /* live went back to false */
};

static void on_event(void *arg, const struct cairn_event *e, bool live)
{
	struct seen *s = arg;

	uv_mutex_lock(&s->mu);
	if (s->n < sizeof s->pos / sizeof s->pos[0])
		s->pos[s->n] = e->position;
	s->n++;
	if (live)
		s->live_seen = true;
	else if (s->live_seen)
		s->live_regressed = true;
	uv_mutex_unlock(&s->mu);
}

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof *s);
	assert_int_equal(uv_mutex_init(&s->mu), 0);
}

/* Waits until @s saw @n events. */
static void wait_seen(struct seen *s, size_t n)
{
	uint64_t until = now_ms() + WAIT_MS;
	size_t got;

	for (;;) {
		uv_mutex_lock(&s->mu);
		got = s->n;
		uv_mutex_unlock(&s->mu);
		if (got >= n)
			return;
		if (now_ms() > until)
			fail_msg("consumer saw %zu events of %zu", got, n);
		sleep_ms(10);
	}
}

/* Waits until checkpoint @name holds @want. */
static void wait_checkpoint(cairn_client *cl, const char *name, uint64_t want)
{
	uint64_t until = now_ms() + WAIT_MS;
	uint64_t v;

	for (;;) {
		v = cp_get(cl, name, NULL);
		if (v == want)
			return;
		if (now_ms() > until)
			fail_msg("checkpoint %s is %" PRIu64 ", want %" PRIu64,
				 name, v, want);
		sleep_ms(20);
	}
}

static cairn_consumer *start(cairn_client *cl, const char *name,
			     uint32_t every_events, unsigned every_ms,
			     struct seen *s)
{
	struct cairn_subscribe_options o;
	struct cairn_error err;
	cairn_consumer *k;
	int rv;

	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_CATEGORY;
	o.target = "job";
	o.from_now = true; /* ignored: the checkpoint decides */
	rv = cairn_consumer_start(cl, name, &o, every_events, every_ms,
				  on_event, s, &k, &err);
	if (rv != 0)
		fail_msg("consumer start %s: %s", name, err.message);
	return k;
}

static void consumer_resumes_from_its_checkpoint_without_a_gap(void **state)
{
	struct cluster *c = *state;
	struct cairn_error err;
	struct seen a, b, d, e, t;
	uint64_t pos[40];
	size_t last;
	cairn_consumer *k;
	cairn_client *cl;
	size_t i;
	int rv;

	cluster_start(c, "checkpoint-consumer", 3, PORT_CONSUMER);
	cluster_wait_leader(c, 0);
	cl = cluster_client(c, -1, false, 0);
	/* Other streams interleave: the category filter skips them. */
	for (i = 0; i < 12; i++) {
		pos[i] = append1(cl, i % 2 ? "job-1" : "job-2", (unsigned)i);
		append1(cl, "other-1", (unsigned)i);
	}

	/* A processes the 12, is stopped: the checkpoint is the 12th. */
	seen_init(&a);
	k = start(cl, "worker", 5, 0, &a);
	wait_seen(&a, 12);
	rv = cairn_consumer_stop(k, &err);
	if (rv != 0)
		fail_msg("consumer stop: %s", err.message);
	assert_int_equal(a.n, 12);
	for (i = 0; i < 12; i++)
		assert_int_equal(a.pos[i], pos[i]);
	assert_false(a.live_regressed);
	assert_int_equal(cp_get(cl, "worker", NULL), pos[11]);

	/* B continues with the next events: none repeated, none missed. */
	for (i = 12; i < 20; i++)
		pos[i] = append1(cl, "job-1", (unsigned)i);
	seen_init(&b);
	k = start(cl, "worker", 5, 0, &b);
	wait_seen(&b, 8);
	rv = cairn_consumer_stop(k, &err);
	assert_int_equal(rv, 0);
	assert_int_equal(b.n, 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(b.pos[i], pos[12 + i]);
	assert_int_equal(cp_get(cl, "worker", NULL), pos[19]);

	/* D saves every 6 events and is dropped after 20 as if its process
	 * died: the checkpoint stays at the 18th. */
	seen_init(&d);
	k = start(cl, "crashy", 6, 0, &d);
	wait_seen(&d, 20);
	wait_checkpoint(cl, "crashy", pos[17]);
	cairn_consumer_drop(k);
	assert_int_equal(d.n, 20);
	assert_int_equal(cp_get(cl, "crashy", NULL), pos[17]);

	/* E restarts: the unsaved tail (19th, 20th) again, then the new
	 * events, in order, without a gap. */
	for (i = 20; i < 25; i++)
		pos[i] = append1(cl, "job-2", (unsigned)i);
	seen_init(&e);
	k = start(cl, "crashy", 6, 0, &e);
	wait_seen(&e, 7);
	/* Events appended once it caught up come with live set: append one
	 * at a time until one does (the first may still be caught up). */
	for (i = 25; i < 35; i++) {
		bool live;

		pos[i] = append1(cl, "job-1", (unsigned)i);
		wait_seen(&e, i - 18 + 1);
		uv_mutex_lock(&e.mu);
		live = e.live_seen;
		uv_mutex_unlock(&e.mu);
		if (live)
			break;
	}
	assert_true(i < 35);
	rv = cairn_consumer_stop(k, &err);
	assert_int_equal(rv, 0);
	assert_int_equal(e.n, i - 18 + 1);
	for (size_t j = 0; j < e.n; j++)
		assert_int_equal(e.pos[j], pos[18 + j]);
	assert_false(e.live_regressed);
	assert_int_equal(cp_get(cl, "crashy", NULL), pos[i]);

	/* By time alone: saved within the period while it keeps running. */
	last = i;
	seen_init(&t);
	k = start(cl, "timed", 0, 100, &t);
	wait_seen(&t, last + 1);
	wait_checkpoint(cl, "timed", pos[last]);
	cairn_consumer_drop(k);

	cairn_close(cl);
	cluster_check_logs(c);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			checkpoint_compare_and_set_over_the_wire, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			read_with_snapshot_returns_the_newest_snapshot_and_the_tail,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			consumer_resumes_from_its_checkpoint_without_a_gap,
			setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
