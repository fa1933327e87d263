/* Subscriptions through node failures, on real cairnd processes:
 *
 * - follower_subscriber_gets_every_event_once_across_leader_kill: a
 *   libcairn subscriber to the global log on a follower, while a writer
 *   appends without pause and the leader is killed (SIGKILL) and started
 *   again; afterwards the subscriber holds exactly the follower's global
 *   log, position 1, 2, 3, ... once each, with the same event ids.
 * - subscriber_resumes_on_another_node_when_its_node_dies: the node a
 *   subscriber is connected to is killed between two batches of appends;
 *   the library resumes on another node from the event after the last one
 *   delivered, so every appended event arrives once, in order. */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_subscribe_util.h"

/* This program's block of ports (see CMakeLists.txt). */
#define PORT_BASE 23200

/* Deadline of the writers' appends, retries included: far above an
 * election, so an append fails only when the cluster has no leader. */
#define APPEND_DEADLINE_MS 30000

/* Acknowledged appends to wait for before the kill, after it and after
 * the restart. */
#define ACKS_PHASE 40

/* An upper bound on every wait (they poll). */
#define WAIT_MS 120000

struct writer {
	struct cluster *c; /* borrowed */
	pthread_t thread;
	atomic_bool stop;
	atomic_uint acks;   /* appends acknowledged */
	atomic_uint errors; /* appends that failed */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct cairn_options o = { .deadline_ms = APPEND_DEADLINE_MS };
	struct cairn_error err;
	cairn_client *cl;
	unsigned i = 0;

	if (cairn_open(w->c->seeds, &o, &cl, &err) != 0) {
		atomic_fetch_add(&w->errors, 1);
		return NULL;
	}
	while (!atomic_load(&w->stop)) {
		struct cairn_event_in ev = { .type = "Tick",
					     .data = "{}",
					     .data_len = 2 };
		struct cairn_part_result res;
		char stream[32];

		snprintf(stream, sizeof stream, "tick-%u", i++ % 8);
		if (cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &ev, 1,
				     &res, &err) == 0)
			atomic_fetch_add(&w->acks, 1);
		else
			atomic_fetch_add(&w->errors, 1);
	}
	cairn_close(cl);
	return NULL;
}

static void wait_acks(struct writer *w, unsigned n)
{
	uint64_t deadline = cluster_now_ms() + WAIT_MS;

	while (atomic_load(&w->acks) < n) {
		if (cluster_now_ms() > deadline)
			fail_msg("%u of %u appends acknowledged within %d ms",
				 atomic_load(&w->acks), n, WAIT_MS);
		cluster_sleep_ms(20);
	}
}

static void follower_subscriber_gets_every_event_once_across_leader_kill(
	void **state)
{
	struct cluster *c = *state;
	struct cairn_subscribe_options o;
	struct cairn_subscription *sub;
	struct cairn_error err;
	struct cluster_dump d;
	struct collector k;
	struct writer w;
	cairn_client *sc;
	unsigned leader;
	unsigned follower;
	uint64_t last;

	cluster_start(c, "subscribe-leader-kill", 3, PORT_BASE);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % 3;
	collector_init(&k);
	/* single_node: the subscription stays on the follower. */
	sc = cluster_client(c, (int)follower, true, 30000);
	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_ALL;
	o.from = 1;
	assert_int_equal(cairn_subscribe(sc, &o, collector_cb, &k, &sub, &err),
			 0);

	memset(&w, 0, sizeof w);
	w.c = c;
	assert_int_equal(pthread_create(&w.thread, NULL, writer_main, &w), 0);
	wait_acks(&w, ACKS_PHASE);
	cluster_node_kill(c, leader);
	wait_acks(&w, 2 * ACKS_PHASE);
	cluster_node_start(c, leader);
	wait_acks(&w, 3 * ACKS_PHASE);
	atomic_store(&w.stop, true);
	pthread_join(w.thread, NULL);
	assert_int_equal(atomic_load(&w.errors), 0);

	last = cluster_wait_converged(c, 0);
	collector_wait(&k, (size_t)last, WAIT_MS);
	cluster_dump_node(c, follower, last, &d);
	pthread_mutex_lock(&k.mu);
	assert_int_equal(k.end_status, 0);
	if (k.n != d.n)
		fail_msg("the subscriber got %zu events, the log holds %zu",
			 k.n, d.n);
	for (size_t i = 0; i < k.n; i++) {
		if (k.positions[i] != i + 1)
			fail_msg("event %zu has position %" PRIu64, i,
				 k.positions[i]);
		assert_memory_equal(k.ids[i], d.events[i].id, 16);
	}
	assert_true(k.live);
	pthread_mutex_unlock(&k.mu);

	cairn_subscription_close(sub);
	cairn_close(sc);
	cluster_dump_free(&d);
	collector_free(&k);
	cluster_stop_clean(c);
	cluster_passed(c);
}

