/* Appends through a follower: a client whose only seed is a follower is
 * redirected to the leader and its append commits; every node then serves
 * the same events (read with at-least consistency through single-node
 * clients), and a single-node client on a follower is told NOT_LEADER with
 * the leader's address instead of being redirected. */
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
#define PORT_BASE 21200

#define STREAM "account-7"

struct sent {
	uint8_t id[16];
	char type[32];
	char data[64];
	char metadata[64];
	uint16_t schema_version;
	int64_t event_time_us;
};

static void make_events(struct sent *s, struct cairn_event_in *in, size_t n,
			unsigned first)
{
	for (size_t i = 0; i < n; i++) {
		cairn_uuid(s[i].id);
		snprintf(s[i].type, sizeof s[i].type, "Deposited");
		snprintf(s[i].data, sizeof s[i].data, "{\"amount\":%zu}",
			 first + i);
		snprintf(s[i].metadata, sizeof s[i].metadata,
			 "{\"correlation\":\"c-%zu\"}", first + i);
		s[i].schema_version = 2;
		s[i].event_time_us = 1700000000000000 + (int64_t)(first + i);
		memset(&in[i], 0, sizeof in[i]);
		in[i].id = s[i].id;
		in[i].type = s[i].type;
		in[i].data = s[i].data;
		in[i].data_len = strlen(s[i].data);
		in[i].metadata = s[i].metadata;
		in[i].metadata_len = strlen(s[i].metadata);
		in[i].schema_version = s[i].schema_version;
		in[i].event_time_us = s[i].event_time_us;
	}
}

static void check_event(const struct cairn_event *e, const struct sent *s,
			uint64_t version, uint64_t position, unsigned node)
{
	if (e->version != version || e->position != position)
		fail_msg("node %u: event v%" PRIu64 " at %" PRIu64
			 ", expected v%" PRIu64 " at %" PRIu64,
			 node, e->version, e->position, version, position);
	assert_int_equal(e->stream_len, strlen(STREAM));
	assert_memory_equal(e->stream, STREAM, e->stream_len);
	assert_memory_equal(e->id, s->id, 16);
	assert_int_equal(e->type_len, strlen(s->type));
	assert_memory_equal(e->type, s->type, e->type_len);
	assert_int_equal(e->data_len, strlen(s->data));
	assert_memory_equal(e->data, s->data, e->data_len);
	assert_int_equal(e->metadata_len, strlen(s->metadata));
	assert_memory_equal(e->metadata, s->metadata, e->metadata_len);
	assert_int_equal(e->schema_version, s->schema_version);
	assert_int_equal(e->event_time_us, s->event_time_us);
	assert_true(e->commit_time_us > 0);
}

static void append_through_follower_commits_and_replicates(void **state)
{
	struct cluster *c = *state;
	struct sent sent[4];
	struct cairn_event_in in[4];
	struct cairn_part_result r1, r2;
	struct cairn_error err;
	uint64_t commit_times[4] = { 0 };
	unsigned leader, follower;
	cairn_client *cl;
	int rv;

	cluster_start(c, "follower-append", 3, PORT_BASE);
	leader = cluster_wait_leader(c, 0);
	follower = (leader + 1) % c->n;

	/* The client knows the follower only: it must follow NOT_LEADER. */
	cl = cluster_client(c, (int)follower, false, 0);
	make_events(sent, in, 4, 1);
	rv = cairn_append_one(cl, STREAM, CAIRN_EXPECT_NO_STREAM, 0, in, 1, &r1,
			      &err);
	if (rv != 0)
		fail_msg("append through follower %u: %s: %s",
			 c->nodes[follower].id, cairn_strerror(rv),
			 err.message);
	assert_int_equal(r1.first_version, 1);
	assert_int_equal(r1.last_version, 1);
	/* A fresh cluster: the first event of the global log is at 1. */
	assert_int_equal(r1.first_position, 1);
	assert_int_equal(r1.last_position, 1);

	rv = cairn_append_one(cl, STREAM, CAIRN_EXPECT_EXACT, 1, in + 1, 3, &r2,
			      &err);
	if (rv != 0)
		fail_msg("second append through follower: %s: %s",
			 cairn_strerror(rv), err.message);
	assert_int_equal(r2.first_version, 2);
	assert_int_equal(r2.last_version, 4);
	assert_int_equal(r2.first_position, 2);
	assert_int_equal(r2.last_position, 4);
	cairn_close(cl);

	/* Every node, asked alone, serves the same four events once it has
	 * applied position 4. */
	for (unsigned k = 0; k < c->n; k++) {
		struct cairn_read_options ro = {
			.consistency = CAIRN_CONSISTENCY_AT_LEAST,
			.min_position = r2.last_position,
		};
		struct cairn_page page;
		uint64_t version = 0, last = 0;

		cl = cluster_client(c, (int)k, true, 0);
		memset(&page, 0, sizeof page);
		rv = cairn_read_stream(cl, STREAM, 1, false, &ro, &page, &err);
		if (rv != 0)
			fail_msg("read from node %u: %s: %s", c->nodes[k].id,
				 cairn_strerror(rv), err.message);
		assert_int_equal(page.n, 4);
		assert_true(page.end);
		for (size_t i = 0; i < 4; i++) {
			const struct cairn_event *e = &page.events[i];

			check_event(e, &sent[i], i + 1, i + 1, c->nodes[k].id);
			if (k == 0)
				commit_times[i] = e->commit_time_us;
			/* The commit time is the leader's, carried in the
			 * entry: identical on every replica. */
			assert_int_equal(e->commit_time_us, commit_times[i]);
			/* Without a key the client still sends its own id
			 * and next sequence: one per batch, increasing. */
			assert_true(e->has_client);
		}
		assert_memory_equal(page.events[1].client_id,
				    page.events[0].client_id, 16);
		assert_true(page.events[1].client_seq >
			    page.events[0].client_seq);
		for (size_t i = 2; i < 4; i++) {
			assert_memory_equal(page.events[i].client_id,
					    page.events[1].client_id, 16);
			assert_int_equal(page.events[i].client_seq,
					 page.events[1].client_seq);
		}
		cairn_page_free(&page);

		rv = cairn_head(cl, STREAM, &ro, &version, &last, &err);
		if (rv != 0)
			fail_msg("head on node %u: %s: %s", c->nodes[k].id,
				 cairn_strerror(rv), err.message);
		assert_int_equal(version, 4);
		assert_int_equal(last, 4);
		cairn_close(cl);
	}

	/* A single-node client on the follower is not redirected: it gets
	 * NOT_LEADER naming the leader's client address, and nothing is
	 * appended. */
	cl = cluster_client(c, (int)follower, true, 0);
	make_events(sent, in, 1, 10);
	memset(&err, 0, sizeof err);
	rv = cairn_append_one(cl, STREAM, CAIRN_EXPECT_ANY, 0, in, 1, &r1,
			      &err);
	assert_int_equal(rv, CAIRN_ENOT_LEADER);
	assert_int_equal(err.code, CAIRN_ENOT_LEADER);
	assert_string_equal(err.leader, c->nodes[leader].client_address);
	cairn_close(cl);

	/* The leader's view: still four events. */
	cl = cluster_client(c, -1, false, 0);
	{
		struct cairn_read_options ro = {
			.consistency = CAIRN_CONSISTENCY_LEADER,
		};
		uint64_t version = 0, last = 0;

		rv = cairn_head(cl, STREAM, &ro, &version, &last, &err);
		if (rv != 0)
			fail_msg("linearizable head: %s: %s",
				 cairn_strerror(rv), err.message);
		assert_int_equal(version, 4);
		assert_int_equal(last, 4);
	}
	cairn_close(cl);

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			append_through_follower_commits_and_replicates, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