/* Appends @n events one by one to @stream with ids from @ids. */
static void append_batch(cairn_client *cl, const char *stream,
			 uint8_t (*ids)[16], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct cairn_event_in ev = { .id = ids[i],
					     .type = "Step",
					     .data = "{}",
					     .data_len = 2 };
		struct cairn_part_result res;
		struct cairn_error err;
		int rv = cairn_append_one(cl, stream, CAIRN_EXPECT_ANY, 0, &ev,
					  1, &res, &err);

		if (rv != 0)
			fail_msg("append %zu: %s", i, err.message);
	}
}

/* Takes events from @sub until @n arrived; checks they are @ids in order,
 * at positions after @first - 1 with nothing skipped. */
static void take(struct cairn_subscription *sub, uint8_t (*ids)[16], size_t n,
		 uint64_t *next_position)
{
	uint64_t deadline = cluster_now_ms() + WAIT_MS;
	size_t got = 0;

	while (got < n) {
		struct cairn_sub_item item;
		struct cairn_error err;
		int rv;

		if (cluster_now_ms() > deadline)
			fail_msg("%zu of %zu events within %d ms", got, n,
				 WAIT_MS);
		rv = cairn_subscription_next(sub, 1000, &item, &err);
		if (rv == CAIRN_ETIMEOUT)
			continue;
		if (rv != 0)
			fail_msg("subscription ended: %s", err.message);
		if (item.what != CAIRN_SUB_EVENTS)
			continue;
		if (item.event.position != *next_position)
			fail_msg("event at position %" PRIu64
				 ", expected %" PRIu64,
				 item.event.position, *next_position);
		assert_memory_equal(item.event.id, ids[got], 16);
		(*next_position)++;
		got++;
	}
}

static void subscriber_resumes_on_another_node_when_its_node_dies(void **state)
{
	struct cluster *c = *state;
	struct cairn_subscribe_options o;
	struct cairn_subscription *sub;
	struct cairn_options co = { .deadline_ms = 30000 };
	struct cairn_error err;
	uint8_t ids[80][16];
	cairn_client *sc;
	cairn_client *wc;
	char seeds[256];
	unsigned leader;
	unsigned victim;
	uint64_t next = 1;

	cluster_start(c, "subscribe-own-node", 3, PORT_BASE + CLUSTER_PORTS);
	leader = cluster_wait_leader(c, 0);
	victim = (leader + 1) % 3;
	/* The subscriber's first node is the victim. */
	snprintf(seeds, sizeof seeds, "%s,%s,%s",
		 c->nodes[victim].client_address,
		 c->nodes[(victim + 1) % 3].client_address,
		 c->nodes[(victim + 2) % 3].client_address);
	assert_int_equal(cairn_open(seeds, &co, &sc, &err), 0);
	wc = cluster_client(c, -1, false, 30000);
	for (size_t i = 0; i < 80; i++)
		cairn_uuid(ids[i]);

	memset(&o, 0, sizeof o);
	o.kind = CAIRN_SUB_ALL;
	assert_int_equal(cairn_subscribe(sc, &o, NULL, NULL, &sub, &err), 0);
	append_batch(wc, "step-1", ids, 40);
	take(sub, ids, 40, &next);

	cluster_node_kill(c, victim);
	append_batch(wc, "step-1", ids + 40, 40);
	take(sub, ids + 40, 40, &next);
	assert_int_equal(next, 81);

	cairn_subscription_close(sub);
	cairn_close(sc);
	cairn_close(wc);
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
			follower_subscriber_gets_every_event_once_across_leader_kill,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			subscriber_resumes_on_another_node_when_its_node_dies,
			setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
